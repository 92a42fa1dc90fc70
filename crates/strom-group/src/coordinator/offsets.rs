//! Offsets: OffsetCommit, OffsetFetch, OffsetDelete and the retention sweep (KIP-211).
//!
//! A commit is validated against the group (generation, member, state), turned into one
//! OffsetCommit record per partition, and becomes visible to OffsetFetch only when its write
//! completes. Deletions (OffsetDelete, retention, DeleteGroups) write tombstones and remove
//! the offsets when those are durable.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Coordinator, Ctx, Effect, Env, FailurePatch, PendingResponse, RECORD_NAME_MAX_BYTES,
    TopicPartitionOffset, group_id_too_long, group_key, status_error,
};
use crate::api::*;
use crate::codes::{self, ErrorCode};
use crate::group::{Group, GroupState};
use crate::offsets::OffsetAndMetadata;
use crate::record::RecordKey;
use crate::timer::TimerKey;

/// From this OffsetCommit version on, a commit with a generation to an unknown group gets
/// GROUP_ID_NOT_FOUND instead of ILLEGAL_GENERATION.
const OFFSET_COMMIT_GROUP_ID_NOT_FOUND_VERSION: i16 = 9;

/// Who commits: the member fields of an OffsetCommit or TxnOffsetCommit.
pub(super) struct Committer<'a> {
    pub generation_id: i32,
    pub member_id: &'a str,
    pub group_instance_id: Option<&'a str>,
    /// A TxnOffsetCommit: its producer may not pass the consumer's group metadata at all
    /// (before v3, or a producer outside a consumer), and its offsets only count when the
    /// transaction commits, so a rebalance in progress does not refuse it.
    pub transactional: bool,
}

/// Kafka's `ClassicGroup.validateOffsetCommit`.
pub(super) fn validate_commit(group: &Group, committer: &Committer<'_>) -> Result<(), ErrorCode> {
    if group.state == GroupState::Dead {
        return Err(codes::COORDINATOR_NOT_AVAILABLE);
    }
    let generation = committer.generation_id;
    if generation < 0 && group.state == GroupState::Empty {
        // The admin client or a consumer without group management: allowed while the
        // group has no members.
        return Ok(());
    }
    if generation >= 0 || !committer.member_id.is_empty() || committer.group_instance_id.is_some() {
        group.validate_member(committer.member_id, committer.group_instance_id)?;
        if generation != group.generation_id {
            return Err(codes::ILLEGAL_GENERATION);
        }
    } else if !committer.transactional && group.state != GroupState::Empty {
        // No member id and no generation (OffsetCommit v0) while the group has members.
        return Err(codes::UNKNOWN_MEMBER_ID);
    }
    if !committer.transactional && group.state == GroupState::CompletingRebalance {
        // The member knows the new generation from its JoinGroup response but has no
        // assignment yet; it should finish the rebalance first.
        return Err(codes::REBALANCE_IN_PROGRESS);
    }
    Ok(())
}

/// [`validate_commit`] for an OffsetCommit.
fn validate_offset_commit(group: &Group, request: &OffsetCommitRequest) -> Result<(), ErrorCode> {
    let committer = Committer {
        generation_id: request.generation_id_or_member_epoch,
        member_id: &request.member_id,
        group_instance_id: request.group_instance_id.as_deref(),
        transactional: false,
    };
    validate_commit(group, &committer)
}

/// Too long for `offset.metadata.max.bytes` (counted in UTF-16 units, as Java's
/// `String.length()`), or for the record's `int16` string length.
fn metadata_too_large(metadata: &str, max: usize) -> bool {
    metadata.len() > RECORD_NAME_MAX_BYTES || metadata.encode_utf16().count() > max
}

/// The records of a commit and what it answers.
pub(super) struct CommitRecords {
    /// One OffsetCommit record per accepted offset, in request order.
    pub records: Vec<Record>,
    /// The accepted offsets, matching `records` one to one.
    pub offsets: Vec<TopicPartitionOffset>,
    /// Each requested partition with its error code.
    pub topics: Vec<OffsetCommitTopicResponse>,
}

