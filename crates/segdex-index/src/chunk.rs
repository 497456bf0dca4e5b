//! The line store of one chunk of 2^16 customers: their orders and lines,
//! sorted by customer, as packed columns in one checked section.
//!
//! An order here is the group of lines of one customer that share order id,
//! instant and order attributes (in a denormalized lines table each line's
//! own values are used). A customer's groups of one order id are adjacent,
//! so counting distinct order ids is counting changes of key; order ids are
//! ordered by their first instant, so a customer's orders are in time order
//! unless one order id has lines on several days. The chunk records whether
//! that holds for all its customers ([`ChunkView::chronological`]); when it
//! does, a window is found by binary search instead of a scan.

use crate::packed::{self, Packed};

/// The order attributes, as named in `where`.
pub const ORDER_ATTRS: [&str; 4] = ["store", "payment_method", "offer_code", "channel"];
/// The canonical columns they are read from.
pub const ORDER_ATTR_COLUMNS: [&str; 4] = ["store_id", "payment_method", "offer_code", "channel"];
/// The value id that stands for null in order attribute columns.
pub const NULL_VALUE: i64 = -1;

const MAGIC: &[u8; 8] = b"SGDXCHK2";
const COLUMNS: usize = 13;

/// Builds one chunk's section bytes.
#[derive(Debug, Default)]
pub struct ChunkWriter {
    /// Index of each customer's first order (len = customers + 1 when done).
    pub cust_start: Vec<i64>,
    /// Local day number of each order.
    pub order_day: Vec<i64>,
    /// Instant (ns since epoch, UTC) of each order.
    pub order_ns: Vec<i64>,
    /// Dense id of each order's external order id.
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
    /// Whether every customer's orders have non-decreasing days.
    fn chronological(&self) -> bool {
        self.cust_start.windows(2).all(|w| {
            let (a, b) = (w[0] as usize, w[1] as usize);
            self.order_day[a..b].windows(2).all(|d| d[0] <= d[1])
        })
    }
}

impl ChunkWriter {
    /// Encodes the chunk.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        for col in [
            &self.cust_start,
            &self.order_day,
            &self.order_ns,
            &self.order_key,
            &self.order_attr[0],
            &self.order_attr[1],
            &self.order_attr[2],
            &self.order_attr[3],
            &self.order_line_start,
            &self.line_product,
            &self.line_qty,
            &self.line_cents,
            &vec![self.chronological() as i64],
        ] {
            packed::encode(col, &mut out);
        }
        out
    }
}

/// One chunk's line store, read in place.
#[derive(Debug, Clone, Copy)]
pub struct ChunkView<'a> {
    cols: [Packed<'a>; COLUMNS],
    customers: usize,
    orders: usize,
    lines: usize,
    chronological: bool,
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
        let customers = cols[0].len().checked_sub(1)?;
        let orders = cols[1].len();
        let lines = cols[9].len();
        if cols[2..8].iter().any(|c| c.len() != orders)
            || cols[8].len() != orders + 1
            || cols[10].len() != lines
            || cols[11].len() != lines
            || cols[12].len() != 1
        {
            return None;
        }
        // Offsets must be monotone and in range, so evaluation cannot index
        // outside the columns.
        if cols[0].get(customers) as usize != orders || cols[8].get(orders) as usize != lines {
            return None;
        }
        let monotone = |c: &Packed, end: usize| {
            c.get(0) == 0
                && c.get(c.len() - 1) == end as i64
                && (1..c.len()).all(|i| c.get(i - 1) <= c.get(i))
        };
        if check && (!monotone(&cols[0], orders) || !monotone(&cols[8], lines)) {
            return None;
        }
        let chronological = cols[12].get(0) == 1;
        let view = Self {
            cols,
            customers,
            orders,
            lines,
            chronological,
        };
        if check && chronological {
            let ok = (0..customers).all(|c| {
                let r = view.order_range(c);
                (r.start + 1..r.end).all(|i| view.order_day(i - 1) <= view.order_day(i))
            });
            if !ok {
                return None;
            }
        }
        Some(view)
    }

    /// Whether each customer's orders are in non-decreasing day order.
    #[inline]
    pub fn chronological(&self) -> bool {
        self.chronological
    }

    /// The order numbers of the chunk's `local`-th customer.
    #[inline]
    pub fn order_range(&self, local: usize) -> std::ops::Range<usize> {
        self.cols[0].get(local) as usize..self.cols[0].get(local + 1) as usize
    }

    /// The first order of `orders` whose day is `day` or later (requires
    /// [`Self::chronological`]).
    #[inline]
    pub fn first_order_from(&self, orders: std::ops::Range<usize>, day: i32) -> usize {
        let (mut lo, mut hi) = (orders.start, orders.end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.order_day(mid) < day {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Local day number of order `i`.
    #[inline(always)]
    pub fn order_day(&self, i: usize) -> i32 {
        self.cols[1].get(i) as i32
    }

    /// Instant (ns) of order `i`.
    #[inline(always)]
    pub fn order_ns(&self, i: usize) -> i64 {
        self.cols[2].get(i)
    }

    /// Dense order key of order `i`.
    #[inline(always)]
    pub fn order_key(&self, i: usize) -> i64 {
        self.cols[3].get(i)
    }

    /// Value id of order attribute `a` of order `i`.
    #[inline(always)]
    pub fn order_attr(&self, a: usize, i: usize) -> i64 {
        self.cols[4 + a].get(i)
    }

    /// The line numbers of order `i`.
    #[inline(always)]
    pub fn line_range(&self, i: usize) -> std::ops::Range<usize> {
        self.cols[8].get(i) as usize..self.cols[8].get(i + 1) as usize
    }

    /// Product number of line `j`.
    #[inline(always)]
    pub fn line_product(&self, j: usize) -> u32 {
        self.cols[9].get(j) as u32
    }

    /// Quantity of line `j`.
    #[inline(always)]
    pub fn line_qty(&self, j: usize) -> i64 {
        self.cols[10].get(j)
    }

    /// Cents of line `j`.
    #[inline(always)]
    pub fn line_cents(&self, j: usize) -> i64 {
        self.cols[11].get(j)
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
    fn round_trip_and_rejects_inconsistent_offsets() {
        let w = ChunkWriter {
            cust_start: vec![0, 0, 2],
            order_day: vec![100, 101],
            order_ns: vec![5, 6],
            order_key: vec![0, 1],
            order_attr: [vec![0, 1], vec![-1, -1], vec![-1, 2], vec![0, 0]],
            order_line_start: vec![0, 1, 3],
            line_product: vec![7, 8, 9],
            line_qty: vec![1, 2, 3],
            line_cents: vec![100, -50, 0],
        };
        let bytes = w.encode();
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
        assert_eq!(lines, vec![(8, 2, -50), (9, 3, 0)]);

        let mut bad = w;
        bad.order_line_start = vec![0, 4, 3];
        assert!(ChunkView::parse(&bad.encode()).is_none());
        assert!(ChunkView::parse(&bytes[..bytes.len() - 8]).is_none());
    }
}
