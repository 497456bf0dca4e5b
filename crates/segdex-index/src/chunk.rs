//! The line store of one chunk of 2^16 customers: their orders and lines,
//! sorted by customer, as packed columns in one checked section.
//!
//! An order here is the group of lines of one customer that share order id,
//! instant and order attributes (in a denormalized lines table each line's
//! own values are used). A customer's groups of one order id are adjacent,
//! so counting distinct order ids is counting changes of key.
//!
//! Per order the chunk also keeps running totals of units and cents (and
//! `order_line_start` is already one of lines), so the measures of a run of
//! consecutive orders are two subtractions. The units and cents totals are
//! kept modulo 2^bits, with `bits` just enough for one customer's sum of
//! magnitudes: a run never spans two customers, so its difference modulo
//! 2^bits (sign-extended when the chunk has negative values) is exact, and
//! the columns take the bytes of the largest customer, not of the chunk.
//!
//! Instants are stored as offsets from the UTC midnight of the order's
//! local day number ([`day_origin_ns`]): within a day they order as the
//! instants do, and they span about a day, not years (3 bytes in whole
//! seconds instead of 4). In a chunk in time order the order keys are not
//! stored (every order is its own). When a chunk is
//! [`ChunkView::in_time_order`] (every customer's orders sorted by instant,
//! no order id split over two groups: order ids are numbered by their first
//! instant, so this fails only when one order id has lines at several
//! instants), a window plus the as-of clip is one such run, found by binary
//! search, and a purchase condition without a product filter needs no line
//! at all.

use crate::packed::{self, Packed};

/// The order attributes, as named in `where`.
pub const ORDER_ATTRS: [&str; 4] = ["store", "payment_method", "offer_code", "channel"];
/// The canonical columns they are read from.
pub const ORDER_ATTR_COLUMNS: [&str; 4] = ["store_id", "payment_method", "offer_code", "channel"];
/// The value id that stands for null in order attribute columns.
pub const NULL_VALUE: i64 = -1;

/// The instant an order's stored offset is counted from: the UTC midnight
/// of its local day number, in ns (wrapping, like the offset, so the sum is
/// exact for every instant an `i64` holds).
#[inline(always)]
pub fn day_origin_ns(day: i32) -> i64 {
    (day as i64).wrapping_mul(86_400_000_000_000)
}

/// How the difference of two running totals kept modulo 2^bits is read
/// back: the low `bits` of the wrapping difference, sign-extended when
/// the chunk's values can be negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wrap {
    /// 64 − bits (bits in 1..=64).
    shift: u32,
    signed: bool,
}

impl Wrap {
    /// The narrowest wrap that keeps every run sum of `per_line` exact,
    /// runs staying within one customer's lines (`customer_lines`).
    fn for_column(per_line: &[i64], customer_lines: impl Iterator<Item = (usize, usize)>) -> Self {
        let signed = per_line.iter().any(|&v| v < 0);
        // The largest sum of magnitudes of one customer's lines bounds the
        // magnitude of every run sum (the chunk's total fits i64).
        let bound = customer_lines
            .map(|(a, b)| {
                per_line
                    .get(a..b)
                    .unwrap_or(&[])
                    .iter()
                    .map(|v| v.unsigned_abs())
                    .sum::<u64>()
            })
            .max()
            .unwrap_or(0);
        let bits = (64 - bound.leading_zeros() + u32::from(signed)).clamp(1, 64);
        Self {
            shift: 64 - bits,
            signed,
        }
    }

    /// `value` modulo 2^bits, as stored.
    fn reduce(self, value: i64) -> i64 {
        ((value as u64) << self.shift >> self.shift) as i64
    }

    /// The run sum from two stored totals.
    #[inline(always)]
    fn diff(self, end: i64, start: i64) -> i64 {
        let d = (end as u64).wrapping_sub(start as u64) << self.shift;
        if self.signed {
            (d as i64) >> self.shift
        } else {
            (d >> self.shift) as i64
        }
    }

    /// As stored in the flags column: bits, and 256 when signed.
    fn code(self) -> i64 {
        i64::from(64 - self.shift) | (i64::from(self.signed) << 8)
    }

    /// From [`Self::code`]; `None` if it is not one.
    fn from_code(code: i64) -> Option<Self> {
        let bits = u32::try_from(code & 0xff).ok()?;
        if !(1..=64).contains(&bits) || code >> 9 != 0 {
            return None;
        }
        Some(Self {
            shift: 64 - bits,
            signed: code & 256 != 0,
        })
    }
}

const MAGIC: &[u8; 8] = b"SGDXCHK4";
const COLUMNS: usize = 15;
/// Bits of the flags column's first value (the second and third are the
/// [`Wrap`]s of the units and cents totals).
const FLAG_IN_TIME_ORDER: i64 = 2;
/// Values of the flags column.
const FLAG_VALUES: usize = 3;
/// How many customers ahead [`ChunkView::prefetching`] loads a
/// customer's order-index entry, its orders' ends, and its lines (20, 12
/// and 6 measured no better).
const PREFETCH_CUSTOMER: usize = 12;
const PREFETCH_ORDERS: usize = 8;
const PREFETCH_LINES: usize = 4;
/// Candidates are sparse, and hinted, when at most one customer in this
/// many is one (at 1M, 4, 8 and 16 measured alike; 1 and 32 slower).
const SPARSE: usize = 8;
// Column numbers.
const C_CUST_START: usize = 0;
const C_DAY: usize = 1;
const C_NS: usize = 2;
const C_KEY: usize = 3;
const C_ATTR: usize = 4;
const C_LINE_START: usize = 8;
const C_CUM_UNITS: usize = 9;
const C_CUM_CENTS: usize = 10;
const C_LINE_PRODUCT: usize = 11;
const C_LINE_QTY: usize = 12;
const C_LINE_CENTS: usize = 13;
const C_FLAGS: usize = 14;

