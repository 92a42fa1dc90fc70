//! CreatePartitions: grow a topic's partition count.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::BrokerId;
use strom_quorum::controller::messages::NewPartitions;
use strom_quorum::{ControllerReply, ControllerRequest};

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 3 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: CreatePartitionsRequest,
) -> Reply<CreatePartitionsResponse> {
    // Kafka: ALTER on each topic, else TOPIC_AUTHORIZATION_FAILED for it.
    let authz = ctx.authz(state);
    let allowed: Vec<bool> = request
        .topics
        .iter()
        .map(|t| authz.allows_topic(AclOperation::Alter, &t.name))
        .collect();
    let topics: Vec<NewPartitions> = request
        .topics
        .iter()
        .zip(&allowed)
        .filter(|(_, allowed)| **allowed)
        .map(|(topic, _)| topic)
        .map(|topic| NewPartitions {
            topic: topic.name.to_string(),
            count: topic.count,
            // An empty list means "no manual assignment", like null.
            assignments: topic
                .assignments
                .as_ref()
                .filter(|list| !list.is_empty())
                .map(|list| {
                    list.iter()
                        .map(|a| a.broker_ids.iter().map(|b| BrokerId(b.0)).collect())
                        .collect()
                }),
        })
        .collect();
    let count = topics.len();
    let outcomes: Vec<Result<(), KafkaError>> = if count == 0 {
        Vec::new()
    } else {
        match state
            .controller_call(ControllerRequest::CreatePartitions {
                topics: topics.clone(),
                validate_only: request.validate_only,
            })
            .await
        {
            Ok(response) => {
                state.wait_for_replicas(response.offset).await;
                match response.reply {
                ControllerReply::CreatePartitions(results) => results
                    .into_iter()
                    .zip(&topics)
                    .map(|(r, t)| {
                        if r.is_ok() && !request.validate_only {
                            tracing::info!(topic = %t.topic, partitions = t.count, "added partitions");
                        }
                        r.map_err(|e| KafkaError::new(e.error, e.message))
                    })
                    .collect(),
                other => vec![Err(crate::state::unexpected_reply(&other)); count],
            }
            }
            Err(e) => vec![Err(e); count],
        }
    };
    let mut outcomes = outcomes.into_iter();
    let results = request
        .topics
        .iter()
        .zip(allowed)
        .map(|(topic, allowed)| {
            let outcome = if allowed {
                outcomes.next().unwrap_or_else(|| {
                    Err(KafkaError::new(
                        ResponseError::UnknownServerError,
                        "missing controller result",
                    ))
                })
            } else {
                Err(crate::security::authz::topic_denied(&topic.name))
            };
            let mut result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            if let Err(e) = outcome {
                result.error_code = e.code();
                result.error_message = Some(StrBytes::from_string(e.message));
            }
            result
        })
        .collect();
    Reply::Now(CreatePartitionsResponse::default().with_results(results))
}
