//! A compact table from int64 external ids to dense numbers, for the build.
//!
//! At 10M customers the build looks up the order of each of 170M lines
//! among 68M order ids. A general hash map of that many `(i64, u32)` pairs
//! rounds to 2^27 buckets of 16 bytes (2.3 GB); this table keeps each key
//! and value in one 12-byte slot (one cache miss a lookup, not one for the
//! key and one for the value), sized for the expected count at a load of
//! 0.8 (about 15 bytes an id), with linear probing.
//!
//! Ids that fill most of the pages of [`PAGE`] ids they fall in
//! (auto-increment order ids, or one increasing range per store or shard)
//! are looked up in pages instead: a small map from page to page number,
//! then one array of values indexed by page and offset, 4 bytes a slot.
//! Lines refer to nearby orders, so the array access is mostly cached.
//! [`IntIdTable::for_pages`] picks that layout when the pages hold at
//! most [`PAGED_SLOTS_PER_ID`] slots an expected id.

use ahash::AHashMap;

/// Open-addressing or paged table `i64 → u32`; `u32::MAX` is not a
/// storable value.
#[derive(Debug, Clone)]
pub struct IntIdTable {
    repr: Repr,
    len: usize,
}

#[derive(Debug, Clone)]
enum Repr {
    /// Keys and values with linear probing.
    Hashed { slots: Vec<Slot> },
    /// Values at `page_number(key >> PAGE_BITS) * PAGE + (key & (PAGE - 1))`.
    Paged {
        pages: AHashMap<i64, u32>,
        vals: Vec<u32>,
    },
}

/// log2 of the ids in one page of the paged layout.
pub const PAGE_BITS: u32 = 12;
/// Ids in one page of the paged layout.
pub const PAGE: usize = 1 << PAGE_BITS;

const EMPTY: u32 = u32::MAX;

/// The paged layout is used when its pages hold at most this many slots
/// per expected id (4 bytes each: no more memory than hashing).
pub const PAGED_SLOTS_PER_ID: usize = 3;

