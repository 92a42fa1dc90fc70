//! Metadata records: every change to cluster metadata is one of these, appended to the
//! metadata log and replayed in order into a [`crate::MetadataImage`].
//!
//! They mirror the records of Kafka's KRaft metadata log (TopicRecord, PartitionRecord,
//! ConfigRecord, RemoveTopicRecord, ProducerIdsRecord, RegisterBrokerRecord) so the same
//! replay logic serves the single-node log of today and the Raft-replicated log to come.
//! Serialized as JSON: metadata changes are rare and a readable log is worth the bytes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A resource that carries configs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum ConfigResource {
    Topic(String),
    /// A broker id, or the empty string for the cluster-wide default.
    Broker(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    /// The first record of a metadata log: the cluster's identity.
    Cluster {
        cluster_id: String,
    },
    /// A broker and the address clients should use for it.
    RegisterBroker {
        broker_id: i32,
        host: String,
        port: u16,
        rack: Option<String>,
    },
    Topic {
        name: String,
        topic_id: Uuid,
    },
    /// A partition's assignment and leadership; a later record for the same partition
    /// replaces the earlier one whole.
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        in_sync_replicas: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    RemoveTopic {
        topic_id: Uuid,
    },
    /// Sets (`Some`) or removes (`None`) one config of a resource.
    Config {
        resource: ConfigResource,
        name: String,
        value: Option<String>,
    },
    /// The next producer id not yet handed out: a broker reserved the ids below it.
    ProducerIds {
        broker_id: i32,
        next_producer_id: i64,
    },
}
