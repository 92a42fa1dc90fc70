//! One partition's next state, whatever asked for the change: Kafka's `PartitionChangeBuilder`.
//!
//! A caller starts from the current [`PartitionImage`], states what it wants (new in-sync
//! replicas from AlterPartition, a broker that can no longer lead, a reassignment, a preferred
//! or unclean election) and [`PartitionChange::build`] works out the rest, in this order:
//!
//! 1. **Reassignment completion.** When every replica being added is in sync (and some
//!    replica not being removed is too), the removed replicas leave the replicas and the
//!    in-sync replicas. Checked on every change, so the AlterPartition that adds the last new
//!    replica completes the reassignment in the same record.
//! 2. **Election.** The current leader stays while it is in sync and available (or, for a
//!    preferred election, the first replica takes over when it is). Otherwise the first
//!    replica in replica order that is in sync and available leads; if no in-sync replica is
//!    available, the first available *eligible leader replica* (KIP-966), which then becomes
//!    the only in-sync replica; failing that, with an unclean election, the first available
//!    replica, which loses whatever committed records it lacks (the in-sync replicas become
//!    just it and it starts `Recovering`); else the partition has no leader.
//! 3. **Eligible leader replicas.** While the in-sync replicas are fewer than the topic's
//!    `min.insync.replicas` (capped at the number of replicas), replicas that leave them join
//!    the eligible leader replicas: the leader does not advance the high watermark in that
//!    state, so they keep every committed record (the contract on [`PartitionImage`]). A
//!    replica that rejoins the in-sync replicas leaves them, and they are cleared once the
//!    in-sync replicas reach the minimum again or after an unclean election (whose leader's
//!    log is the new truth). Unavailable brokers stay: that is the point.
//! 4. **Epochs.** A new leader, or a replica leaving the replicas (so that its fetches are
//!    fenced), bumps the leader epoch; any change bumps the partition epoch; no change gives
//!    `None`.
//!
//! Unlike Kafka with KIP-966, the in-sync replicas are never empty: the last one stays when it
//! becomes unavailable (Kafka's behaviour before KIP-966), so "no in-sync replica" reads "no
//! in-sync replica available" here.
//!
//! What the eligible leader replicas cannot know yet: Kafka removes a broker from them when it
//! registers after an *unclean* shutdown (its log may have lost unflushed records), learning
//! that from the registration's previous broker epoch. Strom's registration does not carry
//! it, so an eligible replica is trusted to keep its log across a restart, as the last
//! in-sync replica always has been.

use super::ControllerConfig;
use super::replication_config::ReplicationConfig;
use crate::ids::BrokerId;
use crate::image::{MetadataImage, PartitionImage};
use crate::records::LeaderRecoveryState;

/// How a leader is chosen when one must be (Kafka's `PartitionChangeBuilder.Election`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Election {
    /// Keep the partition online from the in-sync, then the eligible leader replicas.
    Online,
    /// As `Online`, but the first replica takes over whenever it qualifies.
    Preferred,
    /// As `Online`, then any available replica, at the cost of the records it lacks.
    Unclean,
}

/// How the elected leader qualified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualified {
    InSync,
    Eligible,
    Unclean,
}

pub(crate) struct PartitionChange<'a> {
    image: &'a MetadataImage,
    current: &'a PartitionImage,
    /// The requested state: replicas, in-sync replicas, reassignment, recovery state.
    target: PartitionImage,
    config: ReplicationConfig,
    election: Election,
    /// A broker that may not lead, although the image may still show it available.
    excluded: Option<BrokerId>,
    /// The caller chose in-sync replicas that are not known to be in sync.
    forced_unclean: bool,
}

impl<'a> PartitionChange<'a> {
    /// A change of `current`, a partition of `topic`; the election is unclean when the topic
    /// allows it, as Kafka's controller does for every change.
    pub(crate) fn new(
        image: &'a MetadataImage,
        config: &ControllerConfig,
        topic: &str,
        current: &'a PartitionImage,
    ) -> Self {
        let config = ReplicationConfig::resolve(image, topic, config);
        PartitionChange {
            image,
            current,
            target: current.clone(),
            election: if config.unclean_leader_election {
                Election::Unclean
            } else {
                Election::Online
            },
            config,
            excluded: None,
            forced_unclean: false,
        }
    }

