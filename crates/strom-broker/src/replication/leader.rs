//! The leader's view of a partition's replicas, as a pure state machine (Kafka's `Partition`
//! and `ReplicaState` on the leader side): follower progress, the high watermark, and the
//! in-sync replica changes to ask the controller for. Time is an argument; nothing here does
//! IO, so every rule is tested with an injected clock.
//!
//! ```text
//!  follower fetch(offset) ─▶ on_follower_fetch ─┐
//!  local append(log end) ──▶ on_local_append ───┼─▶ high watermark advances? ─▶ wake acks=all
//!  timer ──────────────────▶ poll ──────────────┘      ISR change to propose? ─▶ AlterPartition
//!  metadata image ─────────▶ update (committed ISR, epochs); proposal answered ▶ isr_change_failed
//! ```
//!
//! Rules (Kafka's):
//! - A follower's log end offset is the offset it fetches from. It is *caught up* at a fetch
//!   that reaches the leader's log end offset; a fetch that reaches the leader's log end
//!   offset as of the follower's previous fetch makes it caught up as of that previous fetch.
//! - An in-sync follower that has not been caught up for `replica.lag.time.max.ms` is proposed
//!   for removal; a follower out of the ISR whose log end offset reaches both the high
//!   watermark and the start of this leader's epoch is proposed for addition. One proposal is
//!   in flight at a time, and it is committed only by the controller (AlterPartition with the
//!   partition epoch, so a stale proposal is refused).
//! - The high watermark is the smallest log end offset of the *maximal* ISR: the committed ISR
//!   plus a replica being added. A replica being removed still counts until its removal is
//!   committed. It only moves forward, and never past the leader's log end offset.
//! - KIP-966: the high watermark does not advance while the committed ISR is smaller than
//!   `min.insync.replicas` (capped at the replica count). The controller relies on this: a
//!   replica that leaves a too-small ISR joins the eligible leader replicas, because it has
//!   every record below the high watermark.

use std::collections::BTreeMap;

use strom_cluster::{BrokerId, LeaderEpoch, PartitionEpoch};

/// How long a leader waits after a refused ISR proposal before proposing again.
pub const ISR_RETRY_BACKOFF_MS: i64 = 1_000;

/// Settings of one partition's replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// `replica.lag.time.max.ms`
    pub replica_lag_time_max_ms: i64,
    /// The topic's `min.insync.replicas`.
    pub min_insync_replicas: usize,
}

/// What the leader knows about one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The offset of its last fetch; -1 before the first.
    pub log_end_offset: i64,
    pub last_fetch_ms: i64,
    /// When it last had everything the leader had.
    pub last_caught_up_ms: i64,
    /// The leader's log end offset at the follower's last fetch.
    last_fetch_leader_log_end_offset: i64,
}

/// An in-sync replica change this leader asked the controller for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    pub new_in_sync_replicas: Vec<BrokerId>,
    pub leader_epoch: LeaderEpoch,
    /// The partition epoch the proposal is based on.
    pub partition_epoch: PartitionEpoch,
}

/// The partition's committed state, from the metadata image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionAssignment {
    pub replicas: Vec<BrokerId>,
    pub in_sync_replicas: Vec<BrokerId>,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderReplicas {
    local: BrokerId,
    assignment: PartitionAssignment,
    config: ReplicaConfig,
    followers: BTreeMap<BrokerId, FollowerProgress>,
    /// The proposal in flight, if any.
    pending: Option<IsrProposal>,
    /// After a refused proposal, no new one before this time: the refusal (a fenced
    /// follower, a stale partition epoch) usually holds until the next metadata image, and
    /// re-proposing on every fetch would flood the controller.
    retry_after_ms: i64,
    /// The log end offset when this broker became leader at this epoch.
    leader_epoch_start_offset: i64,
    high_watermark: i64,
}

