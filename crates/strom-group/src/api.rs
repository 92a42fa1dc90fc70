//! The coordinator's inputs and outputs: one request struct and one response struct per Kafka
//! API, and the [`Output`] every call returns.
//!
//! The structs carry the fields of Kafka's request and response schemas (JoinGroupRequest.json
//! and friends) in plain Rust types, so the broker's handlers translate to and from
//! `kafka_protocol` messages field by field. Fields a request version does not carry get the
//! schema's default (documented per field); the handler fills them in.
//!
//! Every request method of [`crate::Coordinator`] takes a [`RequestId`] chosen by the shell.
//! Its response comes back exactly once, as `(RequestId, Response)` in the `responses` of the
//! [`Output`] of that call or of a later call (a JoinGroup waits for the rebalance, a follower's
//! SyncGroup for the leader, an OffsetCommit for its write).

use bytes::Bytes;

use crate::codes::{self, ErrorCode};

/// Identifies a request across the calls that answer it. Chosen by the shell; it must not
/// reuse an id while the coordinator still owes that id a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Identifies one write: a group of records for one `__consumer_offsets` partition that must
/// be appended atomically and in order. Assigned by the coordinator, increasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteId(pub(crate) u64);

impl WriteId {
    /// The raw number, for logs and metrics.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for WriteId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One `__consumer_offsets` record: key and value bytes in Kafka's format (see
/// [`crate::record`]). `value: None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// Records the shell must append to `__consumer_offsets` partition `partition`, all or
/// nothing, after every earlier write of that partition and before every later one. When the
/// append is durable the shell calls [`crate::Coordinator::write_completed`] with the log
/// offset of the first record; when it fails, [`crate::Coordinator::write_failed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub id: WriteId,
    pub partition: i32,
    pub records: Vec<Record>,
    /// Set for a TxnOffsetCommit: the records form one transactional batch of this producer
    /// (attribute bit 0x10, base sequence -1), and stay pending until the COMMIT or ABORT
    /// marker of that producer follows them in the partition. `None`: an ordinary batch.
    pub producer: Option<ProducerIdAndEpoch>,
}

/// The transactional producer a write is appended for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// What a call hands back to the shell: writes to start and responses to send now.
///
/// Responses in `responses` never depend on a write that is not durable yet: a response that
/// acknowledges persisted state is held inside the coordinator until its write completes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Output {
    pub writes: Vec<Write>,
    pub responses: Vec<(RequestId, Response)>,
}

impl Output {
    /// The response for `id` in this output, if it is ready.
    pub fn response(&self, id: RequestId) -> Option<&Response> {
        self.responses
            .iter()
            .find_map(|(rid, response)| (*rid == id).then_some(response))
    }

    /// Appends another output (used when the shell batches several calls).
    pub fn extend(&mut self, other: Output) {
        self.writes.extend(other.writes);
        self.responses.extend(other.responses);
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.responses.is_empty()
    }
}

/// A response, tagged with its API.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    ListGroups(ListGroupsResponse),
    DescribeGroups(DescribeGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
    OffsetDelete(OffsetDeleteResponse),
}

// ---------------------------------------------------------------------------------------------
// JoinGroup (API key 11)

/// JoinGroup, versions 0-9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupRequest {
    /// The request's API version: v0 has no rebalance timeout (the session timeout is used),
    /// v4+ requires a known member id (KIP-394), v9 may set `skip_assignment`.
    pub api_version: i16,
    pub group_id: String,
    pub session_timeout_ms: i32,
    /// v1+; ignored for v0.
    pub rebalance_timeout_ms: i32,
    /// Empty for a member joining for the first time.
    pub member_id: String,
    /// v5+ (KIP-345 static membership); `None` before.
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    /// The member's protocols in order of preference.
    pub protocols: Vec<JoinGroupProtocol>,
    /// v8+; accepted and otherwise unused.
    pub reason: Option<String>,
    /// From the request header.
    pub client_id: String,
    /// The client's address as Kafka prints it in DescribeGroups (Kafka uses
    /// `InetAddress.toString()`, e.g. `/127.0.0.1`).
    pub client_host: String,
}