    pub(crate) fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    /// `broker` can no longer lead (fenced, shutting down, replaced): it leaves the in-sync
    /// replicas, unless it is the last one.
    pub(crate) fn without(mut self, broker: BrokerId) -> Self {
        self.excluded = Some(broker);
        let rest = minus(&self.target.in_sync_replicas, &[broker]);
        if !rest.is_empty() {
            self.target.in_sync_replicas = rest;
        }
        self
    }

    /// New in-sync replicas, checked by the caller: a non-empty subset of the replicas.
    pub(crate) fn in_sync_replicas(mut self, in_sync_replicas: Vec<BrokerId>) -> Self {
        self.target.in_sync_replicas = in_sync_replicas;
        self
    }

    pub(crate) fn leader_recovery_state(mut self, state: LeaderRecoveryState) -> Self {
        self.target.leader_recovery_state = state;
        self
    }

    /// New replicas and reassignment state; the in-sync replicas keep only those still
    /// among the replicas (the caller makes sure one is).
    pub(crate) fn reassignment(
        mut self,
        replicas: Vec<BrokerId>,
        adding_replicas: Vec<BrokerId>,
        removing_replicas: Vec<BrokerId>,
    ) -> Self {
        self.target
            .in_sync_replicas
            .retain(|b| replicas.contains(b));
        self.target.replicas = replicas;
        self.target.adding_replicas = adding_replicas;
        self.target.removing_replicas = removing_replicas;
        self
    }

    /// In-sync replicas chosen without knowing they are in sync (a reassignment reverted
    /// when only added replicas were in sync): the change is unclean whoever leads.
    pub(crate) fn unclean_in_sync_replicas(mut self, in_sync_replicas: Vec<BrokerId>) -> Self {
        self.target.in_sync_replicas = in_sync_replicas;
        self.forced_unclean = true;
        self
    }

    /// The partition's next state, or `None` if nothing changes. See the module docs.
    pub(crate) fn build(self) -> Option<PartitionImage> {
        let mut next = self.target.clone();
        complete_reassignment(&mut next);
        let eligible = still_eligible(self.current, &next);
        let (leader, qualified) = self.elect(&next, &eligible);
        next.leader = leader;
        if matches!(qualified, Some(Qualified::Eligible | Qualified::Unclean)) {
            next.in_sync_replicas = vec![leader];
        }
        if self.forced_unclean || qualified == Some(Qualified::Unclean) {
            // Data loss: the new leader's log is the partition's truth from here on, so no
            // other replica is known to have every committed record.
            tracing::warn!(%leader, "unclean leader election: committed records may be lost");
            next.eligible_leader_replicas.clear();
            next.last_known_elr.clear();
            next.leader_recovery_state = LeaderRecoveryState::Recovering;
        } else {
            self.track_eligible(&mut next);
        }
        with_epochs(self.current, next)
    }

    fn acceptable(&self, broker: BrokerId) -> bool {
        Some(broker) != self.excluded && self.image.is_available(broker)
    }

    /// The leader and how it qualified (`None` for no leader).
    fn elect(&self, next: &PartitionImage, eligible: &[BrokerId]) -> (BrokerId, Option<Qualified>) {
        let isr = &next.in_sync_replicas;
        let any_in_sync = isr.iter().any(|&b| self.acceptable(b));
        let valid = |b: BrokerId| {
            self.acceptable(b) && (isr.contains(&b) || (!any_in_sync && eligible.contains(&b)))
        };
        let preferred = next
            .preferred_leader()
            .filter(|_| self.election == Election::Preferred);
        let leader = preferred
            .filter(|&b| valid(b))
            .or_else(|| Some(self.current.leader).filter(|&b| !b.is_none() && valid(b)))
            .or_else(|| next.replicas.iter().copied().find(|&b| valid(b)));
        if let Some(leader) = leader {
            let how = if isr.contains(&leader) {
                Qualified::InSync
            } else {
                Qualified::Eligible
            };
            return (leader, Some(how));
        }
        // Unclean: replicas a reassignment is adding come last, since they are the ones
        // most likely to lack records (Kafka takes replica order as it is).
        let (original, adding): (Vec<BrokerId>, Vec<BrokerId>) = next
            .replicas
            .iter()
            .partition(|b| !next.adding_replicas.contains(b));
        if self.election == Election::Unclean
            && let Some(leader) = original
                .into_iter()
                .chain(adding)
                .find(|&b| self.acceptable(b))
        {
            return (leader, Some(Qualified::Unclean));
        }
        (BrokerId::NONE, None)
    }

