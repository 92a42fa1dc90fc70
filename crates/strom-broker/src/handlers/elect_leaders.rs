//! ElectLeaders (KIP-460): `kafka-leader-election.sh` and `strom cluster elect-leaders`.
//!
//! A PREFERRED election gives a partition back to its first replica when that replica is in
//! sync and available; an UNCLEAN one gives a leaderless partition any available replica. v0
//! has no election type and is always PREFERRED. The active controller decides
//! (`strom_cluster::controller::leadership`); the response waits until this broker has
//! applied the new leaders, so a Metadata request that follows sees them.
//!
//! Null `topic_partitions` means every partition, and then, as in Kafka, the results list
//! only the partitions that needed an election. Topics are named in the request and known to
//! the controller by id: a topic this broker does not know gets UNKNOWN_TOPIC_OR_PARTITION
//! here, everything else per partition from the controller.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::MetadataImage;
use strom_cluster::controller::ElectionType;
use strom_quorum::{ControllerReply, ControllerRequest};
use uuid::Uuid;

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// One partition's outcome, by topic name.
type Outcome = (String, i32, Result<(), KafkaError>);

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: ElectLeadersRequest,
) -> Reply<ElectLeadersResponse> {
    let election_type = if ctx.api_version >= 1 {
        ElectionType::from_code(request.election_type)
    } else {
        Some(ElectionType::Preferred)
    };
    // Kafka: ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authz(state).allows_cluster(AclOperation::Alter) {
        let e = crate::security::authz::cluster_denied();
        return Reply::Now(refused(&request, ctx.api_version, e));
    }
    let Some(election_type) = election_type else {
        let e = KafkaError::new(
            ResponseError::InvalidRequest,
            format!("Unknown election type {}", request.election_type),
        );
        return Reply::Now(refused(&request, ctx.api_version, e));
    };

    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut names: HashMap<Uuid, String> = HashMap::new();
    let targets = request
        .topic_partitions
        .as_ref()
        .map(|topics| resolve(&state.image(), topics, &mut names, &mut outcomes));
    if targets.as_ref().is_some_and(Vec::is_empty) {
        return Reply::Now(respond(outcomes));
    }

    let response = match state
        .controller_call(ControllerRequest::ElectLeaders {
            election_type,
            partitions: targets,
        })
        .await
    {
        Ok(response) => response,
        Err(e) => return Reply::Now(refused(&request, ctx.api_version, e)),
    };
    state.wait_for_replicas(response.offset).await;
    let results = match response.reply {
        ControllerReply::ElectLeaders(results) => results,
        other => {
            let e = crate::state::unexpected_reply(&other);
            return Reply::Now(refused(&request, ctx.api_version, e));
        }
    };
    // The "all partitions" form names topics only by id; this broker's image has them once
    // it has applied the election (a topic deleted meanwhile has no name left to report).
    let image = state.image();
    for result in results {
        let name = names
            .get(&result.topic_id)
            .cloned()
            .or_else(|| image.topic_by_id(&result.topic_id).map(|t| t.name.clone()));
        let Some(name) = name else {
            continue;
        };
        if result.result.is_ok() {
            tracing::info!(topic = %name, partition = result.partition, ?election_type, "elected a leader");
        }
        let outcome = result.result.map_err(|e| match e.error {
            // The controller knows the topic by id only; say which partition by name.
            ResponseError::UnknownTopicOrPartition => KafkaError::new(
                e.error,
                format!("No such partition as {name}-{}", result.partition),
            ),
            _ => KafkaError::new(e.error, e.message),
        });
        outcomes.push((name, result.partition, outcome));
    }
    Reply::Now(respond(outcomes))
}

/// The (topic id, partition) targets of the named topics this broker knows, recording their
/// names; the partitions of topics it does not know get UNKNOWN_TOPIC_OR_PARTITION at once.
fn resolve(
    image: &MetadataImage,
    topics: &[TopicPartitions],
    names: &mut HashMap<Uuid, String>,
    outcomes: &mut Vec<Outcome>,
) -> Vec<(Uuid, i32)> {
    let mut targets = Vec::new();
    for t in topics {
        let name = t.topic.to_string();
        match image.topic(&name) {
            Some(topic) => {
                names.insert(topic.topic_id, name);
                targets.extend(t.partitions.iter().map(|&p| (topic.topic_id, p)));
            }
            None => outcomes.extend(t.partitions.iter().map(|&p| {
                let e = KafkaError::new(
                    ResponseError::UnknownTopicOrPartition,
                    format!("No such topic as {name}"),
                );
                (name.clone(), p, Err(e))
            })),
        }
    }
    targets
}

/// The response with one result per partition, grouped by topic in first-seen order.
fn respond(outcomes: Vec<Outcome>) -> ElectLeadersResponse {
    let mut topics: Vec<ReplicaElectionResult> = Vec::new();
    for (name, partition, outcome) in outcomes {
        let mut result = PartitionResult::default().with_partition_id(partition);
        if let Err(e) = outcome {
            result.error_code = e.code();
            result.error_message = Some(StrBytes::from_string(e.message));
        }
        match topics.iter_mut().find(|t| t.topic.as_str() == name) {
            Some(topic) => topic.partition_result.push(result),
            None => topics.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(name)))
                    .with_partition_result(vec![result]),
            ),
        }
    }
    ElectLeadersResponse::default().with_replica_election_results(topics)
}

/// The whole request failed: Kafka's `getErrorResponse`, the error at the top (v1+) and on
/// every requested partition.
fn refused(request: &ElectLeadersRequest, version: i16, e: KafkaError) -> ElectLeadersResponse {
    let outcomes = request
        .topic_partitions
        .iter()
        .flatten()
        .flat_map(|t| {
            let e = e.clone();
            t.partitions
                .iter()
                .map(move |&p| (t.topic.to_string(), p, Err(e.clone())))
        })
        .collect();
    let response = respond(outcomes);
    if version >= 1 {
        response.with_error_code(e.code())
    } else {
        response
    }
}