/// Checks each requested (topic, [(partition, offset)]) and encodes the acceptable ones as
/// OffsetCommit records (the same for OffsetCommit and TxnOffsetCommit).
pub(super) fn commit_records<'a>(
    group_id: &str,
    requested: impl Iterator<Item = (&'a str, Vec<(i32, OffsetAndMetadata)>)>,
    metadata_max_bytes: usize,
) -> CommitRecords {
    let mut commit = CommitRecords {
        records: Vec::new(),
        offsets: Vec::new(),
        topics: Vec::new(),
    };
    for (topic, offsets) in requested {
        let partitions = offsets
            .into_iter()
            .map(|(partition_index, offset)| OffsetCommitPartitionResponse {
                partition_index,
                error_code: commit.add(
                    group_id,
                    topic,
                    partition_index,
                    offset,
                    metadata_max_bytes,
                ),
            })
            .collect();
        commit.topics.push(OffsetCommitTopicResponse {
            name: topic.to_owned(),
            partitions,
        });
    }
    commit
}

impl CommitRecords {
    /// Adds one offset's record if it is acceptable; returns the partition's error code.
    fn add(
        &mut self,
        group_id: &str,
        topic: &str,
        partition: i32,
        offset: OffsetAndMetadata,
        metadata_max_bytes: usize,
    ) -> ErrorCode {
        if topic.len() > RECORD_NAME_MAX_BYTES {
            // No topic can have such a name.
            return codes::UNKNOWN_TOPIC_OR_PARTITION;
        }
        if metadata_too_large(&offset.metadata, metadata_max_bytes) {
            return codes::OFFSET_METADATA_TOO_LARGE;
        }
        let key = RecordKey::OffsetCommit {
            group: group_id.to_owned(),
            topic: topic.to_owned(),
            partition,
        }
        .encode();
        match (key, offset.to_record().encode()) {
            (Ok(key), Ok(value)) => {
                self.records.push(Record {
                    key,
                    value: Some(value),
                });
                self.offsets.push((topic.to_owned(), partition, offset));
                codes::NONE
            }
            // The checks above rule this out.
            _ => codes::UNKNOWN_SERVER_ERROR,
        }
    }
}

fn tombstone(group_id: &str, topic: &str, partition: i32) -> Option<Record> {
    RecordKey::OffsetCommit {
        group: group_id.to_owned(),
        topic: topic.to_owned(),
        partition,
    }
    .encode()
    .ok()
    .map(|key| Record { key, value: None })
}

