//! Partition leadership as brokers come and go: who leads a new partition, and which
//! partitions change when a broker stops or starts being available (Kafka's
//! `ReplicationControlManager.generateLeaderAndIsrUpdates`).
//!
//! Each partition's next state is decided by [`super::partition_change`], which holds the
//! rules (in-sync replicas first, then eligible leader replicas, then an unclean election
//! where the topic allows it); this module finds the partitions a broker event touches and
//! writes their records:
//!
//! - A broker that stops being available (fenced, in controlled shutdown, replaced by a new
//!   incarnation) loses its leaderships and leaves the in-sync replicas, except where it is
//!   the last member: Kafka keeps the last one so that the partition can only be led again by
//!   a replica known to have every committed record. Below `min.insync.replicas` it joins the
//!   eligible leader replicas.
//! - A broker that becomes available gives a leader to the partitions that have none and that
//!   it may lead now.
//!
//! The partition loops scan every partition of the image. Kafka keeps an index from broker to
//! partitions (`BrokersToIsrs`) for this; a scan is enough until clusters grow large.

use super::ControllerConfig;
use super::partition_change::PartitionChange;
use super::pending::Pending;
use crate::ids::BrokerId;
use crate::image::{MetadataImage, PartitionImage, TopicImage};

/// The leader a clean election picks among in-sync replicas: the first replica, in replica
/// order, that is in sync and available; [`BrokerId::NONE`] when there is none.
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
    Some(PartitionImage::new(
        replicas.to_vec(),
        in_sync_replicas,
        leader,
    ))
}

/// Whether `broker` leads any partition.
pub fn leads_any(image: &MetadataImage, broker: BrokerId) -> bool {
    image.partitions().any(|(_, _, p)| p.leader == broker)
}

/// Moves leadership and in-sync membership away from `broker`, which the pending image
/// already shows as unavailable. Returns how many partitions changed.
pub(crate) fn move_away_from(
    pending: &mut Pending<'_>,
    config: &ControllerConfig,
    broker: BrokerId,
) -> usize {
    change_each(pending, |image, topic, p| {
        if p.leader != broker && !p.in_sync_replicas.contains(&broker) {
            return None;
        }
        PartitionChange::new(image, config, &topic.name, p)
            .without(broker)
            .build()
    })
}

/// Elects a leader for every leaderless partition that can have one now (from its in-sync
/// replicas, its eligible leader replicas, or any replica where unclean election is on).
pub(crate) fn elect_leaderless(pending: &mut Pending<'_>, config: &ControllerConfig) -> usize {
    change_each(pending, |image, topic, p| {
        if p.has_leader() {
            return None;
        }
        PartitionChange::new(image, config, &topic.name, p)
            .build()
            .filter(PartitionImage::has_leader)
    })
}

/// Decides every partition of the pending image with `decide` and appends a record for each
/// one that changes. Returns how many changed.
pub(crate) fn change_each(
    pending: &mut Pending<'_>,
    decide: impl Fn(&MetadataImage, &TopicImage, &PartitionImage) -> Option<PartitionImage>,
) -> usize {
    let image = pending.image();
    let records: Vec<_> = image
        .topic_partitions()
        .filter_map(|(topic, partition, p)| {
            Some(decide(image, topic, p)?.to_record(topic.topic_id, partition))
        })
        .collect();
    let count = records.len();
    pending.extend(records);
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[i32]) -> Vec<BrokerId> {
        v.iter().copied().map(BrokerId).collect()
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
    fn a_new_partition_is_led_by_its_first_available_replica() {
        let state = initial_state(&ids(&[1, 2, 3]), |b| b != BrokerId(1)).unwrap();
        assert_eq!(state.leader, BrokerId(2));
        assert_eq!(state.in_sync_replicas, ids(&[2, 3]));
        assert!(state.eligible_leader_replicas.is_empty());
        assert_eq!(initial_state(&ids(&[1]), |_| false), None);
    }
}
