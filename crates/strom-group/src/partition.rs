//! Which `__consumer_offsets` partition owns a group, computed exactly as Kafka does so that a
//! Strom broker and a Kafka client's `FindCoordinator` expectations (and a Kafka-written
//! offsets log) agree.

/// Java's `String.hashCode()`: `h = 31 * h + c` over the UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// Kafka's `Utils.abs(groupId.hashCode()) % partitions`. `Utils.abs` maps `i32::MIN` to 0
/// (plain `Math.abs` would leave it negative).
///
/// `partitions` must be positive ([`crate::Config::validate`] ensures it for the
/// coordinator); a non-positive count yields partition 0.
pub fn partition_for_group(group_id: &str, partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    let hash = java_string_hash(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_java_string_hash_code() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        // A character outside the BMP hashes as its surrogate pair (0xD83D, 0xDE00).
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
        // The classic example of a string whose hashCode is Integer.MIN_VALUE.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    }

    #[test]
    fn partition_uses_kafka_abs_for_min_value() {
        assert_eq!(partition_for_group("polygenelubricants", 50), 0);
        assert_eq!(partition_for_group("hello", 50), 99_162_322 % 50);
        // A negative hash is made positive before the modulo.
        let hash = java_string_hash("my-consumer-group");
        assert_eq!(
            partition_for_group("my-consumer-group", 50),
            hash.abs() % 50
        );
    }

    #[test]
    fn every_group_lands_inside_the_partition_range() {
        for i in 0..1000 {
            let p = partition_for_group(&format!("group-{i}"), 7);
            assert!((0..7).contains(&p));
        }
    }
}