impl LeaderReplicas {
    /// This broker becomes leader at `assignment.leader_epoch`, with its log ending at
    /// `log_end_offset` and the high watermark it had. In-sync followers get a full lag
    /// window from `now_ms`: they have had no chance to fetch from this leader yet.
    pub fn become_leader(
        local: BrokerId,
        assignment: PartitionAssignment,
        config: ReplicaConfig,
        log_end_offset: i64,
        high_watermark: i64,
        now_ms: i64,
    ) -> Self {
        let followers = assignment
            .replicas
            .iter()
            .filter(|r| **r != local)
            .map(|&r| {
                let in_sync = assignment.in_sync_replicas.contains(&r);
                (
                    r,
                    FollowerProgress {
                        log_end_offset: -1,
                        last_fetch_ms: -1,
                        last_caught_up_ms: if in_sync { now_ms } else { -1 },
                        last_fetch_leader_log_end_offset: -1,
                    },
                )
            })
            .collect();
        Self {
            local,
            assignment,
            config,
            followers,
            pending: None,
            retry_after_ms: -1,
            leader_epoch_start_offset: log_end_offset,
            high_watermark: high_watermark.min(log_end_offset),
        }
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.assignment.leader_epoch
    }

    pub fn assignment(&self) -> &PartitionAssignment {
        &self.assignment
    }

    pub fn in_sync_replicas(&self) -> &[BrokerId] {
        &self.assignment.in_sync_replicas
    }

    pub fn pending(&self) -> Option<&IsrProposal> {
        self.pending.as_ref()
    }

    pub fn follower(&self, id: BrokerId) -> Option<&FollowerProgress> {
        self.followers.get(&id)
    }

    pub fn is_replica(&self, id: BrokerId) -> bool {
        self.assignment.replicas.contains(&id)
    }

    /// `min.insync.replicas`, capped at the replica count (a topic with fewer replicas than
    /// its minimum could otherwise never make progress).
    pub fn effective_min_isr(&self) -> usize {
        self.config
            .min_insync_replicas
            .clamp(1, self.assignment.replicas.len().max(1))
    }

    /// Whether the committed ISR is large enough for acks=all (else NOT_ENOUGH_REPLICAS).
    pub fn has_min_isr(&self) -> bool {
        self.assignment.in_sync_replicas.len() >= self.config.min_insync_replicas.max(1)
    }

    pub fn set_config(&mut self, config: ReplicaConfig) {
        self.config = config;
    }

    /// A newer committed state of the partition, same leader epoch (an ISR change committed,
    /// a reassignment). Drops the proposal the image answers, and tracks new replicas.
    pub fn update(
        &mut self,
        assignment: PartitionAssignment,
        leader_log_end_offset: i64,
        now_ms: i64,
    ) {
        if assignment.partition_epoch < self.assignment.partition_epoch {
            return;
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.partition_epoch < assignment.partition_epoch)
        {
            self.pending = None;
        }
        for &r in &assignment.replicas {
            if r != self.local {
                self.followers.entry(r).or_insert(FollowerProgress {
                    log_end_offset: -1,
                    last_fetch_ms: -1,
                    last_caught_up_ms: if assignment.in_sync_replicas.contains(&r) {
                        now_ms
                    } else {
                        -1
                    },
                    last_fetch_leader_log_end_offset: -1,
                });
            }
        }
        self.followers
            .retain(|r, _| assignment.replicas.contains(r));
        self.assignment = assignment;
        self.advance_high_watermark(leader_log_end_offset);
    }

    /// The controller refused the proposal (or it timed out): propose again, but not before
    /// `ISR_RETRY_BACKOFF_MS` from `now_ms`.
    pub fn isr_change_failed(&mut self, now_ms: i64) {
        self.pending = None;
        self.retry_after_ms = now_ms + ISR_RETRY_BACKOFF_MS;
    }

