//! A compact table from int64 external ids to dense numbers, for the build.
//!
//! At 10M customers the build looks up the order of each of 170M lines
//! among 68M order ids. A general hash map of that many `(i64, u32)` pairs
//! rounds to 2^27 buckets of 16 bytes (2.3 GB); this table keeps keys and
//! values in two arrays sized for the expected count at a load of 0.8
//! (about 15 bytes an id), with linear probing.

/// Open-addressing table `i64 → u32`; `u32::MAX` is not a storable value.
#[derive(Debug, Clone)]
pub struct IntIdTable {
    keys: Vec<i64>,
    vals: Vec<u32>,
    len: usize,
}

const EMPTY: u32 = u32::MAX;

/// A 64-bit mix of the key (the splitmix64 finalizer).
#[inline]
fn mix(k: i64) -> u64 {
    let mut z = k as u64;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

impl IntIdTable {
    /// A table for about `expected` ids (it grows past that).
    pub fn with_capacity(expected: usize) -> Self {
        let slots = (expected + expected / 4).max(16);
        Self {
            keys: vec![0; slots],
            vals: vec![EMPTY; slots],
            len: 0,
        }
    }

    /// Number of ids stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no id is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, k: i64) -> usize {
        ((mix(k) as u128 * self.keys.len() as u128) >> 64) as usize
    }

    /// The slot holding `k`, or the empty slot where it would go.
    #[inline]
    fn find(&self, k: i64) -> usize {
        let n = self.keys.len();
        let mut i = self.home(k);
        loop {
            if self.vals[i] == EMPTY || self.keys[i] == k {
                return i;
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// The number stored for `k`.
    #[inline]
    pub fn get(&self, k: i64) -> Option<u32> {
        let v = self.vals[self.find(k)];
        (v != EMPTY).then_some(v)
    }

    /// Stores `k → v` unless `k` is present; false if it was (the table
    /// is unchanged then). `v` must not be `u32::MAX`.
    pub fn insert(&mut self, k: i64, v: u32) -> bool {
        debug_assert!(v != EMPTY);
        if (self.len + 1) * 5 > self.keys.len() * 4 {
            self.grow();
        }
        let i = self.find(k);
        if self.vals[i] != EMPTY {
            return false;
        }
        self.keys[i] = k;
        self.vals[i] = v;
        self.len += 1;
        true
    }

    fn grow(&mut self) {
        let old_keys = std::mem::take(&mut self.keys);
        let old_vals = std::mem::take(&mut self.vals);
        *self = Self::with_capacity(old_keys.len() * 2);
        for (k, v) in old_keys.into_iter().zip(old_vals) {
            if v != EMPTY {
                let i = self.find(k);
                self.keys[i] = k;
                self.vals[i] = v;
                self.len += 1;
            }
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
    }
}
