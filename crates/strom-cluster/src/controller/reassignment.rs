//! Partition reassignment (KIP-455, as KRaft does it): AlterPartitionReassignments (API 45)
//! moves a partition to new replicas, copying the data before any old replica is dropped;
//! ListPartitionReassignments (API 46) shows the ones in progress.
//!
//! ```text
//!  replicas [1,2,3]  ── target [4,2,3] ──▶  replicas [4,2,3,1]  adding [4]  removing [1]
//!                                            │ leader, in-sync replicas unchanged; 4 fetches
//!                                            ▼ AlterPartition puts 4 in sync
//!                                           replicas [4,2,3]  (1 leaves the in-sync and
//!                                           eligible replicas; if 1 led, 4, 2 or 3 does)
//! ```
//!
//! - **Start**: `replicas = target + (original − target)`, `adding = target − original`,
//!   `removing = original − target`, in that order (Kafka's), where `original` is the
//!   replicas without any that an ongoing reassignment is adding. A new target therefore
//!   replaces an ongoing reassignment as if it had been cancelled first: replicas the old one
//!   was adding and the new one does not want are dropped at once (KRaft would keep them
//!   until the new one completes, and then a cancel could not return to the original).
//! - **Completion** happens in [`super::partition_change`] on any change of the partition,
//!   once every adding replica is in sync.
//! - **Cancel** (no target) returns to the original replicas (`replicas − adding`, in the
//!   reassignment's order), keeping the in-sync replicas among them. If only added replicas
//!   are in sync, that needs an unclean election: refused with INVALID_REPLICA_ASSIGNMENT
//!   unless the topic allows unclean elections, as Kafka does.

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

use super::partition_change::PartitionChange;
use super::pending::Pending;
use super::placement::check_replication_factor;
use super::replication_config::ReplicationConfig;
use super::{ApiError, Controller, ControllerConfig, Decision};
use crate::ids::BrokerId;
use crate::image::{MetadataImage, PartitionImage, TopicImage};
use crate::records::MetadataRecord;

/// One partition of an AlterPartitionReassignments request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionReassignment {
    pub topic: String,
    pub partition: i32,
    /// The target replicas, preferred leader first; `None` cancels the ongoing reassignment.
    pub replicas: Option<Vec<BrokerId>>,
}

/// A reassignment in progress, as ListPartitionReassignments shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<BrokerId>,
    pub adding_replicas: Vec<BrokerId>,
    pub removing_replicas: Vec<BrokerId>,
}

impl Controller {
    /// AlterPartitionReassignments: one result per request, in order; each sees the ones
    /// before it. A target equal to the current replicas succeeds without records.
    pub fn alter_partition_reassignments(
        &mut self,
        image: &MetadataImage,
        requests: &[PartitionReassignment],
    ) -> (Vec<MetadataRecord>, Vec<Decision<()>>) {
        let mut pending = Pending::new(image);
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            let decision = reassign(pending.image(), &self.config, request);
            results.push(decision.map(|record| pending.extend(record)));
        }
        (pending.into_records(), results)
    }
}

/// ListPartitionReassignments: the ongoing reassignments of the given topics and partitions
/// (unknown ones are left out, as in Kafka), or of every partition with `None`.
pub fn list_partition_reassignments(
    image: &MetadataImage,
    filter: Option<&[(String, Vec<i32>)]>,
) -> Vec<OngoingReassignment> {
    let wanted = |topic: &str, partition: i32| {
        filter.is_none_or(|f| {
            f.iter()
                .any(|(t, partitions)| t == topic && partitions.contains(&partition))
        })
    };
    image
        .topic_partitions()
        .filter(|(t, partition, p)| p.is_reassigning() && wanted(&t.name, *partition))
        .map(|(t, partition, p)| OngoingReassignment {
            topic: t.name.clone(),
            partition,
            replicas: p.replicas.clone(),
            adding_replicas: p.adding_replicas.clone(),
            removing_replicas: p.removing_replicas.clone(),
        })
        .collect()
}