    /// A follower fetched from `fetch_offset`. Returns an ISR expansion to propose, if any.
    /// The caller reads the high watermark afterwards.
    pub fn on_follower_fetch(
        &mut self,
        follower: BrokerId,
        fetch_offset: i64,
        leader_log_end_offset: i64,
        now_ms: i64,
    ) -> Option<IsrProposal> {
        let progress = self.followers.get_mut(&follower)?;
        if fetch_offset >= leader_log_end_offset {
            progress.last_caught_up_ms = now_ms;
        } else if fetch_offset >= progress.last_fetch_leader_log_end_offset
            && progress.last_fetch_ms >= 0
        {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.last_fetch_ms);
        }
        progress.log_end_offset = fetch_offset;
        progress.last_fetch_ms = now_ms;
        progress.last_fetch_leader_log_end_offset = leader_log_end_offset;
        self.advance_high_watermark(leader_log_end_offset);
        self.maybe_expand(follower, now_ms)
    }

    /// The leader appended; its log now ends at `leader_log_end_offset`.
    pub fn on_local_append(&mut self, leader_log_end_offset: i64) {
        self.advance_high_watermark(leader_log_end_offset);
    }

    /// Checks for in-sync followers that fell behind. Returns an ISR shrink to propose, if any.
    pub fn poll(&mut self, leader_log_end_offset: i64, now_ms: i64) -> Option<IsrProposal> {
        if !self.may_propose(now_ms) {
            return None;
        }
        let lagging: Vec<BrokerId> = self
            .assignment
            .in_sync_replicas
            .iter()
            .copied()
            .filter(|r| *r != self.local)
            .filter(|r| self.is_out_of_sync(*r, leader_log_end_offset, now_ms))
            .collect();
        if lagging.is_empty() {
            return None;
        }
        let new_isr = self
            .assignment
            .in_sync_replicas
            .iter()
            .copied()
            .filter(|r| !lagging.contains(r))
            .collect();
        self.propose(new_isr)
    }

    /// When `poll` next has something to decide: the earliest time an in-sync follower would
    /// be out of sync if it does not fetch meanwhile.
    pub fn next_deadline(&self) -> Option<i64> {
        self.assignment
            .in_sync_replicas
            .iter()
            .filter(|r| **r != self.local)
            .filter_map(|r| self.followers.get(r))
            .map(|p| p.last_caught_up_ms.max(0) + self.config.replica_lag_time_max_ms + 1)
            .min()
    }

    fn is_out_of_sync(&self, follower: BrokerId, leader_log_end_offset: i64, now_ms: i64) -> bool {
        let Some(p) = self.followers.get(&follower) else {
            return true;
        };
        let caught_up_now = p.log_end_offset >= leader_log_end_offset;
        !caught_up_now && now_ms - p.last_caught_up_ms > self.config.replica_lag_time_max_ms
    }

    fn may_propose(&self, now_ms: i64) -> bool {
        self.pending.is_none() && now_ms >= self.retry_after_ms
    }

    fn maybe_expand(&mut self, follower: BrokerId, now_ms: i64) -> Option<IsrProposal> {
        if !self.may_propose(now_ms) || self.assignment.in_sync_replicas.contains(&follower) {
            return None;
        }
        let progress = self.followers.get(&follower)?;
        let caught_up = progress.log_end_offset >= self.high_watermark
            && progress.log_end_offset >= self.leader_epoch_start_offset;
        if !caught_up {
            return None;
        }
        let mut new_isr = self.assignment.in_sync_replicas.clone();
        new_isr.push(follower);
        self.propose(new_isr)
    }

    fn propose(&mut self, new_in_sync_replicas: Vec<BrokerId>) -> Option<IsrProposal> {
        let proposal = IsrProposal {
            new_in_sync_replicas,
            leader_epoch: self.assignment.leader_epoch,
            partition_epoch: self.assignment.partition_epoch,
        };
        self.pending = Some(proposal.clone());
        Some(proposal)
    }

    /// The maximal ISR: committed, plus a replica being added.
    fn maximal_isr(&self) -> Vec<BrokerId> {
        let mut isr = self.assignment.in_sync_replicas.clone();
        if let Some(p) = &self.pending {
            for r in &p.new_in_sync_replicas {
                if !isr.contains(r) {
                    isr.push(*r);
                }
            }
        }
        isr
    }

    fn advance_high_watermark(&mut self, leader_log_end_offset: i64) {
        if self.assignment.in_sync_replicas.len() < self.effective_min_isr() {
            return;
        }
        let mut candidate = leader_log_end_offset;
        for r in self.maximal_isr() {
            if r == self.local {
                continue;
            }
            let end = self.followers.get(&r).map_or(-1, |p| p.log_end_offset);
            candidate = candidate.min(end);
        }
        if candidate > self.high_watermark {
            self.high_watermark = candidate.min(leader_log_end_offset);
        }
    }
}

#[cfg(test)]
mod tests;
