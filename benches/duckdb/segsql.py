"""Translate segdex segments (SPEC §2) into DuckDB SQL.

This is the DuckDB side of the segdex benchmark: a second, independent
implementation of the segment language, written against SPEC.md only.  A
segment becomes one SQL query that returns the matching ``customer_id`` s:

    SELECT c.customer_id FROM <customers> AS c WHERE <predicate>

Every condition of the rule becomes a two-valued boolean predicate over the
customer row ``c`` (leaves are wrapped in ``COALESCE(..., FALSE)``, so
``not`` never meets a NULL).  Purchase conditions become ``IN`` / ``NOT IN``
sub-queries over the kept order lines, aggregated per customer.

Time.  The index has one IANA zone; D is the local date of the as-of.  A
window is a range of local days ``[lo, hi]``.  Two ways to test "the local day
of a timestamp is in [lo, hi]" are implemented:

* ``ranges`` (default): the day bounds are turned, in Python with
  ``zoneinfo``, into UTC instants (the first instant of local day ``lo`` and
  of day ``hi + 1``), and the SQL compares the raw timestamp column with
  those constants.  That is exact wherever the local date never runs
  backwards near the bound (checked; otherwise the ``icu`` form is used for
  that bound), and lets DuckDB prune row groups.
* ``icu``: ``timezone('<zone>', col)::DATE BETWEEN lo AND hi`` per row, with
  DuckDB's ICU extension (statically linked into the Python wheel).

Month-day tests (``anniversary`` on a timestamp attribute) always use ICU.

Money is compared in exact integer cents: line totals are rounded to cents
(half away from zero; a float is taken as its shortest decimal form, so 1.005
is 1.01), thresholds are parsed from JSON as ``Decimal`` and
compared by cross-multiplication, so ``avg_order_value`` compares the exact
ratio spend ÷ orders.

Table and column names are parameters (:class:`Source`), so a mapping file
could be added by filling those in.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import os
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
TABLES = ("customers", "orders", "order_lines", "products")

#: Customer columns that are stored only and cannot be used in rules.
STORED_ONLY_CUSTOMER = {"first_name", "last_name", "email"}
#: Customer columns that are categorical whatever their type (SPEC §2.4).
ID_LIKE_CUSTOMER = {"home_store_id", "customer_id"}
#: Product columns that are not custom product attributes.
PRODUCT_NON_ATTR = {"product_id", "name", "tags"}
#: Product attributes and their canonical columns.
PRODUCT_ATTRS = {"sku": "sku", "brand": "brand", "product_type": "product_type", "strain": "strain"}
#: Order attributes (keys of ``where``) and their canonical columns.
ORDER_ATTRS = {"store": "store_id", "payment_method": "payment_method",
               "offer_code": "offer_code", "channel": "channel"}
COMPARE_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "="}
MEASURES = ("orders", "lines", "units", "spend", "avg_order_value")
SEGMENT_KEYS = {"code", "name", "description", "mode", "active", "rule"}


class SegmentError(Exception):
    """A segment that cannot be translated: names the segment and the rule path."""


# ---------------------------------------------------------------------------
# Segments

def load_catalog(path: str | os.PathLike) -> dict[str, dict]:
    """Read segments from a JSON file (one segment or an array) or a directory.

    Numbers with a fraction are parsed as ``Decimal`` so money thresholds stay
    exact.  Returns ``{code: segment}``; duplicate codes are an error.
    """
    path = Path(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    catalog: dict[str, dict] = {}
    for f in files:
        with open(f, encoding="utf-8") as fh:
            doc = json.load(fh, parse_float=Decimal)
        for seg in doc if isinstance(doc, list) else [doc]:
            if not isinstance(seg, dict) or not isinstance(seg.get("code"), str):
                raise SegmentError(f"{f}: a segment must be an object with a string code")
            unknown = set(seg) - SEGMENT_KEYS
            if unknown:
                raise SegmentError(f"{seg['code']}: unknown keys {sorted(unknown)}")
            if "rule" not in seg:
                raise SegmentError(f"{seg['code']}: missing rule")
            if seg["code"] in catalog:
                raise SegmentError(f"{seg['code']}: duplicate code ({f})")
            catalog[seg["code"]] = seg
    return catalog


# ---------------------------------------------------------------------------
# Time: as-of, windows, local days

def parse_date(text: Any, where: str) -> dt.date:
    """A JSON ``YYYY-MM-DD`` date."""
    if not isinstance(text, str) or len(text) != 10:
        raise SegmentError(f"{where}: expected a YYYY-MM-DD date, got {text!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError as e:
        raise SegmentError(f"{where}: bad date {text!r}: {e}") from None


@dataclass(frozen=True)
class AsOf:
    """The evaluation instant.

    ``day`` is D, the local date.  Purchases are kept when
    ``ordered_at < clip`` (a date as-of: clip = start of D+1) or
    ``ordered_at <= clip`` (an instant as-of); ``clip_inclusive`` says which.
    """

    day: dt.date
    clip: dt.datetime  # aware, UTC
    clip_inclusive: bool
    text: str

    @staticmethod
    def parse(text: str, zone: "Zone") -> "AsOf":
        """``YYYY-MM-DD`` (the whole local day) or an RFC 3339 instant (naive = UTC)."""
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return AsOf(day, zone.day_start(day + dt.timedelta(days=1)), False, text)
        s = text.replace("z", "Z")
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        instant = dt.datetime.fromisoformat(s)
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
        instant = instant.astimezone(UTC)
        return AsOf(zone.local_date(instant), instant, True, text)


class Zone:
    """The index time zone: local dates of instants and first instants of local days."""

    def __init__(self, name: str):
        self.name = name
        self.tz = ZoneInfo(name)
        self._starts: dict[dt.date, dt.datetime] = {}

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The local calendar date of an aware instant."""
        return instant.astimezone(self.tz).date()

    def _date_at(self, epoch: int) -> dt.date:
        return dt.datetime.fromtimestamp(epoch, self.tz).date()

    def day_start(self, day: dt.date) -> dt.datetime:
        """The first instant (UTC, whole second) whose local date is ``day`` or later."""
        if day not in self._starts:
            base = int(dt.datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
            lo, hi = base - 2 * 86400, base + 2 * 86400  # local dates there: < day, >= day
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self._date_at(mid) >= day:
                    hi = mid
                else:
                    lo = mid
            self._starts[day] = dt.datetime.fromtimestamp(hi, UTC)
        return self._starts[day]

    def monotone_at(self, day: dt.date) -> bool:
        """True when the local date does not run backwards within 48 h of day's start.

        Where it does (a backward transition over midnight), "local day >= d"
        is not the same as "instant >= day_start(d)" and the ICU form is used.
        """
        t = int(self.day_start(day).timestamp())
        return all(self._date_at(t - k * 3600) < day and self._date_at(t + k * 3600 - 1) >= day
                   for k in range(1, 49))


def add_months(d: dt.date, months: int) -> dt.date:
    """``d`` plus ``months`` months, the day clamped to the month's end."""
    y, m = divmod(d.year * 12 + (d.month - 1) + months, 12)
    m += 1
    return dt.date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def _positive_int(n: Any, where: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SegmentError(f"{where}: expected an integer N >= 1, got {n!r}")
    return n


def window_days(w: Any, D: dt.date, where: str) -> tuple[dt.date | None, dt.date | None]:
    """The day range ``(lo, hi)`` of window ``w`` (SPEC §2.3); ``None`` = unbounded.

    An empty window is returned as ``lo > hi``.
    """
    one = dt.timedelta(days=1)
    monday = D - dt.timedelta(days=D.weekday())
    first = D.replace(day=1)
    if isinstance(w, str):
        named = {
            "all_time": (None, D),
            "today": (D, D),
            "yesterday": (D - one, D - one),
            "this_week": (monday, D),
            "last_week": (monday - 7 * one, monday - one),
            "current_week": (monday, monday + 6 * one),
            "month_to_date": (first, D),
            "previous_month": (add_months(first, -1), first - one),
            "current_month": (first, add_months(first, 1) - one),
            "year_to_date": (dt.date(D.year, 1, 1), D),
            "last_year": (dt.date(D.year - 1, 1, 1), dt.date(D.year - 1, 12, 31)),
        }
        if w not in named:
            raise SegmentError(f"{where}: unknown window {w!r}")
        return named[w]
    if not isinstance(w, dict) or len(w) != 1:
        raise SegmentError(f"{where}: a window is a name or an object with one key, got {w!r}")
    (key, val), = w.items()
    at = f"{where}.{key}"
    if key == "last_days":
        return D - (_positive_int(val, at) - 1) * one, D
    if key == "next_days":
        return D, D + (_positive_int(val, at) - 1) * one
    if key == "last_months":
        return add_months(D, -_positive_int(val, at)) + one, D
    if key == "relative_days":
        if (not isinstance(val, list) or len(val) != 2
                or any(isinstance(x, bool) or not isinstance(x, int) for x in val)):
            raise SegmentError(f"{at}: expected [a, b] integers")
        if val[0] > val[1]:
            raise SegmentError(f"{at}: a > b")
        return D + val[0] * one, D + val[1] * one
    if key == "between":
        if not isinstance(val, list) or len(val) != 2:
            raise SegmentError(f"{at}: expected [d1, d2]")
        d1, d2 = parse_date(val[0], at + "[0]"), parse_date(val[1], at + "[1]")
        if d1 > d2:
            raise SegmentError(f"{at}: d1 > d2")
        return d1, d2
    if key == "since":
        return parse_date(val, at), D  # empty when after D
    if key == "before":
        return None, parse_date(val, at) - one
    if key == "month_days":
        raise SegmentError(f"{at}: month_days appears only inside anniversary")
    raise SegmentError(f"{where}: unknown window {key!r}")


#: All 366 month-days in calendar order, as month*100 + day.
ALL_MONTH_DAYS = [m * 100 + d for m in range(1, 13) for d in range(1, calendar.monthrange(2000, m)[1] + 1)]


def parse_month_day(text: Any, where: str) -> int:
    """``MM-DD`` as month*100 + day (29 February allowed)."""
    try:
        if not isinstance(text, str) or len(text) != 5 or text[2] != "-":
            raise ValueError
        md = int(text[:2]) * 100 + int(text[3:])
    except ValueError:
        raise SegmentError(f"{where}: expected MM-DD, got {text!r}") from None
    if md not in ALL_MONTH_DAYS:
        raise SegmentError(f"{where}: no such month-day {text!r}")
    return md


def anniversary_month_days(w: Any, D: dt.date, where: str) -> set[int]:
    """The month-days (month*100+day) that an anniversary window matches (SPEC §2.3–2.4).

    Each real day of the window gives its month-day; 28 February of a year
    without 29 February also gives 29 February.  A window of a year or more
    covers every month-day; "a year" is read as 365 days (so a 365-day window
    that spans a 29 February, which misses one month-day when enumerated,
    still covers all), and unbounded windows (all_time, before) cover all.
    ``month_days`` ranges are literal and may wrap.
    """
    if isinstance(w, dict) and list(w) == ["month_days"]:
        val = w["month_days"]
        if not isinstance(val, list) or len(val) != 2:
            raise SegmentError(f"{where}.month_days: expected [\"MM-DD\", \"MM-DD\"]")
        a = ALL_MONTH_DAYS.index(parse_month_day(val[0], f"{where}.month_days[0]"))
        b = ALL_MONTH_DAYS.index(parse_month_day(val[1], f"{where}.month_days[1]"))
        idx = range(a, b + 1) if a <= b else list(range(a, 366)) + list(range(0, b + 1))
        return {ALL_MONTH_DAYS[i] for i in idx}
    lo, hi = window_days(w, D, where)
    if lo is None or hi is None:  # unbounded (all_time, before): every month-day
        return set(ALL_MONTH_DAYS)
    if lo > hi:
        return set()
    if (hi - lo).days + 1 >= 365:  # "a year or more": 365 days or more
        return set(ALL_MONTH_DAYS)
    out: set[int] = set()
    d = lo
    while d <= hi:
        out.add(d.month * 100 + d.day)
        if d.month == 2 and d.day == 28 and not calendar.isleap(d.year):
            out.add(229)
        d += dt.timedelta(days=1)
    return out


def month_day_ranges(mds: set[int]) -> list[tuple[int, int]]:
    """Compress a set of month-days into (first, last) runs in calendar order."""
    runs: list[tuple[int, int]] = []
    for md in ALL_MONTH_DAYS:
        if md in mds:
            if runs and ALL_MONTH_DAYS.index(runs[-1][1]) == ALL_MONTH_DAYS.index(md) - 1:
                runs[-1] = (runs[-1][0], md)
            else:
                runs.append((md, md))
    return runs


# ---------------------------------------------------------------------------
# SQL literals

def sql_str(s: str) -> str:
    """A VARCHAR literal."""
    return "'" + s.replace("'", "''") + "'"


def sql_num(x: int | Decimal) -> str:
    """An exact numeric literal."""
    return str(x) if isinstance(x, int) else format(x, "f")


def is_number(x: Any) -> bool:
    return isinstance(x, (int, Decimal)) and not isinstance(x, bool)


def exact_cmp(expr: str, op: str, x: int | Decimal) -> str:
    """``expr OP x`` for an integer-valued ``expr``, exact for any decimal ``x``."""
    x = Decimal(x)
    exp = x.as_tuple().exponent
    if isinstance(exp, int) and exp >= 0:
        return f"({expr}) {op} {int(x)}"
    k = -exp
    return f"CAST({expr} AS HUGEINT) * {10 ** k} {op} {int(x.scaleb(k))}"


def pycmp(a: Decimal, op: str, b: Decimal) -> bool:
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b, "=": a == b}[op]


# ---------------------------------------------------------------------------
# Where the tables are

def parquet_relation(path: Path) -> str:
    """``read_parquet`` of a file, or of every ``.parquet`` file under a directory."""
    if path.is_dir():
        return f"read_parquet({sql_str(str(path / '**' / '*.parquet'))})"
    return f"read_parquet({sql_str(str(path))})"


def find_table(data_dir: Path, name: str) -> Path | None:
    """``<name>.parquet`` (file) or ``<name>/`` (directory of Parquet files) under data_dir."""
    for p in (data_dir / f"{name}.parquet", data_dir / name):
        if p.exists():
            return p
    return None


@dataclass
class Source:
    """The relations holding the four tables and the names of their columns.

    ``relations`` maps a canonical table name to a SQL relation (a table name
    or a ``read_parquet(...)`` call); ``orders`` may be absent (denormalized
    lines).  ``columns`` maps ``table -> {canonical column: actual column}``;
    columns not listed keep their canonical name.
    """

    relations: dict[str, str]
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    load_seconds: float | None = None

    def col(self, table: str, canonical: str) -> str:
        name = self.columns.get(table, {}).get(canonical, canonical)
        return '"' + name.replace('"', '""') + '"'

    def canonical_names(self, table: str, actual: Iterable[str]) -> dict[str, str]:
        """{canonical name: actual name} for the given actual columns."""
        back = {v: k for k, v in self.columns.get(table, {}).items()}
        return {back.get(a, a): a for a in actual}


def open_source(con, data_dir: str | os.PathLike, mode: str = "files",
                table_names: dict[str, str] | None = None,
                columns: dict[str, dict[str, str]] | None = None) -> Source:
    """Locate the Parquet tables under ``data_dir``.

    ``mode='files'``: queries read the Parquet files directly.
    ``mode='memory'``: each table is first loaded with
    ``CREATE TABLE ... AS SELECT * FROM read_parquet(...)`` (the time it takes
    is ``Source.load_seconds``).  ``table_names`` gives the file/directory
    stem of each canonical table (default: the canonical name).
    """
    data_dir = Path(data_dir)
    table_names = table_names or {}
    relations: dict[str, str] = {}
    t0 = time.perf_counter()
    for t in TABLES:
        path = find_table(data_dir, table_names.get(t, t))
        if path is None:
            if t == "orders":
                continue
            raise FileNotFoundError(f"{data_dir}: no {t}.parquet (file or directory)")
        rel = parquet_relation(path)
        if mode == "memory":
            con.execute(f"CREATE OR REPLACE TABLE seg_{t} AS SELECT * FROM {rel}")
            rel = f"seg_{t}"
        elif mode != "files":
            raise ValueError(f"unknown mode {mode!r}")
        relations[t] = rel
    load = time.perf_counter() - t0 if mode == "memory" else None
    return Source(relations, columns or {}, load)


# ---------------------------------------------------------------------------
# The translator

@dataclass
class Attr:
    """A customer attribute as the rules see it."""

    name: str
    kind: str  # categorical | multi | flag | numeric | date | timestamp | age
    sql: str   # expression over alias c
    sql_type: str


class Translator:
    """Translates segments of one catalog into SQL for one source, zone and as-of."""

    def __init__(self, con, source: Source, zone: str, as_of: str,
                 catalog: dict[str, dict], tz_method: str = "ranges"):
        if tz_method not in ("ranges", "icu"):
            raise ValueError("tz_method is 'ranges' or 'icu'")
        self.con = con
        self.src = source
        self.zone = Zone(zone)
        self.as_of = AsOf.parse(as_of, self.zone)
        self.catalog = catalog
        self.tz_method = tz_method
        self.types = {t: self._describe(rel) for t, rel in source.relations.items()}
        self.denormalized = "orders" not in source.relations

    def _describe(self, rel: str) -> dict[str, str]:
        """{canonical column: DuckDB type} of a relation."""
        rows = self.con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()
        table = next(t for t, r in self.src.relations.items() if r == rel)
        names = self.src.canonical_names(table, [r[0] for r in rows])
        actual_type = {r[0]: r[1] for r in rows}
        return {canon: actual_type[act] for canon, act in names.items()}

    # -- entry points ------------------------------------------------------

    def segment_sql(self, code: str) -> str:
        """The query returning the member ``customer_id`` s of segment ``code``."""
        if code not in self.catalog:
            raise SegmentError(f"unknown segment {code!r}")
        pred = self.cond(self.catalog[code]["rule"], code, "rule", (code,))
        cid = self.src.col("customers", "customer_id")
        return (f"SELECT c.{cid} AS customer_id FROM {self.src.relations['customers']} AS c "
                f"WHERE c.{cid} IS NOT NULL AND {pred}")

    # -- conditions --------------------------------------------------------

    def cond(self, c: Any, seg: str, path: str, stack: tuple[str, ...]) -> str:
        """A never-NULL SQL boolean over customer row ``c`` for condition ``c``."""
        if not isinstance(c, dict) or not c:
            raise SegmentError(f"{seg}: {path}: a condition is a non-empty object")
        if "attr" in c:
            return self.attr_cond(c, seg, path)
        if len(c) != 1:
            raise SegmentError(f"{seg}: {path}: exactly one form per condition, got {sorted(c)}")
        (form, val), = c.items()
        at = f"{path}.{form}"
        if form in ("all", "any"):
            if not isinstance(val, list):
                raise SegmentError(f"{seg}: {at}: expected a list")
            parts = [self.cond(x, seg, f"{at}[{i}]", stack) for i, x in enumerate(val)]
            if not parts:
                return "TRUE" if form == "all" else "FALSE"
            joiner = " AND " if form == "all" else " OR "
            return "(" + joiner.join(parts) + ")"
        if form == "not":
            return f"(NOT {self.cond(val, seg, at, stack)})"
        if form == "customers":
            return self.customers_cond(val, seg, at)
        if form == "segment":
            if val not in self.catalog:
                raise SegmentError(f"{seg}: {at}: unknown segment {val!r}")
            if val in stack:
                raise SegmentError(f"{seg}: {at}: reference cycle {' -> '.join(stack + (val,))}")
            return self.cond(self.catalog[val]["rule"], val, "rule", stack + (val,))
        if form == "purchased":
            return self.purchased(val, seg, at)
        raise SegmentError(f"{seg}: {path}: unknown form {form!r}")

    def customers_cond(self, ids: Any, seg: str, at: str) -> str:
        if not isinstance(ids, list):
            raise SegmentError(f"{seg}: {at}: expected a list of ids")
        if not ids:
            return "FALSE"
        want_int = self._is_integer_type(self.types["customers"]["customer_id"])
        for i, x in enumerate(ids):
            if want_int != (isinstance(x, int) and not isinstance(x, bool)) or \
                    (not want_int and not isinstance(x, str)):
                raise SegmentError(f"{seg}: {at}[{i}]: id {x!r} does not fit the customer_id type")
        lits = ", ".join(str(x) if want_int else sql_str(x) for x in ids)
        return f"COALESCE(c.{self.src.col('customers', 'customer_id')} IN ({lits}), FALSE)"

    # -- customer attributes -----------------------------------------------

    @staticmethod
    def _is_integer_type(t: str) -> bool:
        return t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                     "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")

    @staticmethod
    def _kind_of(name: str, t: str) -> str:
        if t.endswith("[]"):
            return "multi"
        if t == "BOOLEAN":
            return "flag"
        if t == "VARCHAR" or name in ID_LIKE_CUSTOMER:
            return "categorical"
        if t == "DATE":
            return "date"
        if t.startswith("TIMESTAMP"):
            return "timestamp"
        if Translator._is_integer_type(t) or t.startswith("DECIMAL") or t in ("FLOAT", "DOUBLE"):
            return "numeric"
        return "unsupported"

    def attribute(self, name: Any, seg: str, at: str) -> Attr:
        types = self.types["customers"]
        if name == "age":
            if "birth_date" not in types:
                raise SegmentError(f"{seg}: {at}: age needs birth_date, which is missing")
            b = f"c.{self.src.col('customers', 'birth_date')}"
            D = self.as_of.day
            # whole years by month-day: a 29 Feb birthday turns older on 1 March
            sql = (f"({D.year} - year({b}) - CASE WHEN month({b}) * 100 + day({b}) > "
                   f"{D.month * 100 + D.day} THEN 1 ELSE 0 END)")
            return Attr("age", "numeric", sql, "BIGINT")
        if not isinstance(name, str) or name not in types or name in STORED_ONLY_CUSTOMER \
                or name == "customer_id":
            raise SegmentError(f"{seg}: {at}: unknown attribute {name!r}")
        t = types[name]
        kind = self._kind_of(name, t)
        if kind == "unsupported":
            raise SegmentError(f"{seg}: {at}: attribute {name!r} has unsupported type {t}")
        return Attr(name, kind, f"c.{self.src.col('customers', name)}", t)

    def attr_cond(self, c: dict, seg: str, path: str) -> str:
        """``{"attr": A, op: value, ...}``: all operator keys apply."""
        a = self.attribute(c["attr"], seg, f"{path}.attr")
        ops = [k for k in c if k != "attr"]
        if not ops:
            raise SegmentError(f"{seg}: {path}: no operator")
        parts = []
        for op in ops:
            at = f"{path}.{op}"
            parts.append(self.attr_op(a, op, c[op], seg, at))
        return "(" + " AND ".join(parts) + ")"

    def _values(self, a: Attr, vals: Any, seg: str, at: str) -> list[str]:
        """SQL literals for the values of an in/not_in/all_of list."""
        if not isinstance(vals, list):
            raise SegmentError(f"{seg}: {at}: expected a list")
        out = []
        for i, v in enumerate(vals):
            out.append(self._literal(a, v, seg, f"{at}[{i}]"))
        return out

    def _literal(self, a: Attr, v: Any, seg: str, at: str) -> str:
        k, t = a.kind, a.sql_type
        if k == "flag":
            if not isinstance(v, bool):
                raise SegmentError(f"{seg}: {at}: a flag takes true/false, got {v!r}")
            return "TRUE" if v else "FALSE"
        if k in ("categorical", "multi"):
            if t == "VARCHAR" or t == "VARCHAR[]":
                if not isinstance(v, str):
                    raise SegmentError(f"{seg}: {at}: expected a string, got {v!r}")
                return sql_str(v)
            if not (isinstance(v, int) and not isinstance(v, bool)):
                raise SegmentError(f"{seg}: {at}: expected an integer, got {v!r}")
            return str(v)
        if k == "numeric":
            if not is_number(v):
                raise SegmentError(f"{seg}: {at}: expected a number, got {v!r}")
            return sql_num(v)
        raise SegmentError(f"{seg}: {at}: not a value attribute")

    def attr_op(self, a: Attr, op: str, val: Any, seg: str, at: str) -> str:
        k = a.kind
        if op == "is_null":
            if not isinstance(val, bool):
                raise SegmentError(f"{seg}: {at}: is_null takes true/false")
            null = f"({a.sql} IS NULL OR len({a.sql}) = 0)" if k == "multi" else f"({a.sql} IS NULL)"
            return null if val else f"(NOT {null})"
        if op in ("in", "not_in"):
            if k in ("date", "timestamp"):
                if not isinstance(val, list):
                    raise SegmentError(f"{seg}: {at}: expected a list of dates")
                days = [parse_date(v, f"{at}[{i}]") for i, v in enumerate(val)]
                pos = "(" + " OR ".join(self.day_in_range(a, d, d) for d in days) + ")" if days else "FALSE"
            else:
                lits = self._values(a, val, seg, at)
                if not lits:
                    pos = "FALSE"
                elif k == "multi":
                    pos = f"COALESCE(list_has_any({a.sql}, [{', '.join(lits)}]), FALSE)"
                else:
                    pos = f"COALESCE({a.sql} IN ({', '.join(lits)}), FALSE)"
            return pos if op == "in" else f"(NOT {pos})"
        if op == "all_of":
            if k != "multi":
                raise SegmentError(f"{seg}: {at}: all_of needs a multi-valued attribute")
            lits = self._values(a, val, seg, at)
            return f"COALESCE(list_has_all({a.sql}, [{', '.join(lits)}]), FALSE)"
        if op in COMPARE_OPS or op == "between":
            if k == "numeric":
                if op == "between":
                    lo, hi = self._pair(val, seg, at, is_number)
                    return f"COALESCE({a.sql} BETWEEN {sql_num(lo)} AND {sql_num(hi)}, FALSE)"
                if not is_number(val):
                    raise SegmentError(f"{seg}: {at}: expected a number")
                return f"COALESCE({a.sql} {COMPARE_OPS[op]} {sql_num(val)}, FALSE)"
            if k in ("date", "timestamp"):
                one = dt.timedelta(days=1)
                if op == "between":
                    lo, hi = self._pair(val, seg, at, lambda x: isinstance(x, str))
                    return self.day_in_range(a, parse_date(lo, at + "[0]"), parse_date(hi, at + "[1]"))
                d = parse_date(val, at)
                rng = {"gt": (d + one, None), "gte": (d, None), "lt": (None, d - one),
                       "lte": (None, d), "eq": (d, d)}[op]
                return self.day_in_range(a, *rng)
            raise SegmentError(f"{seg}: {at}: {op} needs a numeric or date attribute")
        if op in ("window", "anniversary"):
            if k not in ("date", "timestamp"):
                raise SegmentError(f"{seg}: {at}: {op} needs a date attribute")
            if op == "window":
                lo, hi = window_days(val, self.as_of.day, at)
                return self.day_in_range(a, lo, hi)
            return self.anniversary(a, val, at)
        raise SegmentError(f"{seg}: {at}: unknown operator {op!r}")

    @staticmethod
    def _pair(val: Any, seg: str, at: str, ok) -> tuple[Any, Any]:
        if not isinstance(val, list) or len(val) != 2 or not all(ok(x) for x in val):
            raise SegmentError(f"{seg}: {at}: expected [x, y]")
        return val[0], val[1]

    # -- local days --------------------------------------------------------

    def _instant_literal(self, t: dt.datetime, sql_type: str) -> str:
        s = t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if "WITH TIME ZONE" in sql_type:
            return f"TIMESTAMPTZ '{s}+00'"
        return f"TIMESTAMP '{s}'"  # naive timestamps are UTC

    def local_date_sql(self, col: str, sql_type: str) -> str:
        """The local calendar date of a timestamp column, per row, with ICU."""
        z = sql_str(self.zone.name)
        if "WITH TIME ZONE" in sql_type:
            return f"CAST(timezone({z}, {col}) AS DATE)"
        return f"CAST(timezone({z}, timezone('UTC', {col})) AS DATE)"

    def day_bound(self, col: str, sql_type: str, op: str, day: dt.date) -> str:
        """``local day of col >= day`` (op '>=') or ``< day`` (op '<')."""
        if sql_type == "DATE":
            return f"{col} {op} DATE '{day.isoformat()}'"
        if self.tz_method == "ranges" and self.zone.monotone_at(day):
            return f"{col} {op} {self._instant_literal(self.zone.day_start(day), sql_type)}"
        return f"{self.local_date_sql(col, sql_type)} {op} DATE '{day.isoformat()}'"

    def day_range_sql(self, col: str, sql_type: str, lo: dt.date | None, hi: dt.date | None) -> str:
        """``lo <= local day of col <= hi`` (None = unbounded); NULL col gives NULL/FALSE."""
        if lo is not None and hi is not None and lo > hi:
            return "FALSE"
        parts = [f"{col} IS NOT NULL"]
        if lo is not None:
            parts.append(self.day_bound(col, sql_type, ">=", lo))
        if hi is not None and hi < dt.date.max:
            parts.append(self.day_bound(col, sql_type, "<", hi + dt.timedelta(days=1)))
        return "(" + " AND ".join(parts) + ")"

    def day_in_range(self, a: Attr, lo: dt.date | None, hi: dt.date | None) -> str:
        return f"COALESCE({self.day_range_sql(a.sql, a.sql_type, lo, hi)}, FALSE)"

    def anniversary(self, a: Attr, w: Any, at: str) -> str:
        mds = anniversary_month_days(w, self.as_of.day, at)
        if not mds:
            return "FALSE"
        if len(mds) == len(ALL_MONTH_DAYS):
            return f"({a.sql} IS NOT NULL)"
        if a.kind == "timestamp":
            # one ICU conversion per row: an IN list evaluates its left side once
            # (an OR of ranges would convert once per range)
            z = sql_str(self.zone.name)
            local = (f"timezone({z}, {a.sql})" if "WITH TIME ZONE" in a.sql_type
                     else f"timezone({z}, timezone('UTC', {a.sql}))")
            lits = ", ".join(f"'{m // 100:02d}-{m % 100:02d}'" for m in sorted(mds))
            return f"COALESCE(strftime({local}, '%m-%d') IN ({lits}), FALSE)"
        d = a.sql
        md = f"(month({d}) * 100 + day({d}))"
        ors = []
        for x, y in month_day_ranges(mds):
            ors.append(f"{md} = {x}" if x == y else f"{md} BETWEEN {x} AND {y}")
        return f"COALESCE(({' OR '.join(ors)}), FALSE)"

    # -- purchases ---------------------------------------------------------

    def purchased(self, p: Any, seg: str, at: str) -> str:
        """``{"purchased": {where, window, having}}`` as an IN / NOT IN sub-query."""
        if not isinstance(p, dict):
            raise SegmentError(f"{seg}: {at}: expected an object")
        unknown = set(p) - {"where", "window", "having"}
        if unknown:
            raise SegmentError(f"{seg}: {at}: unknown keys {sorted(unknown)}")
        kept = self.kept_lines(p.get("where", {}), p.get("window", "all_time"), seg, at)
        cid = f"c.{self.src.col('customers', 'customer_id')}"
        having = p.get("having") or {}
        if not isinstance(having, dict):
            raise SegmentError(f"{seg}: {at}.having: expected an object")
        # Both sides of IN are never NULL (customer_id IS NOT NULL on each side),
        # so IN / NOT IN are two-valued without COALESCE, which lets DuckDB
        # plan top-level conditions as semi joins.
        if not having:
            return f"{cid} IN (SELECT DISTINCT k.customer_id FROM ({kept}) AS k)"
        conds, zero_ok, needed = self.having(having, seg, f"{at}.having")
        if "orders" in needed:
            # distinct orders: aggregate per (customer, order) first, then per
            # customer (much faster in DuckDB than count(DISTINCT order_id))
            aggs = {"orders": "count(*) AS n_orders", "lines": "sum(k.n) AS n_lines",
                    "units": "COALESCE(sum(k.u), 0) AS n_units", "spend": "COALESCE(sum(k.s), 0) AS n_cents"}
            kept = (f"SELECT k.customer_id, count(*) AS n, sum(k.quantity) AS u, sum(k.cents) AS s "
                    f"FROM ({kept}) AS k GROUP BY k.customer_id, k.order_id")
        else:
            aggs = {"lines": "count(*) AS n_lines", "units": "COALESCE(sum(k.quantity), 0) AS n_units",
                    "spend": "COALESCE(sum(k.cents), 0) AS n_cents"}
        agg = (f"SELECT k.customer_id, {', '.join(aggs[m] for m in MEASURES if m in needed)} "
               f"FROM ({kept}) AS k GROUP BY k.customer_id")
        if zero_ok:
            # non-buyers (0 for every measure) qualify: drop the buyers that fail
            return f"{cid} NOT IN (SELECT a.customer_id FROM ({agg}) AS a WHERE NOT ({conds}))"
        return f"{cid} IN (SELECT a.customer_id FROM ({agg}) AS a WHERE {conds})"

    def having(self, h: dict, seg: str, at: str) -> tuple[str, bool, set[str]]:
        """SQL over the aggregate row, whether all-zero measures satisfy it, measures used."""
        cols = {"orders": "a.n_orders", "lines": "a.n_lines", "units": "a.n_units", "spend": "a.n_cents"}
        parts: list[str] = []
        zero_ok = True
        needed: set[str] = set()
        for m, spec in h.items():
            mat = f"{at}.{m}"
            if m not in MEASURES:
                raise SegmentError(f"{seg}: {mat}: unknown measure")
            if not isinstance(spec, dict) or not spec:
                raise SegmentError(f"{seg}: {mat}: expected comparisons")
            for op, x in spec.items():
                if op == "between":
                    lo, hi = self._pair(x, seg, f"{mat}.between", is_number)
                    cmps = [(">=", Decimal(lo)), ("<=", Decimal(hi))]
                elif op in COMPARE_OPS:
                    if not is_number(x):
                        raise SegmentError(f"{seg}: {mat}.{op}: expected a number")
                    cmps = [(COMPARE_OPS[op], Decimal(x))]
                else:
                    raise SegmentError(f"{seg}: {mat}.{op}: unknown comparison")
                for sym, v in cmps:
                    if m == "avg_order_value":
                        needed |= {"orders", "spend"}
                        zero_ok = False
                        # spend_cents / orders OP v*100, exact: cross-multiplied
                        v100 = v * 100
                        exp = v100.as_tuple().exponent
                        k = max(0, -exp) if isinstance(exp, int) else 0
                        n = int(v100.scaleb(k))
                        parts.append(f"(a.n_orders > 0 AND CAST(a.n_cents AS HUGEINT) * {10 ** k} "
                                     f"{sym} CAST(a.n_orders AS HUGEINT) * {n})")
                    else:
                        needed.add(m)
                        target = v * 100 if m == "spend" else v
                        parts.append(exact_cmp(cols[m], sym, target))
                        zero_ok = zero_ok and pycmp(Decimal(0), sym, target)
        return "(" + " AND ".join(parts) + ")", zero_ok, needed

    def _cents_sql(self, col: str, t: str) -> str:
        """Integer cents of a line total, rounded half away from zero; NULL -> 0."""
        if t.startswith("DECIMAL"):
            scale = int(t[t.index(",") + 1:-1])
            cents = f"CAST({col} * 100 AS BIGINT)" if scale <= 2 else f"CAST(round({col}, 2) * 100 AS BIGINT)"
        elif self._is_integer_type(t):
            cents = f"CAST({col} AS BIGINT) * 100"
        else:
            # float: the value as written (shortest round-trip decimal, so
            # 1.005 is 1.005, not 1.00499999...), rounded half away from zero
            cents = (f"CAST(round(CAST(CAST(CAST({col} AS DOUBLE) AS VARCHAR) AS DECIMAL(38,18)), 2)"
                     f" * 100 AS BIGINT)")
        return f"COALESCE({cents}, 0)"

    def kept_lines(self, where: Any, window: Any, seg: str, at: str) -> str:
        """SELECT customer_id, order_id, quantity, cents of the kept lines."""
        s = self.src
        lt, pt = self.types["order_lines"], self.types["products"]
        ot = lt if self.denormalized else self.types["orders"]
        o = "l" if self.denormalized else "o"
        L = lambda c: f"l.{s.col('order_lines', c)}"
        O = lambda c: f"{o}.{s.col('order_lines' if self.denormalized else 'orders', c)}"
        P = lambda c: f"p.{s.col('products', c)}"
        line_total_type = lt.get("line_total", "DECIMAL(12,2)")
        frm = f"{s.relations['order_lines']} AS l"
        if not self.denormalized:
            frm += f" JOIN {s.relations['orders']} AS o ON {L('order_id')} = {O('order_id')}"
        frm += f" JOIN {s.relations['products']} AS p ON {L('product_id')} = {P('product_id')}"
        conds = [f"{O('customer_id')} IS NOT NULL"]
        # where: all keys on the same line
        if not isinstance(where, dict):
            raise SegmentError(f"{seg}: {at}.where: expected an object")
        for key, val in where.items():
            kat = f"{at}.where.{key}"
            if key == "product_tag":
                if "tags" not in pt:
                    raise SegmentError(f"{seg}: {kat}: products have no tags column")
                col, t, multi = P("tags"), pt["tags"], True
            elif key in ORDER_ATTRS:
                cname = ORDER_ATTRS[key]
                if cname not in ot:
                    raise SegmentError(f"{seg}: {kat}: no {cname} column")
                col, t, multi = O(cname), ot[cname], False
            elif key in PRODUCT_ATTRS or (key in pt and key not in PRODUCT_NON_ATTR):
                if key not in pt:
                    raise SegmentError(f"{seg}: {kat}: products have no {key} column")
                col, t, multi = P(key), pt[key], pt[key].endswith("[]")
            else:
                raise SegmentError(f"{seg}: {kat}: unknown where key")
            negate = False
            if isinstance(val, dict):
                if list(val) != ["not_in"]:
                    raise SegmentError(f"{seg}: {kat}: expected a list or {{\"not_in\": [...]}}")
                val, negate = val["not_in"], True
            if not isinstance(val, list):
                raise SegmentError(f"{seg}: {kat}: expected a list of values")
            elem = t[:-2] if multi else t
            lits = []
            for i, v in enumerate(val):
                if elem == "VARCHAR":
                    ok = isinstance(v, str)
                elif elem == "BOOLEAN":
                    ok = isinstance(v, bool)
                else:
                    ok = isinstance(v, int) and not isinstance(v, bool)
                if not ok:
                    raise SegmentError(f"{seg}: {kat}[{i}]: value {v!r} does not fit type {elem}")
                lits.append(sql_str(v) if isinstance(v, str) else ("TRUE" if v is True else "FALSE" if v is False else str(v)))
            if not lits:
                pos = "FALSE"
            elif multi:
                pos = f"COALESCE(list_has_any({col}, [{', '.join(lits)}]), FALSE)"
            else:
                pos = f"COALESCE({col} IN ({', '.join(lits)}), FALSE)"
            conds.append(f"(NOT {pos})" if negate else pos)
        # window: the order's local day in [lo, hi], and not after the as-of
        lo, hi = window_days(window, self.as_of.day, f"{at}.window")
        if lo is not None and hi is not None and lo > hi:
            conds.append("FALSE")
        ts, ts_type = O("ordered_at"), ot["ordered_at"]
        if lo is not None:
            conds.append(self.day_bound(ts, ts_type, ">=", lo))
        if hi is not None and hi < self.as_of.day:
            conds.append(self.day_bound(ts, ts_type, "<", hi + dt.timedelta(days=1)))
        clip = self._instant_literal(self.as_of.clip, ts_type)
        conds.append(f"{ts} {'<=' if self.as_of.clip_inclusive else '<'} {clip}")
        return (f"SELECT {O('customer_id')} AS customer_id, {L('order_id')} AS order_id, "
                f"{L('quantity')} AS quantity, {self._cents_sql(L('line_total'), line_total_type)} AS cents "
                f"FROM {frm} WHERE {' AND '.join(conds)}")


# ---------------------------------------------------------------------------
# Command line: print the SQL of a segment (and optionally run it)

def connect(threads: int | None = None):
    """A DuckDB connection with UTC session time zone (and the thread count)."""
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Print (and optionally run) the DuckDB SQL of a segment.")
    ap.add_argument("--data", required=True)
    ap.add_argument("--segments", required=True)
    ap.add_argument("--code", required=True)
    ap.add_argument("--as-of", required=True)
    ap.add_argument("--timezone", default="UTC")
    ap.add_argument("--tz-method", default="ranges", choices=["ranges", "icu"])
    ap.add_argument("--run", action="store_true", help="also print the member count")
    args = ap.parse_args(argv)
    con = connect()
    src = open_source(con, args.data, "files")
    tr = Translator(con, src, args.timezone, args.as_of, load_catalog(args.segments), args.tz_method)
    sql = tr.segment_sql(args.code)
    print(sql)
    if args.run:
        print(con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
