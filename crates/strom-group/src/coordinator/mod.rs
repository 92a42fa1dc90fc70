//! The group coordinator: Kafka's classic group protocol and offset storage as a pure state
//! machine. No IO, no clock, no threads: the shell passes the time into every call, performs
//! the [`Write`]s the coordinator asks for, and reports back when they are durable.
//!
//! ```text
//!   shell                                   Coordinator
//!   -----                                   -----------
//!   load_partition(p) ------------------->  partition p: loading
//!   replay(p, offset, key, value)            rebuild groups and offsets, record by record;
//!   replay_transactional(p, offset, pid, ..) records of transactional batches are pending
//!   replay_marker(p, pid, commit)            until their producer's marker
//!   finish_load(now, p) ------------------>  partition p: active, session timers armed
//!
//!   join_group(now, id, req) ------------->  Output { writes, responses }
//!   ... append each Write to __consumer_offsets partition, in order ...
//!   write_completed(now, write_id, offset) >  Output (responses held for that write, ...)
//!   write_failed(now, write_id, error) ---->  Output (error responses, reverted state)
//!   poll(now) when now >= next_deadline() ->  Output (expired sessions, join/sync deadlines,
//!                                                     offsets retention)
//!   unload_partition(now, p) ------------->  Output (NOT_COORDINATOR to everything parked)
//!   complete_transaction(now, p, pid, commit)  a marker was appended: the producer's
//!                                              pending offsets commit or are dropped
//! ```
//!
//! Durability works like Kafka's `CoordinatorResult`: a call returns the records to append
//! and keeps the responses that acknowledge them until [`Coordinator::write_completed`].
//! State that must not be seen before it is durable (committed offsets, deleted offsets,
//! the Stable state after SyncGroup) is applied only when its write completes; state Kafka
//! applies at once and reverts on failure (a static member's new member id, a group being
//! deleted) is applied at once and reverted by [`Coordinator::write_failed`].
//!
//! Submodules: `membership` (JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the rebalance
//! timers), `offsets` (OffsetCommit, OffsetFetch, OffsetDelete, retention), `transactions`
//! (TxnOffsetCommit and transaction markers), `admin` (ListGroups, DescribeGroups,
//! DeleteGroups) and `load` (partition ownership and replay).

mod admin;
mod load;
mod membership;
mod offsets;
mod transactions;

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::api::*;
use crate::codes::{self, ErrorCode};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::group::{Group, GroupState};
use crate::ids::MemberIdGenerator;
use crate::offsets::{OffsetAndMetadata, OffsetStore, PendingTxnOffsets};
use crate::partition::partition_for_group;
use crate::record::RecordKey;
use crate::timer::{TimerKey, Timers};

/// An offset to commit for a topic partition: (topic, partition, offset).
pub(crate) type TopicPartitionOffset = (String, i32, OffsetAndMetadata);

/// The longest name that fits Kafka's `int16`-prefixed strings in a record key.
const RECORD_NAME_MAX_BYTES: usize = i16::MAX as usize;

/// Whether a `__consumer_offsets` partition is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionStatus {
    /// Records are being replayed; requests for its groups get COORDINATOR_LOAD_IN_PROGRESS.
    Loading,
    /// Serving requests.
    Active,
}

/// A read-only view of a group, for admin tools, metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    /// When the group entered its state.
    pub state_timestamp_ms: Option<i64>,
    /// In join order.
    pub members: Vec<MemberSummary>,
    /// KIP-394 member ids handed out but not yet used to join.
    pub pending_members: Vec<String>,
}

/// A read-only view of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSummary {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub assignment: Bytes,
    /// Parked in JoinGroup.
    pub awaiting_join: bool,
    /// Parked in SyncGroup.
    pub awaiting_sync: bool,
}

/// The consumer group coordinator for the `__consumer_offsets` partitions this broker leads.
#[derive(Debug)]
pub struct Coordinator {
    config: Config,
    shards: BTreeMap<i32, Shard>,
    timers: Timers,
    pending_responses: BTreeMap<RequestId, PendingResponse>,
    next_write_id: u64,
    member_ids: MemberIdGenerator,
}

