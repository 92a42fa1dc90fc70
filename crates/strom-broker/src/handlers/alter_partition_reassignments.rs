//! AlterPartitionReassignments (KIP-455): `kafka-reassign-partitions.sh --execute`,
//! `strom topic reassign` and `strom cluster rebalance|remove-broker`.
//!
//! A partition with target replicas starts moving to them: the new replicas copy the log from
//! the leader and the old ones are dropped only once every new one is in sync. Null replicas
//! cancel the partition's ongoing reassignment (NO_REASSIGNMENT_IN_PROGRESS when there is
//! none). The active controller decides each partition in request order
//! (`strom_cluster::controller::reassignment`) and answers per partition:
//! UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (empty, duplicate or unregistered
//! brokers), INVALID_REPLICATION_FACTOR. The response waits until this broker has applied the
//! change, so its replica manager already runs the new replicas it hosts.
//!
//! Only v0 is served: v1 adds `allow_replication_factor_change` (KIP-860), whose refusal of
//! replication factor changes the controller does not implement.

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::BrokerId;
use strom_cluster::controller::PartitionReassignment;
use strom_quorum::{ControllerReply, ControllerRequest};

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> Reply<AlterPartitionReassignmentsResponse> {
    // Kafka: ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authz(state).allows_cluster(AclOperation::Alter) {
        let e = crate::security::authz::cluster_denied();
        let count = request.topics.iter().map(|t| t.partitions.len()).sum();
        return Reply::Now(
            respond(&request, vec![Err(e.clone()); count])
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(e.message))),
        );
    }
    let reassignments: Vec<PartitionReassignment> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| PartitionReassignment {
                topic: t.name.to_string(),
                partition: p.partition_index,
                replicas: p
                    .replicas
                    .as_ref()
                    .map(|r| r.iter().map(|b| BrokerId(b.0)).collect()),
            })
        })
        .collect();
    if reassignments.is_empty() {
        return Reply::Now(AlterPartitionReassignmentsResponse::default());
    }
    let count = reassignments.len();
    let outcomes: Result<Vec<Result<(), KafkaError>>, KafkaError> = match state
        .controller_call(ControllerRequest::AlterPartitionReassignments {
            reassignments: reassignments.clone(),
        })
        .await
    {
        Ok(response) => {
            state.wait_for_replicas(response.offset).await;
            match response.reply {
                ControllerReply::AlterPartitionReassignments(results) if results.len() == count => {
                    Ok(results
                        .into_iter()
                        .zip(&reassignments)
                        .map(|(result, r)| {
                            log(r, &result);
                            result.map_err(|e| KafkaError::new(e.error, e.message))
                        })
                        .collect())
                }
                other => Err(crate::state::unexpected_reply(&other)),
            }
        }
        Err(e) => Err(e),
    };
    Reply::Now(match outcomes {
        Ok(outcomes) => respond(&request, outcomes),
        // Kafka's `getErrorResponse`: the error at the top and on every partition.
        Err(e) => respond(&request, vec![Err(e.clone()); count])
            .with_error_code(e.code())
            .with_error_message(Some(StrBytes::from_string(e.message))),
    })
}

fn log(r: &PartitionReassignment, result: &Result<(), strom_cluster::ApiError>) {
    if result.is_err() {
        return;
    }
    match &r.replicas {
        Some(replicas) => {
            tracing::info!(topic = %r.topic, partition = r.partition, ?replicas, "reassigning partition")
        }
        None => {
            tracing::info!(topic = %r.topic, partition = r.partition, "cancelled partition reassignment")
        }
    }
}

/// The per-partition results, in the request's shape.
fn respond(
    request: &AlterPartitionReassignmentsRequest,
    outcomes: Vec<Result<(), KafkaError>>,
) -> AlterPartitionReassignmentsResponse {
    let mut outcomes = outcomes.into_iter();
    let responses = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut result = ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    if let Some(Err(e)) = outcomes.next() {
                        result.error_code = e.code();
                        result.error_message = Some(StrBytes::from_string(e.message));
                    }
                    result
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    AlterPartitionReassignmentsResponse::default().with_responses(responses)
}
