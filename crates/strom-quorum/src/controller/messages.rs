//! What brokers ask the active controller, and what it answers. These travel over the
//! controller listener as JSON (and, on the controller's own node, through a channel).

use serde::{Deserialize, Serialize};
use strom_cluster::acl::{AclBinding, AclFilter};
use strom_cluster::controller::{
    AlterOp, AlterPartitionReply, AlterPartitionRequest, BrokerHeartbeatReply,
    BrokerHeartbeatRequest, BrokerRegistrationReply, BrokerRegistrationRequest, CreateDefaults,
    CreateTopic, CreatedTopic, ElectionResult, ElectionType, OngoingReassignment,
    PartitionReassignment, ScramDeletion, ScramUpsertion, UserResult,
};
use strom_cluster::{ApiError, BrokerEpoch, BrokerId, ConfigResource, MetadataOffset};
use uuid::Uuid;

/// One topic of a CreatePartitions request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewPartitions {
    pub topic: String,
    /// The partition count wanted after the change.
    pub count: i32,
    /// Replicas of each new partition, or `None` for automatic placement.
    pub assignments: Option<Vec<Vec<BrokerId>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControllerRequest {
    RegisterBroker(BrokerRegistrationRequest),
    BrokerHeartbeat(BrokerHeartbeatRequest),
    CreateTopics {
        topics: Vec<CreateTopic>,
        defaults: CreateDefaults,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    CreatePartitions {
        topics: Vec<NewPartitions>,
        validate_only: bool,
    },
    AlterConfigs {
        resource: ConfigResource,
        changes: Vec<(String, AlterOp)>,
        incremental: bool,
        validate_only: bool,
    },
    /// Reserve a block of producer ids for a broker (Kafka's AllocateProducerIds).
    AllocateProducerIds {
        broker_id: BrokerId,
        broker_epoch: BrokerEpoch,
    },
    DescribeQuorum,
    /// A leader's in-sync replica change (Kafka's AlterPartition).
    AlterPartition(AlterPartitionRequest),
    /// ElectLeaders for the given partitions (topic id, partition), or every partition with
    /// `None`.
    ElectLeaders {
        election_type: ElectionType,
        partitions: Option<Vec<(Uuid, i32)>>,
    },
    /// Start or cancel (no target replicas) partition reassignments.
    AlterPartitionReassignments {
        reassignments: Vec<PartitionReassignment>,
    },
    /// The reassignments in progress among these topics and partitions, or all with `None`.
    /// Answered from the active controller's image; it writes nothing.
    ListPartitionReassignments {
        topics: Option<Vec<(String, Vec<i32>)>>,
    },
    /// Remove a broker's registration for good (Kafka's UnregisterBroker).
    UnregisterBroker {
        broker_id: BrokerId,
    },
    /// Delete and create or replace SCRAM credentials (Kafka's AlterUserScramCredentials).
    AlterUserScramCredentials {
        deletions: Vec<ScramDeletion>,
        upsertions: Vec<ScramUpsertion>,
    },
    /// Create ACLs (Kafka's CreateAcls); existing ones are left as they are.
    CreateAcls {
        bindings: Vec<AclBinding>,
    },
    /// Delete every ACL a filter matches (Kafka's DeleteAcls).
    DeleteAcls {
        filters: Vec<AclFilter>,
    },
}

impl ControllerRequest {
    /// The request's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            ControllerRequest::RegisterBroker(_) => "RegisterBroker",
            ControllerRequest::BrokerHeartbeat(_) => "BrokerHeartbeat",
            ControllerRequest::CreateTopics { .. } => "CreateTopics",
            ControllerRequest::DeleteTopics { .. } => "DeleteTopics",
            ControllerRequest::CreatePartitions { .. } => "CreatePartitions",
            ControllerRequest::AlterConfigs { .. } => "AlterConfigs",
            ControllerRequest::AllocateProducerIds { .. } => "AllocateProducerIds",
            ControllerRequest::DescribeQuorum => "DescribeQuorum",
            ControllerRequest::AlterPartition(_) => "AlterPartition",
            ControllerRequest::ElectLeaders { .. } => "ElectLeaders",
            ControllerRequest::AlterPartitionReassignments { .. } => "AlterPartitionReassignments",
            ControllerRequest::ListPartitionReassignments { .. } => "ListPartitionReassignments",
            ControllerRequest::UnregisterBroker { .. } => "UnregisterBroker",
            ControllerRequest::AlterUserScramCredentials { .. } => "AlterUserScramCredentials",
            ControllerRequest::CreateAcls { .. } => "CreateAcls",
            ControllerRequest::DeleteAcls { .. } => "DeleteAcls",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControllerReply {
    BrokerRegistration(Result<BrokerRegistrationReply, ApiError>),
    BrokerHeartbeat(Result<BrokerHeartbeatReply, ApiError>),
    /// One result per requested topic, in order.
    CreateTopics(Vec<Result<CreatedTopic, ApiError>>),
    /// One result per requested name, in order: the deleted topic's id.
    DeleteTopics(Vec<Result<Uuid, ApiError>>),
    CreatePartitions(Vec<Result<(), ApiError>>),
    AlterConfigs(Result<(), ApiError>),
    /// The first id of the block and its size.
    ProducerIds(Result<(i64, i64), ApiError>),
    Quorum(QuorumDescription),
    AlterPartition(Result<AlterPartitionReply, ApiError>),
    /// One result per elected partition: every requested one, or for "all partitions" those
    /// that needed an election.
    ElectLeaders(Vec<ElectionResult>),
    /// One result per requested reassignment, in order.
    AlterPartitionReassignments(Vec<Result<(), ApiError>>),
    ListPartitionReassignments(Vec<OngoingReassignment>),
    UnregisterBroker(Result<(), ApiError>),
    /// One result per user named in the request.
    AlterUserScramCredentials(Vec<UserResult>),
    /// One result per binding, in order.
    CreateAcls(Vec<Result<(), ApiError>>),
    /// One result per filter, in order: the ACLs it matched and removed.
    DeleteAcls(Vec<Result<Vec<AclBinding>, ApiError>>),
}

/// A reply and, when the request wrote records, where they landed in the metadata log: a
/// broker that waits until it has applied that offset sees the change in its own image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerResponse {
    pub reply: ControllerReply,
    pub offset: Option<MetadataOffset>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ControllerError {
    /// This node is not the active controller; `leader` is who is, if known.
    #[error("not the active controller (the quorum leader is {leader:?})")]
    NotController { leader: Option<BrokerId> },
    /// No controller answered in time, or the metadata log could not be written.
    #[error("the controller is not available: {0}")]
    Unavailable(String),
}

/// One member of the quorum as DescribeQuorum reports it. Offsets are metadata log indexes
/// plus one (Kafka's "log end offset" is the offset after the last entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaProgress {
    pub replica_id: BrokerId,
    pub log_end_offset: i64,
    /// Milliseconds since the Unix epoch, -1 when unknown.
    pub last_fetch_timestamp: i64,
    pub last_caught_up_timestamp: i64,
}

/// The quorum as its leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumDescription {
    pub leader_id: BrokerId,
    /// The Raft term: KRaft's leader epoch.
    pub leader_epoch: i32,
    /// The offset below which the metadata log is committed.
    pub high_watermark: i64,
    pub voters: Vec<ReplicaProgress>,
    pub observers: Vec<ReplicaProgress>,
    /// Controller listener address of each voter.
    pub voter_addresses: Vec<(BrokerId, String)>,
}
