//! Topic decisions: CreateTopics, DeleteTopics and CreatePartitions as pure functions of the
//! image.
//!
//! Each returns the records that carry out the change (a `Topic` record, one `Partition`
//! record per partition and the topic's `Config` overrides) or the Kafka error that refuses
//! it. Where new partitions go is [`super::placement`]'s business; who leads them is
//! [`super::election`]'s. The topic id and the placement's start come from the caller, so the
//! same inputs always give the same records.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::placement::{self, Placement};
use super::{ApiError, Decision, election};
use crate::config;
use crate::ids::BrokerId;
use crate::image::MetadataImage;
use crate::records::{ConfigResource, MetadataRecord};

/// Kafka's longest legal topic name (the partition directory adds a suffix).
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// The most partitions one request may create, over all its topics: Kafka's
/// `MAX_PARTITIONS_PER_BATCH`, which keeps one request from producing an unbounded batch of
/// records.
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

/// Kafka's topic name rules: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Decision<()> {
    let bad = |why: String| Err(ApiError::new(ResponseError::InvalidTopicException, why));
    if name.is_empty() {
        return bad("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return bad("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        return bad(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return bad(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Kafka refuses a topic whose name equals an existing one once '.' is read as '_', because
/// metric names cannot tell them apart.
fn colliding_topic<'a>(image: &'a MetadataImage, name: &str) -> Option<&'a str> {
    let canonical = name.replace('.', "_");
    image
        .topics
        .keys()
        .find(|existing| existing.as_str() != name && existing.replace('.', "_") == canonical)
        .map(String::as_str)
}

/// Defaults the broker's configuration supplies to topic creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateDefaults {
    pub num_partitions: i32,
    pub replication_factor: i16,
}

/// One topic of a CreateTopics request (or an automatic creation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopic {
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub num_partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Manual assignment: partition index -> broker ids. Empty for automatic.
    pub assignments: BTreeMap<i32, Vec<BrokerId>>,
    pub configs: Vec<(String, Option<String>)>,
}

impl CreateTopic {
    /// How many partitions the request asks for (0 when the count is invalid), for the
    /// per-request limit.
    pub fn requested_partitions(&self, defaults: CreateDefaults) -> i64 {
        if !self.assignments.is_empty() {
            return self.assignments.len() as i64;
        }
        match self.num_partitions {
            -1 => i64::from(defaults.num_partitions.max(0)),
            n => i64::from(n.max(0)),
        }
    }
}

/// What a successful creation produces, beyond its records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTopic {
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

fn too_many_partitions() -> ApiError {
    ApiError::new(
        ResponseError::PolicyViolation,
        "Excessively large number of partitions per request.",
    )
}

/// Decides a topic creation. `topic_id` and `placement` (where automatic placement starts;
/// a bare `usize` is a fixed start) come from the caller so the decision is deterministic.
pub fn create_topic(
    image: &MetadataImage,
    request: &CreateTopic,
    defaults: CreateDefaults,
    topic_id: Uuid,
    placement: impl Into<Placement>,
) -> Decision<(Vec<MetadataRecord>, CreatedTopic)> {
    let placement = placement.into();
    validate_topic_name(&request.name)?;
    if image.topic(&request.name).is_some() {
        return Err(ApiError::new(
            ResponseError::TopicAlreadyExists,
            format!("Topic '{}' already exists.", request.name),
        ));
    }
    if let Some(other) = colliding_topic(image, &request.name) {
        return Err(ApiError::new(
            ResponseError::InvalidTopicException,
            format!(
                "Topic '{}' collides with existing topic: {other}",
                request.name
            ),
        ));
    }
    let configs = validate_configs(&request.configs)?;
    if request.requested_partitions(defaults) > MAX_PARTITIONS_PER_REQUEST {
        return Err(too_many_partitions());
    }
    let assignment = if request.assignments.is_empty() {
        automatic_assignment(image, request, defaults, &placement)?
    } else {
        if request.num_partitions != -1 || request.replication_factor != -1 {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
            ));
        }
        placement::validate_manual_assignment(
            image,
            &request.assignments,
            0,
            None,
            placement.max_replication_factor,
        )?
    };

    let replication_factor = assignment.values().next().map_or(0, |r| r.len()) as i16;
    let mut records = vec![MetadataRecord::Topic {
        name: request.name.clone(),
        topic_id,
    }];
    records.extend(new_partition_records(image, topic_id, &assignment)?);
    for (name, value) in &configs {
        records.push(MetadataRecord::Config {
            resource: ConfigResource::Topic(request.name.clone()),
            name: name.clone(),
            value: Some(value.clone()),
        });
    }
    let created = CreatedTopic {
        topic_id,
        num_partitions: assignment.len() as i32,
        replication_factor,
        configs,
    };
    Ok((records, created))
}

