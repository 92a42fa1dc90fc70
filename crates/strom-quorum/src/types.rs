//! openraft's type configuration for the metadata log.
//!
//! - An entry's application data is one atomic batch of metadata records.
//! - Node ids are Kafka node ids (`node.id`, non-negative `i32`) widened to `u64`.
//! - A node is known by the address of its controller listener.
//! - Snapshot data is the snapshot file's bytes (`generic-snapshot-data`: the network sends a
//!   whole snapshot in one message, see `network.rs`).

use std::fmt;

use serde::{Deserialize, Serialize};
use strom_cluster::{BrokerId, MetadataRecord};

/// One entry's records, applied atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MetadataBatch(pub Vec<MetadataRecord>);

impl fmt::Display for MetadataBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} record(s)", self.0.len())
    }
}

/// A controller as the quorum knows it: where its controller listener is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerNode {
    /// `host:port` of the controller listener.
    pub address: String,
}

impl fmt::Display for ControllerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

openraft::declare_raft_types!(
    /// The metadata log's types.
    pub TypeConfig:
        D = MetadataBatch,
        R = (),
        NodeId = u64,
        Node = ControllerNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Vec<u8>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, ControllerNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, ControllerNode>;

/// The Raft node id of a Kafka node id.
pub fn node_id(broker: BrokerId) -> NodeId {
    broker.0 as NodeId
}

/// The Kafka node id of a Raft node id (they are the same number).
pub fn broker_id(node: NodeId) -> BrokerId {
    BrokerId(node as i32)
}

/// The metadata log position of a Raft log id.
pub fn metadata_offset(log_id: &LogId) -> strom_cluster::MetadataOffset {
    strom_cluster::MetadataOffset {
        term: log_id.leader_id.term,
        index: log_id.index,
    }
}
