//! DescribeConfigs: topic and broker configs with their values, sources, synonyms, types and
//! documentation, as Kafka reports them.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::{Reply, RequestContext};
use crate::config_entries::{ConfigEntry, broker_entries, topic_entries};
use crate::errors::KafkaError;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 4 };

/// Kafka's ConfigResource.Type codes.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DescribeConfigsRequest,
) -> Reply<DescribeConfigsResponse> {
    let image = state.image();
    let authz = ctx.authz(state);
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            // Kafka: DESCRIBE_CONFIGS on the topic, or on the cluster for a broker.
            let authorized = authz.check_config_resource(
                AclOperation::DescribeConfigs,
                resource.resource_type,
                &name,
            );
            let entries = match resource.resource_type {
                _ if authorized.is_err() => authorized.map(|()| Vec::new()),
                RESOURCE_TOPIC if image.topic(&name).is_some() => {
                    Ok(topic_entries(&state.config, &image, &name))
                }
                RESOURCE_TOPIC => Err(KafkaError::new(
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic {name} does not exist."),
                )),
                RESOURCE_BROKER if name.is_empty() || name == state.node_id.0.to_string() => {
                    Ok(broker_entries(&state.config, &image, &name))
                }
                RESOURCE_BROKER => Err(KafkaError::new(
                    ResponseError::InvalidRequest,
                    format!(
                        "Unexpected broker id, expected {} or empty string, but received {name}",
                        state.node_id
                    ),
                )),
                other => Err(KafkaError::new(
                    ResponseError::InvalidRequest,
                    format!("Config resource type {other} is not supported"),
                )),
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match entries {
                Ok(entries) => {
                    // Null or empty: every config, as Kafka answers.
                    let wanted = resource
                        .configuration_keys
                        .as_ref()
                        .filter(|keys| !keys.is_empty());
                    result.with_configs(
                        entries
                            .into_iter()
                            .filter(|e| {
                                wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name))
                            })
                            .map(|e| {
                                to_result(
                                    e,
                                    request.include_synonyms,
                                    request.include_documentation && ctx.api_version >= 3,
                                )
                            })
                            .collect(),
                    )
                }
                Err(e) => result
                    .with_error_code(e.code())
                    .with_error_message(Some(StrBytes::from_string(e.message))),
            }
        })
        .collect();
    Reply::Now(DescribeConfigsResponse::default().with_results(results))
}

fn to_result(
    entry: ConfigEntry,
    include_synonyms: bool,
    include_documentation: bool,
) -> DescribeConfigsResourceResult {
    // Passwords (JAAS lines, private keys) never leave the broker, as in Kafka: the entry is
    // listed, marked sensitive, with no value.
    let sensitive = entry.kind == strom_cluster::config::ConfigType::Password;
    let synonyms = if include_synonyms {
        entry
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_string(name))
                    .with_value(value.filter(|_| !sensitive).map(StrBytes::from_string))
                    .with_source(source as i8)
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(entry.name))
        .with_value(
            entry
                .value
                .filter(|_| !sensitive)
                .map(StrBytes::from_string),
        )
        .with_read_only(entry.read_only)
        .with_config_source(entry.source as i8)
        .with_is_sensitive(sensitive)
        .with_synonyms(synonyms)
        .with_config_type(entry.kind as i8)
        .with_documentation(include_documentation.then(|| StrBytes::from_static_str(entry.doc)))
}
