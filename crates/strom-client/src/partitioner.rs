//! Choosing a partition for a record, the way the Java client's default partitioner does.
//!
//! A record with a key goes to `positive(murmur2(key)) % partition_count`, so keyed records land
//! on the same partition as with any Java-based producer (Kafka Streams, Connect, the console
//! producer) writing the same keys. A record without a key goes to a *sticky* partition: all
//! keyless records of a topic fill one partition's batch until about `batch_size` bytes were
//! sent there, then move to the next available partition (round-robin), which gives big batches
//! without skewing the load. Pure logic, no IO.

use std::collections::HashMap;

/// Kafka's murmur2 (the variant in `org.apache.kafka.common.utils.Utils.murmur2`): seed
/// `0x9747b28c`, little-endian 4-byte blocks, and the tail folded in from its last byte down.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java works on ints with wrapping arithmetic; u32 with wrapping ops gives the same bits.
    let length = data.len() as u32;
    let mut h: u32 = SEED ^ length;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(first) = tail.first() {
        h ^= u32::from(*first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on `i32::MIN`).
pub fn to_positive(value: i32) -> i32 {
    value & 0x7fff_ffff
}

/// The partition the Java client's default partitioner picks for `key`.
pub fn partition_for_key(key: &[u8], partition_count: i32) -> i32 {
    debug_assert!(partition_count > 0);
    to_positive(murmur2(key)) % partition_count.max(1)
}

/// Per-topic sticky partition state for records without a key.
#[derive(Debug, Default)]
pub struct StickyPartitioner {
    topics: HashMap<String, Sticky>,
}

#[derive(Debug)]
struct Sticky {
    partition: i32,
    bytes_since_switch: usize,
}

impl StickyPartitioner {
    /// The partition for the next keyless record of `topic`, `record_bytes` long.
    ///
    /// `is_available(p)` says whether partition `p` currently has a leader; when none has, any
    /// partition below `partition_count` is used. The partition switches, round-robin among the
    /// available ones, once `switch_after_bytes` bytes have gone to the current one.
    pub fn partition(
        &mut self,
        topic: &str,
        partition_count: i32,
        is_available: impl Fn(i32) -> bool,
        record_bytes: usize,
        switch_after_bytes: usize,
    ) -> i32 {
        let partition_count = partition_count.max(1);
        // The first available partition after `p`, wrapping around; `p + 1` if none is.
        let next_after = |p: i32| -> i32 {
            (1..=partition_count)
                .map(|step| (p + step).rem_euclid(partition_count))
                .find(|candidate| is_available(*candidate))
                .unwrap_or_else(|| (p + 1).rem_euclid(partition_count))
        };
        let sticky = match self.topics.get_mut(topic) {
            Some(sticky) => sticky,
            None => self.topics.entry(topic.to_owned()).or_insert(Sticky {
                partition: next_after(-1),
                bytes_since_switch: 0,
            }),
        };
        let current_usable = sticky.partition < partition_count && is_available(sticky.partition);
        if sticky.bytes_since_switch >= switch_after_bytes || !current_usable {
            sticky.partition = next_after(sticky.partition);
            sticky.bytes_since_switch = 0;
        }
        sticky.bytes_since_switch += record_bytes;
        sticky.partition
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from Apache Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_the_java_client() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn keyed_partition_uses_the_positive_hash_modulo() {
        // toPositive(-790332482) = 1357151166; 1357151166 % 50 = 16.
        assert_eq!(partition_for_key(b"foobar", 50), 16);
        assert_eq!(to_positive(i32::MIN), 0);
        for count in 1..20 {
            assert!((0..count).contains(&partition_for_key(b"any key", count)));
        }
    }

    #[test]
    fn sticky_partition_switches_after_batch_size_bytes() {
        let mut sticky = StickyPartitioner::default();
        let all = |_| true;
        let first = sticky.partition("t", 3, all, 100, 250);
        assert_eq!(sticky.partition("t", 3, all, 100, 250), first);
        assert_eq!(sticky.partition("t", 3, all, 100, 250), first);
        let second = sticky.partition("t", 3, all, 100, 250);
        assert_eq!(second, (first + 1) % 3);
        // Topics are independent.
        assert_eq!(sticky.partition("u", 3, all, 100, 250), first);
    }

    #[test]
    fn sticky_partition_skips_partitions_without_a_leader() {
        let mut sticky = StickyPartitioner::default();
        let odd = |p: i32| p % 2 == 1;
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(sticky.partition("t", 4, odd, 10, 10));
        }
        assert_eq!(seen, vec![1, 3, 1, 3, 1, 3]);
        // The current partition losing its leader forces a switch at once.
        let now = sticky.partition("t", 4, |p: i32| p % 2 == 0, 1, 1000);
        assert_eq!(now, 0);
        // With no partition available, keep rotating rather than stall.
        let none = sticky.partition("v", 2, |_| false, 1, 1000);
        assert!((0..2).contains(&none));
    }
}