/// The groups and offsets of one owned `__consumer_offsets` partition.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    loading: bool,
    groups: BTreeMap<String, Group>,
    offsets: OffsetStore,
    /// Transactional offsets in the log whose transaction has not ended.
    txn_offsets: PendingTxnOffsets,
    /// Writes issued and not yet resolved, oldest first.
    pending_writes: BTreeMap<WriteId, PendingWrite>,
    /// Markers reported while the partition loads, applied when the replay is over (the log
    /// read may have ended before them).
    markers_after_load: Vec<(i64, bool)>,
}

impl Shard {
    /// The offsets of commits in flight (ordinary and transactional), with their group.
    fn in_flight_commits(&self) -> impl Iterator<Item = (&str, &[TopicPartitionOffset])> {
        self.pending_writes
            .values()
            .flat_map(|write| write.effects.iter())
            .filter_map(|(_, effect)| effect.committed_offsets())
    }

    /// Whether a committed offset exists, or a commit of it is in flight or in an open
    /// transaction.
    fn has_offset_or_pending(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.offsets.get(group_id, topic, partition).is_some()
            || self
                .txn_offsets
                .has_partition(group_id, &(topic.to_owned(), partition))
            || self.in_flight_commits().any(|(g, offsets)| {
                g == group_id
                    && offsets
                        .iter()
                        .any(|(t, p, _)| t == topic && *p == partition)
            })
    }

    /// Whether an offset commit of the group is in flight.
    fn has_pending_commit(&self, group_id: &str) -> bool {
        self.in_flight_commits().any(|(g, _)| g == group_id)
    }

    /// Topic partitions of the group with a committed, in-flight or transactional offset.
    fn offset_keys_with_pending(&self, group_id: &str) -> Vec<(String, i32)> {
        let mut keys: Vec<(String, i32)> = self
            .offsets
            .group(group_id)
            .map(|offsets| offsets.keys().cloned().collect())
            .unwrap_or_default();
        keys.extend(self.txn_offsets.partitions_of(group_id));
        for (g, offsets) in self.in_flight_commits() {
            if g == group_id {
                keys.extend(offsets.iter().map(|(t, p, _)| (t.clone(), *p)));
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }
}

/// What happens to the coordinator's state when a write completes or fails.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Offsets become visible on success; dropped on failure. One record per offset, in
    /// order.
    CommitOffsets {
        group_id: String,
        offsets: Vec<(String, i32, OffsetAndMetadata)>,
    },
    /// A transaction's offsets become pending for its producer on success (visible once the
    /// COMMIT marker follows); dropped on failure. One record per offset, in order.
    CommitTxnOffsets {
        group_id: String,
        producer_id: i64,
        offsets: Vec<(String, i32, OffsetAndMetadata)>,
    },
    /// Offsets disappear on success; kept on failure.
    DeleteOffsets {
        group_id: String,
        partitions: Vec<(String, i32)>,
    },
    /// The leader's assignment: on success every member gets its assignment and the group is
    /// Stable; on failure every parked SyncGroup gets the error and the group rebalances.
    /// Either only if the group is still completing this generation.
    StoreAssignment {
        group_id: String,
        generation_id: i32,
        assignment: BTreeMap<String, Bytes>,
    },
    /// A static member rejoined a Stable group with a new member id (already applied): on
    /// success it gets its JoinGroup response; on failure the old member id is restored.
    ReplaceStaticMember(Box<StaticReplacement>),
    /// A group went Empty at the end of a join phase. Nothing to undo on failure (Kafka only
    /// warns: the previous generation on disk has no live members either).
    EmptyGeneration,
    /// The group (already Dead) is removed on success, and back to Empty on failure.
    DeleteGroup { group_id: String },
}

impl Effect {
    /// The group and offsets a commit writes.
    fn committed_offsets(&self) -> Option<(&str, &[TopicPartitionOffset])> {
        match self {
            Effect::CommitOffsets { group_id, offsets }
            | Effect::CommitTxnOffsets {
                group_id, offsets, ..
            } => Some((group_id, offsets)),
            _ => None,
        }
    }
}

/// The undo information of a static member replacement.
#[derive(Debug)]
pub(crate) struct StaticReplacement {
    group_id: String,
    group_instance_id: String,
    old_member_id: String,
    new_member_id: String,
    old_protocols: Vec<JoinGroupProtocol>,
    old_rebalance_timeout_ms: i32,
    old_session_timeout_ms: i32,
    request_id: RequestId,
    api_version: i16,
    leader_before: Option<String>,
}

/// A write issued and not yet resolved.
#[derive(Debug)]
pub(crate) struct PendingWrite {
    /// Each effect with the index of its first record in the write.
    effects: Vec<(usize, Effect)>,
    /// Responses (in `pending_responses`) waiting for this write.
    gated: Vec<RequestId>,
    /// The transactional producer the write is for.
    producer_id: Option<i64>,
    /// Markers of this write's producer that arrived while it was in flight: its records went
    /// to the log before the marker, so the marker applies to them too, once they are known.
    markers_after: Vec<bool>,
}

/// How a response changes when one of the writes it waits for fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FailurePatch {
    /// The whole response becomes the error (OffsetCommit, LeaveGroup, OffsetDelete).
    Whole,
    /// These groups of a DeleteGroups response get the error.
    Groups(Vec<String>),
    /// Nothing changes (an OffsetFetch that only waited for earlier writes to settle).
    Nothing,
}

