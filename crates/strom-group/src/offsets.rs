//! Committed offsets: what OffsetFetch reads and what the retention sweep expires; and the
//! transactional offsets still waiting for their transaction to end.
//!
//! Only durable offsets live here. A commit whose write is still in flight is held by the
//! pending write (see [`crate::coordinator`]) and moves here when the write completes, so
//! nothing an OffsetFetch returns can be lost by a failed or unfinished write.
//!
//! Each offset remembers the log offset of the record that wrote it. A transaction's offsets
//! become committed when its COMMIT marker arrives, which can be long after they were written;
//! an ordinary commit written in between is newer and must win. Comparing the records' log
//! offsets decides it, as Kafka does, and gives the same answer live and on replay.

use std::collections::BTreeMap;

use crate::record::OffsetCommitValue;

/// One committed offset with what came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    pub committed_offset: i64,
    pub leader_epoch: Option<i32>,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Set by OffsetCommit v2-4 with an explicit retention time: the offset expires then,
    /// whatever state the group is in.
    pub expire_timestamp_ms: Option<i64>,
}

impl OffsetAndMetadata {
    /// The record value Kafka would write for this offset.
    pub fn to_record(&self) -> OffsetCommitValue {
        OffsetCommitValue {
            offset: self.committed_offset,
            leader_epoch: self.leader_epoch.unwrap_or(-1),
            metadata: self.metadata.clone(),
            commit_timestamp: self.commit_timestamp_ms,
            expire_timestamp: self.expire_timestamp_ms.unwrap_or(-1),
        }
    }

    /// The offset a replayed record describes.
    pub fn from_record(value: &OffsetCommitValue) -> Self {
        OffsetAndMetadata {
            committed_offset: value.offset,
            leader_epoch: (value.leader_epoch != -1).then_some(value.leader_epoch),
            metadata: value.metadata.clone(),
            commit_timestamp_ms: value.commit_timestamp,
            expire_timestamp_ms: (value.expire_timestamp != -1).then_some(value.expire_timestamp),
        }
    }
}

/// A topic partition as the offsets store keys it.
pub(crate) type TopicPartitionKey = (String, i32);

/// Durable offsets of the groups of one `__consumer_offsets` partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct OffsetStore {
    by_group: BTreeMap<String, BTreeMap<TopicPartitionKey, OffsetAndMetadata>>,
    /// The log offset of the record each offset in `by_group` comes from.
    record_offsets: BTreeMap<String, BTreeMap<TopicPartitionKey, i64>>,
}

impl OffsetStore {
    pub fn get(&self, group_id: &str, topic: &str, partition: i32) -> Option<&OffsetAndMetadata> {
        self.by_group
            .get(group_id)?
            .get(&(topic.to_owned(), partition))
    }

    pub fn group(&self, group_id: &str) -> Option<&BTreeMap<TopicPartitionKey, OffsetAndMetadata>> {
        self.by_group.get(group_id)
    }

    /// Stores an offset written by the record at `record_offset` of the log.
    pub fn put(
        &mut self,
        group_id: &str,
        topic: &str,
        partition: i32,
        offset: OffsetAndMetadata,
        record_offset: i64,
    ) {
        let key = (topic.to_owned(), partition);
        self.by_group
            .entry(group_id.to_owned())
            .or_default()
            .insert(key.clone(), offset);
        self.record_offsets
            .entry(group_id.to_owned())
            .or_default()
            .insert(key, record_offset);
    }

    /// Stores a committed transaction's offset unless the current one was written after it.
    pub fn put_if_newer(
        &mut self,
        group_id: &str,
        key: &TopicPartitionKey,
        pending: PendingTxnOffset,
    ) {
        let current = self
            .record_offsets
            .get(group_id)
            .and_then(|offsets| offsets.get(key));
        if current.is_none_or(|&current| current < pending.record_offset) {
            self.put(
                group_id,
                &key.0,
                key.1,
                pending.offset,
                pending.record_offset,
            );
        }
    }