/// One partition's reassignment: the record that starts or cancels it, if anything changes.
fn reassign(
    image: &MetadataImage,
    config: &ControllerConfig,
    request: &PartitionReassignment,
) -> Decision<Option<MetadataRecord>> {
    let (topic, current) = find(image, &request.topic, request.partition)?;
    let next = match &request.replicas {
        Some(target) => start(image, config, topic, current, target)?,
        None => cancel(image, config, topic, current)?,
    };
    Ok(next.map(|next| next.to_record(topic.topic_id, request.partition)))
}

fn find<'a>(
    image: &'a MetadataImage,
    topic: &str,
    partition: i32,
) -> Decision<(&'a TopicImage, &'a PartitionImage)> {
    let unknown = |message: String| ApiError::new(ResponseError::UnknownTopicOrPartition, message);
    let t = image
        .topic(topic)
        .ok_or_else(|| unknown(format!("Unable to find a topic named {topic}.")))?;
    let p = t
        .partitions
        .get(&partition)
        .ok_or_else(|| unknown(format!("Unable to find partition {topic}:{partition}.")))?;
    Ok((t, p))
}

fn start(
    image: &MetadataImage,
    config: &ControllerConfig,
    topic: &TopicImage,
    current: &PartitionImage,
    target: &[BrokerId],
) -> Decision<Option<PartitionImage>> {
    validate_target(image, target, config.max_replication_factor)?;
    let original = current.original_replicas();
    let removing = minus(&original, target);
    let adding = minus(target, &original);
    let replicas: Vec<BrokerId> = target.iter().chain(&removing).copied().collect();
    if !current
        .in_sync_replicas
        .iter()
        .any(|b| replicas.contains(b))
    {
        return Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            "Every in-sync replica is one the ongoing reassignment is adding and the new target drops; include one of them or let the reassignment complete.",
        ));
    }
    Ok(PartitionChange::new(image, config, &topic.name, current)
        .reassignment(replicas, adding, removing)
        .build())
}

fn cancel(
    image: &MetadataImage,
    config: &ControllerConfig,
    topic: &TopicImage,
    current: &PartitionImage,
) -> Decision<Option<PartitionImage>> {
    if !current.is_reassigning() {
        return Err(ApiError::new(
            ResponseError::NoReassignmentInProgress,
            "No partition reassignment is in progress.",
        ));
    }
    let original = current.original_replicas();
    let change = PartitionChange::new(image, config, &topic.name, current).reassignment(
        original.clone(),
        Vec::new(),
        Vec::new(),
    );
    if current
        .in_sync_replicas
        .iter()
        .any(|b| original.contains(b))
    {
        return Ok(change.build());
    }
    if !ReplicationConfig::resolve(image, &topic.name, config).unclean_leader_election {
        return Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            format!(
                "Unable to revert the reassignment of {} because it would require an unclean leader election.",
                topic.name
            ),
        ));
    }
    // Only added replicas are in sync: the first original replica takes the in-sync set
    // alone, knowing it may lack committed records (Kafka's `PartitionReassignmentRevert`).
    Ok(change
        .unclean_in_sync_replicas(original[..1].to_vec())
        .build())
}

/// Kafka's `validateManualPartitionAssignment` for a target, plus the replication limit.
fn validate_target(image: &MetadataImage, target: &[BrokerId], max_rf: i16) -> Decision<()> {
    let invalid = |message: String| {
        Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            message,
        ))
    };
    if target.is_empty() {
        return invalid("The manual partition assignment includes an empty replica list.".into());
    }
    for (i, b) in target.iter().enumerate() {
        if !image.brokers.contains_key(b) {
            return invalid(format!(
                "The manual partition assignment includes broker {b}, but no such broker is registered."
            ));
        }
        if target[..i].contains(b) {
            return invalid(format!(
                "The manual partition assignment includes the broker {b} more than once."
            ));
        }
    }
    check_replication_factor(target.len().min(i16::MAX as usize) as i16, max_rf)
}

/// `list` without the brokers in `removed`, in order.
fn minus(list: &[BrokerId], removed: &[BrokerId]) -> Vec<BrokerId> {
    list.iter()
        .copied()
        .filter(|b| !removed.contains(b))
        .collect()
}