    /// Step 3 of the module docs, for a clean change.
    fn track_eligible(&self, next: &mut PartitionImage) {
        let min = self
            .config
            .effective_min_insync_replicas(next.replicas.len());
        let current = self.current;
        next.eligible_leader_replicas = if next.in_sync_replicas.len() >= min {
            Vec::new()
        } else {
            let was_safe = |b: &BrokerId| {
                current.eligible_leader_replicas.contains(b) || current.in_sync_replicas.contains(b)
            };
            next.replicas
                .iter()
                .copied()
                .filter(|b| was_safe(b) && !next.in_sync_replicas.contains(b))
                .collect()
        };
        next.last_known_elr = if next.has_leader() {
            Vec::new()
        } else if next.eligible_leader_replicas.is_empty()
            && !current.eligible_leader_replicas.is_empty()
        {
            // The last eligible replicas were lost while nothing leads: remember them.
            still_eligible(current, next)
        } else {
            let mut kept = minus(&current.last_known_elr, &next.in_sync_replicas);
            kept.retain(|b| {
                next.replicas.contains(b) && !next.eligible_leader_replicas.contains(b)
            });
            kept
        };
    }
}

/// Step 1 of the module docs.
fn complete_reassignment(next: &mut PartitionImage) {
    if !next.is_reassigning() {
        return;
    }
    let in_sync = minus(&next.in_sync_replicas, &next.removing_replicas);
    let all_added = next.adding_replicas.iter().all(|b| in_sync.contains(b));
    if in_sync.is_empty() || !all_added {
        return;
    }
    next.replicas = minus(&next.replicas, &next.removing_replicas);
    next.in_sync_replicas = in_sync;
    next.adding_replicas.clear();
    next.removing_replicas.clear();
}

/// The current eligible leader replicas that still qualify under `next`: still replicas and
/// not in sync.
fn still_eligible(current: &PartitionImage, next: &PartitionImage) -> Vec<BrokerId> {
    current
        .eligible_leader_replicas
        .iter()
        .copied()
        .filter(|b| next.replicas.contains(b) && !next.in_sync_replicas.contains(b))
        .collect()
}

/// `next` with its epochs bumped for what changed since `current`; `None` if nothing did.
fn with_epochs(current: &PartitionImage, mut next: PartitionImage) -> Option<PartitionImage> {
    next.leader_epoch = current.leader_epoch;
    next.partition_epoch = current.partition_epoch;
    if next == *current {
        return None;
    }
    let replica_removed = current.replicas.iter().any(|b| !next.replicas.contains(b));
    if next.leader != current.leader || replica_removed {
        next.leader_epoch = current.leader_epoch.next();
    }
    next.partition_epoch = current.partition_epoch.next();
    debug_assert_valid(&next);
    Some(next)
}

/// `list` without the brokers in `removed`, in order.
fn minus(list: &[BrokerId], removed: &[BrokerId]) -> Vec<BrokerId> {
    list.iter()
        .copied()
        .filter(|b| !removed.contains(b))
        .collect()
}

fn debug_assert_valid(p: &PartitionImage) {
    let subset = |list: &[BrokerId]| list.iter().all(|b| p.replicas.contains(b));
    debug_assert!(
        !p.in_sync_replicas.is_empty(),
        "empty in-sync replicas: {p:?}"
    );
    debug_assert!(
        subset(&p.in_sync_replicas),
        "in-sync replicas not replicas: {p:?}"
    );
    debug_assert!(
        p.leader.is_none() || p.in_sync_replicas.contains(&p.leader),
        "{p:?}"
    );
    debug_assert!(
        subset(&p.eligible_leader_replicas),
        "eligible not replicas: {p:?}"
    );
    debug_assert!(
        p.eligible_leader_replicas
            .iter()
            .all(|b| !p.in_sync_replicas.contains(b)),
        "eligible and in sync: {p:?}"
    );
    debug_assert!(
        subset(&p.adding_replicas) && subset(&p.removing_replicas),
        "{p:?}"
    );
}

#[cfg(test)]
mod tests;