/// The per-line columns of a chunk (see [`ChunkView::line_columns`]).
#[derive(Debug, Clone, Copy)]
pub struct LineColumns<'a> {
    /// Product number of each line.
    pub product: Packed<'a>,
    /// Quantity of each line.
    pub qty: Packed<'a>,
    /// Cents of each line.
    pub cents: Packed<'a>,
}

/// Builds one chunk's section bytes.
#[derive(Debug, Default, Clone)]
pub struct ChunkWriter {
    /// Index of each customer's first order (len = customers + 1 when done).
    pub cust_start: Vec<i64>,
    /// Local day number of each order.
    pub order_day: Vec<i64>,
    /// Instant (ns since epoch, UTC) of each order (stored as an offset
    /// from [`day_origin_ns`] of its day).
    pub order_ns: Vec<i64>,
    /// Dense id of each order's external order id (not stored when the
    /// chunk is in time order).
    pub order_key: Vec<i64>,
    /// Value ids of the order attributes ([`NULL_VALUE`] = null).
    pub order_attr: [Vec<i64>; 4],
    /// Index of each order's first line (len = orders + 1 when done).
    pub order_line_start: Vec<i64>,
    /// Product number of each line.
    pub line_product: Vec<i64>,
    /// Quantity of each line.
    pub line_qty: Vec<i64>,
    /// line_total in cents of each line.
    pub line_cents: Vec<i64>,
}

impl ChunkWriter {
    /// Whether every customer's orders have non-decreasing instants and no
    /// two adjacent orders share an order id.
    fn in_time_order(&self) -> bool {
        self.cust_start.windows(2).all(|w| {
            let (a, b) = (w[0] as usize, w[1] as usize);
            (a + 1..b).all(|i| {
                self.order_ns[i - 1] <= self.order_ns[i]
                    && self.order_key[i - 1] != self.order_key[i]
            })
        })
    }

    /// Running totals per order of a per-line column (len = orders + 1);
    /// `None` if one does not fit 64 bits.
    fn running(&self, per_line: &[i64]) -> Option<Vec<i64>> {
        let mut out = Vec::with_capacity(self.order_line_start.len());
        let mut acc = 0i64;
        out.push(0);
        for w in self.order_line_start.windows(2) {
            // (Inconsistent offsets sum nothing; parse rejects them anyway.)
            let run = per_line.get(w[0] as usize..w[1] as usize).unwrap_or(&[]);
            for &v in run {
                acc = acc.checked_add(v)?;
            }
            out.push(acc);
        }
        Some(out)
    }
}

impl ChunkWriter {
    /// Encodes the chunk; an error if the magnitudes of the chunk's
    /// quantities or cents add up past `i64::MAX` (then every sum of some of
    /// them, as evaluation forms, fits `i64`).
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let overflow = |what: &str| {
            format!(
                "the {what} of one chunk of 65,536 customers add up past 64 bits; these values are not plausible line data"
            )
        };
        // Bounding the sum of magnitudes bounds every partial sum a query
        // can form, so evaluation adds in i64 exactly.
        let fits = |v: &[i64]| {
            v.iter()
                .try_fold(0u64, |acc, x| acc.checked_add(x.unsigned_abs()))
                .is_some_and(|t| t <= i64::MAX as u64)
        };
        if !fits(&self.line_qty) {
            return Err(overflow("quantities"));
        }
        if !fits(&self.line_cents) {
            return Err(overflow("line totals"));
        }
        let mut cum_units = self
            .running(&self.line_qty)
            .ok_or_else(|| overflow("quantities"))?;
        let mut cum_cents = self
            .running(&self.line_cents)
            .ok_or_else(|| overflow("line totals"))?;
        let in_time_order = self.in_time_order();
        // Each customer's lines, the extent of every run a query sums.
        let customer_lines = || {
            self.cust_start.windows(2).map(|w| {
                let line = |o: i64| {
                    self.order_line_start
                        .get(o as usize)
                        .map_or(0, |&l| l as usize)
                };
                (line(w[0]), line(w[1]))
            })
        };
        let units_wrap = Wrap::for_column(&self.line_qty, customer_lines());
        let cents_wrap = Wrap::for_column(&self.line_cents, customer_lines());
        for (cum, wrap) in [(&mut cum_units, units_wrap), (&mut cum_cents, cents_wrap)] {
            for v in cum.iter_mut() {
                *v = wrap.reduce(*v);
            }
        }
        let ns_offsets: Vec<i64> = self
            .order_ns
            .iter()
            .zip(&self.order_day)
            .map(|(&ns, &day)| ns.wrapping_sub(day_origin_ns(day as i32)))
            .collect();
        let no_keys;
        let keys = if in_time_order {
            no_keys = vec![0; self.order_key.len()];
            &no_keys
        } else {
            &self.order_key
        };
        let flags = vec![
            FLAG_IN_TIME_ORDER * in_time_order as i64,
            units_wrap.code(),
            cents_wrap.code(),
        ];
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        for col in [
            &self.cust_start,
            &self.order_day,
            &ns_offsets,
            keys,
            &self.order_attr[0],
            &self.order_attr[1],
            &self.order_attr[2],
            &self.order_attr[3],
            &self.order_line_start,
            &cum_units,
            &cum_cents,
            &self.line_product,
            &self.line_qty,
            &self.line_cents,
            &flags,
        ] {
            packed::encode(col, &mut out);
        }
        Ok(out)
    }
}

