//! Strom's storage engine: one [`Log`] per partition, a [`LogManager`] per data directory.
//!
//! CONTRACT SKELETON (written by the broker author): every public item below is what the broker
//! uses. The implementation fills in the bodies; it may add items, and may change a signature
//! only where the contract is wrong, saying so in `docs/storage.md`.
//!
//! Data flow: the broker hands a produce request's raw record batches to
//! [`Log::append_as_leader`], which validates them, checks idempotent-producer sequences,
//! assigns offsets, stamps the leader epoch, and writes them to the active [`segment`]. A fetch
//! calls [`Log::read`], which returns whole batches, as they are on disk, below an upper bound
//! (the high watermark for consumers). All methods take `&self`, do blocking file IO, and are
//! called from blocking threads (never from an async worker).

pub mod batch;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

/// Errors of the storage engine that are not per-append outcomes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An IO error on a log's files. The log is offline from now on.
    #[error("storage error on {path}: {op}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The log was taken offline by an earlier IO error.
    #[error("log {0} is offline after a storage error")]
    Offline(TopicPartition),
    /// A read below the log start offset or above the log end offset.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// DeleteRecords asked for an offset above the high watermark.
    #[error("offset {offset} is above the high watermark {high_watermark}")]
    OffsetAboveHighWatermark { offset: i64, high_watermark: i64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A topic name and a partition index. Its directory is `<topic>-<partition>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Which timestamp a topic's records carry (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

/// `cleanup.policy`: `delete`, `compact`, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

/// The per-topic log configuration, with Kafka's topic-level names and Kafka 4.x defaults.
/// The broker resolves broker defaults and topic overrides into one of these.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes` (1 GiB).
    pub segment_bytes: u64,
    /// `segment.ms` (7 days).
    pub segment_ms: i64,
    /// `segment.jitter.ms` (0).
    pub segment_jitter_ms: i64,
    /// `segment.index.bytes` (10 MiB): the preallocated size of `.index` and `.timeindex`.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes` (4096).
    pub index_interval_bytes: u64,
    /// `retention.ms` (7 days; -1 = forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1 = unlimited).
    pub retention_bytes: i64,
    /// `cleanup.policy` (delete).
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms` (1 day): how long tombstones survive compaction.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio` (0.5).
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms` (0).
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms` (i64::MAX).
    pub max_compaction_lag_ms: i64,
    /// `flush.messages` (i64::MAX): fsync after this many appended records.
    pub flush_messages: i64,
    /// `flush.ms` (i64::MAX): fsync when the oldest unflushed append is this old.
    pub flush_ms: i64,
    /// `max.message.bytes` (1048588): the largest record batch accepted.
    pub max_message_bytes: i32,
    /// `message.timestamp.type` (CreateTime).
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms` (i64::MAX).
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms` (3600000, Kafka 4.0's default).
    pub message_timestamp_after_max_ms: i64,
    /// `file.delete.delay.ms` (60000).
    pub file_delete_delay_ms: i64,
    /// `preallocate` (false).
    pub preallocate: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        todo!("Kafka 4.x defaults as documented on each field")
    }
}

/// What the log knows at open time from the data directory's checkpoints.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// From `recovery-point-offset-checkpoint`; 0 when unknown.
    pub recovery_point: i64,
    /// From `log-start-offset-checkpoint`; 0 when unknown.
    pub log_start_offset: i64,
    /// From `replication-offset-checkpoint`; 0 when unknown. Clamped into
    /// `[log_start_offset, log_end_offset]` after recovery.
    pub high_watermark: i64,
    /// The clean-shutdown marker was present: skip recovery.
    pub had_clean_shutdown: bool,
    /// Wall-clock now, for segment roll timing and producer-state expiry.
    pub now_ms: i64,
}

/// The outcome of a successful append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record of the first batch.
    pub first_offset: i64,
    /// Offset of the last record of the last batch.
    pub last_offset: i64,
    /// The timestamp stamped on the batches when the topic uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    /// The log start offset after the append.
    pub log_start_offset: i64,
    /// Number of records appended.
    pub record_count: i64,
    /// The batches were an idempotent producer's retry of batches already in the log: nothing
    /// was written, and the offsets are those of the original append.
    pub duplicate: bool,
}

