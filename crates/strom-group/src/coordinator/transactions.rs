//! Transactional offset commits (KIP-98's TxnOffsetCommit) and the end of transactions.
//!
//! A TxnOffsetCommit is validated like an OffsetCommit and written as the same OffsetCommit
//! records, but in one transactional batch of the request's producer. Once that batch is
//! durable its offsets are pending for the producer: OffsetFetch does not return them, and a
//! `require_stable` OffsetFetch answers UNSTABLE_OFFSET_COMMIT for their partitions. The
//! producer's COMMIT marker in the partition makes them committed, unless the committed offset
//! was written later in the log; its ABORT marker drops them. The marker is the only record
//! of the outcome, so ending a transaction writes nothing.
//!
//! ```text
//!   txn_offset_commit ──▶ Write { producer: Some(..) } ──write_completed──▶ pending(producer)
//!   complete_transaction(p, producer, commit) / replay_marker ──▶ committed or dropped
//! ```

use std::collections::BTreeMap;

use super::offsets::{CommitRecords, Committer, commit_records, validate_commit};
use super::{
    Coordinator, Ctx, Effect, FailurePatch, Shard, TopicPartitionOffset, group_id_too_long,
    status_error,
};
use crate::api::*;
use crate::codes::{self, ErrorCode};
use crate::group::Group;
use crate::offsets::{OffsetAndMetadata, PendingTxnOffset};

impl Shard {
    /// A transaction's offsets are in the log from `first_record_offset` on: pending until
    /// the producer's marker. Their group exists from now on, as replaying them creates it.
    pub(super) fn add_txn_offsets(
        &mut self,
        group_id: &str,
        producer_id: i64,
        offsets: Vec<TopicPartitionOffset>,
        first_record_offset: i64,
        now_ms: i64,
    ) {
        self.groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::new(group_id.to_owned(), now_ms));
        for (i, (topic, p, offset)) in offsets.into_iter().enumerate() {
            let pending = PendingTxnOffset {
                offset,
                record_offset: first_record_offset + i as i64,
            };
            self.txn_offsets
                .put(producer_id, group_id, (topic, p), pending);
        }
    }

    /// A tombstone for the partition is durable: the committed offset and any open
    /// transaction's offset for it are gone.
    pub(super) fn remove_offset(&mut self, group_id: &str, topic: String, partition: i32) {
        self.offsets.remove(group_id, &topic, partition);
        self.txn_offsets
            .remove_partition(group_id, &(topic, partition));
    }

    /// The producer's marker follows its offsets in the log: commit them (each unless the
    /// committed offset's record is the later one) or drop them.
    pub(super) fn end_transaction(&mut self, producer_id: i64, commit: bool, now_ms: i64) {
        let by_group = self.txn_offsets.take_producer(producer_id);
        if !commit {
            return;
        }
        for (group_id, offsets) in by_group {
            // Deleting a group deletes its pending offsets too, so the group normally exists;
            // should it not, committed offsets still need one to belong to.
            self.groups
                .entry(group_id.clone())
                .or_insert_with(|| Group::new(group_id.clone(), now_ms));
            for (key, pending) in offsets {
                self.offsets.put_if_newer(&group_id, &key, pending);
            }
        }
    }

    /// Whether a write of the producer is in flight; its latest one if so.
    fn last_write_of(&mut self, producer_id: i64) -> Option<&mut super::PendingWrite> {
        self.pending_writes
            .values_mut()
            .rev()
            .find(|write| write.producer_id == Some(producer_id))
    }
}

impl Coordinator {
    /// TxnOffsetCommit; answered when the transactional batch is durable. The offsets stay
    /// pending until [`Coordinator::complete_transaction`] for the producer.
    pub fn txn_offset_commit(
        &mut self,
        now_ms: i64,
        request_id: RequestId,
        request: TxnOffsetCommitRequest,
    ) -> Output {
        let mut ctx = self.ctx(now_ms);
        self.txn_offset_commit_in(&mut ctx, request_id, request);
        self.finish(ctx)
    }

    /// A COMMIT (`commit`) or ABORT marker of `producer_id` has been appended to
    /// `__consumer_offsets` partition `partition`: the producer's pending offsets of the
    /// partition's groups become committed or are dropped. Nothing is written (the marker is
    /// the record), so nothing waits.
    ///
    /// A marker for a partition this coordinator does not own is ignored (its next owner
    /// reads the marker from the log). While the partition loads, the marker is applied after
    /// the replay. While a write of the producer is in flight, it applies once that write is
    /// resolved: the write's records precede the marker in the log.
    pub fn complete_transaction(
        &mut self,
        now_ms: i64,
        partition: i32,
        producer_id: i64,
        commit: bool,
    ) -> Output {
        let Some(shard) = self.shards.get_mut(&partition) else {
            return Output::default();
        };
        if shard.loading {
            shard.markers_after_load.push((producer_id, commit));
        } else if let Some(write) = shard.last_write_of(producer_id) {
            write.markers_after.push(commit);
        } else {
            shard.end_transaction(producer_id, commit, now_ms);
        }
        Output::default()
    }

