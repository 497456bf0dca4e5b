#!/usr/bin/env python3
"""Checks that a segdex state directory's members/<code>.roaring files are
portable-format roaring bitmaps: pyroaring (CRoaring's Python binding) reads
each one and finds the size that state.json records, with every row id below
the index's customer count.

Not part of `cargo test`. Run it against any state directory:

    python3 -m venv target/pyenv && target/pyenv/bin/pip install pyroaring
    target/release/segdex recalc --index INDEX --segments data/segments \
        --as-of 2026-11-20 --state target/state
    target/pyenv/bin/python scripts/check_roaring_portable.py target/state

Exits 1 on any mismatch.
"""

import json
import pathlib
import sys

from pyroaring import BitMap


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    state = pathlib.Path(sys.argv[1])
    doc = json.loads((state / "state.json").read_text())
    customers = doc["index"]["customers"]
    bad = 0
    for code, rec in sorted(doc["segments"].items()):
        data = (state / "members" / f"{code}.roaring").read_bytes()
        bm = BitMap.deserialize(data)
        top = bm.max() if len(bm) else None
        ok = len(bm) == rec["size"] and (top is None or top < customers)
        print(
            f"{'ok ' if ok else 'BAD'} {code}: pyroaring reads {len(bm)} rows, "
            f"state.json says {rec['size']}, max row {top}, "
            f"{len(data)} bytes, re-serialized identically: {bm.serialize() == data}"
        )
        bad += not ok
    print(f"{len(doc['segments']) - bad} of {len(doc['segments'])} bitmaps read back correctly")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
