//! The controller's decisions, as pure functions: given the current image and a request, the
//! records that carry out the change, or the Kafka error that refuses it.
//!
//! Nothing here writes anything. The caller appends the records to the metadata log (today a
//! local file, later the Raft quorum) and replays them; only then is the change real. Keeping
//! the decision apart from the IO is what lets the same code run on a single node and behind
//! a Raft leader, and be tested without either.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use crate::config::{self, InvalidConfig};
use crate::image::MetadataImage;
use crate::records::{ConfigResource, MetadataRecord};

/// A refused request: a Kafka error code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error:?}: {message}")]
pub struct ApiError {
    pub error: ResponseError,
    pub message: String,
}

impl ApiError {
    pub fn new(error: ResponseError, message: impl Into<String>) -> Self {
        Self {
            error,
            message: message.into(),
        }
    }
    pub fn code(&self) -> i16 {
        self.error.code()
    }
}

impl From<InvalidConfig> for ApiError {
    fn from(e: InvalidConfig) -> Self {
        ApiError::new(ResponseError::InvalidConfig, e.message)
    }
}

pub type Decision<T = Vec<MetadataRecord>> = Result<T, ApiError>;

/// Kafka's longest legal topic name (the partition directory adds a suffix).
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

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
#[derive(Debug, Clone, Copy)]
pub struct CreateDefaults {
    pub num_partitions: i32,
    pub replication_factor: i16,
}

/// One topic of a CreateTopics request (or an automatic creation).
#[derive(Debug, Clone, Default)]
pub struct CreateTopic {
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub num_partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Manual assignment: partition index -> broker ids. Empty for automatic.
    pub assignments: BTreeMap<i32, Vec<i32>>,
    pub configs: Vec<(String, Option<String>)>,
}

/// What a successful creation produces, beyond its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

/// Decides a topic creation. `topic_id` and `start` (the broker index the round-robin replica
/// placement begins at) come from the caller so the decision is deterministic.
pub fn create_topic(
    image: &MetadataImage,
    request: &CreateTopic,
    defaults: CreateDefaults,
    topic_id: Uuid,
    start: usize,
) -> Decision<(Vec<MetadataRecord>, CreatedTopic)> {
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
    let mut configs = BTreeMap::new();
    for (name, value) in &request.configs {
        let Some(value) = value else {
            return Err(ApiError::new(
                ResponseError::InvalidConfig,
                format!("Null value not supported for topic configs: {name}"),
            ));
        };
        configs.insert(name.clone(), config::validate_topic_config(name, value)?);
    }

    let assignment = if request.assignments.is_empty() {
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
        assign_replicas(image, 0, partitions, replication_factor, start)?
    } else {
        if request.num_partitions != -1 || request.replication_factor != -1 {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
            ));
        }
        validate_manual_assignment(image, &request.assignments, 0)?
    };

    let replication_factor = assignment.values().next().map_or(0, |r| r.len()) as i16;
    let mut records = vec![MetadataRecord::Topic {
        name: request.name.clone(),
        topic_id,
    }];
    records.extend(partition_records(topic_id, &assignment));
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

fn partition_records(
    topic_id: Uuid,
    assignment: &BTreeMap<i32, Vec<i32>>,
) -> impl Iterator<Item = MetadataRecord> + '_ {
    assignment
        .iter()
        .map(move |(&partition, replicas)| MetadataRecord::Partition {
            topic_id,
            partition,
            replicas: replicas.clone(),
            in_sync_replicas: replicas.clone(),
            leader: replicas[0],
            leader_epoch: 0,
            partition_epoch: 0,
        })
}

/// Kafka's rack-unaware placement: partition p's first replica on broker (start + p) mod n,
/// the others on the following brokers, so leadership spreads evenly.
fn assign_replicas(
    image: &MetadataImage,
    first_partition: i32,
    count: i32,
    replication_factor: i16,
    start: usize,
) -> Decision<BTreeMap<i32, Vec<i32>>> {
    let brokers: Vec<i32> = image.brokers.keys().copied().collect();
    if brokers.is_empty() {
        return Err(ApiError::new(
            ResponseError::BrokerNotAvailable,
            "No brokers are registered.",
        ));
    }
    if replication_factor as usize > brokers.len() {
        return Err(ApiError::new(
            ResponseError::InvalidReplicationFactor,
            format!(
                "Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only {} broker(s) are registered.",
                brokers.len()
            ),
        ));
    }
    let n = brokers.len();
    Ok((0..count)
        .map(|i| {
            let p = first_partition + i;
            let first = (start + p as usize) % n;
            let replicas = (0..replication_factor as usize)
                .map(|r| brokers[(first + r) % n])
                .collect();
            (p, replicas)
        })
        .collect())
}