/// The candidates of [`ChunkView::prefetching`], each given after the
/// hints for those a few ahead of it.
pub struct Prefetching<'l, 'a> {
    view: ChunkView<'a>,
    locals: &'l [usize],
    next: usize,
    hinted: bool,
}

impl Iterator for Prefetching<'_, '_> {
    type Item = usize;

    #[inline(always)]
    fn next(&mut self) -> Option<usize> {
        let k = self.next;
        let c = *self.locals.get(k)?;
        if self.hinted {
            self.view.hint_ahead(self.locals, k);
        }
        self.next = k + 1;
        Some(c)
    }
}

/// Whether candidates `locals` (customer numbers, ascending) are sparse:
/// at most one customer in 8 between the first and the last is
/// one. Loops over sparse candidates wait on memory for each (see
/// [`ChunkView::prefetching`] and [`ChunkView::window_run_compared`]).
pub fn sparse(locals: &[usize]) -> bool {
    let span = match (locals.first(), locals.last()) {
        (Some(a), Some(b)) => b - a + 1,
        _ => 0,
    };
    locals.len() * SPARSE <= span
}

/// Most orders of one customer [`ChunkView::window_run_compared`]
/// compares at once.
pub const DAY_LANES: usize = 16;

/// For each of the first [`DAY_LANES`] stored two-byte values of `bytes`
/// (fewer if it is shorter; the missing read as 0), whether it is at least
/// each of `at` (0 ..= 2^16), as a mask per threshold: bit `k` for value
/// `k`.
#[inline(always)]
fn stored_days_at_least(bytes: &[u8], at: [u32; 3]) -> [u32; 3] {
    let mut copy = [0u8; 2 * DAY_LANES];
    let lanes: &[u8; 2 * DAY_LANES] = match bytes.first_chunk() {
        Some(b) => b,
        None => {
            copy[..bytes.len()].copy_from_slice(bytes);
            &copy
        }
    };
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmplt_epi16, _mm_loadu_si128, _mm_movemask_epi8, _mm_packs_epi16,
            _mm_set1_epi16, _mm_xor_si128,
        };
        // SAFETY: SSE2 is part of every x86_64 target; the loads read 16
        // bytes each at offsets 0 and 16 of a 32-byte array (unaligned
        // loads allow any address).
        unsafe {
            let p = lanes.as_ptr().cast::<__m128i>();
            // SSE2 compares 16-bit lanes as signed: flip the top bit of
            // both sides to compare them as unsigned.
            let bias = _mm_set1_epi16(i16::MIN);
            let a = _mm_xor_si128(_mm_loadu_si128(p), bias);
            let b = _mm_xor_si128(_mm_loadu_si128(p.add(1)), bias);
            at.map(|t| {
                if t > u32::from(u16::MAX) {
                    return 0;
                }
                let t = _mm_set1_epi16((t as u16 ^ 0x8000) as i16);
                let below = _mm_packs_epi16(_mm_cmplt_epi16(a, t), _mm_cmplt_epi16(b, t));
                !(_mm_movemask_epi8(below) as u32) & 0xffff
            })
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        at.map(|t| {
            lanes
                .chunks_exact(2)
                .enumerate()
                .filter(|(_, v)| u32::from(u16::from_le_bytes([v[0], v[1]])) >= t)
                .fold(0, |m, (k, _)| m | 1 << k)
        })
    }
}

/// One chunk's line store, read in place.
#[derive(Debug, Clone, Copy)]
pub struct ChunkView<'a> {
    cols: [Packed<'a>; COLUMNS],
    customers: usize,
    orders: usize,
    lines: usize,
    in_time_order: bool,
    units_wrap: Wrap,
    cents_wrap: Wrap,
}

/// The as-of instant a window is clipped at: orders on its local `day` (or
/// later) whose instant is after `ns` are cut. Orders on earlier days are
/// before it, since a day's instants follow the previous day's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clip {
    /// The local day of the as-of instant.
    pub day: i32,
    /// The as-of instant (ns).
    pub ns: i64,
}

/// A window of days and the as-of clip as one chunk stores days (see
/// [`ChunkView::stored_window`]).
#[derive(Debug, Clone, Copy)]
pub struct StoredWindow {
    lo: i32,
    hi: i32,
    clip: Option<Clip>,
    /// The stored values of `lo`, of `hi + 1` and of the clip's day, for a
    /// day column of two-byte values; `None` for other columns.
    at: Option<[u32; 3]>,
}

/// The first `i` of `range` where `pred` is false, for a `pred` that holds
/// on a prefix of the range. Short ranges (most customers have a few
/// orders) are counted without branches; longer ones are bisected.
#[inline(always)]
fn first_where_not(range: std::ops::Range<usize>, pred: impl Fn(usize) -> bool) -> usize {
    const LINEAR: usize = 16;
    let (mut lo, mut hi) = (range.start, range.end);
    while hi - lo > LINEAR {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo + (lo..hi).map(|i| usize::from(pred(i))).sum::<usize>()
}

/// Lines, units and cents of a run of orders.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunTotals {
    /// Number of lines.
    pub lines: i64,
    /// Sum of quantity.
    pub units: i64,
    /// Sum of line_total in cents.
    pub cents: i64,
}

impl RunTotals {
    /// Every total asked for (see [`ChunkView::run_totals_of`]).
    pub const ALL: RunTotals = RunTotals {
        lines: 1,
        units: 1,
        cents: 1,
    };
}