/// A response held until writes resolve.
#[derive(Debug)]
pub(crate) struct PendingResponse {
    response: Response,
    waiting: BTreeMap<WriteId, FailurePatch>,
    /// For `require_stable` OffsetFetch: compute the answer when the waiting is over.
    refetch: Option<OffsetFetchRequest>,
}

/// Collects what one call produces; turned into an [`Output`] by [`Coordinator::finish`].
#[derive(Debug)]
pub(crate) struct Ctx {
    now_ms: i64,
    next_write_id: u64,
    out: Output,
    /// Writes being assembled in this call, in issue order: one per partition and producer.
    building: Vec<WriteBuilder>,
    /// Responses to hold until writes resolve.
    held: Vec<(RequestId, PendingResponse)>,
}

#[derive(Debug)]
struct WriteBuilder {
    id: WriteId,
    partition: i32,
    producer: Option<ProducerIdAndEpoch>,
    records: Vec<Record>,
    effects: Vec<(usize, Effect)>,
}

impl Ctx {
    fn new(now_ms: i64, next_write_id: u64) -> Ctx {
        Ctx {
            now_ms,
            next_write_id,
            out: Output::default(),
            building: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Sends a response now.
    pub(crate) fn respond(&mut self, request_id: RequestId, response: Response) {
        self.out.responses.push((request_id, response));
    }

    /// Sends a response once every write in `waiting` has resolved (now, if none).
    pub(crate) fn respond_after(
        &mut self,
        request_id: RequestId,
        response: Response,
        waiting: BTreeMap<WriteId, FailurePatch>,
    ) {
        if waiting.is_empty() {
            self.respond(request_id, response);
        } else {
            self.held.push((
                request_id,
                PendingResponse {
                    response,
                    waiting,
                    refetch: None,
                },
            ));
        }
    }

    /// Adds records and their effect to this call's write for `partition`.
    pub(crate) fn append(
        &mut self,
        partition: i32,
        records: Vec<Record>,
        effect: Effect,
    ) -> WriteId {
        self.append_for(partition, None, records, effect)
    }

    /// Adds records and their effect to this call's transactional write of `producer` for
    /// `partition`: a batch of its own, since a batch has one producer.
    pub(crate) fn append_transactional(
        &mut self,
        partition: i32,
        producer: ProducerIdAndEpoch,
        records: Vec<Record>,
        effect: Effect,
    ) -> WriteId {
        self.append_for(partition, Some(producer), records, effect)
    }

    fn append_for(
        &mut self,
        partition: i32,
        producer: Option<ProducerIdAndEpoch>,
        records: Vec<Record>,
        effect: Effect,
    ) -> WriteId {
        let index = match self
            .building
            .iter()
            .position(|b| b.partition == partition && b.producer == producer)
        {
            Some(index) => index,
            None => {
                let id = WriteId(self.next_write_id);
                self.next_write_id += 1;
                self.building.push(WriteBuilder {
                    id,
                    partition,
                    producer,
                    records: Vec::new(),
                    effects: Vec::new(),
                });
                self.building.len() - 1
            }
        };
        let builder = &mut self.building[index];
        builder.effects.push((builder.records.len(), effect));
        builder.records.extend(records);
        builder.id
    }

    /// The ordinary write this call is building for `partition`, if any.
    pub(crate) fn write_for(&self, partition: i32) -> Option<WriteId> {
        self.building
            .iter()
            .find(|b| b.partition == partition && b.producer.is_none())
            .map(|b| b.id)
    }
}

/// What group logic needs besides the group itself.
pub(crate) struct Env<'a> {
    pub config: &'a Config,
    pub timers: &'a mut Timers,
    pub ids: &'a mut MemberIdGenerator,
    pub ctx: &'a mut Ctx,
    /// The `__consumer_offsets` partition of the group being worked on.
    pub partition: i32,
}

impl Env<'_> {
    pub(crate) fn now(&self) -> i64 {
        self.ctx.now_ms
    }
}