    /// The transactional offsets of a group whose transactions have not ended, as
    /// (producer id, topic, partition, offset), ordered.
    pub fn pending_transactional_offsets(
        &self,
        group_id: &str,
    ) -> Vec<(i64, String, i32, OffsetAndMetadata)> {
        self.shards
            .get(&self.partition_for(group_id))
            .map(|shard| shard.txn_offsets.of_group(group_id))
            .unwrap_or_default()
    }

    /// Ends a transaction after one of its producer's writes resolved.
    pub(super) fn end_transaction(
        &mut self,
        now_ms: i64,
        partition: i32,
        producer_id: i64,
        commit: bool,
    ) {
        if let Some(shard) = self.shards.get_mut(&partition) {
            shard.end_transaction(producer_id, commit, now_ms);
        }
    }

    fn txn_offset_commit_in(
        &mut self,
        ctx: &mut Ctx,
        request_id: RequestId,
        request: TxnOffsetCommitRequest,
    ) {
        let respond_all = |ctx: &mut Ctx, request: &TxnOffsetCommitRequest, code| {
            ctx.respond(
                request_id,
                Response::TxnOffsetCommit(TxnOffsetCommitResponse::all(request, code)),
            )
        };
        if request.group_id.is_empty() || group_id_too_long(&request.group_id) {
            return respond_all(ctx, &request, codes::INVALID_GROUP_ID);
        }
        let partition = self.partition_for(&request.group_id);
        if let Some(code) = status_error(&self.shards, partition) {
            return respond_all(ctx, &request, code);
        }
        let Some(shard) = self.shards.get(&partition) else {
            return respond_all(ctx, &request, codes::NOT_COORDINATOR);
        };
        if let Err(code) = validate_txn_offset_commit(shard.groups.get(&request.group_id), &request)
        {
            return respond_all(ctx, &request, code);
        }
        let CommitRecords {
            records,
            offsets,
            topics,
        } = self.txn_commit_records(ctx.now_ms, &request);
        let response = Response::TxnOffsetCommit(TxnOffsetCommitResponse { topics });
        if records.is_empty() {
            return ctx.respond(request_id, response);
        }
        let producer = ProducerIdAndEpoch {
            producer_id: request.producer_id,
            producer_epoch: request.producer_epoch,
        };
        let write_id = ctx.append_transactional(
            partition,
            producer,
            records,
            Effect::CommitTxnOffsets {
                group_id: request.group_id,
                producer_id: request.producer_id,
                offsets,
            },
        );
        ctx.respond_after(
            request_id,
            response,
            BTreeMap::from([(write_id, FailurePatch::Whole)]),
        );
    }

    /// The OffsetCommit records of a TxnOffsetCommit. Its offsets never expire by an
    /// explicit retention time, and are timestamped now.
    fn txn_commit_records(&self, now_ms: i64, request: &TxnOffsetCommitRequest) -> CommitRecords {
        let requested = request.topics.iter().map(|topic| {
            let offsets = topic.partitions.iter().map(|p| {
                let offset = OffsetAndMetadata {
                    committed_offset: p.committed_offset,
                    leader_epoch: (p.committed_leader_epoch != -1)
                        .then_some(p.committed_leader_epoch),
                    metadata: p.committed_metadata.clone().unwrap_or_default(),
                    commit_timestamp_ms: now_ms,
                    expire_timestamp_ms: None,
                };
                (p.partition_index, offset)
            });
            (topic.name.as_str(), offsets.collect())
        });
        commit_records(
            &request.group_id,
            requested,
            self.config.offset_metadata_max_bytes,
        )
    }
}

/// Kafka's checks of a TxnOffsetCommit against its group. A group that does not exist is
/// created (Empty, when the write completes) for a producer that names no generation; one
/// that names a generation expected a group that is gone.
fn validate_txn_offset_commit(
    group: Option<&Group>,
    request: &TxnOffsetCommitRequest,
) -> Result<(), ErrorCode> {
    let Some(group) = group else {
        return if request.generation_id < 0 {
            Ok(())
        } else {
            Err(codes::ILLEGAL_GENERATION)
        };
    };
    let committer = Committer {
        generation_id: request.generation_id,
        member_id: &request.member_id,
        group_instance_id: request.group_instance_id.as_deref(),
        transactional: true,
    };
    validate_commit(group, &committer)
}
