//! Hash maps keyed by the numbers the client hands out itself: the packet
//! identifiers of its own QoS 1/2 PUBLISH, SUBSCRIBE and UNSUBSCRIBE, and
//! the driver's request numbers.
//!
//! The standard library's SipHash resists keys chosen to collide, at some
//! 100 instructions a hash; a QoS 1 message hashes its packet identifier
//! and request number half a dozen times between `publish` and PUBACK,
//! which was a tenth of the publisher's instructions. These keys are ours,
//! handed out in sequence, not the peer's, so nothing can choose them to
//! collide, and a multiplication is enough. Keys the broker picks (the
//! identifiers of its QoS 2 messages, its topic aliases) stay in maps with
//! the standard hasher.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A map from identifiers the client hands out.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
/// A set of identifiers the client hands out.
pub(crate) type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

/// 2^64 divided by the golden ratio, odd: multiplying by it spreads
/// consecutive keys evenly over the hash's high bits (Fibonacci hashing).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Fibonacci hashing of one integer key; see the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits and a tag from the
        // top seven; the product's best-mixed bits are its high ones, so
        // turn them round to the bottom.
        self.0.wrapping_mul(GOLDEN).rotate_left(32)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Only integer keys are hashed here; any other key still hashes
        // correctly, a byte at a time.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(GOLDEN);
        }
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.0 = self.0.rotate_left(16) ^ u64::from(n);
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(32) ^ n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash>(key: T) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(key)
    }

    #[test]
    fn consecutive_ids_spread_over_buckets_and_tags() {
        // The first 4,096 packet ids, as a table of 4,096 buckets sees
        // them (low 12 bits) and as its tags do (top 7 bits).
        let mut buckets = vec![0u32; 4096];
        let mut tags = [0u32; 128];
        for id in 1..=4096u16 {
            let h = hash(id);
            buckets[(h & 4095) as usize] += 1;
            tags[(h >> 57) as usize] += 1;
        }
        let fullest = buckets.iter().max().copied().unwrap_or(0);
        assert!(fullest <= 4, "a bucket took {fullest} of 4,096 ids");
        assert!(tags.iter().all(|&n| (16..=48).contains(&n)), "{tags:?}");
    }

    #[test]
    fn maps_and_sets_behave_as_maps_and_sets() {
        let mut map: IdMap<u16, u32> = IdMap::default();
        let mut set: IdSet<u64> = IdSet::default();
        for i in 0..10_000u32 {
            map.insert(i as u16, i);
            set.insert(u64::from(i) << 20);
        }
        assert_eq!(map.len(), 10_000);
        assert_eq!(map.get(&1234), Some(&1234));
        assert!(set.contains(&(77 << 20)));
        assert!(!set.contains(&77));
        assert_ne!(hash(1u16), hash(2u16));
        assert_ne!(hash("ab"), hash("ba"));
    }
}
