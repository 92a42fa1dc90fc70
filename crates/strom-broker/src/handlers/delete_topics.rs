//! DeleteTopics: by name (v0-5) or by name or id (v6). Logs are deleted when the change is
//! applied, before the response.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::controller;
use uuid::Uuid;

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 6 };

pub async fn handle(state: &Arc<BrokerState>, ctx: RequestContext, request: DeleteTopicsRequest) -> Reply<DeleteTopicsResponse> {
    let targets: Vec<(Option<String>, Uuid)> = if ctx.api_version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id))
            .collect()
    } else {
        request.topic_names.iter().map(|n| (Some(n.to_string()), Uuid::nil())).collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let image = state.image();
        let resolved = match (&name, id.is_nil()) {
            (Some(n), _) => Ok(n.clone()),
            (None, false) => image
                .topic_by_id(&id)
                .map(|t| t.name.clone())
                .ok_or_else(|| KafkaError::new(ResponseError::UnknownTopicId, "This server does not host this topic ID.")),
            (None, true) => Err(KafkaError::new(ResponseError::InvalidRequest, "Neither a topic name nor a topic id was given.")),
        };
        let outcome = match resolved {
            Err(e) => Err(e),
            Ok(n) => delete(state, &n).await.map(|topic_id| (n, topic_id)),
        };
        let mut result = DeletableTopicResult::default().with_topic_id(id);
        result.name = name.clone().map(|n| TopicName(StrBytes::from_string(n)));
        match outcome {
            Ok((n, topic_id)) => {
                result.name = Some(TopicName(StrBytes::from_string(n)));
                result.topic_id = topic_id;
            }
            Err(e) => {
                result.error_code = e.code();
                result.error_message = Some(StrBytes::from_string(e.message));
            }
        }
        responses.push(result);
    }
    Reply::Now(DeleteTopicsResponse::default().with_responses(responses))
}

async fn delete(state: &BrokerState, name: &str) -> Result<Uuid, KafkaError> {
    if !state.config.get_bool("delete.topic.enable") {
        return Err(KafkaError::new(ResponseError::TopicDeletionDisabled, "Topic deletion is disabled."));
    }
    if strom_cluster::image::is_internal_topic(name) {
        return Err(KafkaError::new(
            ResponseError::InvalidRequest,
            format!("{name} is an internal topic and cannot be deleted."),
        ));
    }
    let topic_id = state.image().topic(name).map(|t| t.topic_id).unwrap_or_default();
    match state.commit(|image| controller::delete_topic(image, name).map(|r| (r, ()))).await {
        Ok(_) => {
            tracing::info!(topic = %name, "deleted topic");
            Ok(topic_id)
        }
        Err(e) => Err(KafkaError::from(&e)),
    }
}
