//! The metadata image: the state that replaying the metadata log produces.
//!
//! Readers (request handlers) hold an `Arc<MetadataImage>` and never see it change; a writer
//! clones, replays new records into the clone and publishes it. Topics sit behind `Arc` so a
//! clone copies pointers, not partitions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use crate::records::{ConfigResource, MetadataRecord};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub broker_id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    pub replicas: Vec<i32>,
    pub in_sync_replicas: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: BTreeMap<i32, PartitionImage>,
}

impl TopicImage {
    /// Kafka's internal topics: hidden from `listTopics` unless asked for.
    pub fn is_internal(&self) -> bool {
        is_internal_topic(&self.name)
    }
}

pub fn is_internal_topic(name: &str) -> bool {
    name == crate::CONSUMER_OFFSETS_TOPIC || name == "__transaction_state"
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataImage {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    topic_names: HashMap<Uuid, String>,
    pub configs: BTreeMap<ConfigResource, BTreeMap<String, String>>,
    pub next_producer_id: i64,
    /// How many records have been replayed into this image.
    pub records_applied: u64,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, topic_id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.topic_names
            .get(topic_id)
            .and_then(|n| self.topics.get(n))
    }

    pub fn configs_of(&self, resource: &ConfigResource) -> Option<&BTreeMap<String, String>> {
        self.configs.get(resource)
    }

    pub fn topic_configs(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.configs_of(&ConfigResource::Topic(name.to_string()))
    }

    /// Applies one record. Records that refer to unknown topics are ignored: the controller
    /// never writes them, and ignoring is the safe reading of a log written by a newer version.
    pub fn replay(&mut self, record: &MetadataRecord) {
        self.records_applied += 1;
        match record {
            MetadataRecord::Cluster { cluster_id } => self.cluster_id = Some(cluster_id.clone()),
            MetadataRecord::RegisterBroker {
                broker_id,
                host,
                port,
                rack,
            } => {
                self.brokers.insert(
                    *broker_id,
                    BrokerRegistration {
                        broker_id: *broker_id,
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                    },
                );
            }
            MetadataRecord::Topic { name, topic_id } => {
                self.topic_names.insert(*topic_id, name.clone());
                self.topics.insert(
                    name.clone(),
                    Arc::new(TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: BTreeMap::new(),
                    }),
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                in_sync_replicas,
                leader,
                leader_epoch,
                partition_epoch,
            } => {
                let Some(name) = self.topic_names.get(topic_id) else {
                    return;
                };
                let Some(topic) = self.topics.get_mut(name) else {
                    return;
                };
                Arc::make_mut(topic).partitions.insert(
                    *partition,
                    PartitionImage {
                        replicas: replicas.clone(),
                        in_sync_replicas: in_sync_replicas.clone(),
                        leader: *leader,
                        leader_epoch: *leader_epoch,
                        partition_epoch: *partition_epoch,
                    },
                );
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.topic_names.remove(topic_id) {
                    self.topics.remove(&name);
                    self.configs.remove(&ConfigResource::Topic(name));
                }
            }
            MetadataRecord::Config {
                resource,
                name,
                value,
            } => match value {
                Some(v) => {
                    self.configs
                        .entry(resource.clone())
                        .or_default()
                        .insert(name.clone(), v.clone());
                }
                None => {
                    if let Some(map) = self.configs.get_mut(resource) {
                        map.remove(name);
                        if map.is_empty() {
                            self.configs.remove(resource);
                        }
                    }
                }
            },
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => self.next_producer_id = self.next_producer_id.max(*next_producer_id),
        }
    }

    /// The records that rebuild this image from nothing: what a snapshot holds.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        if let Some(cluster_id) = &self.cluster_id {
            out.push(MetadataRecord::Cluster {
                cluster_id: cluster_id.clone(),
            });
        }
        for b in self.brokers.values() {
            out.push(MetadataRecord::RegisterBroker {
                broker_id: b.broker_id,
                host: b.host.clone(),
                port: b.port,
                rack: b.rack.clone(),
            });
        }
        for t in self.topics.values() {
            out.push(MetadataRecord::Topic {
                name: t.name.clone(),
                topic_id: t.topic_id,
            });
            for (&partition, p) in &t.partitions {
                out.push(MetadataRecord::Partition {
                    topic_id: t.topic_id,
                    partition,
                    replicas: p.replicas.clone(),
                    in_sync_replicas: p.in_sync_replicas.clone(),
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                });
            }
        }
        for (resource, configs) in &self.configs {
            for (name, value) in configs {
                out.push(MetadataRecord::Config {
                    resource: resource.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        if self.next_producer_id > 0 {
            out.push(MetadataRecord::ProducerIds {
                broker_id: -1,
                next_producer_id: self.next_producer_id,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_records() -> Vec<MetadataRecord> {
        let id = Uuid::from_u128(7);
        vec![
            MetadataRecord::Cluster {
                cluster_id: "c1".into(),
            },
            MetadataRecord::RegisterBroker {
                broker_id: 1,
                host: "h".into(),
                port: 9092,
                rack: None,
            },
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id: id,
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 0,
                replicas: vec![1],
                in_sync_replicas: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
            },
            MetadataRecord::Config {
                resource: ConfigResource::Topic("t".into()),
                name: "retention.ms".into(),
                value: Some("1000".into()),
            },
            MetadataRecord::ProducerIds {
                broker_id: 1,
                next_producer_id: 1000,
            },
        ]
    }

    #[test]
    fn snapshot_records_rebuild_the_same_image() {
        let mut image = MetadataImage::default();
        for r in sample_records() {
            image.replay(&r);
        }
        let mut rebuilt = MetadataImage::default();
        for r in image.to_records() {
            rebuilt.replay(&r);
        }
        rebuilt.records_applied = image.records_applied;
        assert_eq!(rebuilt, image);
    }

    #[test]
    fn removing_a_topic_removes_its_configs_and_id() {
        let mut image = MetadataImage::default();
        for r in sample_records() {
            image.replay(&r);
        }
        image.replay(&MetadataRecord::RemoveTopic {
            topic_id: Uuid::from_u128(7),
        });
        assert!(image.topic("t").is_none());
        assert!(image.topic_by_id(&Uuid::from_u128(7)).is_none());
        assert!(image.topic_configs("t").is_none());
    }

    #[test]
    fn config_removal_drops_empty_resources() {
        let mut image = MetadataImage::default();
        let resource = ConfigResource::Broker(String::new());
        image.replay(&MetadataRecord::Config {
            resource: resource.clone(),
            name: "a".into(),
            value: Some("1".into()),
        });
        image.replay(&MetadataRecord::Config {
            resource: resource.clone(),
            name: "a".into(),
            value: None,
        });
        assert!(image.configs_of(&resource).is_none());
    }
}
