//! Member ids, generated like Kafka's (`{client_id}-{uuid}` for dynamic members,
//! `{group_instance_id}-{uuid}` for static ones) but from a seeded generator instead of
//! `UUID.randomUUID()`, so a run can be reproduced from its seed.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// Produces member ids; the same seed yields the same sequence.
#[derive(Debug, Clone)]
pub(crate) struct MemberIdGenerator {
    rng: ChaCha8Rng,
}

impl MemberIdGenerator {
    pub(crate) fn new(seed: u64) -> Self {
        MemberIdGenerator {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// `{prefix}-{uuid}` with a version-4-shaped UUID, as Kafka's member ids look.
    pub(crate) fn next(&mut self, prefix: &str) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        // Version 4 and the RFC 4122 variant, so the id reads like Java's randomUUID().
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{prefix}-{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_ids_and_ids_differ() {
        let mut a = MemberIdGenerator::new(7);
        let mut b = MemberIdGenerator::new(7);
        let first = a.next("client");
        assert_eq!(first, b.next("client"));
        assert_ne!(first, a.next("client"));
        assert!(first.starts_with("client-"));
        assert_eq!(first.len(), "client-".len() + 36);
        assert_eq!(&first[7 + 14..7 + 15], "4");
    }
}