#[inline]
fn mix(k: i64) -> u64 {
    let mut z = k as u64;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// Where `k`'s value is in a paged table, if its page is there.
#[inline]
fn paged_slot(pages: &AHashMap<i64, u32>, k: i64) -> Option<usize> {
    let n = *pages.get(&(k >> PAGE_BITS))? as usize;
    Some(n * PAGE + (k & (PAGE as i64 - 1)) as usize)
}

/// One hashed entry: the key's low and high halves and the value (12
/// bytes, 4-aligned).
type Slot = [u32; 3];

#[inline]
fn slot_key(s: &Slot) -> i64 {
    (s[0] as u64 | (s[1] as u64) << 32) as i64
}

#[inline]
fn new_slot(k: i64, v: u32) -> Slot {
    [k as u64 as u32, (k as u64 >> 32) as u32, v]
}

#[inline]
fn home(slots: &[Slot], k: i64) -> usize {
    ((mix(k) as u128 * slots.len() as u128) >> 64) as usize
}

#[inline]
fn find(slots: &[Slot], k: i64) -> usize {
    let n = slots.len();
    let mut i = home(slots, k);
    loop {
        if slots[i][2] == EMPTY || slot_key(&slots[i]) == k {
            return i;
        }
        i += 1;
        if i == n {
            i = 0;
        }
    }
}

fn hashed(expected: usize) -> Repr {
    let slots = (expected + expected / 4).max(16);
    Repr::Hashed {
        slots: vec![[0, 0, EMPTY]; slots],
    }
}

impl IntIdTable {
    /// A hashed table for about `expected` ids.
    pub fn with_capacity(expected: usize) -> Self {
        Self {
            repr: hashed(expected),
            len: 0,
        }
    }

    /// A table for about `expected` ids whose pages (`id >> PAGE_BITS`,
    /// in any order, repeats allowed) are `pages`: paged when few enough
    /// (see [`PAGED_SLOTS_PER_ID`]), else hashed. An id of another page can
    /// still be inserted (the table turns hashed).
    pub fn for_pages(pages: impl IntoIterator<Item = i64>, expected: usize) -> Self {
        let limit = (expected * PAGED_SLOTS_PER_ID).div_ceil(PAGE).max(1);
        let mut map = AHashMap::new();
        let mut last = None;
        for p in pages {
            if last != Some(p) {
                last = Some(p);
                let n = map.len() as u32;
                map.entry(p).or_insert(n);
                if map.len() > limit {
                    return Self::with_capacity(expected);
                }
            }
        }
        let vals = vec![EMPTY; map.len() * PAGE];
        Self {
            repr: Repr::Paged { pages: map, vals },
            len: 0,
        }
    }

    /// Whether lookups go through pages (for tests).
    pub fn is_paged(&self) -> bool {
        matches!(self.repr, Repr::Paged { .. })
    }

    /// Number of ids held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number stored for `k`.
    #[inline]
    pub fn get(&self, k: i64) -> Option<u32> {
        let v = match &self.repr {
            Repr::Hashed { slots } => slots[find(slots, k)][2],
            Repr::Paged { pages, vals } => vals[paged_slot(pages, k)?],
        };
        (v != EMPTY).then_some(v)
    }

    /// Replaces every stored number `v` by `new[v]` (the build renumbers
    /// rows into ascending id order once all ids are read).
    pub fn renumber(&mut self, new: &[u32]) {
        let vals: &mut [u32] = match &mut self.repr {
            Repr::Hashed { slots } => {
                for s in slots.iter_mut().filter(|s| s[2] != EMPTY) {
                    s[2] = new[s[2] as usize];
                }
                return;
            }
            Repr::Paged { vals, .. } => vals,
        };
        for v in vals.iter_mut().filter(|v| **v != EMPTY) {
            *v = new[*v as usize];
        }
    }

    /// Stores `k → v`; false (and nothing changed) if `k` is present.
    pub fn insert(&mut self, k: i64, v: u32) -> bool {
        debug_assert!(v != EMPTY);
        if let Repr::Paged { pages, vals } = &mut self.repr {
            if let Some(i) = paged_slot(pages, k) {
                if vals[i] != EMPTY {
                    return false;
                }
                vals[i] = v;
                self.len += 1;
                return true;
            }
            self.rehash(self.len * 2 + 16);
        }
        let slots = match &self.repr {
            Repr::Hashed { slots } => slots.len(),
            Repr::Paged { .. } => 0,
        };
        if (self.len + 1) * 5 > slots * 4 {
            self.rehash(slots * 2);
        }
        let Repr::Hashed { slots } = &mut self.repr else {
            unreachable!("the table was made hashed above");
        };
        let i = find(slots, k);
        if slots[i][2] != EMPTY {
            return false;
        }
        slots[i] = new_slot(k, v);
        self.len += 1;
        true
    }

    /// Moves every entry into a hashed table for `expected` ids.
    fn rehash(&mut self, expected: usize) {
        let entries: Vec<(i64, u32)> = match &self.repr {
            Repr::Hashed { slots } => slots
                .iter()
                .filter(|s| s[2] != EMPTY)
                .map(|s| (slot_key(s), s[2]))
                .collect(),
            Repr::Paged { pages, vals } => pages
                .iter()
                .flat_map(|(&page, &n)| {
                    let slots = &vals[n as usize * PAGE..][..PAGE];
                    (0..PAGE)
                        .filter(|&o| slots[o] != EMPTY)
                        .map(move |o| ((page << PAGE_BITS) | o as i64, slots[o]))
                })
                .collect(),
        };
        self.repr = hashed(expected.max(entries.len()));
        let Repr::Hashed { slots } = &mut self.repr else {
            unreachable!("just made hashed");
        };
        for (k, v) in entries {
            let i = find(slots, k);
            slots[i] = new_slot(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_hash_map() {
        let mut t = IntIdTable::with_capacity(10);
        let mut m = HashMap::new();
        let mut x: u64 = 0x243F6A8885A308D3;
        for n in 0..5000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Small keys repeat; negative and extreme keys appear.
            let k = match n % 4 {
                0 => (x % 3000) as i64,
                1 => -((x % 100) as i64),
                2 => x as i64,
                _ => [i64::MIN, i64::MAX, 0][(x % 3) as usize],
            };
            let fresh = !m.contains_key(&k);
            assert_eq!(t.insert(k, n), fresh, "insert {k}");
            m.entry(k).or_insert(n);
        }
        assert_eq!(t.len(), m.len());
        for (&k, &v) in &m {
            assert_eq!(t.get(k), Some(v));
        }
        assert_eq!(t.get(123_456_789_012), m.get(&123_456_789_012).copied());
        assert!(IntIdTable::with_capacity(0).get(5).is_none());
        // Renumbering maps every stored number and leaves absent keys absent.
        let new: Vec<u32> = (0..5000u32).map(|v| 4999 - v).collect();
        t.renumber(&new);
        for (&k, &v) in &m {
            assert_eq!(t.get(k), Some(4999 - v));
        }
        assert_eq!(t.get(123_456_789_012), None);
    }

    #[test]
    fn paged_table_behaves_like_a_hash_map() {
        // Two increasing ranges with gaps (as one per store), then ids of
        // other pages, which turn the table hashed without losing an entry.
        let ids: Vec<i64> = (1000..=9000i64)
            .chain(-3_000_000_000..-2_999_990_000)
            .filter(|k| k % 7 != 3)
            .collect();
        let mut t = IntIdTable::for_pages(ids.iter().map(|k| k >> PAGE_BITS), ids.len());
        assert!(t.is_paged());
        let mut m = HashMap::new();
        for (n, &k) in ids.iter().enumerate() {
            assert!(t.insert(k, n as u32));
            m.insert(k, n as u32);
        }
        assert!(!t.insert(1000, 77), "a duplicate is refused");
        assert!(t.is_paged());
        let reversed: Vec<u32> = (0..ids.len() as u32).rev().collect();
        let mut r = t.clone();
        r.renumber(&reversed);
        for (&k, &v) in &m {
            assert_eq!(r.get(k), Some(reversed[v as usize]), "renumbered {k}");
        }
        assert_eq!(r.get(999), None);
        for k in [999, 9001, 1004, -2_999_990_001, 1 << 40, i64::MIN, i64::MAX] {
            assert_eq!(t.get(k), m.get(&k).copied(), "get {k}");
        }
        for (n, k) in [i64::MIN, -5, 1 << 40, i64::MAX].into_iter().enumerate() {
            assert!(t.insert(k, 100_000 + n as u32), "insert {k}");
            m.insert(k, 100_000 + n as u32);
        }
        assert!(!t.is_paged());
        assert!(!t.insert(2000, 1), "still refused after the change");
        assert_eq!(t.len(), m.len());
        for (&k, &v) in &m {
            assert_eq!(t.get(k), Some(v));
        }
        assert_eq!(t.get(1004), None, "a gap stays empty");
        // Ids spread over too many pages for their count are hashed.
        let spread: Vec<i64> = (0..1000).map(|i| i << 20).collect();
        assert!(!IntIdTable::for_pages(spread.iter().map(|k| k >> PAGE_BITS), 1000).is_paged());
        assert!(IntIdTable::for_pages([5 >> PAGE_BITS], 1).is_paged());
    }
}