/// Why an append was refused. Each maps to one Kafka error code in the broker.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Bad batch framing, magic, length or CRC32C (CORRUPT_MESSAGE).
    #[error("corrupt record batch: {0}")]
    Corrupt(#[from] batch::BatchError),
    /// A batch larger than `max.message.bytes` (MESSAGE_TOO_LARGE).
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    RecordTooLarge { size: usize, max: i32 },
    /// A record that breaks a topic rule, e.g. a null key on a compacted topic (INVALID_RECORD).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// A CreateTime timestamp outside the allowed window (INVALID_TIMESTAMP).
    #[error("invalid timestamp {timestamp}: {reason}")]
    InvalidTimestamp { timestamp: i64, reason: &'static str },
    /// Idempotent producer sequence gap (OUT_OF_ORDER_SEQUENCE_NUMBER).
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    /// A producer epoch older than the one the log has seen (INVALID_PRODUCER_EPOCH).
    #[error("producer {producer_id} epoch {epoch} is fenced by epoch {current}")]
    ProducerFenced {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    /// Transactional batches are not supported yet (UNSUPPORTED_FOR_MESSAGE_FORMAT is wrong;
    /// the broker answers INVALID_RECORD until transactions exist).
    #[error("transactional batches are not supported")]
    Transactional,
    /// The storage failed; the log is now offline (KAFKA_STORAGE_ERROR).
    #[error(transparent)]
    Storage(#[from] Error),
}

/// Batches read for a fetch.
#[derive(Debug, Clone)]
pub struct ReadInfo {
    /// Whole record batches, byte for byte as stored; empty when nothing is below the bound.
    pub records: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// A record found by timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampAndOffset {
    pub timestamp: i64,
    pub offset: i64,
    /// Leader epoch of the batch holding the record (-1 if unknown).
    pub leader_epoch: i32,
}

/// One partition's log: segments, indexes, producer state, leader-epoch cache, checkpoints.
pub struct Log {
    _private: (),
}

impl Log {
    /// Opens (creating if missing) the log in `dir`, recovering it if the shutdown was unclean.
    pub fn open(
        dir: PathBuf,
        topic_partition: TopicPartition,
        config: LogConfig,
        options: OpenOptions,
    ) -> Result<Log> {
        let _ = (dir, topic_partition, config, options);
        todo!()
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        todo!()
    }
    pub fn dir(&self) -> &Path {
        todo!()
    }
    pub fn config(&self) -> Arc<LogConfig> {
        todo!()
    }
    /// Applies a changed topic config (AlterConfigs) to a live log.
    pub fn update_config(&self, config: LogConfig) {
        let _ = config;
        todo!()
    }

    /// Validates, checks producer sequences, assigns offsets from the log end offset, stamps
    /// `leader_epoch` and (for LogAppendTime topics) `now_ms`, and writes one or more
    /// concatenated record batches. Either every batch is appended or none is.
    pub fn append_as_leader(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let _ = (records, leader_epoch, now_ms);
        todo!()
    }

    /// Reads whole batches starting with the batch that holds `fetch_offset`, stopping before
    /// the first batch whose base offset is at or above `upper_bound` (exclusive, normally the
    /// high watermark) and before `max_bytes` would be exceeded, except that the first batch is
    /// returned whole when `min_one_batch` is set (KIP-74).
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one_batch: bool,
    ) -> Result<ReadInfo> {
        let _ = (fetch_offset, max_bytes, upper_bound, min_one_batch);
        todo!()
    }

    pub fn log_start_offset(&self) -> i64 {
        todo!()
    }
    pub fn log_end_offset(&self) -> i64 {
        todo!()
    }
    pub fn high_watermark(&self) -> i64 {
        todo!()
    }
    /// Sets the high watermark (clamped into `[log_start_offset, log_end_offset]`).
    pub fn update_high_watermark(&self, offset: i64) -> i64 {
        let _ = offset;
        todo!()
    }
    /// The offset below which every record is fsynced (the recovery point).
    pub fn flushed_offset(&self) -> i64 {
        todo!()
    }
    /// Fsyncs everything appended so far; returns the new flushed offset. Safe to call while
    /// appends and reads go on.
    pub fn flush(&self) -> Result<i64> {
        todo!()
    }

    /// ListOffsets by timestamp: the first record whose timestamp is >= `timestamp`.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampAndOffset>> {
        let _ = timestamp;
        todo!()
    }
    /// ListOffsets MAX_TIMESTAMP: the record with the largest timestamp (first one on ties).
    pub fn max_timestamp_and_offset(&self) -> Result<Option<TimestampAndOffset>> {
        todo!()
    }
    /// OffsetForLeaderEpoch: the largest epoch <= `epoch` and the offset where it ends.
    /// `None` when `epoch` is older than every epoch in the cache.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let _ = epoch;
        todo!()
    }
    pub fn latest_epoch(&self) -> Option<i32> {
        todo!()
    }

    /// DeleteRecords: moves the log start offset to `offset` (<= high watermark) and deletes
    /// segments that fall wholly below it. Returns the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64> {
        let _ = offset;
        todo!()
    }

    /// Bytes in all segments.
    pub fn size_bytes(&self) -> u64 {
        todo!()
    }
    pub fn segment_count(&self) -> usize {
        todo!()
    }
    pub fn is_offline(&self) -> bool {
        todo!()
    }
}

