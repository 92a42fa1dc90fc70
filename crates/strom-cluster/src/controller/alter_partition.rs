//! AlterPartition (API 56): a partition leader asks to change its in-sync replicas, after a
//! follower fell behind (shrink) or caught up (expand). KRaft's
//! `ReplicationControlManager.alterPartition`.
//!
//! The request names the leader epoch and partition epoch the leader computed its change
//! against; a change computed against an older state is refused, so two changes never race.
//! The accepted change goes through [`super::partition_change`] like any other: it bumps the
//! partition epoch (not the leader epoch), maintains the eligible leader replicas, and
//! completes a reassignment whose last new replica it adds. The reply is the partition's
//! state afterwards, which the leader adopts.
//!
//! Checks, in Kafka's order, each with Kafka's error:
//!
//! | check | error |
//! |---|---|
//! | the requester is registered with that broker epoch | STALE_BROKER_EPOCH |
//! | the topic id exists | UNKNOWN_TOPIC_ID |
//! | the partition exists | UNKNOWN_TOPIC_OR_PARTITION |
//! | neither epoch is newer than the controller's (it is behind: not the active controller) | NOT_CONTROLLER |
//! | the leader epoch is current | FENCED_LEADER_EPOCH |
//! | the requester leads the partition | NOT_LEADER_OR_FOLLOWER (Kafka: INVALID_REQUEST) |
//! | the partition epoch is current | INVALID_UPDATE_VERSION |
//! | the new in-sync replicas are distinct replicas, not empty, and include the leader | INVALID_REQUEST |
//! | a `Recovering` leader keeps itself alone in sync, and never goes back to `Recovering` | INVALID_REQUEST |
//! | every replica added to the in-sync set is registered, unfenced and not shutting down | INELIGIBLE_REPLICA |

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::partition_change::PartitionChange;
use super::{ApiError, Controller, Decision};
use crate::ids::{BrokerEpoch, BrokerId, LeaderEpoch, PartitionEpoch};
use crate::image::{MetadataImage, PartitionImage, TopicImage};
use crate::records::{LeaderRecoveryState, MetadataRecord};

/// AlterPartition for one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionRequest {
    /// The leader asking.
    pub broker_id: BrokerId,
    pub broker_epoch: BrokerEpoch,
    pub topic_id: Uuid,
    pub partition: i32,
    /// The state the change was computed against.
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    pub new_in_sync_replicas: Vec<BrokerId>,
    /// `Recovered` once a leader elected uncleanly has recovered its log; a leader that does
    /// not track recovery sends the default, `Recovered`.
    #[serde(default)]
    pub leader_recovery_state: LeaderRecoveryState,
}

/// The partition's state after an accepted AlterPartition.
///
/// When the change completed a reassignment that removed the requester, `leader` names
/// another broker (or none): the requester is no longer the leader and must wait for the
/// metadata that says so (Kafka answers NEW_LEADER_ELECTED there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionReply {
    pub leader: BrokerId,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    pub in_sync_replicas: Vec<BrokerId>,
    pub leader_recovery_state: LeaderRecoveryState,
}

impl From<&PartitionImage> for AlterPartitionReply {
    fn from(p: &PartitionImage) -> Self {
        AlterPartitionReply {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            in_sync_replicas: p.in_sync_replicas.clone(),
            leader_recovery_state: p.leader_recovery_state,
        }
    }
}

impl Controller {
    /// Decides an AlterPartition. A request that changes nothing gets the current state and
    /// no records. `now_ms` is not needed today; it is taken like every decision's, so the
    /// shell does not change when a rule comes to depend on time.
    pub fn alter_partition(
        &mut self,
        image: &MetadataImage,
        _now_ms: i64,
        request: AlterPartitionRequest,
    ) -> Decision<(Vec<MetadataRecord>, AlterPartitionReply)> {
        let (topic, current) = partition_for(image, &request)?;
        check_epochs_and_leader(current, &request)?;
        check_in_sync_replicas(current, &request)?;
        check_added_replicas_are_eligible(image, current, &request)?;
        let next = PartitionChange::new(image, &self.config, &topic.name, current)
            .in_sync_replicas(request.new_in_sync_replicas)
            .leader_recovery_state(request.leader_recovery_state)
            .build();
        let Some(next) = next else {
            return Ok((Vec::new(), current.into()));
        };
        if next.leader != request.broker_id {
            tracing::info!(
                topic = %topic.name, partition = request.partition, leader = %next.leader,
                "AlterPartition completed a reassignment that moved leadership"
            );
        }
        let record = next.to_record(topic.topic_id, request.partition);
        Ok((vec![record], (&next).into()))
    }
}

