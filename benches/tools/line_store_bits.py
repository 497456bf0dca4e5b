#!/usr/bin/env python3
"""How many bytes the line store's columns take, and would take bit-packed.

Usage: python3 benches/tools/line_store_bits.py INDEX_DIR [DUMP_DIR]

With DUMP_DIR it also writes the line-store sections to `DUMP_DIR/lines.bin`
and every other section to `DUMP_DIR/rest.bin`, each concatenated, for
measuring a general-purpose compressor on them (`zstd -b3 DUMP_DIR/*.bin`).

Reads an index directory (format 7) with the standard library only: the
section table of `index.seg` (segdex_bitmap::sections), the meta JSON it
names, and each chunk's packed columns (segdex_index::packed: a 32-byte
header `count, base, scale, width`, then `count x width` little-endian
bytes). For each column it prints the bytes stored today (whole bytes per
value) and the bytes the same values would take packed to the fewest bits
of the chunk's largest stored value. It is a measurement for BENCHMARKS.md
(issue 3, index size), not part of the engine.
"""

import collections
import json
import struct
import sys

COLUMNS = [
    "cust_start", "day", "ns", "key", "attr0", "attr1", "attr2", "attr3",
    "line_start", "cum_units", "cum_cents", "product", "qty", "cents", "flags",
]


def max_bits(body: bytes, width: int) -> int:
    """Bits of the largest `width`-byte little-endian value in `body`."""
    if width == 0:
        return 0
    # The highest non-zero byte position over all values bounds the bits;
    # within it, the largest byte there decides.
    for pos in reversed(range(width)):
        top = max(body[pos::width], default=0)
        if top:
            return 8 * pos + top.bit_length()
    return 0


def main(index_dir: str, dump_dir: str | None) -> None:
    manifest = json.load(open(f"{index_dir}/manifest.json"))
    data = open(f"{index_dir}/{manifest['data_file']}", "rb").read()
    table_offset, n, _, _ = struct.unpack("<QQQ8s", data[-32:])
    table = [struct.unpack_from("<QQQ", data, table_offset + 24 * i) for i in range(n)]

    def section(i: int) -> bytes:
        offset, length, _ = table[i]
        return data[offset:offset + length]

    meta = json.loads(section(manifest["meta_section"]))
    stored = collections.Counter()
    packed = collections.Counter()
    for s in meta["purchases"]["chunks"]:
        chunk = section(s)
        offset = 8  # the chunk's magic
        for name in COLUMNS:
            count, _base, _scale, width = struct.unpack_from("<QqqB", chunk, offset)
            body = chunk[offset + 32: offset + 32 + count * width]
            stored[name] += count * width
            packed[name] += (count * max_bits(body, width) + 7) // 8
            offset += (32 + count * width + 8 + 7) // 8 * 8
    if dump_dir is not None:
        chunks = set(meta["purchases"]["chunks"])
        with open(f"{dump_dir}/lines.bin", "wb") as lines, open(f"{dump_dir}/rest.bin", "wb") as rest:
            for i in range(n):
                (lines if i in chunks else rest).write(section(i))
    for name in COLUMNS:
        print(f"{name:11s} stored {stored[name] / 1e6:7.2f} MB   bit-packed {packed[name] / 1e6:7.2f} MB")
    a, b = sum(stored.values()), sum(packed.values())
    print(f"total       stored {a / 1e6:7.2f} MB   bit-packed {b / 1e6:7.2f} MB  (-{(a - b) / 1e6:.2f} MB)")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None)