impl Coordinator {
    pub(super) fn offset_commit_in(
        &mut self,
        ctx: &mut Ctx,
        request_id: RequestId,
        request: OffsetCommitRequest,
    ) {
        let respond_all = |ctx: &mut Ctx, request: &OffsetCommitRequest, code| {
            ctx.respond(
                request_id,
                Response::OffsetCommit(OffsetCommitResponse::all(request, code)),
            )
        };
        // An empty group id is allowed here for old clients, as in Kafka.
        if group_id_too_long(&request.group_id) {
            return respond_all(ctx, &request, codes::INVALID_GROUP_ID);
        }
        let partition = self.partition_for(&request.group_id);
        if let Some(code) = status_error(&self.shards, partition) {
            return respond_all(ctx, &request, code);
        }
        let Coordinator {
            config,
            shards,
            timers,
            member_ids,
            ..
        } = self;
        let Some(shard) = shards.get_mut(&partition) else {
            return respond_all(ctx, &request, codes::NOT_COORDINATOR);
        };
        let validation = match shard.groups.get_mut(&request.group_id) {
            None if request.generation_id_or_member_epoch < 0 => Ok(()),
            None if request.api_version >= OFFSET_COMMIT_GROUP_ID_NOT_FOUND_VERSION => {
                Err(codes::GROUP_ID_NOT_FOUND)
            }
            None => Err(codes::ILLEGAL_GENERATION),
            Some(group) => {
                let result = validate_offset_commit(group, &request);
                // In the classic protocol a commit also keeps the member's session alive.
                if result.is_ok()
                    && matches!(
                        group.state,
                        GroupState::Stable | GroupState::PreparingRebalance
                    )
                {
                    let mut env = Env {
                        config,
                        timers,
                        ids: member_ids,
                        ctx,
                        partition,
                    };
                    env.reschedule_heartbeat(group, &request.member_id);
                }
                result
            }
        };
        if let Err(code) = validation {
            return respond_all(ctx, &request, code);
        }

        let now = ctx.now_ms;
        let expire_timestamp_ms = (request.retention_time_ms != -1)
            .then(|| now.saturating_add(request.retention_time_ms));
        let requested = request.topics.iter().map(|topic| {
            let offsets = topic.partitions.iter().map(|p| {
                let offset = OffsetAndMetadata {
                    committed_offset: p.committed_offset,
                    leader_epoch: (p.committed_leader_epoch != -1)
                        .then_some(p.committed_leader_epoch),
                    metadata: p.committed_metadata.clone().unwrap_or_default(),
                    commit_timestamp_ms: if p.commit_timestamp == -1 {
                        now
                    } else {
                        p.commit_timestamp
                    },
                    expire_timestamp_ms,
                };
                (p.partition_index, offset)
            });
            (topic.name.as_str(), offsets.collect())
        });
        let CommitRecords {
            records,
            offsets,
            topics,
        } = commit_records(
            &request.group_id,
            requested,
            config.offset_metadata_max_bytes,
        );
        let response = OffsetCommitResponse { topics };
        let response = Response::OffsetCommit(response);
        if records.is_empty() {
            return ctx.respond(request_id, response);
        }
        let write_id = ctx.append(
            partition,
            records,
            Effect::CommitOffsets {
                group_id: request.group_id,
                offsets,
            },
        );
        ctx.respond_after(
            request_id,
            response,
            BTreeMap::from([(write_id, FailurePatch::Whole)]),
        );
    }

    pub(super) fn offset_fetch_in(
        &mut self,
        ctx: &mut Ctx,
        request_id: RequestId,
        request: OffsetFetchRequest,
    ) {
        let mut waiting = BTreeMap::new();
        if request.require_stable {
            // Wait for every write in flight on the groups' partitions, so the answer
            // includes each commit acknowledged before it (Kafka runs such a fetch as a
            // write operation for the same reason).
            for group in &request.groups {
                let partition = self.partition_for(&group.group_id);
                if let Some(shard) = self.shards.get(&partition)
                    && let Some((&write_id, _)) = shard.pending_writes.last_key_value()
                {
                    waiting.insert(write_id, FailurePatch::Nothing);
                }
            }
        }
        if waiting.is_empty() {
            let response = self.offset_fetch_response(&request);
            ctx.respond(request_id, Response::OffsetFetch(response));
        } else {
            ctx.held.push((
                request_id,
                PendingResponse {
                    response: Response::OffsetFetch(OffsetFetchResponse { groups: Vec::new() }),
                    waiting,
                    refetch: Some(request),
                },
            ));
        }
    }

