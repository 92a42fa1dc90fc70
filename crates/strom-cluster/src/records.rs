//! Metadata records: every change to cluster metadata is one of these, appended to the
//! metadata log and replayed in order into a [`crate::MetadataImage`].
//!
//! They mirror the records of Kafka's KRaft metadata log (TopicRecord, PartitionRecord,
//! ConfigRecord, RemoveTopicRecord, ProducerIdsRecord, RegisterBrokerRecord,
//! BrokerRegistrationChangeRecord, UnregisterBrokerRecord). One entry of the Raft log holds a
//! batch of records that is applied atomically (a topic with all its partitions and configs).
//! Serialized as JSON: metadata changes are rare and a readable log is worth the bytes.
//! Fields added after the first release are `#[serde(default)]` and left out when empty, so
//! logs and snapshots written before them still read, and read the same.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acl::AclBinding;
use crate::ids::{BrokerEpoch, BrokerId, LeaderEpoch, PartitionEpoch};
use crate::scram::{ScramCredential, ScramMechanism};

/// A resource that carries configs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum ConfigResource {
    Topic(String),
    /// A broker id, or the empty string for the cluster-wide default.
    Broker(String),
}

/// One listener a broker serves clients on, as it registered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    /// The listener name (`PLAINTEXT`, or a name from `listener.security.protocol.map`).
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// Whether a partition's leader has finished recovering its log (Kafka's
/// `LeaderRecoveryState`, KIP-704). An unclean election makes the new leader `Recovering`:
/// its log is the partition's truth from then on, whatever it lost, and no follower may join
/// the in-sync replicas until the leader says it is `Recovered` (with AlterPartition).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaderRecoveryState {
    #[default]
    Recovered,
    Recovering,
}

impl LeaderRecoveryState {
    pub fn is_recovered(&self) -> bool {
        *self == LeaderRecoveryState::Recovered
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    /// The first record of a metadata log: the cluster's identity.
    Cluster {
        cluster_id: String,
    },
    /// A broker registration: written when a broker process starts (a new incarnation),
    /// replacing any earlier registration of the same id. A new registration is fenced until
    /// the broker has caught up with the metadata log and asks to be unfenced.
    RegisterBroker {
        broker_id: BrokerId,
        broker_epoch: BrokerEpoch,
        incarnation_id: Uuid,
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
        fenced: bool,
    },
    /// A change of a registered broker's state; `None` leaves a field as it is.
    BrokerRegistrationChange {
        broker_id: BrokerId,
        broker_epoch: BrokerEpoch,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fenced: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_controlled_shutdown: Option<bool>,
    },
    /// The broker left the cluster for good (`strom cluster remove-broker`).
    UnregisterBroker {
        broker_id: BrokerId,
        broker_epoch: BrokerEpoch,
    },
    Topic {
        name: String,
        topic_id: Uuid,
    },
    /// A partition's assignment and leadership; a later record for the same partition
    /// replaces the earlier one whole. The fields are those of [`crate::PartitionImage`],
    /// which documents them.
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<BrokerId>,
        in_sync_replicas: Vec<BrokerId>,
        leader: BrokerId,
        leader_epoch: LeaderEpoch,
        partition_epoch: PartitionEpoch,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        eligible_leader_replicas: Vec<BrokerId>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        last_known_elr: Vec<BrokerId>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        adding_replicas: Vec<BrokerId>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removing_replicas: Vec<BrokerId>,
        #[serde(default, skip_serializing_if = "LeaderRecoveryState::is_recovered")]
        leader_recovery_state: LeaderRecoveryState,
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
        broker_id: BrokerId,
        next_producer_id: i64,
    },
    /// A SCRAM user's credential for one mechanism (Kafka's UserScramCredentialRecord); it
    /// replaces an earlier one of the same user and mechanism.
    UserScramCredential {
        name: String,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    },
    /// Deletes a SCRAM user's credential for one mechanism (Kafka's
    /// RemoveUserScramCredentialRecord).
    RemoveUserScramCredential {
        name: String,
        mechanism: ScramMechanism,
    },
    /// An ACL (Kafka's AccessControlEntryRecord); the id names it for its removal.
    Acl {
        id: Uuid,
        binding: AclBinding,
    },
    /// Removes an ACL (Kafka's RemoveAccessControlEntryRecord).
    RemoveAcl {
        id: Uuid,
    },
}
