//! The client's view of the cluster: brokers, the controller, topics, partitions and leaders.
//!
//! A [`ClusterMetadata`] is an immutable snapshot built from one Metadata response (merged with
//! the previous snapshot when only some topics were asked for). The [`crate::Client`] swaps in a
//! new snapshot on refresh; readers hold an `Arc` to whichever snapshot they started with.

use std::collections::BTreeMap;
use std::fmt;

use kafka_protocol::messages::MetadataResponse;
use uuid::Uuid;

use crate::error::{Error, Result};

/// A topic and a partition of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Fails if a partition appears twice: results are matched to requests by partition, so a
/// duplicate could not be told apart (and brokers reject them).
pub(crate) fn ensure_unique<'a>(
    partitions: impl IntoIterator<Item = &'a TopicPartition>,
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for tp in partitions {
        if !seen.insert(tp) {
            return Err(Error::InvalidArgument(format!(
                "partition {tp} is listed twice"
            )));
        }
    }
    Ok(())
}

/// One broker as the cluster advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMetadata {
    /// `node.id`.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
}

impl BrokerMetadata {
    /// `host:port`, with IPv6 hosts bracketed.
    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id; `None` while there is no leader.
    pub leader: Option<i32>,
    /// The leader epoch, if the broker reported one.
    pub leader_epoch: Option<i32>,
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub in_sync_replicas: Vec<i32>,
    /// Replicas on offline log directories.
    pub offline_replicas: Vec<i32>,
    /// The partition-level error code (e.g. `LEADER_NOT_AVAILABLE`), 0 for none.
    pub error_code: i16,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// Topic id, when the broker reported one (Metadata v10+).
    pub topic_id: Option<Uuid>,
    /// Whether it is an internal topic (`__consumer_offsets`, ...).
    pub is_internal: bool,
    /// Partitions sorted by index.
    pub partitions: Vec<PartitionMetadata>,
    /// The topic-level error code (e.g. `UNKNOWN_TOPIC_OR_PARTITION`), 0 for none.
    pub error_code: i16,
}

impl TopicMetadata {
    /// The topic-level error, if any.
    pub fn error(&self) -> Result<()> {
        Error::check(self.error_code, Some(&format!("topic '{}'", self.name)))
    }

    /// The partition with index `partition`.
    pub fn partition(&self, partition: i32) -> Option<&PartitionMetadata> {
        self.partitions
            .binary_search_by_key(&partition, |p| p.partition)
            .ok()
            .map(|i| &self.partitions[i])
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    /// Indexes of partitions that currently have a leader, sorted.
    pub fn available_partitions(&self) -> Vec<i32> {
        self.partitions
            .iter()
            .filter(|p| p.leader.is_some())
            .map(|p| p.partition)
            .collect()
    }
}

/// A snapshot of cluster metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// The cluster id, if the broker reported one.
    pub cluster_id: Option<String>,
    /// The controller's broker id, if known. (In KRaft clusters Kafka reports a random live
    /// broker here, which forwards controller requests.)
    pub controller_id: Option<i32>,
    /// Live brokers by id.
    pub brokers: BTreeMap<i32, BrokerMetadata>,
    /// Topics by name: all topics after a full refresh, otherwise those asked for so far.
    pub topics: BTreeMap<String, TopicMetadata>,
}

impl ClusterMetadata {
    /// The topic called `name`, if known.
    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.get(name)
    }

    /// The topic with id `id`, if known.
    pub fn topic_by_id(&self, id: Uuid) -> Option<&TopicMetadata> {
        self.topics.values().find(|t| t.topic_id == Some(id))
    }

    /// The leader of `topic`/`partition`, if known.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.topic(topic)?.partition(partition)?.leader
    }

    /// Builds a snapshot from a Metadata response. With `previous`, topics the response does
    /// not mention are kept from it (a refresh of some topics); without, the response is the
    /// whole truth.
    pub(crate) fn from_response(
        response: MetadataResponse,
        previous: Option<&ClusterMetadata>,
    ) -> ClusterMetadata {
        let brokers = response
            .brokers
            .into_iter()
            .map(|b| {
                let id = b.node_id.0;
                (
                    id,
                    BrokerMetadata {
                        id,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.map(|r| r.to_string()),
                    },
                )
            })
            .collect();
        let mut topics = previous.map(|p| p.topics.clone()).unwrap_or_default();
        for topic in response.topics {
            let Some(name) = topic.name else { continue };
            let name = name.0.to_string();
            let mut partitions: Vec<PartitionMetadata> = topic
                .partitions
                .into_iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
                    leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                    replicas: p.replica_nodes.into_iter().map(|b| b.0).collect(),
                    in_sync_replicas: p.isr_nodes.into_iter().map(|b| b.0).collect(),
                    offline_replicas: p.offline_replicas.into_iter().map(|b| b.0).collect(),
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            topics.insert(
                name.clone(),
                TopicMetadata {
                    name,
                    topic_id: (!topic.topic_id.is_nil()).then_some(topic.topic_id),
                    is_internal: topic.is_internal,
                    partitions,
                    error_code: topic.error_code,
                },
            );
        }
        ClusterMetadata {
            cluster_id: response.cluster_id.map(|c| c.to_string()),
            controller_id: (response.controller_id.0 >= 0).then_some(response.controller_id.0),
            brokers,
            topics,
        }
    }
}
