//! Committed offsets: what OffsetFetch reads and what the retention sweep expires.
//!
//! Only durable offsets live here. A commit whose write is still in flight is held by the
//! pending write (see [`crate::coordinator`]) and moves here when the write completes, so
//! nothing an OffsetFetch returns can be lost by a failed or unfinished write.

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

    pub fn put(&mut self, group_id: &str, topic: &str, partition: i32, offset: OffsetAndMetadata) {
        self.by_group
            .entry(group_id.to_owned())
            .or_default()
            .insert((topic.to_owned(), partition), offset);
    }

    pub fn remove(&mut self, group_id: &str, topic: &str, partition: i32) {
        if let Some(offsets) = self.by_group.get_mut(group_id) {
            offsets.remove(&(topic.to_owned(), partition));
            if offsets.is_empty() {
                self.by_group.remove(group_id);
            }
        }
    }

    pub fn remove_group(&mut self, group_id: &str) {
        self.by_group.remove(group_id);
    }
}