/// One protocol a member supports (for the consumer: an assignor name and the serialized
/// `ConsumerProtocolSubscription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupProtocol {
    pub name: String,
    pub metadata: Bytes,
}

/// JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupResponse {
    pub error_code: ErrorCode,
    /// -1 on error.
    pub generation_id: i32,
    /// v7+; `None` on error.
    pub protocol_type: Option<String>,
    /// `None` on error; encode as "" for versions before 7 where the field is not nullable.
    pub protocol_name: Option<String>,
    /// The leader's member id ("" when unknown).
    pub leader: String,
    /// v9+: the receiver is the leader but must not run the assignor (a static leader that
    /// rejoined a Stable group).
    pub skip_assignment: bool,
    pub member_id: String,
    /// Every member with its metadata for the chosen protocol, for the leader only.
    pub members: Vec<JoinGroupResponseMember>,
}

impl JoinGroupResponse {
    pub(crate) fn error(member_id: impl Into<String>, error_code: ErrorCode) -> Self {
        JoinGroupResponse {
            error_code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

/// A member as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupResponseMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

// ---------------------------------------------------------------------------------------------
// SyncGroup (API key 14)

/// SyncGroup, versions 0-5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    /// v3+.
    pub group_instance_id: Option<String>,
    /// v5+: checked against the group's (INCONSISTENT_GROUP_PROTOCOL when they differ).
    pub protocol_type: Option<String>,
    /// v5+: checked against the group's.
    pub protocol_name: Option<String>,
    /// The leader's assignment; empty from followers.
    pub assignments: Vec<SyncGroupAssignment>,
}

/// One member's assignment as sent by the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupAssignment {
    pub member_id: String,
    pub assignment: Bytes,
}

/// SyncGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupResponse {
    pub error_code: ErrorCode,
    /// v5+.
    pub protocol_type: Option<String>,
    /// v5+.
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncGroupResponse {
    pub(crate) fn error(error_code: ErrorCode) -> Self {
        SyncGroupResponse {
            error_code,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Heartbeat (API key 12)

/// Heartbeat, versions 0-4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    /// v3+.
    pub group_instance_id: Option<String>,
}

/// Heartbeat response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResponse {
    pub error_code: ErrorCode,
}

// ---------------------------------------------------------------------------------------------
// LeaveGroup (API key 13)

/// LeaveGroup, versions 0-5. For v0-2 the handler passes the request's single `member_id` as
/// a one-element `members` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    pub members: Vec<LeaveGroupMember>,
}

/// One member leaving. An empty `member_id` with a `group_instance_id` removes the static
/// member with that instance id (an administrative removal, KIP-345).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+; accepted and otherwise unused.
    pub reason: Option<String>,
}

/// LeaveGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupResponse {
    /// Top-level error; when set, `members` is empty.
    pub error_code: ErrorCode,
    /// v3+: one entry per member of the request.
    pub members: Vec<LeaveGroupMemberResponse>,
}

impl LeaveGroupResponse {
    /// The single error code of a v0-2 response: the top-level error if any, else the first
    /// member error (Kafka's `LeaveGroupResponse` does the same for old versions).
    pub fn legacy_error_code(&self) -> ErrorCode {
        if self.error_code != codes::NONE {
            return self.error_code;
        }
        self.members
            .iter()
            .map(|member| member.error_code)
            .find(|code| *code != codes::NONE)
            .unwrap_or(codes::NONE)
    }
}

/// The outcome for one leaving member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupMemberResponse {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error_code: ErrorCode,
}

// ---------------------------------------------------------------------------------------------
// OffsetCommit (API key 8)

/// OffsetCommit, versions 0-9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitRequest {
    /// v9+ answers GROUP_ID_NOT_FOUND for a commit with a generation to an unknown group;
    /// older versions answer ILLEGAL_GENERATION.
    pub api_version: i16,
    pub group_id: String,
    /// v1+; -1 (the default) for a commit outside group management.
    pub generation_id_or_member_epoch: i32,
    /// v1+; "" (the default) outside group management.
    pub member_id: String,
    /// v7+.
    pub group_instance_id: Option<String>,
    /// v2-4; -1 (the default) means "use the broker's retention".
    pub retention_time_ms: i64,
    pub topics: Vec<OffsetCommitTopic>,
}