    pub fn remove(&mut self, group_id: &str, topic: &str, partition: i32) {
        let key = (topic.to_owned(), partition);
        if let Some(offsets) = self.by_group.get_mut(group_id) {
            offsets.remove(&key);
            if offsets.is_empty() {
                self.by_group.remove(group_id);
            }
        }
        if let Some(offsets) = self.record_offsets.get_mut(group_id) {
            offsets.remove(&key);
            if offsets.is_empty() {
                self.record_offsets.remove(group_id);
            }
        }
    }

    pub fn remove_group(&mut self, group_id: &str) {
        self.by_group.remove(group_id);
        self.record_offsets.remove(group_id);
    }
}

/// An offset written by a transaction that has not ended yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingTxnOffset {
    pub offset: OffsetAndMetadata,
    /// The log offset of its record, compared with the committed offset's when the
    /// transaction commits.
    pub record_offset: i64,
}

/// The offsets of one producer's open transaction, by group.
pub(crate) type TxnOffsetsByGroup = BTreeMap<String, BTreeMap<TopicPartitionKey, PendingTxnOffset>>;

/// Transactional offsets of the groups of one `__consumer_offsets` partition that are in the
/// log but not yet followed by their producer's COMMIT or ABORT marker (Kafka's
/// `pendingTransactionalOffsets`). OffsetFetch does not return them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PendingTxnOffsets {
    by_producer: BTreeMap<i64, TxnOffsetsByGroup>,
}

impl PendingTxnOffsets {
    pub fn put(
        &mut self,
        producer_id: i64,
        group_id: &str,
        key: TopicPartitionKey,
        pending: PendingTxnOffset,
    ) {
        self.by_producer
            .entry(producer_id)
            .or_default()
            .entry(group_id.to_owned())
            .or_default()
            .insert(key, pending);
    }

    /// Removes and returns the producer's offsets: its transaction has ended.
    pub fn take_producer(&mut self, producer_id: i64) -> TxnOffsetsByGroup {
        self.by_producer.remove(&producer_id).unwrap_or_default()
    }

    /// Whether any open transaction has offsets of the group.
    pub fn has_group(&self, group_id: &str) -> bool {
        self.by_producer
            .values()
            .any(|groups| groups.contains_key(group_id))
    }

    /// Whether any open transaction has an offset for this partition of the group.
    pub fn has_partition(&self, group_id: &str, key: &TopicPartitionKey) -> bool {
        self.by_producer.values().any(|groups| {
            groups
                .get(group_id)
                .is_some_and(|offsets| offsets.contains_key(key))
        })
    }

    /// The group's offsets in open transactions, as (producer id, topic, partition, offset).
    pub fn of_group(&self, group_id: &str) -> Vec<(i64, String, i32, OffsetAndMetadata)> {
        self.by_producer
            .iter()
            .filter_map(|(producer_id, groups)| Some((producer_id, groups.get(group_id)?)))
            .flat_map(|(producer_id, offsets)| {
                offsets.iter().map(|((topic, p), pending)| {
                    (*producer_id, topic.clone(), *p, pending.offset.clone())
                })
            })
            .collect()
    }

    /// The partitions of the group with an offset in some open transaction.
    pub fn partitions_of(&self, group_id: &str) -> Vec<TopicPartitionKey> {
        self.by_producer
            .values()
            .filter_map(|groups| groups.get(group_id))
            .flat_map(|offsets| offsets.keys().cloned())
            .collect()
    }

    /// A tombstone for the partition also deletes what open transactions wrote for it, so a
    /// later COMMIT does not bring a deleted offset back.
    pub fn remove_partition(&mut self, group_id: &str, key: &TopicPartitionKey) {
        for groups in self.by_producer.values_mut() {
            if let Some(offsets) = groups.get_mut(group_id) {
                offsets.remove(key);
                if offsets.is_empty() {
                    groups.remove(group_id);
                }
            }
        }
        self.by_producer.retain(|_, groups| !groups.is_empty());
    }
}
