#!/usr/bin/env bash
# Create target/bench-venv with a pinned DuckDB for the comparison harness
# (benches/duckdb/segsql.py, benches/duckdb/duckdb_suite.py, benches/duckdb/check_against_segdex.py).
# Idempotent: reuses the venv when the pinned version is already there.
# Prints the venv's python path on stdout (everything else goes to stderr).
#
# Time zones: the duckdb wheel has the ICU extension statically linked
# (duckdb_extensions() shows install_mode STATICALLY_LINKED), so timezone()
# and TIMESTAMPTZ arithmetic work offline; nothing is downloaded at run time.
# This script checks that, and fails if it ever stops being true.
set -euo pipefail

DUCKDB_VERSION=1.5.6
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/target/bench-venv"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p "$ROOT/target"
    "$PY" -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "duckdb==$DUCKDB_VERSION" >&2
fi

# zoneinfo (used to turn local-day bounds into instants) needs tz data:
# the system's /usr/share/zoneinfo, else the tzdata wheel.
if ! "$VENV/bin/python" -c "import zoneinfo; zoneinfo.ZoneInfo('America/Los_Angeles')" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "tzdata==2026.6" >&2
fi

# ICU must be built in: local days of instants depend on it.
"$VENV/bin/python" - >&2 <<'EOF'
import duckdb
con = duckdb.connect()
mode = con.execute("SELECT install_mode FROM duckdb_extensions() WHERE extension_name = 'icu'").fetchone()
assert mode and mode[0] == "STATICALLY_LINKED", f"icu is not built into this duckdb wheel: {mode}"
got = con.execute("SELECT strftime(timezone('America/Los_Angeles', "
                  "TIMESTAMPTZ '2026-03-08 10:30:00+00'), '%Y-%m-%d %H:%M')").fetchone()[0]
assert got == "2026-03-08 03:30", got
print(f"duckdb {duckdb.__version__}: icu statically linked, time zones work offline")
EOF

echo "$VENV/bin/python"