fn validate_manual_assignment(
    image: &MetadataImage,
    assignments: &BTreeMap<i32, Vec<i32>>,
    first_partition: i32,
) -> Decision<BTreeMap<i32, Vec<i32>>> {
    let expected: Vec<i32> =
        (first_partition..first_partition + assignments.len() as i32).collect();
    let got: Vec<i32> = assignments.keys().copied().collect();
    if got != expected {
        return Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            format!(
                "Partitions must be numbered consecutively from {first_partition}; got {got:?}"
            ),
        ));
    }
    let rf = assignments.values().next().map_or(0, Vec::len);
    for (p, replicas) in assignments {
        if replicas.is_empty() || replicas.len() != rf {
            return Err(ApiError::new(
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "All partitions must have the same non-zero number of replicas; partition {p} has {}",
                    replicas.len()
                ),
            ));
        }
        let mut seen = replicas.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != replicas.len() {
            return Err(ApiError::new(
                ResponseError::InvalidReplicaAssignment,
                format!("Partition {p} lists a broker twice: {replicas:?}"),
            ));
        }
        if let Some(b) = replicas.iter().find(|b| !image.brokers.contains_key(b)) {
            return Err(ApiError::new(
                ResponseError::InvalidReplicaAssignment,
                format!("Partition {p} is assigned to broker {b}, which is not registered."),
            ));
        }
    }
    Ok(assignments.clone())
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

/// Decides a CreatePartitions: grow `name` to `new_total` partitions.
pub fn create_partitions(
    image: &MetadataImage,
    name: &str,
    new_total: i32,
    assignments: Option<&[Vec<i32>]>,
    start: usize,
) -> Decision {
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
    let replication_factor = topic
        .partitions
        .values()
        .next()
        .map_or(1, |p| p.replicas.len()) as i16;
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
            validate_manual_assignment(image, &map, current)?
        }
        None => assign_replicas(
            image,
            current,
            new_total - current,
            replication_factor,
            start,
        )?,
    };
    Ok(partition_records(topic.topic_id, &assignment).collect())
}

/// One change of an IncrementalAlterConfigs request (AlterConfigs is expressed as a `Set` of
/// every given config plus a `Delete` of every other override).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterOp {
    Set(String),
    Delete,
    Append(String),
    Subtract(String),
}

/// Decides config changes for one resource. `incremental = false` is the legacy AlterConfigs,
/// which replaces the resource's whole set of overrides.
pub fn alter_configs(
    image: &MetadataImage,
    resource: &ConfigResource,
    changes: &[(String, AlterOp)],
    incremental: bool,
) -> Decision {
    let current = image.configs_of(resource).cloned().unwrap_or_default();
    let validate = |name: &str, value: &str| match resource {
        ConfigResource::Topic(_) => config::validate_topic_config(name, value),
        ConfigResource::Broker(_) => {
            let def = config::broker_config_def(name).ok_or_else(|| InvalidConfig {
                name: name.to_string(),
                message: format!("Unknown broker config: {name}"),
            })?;
            if !def.dynamic {
                return Err(InvalidConfig {
                    name: name.to_string(),
                    message: format!("Cannot update these configs dynamically: [{name}]"),
                });
            }
            config::validate_broker_config(name, value)
        }
    };
    match resource {
        ConfigResource::Topic(name) if image.topic(name).is_none() => {
            return Err(ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("The topic '{name}' does not exist."),
            ));
        }
        ConfigResource::Broker(id) if !id.is_empty() => {
            let known = id
                .parse::<i32>()
                .ok()
                .is_some_and(|id| image.brokers.contains_key(&id));
            if !known {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!(
                        "Unexpected broker id, expected one of {:?}, but received {id}",
                        image.brokers.keys().collect::<Vec<_>>()
                    ),
                ));
            }
        }
        _ => {}
    }

    let mut next = if incremental {
        current.clone()
    } else {
        BTreeMap::new()
    };
    for (name, op) in changes {
        match op {
            AlterOp::Set(value) => {
                next.insert(name.clone(), validate(name, value)?);
            }
            AlterOp::Delete => {
                next.remove(name);
            }
            AlterOp::Append(value) | AlterOp::Subtract(value) => {
                let is_list = config::topic_config_def(name)
                    .map(|d| d.kind)
                    .or_else(|| config::broker_config_def(name).map(|d| d.kind))
                    == Some(config::ConfigType::List);
                if !is_list {
                    return Err(ApiError::new(
                        ResponseError::InvalidConfig,
                        format!(
                            "Config {name} is not a list: APPEND and SUBTRACT apply to list configs only"
                        ),
                    ));
                }
                let base = next
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| effective_default(name));
                let mut items: Vec<String> = base
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                for v in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if matches!(op, AlterOp::Append(_)) {
                        if !items.iter().any(|i| i == v) {
                            items.push(v.to_string());
                        }
                    } else {
                        items.retain(|i| i != v);
                    }
                }
                next.insert(name.clone(), validate(name, &items.join(","))?);
            }
        }
    }

    let mut records = Vec::new();
    for (name, value) in &next {
        if current.get(name) != Some(value) {
            records.push(MetadataRecord::Config {
                resource: resource.clone(),
                name: name.clone(),
                value: Some(value.clone()),
            });
        }
    }
    for name in current.keys().filter(|n| !next.contains_key(*n)) {
        records.push(MetadataRecord::Config {
            resource: resource.clone(),
            name: name.clone(),
            value: None,
        });
    }
    Ok(records)
}

