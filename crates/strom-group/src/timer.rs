//! The coordinator's deadlines: one ordered set instead of Kafka's timer wheel.
//!
//! Every deadline has a key; scheduling a key again replaces its deadline, as Kafka's
//! `timer.schedule(key, ...)` does. [`Timers::due`] hands out the keys whose deadline has
//! passed *when the poll started*; a key (re)scheduled while a poll fires timers waits for
//! the next poll, so one poll always terminates even if a handler schedules a zero delay.

use std::collections::{BTreeMap, BTreeSet};

/// What a deadline is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKey {
    /// A member's (or pending member's) session: expires when no heartbeat, join or sync
    /// arrived in time.
    Heartbeat { group_id: String, member_id: String },
    /// The end of a group's join phase (rebalance timeout or initial rebalance delay).
    Join { group_id: String },
    /// The deadline for every member to send SyncGroup after a join phase.
    Sync { group_id: String },
    /// The periodic offsets-retention sweep of one `__consumer_offsets` partition.
    OffsetExpiry { partition: i32 },
}

/// A due timer: its deadline and the sequence number of its scheduling.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DueTimer {
    deadline_ms: i64,
    sequence: u64,
    pub(crate) key: TimerKey,
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    by_key: BTreeMap<TimerKey, (i64, u64)>,
    queue: BTreeSet<(i64, u64, TimerKey)>,
    next_sequence: u64,
}

impl Timers {
    /// Sets (or replaces) the deadline of `key`.
    pub(crate) fn schedule(&mut self, key: TimerKey, deadline_ms: i64) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        if let Some((old_deadline, old_sequence)) =
            self.by_key.insert(key.clone(), (deadline_ms, sequence))
        {
            self.queue
                .remove(&(old_deadline, old_sequence, key.clone()));
        }
        self.queue.insert((deadline_ms, sequence, key));
    }

    /// Removes the deadline of `key`, if any.
    pub(crate) fn cancel(&mut self, key: &TimerKey) {
        if let Some((deadline, sequence)) = self.by_key.remove(key) {
            self.queue.remove(&(deadline, sequence, key.clone()));
        }
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        self.queue.first().map(|(deadline, _, _)| *deadline)
    }

    /// The timers due at `now_ms`, earliest first. They stay scheduled until taken with
    /// [`Timers::take`], which fails for a timer cancelled or rescheduled in the meantime.
    pub(crate) fn due(&self, now_ms: i64) -> Vec<DueTimer> {
        self.queue
            .iter()
            .take_while(|(deadline, _, _)| *deadline <= now_ms)
            .map(|(deadline_ms, sequence, key)| DueTimer {
                deadline_ms: *deadline_ms,
                sequence: *sequence,
                key: key.clone(),
            })
            .collect()
    }

    /// Removes a due timer if it is still scheduled exactly as [`Timers::due`] saw it.
    pub(crate) fn take(&mut self, due: &DueTimer) -> bool {
        match self.by_key.get(&due.key) {
            Some(&(deadline, sequence))
                if deadline == due.deadline_ms && sequence == due.sequence =>
            {
                self.cancel(&due.key);
                true
            }
            _ => false,
        }
    }

    /// Removes every timer whose key matches.
    pub(crate) fn cancel_where(&mut self, mut matches: impl FnMut(&TimerKey) -> bool) {
        let keys: Vec<TimerKey> = self.by_key.keys().filter(|k| matches(k)).cloned().collect();
        for key in keys {
            self.cancel(&key);
        }
    }

    /// How many timers are scheduled.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        debug_assert_eq!(self.by_key.len(), self.queue.len());
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(group: &str) -> TimerKey {
        TimerKey::Join {
            group_id: group.into(),
        }
    }

    #[test]
    fn rescheduling_replaces_the_deadline() {
        let mut timers = Timers::default();
        timers.schedule(join("a"), 100);
        timers.schedule(join("a"), 50);
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.next_deadline(), Some(50));
    }

    #[test]
    fn due_timers_come_earliest_first_and_cancelled_ones_are_not_taken() {
        let mut timers = Timers::default();
        timers.schedule(join("b"), 20);
        timers.schedule(join("a"), 10);
        timers.schedule(join("c"), 30);
        let due = timers.due(20);
        assert_eq!(
            due.iter().map(|d| d.key.clone()).collect::<Vec<_>>(),
            vec![join("a"), join("b")]
        );
        timers.cancel(&join("b"));
        assert!(timers.take(&due[0]));
        assert!(!timers.take(&due[1]));
        assert_eq!(timers.next_deadline(), Some(30));
    }

    #[test]
    fn a_timer_rescheduled_during_a_poll_waits_for_the_next_poll() {
        let mut timers = Timers::default();
        timers.schedule(join("a"), 10);
        let due = timers.due(10);
        timers.schedule(join("a"), 10);
        assert!(!timers.take(&due[0]));
        assert_eq!(timers.due(10).len(), 1);
    }
}
