//! ListPartitionReassignments (KIP-455): the reassignments in progress, for
//! `kafka-reassign-partitions.sh --verify`, `strom topic reassignments` and the waits of
//! `strom cluster rebalance|remove-broker`.
//!
//! Each ongoing reassignment is reported with the partition's full replica list (targets
//! first, then the replicas being removed), the replicas being added and those being removed.
//! Null `topics` lists every one; otherwise unknown topics and partitions, and partitions not
//! being reassigned, are left out, as in Kafka. The active controller answers from its
//! committed image, so a reassignment that just completed there is not listed even if this
//! broker has not applied the completion yet.

use std::sync::Arc;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::controller::OngoingReassignment;
use strom_quorum::{ControllerReply, ControllerRequest};

use super::{Reply, RequestContext};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: ListPartitionReassignmentsRequest,
) -> Reply<ListPartitionReassignmentsResponse> {
    // Kafka: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authz(state).allows_cluster(AclOperation::Describe) {
        let e = crate::security::authz::cluster_denied();
        return Reply::Now(
            ListPartitionReassignmentsResponse::default()
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(e.message))),
        );
    }
    let topics = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let outcome = match state
        .controller_call(ControllerRequest::ListPartitionReassignments { topics })
        .await
    {
        Ok(response) => match response.reply {
            ControllerReply::ListPartitionReassignments(ongoing) => Ok(ongoing),
            other => Err(crate::state::unexpected_reply(&other)),
        },
        Err(e) => Err(e),
    };
    Reply::Now(match outcome {
        Ok(ongoing) => ListPartitionReassignmentsResponse::default().with_topics(group(ongoing)),
        Err(e) => ListPartitionReassignmentsResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(StrBytes::from_string(e.message))),
    })
}

/// The reassignments grouped by topic, in the controller's order.
fn group(ongoing: Vec<OngoingReassignment>) -> Vec<OngoingTopicReassignment> {
    let ids = |list: &[strom_cluster::BrokerId]| list.iter().map(|b| BrokerId(b.0)).collect();
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    for r in ongoing {
        let partition = OngoingPartitionReassignment::default()
            .with_partition_index(r.partition)
            .with_replicas(ids(&r.replicas))
            .with_adding_replicas(ids(&r.adding_replicas))
            .with_removing_replicas(ids(&r.removing_replicas));
        match topics.last_mut() {
            Some(topic) if topic.name.as_str() == r.topic => topic.partitions.push(partition),
            _ => topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(StrBytes::from_string(r.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    topics
}