/// Offsets to commit for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitTopic {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartition>,
}

/// One offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitPartition {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// v6+; -1 (the default) when unknown.
    pub committed_leader_epoch: i32,
    /// v1 only; -1 (the default) means "now".
    pub commit_timestamp: i64,
    pub committed_metadata: Option<String>,
}

/// OffsetCommit response: one error code per requested partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitResponse {
    pub topics: Vec<OffsetCommitTopicResponse>,
}

/// Per-topic part of the OffsetCommit response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartitionResponse>,
}

/// Per-partition outcome of an OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitPartitionResponse {
    pub partition_index: i32,
    pub error_code: ErrorCode,
}

impl OffsetCommitResponse {
    /// Every partition of the request with the same error code.
    pub(crate) fn all(request: &OffsetCommitRequest, error_code: ErrorCode) -> Self {
        OffsetCommitResponse {
            topics: request
                .topics
                .iter()
                .map(|topic| OffsetCommitTopicResponse {
                    name: topic.name.clone(),
                    partitions: topic
                        .partitions
                        .iter()
                        .map(|partition| OffsetCommitPartitionResponse {
                            partition_index: partition.partition_index,
                            error_code,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TxnOffsetCommit (API key 28)

/// TxnOffsetCommit, versions 0-4: offsets written as part of a producer's transaction
/// (KIP-98). They are pending until the transaction's marker reaches the group's partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitRequest {
    pub transactional_id: String,
    pub group_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// v3+ (KIP-447); -1 (the default) for a producer that does not pass the consumer's group
    /// metadata, which skips the member checks.
    pub generation_id: i32,
    /// v3+; "" (the default).
    pub member_id: String,
    /// v3+.
    pub group_instance_id: Option<String>,
    pub topics: Vec<TxnOffsetCommitTopic>,
}

/// Offsets to commit for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitTopic {
    pub name: String,
    pub partitions: Vec<TxnOffsetCommitPartition>,
}

/// One offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitPartition {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// v2+; -1 (the default) when unknown.
    pub committed_leader_epoch: i32,
    pub committed_metadata: Option<String>,
}

/// TxnOffsetCommit response: one error code per requested partition, shaped like
/// OffsetCommit's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitResponse {
    pub topics: Vec<OffsetCommitTopicResponse>,
}

impl TxnOffsetCommitResponse {
    /// Every partition of the request with the same error code.
    pub(crate) fn all(request: &TxnOffsetCommitRequest, error_code: ErrorCode) -> Self {
        TxnOffsetCommitResponse {
            topics: request
                .topics
                .iter()
                .map(|topic| OffsetCommitTopicResponse {
                    name: topic.name.clone(),
                    partitions: topic
                        .partitions
                        .iter()
                        .map(|partition| OffsetCommitPartitionResponse {
                            partition_index: partition.partition_index,
                            error_code,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// OffsetFetch (API key 9)

/// OffsetFetch, versions 0-9. For v0-7 the handler passes the single group as a one-element
/// `groups` list and answers from the first group of the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchRequest {
    pub groups: Vec<OffsetFetchGroup>,
    /// v7+: wait for in-flight commits of the group's partition before answering, so the
    /// answer includes every commit acknowledged before it, and answer UNSTABLE_OFFSET_COMMIT
    /// for a partition with transactional offsets pending (KIP-447).
    pub require_stable: bool,
}

/// One group to fetch offsets for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchGroup {
    pub group_id: String,
    /// v9+; only validated for KIP-848 groups, accepted and unused here.
    pub member_id: Option<String>,
    /// v9+; accepted and unused here.
    pub member_epoch: i32,
    /// `None` (v2+) means every partition with a committed offset.
    pub topics: Option<Vec<OffsetFetchTopic>>,
}

/// Partitions of one topic to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchTopic {
    pub name: String,
    pub partition_indexes: Vec<i32>,
}

/// OffsetFetch response, one entry per requested group in request order. For v0-7 the
/// handler puts the first group's `error_code` at the top level (v2+) or into every partition
/// (v0-1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchResponse {
    pub groups: Vec<OffsetFetchGroupResponse>,
}

/// Offsets of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchGroupResponse {
    pub group_id: String,
    pub error_code: ErrorCode,
    pub topics: Vec<OffsetFetchTopicResponse>,
}

/// Offsets of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetFetchPartitionResponse>,
}

/// One committed offset; -1 with epoch -1 and metadata "" when none is committed, or when
/// `error_code` is UNSTABLE_OFFSET_COMMIT (a `require_stable` fetch while a transaction has
/// offsets for the partition pending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchPartitionResponse {
    pub partition_index: i32,
    pub committed_offset: i64,
    pub committed_leader_epoch: i32,
    pub metadata: String,
    pub error_code: ErrorCode,
}

// ---------------------------------------------------------------------------------------------
// ListGroups (API key 16)

/// ListGroups, versions 0-5.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListGroupsRequest {
    /// v4+: state names, case-insensitive ("Stable", "empty", ...); empty means all.
    pub states_filter: Vec<String>,
    /// v5+: group types, case-insensitive; only "classic" groups exist here. Empty means all.
    pub types_filter: Vec<String>,
}

/// ListGroups response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGroupsResponse {
    pub error_code: ErrorCode,
    pub groups: Vec<ListedGroup>,
}

/// One group in ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    /// "" for a group that only stores offsets.
    pub protocol_type: String,
    /// v4+: Kafka's state name ("Empty", "PreparingRebalance", "CompletingRebalance",
    /// "Stable", "Dead").
    pub group_state: String,
    /// v5+: always "classic".
    pub group_type: String,
}

