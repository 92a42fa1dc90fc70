//! Partition leadership and in-sync replicas: who leads a partition, and how its state changes
//! when a broker stops or starts being available.
//!
//! The rules are those of Kafka's `ReplicationControlManager` and `PartitionChangeBuilder`,
//! without unclean election and without eligible leader replicas (KIP-966):
//!
//! - The leader is the first broker in the partition's *replica order* that is in the in-sync
//!   replicas and available (unfenced, not in controlled shutdown), so the preferred (first)
//!   replica leads whenever it can. With none, the leader is [`BrokerId::NONE`] and the
//!   partition is offline until one of its in-sync replicas comes back.
//! - A broker that stops being available leaves the in-sync replicas of its partitions, except
//!   where it is the last member: Kafka keeps the last one so that the partition can only be
//!   led again by a replica known to have every committed record.
//! - A leader change bumps the leader epoch; any change bumps the partition epoch; a change
//!   is written as a whole [`MetadataRecord::Partition`].
//!
//! Invariants kept by every function here: the leader is in the in-sync replicas or is
//! `NONE`; the in-sync replicas are a non-empty subset of the replicas; epochs never decrease.
//!
//! The partition loops scan every partition of the image. Kafka keeps an index from broker to
//! partitions (`BrokersToIsrs`) for this; a scan is enough until clusters grow large.

use uuid::Uuid;

use super::pending::Pending;
use crate::ids::{BrokerId, LeaderEpoch, PartitionEpoch};
use crate::image::{MetadataImage, PartitionImage};
use crate::records::MetadataRecord;

/// The leader Kafka elects: the first replica, in replica order, that is in sync and
/// available; [`BrokerId::NONE`] when there is none.
pub fn elect_leader(
    replicas: &[BrokerId],
    in_sync_replicas: &[BrokerId],
    is_available: impl Fn(BrokerId) -> bool,
) -> BrokerId {
    replicas
        .iter()
        .copied()
        .find(|&b| in_sync_replicas.contains(&b) && is_available(b))
        .unwrap_or(BrokerId::NONE)
}

/// The state of a new partition: its available replicas, in replica order, are in sync and
/// the first of them leads (Kafka's `createTopic`). `None` when no replica is available.
pub fn initial_state(
    replicas: &[BrokerId],
    is_available: impl Fn(BrokerId) -> bool,
) -> Option<PartitionImage> {
    let in_sync_replicas: Vec<BrokerId> = replicas
        .iter()
        .copied()
        .filter(|&b| is_available(b))
        .collect();
    let leader = *in_sync_replicas.first()?;
    Some(PartitionImage {
        replicas: replicas.to_vec(),
        in_sync_replicas,
        leader,
        leader_epoch: LeaderEpoch(0),
        partition_epoch: PartitionEpoch(0),
    })
}

/// The partition's next state once `broker` can no longer lead (fenced, shutting down, or
/// replaced by a new incarnation); `None` if the partition does not change.
pub fn without_broker(
    partition: &PartitionImage,
    broker: BrokerId,
    is_available: impl Fn(BrokerId) -> bool,
) -> Option<PartitionImage> {
    if partition.leader != broker && !partition.in_sync_replicas.contains(&broker) {
        return None;
    }
    let mut in_sync_replicas: Vec<BrokerId> = partition
        .in_sync_replicas
        .iter()
        .copied()
        .filter(|&b| b != broker)
        .collect();
    if in_sync_replicas.is_empty() {
        in_sync_replicas = partition.in_sync_replicas.clone();
    }
    let eligible = |b: BrokerId| b != broker && is_available(b);
    let leader = if !partition.leader.is_none() && eligible(partition.leader) {
        partition.leader
    } else {
        elect_leader(&partition.replicas, &in_sync_replicas, eligible)
    };
    changed(partition, in_sync_replicas, leader)
}

/// A leaderless partition's next state if one of its in-sync replicas is available now;
/// `None` if it keeps its leader or stays offline.
pub fn with_elected_leader(
    partition: &PartitionImage,
    is_available: impl Fn(BrokerId) -> bool,
) -> Option<PartitionImage> {
    if partition.has_leader() {
        return None;
    }
    let leader = elect_leader(
        &partition.replicas,
        &partition.in_sync_replicas,
        is_available,
    );
    changed(partition, partition.in_sync_replicas.clone(), leader)
}

/// `partition` with new in-sync replicas and leader, its epochs bumped for what changed.
fn changed(
    partition: &PartitionImage,
    in_sync_replicas: Vec<BrokerId>,
    leader: BrokerId,
) -> Option<PartitionImage> {
    let leader_changed = leader != partition.leader;
    if !leader_changed && in_sync_replicas == partition.in_sync_replicas {
        return None;
    }
    debug_assert!(!in_sync_replicas.is_empty());
    debug_assert!(leader.is_none() || in_sync_replicas.contains(&leader));
    debug_assert!(
        in_sync_replicas
            .iter()
            .all(|b| partition.replicas.contains(b))
    );
    Some(PartitionImage {
        replicas: partition.replicas.clone(),
        in_sync_replicas,
        leader,
        leader_epoch: if leader_changed {
            partition.leader_epoch.next()
        } else {
            partition.leader_epoch
        },
        partition_epoch: partition.partition_epoch.next(),
    })
}