impl<'a> ChunkView<'a> {
    /// Parses a chunk section; `None` if its structure is inconsistent.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        Self::parse_with(bytes, true)
    }

    /// Parses a chunk section; with `check`, also verifies that its offsets
    /// are monotone and in range (O(size); done once per chunk by
    /// [`crate::Index`]).
    pub fn parse_with(bytes: &'a [u8], check: bool) -> Option<Self> {
        let mut rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let mut cols = Vec::with_capacity(COLUMNS);
        for _ in 0..COLUMNS {
            let (p, r) = Packed::parse(rest)?;
            cols.push(p);
            rest = r;
        }
        let cols: [Packed<'a>; COLUMNS] = cols.try_into().ok()?;
        let customers = cols[C_CUST_START].len().checked_sub(1)?;
        let orders = cols[C_DAY].len();
        let lines = cols[C_LINE_PRODUCT].len();
        if cols[C_NS..C_LINE_START].iter().any(|c| c.len() != orders)
            || [C_LINE_START, C_CUM_UNITS, C_CUM_CENTS]
                .iter()
                .any(|&c| cols[c].len() != orders + 1)
            || cols[C_LINE_QTY].len() != lines
            || cols[C_LINE_CENTS].len() != lines
            || cols[C_FLAGS].len() != FLAG_VALUES
        {
            return None;
        }
        // Offsets must be monotone and in range, so evaluation cannot index
        // outside the columns.
        let ends_ok =
            |c: usize, n: usize, end: usize| cols[c].get(0) == 0 && cols[c].get(n) as usize == end;
        if !ends_ok(C_CUST_START, customers, orders) || !ends_ok(C_LINE_START, orders, lines) {
            return None;
        }
        let monotone = |c: &Packed| (1..c.len()).all(|i| c.get(i - 1) <= c.get(i));
        if check && (!monotone(&cols[C_CUST_START]) || !monotone(&cols[C_LINE_START])) {
            return None;
        }
        let flags = cols[C_FLAGS].get(0);
        let in_time_order = flags & FLAG_IN_TIME_ORDER != 0;
        let units_wrap = Wrap::from_code(cols[C_FLAGS].get(1))?;
        let cents_wrap = Wrap::from_code(cols[C_FLAGS].get(2))?;
        let view = Self {
            cols,
            customers,
            orders,
            lines,
            in_time_order,
            units_wrap,
            cents_wrap,
        };
        // The flag chooses binary searches; a wrong flag would give wrong
        // answers, so it is checked with the offsets. (The running totals
        // index nothing, and in time order no key is stored to contradict
        // it; the section checksum covers both.)
        if check && in_time_order {
            let ok = (0..customers).all(|c| {
                let r = view.order_range(c);
                (r.start + 1..r.end).all(|i| {
                    view.order_ns(i - 1) <= view.order_ns(i)
                        && view.order_day(i - 1) <= view.order_day(i)
                })
            });
            if !ok {
                return None;
            }
        }
        Some(view)
    }

    /// Whether each customer's orders are sorted by instant (hence by day)
    /// and no order id spans two adjacent orders: then a window clipped at
    /// the as-of instant is one run of orders, and the number of distinct
    /// orders in a run is its length.
    #[inline]
    pub fn in_time_order(&self) -> bool {
        self.in_time_order
    }

    /// The first order of `orders` whose instant is after `ns` (requires
    /// [`Self::in_time_order`]).
    #[inline]
    pub fn first_order_after_ns(&self, orders: std::ops::Range<usize>, ns: i64) -> usize {
        first_where_not(orders, |i| self.order_ns(i) <= ns)
    }

    /// `lo..=hi` and `clip` as this chunk stores days, for
    /// [`Self::window_run_compared`]: the thresholds are worked out once a
    /// chunk, not once a customer.
    pub fn stored_window(&self, lo: i32, hi: i32, clip: Option<Clip>) -> StoredWindow {
        let day = self.cols[C_DAY];
        // Stored days are `day - base`, in 0..2^16; thresholds outside
        // that range are clamped, 2^16 meaning "none".
        let stored = |d: i32| (i64::from(d) - day.base()).clamp(0, 1 << 16) as u32;
        let at = (day.width() == 2 && day.scale() == 1).then(|| {
            [
                stored(lo),
                stored(hi.saturating_add(1)),
                clip.map_or(1 << 16, |c| stored(c.day)),
            ]
        });
        StoredWindow { lo, hi, clip, at }
    }

    /// [`Self::window_run`] for dense candidates (an empty run may start
    /// anywhere in `orders`), of the window `w` from
    /// [`Self::stored_window`]. A customer of at most twice [`DAY_LANES`]
    /// orders whose days are stored in two bytes (the usual case) is done
    /// with vector compares of all its days at once and no branch on them:
    /// whether a customer's orders straddle a window's edge is as good as
    /// random, and the searches' branches cost more than the compares.
    /// The compares read 32 bytes from the customer's first day (64 for
    /// more than 16 orders), past its own when it has fewer orders (the
    /// lanes past them are masked off): for scattered customers that is often
    /// one more cache line to wait for, so sparse candidates take
    /// [`Self::window_run`].
    #[inline(always)]
    pub fn window_run_compared(
        &self,
        orders: std::ops::Range<usize>,
        w: &StoredWindow,
    ) -> std::ops::Range<usize> {
        let n = orders.len();
        if let Some(at) = w.at
            && n <= 2 * DAY_LANES
        {
            let day = self.cols[C_DAY];
            let bytes = day.stored_bytes(orders.start..day.len());
            let masks = stored_days_at_least(bytes, at).map(u64::from);
            // A customer of up to twice as many orders takes two compares,
            // not the searches' branches.
            let [from_lo, after_hi, late] = if n > DAY_LANES {
                let next = stored_days_at_least(&bytes[2 * DAY_LANES..], at);
                [0, 1, 2].map(|k| masks[k] | u64::from(next[k]) << DAY_LANES)
            } else {
                masks
            };
            let lanes = (1u64 << n) - 1;
            // Days ascend: the orders before `lo` are a prefix, those after
            // `hi` a suffix.
            let start = (from_lo & lanes | 1 << n).trailing_zeros() as usize;
            let mut end = (after_hi & lanes | 1 << n).trailing_zeros() as usize;
            // Orders on the clip's day or later, not already cut: their
            // instants decide (the first after the clip ends the run).
            let mut late = late & lanes & !after_hi;
            if let Some(c) = w.clip {
                while late != 0 {
                    let k = late.trailing_zeros() as usize;
                    if self.order_ns(orders.start + k) > c.ns {
                        end = end.min(k);
                        break;
                    }
                    late &= late - 1;
                }
            }
            return orders.start + start..orders.start + end.max(start);
        }
        self.window_run(orders, w.lo, w.hi, w.clip)
    }

    /// The run of `orders` (one customer's, requires [`Self::in_time_order`])
    /// whose day is in `lo..=hi` and, with `clip`, whose instant is not
    /// after it. The ends are tested before any search, since a window
    /// usually keeps all of a customer's orders or none; the instants are
    /// read only when the last order is on the clip's day or later.
    #[inline]
    pub fn window_run(
        &self,
        orders: std::ops::Range<usize>,
        lo: i32,
        hi: i32,
        clip: Option<Clip>,
    ) -> std::ops::Range<usize> {
        let (mut start, mut end) = (orders.start, orders.end);
        if start < end && self.order_day(start) < lo {
            start = self.first_order_from(start..end, lo);
        }
        if start < end && self.order_day(end - 1) > hi {
            end = self.first_order_from(start..end, hi + 1);
        }
        if let Some(c) = clip
            && start < end
            && self.order_day(end - 1) >= c.day
            && self.order_ns(end - 1) > c.ns
        {
            end = self.first_order_after_ns(start..end, c.ns);
        }
        start..end
    }

    /// Lines, units and cents of the orders `run`, from running totals.
    /// The run is some of one customer's orders (the totals are exact only
    /// within a customer, see the module notes).
    #[inline(always)]
    pub fn run_totals(&self, run: std::ops::Range<usize>) -> RunTotals {
        self.run_totals_of(run, RunTotals::ALL)
    }

    /// [`Self::run_totals`] of only the totals `which` has non-zero (the
    /// others are 0 and their columns are not read).
    #[inline(always)]
    pub fn run_totals_of(&self, run: std::ops::Range<usize>, which: RunTotals) -> RunTotals {
        let ends = |c: usize| (self.cols[c].get(run.end), self.cols[c].get(run.start));
        let mut t = RunTotals::default();
        if which.lines != 0 {
            let (end, start) = ends(C_LINE_START);
            t.lines = end - start;
        }
        if which.units != 0 {
            let (end, start) = ends(C_CUM_UNITS);
            t.units = self.units_wrap.diff(end, start);
        }
        if which.cents != 0 {
            let (end, start) = ends(C_CUM_CENTS);
            t.cents = self.cents_wrap.diff(end, start);
        }
        t
    }

    /// The order numbers of the chunk's `local`-th customer.
    #[inline]
    pub fn order_range(&self, local: usize) -> std::ops::Range<usize> {
        self.cols[C_CUST_START].get(local) as usize..self.cols[C_CUST_START].get(local + 1) as usize
    }

    /// `locals` (customer numbers, ascending) in turn, having asked the
    /// CPU to load, a few customers ahead, what the loop reads of them:
    /// first the customer's entry in the order index, then (that entry
    /// loaded) the ends of its order columns, then (those loaded) its
    /// lines. Only for loops that read lines (`reads_lines`) over sparse
    /// candidates: those are scattered through a chunk larger than the
    /// cache, and each one's reads depend on the last (customer → orders
    /// → lines), so that without the hints each waits on memory three
    /// times in a row. Dense candidates are read nearly in sequence, which
    /// the CPU's own prefetcher follows, and loops over orders alone do
    /// too little a customer for the hints to pay: they get the plain
    /// sequence.
    #[inline(always)]
    pub fn prefetching<'l>(&self, locals: &'l [usize], reads_lines: bool) -> Prefetching<'l, 'a> {
        let hinted = reads_lines && sparse(locals);
        Prefetching {
            view: *self,
            locals,
            next: 0,
            hinted,
        }
    }

    /// The hints [`Self::prefetching`] gives before candidate `k`.
    #[inline(always)]
    fn hint_ahead(&self, locals: &[usize], k: usize) {
        if let Some(&x) = locals.get(k + PREFETCH_CUSTOMER) {
            self.cols[C_CUST_START].prefetch(x);
        }
        if let Some(&x) = locals.get(k + PREFETCH_ORDERS) {
            let orders = self.order_range(x);
            for col in [C_DAY, C_LINE_START] {
                self.cols[col].prefetch(orders.start);
                self.cols[col].prefetch(orders.end);
            }
        }
        if let Some(&x) = locals.get(k + PREFETCH_LINES) {
            let lines = self.lines_of_orders(self.order_range(x));
            for col in [C_LINE_PRODUCT, C_LINE_QTY, C_LINE_CENTS] {
                self.cols[col].prefetch(lines.start);
                self.cols[col].prefetch(lines.end.saturating_sub(1).max(lines.start));
            }
        }
    }

    /// The first order of `orders` whose day is `day` or later (requires
    /// [`Self::in_time_order`]).
    #[inline]
    pub fn first_order_from(&self, orders: std::ops::Range<usize>, day: i32) -> usize {
        first_where_not(orders, |i| self.order_day(i) < day)
    }

    /// Local day number of order `i`.
    #[inline(always)]
    pub fn order_day(&self, i: usize) -> i32 {
        self.cols[C_DAY].get(i) as i32
    }

    /// Instant (ns) of order `i`.
    #[inline(always)]
    pub fn order_ns(&self, i: usize) -> i64 {
        day_origin_ns(self.order_day(i)).wrapping_add(self.cols[C_NS].get(i))
    }

    /// Dense order key of order `i`: meaningful only when the chunk is not
    /// [`Self::in_time_order`] (then every order is its own and 0 is read).
    #[inline(always)]
    pub fn order_key(&self, i: usize) -> i64 {
        self.cols[C_KEY].get(i)
    }

    /// The column of order attribute `a` (value ids, [`NULL_VALUE`] for
    /// null), for loops that read it without decoding.
    #[inline(always)]
    pub fn order_attr_column(&self, a: usize) -> Packed<'a> {
        self.cols[C_ATTR + a]
    }

    /// Value id of order attribute `a` of order `i`.
    #[inline(always)]
    pub fn order_attr(&self, a: usize, i: usize) -> i64 {
        self.cols[C_ATTR + a].get(i)
    }

    /// The line numbers of order `i`.
    #[inline(always)]
    pub fn line_range(&self, i: usize) -> std::ops::Range<usize> {
        self.lines_of_orders(i..i + 1)
    }

    /// The line numbers of the orders `run` (their lines are contiguous).
    #[inline(always)]
    pub fn lines_of_orders(&self, run: std::ops::Range<usize>) -> std::ops::Range<usize> {
        self.cols[C_LINE_START].get(run.start) as usize
            ..self.cols[C_LINE_START].get(run.end) as usize
    }

    /// The product, quantity and cents columns of the lines, for loops
    /// that read many lines (a copy keeps them in registers).
    #[inline(always)]
    pub fn line_columns(&self) -> LineColumns<'a> {
        LineColumns {
            product: self.cols[C_LINE_PRODUCT],
            qty: self.cols[C_LINE_QTY],
            cents: self.cols[C_LINE_CENTS],
        }
    }

    /// Product number of line `j`.
    #[inline(always)]
    pub fn line_product(&self, j: usize) -> u32 {
        self.cols[C_LINE_PRODUCT].get(j) as u32
    }

    /// Quantity of line `j`.
    #[inline(always)]
    pub fn line_qty(&self, j: usize) -> i64 {
        self.cols[C_LINE_QTY].get(j)
    }

    /// Cents of line `j`.
    #[inline(always)]
    pub fn line_cents(&self, j: usize) -> i64 {
        self.cols[C_LINE_CENTS].get(j)
    }

    /// Customers in the chunk.
    pub fn customers(&self) -> usize {
        self.customers
    }

    /// Orders in the chunk.
    pub fn orders(&self) -> usize {
        self.orders
    }

    /// Lines in the chunk.
    pub fn lines(&self) -> usize {
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_where_not_counts_short_ranges_and_bisects_long_ones() {
        for len in [0usize, 1, 2, 15, 16, 17, 40, 1000] {
            for cut in 0..=len {
                let got = first_where_not(3..3 + len, |i| i < 3 + cut);
                assert_eq!(got, 3 + cut, "len {len}, cut {cut}");
            }
        }
    }

    #[test]
    fn round_trip_and_rejects_inconsistent_offsets() {
        let w = ChunkWriter {
            cust_start: vec![0, 0, 2],
            order_day: vec![100, 101],
            order_ns: vec![5, 6],
            order_key: vec![0, 1],
            order_attr: [vec![0, 1], vec![-1, -1], vec![-1, 2], vec![0, 0]],
            order_line_start: vec![0, 1, 3],
            line_product: vec![9, 7, 9],
            line_qty: vec![1, 2, 3],
            line_cents: vec![100, -50, 0],
        };
        let bytes = w.encode().unwrap();
        let v = ChunkView::parse(&bytes).unwrap();
        assert_eq!(v.customers(), 2);
        assert_eq!(v.order_range(0).len(), 0);
        let orders = v.order_range(1);
        assert_eq!(orders, 0..2);
        assert_eq!(v.order_day(1), 101);
        assert_eq!(v.order_attr(2, 1), 2);
        assert_eq!(v.order_attr(1, 0), NULL_VALUE);
        let lines: Vec<(u32, i64, i64)> = v
            .line_range(1)
            .map(|j| (v.line_product(j), v.line_qty(j), v.line_cents(j)))
            .collect();
        assert_eq!(lines, vec![(7, 2, -50), (9, 3, 0)]);
        assert!(v.in_time_order());
        let t = |lines, units, cents| RunTotals {
            lines,
            units,
            cents,
        };
        assert_eq!(v.run_totals(0..2), t(3, 6, 50));
        assert_eq!(v.run_totals(1..2), t(2, 5, -50));
        assert_eq!(v.run_totals(1..1), t(0, 0, 0));
        assert_eq!(v.first_order_after_ns(0..2, 4), 0);
        assert_eq!(v.first_order_after_ns(0..2, 5), 1);
        assert_eq!(v.first_order_after_ns(0..2, 6), 2);
        assert_eq!(v.window_run(0..2, 0, 200, None), 0..2);
        assert_eq!(v.window_run(0..2, 101, 200, None), 1..2);
        assert_eq!(v.window_run(0..2, 0, 100, None), 0..1);
        assert_eq!(v.window_run(0..2, 102, 200, None), 2..2);
        assert_eq!(
            v.window_run(0..2, 0, 200, Some(Clip { day: 101, ns: 5 })),
            0..1
        );
        assert_eq!(
            v.window_run(0..2, 0, 200, Some(Clip { day: 100, ns: 4 })),
            0..0
        );
        // The last order is before the clip's day: its instant is not read.
        assert_eq!(
            v.window_run(0..2, 0, 200, Some(Clip { day: 102, ns: 0 })),
            0..2
        );

        // One order id in two groups: not in time order.
        let mut split = ChunkWriter { ..w.clone() };
        split.order_key = vec![0, 0];
        let sv_bytes = split.encode().unwrap();
        let sv = ChunkView::parse(&sv_bytes).unwrap();
        assert!(!sv.in_time_order());
        // Instants out of order (same day): not in time order either.
        let mut late = ChunkWriter { ..w.clone() };
        late.order_ns = vec![6, 5];
        let lv_bytes = late.encode().unwrap();
        assert!(!ChunkView::parse(&lv_bytes).unwrap().in_time_order());

        let mut bad = w;
        bad.order_line_start = vec![0, 4, 3];
        assert!(ChunkView::parse(&bad.encode().unwrap()).is_none());
        assert!(ChunkView::parse(&bytes[..bytes.len() - 8]).is_none());
    }

    #[test]
    fn prefetching_gives_every_candidate_once_in_order() {
        let w = random_chunk(7, 500, |x| (x % 5000) as i64);
        let bytes = w.encode().unwrap();
        let v = ChunkView::parse(&bytes).unwrap();
        // Sparse (hinted), dense (not hinted), short and empty lists.
        for step in [1usize, 3, 9, 40, 499] {
            let locals: Vec<usize> = (0..500).step_by(step).collect();
            let it = v.prefetching(&locals, true);
            assert_eq!(it.hinted, step >= SPARSE, "step {step}");
            assert_eq!(it.collect::<Vec<_>>(), locals, "step {step}");
            assert!(!v.prefetching(&locals, false).hinted);
        }
        assert_eq!(v.prefetching(&[], true).count(), 0);
    }

    /// A chunk of `customers` customers with pseudo-random orders and lines
    /// (`cents` picks each line's cents from a random `u64`), their orders
    /// up to about two days apart.
    fn random_chunk(seed: u64, customers: usize, cents: impl Fn(u64) -> i64) -> ChunkWriter {
        random_chunk_apart(seed, customers, 5, cents, |r| (r % 200_000) as i64)
    }

    /// [`random_chunk`] with fewer than `orders` orders a customer, the
    /// seconds between them picked by `apart` from a random `u64`.
    fn random_chunk_apart(
        seed: u64,
        customers: usize,
        orders: u64,
        cents: impl Fn(u64) -> i64,
        apart: impl Fn(u64) -> i64,
    ) -> ChunkWriter {
        let mut x = seed;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 11
        };
        let mut w = ChunkWriter::default();
        let mut key = 0;
        for _ in 0..customers {
            w.cust_start.push(w.order_day.len() as i64);
            let mut ns = 1_700_000_000_000_000_000 + (next() % 1000) as i64 * 1_000_000_000;
            for _ in 0..next() % orders {
                ns += apart(next()) * 1_000_000_000;
                w.order_line_start.push(w.line_product.len() as i64);
                w.order_day.push(ns.div_euclid(86_400_000_000_000) - 1);
                w.order_ns.push(ns);
                w.order_key.push(key);
                key += 1;
                for a in &mut w.order_attr {
                    a.push(NULL_VALUE);
                }
                for _ in 0..1 + next() % 4 {
                    w.line_product.push((next() % 50) as i64);
                    w.line_qty.push((next() % 30) as i64);
                    w.line_cents.push(cents(next()));
                }
            }
        }
        w.cust_start.push(w.order_day.len() as i64);
        w.order_line_start.push(w.line_product.len() as i64);
        w
    }

    #[test]
    fn window_runs_by_compares_are_the_runs_searches_find() {
        const DAY: i64 = 86_400;
        // Days of two-byte width (compared), of one byte, and two days
        // apart (scale 2; both searched); customers of up to 39 orders.
        // (seed, seconds apart from a random u64, expected day scale and width)
        type Case = (u64, fn(u64) -> i64, (i64, usize));
        let cases: [Case; 3] = [
            (5, |r| (r % (60 * DAY as u64)) as i64, (1, 2)),
            (3, |r| (r % 200_000) as i64, (1, 1)),
            (9, |r| (r % 300) as i64 * 2 * DAY, (2, 2)),
        ];
        for (seed, apart, (scale, width)) in cases {
            let w = random_chunk_apart(seed, 400, 40, |r| (r % 1000) as i64, apart);
            let bytes = w.encode().unwrap();
            let v = ChunkView::parse(&bytes).unwrap();
            assert!(v.in_time_order());
            let day = v.cols[C_DAY];
            assert_eq!((day.scale(), day.width()), (scale, width), "seed {seed}");
            let days: Vec<i32> = (0..day.len()).map(|i| v.order_day(i)).collect();
            let (min, max) = (*days.iter().min().unwrap(), *days.iter().max().unwrap());
            let mid = days[days.len() / 2];
            let probes = [
                i32::MIN,
                min - 70_000,
                min - 1,
                min,
                mid,
                mid + 1,
                max,
                max + 1,
                max + 70_000,
                i32::MAX,
            ];
            for &lo in &probes {
                for &hi in &probes {
                    for clip_day in [None, Some(min), Some(mid), Some(max)] {
                        // Half a day into the clip's day (in these chunks
                        // an instant's day is its UTC day less 1).
                        let clip = clip_day.map(|d| Clip {
                            day: d,
                            ns: day_origin_ns(d + 1) + DAY * 500_000_000,
                        });
                        for c in 0..v.customers() {
                            let orders = v.order_range(c);
                            let want = v.window_run(orders.clone(), lo, hi, clip);
                            let got = v.window_run_compared(
                                orders.clone(),
                                &v.stored_window(lo, hi, clip),
                            );
                            let case = format!("seed {seed} {lo}..={hi} {clip:?} customer {c}");
                            assert!(orders.start <= got.start, "{case}");
                            assert!(got.start <= got.end && got.end <= orders.end, "{case}");
                            if want.is_empty() {
                                assert!(got.is_empty(), "{case}: {got:?}");
                            } else {
                                assert_eq!(got, want, "{case}");
                            }
                        }
                    }
                }
            }
            // Some customers have more orders than are compared at once.
            assert!((0..v.customers()).any(|c| v.order_range(c).len() > DAY_LANES));
            assert!((0..v.customers()).any(|c| v.order_range(c).len() > 2 * DAY_LANES));
        }
    }

    #[test]
    fn run_totals_wrap_per_customer_and_stay_exact() {
        type Cents = fn(u64) -> i64;
        let cases: [(&str, Cents); 3] = [
            ("non-negative", |r| (r % 500_000) as i64),
            ("signed", |r| (r % 1_000_001) as i64 - 500_000),
            ("huge", |r| {
                (r % 3) as i64 * (1 << 40) - (1 << 40) + (r % 7) as i64
            }),
        ];
        for (name, cents) in cases {
            let w = random_chunk(7, 3000, cents);
            let bytes = w.encode().unwrap();
            let v = ChunkView::parse(&bytes).unwrap();
            assert!(v.in_time_order(), "{name}");
            let mut widest_customer = 0u64;
            for c in 0..v.customers() {
                let r = v.order_range(c);
                let mut magnitude = 0u64;
                for a in r.clone() {
                    for b in a..=r.end {
                        let lines = v.lines_of_orders(a..b);
                        let want = RunTotals {
                            lines: lines.len() as i64,
                            units: lines.clone().map(|j| w.line_qty[j]).sum(),
                            cents: lines.clone().map(|j| w.line_cents[j]).sum(),
                        };
                        assert_eq!(v.run_totals(a..b), want, "{name}: customer {c}, {a}..{b}");
                        // Each total alone, the others left at 0.
                        for (l, u, c) in [(1, 0, 0), (0, 1, 0), (0, 0, 1)] {
                            let which = RunTotals {
                                lines: l,
                                units: u,
                                cents: c,
                            };
                            let alone = RunTotals {
                                lines: l * want.lines,
                                units: u * want.units,
                                cents: c * want.cents,
                            };
                            assert_eq!(v.run_totals_of(a..b, which), alone, "{name}: {a}..{b}");
                        }
                    }
                }
                for j in v.lines_of_orders(r) {
                    magnitude += w.line_cents[j].unsigned_abs();
                }
                widest_customer = widest_customer.max(magnitude);
            }
            // The chunk's running total needs more bytes than one
            // customer's; the stored column takes the customer's.
            let chunk_total: u64 = w.line_cents.iter().map(|c| c.unsigned_abs()).sum();
            let bytes_for =
                |m: u64, sign: u32| (64 - m.leading_zeros() + sign).div_ceil(8) as usize;
            let signed = u32::from(w.line_cents.iter().any(|&c| c < 0));
            assert!(
                bytes_for(chunk_total, signed) > bytes_for(widest_customer, signed),
                "{name}"
            );
            assert_eq!(
                v.cols[C_CUM_CENTS].width(),
                bytes_for(widest_customer, signed),
                "{name}"
            );
            // In time order the keys are not stored.
            assert_eq!(v.cols[C_KEY].width(), 0, "{name}");
        }
    }

    #[test]
    fn instants_round_trip_as_day_offsets_at_the_extremes() {
        let day = |ns: i64| ns.div_euclid(86_400_000_000_000);
        // (instant, local day number): a zone 14 hours ahead of UTC and
        // one 12 hours behind, at both ends of the i64 range.
        let orders: Vec<(i64, i64)> = vec![
            (i64::MIN, day(i64::MIN) - 1),
            (i64::MIN + 1, day(i64::MIN)),
            (-1, -1),
            (0, 0),
            (
                1_700_000_000_123_456_789,
                day(1_700_000_000_123_456_789) + 1,
            ),
            (i64::MAX - 1, day(i64::MAX)),
            (i64::MAX, day(i64::MAX) + 1),
        ];
        let n = orders.len();
        let w = ChunkWriter {
            cust_start: vec![0, n as i64],
            order_day: orders.iter().map(|o| o.1).collect(),
            order_ns: orders.iter().map(|o| o.0).collect(),
            order_key: (0..n as i64).collect(),
            order_attr: std::array::from_fn(|_| vec![NULL_VALUE; n]),
            order_line_start: (0..=n as i64).collect(),
            line_product: vec![1; n],
            line_qty: vec![1; n],
            line_cents: vec![1; n],
        };
        let bytes = w.encode().unwrap();
        let v = ChunkView::parse(&bytes).unwrap();
        assert!(v.in_time_order());
        for (i, &(ns, d)) in orders.iter().enumerate() {
            assert_eq!((v.order_ns(i), v.order_day(i) as i64), (ns, d), "order {i}");
        }
        // Whole seconds over a few years: offsets within a day take 3
        // bytes where the instants took 4.
        let w = random_chunk(3, 500, |r| r as i64 % 100);
        let v_bytes = w.encode().unwrap();
        let v = ChunkView::parse(&v_bytes).unwrap();
        assert_eq!(v.cols[C_NS].width(), 3);
        for (i, &ns) in w.order_ns.iter().enumerate() {
            assert_eq!(v.order_ns(i), ns);
        }
    }
}
