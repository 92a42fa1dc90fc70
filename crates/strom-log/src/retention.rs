//! Retention decisions, as a pure function of the segments' sizes, offsets and timestamps:
//! which of the oldest segments `retention.ms` and `retention.bytes` allow deleting. The log
//! does the deleting ([`crate::Log::enforce_retention`]); the manager runs it every
//! `log.retention.check.interval.ms`.
//!
//! Kafka's rules: segments are considered oldest first and deletion stops at the first one
//! that may not go; a segment may go only when it lies wholly below the high watermark (the
//! next segment's base offset, or the log end offset for the active segment, is at or below
//! it) and is not the empty active segment. `retention.ms` deletes a segment whose largest
//! timestamp is more than `retention.ms` old; then `retention.bytes` deletes oldest segments
//! while the log stays at or above the limit. When the active segment must go too, the log
//! rolls first so that it never has no segment.

/// What retention needs to know of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub base_offset: i64,
    /// The next segment's base offset, or the log end offset for the active segment.
    pub next_base_offset: i64,
    pub size_bytes: u64,
    /// The largest timestamp in the segment (its file time when it has none).
    pub largest_timestamp: i64,
}

/// What retention decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPlan {
    /// How many of the oldest segments to delete.
    pub segments: usize,
    /// The active segment is among them: roll before deleting.
    pub roll_active: bool,
}

/// Decides retention for `segments` (oldest first, the last one active).
pub fn plan(
    segments: &[SegmentInfo],
    high_watermark: i64,
    retention_ms: i64,
    retention_bytes: i64,
    now_ms: i64,
) -> RetentionPlan {
    let deletable = |segment: &SegmentInfo, index: usize| {
        let is_last = index + 1 == segments.len();
        high_watermark >= segment.next_base_offset && !(is_last && segment.size_bytes == 0)
    };
    let mut count = 0;
    if retention_ms >= 0 {
        while let Some(segment) = segments.get(count) {
            let expired = now_ms.saturating_sub(segment.largest_timestamp) > retention_ms;
            if !(expired && deletable(segment, count)) {
                break;
            }
            count += 1;
        }
    }
    if retention_bytes >= 0 {
        let total: u64 = segments[count..].iter().map(|s| s.size_bytes).sum();
        if total >= retention_bytes as u64 {
            let mut excess = total - retention_bytes as u64;
            while let Some(segment) = segments.get(count) {
                if segment.size_bytes > excess || !deletable(segment, count) {
                    break;
                }
                excess -= segment.size_bytes;
                count += 1;
            }
        }
    }
    RetentionPlan {
        segments: count,
        roll_active: count > 0 && count == segments.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segments(specs: &[(u64, i64)]) -> Vec<SegmentInfo> {
        // (size, largest timestamp); offsets: 10 per segment.
        specs
            .iter()
            .enumerate()
            .map(|(i, &(size, ts))| SegmentInfo {
                base_offset: i as i64 * 10,
                next_base_offset: (i as i64 + 1) * 10,
                size_bytes: size,
                largest_timestamp: ts,
            })
            .collect()
    }

    #[test]
    fn time_retention_deletes_the_expired_prefix_only() {
        let s = segments(&[(100, 1000), (100, 5000), (100, 1500), (100, 9000)]);
        let p = plan(&s, 40, 2000, -1, 6000);
        // Segment 0 expired (5000 > 2000), segment 1 not: stop there even though 2 expired.
        assert_eq!(
            p,
            RetentionPlan {
                segments: 1,
                roll_active: false
            }
        );
    }

    #[test]
    fn nothing_at_or_above_the_high_watermark_is_deleted() {
        let s = segments(&[(100, 0), (100, 0), (100, 0)]);
        assert_eq!(plan(&s, 15, 10, -1, 1_000).segments, 1);
        assert_eq!(plan(&s, 20, 10, -1, 1_000).segments, 2);
        assert_eq!(
            plan(&s, 30, 10, -1, 1_000),
            RetentionPlan {
                segments: 3,
                roll_active: true
            }
        );
    }

    #[test]
    fn size_retention_keeps_the_log_at_or_above_the_limit() {
        let s = segments(&[(100, 0), (100, 0), (100, 0), (50, 0)]);
        // 350 bytes, limit 200: deleting 100 leaves 250 >= 200, deleting 200 leaves 150 < 200.
        assert_eq!(plan(&s, 40, -1, 200, 0).segments, 1);
        assert_eq!(plan(&s, 40, -1, 150, 0).segments, 2);
        assert_eq!(plan(&s, 40, -1, 400, 0).segments, 0);
        assert_eq!(
            plan(&s, 40, -1, 0, 0),
            RetentionPlan {
                segments: 4,
                roll_active: true
            }
        );
    }

    #[test]
    fn the_empty_active_segment_is_never_deleted() {
        let s = segments(&[(100, 0), (0, -1)]);
        assert_eq!(plan(&s, 20, 0, 0, 10_000).segments, 1);
    }

    proptest! {
        #[test]
        fn plan_matches_a_model(
            specs in proptest::collection::vec((0u64..500, 0i64..10_000), 1..12),
            high_watermark_segments in 0usize..13,
            retention_ms in -1i64..10_000,
            retention_bytes in -1i64..3000,
            now in 0i64..20_000,
        ) {
            let s = segments(&specs);
            let high_watermark = (high_watermark_segments.min(s.len()) as i64) * 10;
            let p = plan(&s, high_watermark, retention_ms, retention_bytes, now);
            // Model: every deleted segment is below the high watermark, and either expired or
            // removable without taking the remaining bytes below the limit.
            let mut remaining: u64 = s.iter().map(|x| x.size_bytes).sum();
            for (i, seg) in s.iter().take(p.segments).enumerate() {
                prop_assert!(seg.next_base_offset <= high_watermark);
                prop_assert!(!(i + 1 == s.len() && seg.size_bytes == 0));
                let expired = retention_ms >= 0 && now - seg.largest_timestamp > retention_ms;
                let by_size = retention_bytes >= 0 && remaining - seg.size_bytes >= retention_bytes as u64;
                prop_assert!(expired || by_size, "segment {} deleted without cause", i);
                remaining -= seg.size_bytes;
            }
            // Maximality: the next segment, if any, may not go.
            if let Some(next) = s.get(p.segments) {
                let i = p.segments;
                let allowed = next.next_base_offset <= high_watermark && !(i + 1 == s.len() && next.size_bytes == 0);
                let expired = retention_ms >= 0 && now - next.largest_timestamp > retention_ms;
                let by_size = retention_bytes >= 0 && remaining >= retention_bytes as u64 && remaining - next.size_bytes >= retention_bytes as u64;
                // Time retention only ever deletes a prefix of expired segments, so an expired
                // segment after a size-deleted one is not deleted by time; allow that case.
                prop_assert!(!(allowed && by_size), "segment {} could have gone", i);
                let _ = expired;
            }
            prop_assert_eq!(p.roll_active, p.segments > 0 && p.segments == s.len());
        }
    }
}