/// The record that writes `state` as partition `partition` of topic `topic_id`.
pub fn partition_record(topic_id: Uuid, partition: i32, state: &PartitionImage) -> MetadataRecord {
    MetadataRecord::Partition {
        topic_id,
        partition,
        replicas: state.replicas.clone(),
        in_sync_replicas: state.in_sync_replicas.clone(),
        leader: state.leader,
        leader_epoch: state.leader_epoch,
        partition_epoch: state.partition_epoch,
    }
}

/// Whether `broker` leads any partition.
pub fn leads_any(image: &MetadataImage, broker: BrokerId) -> bool {
    image.partitions().any(|(_, _, p)| p.leader == broker)
}

/// Moves leadership and in-sync membership away from `broker`, which the pending image
/// already shows as unavailable. Returns how many partitions changed.
pub(crate) fn move_away_from(pending: &mut Pending<'_>, broker: BrokerId) -> usize {
    let image = pending.image();
    let changes: Vec<MetadataRecord> = image
        .partitions()
        .filter_map(|(topic_id, partition, p)| {
            let next = without_broker(p, broker, |b| image.is_available(b))?;
            Some(partition_record(topic_id, partition, &next))
        })
        .collect();
    let count = changes.len();
    pending.extend(changes);
    count
}

/// Elects a leader for every leaderless partition that has an available in-sync replica.
pub(crate) fn elect_leaderless(pending: &mut Pending<'_>) {
    let image = pending.image();
    let changes: Vec<MetadataRecord> = image
        .partitions()
        .filter_map(|(topic_id, partition, p)| {
            let next = with_elected_leader(p, |b| image.is_available(b))?;
            Some(partition_record(topic_id, partition, &next))
        })
        .collect();
    pending.extend(changes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[i32]) -> Vec<BrokerId> {
        v.iter().copied().map(BrokerId).collect()
    }

    fn partition(replicas: &[i32], in_sync: &[i32], leader: i32) -> PartitionImage {
        PartitionImage {
            replicas: ids(replicas),
            in_sync_replicas: ids(in_sync),
            leader: BrokerId(leader),
            leader_epoch: LeaderEpoch(3),
            partition_epoch: PartitionEpoch(7),
        }
    }

    #[test]
    fn the_first_available_in_sync_replica_in_replica_order_leads() {
        let all = |_| true;
        assert_eq!(
            elect_leader(&ids(&[3, 1, 2]), &ids(&[1, 2, 3]), all),
            BrokerId(3)
        );
        assert_eq!(
            elect_leader(&ids(&[3, 1, 2]), &ids(&[1, 2]), |b| b != BrokerId(1)),
            BrokerId(2)
        );
        assert_eq!(
            elect_leader(&ids(&[3, 1]), &ids(&[1]), |b| b != BrokerId(1)),
            BrokerId::NONE
        );
    }

    #[test]
    fn losing_the_leader_moves_leadership_and_shrinks_the_in_sync_replicas() {
        let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        let next = without_broker(&p, BrokerId(1), |b| b != BrokerId(1)).unwrap();
        assert_eq!(next.leader, BrokerId(2));
        assert_eq!(next.in_sync_replicas, ids(&[2, 3]));
        assert_eq!(next.leader_epoch, LeaderEpoch(4));
        assert_eq!(next.partition_epoch, PartitionEpoch(8));
    }

    #[test]
    fn losing_a_follower_keeps_the_leader_epoch() {
        let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        let next = without_broker(&p, BrokerId(3), |b| b != BrokerId(3)).unwrap();
        assert_eq!(next.leader, BrokerId(1));
        assert_eq!(next.in_sync_replicas, ids(&[1, 2]));
        assert_eq!(next.leader_epoch, LeaderEpoch(3));
        assert_eq!(next.partition_epoch, PartitionEpoch(8));
    }

    #[test]
    fn the_last_in_sync_replica_stays_and_the_partition_goes_offline() {
        let p = partition(&[1], &[1], 1);
        let next = without_broker(&p, BrokerId(1), |_| false).unwrap();
        assert_eq!(next.leader, BrokerId::NONE);
        assert_eq!(next.in_sync_replicas, ids(&[1]));
        assert_eq!(next.leader_epoch, LeaderEpoch(4));
        // Already offline and still the last member: nothing to change.
        assert_eq!(without_broker(&next, BrokerId(1), |_| false), None);
    }

    #[test]
    fn an_unrelated_broker_changes_nothing() {
        let p = partition(&[1, 2], &[1, 2], 1);
        assert_eq!(without_broker(&p, BrokerId(5), |_| true), None);
    }

    #[test]
    fn an_offline_partition_gets_a_leader_when_an_in_sync_replica_returns() {
        let p = partition(&[1, 2], &[2], -1);
        assert_eq!(with_elected_leader(&p, |b| b == BrokerId(1)), None);
        let next = with_elected_leader(&p, |b| b == BrokerId(2)).unwrap();
        assert_eq!(next.leader, BrokerId(2));
        assert_eq!(next.leader_epoch, LeaderEpoch(4));
        assert_eq!(next.partition_epoch, PartitionEpoch(8));
    }

    #[test]
    fn a_new_partition_is_led_by_its_first_available_replica() {
        let state = initial_state(&ids(&[1, 2, 3]), |b| b != BrokerId(1)).unwrap();
        assert_eq!(state.leader, BrokerId(2));
        assert_eq!(state.in_sync_replicas, ids(&[2, 3]));
        assert_eq!(initial_state(&ids(&[1]), |_| false), None);
    }
}
