"""Run a suite of segdex segments with DuckDB and write a JSON result.

For each segment the timed work is computing its member set:
``SELECT count(*) FROM (<segment query>)``, run once in each of ``--repeat``
rounds over the suite (every run's seconds are recorded).  Then, untimed, a fingerprint of the member set
(count, sum of ids, sum of squared ids, as strings) and optionally the sorted
ids, one per line, in ``--ids-dir/<code>.txt``.

    benches/duckdb/duckdb_suite.py --data data/sample --segments benches/suite \\
        --as-of 2026-11-20 --timezone America/Los_Angeles --mode memory \\
        --repeat 3 --threads 2 --out /tmp/duckdb.json

Output:
    {"duckdb_version": .., "mode": .., "threads": .., "as_of": .., "timezone": ..,
     "tz_method": .., "load_seconds": .., "peak_rss_bytes": ..,
     "segments": {code: {"seconds": [..], "count": n, "sum": "..", "sumsq": ".."}
                  | {"error": "..."}}}

A segment that fails (unsupported, bad rule, SQL error) is reported in the
JSON as ``{"error": ...}`` and on stderr; the run goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import segsql  # noqa: E402


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def fingerprint(con, sql: str) -> tuple[int, str, str]:
    """(count, sum of ids, sum of squared ids) of a member set, exactly (HUGEINT)."""
    n, s, sq = con.execute(
        "SELECT count(*), COALESCE(sum(customer_id::HUGEINT), 0), "
        "COALESCE(sum(customer_id::HUGEINT * customer_id::HUGEINT), 0) "
        f"FROM ({sql})").fetchone()
    return int(n), str(s), str(sq)


def run_suite(data: str, segments: str, as_of: str, timezone: str, mode: str = "files",
              repeat: int = 3, threads: int = 2, ids_dir: str | None = None,
              tz_method: str = "ranges", only: list[str] | None = None) -> dict:
    """Run every segment of ``segments`` (optionally only ``only``) and return the result dict."""
    import duckdb
    con = segsql.connect(threads)
    src = segsql.open_source(con, data, mode)
    catalog = segsql.load_catalog(segments)
    tr = segsql.Translator(con, src, timezone, as_of, catalog, tz_method)
    if ids_dir:
        Path(ids_dir).mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    sqls: dict[str, str] = {}

    def failed(code: str, e: Exception) -> None:
        # One bad segment must not stop the run.
        msg = f"{type(e).__name__}: {e}"
        print(f"duckdb_suite: {code}: {msg}", file=sys.stderr)
        results[code] = {"error": msg}
        sqls.pop(code, None)

    for code in sorted(catalog):
        if only and code not in only:
            continue
        try:
            sqls[code] = tr.segment_sql(code)
        except Exception as e:
            failed(code, e)
    # Rounds over the whole suite, as the segdex side runs it: a burst of
    # load from elsewhere slows one run of several segments, which the
    # median drops, rather than every run of one segment.
    seconds: dict[str, list[float]] = {code: [] for code in sqls}
    for _ in range(repeat):
        for code, sql in list(sqls.items()):
            try:
                t0 = time.perf_counter()
                con.execute(f"SELECT count(*) FROM ({sql})").fetchone()
                seconds[code].append(time.perf_counter() - t0)
            except Exception as e:
                failed(code, e)
    for code, sql in list(sqls.items()):
        try:
            n, s, sq = fingerprint(con, sql)
            results[code] = {"seconds": seconds[code], "count": n, "sum": s, "sumsq": sq}
            if ids_dir:
                ids = con.execute(f"SELECT customer_id FROM ({sql}) ORDER BY customer_id").fetchall()
                with open(Path(ids_dir) / f"{code}.txt", "w") as f:
                    f.writelines(f"{r[0]}\n" for r in ids)
        except Exception as e:
            failed(code, e)
    return {
        "duckdb_version": duckdb.__version__,
        "mode": mode,
        "threads": threads,
        "as_of": as_of,
        "timezone": timezone,
        "tz_method": tz_method,
        "load_seconds": src.load_seconds,
        "peak_rss_bytes": peak_rss_bytes(),
        "segments": results,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="directory with the Parquet tables")
    ap.add_argument("--segments", required=True, help="segment JSON file or directory")
    ap.add_argument("--as-of", required=True, help="YYYY-MM-DD or an RFC 3339 instant")
    ap.add_argument("--timezone", default="UTC", help="the index time zone (IANA)")
    ap.add_argument("--mode", default="files", choices=["files", "memory"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tz-method", default="ranges", choices=["ranges", "icu"])
    ap.add_argument("--ids-dir", help="write sorted member ids to DIR/<code>.txt")
    ap.add_argument("--only", action="append", help="run only this segment (repeatable)")
    ap.add_argument("--out", required=True, help="the JSON result file")
    args = ap.parse_args(argv)
    result = run_suite(args.data, args.segments, args.as_of, args.timezone, args.mode,
                       args.repeat, args.threads, args.ids_dir, args.tz_method, args.only)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    segs = result["segments"]
    errors = sum(1 for r in segs.values() if "error" in r)
    total = sum(min(r["seconds"]) for r in segs.values() if "seconds" in r)
    load = f", load {result['load_seconds']:.3f}s" if result["load_seconds"] is not None else ""
    print(f"{len(segs)} segments, {errors} errors, sum of best times {total:.3f}s{load}, "
          f"peak RSS {result['peak_rss_bytes'] / 2**20:.0f} MiB -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
