//! Topic creation shared by CreateTopics and automatic creation (Metadata, Produce,
//! FindCoordinator's `__consumer_offsets`): a request to the active controller, then a wait
//! until this broker has acted on the new topics, so they can be used here at once.

use kafka_protocol::error::ResponseError;
use strom_cluster::controller::{CreateDefaults, CreateTopic, CreatedTopic};
use strom_quorum::{ControllerReply, ControllerRequest};

use crate::errors::KafkaError;
use crate::state::BrokerState;

/// Creates (or, with `validate_only`, only checks) topics: one result per topic, in order.
pub async fn create_topics(
    state: &BrokerState,
    topics: Vec<CreateTopic>,
    validate_only: bool,
) -> Vec<Result<CreatedTopic, KafkaError>> {
    if topics.is_empty() {
        return Vec::new();
    }
    let count = topics.len();
    let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
    let defaults = CreateDefaults {
        num_partitions: state.config.num_partitions,
        replication_factor: state.config.default_replication_factor,
    };
    let request = ControllerRequest::CreateTopics {
        topics,
        defaults,
        validate_only,
    };
    let response = match state.controller_call(request).await {
        Ok(response) => response,
        Err(e) => return vec![Err(e); count],
    };
    state.wait_for_replicas(response.offset).await;
    match response.reply {
        ControllerReply::CreateTopics(results) => names
            .iter()
            .zip(results)
            .map(|(name, r)| {
                let created = r.map_err(|e| KafkaError::new(e.error, e.message))?;
                if !validate_only {
                    tracing::info!(topic = %name, partitions = created.num_partitions, "created topic");
                }
                Ok(created)
            })
            .collect(),
        other => vec![Err(crate::state::unexpected_reply(&other)); count],
    }
}

/// Creates a topic a client asked for by name when `auto.create.topics.enable` is on.
/// Succeeds if the topic exists afterwards, whoever created it.
pub async fn auto_create(state: &BrokerState, name: &str) -> Result<(), KafkaError> {
    if !state.config.auto_create_topics_enable {
        return Err(KafkaError::new(
            ResponseError::UnknownTopicOrPartition,
            "This server does not host this topic-partition.",
        ));
    }
    let request = CreateTopic {
        name: name.to_string(),
        num_partitions: -1,
        replication_factor: -1,
        ..Default::default()
    };
    let result = create_topics(state, vec![request], false)
        .await
        .into_iter()
        .next();
    match result {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) if e.error == ResponseError::TopicAlreadyExists => Ok(()),
        Some(Err(e)) => Err(e),
        None => Err(KafkaError::new(
            ResponseError::UnknownServerError,
            "no result",
        )),
    }
}