    /// The OffsetFetch answer from durable offsets.
    pub(super) fn offset_fetch_response(
        &self,
        request: &OffsetFetchRequest,
    ) -> OffsetFetchResponse {
        let groups = request
            .groups
            .iter()
            .map(|fetch| {
                let partition = self.partition_for(&fetch.group_id);
                let error = |error_code| OffsetFetchGroupResponse {
                    group_id: fetch.group_id.clone(),
                    error_code,
                    topics: Vec::new(),
                };
                if let Some(code) = status_error(&self.shards, partition) {
                    return error(code);
                }
                let Some(shard) = self.shards.get(&partition) else {
                    return error(codes::NOT_COORDINATOR);
                };
                // Only durable offsets are read. A group being deleted (Dead until its
                // tombstones are durable) still shows them, as Kafka's reads at the last
                // committed offset do; a missing group has none, and no error either.
                let committed = shard.offsets.group(&fetch.group_id);
                // KIP-447: a consumer that asks for stable offsets retries rather than read an
                // offset a pending transaction is about to replace.
                let unstable = |key: &(String, i32)| {
                    request.require_stable && shard.txn_offsets.has_partition(&fetch.group_id, key)
                };
                let topics = match &fetch.topics {
                    Some(topics) => topics
                        .iter()
                        .map(|topic| OffsetFetchTopicResponse {
                            name: topic.name.clone(),
                            partitions: topic
                                .partition_indexes
                                .iter()
                                .map(|&p| {
                                    let key = (topic.name.clone(), p);
                                    if unstable(&key) {
                                        return unstable_partition(p);
                                    }
                                    fetched_partition(p, committed.and_then(|c| c.get(&key)))
                                })
                                .collect(),
                        })
                        .collect(),
                    None => {
                        let mut by_topic: BTreeMap<&str, Vec<OffsetFetchPartitionResponse>> =
                            BTreeMap::new();
                        for (key, offset) in committed.into_iter().flatten() {
                            let fetched = if unstable(key) {
                                unstable_partition(key.1)
                            } else {
                                fetched_partition(key.1, Some(offset))
                            };
                            by_topic.entry(key.0.as_str()).or_default().push(fetched);
                        }
                        by_topic
                            .into_iter()
                            .map(|(name, partitions)| OffsetFetchTopicResponse {
                                name: name.to_owned(),
                                partitions,
                            })
                            .collect()
                    }
                };
                OffsetFetchGroupResponse {
                    group_id: fetch.group_id.clone(),
                    error_code: codes::NONE,
                    topics,
                }
            })
            .collect();
        OffsetFetchResponse { groups }
    }

