"""Check that DuckDB (benches/duckdb/segsql.py) and segdex agree on every segment's members.

For each as-of, runs ``segdex query --format jsonl`` over the segments and the
SQL translation of each segment in DuckDB (in each ``--mode``), and compares
the member sets exactly.  Any difference is printed with the segment, the
as-of, both counts and a few ids on each side; the exit status is 1 then.

    benches/duckdb/check_against_segdex.py --segdex target/release/segdex \\
        --data data/sample --segments benches/suite --timezone America/Los_Angeles \\
        --as-of 2026-11-20 --as-of 2026-03-08 --as-of 2026-11-20T15:30:00-08:00

The index is built into a temporary directory with ``segdex build`` unless
``--index`` names an existing one (built with the same data and zone).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import segsql  # noqa: E402

DEFAULT_AS_OFS = ["2026-11-20", "2026-03-08", "2025-12-31", "2024-02-29", "2026-11-20T15:30:00-08:00"]


def segdex_members(segdex: str, index: str, segments: str, as_of: str) -> dict[str, set[str]]:
    """{code: set of external ids (as strings)} from ``segdex query --format jsonl``."""
    out = subprocess.run([segdex, "query", "--index", index, "--segments", segments,
                          "--as-of", as_of, "--format", "jsonl"],
                         check=True, capture_output=True, text=True).stdout
    members = {}
    for line in out.splitlines():
        if line.strip():
            obj = json.loads(line)
            ids = {str(i) for i in obj["ids"]}
            if obj.get("size") is not None and obj["size"] != len(ids):
                print(f"warning: segdex {obj['code']}: size {obj['size']} != {len(ids)} ids", file=sys.stderr)
            members[obj["code"]] = ids
    return members


def duckdb_members(con, tr: segsql.Translator, code: str) -> set[str]:
    return {str(r[0]) for r in con.execute(tr.segment_sql(code)).fetchall()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--segdex", required=True, help="the segdex binary")
    ap.add_argument("--data", required=True)
    ap.add_argument("--segments", required=True)
    ap.add_argument("--timezone", default="America/Los_Angeles")
    ap.add_argument("--as-of", action="append", help=f"repeatable; default {DEFAULT_AS_OFS}")
    ap.add_argument("--index", help="an existing segdex index of --data (else built in a temp dir)")
    ap.add_argument("--mode", action="append", choices=["files", "memory"], help="default: both")
    ap.add_argument("--tz-method", default="ranges", choices=["ranges", "icu"])
    ap.add_argument("--show", type=int, default=5, help="differing ids to print per side")
    args = ap.parse_args(argv)
    as_ofs = args.as_of or DEFAULT_AS_OFS
    modes = args.mode or ["files", "memory"]

    tmp = None
    index = args.index
    if not index:
        tmp = tempfile.TemporaryDirectory(prefix="segdex-check-")
        index = os.path.join(tmp.name, "idx")
        subprocess.run([args.segdex, "build", "--data", args.data, "--out", index,
                        "--timezone", args.timezone], check=True, stdout=subprocess.DEVNULL)

    catalog = segsql.load_catalog(args.segments)
    agree = differ = 0
    for mode in modes:
        con = segsql.connect()
        src = segsql.open_source(con, args.data, mode)
        for as_of in as_ofs:
            expected = segdex_members(args.segdex, index, args.segments, as_of)
            tr = segsql.Translator(con, src, args.timezone, as_of, catalog, args.tz_method)
            for code in sorted(catalog):
                try:
                    got = duckdb_members(con, tr, code)
                except Exception as e:
                    print(f"DIFF {code} as-of {as_of} [{mode}]: duckdb error {e}")
                    differ += 1
                    continue
                if code not in expected:
                    print(f"DIFF {code} as-of {as_of} [{mode}]: not in segdex output")
                    differ += 1
                    continue
                want = expected[code]
                if got == want:
                    agree += 1
                    continue
                differ += 1
                only_duck = sorted(got - want, key=lambda x: (len(x), x))[:args.show]
                only_segdex = sorted(want - got, key=lambda x: (len(x), x))[:args.show]
                print(f"DIFF {code} as-of {as_of} [{mode}]: duckdb {len(got)}, segdex {len(want)}; "
                      f"only duckdb {len(got - want)} e.g. {only_duck}; "
                      f"only segdex {len(want - got)} e.g. {only_segdex}")
        con.close()
    print(f"{agree} agree, {differ} differ ({len(catalog)} segments x {len(as_ofs)} as-ofs x "
          f"{len(modes)} modes)")
    if tmp:
        tmp.cleanup()
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
