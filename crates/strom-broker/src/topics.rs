//! Topic creation shared by CreateTopics and automatic creation (Metadata, Produce).

use std::hash::{Hash, Hasher};

use kafka_protocol::error::ResponseError;
use strom_cluster::controller::{self, CreateDefaults, CreateTopic, CreatedTopic};
use uuid::Uuid;

use crate::errors::KafkaError;
use crate::state::BrokerState;

/// Creates (or, with `validate_only`, only checks) one topic.
pub async fn create_topic(
    state: &BrokerState,
    request: CreateTopic,
    validate_only: bool,
) -> Result<CreatedTopic, KafkaError> {
    let defaults = CreateDefaults {
        num_partitions: state.config.get_i32("num.partitions"),
        replication_factor: state.config.get_i32("default.replication.factor") as i16,
    };
    // Replica placement starts at a broker derived from the name, spreading leadership
    // across brokers the way Kafka's random start does, but reproducibly.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    request.name.hash(&mut hasher);
    let start = hasher.finish() as usize;
    let topic_id = Uuid::new_v4();
    if validate_only {
        let image = state.image();
        return controller::create_topic(&image, &request, defaults, topic_id, start)
            .map(|(_, created)| created)
            .map_err(|e| KafkaError::new(e.error, e.message));
    }
    let name = request.name.clone();
    let result = state
        .commit(|image| controller::create_topic(image, &request, defaults, topic_id, start))
        .await;
    match result {
        Ok((created, _)) => {
            tracing::info!(topic = %name, partitions = created.num_partitions, "created topic");
            Ok(created)
        }
        Err(e) => Err(KafkaError::from(&e)),
    }
}

/// Creates a topic a client asked for by name when `auto.create.topics.enable` is on.
/// Succeeds if the topic exists afterwards, whoever created it.
pub async fn auto_create(state: &BrokerState, name: &str) -> Result<(), KafkaError> {
    if !state.config.get_bool("auto.create.topics.enable") {
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
    match create_topic(state, request, false).await {
        Ok(_) => Ok(()),
        Err(e) if e.error == ResponseError::TopicAlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