/// Why a group cannot be served here.
fn status_error(shards: &BTreeMap<i32, Shard>, partition: i32) -> Option<ErrorCode> {
    match shards.get(&partition) {
        None => Some(codes::NOT_COORDINATOR),
        Some(shard) if shard.loading => Some(codes::COORDINATOR_LOAD_IN_PROGRESS),
        Some(_) => None,
    }
}

/// A group id no record key could hold cannot name a group.
fn group_id_too_long(group_id: &str) -> bool {
    group_id.len() > RECORD_NAME_MAX_BYTES
}

/// The GroupMetadata key record bytes of a group. The group id was checked at the API entry,
/// so encoding cannot fail; should it anyway, the record is skipped rather than corrupted.
fn group_key(group_id: &str) -> Option<Bytes> {
    RecordKey::GroupMetadata {
        group: group_id.to_owned(),
    }
    .encode()
    .ok()
}

impl Coordinator {
    /// A coordinator that owns no partitions yet.
    pub fn new(config: Config) -> Result<Coordinator> {
        config.validate()?;
        let member_ids = MemberIdGenerator::new(config.member_id_seed);
        Ok(Coordinator {
            config,
            shards: BTreeMap::new(),
            timers: Timers::default(),
            pending_responses: BTreeMap::new(),
            next_write_id: 1,
            member_ids,
        })
    }

    /// The settings it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The `__consumer_offsets` partition that owns `group_id` (what FindCoordinator uses).
    pub fn partition_for(&self, group_id: &str) -> i32 {
        partition_for_group(group_id, self.config.offsets_topic_partitions)
    }

    /// The earliest deadline; the shell calls [`Coordinator::poll`] when it has passed.
    pub fn next_deadline(&self) -> Option<i64> {
        self.timers.next_deadline()
    }

    /// Fires every deadline that has passed at `now_ms`: expired sessions, ends of join
    /// phases, sync deadlines and offsets retention.
    pub fn poll(&mut self, now_ms: i64) -> Output {
        let mut ctx = self.ctx(now_ms);
        for due in self.timers.due(now_ms) {
            if self.timers.take(&due) {
                self.fire(&mut ctx, due.key);
            }
        }
        self.finish(ctx)
    }

    /// The owned partitions and their status.
    pub fn partitions(&self) -> Vec<(i32, PartitionStatus)> {
        self.shards
            .iter()
            .map(|(p, shard)| {
                let status = if shard.loading {
                    PartitionStatus::Loading
                } else {
                    PartitionStatus::Active
                };
                (*p, status)
            })
            .collect()
    }

    /// The ids of every group on owned partitions.
    pub fn group_ids(&self) -> Vec<String> {
        self.shards
            .values()
            .flat_map(|shard| shard.groups.keys().cloned())
            .collect()
    }

    /// A view of one group, if it exists on an owned partition.
    pub fn group_summary(&self, group_id: &str) -> Option<GroupSummary> {
        let group = self
            .shards
            .get(&self.partition_for(group_id))?
            .groups
            .get(group_id)?;
        Some(GroupSummary {
            group_id: group.group_id.clone(),
            state: group.state,
            generation_id: group.generation_id,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            leader_id: group.leader_id.clone(),
            state_timestamp_ms: group.state_timestamp_ms,
            members: group
                .members
                .values()
                .map(|m| MemberSummary {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    assignment: m.assignment.clone(),
                    awaiting_join: m.awaiting_join.is_some(),
                    awaiting_sync: m.awaiting_sync.is_some(),
                })
                .collect(),
            pending_members: group.pending_join_members.iter().cloned().collect(),
        })
    }

