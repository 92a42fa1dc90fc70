//! Metadata: brokers, the controller, and topics with their partitions, leaders and replicas.
//! Creates requested topics that do not exist when `auto.create.topics.enable` is on and the
//! client allows it.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::{MetadataImage, TopicImage};
use uuid::Uuid;

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::security::Authz;
use crate::security::authz::{
    CLUSTER_NAME, CLUSTER_OPERATIONS, OPERATIONS_NOT_REQUESTED, topic_denied,
};
use crate::state::BrokerState;
use strom_cluster::acl::{AclOperation, ResourceType};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 13 };

/// A topic the request names: by name, or (v10+) by id.
enum Wanted {
    Name(String),
    Id(Uuid),
}

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: MetadataRequest,
) -> Reply<MetadataResponse> {
    let version = ctx.api_version;
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    // v0 has no null: an empty list means every topic.
    let wanted: Option<Vec<Wanted>> = match request.topics {
        None => None,
        Some(list) if list.is_empty() && version == 0 => None,
        Some(list) => Some(
            list.into_iter()
                .map(|t| match t.name {
                    // v10+ names a topic by id with a null name; an empty name with an id set
                    // means the same.
                    Some(name) if !name.is_empty() || t.topic_id.is_nil() => {
                        Wanted::Name(name.to_string())
                    }
                    _ => Wanted::Id(t.topic_id),
                })
                .collect(),
        ),
    };

    // Kafka: a topic is listed only when the principal may DESCRIBE it; a named topic it may
    // not gets TOPIC_AUTHORIZATION_FAILED whether or not it exists, and auto-creating one
    // needs CREATE on the cluster or the topic.
    let authz = ctx.authz(state);
    let may_create = |name: &str| {
        authz.allows_cluster(AclOperation::Create) || authz.allows_topic(AclOperation::Create, name)
    };
    let mut errors: Vec<(Wanted, KafkaError)> = Vec::new();
    let mut found: Vec<String> = Vec::new();
    if let Some(list) = wanted {
        let mut image = state.image();
        for item in list {
            match item {
                Wanted::Id(id) => match image.topic_by_id(&id) {
                    Some(t) if !authz.allows_topic(AclOperation::Describe, &t.name) => {
                        errors.push((Wanted::Id(id), topic_denied(&t.name)))
                    }
                    Some(t) => found.push(t.name.clone()),
                    None => errors.push((
                        Wanted::Id(id),
                        KafkaError::new(
                            ResponseError::UnknownTopicId,
                            "This server does not host this topic ID.",
                        ),
                    )),
                },
                Wanted::Name(name) => {
                    if !authz.allows_topic(AclOperation::Describe, &name) {
                        let denied = topic_denied(&name);
                        errors.push((Wanted::Name(name), denied));
                        continue;
                    }
                    if image.topic(&name).is_some() {
                        found.push(name);
                        continue;
                    }
                    if let Err(e) = strom_cluster::controller::validate_topic_name(&name) {
                        errors.push((Wanted::Name(name), KafkaError::new(e.error, e.message)));
                        continue;
                    }
                    let outcome = if allow_auto_create && !may_create(&name) {
                        Err(topic_denied(&name))
                    } else if allow_auto_create {
                        crate::topics::auto_create(state, &name).await
                    } else {
                        Err(KafkaError::new(
                            ResponseError::UnknownTopicOrPartition,
                            "This server does not host this topic-partition.",
                        ))
                    };
                    match outcome {
                        Ok(()) => {
                            image = state.image();
                            found.push(name);
                        }
                        Err(e) => errors.push((Wanted::Name(name), e)),
                    }
                }
            }
        }
    } else {
        found = state
            .image()
            .topics
            .keys()
            .filter(|name| authz.allows_topic(AclOperation::Describe, name))
            .cloned()
            .collect();
    }

    let image = state.image();
    let include_topic_ops = version >= 8 && request.include_topic_authorized_operations;
    let mut topics: Vec<MetadataResponseTopic> = found
        .iter()
        .filter_map(|name| image.topic(name))
        .map(|t| {
            describe_topic(
                &image,
                t,
                authz.topic_operations(&t.name, include_topic_ops),
            )
        })
        .collect();
    topics.extend(errors.into_iter().map(|(wanted, error)| {
        let topic = MetadataResponseTopic::default()
            .with_error_code(error.code())
            .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED);
        match wanted {
            Wanted::Name(name) => topic.with_name(Some(TopicName(StrBytes::from_string(name)))),
            Wanted::Id(id) => topic.with_topic_id(id),
        }
    }));

    let include_cluster_ops =
        (8..=10).contains(&version) && request.include_cluster_authorized_operations;
    Reply::Now(
        MetadataResponse::default()
            .with_brokers(brokers(&image, ctx.listener()))
            .with_cluster_id(Some(StrBytes::from_string(state.cluster_id.clone())))
            .with_controller_id(BrokerId(state.controller_id(&image).0))
            .with_topics(topics)
            .with_cluster_authorized_operations(cluster_operations(&authz, include_cluster_ops)),
    )
}

/// The unfenced brokers: a fenced broker is not one clients should connect to.
/// Each broker's endpoint is that of the listener the client connected to, as in Kafka.
fn brokers(image: &MetadataImage, listener: &str) -> Vec<MetadataResponseBroker> {
    image
        .unfenced_brokers()
        .map(|b| {
            let (host, port) = b.address_for(listener).unwrap_or_default();
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.broker_id.0))
                .with_host(StrBytes::from_string(host))
                .with_port(port as i32)
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect()
}

/// The cluster's KIP-430 bit set, or "not requested".
/// Kafka reports 0 to a principal that may not DESCRIBE the cluster.
pub fn cluster_operations(authz: &Authz, requested: bool) -> i32 {
    if requested && !authz.allows_cluster(AclOperation::Describe) {
        0
    } else if requested {
        authz.authorized_operations(ResourceType::Cluster, CLUSTER_NAME, CLUSTER_OPERATIONS)
    } else {
        OPERATIONS_NOT_REQUESTED
    }
}

fn describe_topic(
    image: &MetadataImage,
    topic: &TopicImage,
    authorized_operations: i32,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|(&index, p)| {
            // A replica on a fenced (or unknown) broker is offline.
            let offline: Vec<BrokerId> = p
                .replicas
                .iter()
                .filter(|r| !image.is_unfenced(**r))
                .map(|r| BrokerId(r.0))
                .collect();
            let error = if p.has_leader() {
                0
            } else {
                ResponseError::LeaderNotAvailable.code()
            };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(index)
                .with_leader_id(BrokerId(p.leader.0))
                .with_leader_epoch(p.leader_epoch.0)
                .with_replica_nodes(p.replicas.iter().map(|r| BrokerId(r.0)).collect())
                .with_isr_nodes(p.in_sync_replicas.iter().map(|r| BrokerId(r.0)).collect())
                .with_offline_replicas(offline)
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.topic_id)
        .with_is_internal(topic.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(authorized_operations)
}