fn effective_default(name: &str) -> String {
    config::topic_config_def(name)
        .map(|d| d.default.to_string())
        .or_else(|| config::broker_config_def(name).and_then(|d| d.default.map(String::from)))
        .unwrap_or_default()
}

/// Reserves `count` producer ids for a broker: returns the first id and the record.
pub fn allocate_producer_ids(
    image: &MetadataImage,
    broker_id: i32,
    count: i64,
) -> (i64, MetadataRecord) {
    let first = image.next_producer_id;
    (
        first,
        MetadataRecord::ProducerIds {
            broker_id,
            next_producer_id: first + count,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: CreateDefaults = CreateDefaults {
        num_partitions: 1,
        replication_factor: 1,
    };

    fn image_with_brokers(ids: &[i32]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for &id in ids {
            image.replay(&MetadataRecord::RegisterBroker {
                broker_id: id,
                host: "localhost".into(),
                port: 9092,
                rack: None,
            });
        }
        image
    }

    fn create(image: &mut MetadataImage, name: &str, partitions: i32) -> Decision<CreatedTopic> {
        let req = CreateTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: -1,
            ..Default::default()
        };
        let (records, created) = create_topic(
            image,
            &req,
            DEFAULTS,
            Uuid::from_u128(image.topics.len() as u128 + 1),
            0,
        )?;
        for r in &records {
            image.replay(r);
        }
        Ok(created)
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        for good in ["a", "A.b_c-1", &"x".repeat(249)] {
            assert!(validate_topic_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü", &"x".repeat(250)] {
            let err = validate_topic_name(bad).unwrap_err();
            assert_eq!(err.error, ResponseError::InvalidTopicException, "{bad}");
        }
    }

    #[test]
    fn created_topic_has_partitions_led_by_the_broker() {
        let mut image = image_with_brokers(&[1]);
        let created = create(&mut image, "orders", 3).unwrap();
        assert_eq!(created.num_partitions, 3);
        let topic = image.topic("orders").unwrap();
        assert_eq!(topic.partitions.len(), 3);
        assert!(
            topic
                .partitions
                .values()
                .all(|p| p.leader == 1 && p.replicas == vec![1])
        );
    }

    #[test]
    fn duplicate_and_colliding_names_are_refused() {
        let mut image = image_with_brokers(&[1]);
        create(&mut image, "a.b", 1).unwrap();
        assert_eq!(
            create(&mut image, "a.b", 1).unwrap_err().error,
            ResponseError::TopicAlreadyExists
        );
        assert_eq!(
            create(&mut image, "a_b", 1).unwrap_err().error,
            ResponseError::InvalidTopicException
        );
    }

    #[test]
    fn invalid_partitions_and_replication_are_refused() {
        let mut image = image_with_brokers(&[1]);
        assert_eq!(
            create(&mut image, "t", 0).unwrap_err().error,
            ResponseError::InvalidPartitions
        );
        let req = CreateTopic {
            name: "t".into(),
            num_partitions: 1,
            replication_factor: 3,
            ..Default::default()
        };
        let err = create_topic(&image, &req, DEFAULTS, Uuid::nil(), 0).unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidReplicationFactor);
    }

    #[test]
    fn replicas_spread_round_robin() {
        let image = image_with_brokers(&[1, 2, 3]);
        let a = assign_replicas(&image, 0, 3, 2, 1).unwrap();
        assert_eq!(a[&0], vec![2, 3]);
        assert_eq!(a[&1], vec![3, 1]);
        assert_eq!(a[&2], vec![1, 2]);
    }

    #[test]
    fn invalid_topic_configs_are_refused_at_creation() {
        let image = image_with_brokers(&[1]);
        let req = CreateTopic {
            name: "t".into(),
            num_partitions: 1,
            replication_factor: 1,
            configs: vec![("retention.ms".into(), Some("never".into()))],
            ..Default::default()
        };
        let err = create_topic(&image, &req, DEFAULTS, Uuid::nil(), 0).unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidConfig);
        assert!(err.message.contains("retention.ms"));
    }

    #[test]
    fn partitions_only_grow() {
        let mut image = image_with_brokers(&[1]);
        create(&mut image, "t", 2).unwrap();
        assert_eq!(
            create_partitions(&image, "t", 2, None, 0)
                .unwrap_err()
                .error,
            ResponseError::InvalidPartitions
        );
        assert_eq!(
            create_partitions(&image, "t", 1, None, 0)
                .unwrap_err()
                .error,
            ResponseError::InvalidPartitions
        );
        let records = create_partitions(&image, "t", 4, None, 0).unwrap();
        for r in &records {
            image.replay(r);
        }
        assert_eq!(image.topic("t").unwrap().partitions.len(), 4);
        assert_eq!(
            create_partitions(&image, "nope", 4, None, 0)
                .unwrap_err()
                .error,
            ResponseError::UnknownTopicOrPartition
        );
    }

    #[test]
    fn incremental_alter_sets_deletes_and_appends() {
        let mut image = image_with_brokers(&[1]);
        create(&mut image, "t", 1).unwrap();
        let resource = ConfigResource::Topic("t".into());
        let apply = |image: &mut MetadataImage, changes: &[(String, AlterOp)], incremental| {
            for r in alter_configs(image, &resource, changes, incremental).unwrap() {
                image.replay(&r);
            }
        };
        apply(
            &mut image,
            &[("retention.ms".into(), AlterOp::Set("1000".into()))],
            true,
        );
        apply(
            &mut image,
            &[("cleanup.policy".into(), AlterOp::Append("compact".into()))],
            true,
        );
        let configs = image.topic_configs("t").unwrap();
        assert_eq!(configs["retention.ms"], "1000");
        assert_eq!(configs["cleanup.policy"], "delete,compact");

        apply(
            &mut image,
            &[("retention.ms".into(), AlterOp::Delete)],
            true,
        );
        assert!(
            !image
                .topic_configs("t")
                .unwrap()
                .contains_key("retention.ms")
        );

        // Legacy AlterConfigs replaces the whole set.
        apply(
            &mut image,
            &[("segment.ms".into(), AlterOp::Set("60000".into()))],
            false,
        );
        let configs = image.topic_configs("t").unwrap();
        assert_eq!(configs.len(), 1);
        assert_eq!(configs["segment.ms"], "60000");
    }

    #[test]
    fn alter_refuses_unknown_topics_and_static_broker_configs() {
        let image = image_with_brokers(&[1]);
        let err = alter_configs(&image, &ConfigResource::Topic("x".into()), &[], true).unwrap_err();
        assert_eq!(err.error, ResponseError::UnknownTopicOrPartition);
        let err = alter_configs(
            &image,
            &ConfigResource::Broker("1".into()),
            &[("node.id".into(), AlterOp::Set("2".into()))],
            true,
        )
        .unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidConfig);
        let ok = alter_configs(
            &image,
            &ConfigResource::Broker(String::new()),
            &[("log.retention.ms".into(), AlterOp::Set("5000".into()))],
            true,
        );
        assert_eq!(ok.unwrap().len(), 1);
    }

    #[test]
    fn producer_id_blocks_do_not_overlap() {
        let mut image = image_with_brokers(&[1]);
        let (first, record) = allocate_producer_ids(&image, 1, 1000);
        image.replay(&record);
        let (second, _) = allocate_producer_ids(&image, 1, 1000);
        assert_eq!((first, second), (0, 1000));
    }
}