    pub(super) fn offset_delete_in(
        &mut self,
        ctx: &mut Ctx,
        request_id: RequestId,
        request: OffsetDeleteRequest,
    ) {
        let respond_error = |ctx: &mut Ctx, code| {
            ctx.respond(
                request_id,
                Response::OffsetDelete(OffsetDeleteResponse::error(code)),
            )
        };
        if request.group_id.is_empty() || group_id_too_long(&request.group_id) {
            return respond_error(ctx, codes::INVALID_GROUP_ID);
        }
        let partition = self.partition_for(&request.group_id);
        if let Some(code) = status_error(&self.shards, partition) {
            return respond_error(ctx, code);
        }
        let Some(shard) = self.shards.get(&partition) else {
            return respond_error(ctx, codes::NOT_COORDINATOR);
        };
        let Some(group) = shard
            .groups
            .get(&request.group_id)
            .filter(|g| g.state != GroupState::Dead)
        else {
            return respond_error(ctx, codes::GROUP_ID_NOT_FOUND);
        };
        let has_members = matches!(
            group.state,
            GroupState::Stable | GroupState::PreparingRebalance | GroupState::CompletingRebalance
        );
        if has_members && !group.uses_consumer_protocol() {
            // Only a consumer group tells which topics it uses; for any other group with
            // members every offset might be in use.
            return respond_error(ctx, codes::NON_EMPTY_GROUP);
        }
        let mut records = Vec::new();
        let mut deleted = Vec::new();
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let subscribed = group.is_subscribed_to_topic(&topic.name);
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&p| {
                    if subscribed {
                        return OffsetDeletePartitionResponse {
                            partition_index: p,
                            error_code: codes::GROUP_SUBSCRIBED_TO_TOPIC,
                        };
                    }
                    if shard.has_offset_or_pending(&request.group_id, &topic.name, p)
                        && let Some(record) = tombstone(&request.group_id, &topic.name, p)
                    {
                        records.push(record);
                        deleted.push((topic.name.clone(), p));
                    }
                    OffsetDeletePartitionResponse {
                        partition_index: p,
                        error_code: codes::NONE,
                    }
                })
                .collect();
            topics.push(OffsetDeleteTopicResponse {
                name: topic.name.clone(),
                partitions,
            });
        }
        let response = Response::OffsetDelete(OffsetDeleteResponse {
            error_code: codes::NONE,
            topics,
        });
        if records.is_empty() {
            return ctx.respond(request_id, response);
        }
        let write_id = ctx.append(
            partition,
            records,
            Effect::DeleteOffsets {
                group_id: request.group_id,
                partitions: deleted,
            },
        );
        ctx.respond_after(
            request_id,
            response,
            BTreeMap::from([(write_id, FailurePatch::Whole)]),
        );
    }

    /// The retention sweep of one partition (Kafka's `cleanupGroupMetadata`): tombstones for
    /// expired offsets, and for Empty groups left without offsets.
    pub(super) fn expire_offsets(&mut self, ctx: &mut Ctx, partition: i32) {
        let Some(shard) = self.shards.get_mut(&partition) else {
            return;
        };
        if shard.loading {
            return;
        }
        let now = ctx.now_ms;
        self.timers.schedule(
            TimerKey::OffsetExpiry { partition },
            now.saturating_add(self.config.offsets_retention_check_interval_ms),
        );
        let retention_ms = self.config.offsets_retention_ms;
        let with_pending_commits: BTreeSet<String> = shard
            .groups
            .keys()
            .filter(|group_id| shard.has_pending_commit(group_id))
            .cloned()
            .collect();
        for (group_id, group) in shard.groups.iter_mut() {
            if group.state == GroupState::Dead || with_pending_commits.contains(group_id) {
                // A commit in flight will add offsets; look again next time.
                continue;
            }
            // Open transactions keep their partitions' offsets, and the group (Kafka counts
            // pending transactional offsets as offsets of the group).
            let mut all_expired = !shard.txn_offsets.has_group(group_id);
            let mut expired = Vec::new();
            if let Some(offsets) = shard.offsets.group(group_id) {
                match group.offset_expiration() {
                    None => all_expired = false,
                    Some(base) => {
                        for (key, offset) in offsets {
                            let (topic, p) = key;
                            if !group.is_subscribed_to_topic(topic)
                                && !shard.txn_offsets.has_partition(group_id, key)
                                && base.is_expired(offset, now, retention_ms)
                            {
                                expired.push((topic.clone(), *p));
                            } else {
                                all_expired = false;
                            }
                        }
                    }
                }
            }
            if !expired.is_empty() {
                let records = expired
                    .iter()
                    .filter_map(|(topic, p)| tombstone(group_id, topic, *p))
                    .collect();
                ctx.append(
                    partition,
                    records,
                    Effect::DeleteOffsets {
                        group_id: group_id.clone(),
                        partitions: expired,
                    },
                );
            }
            // Kafka deletes any Empty group without offsets. A group with KIP-394 pending
            // members is kept: those clients are about to join it.
            if all_expired
                && group.state == GroupState::Empty
                && group.pending_join_members.is_empty()
                && let Some(key) = group_key(group_id)
            {
                group.deleting_from_empty_since = Some(group.state_timestamp_ms);
                group.transition_to(GroupState::Dead, now);
                ctx.append(
                    partition,
                    vec![Record { key, value: None }],
                    Effect::DeleteGroup {
                        group_id: group_id.clone(),
                    },
                );
            }
        }
    }
}

fn unstable_partition(partition_index: i32) -> OffsetFetchPartitionResponse {
    OffsetFetchPartitionResponse {
        error_code: codes::UNSTABLE_OFFSET_COMMIT,
        ..fetched_partition(partition_index, None)
    }
}

fn fetched_partition(
    partition_index: i32,
    offset: Option<&OffsetAndMetadata>,
) -> OffsetFetchPartitionResponse {
    match offset {
        Some(offset) => OffsetFetchPartitionResponse {
            partition_index,
            committed_offset: offset.committed_offset,
            committed_leader_epoch: offset.leader_epoch.unwrap_or(-1),
            metadata: offset.metadata.clone(),
            error_code: codes::NONE,
        },
        None => OffsetFetchPartitionResponse {
            partition_index,
            committed_offset: -1,
            committed_leader_epoch: -1,
            metadata: String::new(),
            error_code: codes::NONE,
        },
    }
}