/// The partition a request names, once its sender's broker epoch is checked.
fn partition_for<'a>(
    image: &'a MetadataImage,
    request: &AlterPartitionRequest,
) -> Decision<(&'a TopicImage, &'a PartitionImage)> {
    let registered = image.brokers.get(&request.broker_id);
    if registered.is_none_or(|b| b.broker_epoch != request.broker_epoch) {
        return Err(ApiError::new(
            ResponseError::StaleBrokerEpoch,
            format!(
                "Broker {} is not registered with broker epoch {}.",
                request.broker_id, request.broker_epoch
            ),
        ));
    }
    let topic = image.topic_by_id(&request.topic_id).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnknownTopicId,
            format!("No topic with id {}.", request.topic_id),
        )
    })?;
    let partition = topic.partitions.get(&request.partition).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("No partition {}-{}.", topic.name, request.partition),
        )
    })?;
    Ok((topic, partition))
}

fn check_epochs_and_leader(
    current: &PartitionImage,
    request: &AlterPartitionRequest,
) -> Decision<()> {
    let refuse = |error, message: String| Err(ApiError::new(error, message));
    if request.leader_epoch > current.leader_epoch
        || request.partition_epoch > current.partition_epoch
    {
        // The requester has seen a state this controller has not: this controller is
        // behind, so it is likely no longer the active one.
        return refuse(
            ResponseError::NotController,
            format!(
                "The request's epochs (leader {}, partition {}) are newer than the controller's (leader {}, partition {}).",
                request.leader_epoch,
                request.partition_epoch,
                current.leader_epoch,
                current.partition_epoch
            ),
        );
    }
    if request.leader_epoch < current.leader_epoch {
        return refuse(
            ResponseError::FencedLeaderEpoch,
            format!(
                "The leader epoch is {}, not {}.",
                current.leader_epoch, request.leader_epoch
            ),
        );
    }
    if request.broker_id != current.leader {
        return refuse(
            ResponseError::NotLeaderOrFollower,
            format!(
                "Broker {} does not lead the partition; {} does.",
                request.broker_id, current.leader
            ),
        );
    }
    if request.partition_epoch < current.partition_epoch {
        return refuse(
            ResponseError::InvalidUpdateVersion,
            format!(
                "The partition epoch is {}, not {}.",
                current.partition_epoch, request.partition_epoch
            ),
        );
    }
    Ok(())
}

fn check_in_sync_replicas(
    current: &PartitionImage,
    request: &AlterPartitionRequest,
) -> Decision<()> {
    let isr = &request.new_in_sync_replicas;
    let invalid = |why: &str| {
        Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!(
                "Invalid in-sync replicas {isr:?} for replicas {:?}: {why}",
                current.replicas
            ),
        ))
    };
    let mut distinct = isr.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if isr.is_empty() || distinct.len() != isr.len() {
        return invalid("they must be distinct and not empty.");
    }
    if let Some(b) = isr.iter().find(|b| !current.replicas.contains(b)) {
        return invalid(&format!("broker {b} is not a replica."));
    }
    if !isr.contains(&current.leader) {
        return invalid("they must include the leader.");
    }
    let recovering = request.leader_recovery_state == LeaderRecoveryState::Recovering;
    if recovering && isr.len() > 1 {
        return invalid("a leader still recovering from an unclean election must be alone.");
    }
    if recovering && current.leader_recovery_state == LeaderRecoveryState::Recovered {
        return invalid("a recovered leader cannot go back to recovering.");
    }
    Ok(())
}

/// A replica may join the in-sync set only while it is registered, unfenced and not shutting
/// down; replicas already in it are the leader's business.
fn check_added_replicas_are_eligible(
    image: &MetadataImage,
    current: &PartitionImage,
    request: &AlterPartitionRequest,
) -> Decision<()> {
    let added = request
        .new_in_sync_replicas
        .iter()
        .filter(|b| !current.in_sync_replicas.contains(b));
    for &broker in added {
        let why = match image.brokers.get(&broker) {
            None => "not registered",
            Some(b) if b.fenced => "fenced",
            Some(b) if b.in_controlled_shutdown => "shutting down",
            Some(_) => continue,
        };
        return Err(ApiError::new(
            ResponseError::IneligibleReplica,
            format!("Replica {broker} cannot join the in-sync replicas: it is {why}."),
        ));
    }
    Ok(())
}