fn validate_configs(configs: &[(String, Option<String>)]) -> Decision<BTreeMap<String, String>> {
    let mut valid = BTreeMap::new();
    for (name, value) in configs {
        let Some(value) = value else {
            return Err(ApiError::new(
                ResponseError::InvalidConfig,
                format!("Null value not supported for topic configs: {name}"),
            ));
        };
        valid.insert(name.clone(), config::validate_topic_config(name, value)?);
    }
    Ok(valid)
}

fn automatic_assignment(
    image: &MetadataImage,
    request: &CreateTopic,
    defaults: CreateDefaults,
    placement: &Placement,
) -> Decision<BTreeMap<i32, Vec<BrokerId>>> {
    let partitions = match request.num_partitions {
        -1 => defaults.num_partitions,
        n if n >= 1 => n,
        n => {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!("Number of partitions was set to an invalid non-positive value {n}."),
            ));
        }
    };
    let replication_factor = match request.replication_factor {
        -1 => defaults.replication_factor,
        n if n >= 1 => n,
        n => {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Replication factor must be larger than 0, or -1 to use the default value. Got {n}."
                ),
            ));
        }
    };
    placement::assign_replicas(image, 0, partitions, replication_factor, placement)
}

/// The `Partition` records of new partitions: their available replicas are in sync and the
/// first of those leads. Kafka refuses a partition none of whose replicas is available.
fn new_partition_records(
    image: &MetadataImage,
    topic_id: Uuid,
    assignment: &BTreeMap<i32, Vec<BrokerId>>,
) -> Decision<Vec<MetadataRecord>> {
    assignment
        .iter()
        .map(|(&partition, replicas)| {
            let state = election::initial_state(replicas, |b| image.is_available(b))
                .ok_or_else(|| {
                    ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "All brokers specified in the manual partition assignment for partition {partition} are fenced or in controlled shutdown."
                        ),
                    )
                })?;
            Ok(state.to_record(topic_id, partition))
        })
        .collect()
}

/// Decides a topic deletion.
pub fn delete_topic(image: &MetadataImage, name: &str) -> Decision {
    let topic = image.topic(name).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            "This server does not host this topic-partition.",
        )
    })?;
    Ok(vec![MetadataRecord::RemoveTopic {
        topic_id: topic.topic_id,
    }])
}

/// Decides a CreatePartitions: grow `name` to `new_total` partitions, placed automatically
/// (from `placement`) unless `assignments` names the brokers of each new partition.
pub fn create_partitions(
    image: &MetadataImage,
    name: &str,
    new_total: i32,
    assignments: Option<&[Vec<BrokerId>]>,
    placement: impl Into<Placement>,
) -> Decision {
    let placement = placement.into();
    let topic = image.topic(name).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("The topic '{name}' does not exist."),
        )
    })?;
    let current = topic.partitions.len() as i32;
    if new_total < current {
        return Err(ApiError::new(
            ResponseError::InvalidPartitions,
            format!(
                "The topic {name} currently has {current} partition(s); {new_total} would not be an increase."
            ),
        ));
    }
    if new_total == current {
        return Err(ApiError::new(
            ResponseError::InvalidPartitions,
            format!("Topic already has {current} partition(s)."),
        ));
    }
    if i64::from(new_total) - i64::from(current) > MAX_PARTITIONS_PER_REQUEST {
        return Err(too_many_partitions());
    }
    let replication_factor = topic
        .partitions
        .values()
        .next()
        .map_or(1, |p| p.replicas.len());
    let assignment = match assignments {
        Some(manual) => {
            if manual.len() as i32 != new_total - current {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Increasing the number of partitions by {} but {} assignments provided.",
                        new_total - current,
                        manual.len()
                    ),
                ));
            }
            let map = manual
                .iter()
                .enumerate()
                .map(|(i, r)| (current + i as i32, r.clone()))
                .collect();
            placement::validate_manual_assignment(
                image,
                &map,
                current,
                Some(replication_factor),
                placement.max_replication_factor,
            )?
        }
        None => placement::assign_replicas(
            image,
            current,
            new_total - current,
            replication_factor as i16,
            &placement,
        )?,
    };
    new_partition_records(image, topic.topic_id, &assignment)
}
