//! Config decisions: AlterConfigs and IncrementalAlterConfigs for topics and brokers.
//!
//! The request's changes are applied, in order, to the resource's current overrides; every
//! resulting value is validated against the definitions in [`crate::config`]; the records
//! are the difference between the old and the new set of overrides (a `Config` record that
//! sets or removes one name). Nothing is written when a single change is invalid.
//!
//! A change of `min.insync.replicas` (for a topic, or the cluster default) also clears the
//! eligible leader replicas of the partitions it applies to, as Kafka does (KIP-966): they
//! were eligible because the leader could not advance the high watermark below the old
//! minimum, and a lower minimum lets it, so they may no longer have every committed record.
//! Clearing is always safe; it only costs the chance to elect one of them.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

use super::replication_config::MIN_INSYNC_REPLICAS;
use super::{ApiError, Decision};
use crate::config::{self, InvalidConfig};
use crate::ids::BrokerId;
use crate::image::{MetadataImage, PartitionImage};
use crate::records::{ConfigResource, MetadataRecord};

/// One change of an IncrementalAlterConfigs request (AlterConfigs is expressed as a `Set` of
/// every given config plus a `Delete` of every other override).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
                .is_some_and(|id| image.brokers.contains_key(&BrokerId(id)));
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
    let min_insync_changed = records
        .iter()
        .any(|r| matches!(r, MetadataRecord::Config { name, .. } if name == MIN_INSYNC_REPLICAS));
    if min_insync_changed {
        records.extend(clear_eligible_leader_replicas(image, resource));
    }
    Ok(records)
}

/// The records that clear the eligible leader replicas of the partitions whose
/// `min.insync.replicas` comes from `resource` (see the module docs). A per-broker value is
/// not one the controller reads, so it clears nothing.
fn clear_eligible_leader_replicas(
    image: &MetadataImage,
    resource: &ConfigResource,
) -> Vec<MetadataRecord> {
    let applies = |topic: &str| match resource {
        ConfigResource::Topic(name) => name == topic,
        ConfigResource::Broker(id) => id.is_empty(),
    };
    image
        .topic_partitions()
        .filter(|(t, _, p)| {
            applies(&t.name)
                && !(p.eligible_leader_replicas.is_empty() && p.last_known_elr.is_empty())
        })
        .map(|(t, partition, p)| {
            let cleared = PartitionImage {
                eligible_leader_replicas: Vec::new(),
                last_known_elr: Vec::new(),
                partition_epoch: p.partition_epoch.next(),
                ..p.clone()
            };
            cleared.to_record(t.topic_id, partition)
        })
        .collect()
}

fn effective_default(name: &str) -> String {
    config::topic_config_def(name)
        .map(|d| d.default.to_string())
        .or_else(|| config::broker_config_def(name).and_then(|d| d.default.map(String::from)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{BrokerEpoch, PartitionEpoch};

    fn image_with_topic() -> MetadataImage {
        let mut image = MetadataImage::default();
        let topic_id = uuid::Uuid::from_u128(1);
        for record in [
            MetadataRecord::RegisterBroker {
                broker_id: BrokerId(1),
                broker_epoch: BrokerEpoch(1),
                incarnation_id: uuid::Uuid::from_u128(1),
                endpoints: vec![],
                rack: None,
                fenced: false,
            },
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id,
            },
            PartitionImage::new(vec![BrokerId(1)], vec![BrokerId(1)], BrokerId(1))
                .to_record(topic_id, 0),
        ] {
            image.replay(&record);
        }
        image
    }

    #[test]
    fn incremental_alter_sets_deletes_and_appends() {
        let mut image = image_with_topic();
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
        let image = image_with_topic();
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
    fn changing_min_insync_replicas_clears_the_eligible_leader_replicas() {
        let mut image = image_with_topic();
        let topic_id = image.topic("t").unwrap().topic_id;
        let mut p = image.partition("t", 0).unwrap().clone();
        p.replicas = vec![BrokerId(1), BrokerId(2)];
        p.eligible_leader_replicas = vec![BrokerId(2)];
        image.replay(&p.to_record(topic_id, 0));
        let set_min = |resource: ConfigResource| {
            let changes = [("min.insync.replicas".to_string(), AlterOp::Set("1".into()))];
            alter_configs(&image, &resource, &changes, true).unwrap()
        };
        // A per-broker value is not the controller's: nothing to clear.
        assert_eq!(set_min(ConfigResource::Broker("1".into())).len(), 1);
        for resource in [
            ConfigResource::Topic("t".into()),
            ConfigResource::Broker(String::new()),
        ] {
            let records = set_min(resource);
            assert_eq!(records.len(), 2);
            let mut after = image.clone();
            for r in &records {
                after.replay(r);
            }
            let cleared = after.partition("t", 0).unwrap();
            assert!(cleared.eligible_leader_replicas.is_empty());
            assert_eq!(cleared.partition_epoch, PartitionEpoch(1));
        }
    }

    #[test]
    fn alter_ops_travel_as_json() {
        let op = AlterOp::Append("compact".into());
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(serde_json::from_str::<AlterOp>(&json).unwrap(), op);
    }
}
