//! Where a follower truncates its log when it starts following a leader: the leader-epoch
//! protocol of KIP-101 with the refinement of KIP-279, as a pure function.
//!
//! The follower asks the leader, with OffsetForLeaderEpoch, where its latest epoch ends in the
//! leader's log. The leader answers with the largest epoch it has that is no larger, and where
//! that epoch ends (where the next one starts, or its log end). If the leader has the epoch,
//! everything the follower has beyond that end offset was never committed and goes. If the
//! leader answers with an older epoch, the follower looks up where *it* ends that older epoch
//! and truncates to the smaller of the two; when the follower does not have that epoch either,
//! it asks again about the epoch it does have below it. Never by high watermark alone: that
//! loses committed records (KIP-101's example) or keeps divergent ones.

/// The leader's answer to OffsetForLeaderEpoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderEpochEnd {
    /// The largest epoch <= the requested one that the leader has; -1 when none.
    pub epoch: i32,
    /// Where it ends in the leader's log; -1 when unknown.
    pub end_offset: i64,
}

/// What the follower does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Truncate the log to this offset (possibly its current end: nothing to remove).
    To(i64),
    /// Ask the leader again about this (older) epoch.
    AskAbout(i32),
}

/// Decides from the leader's answer about `asked_epoch`. `local_end_for(epoch)` is the
/// follower's own `end_offset_for_epoch` (the largest local epoch <= `epoch` and where it
/// ends); `high_watermark` is the fallback when the leader knows no epoch at all (a log with
/// no epochs, written before epochs existed).
pub fn decide(
    asked_epoch: i32,
    answer: LeaderEpochEnd,
    log_end_offset: i64,
    high_watermark: i64,
    local_end_for: impl Fn(i32) -> Option<(i32, i64)>,
) -> Truncation {
    if answer.epoch < 0 || answer.end_offset < 0 {
        return Truncation::To(high_watermark.min(log_end_offset));
    }
    if answer.epoch == asked_epoch {
        return Truncation::To(answer.end_offset.min(log_end_offset));
    }
    match local_end_for(answer.epoch) {
        Some((local_epoch, local_end)) if local_epoch == answer.epoch => {
            Truncation::To(answer.end_offset.min(local_end).min(log_end_offset))
        }
        // The follower lacks the leader's epoch; retry with the follower's own epoch below it.
        Some((local_epoch, _)) if local_epoch < answer.epoch && local_epoch >= 0 => {
            Truncation::AskAbout(local_epoch)
        }
        // Nothing local at or below that epoch: everything from the leader's end on goes.
        _ => Truncation::To(answer.end_offset.min(log_end_offset)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A follower log as (epoch, start offset) entries ending at `end`.
    fn local(epochs: &'static [(i32, i64)], end: i64) -> impl Fn(i32) -> Option<(i32, i64)> {
        move |asked| {
            let position = epochs.iter().rposition(|(e, _)| *e <= asked)?;
            let epoch = epochs[position].0;
            let end = epochs.get(position + 1).map_or(end, |(_, start)| *start);
            Some((epoch, end))
        }
    }

    #[test]
    fn a_shared_epoch_truncates_to_the_leaders_end_of_it() {
        // Follower has epoch 2 up to 120; the leader's epoch 2 ended at 100.
        let answer = LeaderEpochEnd {
            epoch: 2,
            end_offset: 100,
        };
        assert_eq!(
            decide(2, answer, 120, 90, local(&[(1, 0), (2, 50)], 120)),
            Truncation::To(100)
        );
        // A leader that has more of the epoch than the follower removes nothing.
        let answer = LeaderEpochEnd {
            epoch: 2,
            end_offset: 150,
        };
        assert_eq!(
            decide(2, answer, 120, 90, local(&[(1, 0), (2, 50)], 120)),
            Truncation::To(120)
        );
    }

    #[test]
    fn an_epoch_the_leader_never_had_truncates_where_the_older_epoch_ends_on_either_side() {
        // KIP-279: the follower was leader of epoch 3 and wrote 80..110 that never replicated;
        // the leader has epoch 2 ending at 90 (epoch 4 starts there).
        let answer = LeaderEpochEnd {
            epoch: 2,
            end_offset: 90,
        };
        let follower = local(&[(1, 0), (2, 40), (3, 80)], 110);
        assert_eq!(decide(3, answer, 110, 70, follower), Truncation::To(80));
    }

    #[test]
    fn a_follower_without_the_leaders_epoch_asks_again_about_its_own() {
        // Leader answers epoch 3 for a request about 5; the follower has 1 and 5 only.
        let answer = LeaderEpochEnd {
            epoch: 3,
            end_offset: 70,
        };
        assert_eq!(
            decide(5, answer, 100, 10, local(&[(1, 0), (5, 60)], 100)),
            Truncation::AskAbout(1)
        );
    }

    #[test]
    fn a_leader_without_epochs_falls_back_to_the_high_watermark() {
        let answer = LeaderEpochEnd {
            epoch: -1,
            end_offset: -1,
        };
        assert_eq!(
            decide(2, answer, 100, 60, local(&[(2, 0)], 100)),
            Truncation::To(60)
        );
    }
}
