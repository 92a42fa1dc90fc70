//! CreateTopics: new topics with partition counts, replication factors, manual assignments and
//! configs; `validate_only` checks without creating.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::BrokerId;
use strom_cluster::acl::AclOperation;
use strom_cluster::config::ConfigSource;
use strom_cluster::controller::CreateTopic;

use super::{Reply, RequestContext};
use crate::config_entries::topic_entries;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 7 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: CreateTopicsRequest,
) -> Reply<CreateTopicsResponse> {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.to_string()))
        .map(|t| t.name.to_string())
        .collect();
    // Kafka: CREATE on the cluster, or else on each topic (TOPIC_AUTHORIZATION_FAILED).
    let authz = ctx.authz(state);
    let cluster_create = authz.allows_cluster(AclOperation::Create);
    let denied: HashSet<String> = request
        .topics
        .iter()
        .map(|t| t.name.to_string())
        .filter(|name| !cluster_create && !authz.allows_topic(AclOperation::Create, name))
        .collect();
    // Every valid, non-duplicate, authorized topic goes to the controller in one request.
    let mut creates = Vec::new();
    for topic in &request.topics {
        if duplicates.contains(topic.name.as_str()) || denied.contains(topic.name.as_str()) {
            continue;
        }
        creates.push(CreateTopic {
            name: topic.name.to_string(),
            num_partitions: topic.num_partitions,
            replication_factor: topic.replication_factor,
            assignments: topic
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| BrokerId(b.0)).collect(),
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            configs: topic
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect(),
        });
    }
    let mut outcomes = crate::topics::create_topics(state, creates, request.validate_only)
        .await
        .into_iter();
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.to_string();
        let mut result = CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        if duplicates.contains(&name) {
            results.push(
                result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Create topics request from client `{}` contains multiple entries for the following topics: {name}",
                        ctx.client_id.as_deref().unwrap_or("")
                    )))),
            );
            continue;
        }
        if denied.contains(&name) {
            let e = crate::security::authz::topic_denied(&name);
            results.push(
                result
                    .with_error_code(e.code())
                    .with_error_message(Some(StrBytes::from_string(e.message))),
            );
            continue;
        }
        match outcomes.next() {
            Some(Ok(created)) => {
                result.topic_id = created.topic_id;
                result.num_partitions = created.num_partitions;
                result.replication_factor = created.replication_factor;
                if ctx.api_version >= 5 {
                    result.configs = Some(created_configs(state, &name, &created.configs));
                }
            }
            Some(Err(e)) => {
                result.error_code = e.code();
                result.error_message = Some(StrBytes::from_string(e.message));
            }
            None => result.error_code = ResponseError::UnknownServerError.code(),
        }
        results.push(result);
    }
    Reply::Now(CreateTopicsResponse::default().with_topics(results))
}

/// The topic's resolved configs (v5+), from the overrides it was created with.
fn created_configs(
    state: &BrokerState,
    topic: &str,
    overrides: &BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    let image = state.image();
    topic_entries(&state.config, &image, topic)
        .into_iter()
        .map(|entry| {
            let (value, source) = match overrides.get(entry.name) {
                Some(v) => (Some(v.clone()), ConfigSource::DynamicTopic),
                None => (entry.value, entry.source),
            };
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(entry.name))
                .with_value(value.map(StrBytes::from_string))
                .with_read_only(entry.read_only)
                .with_config_source(source as i8)
        })
        .collect()
}