// ---------------------------------------------------------------------------------------------
// DescribeGroups (API key 15)

/// DescribeGroups, versions 0-5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupsRequest {
    pub groups: Vec<String>,
}

/// DescribeGroups response, one entry per requested group in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupsResponse {
    pub groups: Vec<DescribedGroup>,
}

/// One described group. An unknown group is described as state "Dead" with no error, as
/// Kafka does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedGroup {
    pub error_code: ErrorCode,
    pub group_id: String,
    pub group_state: String,
    pub protocol_type: String,
    /// The chosen protocol, only in the Stable state ("" otherwise).
    pub protocol_data: String,
    pub members: Vec<DescribedGroupMember>,
}

/// One member in DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedGroupMember {
    pub member_id: String,
    /// v4+.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The member's metadata for the chosen protocol, only in the Stable state.
    pub member_metadata: Bytes,
    pub member_assignment: Bytes,
}

// ---------------------------------------------------------------------------------------------
// DeleteGroups (API key 42)

/// DeleteGroups, versions 0-2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteGroupsRequest {
    pub groups_names: Vec<String>,
}

/// DeleteGroups response, one result per requested group in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteGroupsResponse {
    pub results: Vec<DeletableGroupResult>,
}

/// The outcome for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletableGroupResult {
    pub group_id: String,
    pub error_code: ErrorCode,
}

// ---------------------------------------------------------------------------------------------
// OffsetDelete (API key 47)

/// OffsetDelete, version 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteRequest {
    pub group_id: String,
    pub topics: Vec<OffsetDeleteTopic>,
}

/// Partitions of one topic whose offsets to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteTopic {
    pub name: String,
    pub partition_indexes: Vec<i32>,
}

/// OffsetDelete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteResponse {
    /// Top-level error; when set, `topics` is empty.
    pub error_code: ErrorCode,
    pub topics: Vec<OffsetDeleteTopicResponse>,
}

/// Per-topic part of the OffsetDelete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetDeletePartitionResponse>,
}

/// Per-partition outcome of an OffsetDelete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeletePartitionResponse {
    pub partition_index: i32,
    pub error_code: ErrorCode,
}

impl OffsetDeleteResponse {
    pub(crate) fn error(error_code: ErrorCode) -> Self {
        OffsetDeleteResponse {
            error_code,
            topics: Vec::new(),
        }
    }
}