/// Broker-level settings of a data directory and its background work.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// `log.retention.check.interval.ms` (300000).
    pub retention_check_interval_ms: i64,
    /// `log.flush.scheduler.interval.ms` (i64::MAX in Kafka; we check every 1000 ms).
    pub flush_scheduler_interval_ms: i64,
    /// `log.flush.offset.checkpoint.interval.ms` (60000).
    pub recovery_point_checkpoint_interval_ms: i64,
    /// `log.flush.start.offset.checkpoint.interval.ms` (60000).
    pub log_start_offset_checkpoint_interval_ms: i64,
    /// `replica.high.watermark.checkpoint.interval.ms` (5000).
    pub high_watermark_checkpoint_interval_ms: i64,
    /// `log.cleaner.enable` (true).
    pub cleaner_enable: bool,
    /// `log.cleaner.backoff.ms` (15000).
    pub cleaner_backoff_ms: i64,
    /// `log.cleaner.dedupe.buffer.size` (134217728).
    pub cleaner_dedupe_buffer_size: u64,
}

/// A data directory: its logs, the checkpoint files, the clean-shutdown marker, and the
/// background threads for retention, compaction, time-based flush and checkpointing.
pub struct LogManager {
    _private: (),
}

impl LogManager {
    /// Opens the data directory. Reads checkpoints and the clean-shutdown marker (and removes
    /// the marker), but opens no log yet: the broker calls [`LogManager::load`] for each
    /// partition its metadata knows.
    pub fn open(data_dir: &Path, config: ManagerConfig) -> Result<LogManager> {
        let _ = (data_dir, config);
        todo!()
    }
    /// Partition directories found on disk (`<topic>-<partition>`), for the broker to load or
    /// delete. Directories that are not partition logs are not listed.
    pub fn partitions_on_disk(&self) -> Vec<TopicPartition> {
        todo!()
    }
    /// Opens (recovering if needed) or creates the log of a partition.
    pub fn load(&self, topic_partition: &TopicPartition, config: LogConfig) -> Result<Arc<Log>> {
        let _ = (topic_partition, config);
        todo!()
    }
    pub fn get(&self, topic_partition: &TopicPartition) -> Option<Arc<Log>> {
        let _ = topic_partition;
        todo!()
    }
    /// Removes a partition's log from the manager and deletes its directory.
    pub fn delete(&self, topic_partition: &TopicPartition) -> Result<()> {
        let _ = topic_partition;
        todo!()
    }
    /// Starts the background threads. They stop on [`LogManager::shutdown`].
    pub fn start_background_work(&self) {
        todo!()
    }
    /// Flushes every log, writes checkpoints and producer snapshots, then the clean-shutdown
    /// marker. After this, the next open skips recovery.
    pub fn shutdown(&self) -> Result<()> {
        todo!()
    }
}
