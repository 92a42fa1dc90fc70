//! DeleteTopics: by name (v0-5) or by name or id (v6). The active controller removes the
//! topics in one metadata change; the response waits until this broker has acted on it (its
//! replicas of the topics are stopped and their logs scheduled for deletion).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_quorum::{ControllerReply, ControllerRequest};
use uuid::Uuid;

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 6 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DeleteTopicsRequest,
) -> Reply<DeleteTopicsResponse> {
    let targets: Vec<(Option<String>, Uuid)> = if ctx.api_version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.to_string()), Uuid::nil()))
            .collect()
    };
    let image = state.image();
    // Kafka: DELETE on each topic; TOPIC_AUTHORIZATION_FAILED whether or not the topic exists,
    // and a topic named by id that the principal may not DESCRIBE keeps its name hidden.
    let authz = ctx.authz(state);
    let authorize = |n: &str| {
        if authz.allows_topic(AclOperation::Delete, n) {
            Ok(())
        } else {
            Err(crate::security::authz::topic_denied(n))
        }
    };
    let resolved: Vec<Result<String, KafkaError>> = targets
        .iter()
        .map(|(name, id)| match (name, id.is_nil()) {
            (Some(n), _) => authorize(n)
                .and_then(|()| check_deletable(state, n))
                .map(|()| n.clone()),
            (None, false) => image
                .topic_by_id(id)
                .map(|t| t.name.clone())
                .ok_or_else(|| {
                    KafkaError::new(
                        ResponseError::UnknownTopicId,
                        "This server does not host this topic ID.",
                    )
                })
                .and_then(|n| authorize(&n).map(|()| n))
                .and_then(|n| check_deletable(state, &n).map(|()| n)),
            (None, true) => Err(KafkaError::new(
                ResponseError::InvalidRequest,
                "Neither a topic name nor a topic id was given.",
            )),
        })
        .collect();
    let names: Vec<String> = resolved
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let mut deleted = delete(state, names).await.into_iter();
    let mut responses = Vec::with_capacity(targets.len());
    for ((name, id), resolved) in targets.into_iter().zip(resolved) {
        let outcome = match resolved {
            Err(e) => Err(e),
            Ok(n) => deleted
                .next()
                .unwrap_or_else(|| {
                    Err(KafkaError::new(
                        ResponseError::UnknownServerError,
                        "missing controller result",
                    ))
                })
                .map(|topic_id| (n, topic_id)),
        };
        let mut result = DeletableTopicResult::default().with_topic_id(id);
        result.name = name.map(|n| TopicName(StrBytes::from_string(n)));
        let hidden = !id.is_nil()
            && result.name.is_none()
            && image
                .topic_by_id(&id)
                .is_some_and(|t| !authz.allows_topic(AclOperation::Describe, &t.name));
        match outcome {
            Ok((n, topic_id)) => {
                result.name = Some(TopicName(StrBytes::from_string(n)));
                result.topic_id = topic_id;
            }
            Err(e) if hidden => result.error_code = e.code(),
            Err(e) => {
                result.error_code = e.code();
                result.error_message = Some(StrBytes::from_string(e.message));
            }
        }
        responses.push(result);
    }
    Reply::Now(DeleteTopicsResponse::default().with_responses(responses))
}

fn check_deletable(state: &BrokerState, name: &str) -> Result<(), KafkaError> {
    if !state.config.delete_topic_enable {
        return Err(KafkaError::new(
            ResponseError::TopicDeletionDisabled,
            "Topic deletion is disabled.",
        ));
    }
    if strom_cluster::image::is_internal_topic(name) {
        return Err(KafkaError::new(
            ResponseError::InvalidRequest,
            format!("{name} is an internal topic and cannot be deleted."),
        ));
    }
    Ok(())
}

/// Deletes `names` through the controller: one result per name, in order.
async fn delete(state: &BrokerState, names: Vec<String>) -> Vec<Result<Uuid, KafkaError>> {
    if names.is_empty() {
        return Vec::new();
    }
    let count = names.len();
    let response = match state
        .controller_call(ControllerRequest::DeleteTopics {
            names: names.clone(),
        })
        .await
    {
        Ok(response) => response,
        Err(e) => return vec![Err(e); count],
    };
    state.wait_for_replicas(response.offset).await;
    match response.reply {
        ControllerReply::DeleteTopics(results) => names
            .iter()
            .zip(results)
            .map(|(name, r)| {
                r.inspect(|_| tracing::info!(topic = %name, "deleted topic"))
                    .map_err(|e| KafkaError::new(e.error, e.message))
            })
            .collect(),
        other => vec![Err(crate::state::unexpected_reply(&other)); count],
    }
}