    /// The durable committed offsets of a group, ordered by topic and partition.
    pub fn committed_offsets(&self, group_id: &str) -> Vec<(String, i32, OffsetAndMetadata)> {
        self.shards
            .get(&self.partition_for(group_id))
            .and_then(|shard| shard.offsets.group(group_id))
            .map(|offsets| {
                offsets
                    .iter()
                    .map(|((topic, partition), offset)| (topic.clone(), *partition, offset.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many writes are issued and not yet resolved.
    pub fn pending_writes(&self) -> usize {
        self.shards.values().map(|s| s.pending_writes.len()).sum()
    }

    /// How many responses wait for writes.
    pub fn held_responses(&self) -> usize {
        self.pending_responses.len()
    }

    // -----------------------------------------------------------------------------------------
    // Requests

    /// JoinGroup. The response usually comes later: when the join phase completes (another
    /// member's request or a [`Coordinator::poll`]).
    pub fn join_group(
        &mut self,
        now_ms: i64,
        request_id: RequestId,
        request: JoinGroupRequest,
    ) -> Output {
        let mut ctx = self.ctx(now_ms);
        self.join_group_in(&mut ctx, request_id, request);
        self.finish(ctx)
    }

    /// SyncGroup. A follower's response comes when the leader's assignment is durable.
    pub fn sync_group(
        &mut self,
        now_ms: i64,
        request_id: RequestId,
        request: SyncGroupRequest,
    ) -> Output {
        let mut ctx = self.ctx(now_ms);
        self.sync_group_in(&mut ctx, request_id, request);
        self.finish(ctx)
    }

    /// Heartbeat; always answered at once.
    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        request_id: RequestId,
        request: HeartbeatRequest,
    ) -> Output {
        let mut ctx = self.ctx(now_ms);
        self.heartbeat_in(&mut ctx, request_id, request);
        self.finish(ctx)
    }

    /// LeaveGroup; answered when the group's resulting write (if any) is durable.
    pub fn leave_group(
        &mut self,
        now_ms: i64,
        request_id: RequestId,
        request: LeaveGroupRequest,
    ) -> Output {
        let mut ctx = self.ctx(now_ms);
        self.leave_group_in(&mut ctx, request_id, request);
        self.finish(ctx)
    }

    /// OffsetCommit; answered when the offsets are durable.
    pub fn offset_commit(
        &mut self,
        now_ms: i64,
        request_id: RequestId,
        request: OffsetCommitRequest,
    ) -> Output {
        let mut ctx = self.ctx(now_ms);
        self.offset_commit_in(&mut ctx, request_id, request);
        self.finish(ctx)
    }

    /// OffsetFetch for one or many groups; with `require_stable`, answered once the writes
    /// in flight on the groups' partitions have resolved.
    pub fn offset_fetch(
        &mut self,
        now_ms: i64,
        request_id: RequestId,
        request: OffsetFetchRequest,
    ) -> Output {
        let mut ctx = self.ctx(now_ms);
        self.offset_fetch_in(&mut ctx, request_id, request);
        self.finish(ctx)
    }

    /// OffsetDelete; answered when the tombstones are durable.
    pub fn offset_delete(
        &mut self,
        now_ms: i64,
        request_id: RequestId,
        request: OffsetDeleteRequest,
    ) -> Output {
        let mut ctx = self.ctx(now_ms);
        self.offset_delete_in(&mut ctx, request_id, request);
        self.finish(ctx)
    }

    /// ListGroups over every owned partition; answered at once.
    pub fn list_groups(
        &mut self,
        now_ms: i64,
        request_id: RequestId,
        request: ListGroupsRequest,
    ) -> Output {
        let mut ctx = self.ctx(now_ms);
        let response = self.list_groups_response(&request);
        ctx.respond(request_id, Response::ListGroups(response));
        self.finish(ctx)
    }

    /// DescribeGroups; answered at once.
    pub fn describe_groups(
        &mut self,
        now_ms: i64,
        request_id: RequestId,
        request: DescribeGroupsRequest,
    ) -> Output {
        let mut ctx = self.ctx(now_ms);
        let response = self.describe_groups_response(&request);
        ctx.respond(request_id, Response::DescribeGroups(response));
        self.finish(ctx)
    }

    /// DeleteGroups; answered when the tombstones are durable.
    pub fn delete_groups(
        &mut self,
        now_ms: i64,
        request_id: RequestId,
        request: DeleteGroupsRequest,
    ) -> Output {
        let mut ctx = self.ctx(now_ms);
        self.delete_groups_in(&mut ctx, request_id, request);
        self.finish(ctx)
    }

    // -----------------------------------------------------------------------------------------
    // Write resolution

    /// The write is durable, its first record at `log_offset` of the partition's log (the
    /// records follow at consecutive offsets): apply its effects and release the responses
    /// waiting for it. Writes of one partition must be resolved in the order they were
    /// issued. A write of a partition that has been unloaded since is ignored.
    pub fn write_completed(
        &mut self,
        now_ms: i64,
        write_id: WriteId,
        log_offset: i64,
    ) -> Result<Output> {
        self.resolve_write(now_ms, write_id, Ok(log_offset))
    }

    /// The write failed and its records will not be in the log: undo what it would have
    /// made visible and answer the responses waiting for it with the error
    /// [`codes::map_append_error`] makes of `append_error`.
    ///
    /// "Failed" must mean "not appended". If the shell cannot tell (a timeout after the
    /// records may have reached the log), it must unload and reload the partition instead,
    /// so the coordinator rebuilds from what the log really holds.
    pub fn write_failed(
        &mut self,
        now_ms: i64,
        write_id: WriteId,
        append_error: ErrorCode,
    ) -> Result<Output> {
        self.resolve_write(now_ms, write_id, Err(codes::map_append_error(append_error)))
    }

    /// `outcome`: the log offset of the write's first record, or the error for its responses.
    fn resolve_write(
        &mut self,
        now_ms: i64,
        write_id: WriteId,
        outcome: std::result::Result<i64, ErrorCode>,
    ) -> Result<Output> {
        let failure = outcome.err();
        let Some((&partition, shard)) = self
            .shards
            .iter_mut()
            .find(|(_, shard)| shard.pending_writes.contains_key(&write_id))
        else {
            return Ok(Output::default());
        };
        if let Some((&oldest, _)) = shard.pending_writes.first_key_value()
            && oldest != write_id
        {
            return Err(Error::WriteOutOfOrder {
                write: write_id.0,
                oldest: oldest.0,
                partition,
            });
        }
        let Some(write) = shard.pending_writes.remove(&write_id) else {
            return Ok(Output::default());
        };
        let mut ctx = self.ctx(now_ms);
        for (index, effect) in write.effects {
            let outcome = outcome.map(|base| base + index as i64);
            self.apply_effect(&mut ctx, partition, effect, outcome);
        }
        if let Some(producer_id) = write.producer_id {
            for commit in write.markers_after {
                self.end_transaction(now_ms, partition, producer_id, commit);
            }
        }
        for request_id in write.gated {
            self.release_gate(&mut ctx, request_id, write_id, failure);
        }
        Ok(self.finish(ctx))
    }

    /// One write a held response waited for has resolved.
    fn release_gate(
        &mut self,
        ctx: &mut Ctx,
        request_id: RequestId,
        write_id: WriteId,
        failure: Option<ErrorCode>,
    ) {
        let Some(pending) = self.pending_responses.get_mut(&request_id) else {
            return;
        };
        if let Some(patch) = pending.waiting.remove(&write_id)
            && let Some(code) = failure
        {
            apply_failure(&mut pending.response, &patch, code);
        }
        if !pending.waiting.is_empty() {
            return;
        }
        let Some(pending) = self.pending_responses.remove(&request_id) else {
            return;
        };
        let response = match pending.refetch {
            Some(request) => Response::OffsetFetch(self.offset_fetch_response(&request)),
            None => pending.response,
        };
        ctx.respond(request_id, response);
    }

    /// Applies a resolved write's effect. `outcome`: the log offset of the effect's first
    /// record when the write succeeded, the error when it failed.
    fn apply_effect(
        &mut self,
        ctx: &mut Ctx,
        partition: i32,
        effect: Effect,
        outcome: std::result::Result<i64, ErrorCode>,
    ) {
        let (record_offset, failure) = (outcome.ok(), outcome.err());
        let Coordinator {
            config,
            shards,
            timers,
            member_ids,
            ..
        } = self;
        let Some(shard) = shards.get_mut(&partition) else {
            return;
        };
        let mut env = Env {
            config,
            timers,
            ids: member_ids,
            ctx,
            partition,
        };
        match effect {
            Effect::CommitOffsets { group_id, offsets } => {
                if let Some(first) = record_offset {
                    // A commit outside group management creates the group that holds the
                    // offsets, as replaying the record would.
                    let now = env.now();
                    shard
                        .groups
                        .entry(group_id.clone())
                        .or_insert_with(|| Group::new(group_id.clone(), now));
                    for (i, (topic, p, offset)) in offsets.into_iter().enumerate() {
                        shard
                            .offsets
                            .put(&group_id, &topic, p, offset, first + i as i64);
                    }
                }
            }
            Effect::CommitTxnOffsets {
                group_id,
                producer_id,
                offsets,
            } => {
                if let Some(first) = record_offset {
                    let now = env.now();
                    shard.add_txn_offsets(&group_id, producer_id, offsets, first, now);
                }
            }
            Effect::DeleteOffsets {
                group_id,
                partitions,
            } => {
                if failure.is_none() {
                    for (topic, p) in partitions {
                        shard.remove_offset(&group_id, topic, p);
                    }
                }
            }
            Effect::StoreAssignment {
                group_id,
                generation_id,
                assignment,
            } => {
                if let Some(group) = shard.groups.get_mut(&group_id) {
                    env.assignment_write_resolved(group, generation_id, assignment, failure);
                }
            }
            Effect::ReplaceStaticMember(replacement) => {
                if let Some(group) = shard.groups.get_mut(&replacement.group_id) {
                    env.static_replacement_resolved(group, *replacement, failure);
                }
            }
            Effect::EmptyGeneration => {}
            Effect::DeleteGroup { group_id } => match failure {
                None => {
                    if shard
                        .groups
                        .get(&group_id)
                        .is_some_and(|g| g.state == GroupState::Dead)
                    {
                        shard.groups.remove(&group_id);
                        // The same write carried tombstones for every offset of the group.
                        debug_assert!(shard.offsets.group(&group_id).is_none());
                        shard.offsets.remove_group(&group_id);
                        env.timers.cancel_where(|key| match key {
                            TimerKey::Heartbeat { group_id: g, .. }
                            | TimerKey::Join { group_id: g }
                            | TimerKey::Sync { group_id: g } => *g == group_id,
                            TimerKey::OffsetExpiry { .. } => false,
                        });
                    }
                }
                Some(_) => {
                    if let Some(group) = shard.groups.get_mut(&group_id)
                        && group.state == GroupState::Dead
                        && let Some(since) = group.deleting_from_empty_since.take()
                    {
                        group.state = GroupState::Empty;
                        group.previous_state = GroupState::Dead;
                        group.state_timestamp_ms = since;
                    }
                }
            },
        }
    }

    // -----------------------------------------------------------------------------------------
    // Plumbing

    fn ctx(&self, now_ms: i64) -> Ctx {
        Ctx::new(now_ms, self.next_write_id)
    }

    /// Turns a call's [`Ctx`] into its [`Output`]: registers new writes and held responses.
    fn finish(&mut self, mut ctx: Ctx) -> Output {
        self.next_write_id = ctx.next_write_id;
        // Register held responses with the writes they wait for, new or older.
        let mut held_for_new: Vec<(WriteId, RequestId)> = Vec::new();
        for (request_id, pending) in std::mem::take(&mut ctx.held) {
            for write_id in pending.waiting.keys() {
                let registered = self
                    .shards
                    .values_mut()
                    .find_map(|shard| shard.pending_writes.get_mut(write_id))
                    .map(|write| write.gated.push(request_id))
                    .is_some();
                if !registered {
                    // Not an older write, so it is one of this call's.
                    held_for_new.push((*write_id, request_id));
                }
            }
            self.pending_responses.insert(request_id, pending);
        }
        for builder in std::mem::take(&mut ctx.building) {
            let partition = builder.partition;
            let gated: Vec<RequestId> = held_for_new
                .iter()
                .filter(|(write_id, _)| *write_id == builder.id)
                .map(|(_, request_id)| *request_id)
                .collect();
            let Some(shard) = self.shards.get_mut(&partition) else {
                // Writes are only built for owned partitions; should one slip through, the
                // responses waiting for it must not wait forever.
                debug_assert!(false, "write for unowned partition {partition}");
                for request_id in gated {
                    self.release_gate(
                        &mut ctx,
                        request_id,
                        builder.id,
                        Some(codes::NOT_COORDINATOR),
                    );
                }
                continue;
            };
            shard.pending_writes.insert(
                builder.id,
                PendingWrite {
                    effects: builder.effects,
                    gated,
                    producer_id: builder.producer.map(|p| p.producer_id),
                    markers_after: Vec::new(),
                },
            );
            ctx.out.writes.push(Write {
                id: builder.id,
                partition,
                records: builder.records,
                producer: builder.producer,
            });
        }
        ctx.out
    }

    /// Runs one expired timer.
    fn fire(&mut self, ctx: &mut Ctx, key: TimerKey) {
        match key {
            TimerKey::OffsetExpiry { partition } => self.expire_offsets(ctx, partition),
            TimerKey::Heartbeat {
                group_id,
                member_id,
            } => self.with_group(ctx, &group_id, |env, group| {
                env.expire_heartbeat(group, &member_id)
            }),
            TimerKey::Join { group_id } => {
                self.with_group(ctx, &group_id, |env, group| env.join_deadline(group))
            }
            TimerKey::Sync { group_id } => self.with_group(ctx, &group_id, |env, group| {
                let generation = group.sync_timer_generation;
                env.expire_pending_sync(group, generation)
            }),
        }
    }

    /// Runs `f` on a group of an active partition.
    fn with_group(
        &mut self,
        ctx: &mut Ctx,
        group_id: &str,
        f: impl FnOnce(&mut Env<'_>, &mut Group),
    ) {
        let partition = self.partition_for(group_id);
        let Coordinator {
            config,
            shards,
            timers,
            member_ids,
            ..
        } = self;
        let Some(shard) = shards.get_mut(&partition) else {
            return;
        };
        if shard.loading {
            return;
        }
        let Some(group) = shard.groups.get_mut(group_id) else {
            return;
        };
        let mut env = Env {
            config,
            timers,
            ids: member_ids,
            ctx,
            partition,
        };
        f(&mut env, group);
    }
}

/// Turns a held response into its error form for a failed write.
fn apply_failure(response: &mut Response, patch: &FailurePatch, code: ErrorCode) {
    match (response, patch) {
        (_, FailurePatch::Nothing) => {}
        (Response::OffsetCommit(OffsetCommitResponse { topics }), _)
        | (Response::TxnOffsetCommit(TxnOffsetCommitResponse { topics }), _) => {
            for partition in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                partition.error_code = code;
            }
        }
        (Response::LeaveGroup(r), _) => {
            r.error_code = code;
            r.members.clear();
        }
        (Response::OffsetDelete(r), _) => {
            r.error_code = code;
            r.topics.clear();
        }
        (Response::Heartbeat(r), _) => r.error_code = code,
        (Response::DeleteGroups(r), FailurePatch::Groups(groups)) => {
            for result in r.results.iter_mut() {
                if groups.contains(&result.group_id) {
                    result.error_code = code;
                }
            }
        }
        (Response::DeleteGroups(r), FailurePatch::Whole) => {
            for result in r.results.iter_mut() {
                result.error_code = code;
            }
        }
        (Response::JoinGroup(r), _) => r.error_code = code,
        (Response::SyncGroup(r), _) => r.error_code = code,
        (Response::OffsetFetch(r), _) => {
            for group in r.groups.iter_mut() {
                group.error_code = code;
            }
        }
        (Response::ListGroups(r), _) => r.error_code = code,
        (Response::DescribeGroups(r), _) => {
            for group in r.groups.iter_mut() {
                group.error_code = code;
            }
        }
    }
}
