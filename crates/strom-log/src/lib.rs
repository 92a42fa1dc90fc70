//! Strom's storage engine: one [`Log`] per partition, a [`LogManager`] per data directory.
//!
//! The on-disk layout and formats are Kafka's, so the bytes of a segment are the bytes of a
//! Fetch response: a partition directory `<topic>-<partition>` holds segments named by their
//! base offset (`00000000000000000000.log` with its `.index` and `.timeindex`), producer-state
//! snapshots (`<offset>.snapshot`) and the `leader-epoch-checkpoint`; the data directory holds
//! the offset checkpoints and the clean-shutdown marker. `docs/storage.md` describes the
//! guarantees; each on-disk format is documented byte by byte on the type that reads it.
//!
//! Data flow: the broker hands a produce request's raw record batches to
//! [`Log::append_as_leader`], which validates them ([`batch`]), checks idempotent-producer
//! sequences ([`producer_state`]), assigns offsets, stamps the leader epoch, and writes them with
//! one positioned write to the active [`segment`], adding sparse [`index`] entries. A follower
//! hands the batches it fetched from its leader to [`Log::append_as_follower`], which stores
//! them unchanged (same offsets, epochs and bytes) through the same write path. A fetch calls
//! [`Log::read`], which finds the starting position through the offset index and returns whole
//! batches, as they are on disk, below an upper bound (the high watermark for consumers). The
//! [`LogManager`] opens logs (running [`recovery`] after an unclean stop), writes the
//! [`checkpoint`] files, and runs the background threads: retention ([`retention`]),
//! compaction ([`cleaner`]) and time-based flushing.
//!
//! Threading: all methods take `&self`, do blocking file IO, and are called from blocking
//! threads (never from an async worker). Appends to one log are serialized; reads snapshot the
//! segment list under a short lock and `pread` without waiting for appends, bounded by a
//! committed position published after each write; deleted segments stay readable by readers
//! that still hold them, because files are kept open through `Arc`.

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
mod cleaner_txn;
pub mod control;
pub mod index;
mod io;
pub mod leader_epoch;
mod log;
mod manager;
pub mod producer_state;
pub mod recovery;
pub mod retention;
pub mod segment;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod txn_index;

pub use crate::log::{Log, READ_BYTES_MAX};
pub use cleaner::CleanerStats;
/// Deterministic IO-fault injection for tests (feature `fault-injection`).
#[cfg(feature = "fault-injection")]
pub use io::faults;
pub use manager::LogManager;

use std::path::PathBuf;

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

/// A position in a partition's log: a record's offset, or a bound such as the high watermark
/// (the offset below which records are committed). A newtype so that an offset is never
/// mixed up with a count, a leader epoch or a byte position where partitions hand offsets
/// across APIs; `.0` is the Kafka wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub i64);

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
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

impl Default for CleanupPolicy {
    /// `delete`, Kafka's default.
    fn default() -> Self {
        CleanupPolicy {
            delete: true,
            compact: false,
        }
    }
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
    /// `preallocate` (false). Accepted for compatibility; segments are not preallocated
    /// (the index files always are, to `segment.index.bytes`).
    pub preallocate: bool,
    /// `producer.id.expiration.ms` (1 day): an idempotent producer with no append for this long
    /// is forgotten, and its next batch is accepted with any sequence.
    pub producer_id_expiration_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        const DAY_MS: i64 = 24 * 60 * 60 * 1000;
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * DAY_MS,
            segment_jitter_ms: 0,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * DAY_MS,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::default(),
            delete_retention_ms: DAY_MS,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
            file_delete_delay_ms: 60_000,
            preallocate: false,
            producer_id_expiration_ms: DAY_MS,
        }
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

impl Default for OpenOptions {
    /// A new log: nothing known, clean (there is nothing to recover), at time 0.
    fn default() -> Self {
        OpenOptions {
            recovery_point: 0,
            log_start_offset: 0,
            high_watermark: 0,
            had_clean_shutdown: true,
            now_ms: 0,
        }
    }
}

/// The outcome of a successful append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record of the first batch (for a follower append, the first batch's
    /// base offset).
    pub first_offset: i64,
    /// Offset of the last record of the last batch. After a follower append, `last_offset + 1`
    /// is the next fetch offset, also when a partial trailing batch was left out or nothing
    /// was appended (then `first_offset` is the log end offset and `last_offset` one less).
    pub last_offset: i64,
    /// The timestamp stamped on the batches when the topic uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    /// The log start offset after the append.
    pub log_start_offset: i64,
    /// Number of records appended (for a follower append, the records the batches hold, which
    /// compaction may have made fewer than their offsets).
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
    InvalidTimestamp {
        timestamp: i64,
        reason: &'static str,
    },
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
    /// A follower append that does not continue the log: its first batch does not start at
    /// the log end offset (`expected`), or a batch leaves a gap after the previous one on a
    /// topic that is not compacted. Appending would leave a gap or overlap, so nothing was
    /// written; the replica fetcher's offset and the log disagree. Kafka's
    /// `UnexpectedAppendOffsetException`; never caused by a producer.
    #[error("follower append at offset {got} does not continue the log at {expected}")]
    OffsetMismatch { expected: i64, got: i64 },
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

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            retention_check_interval_ms: 300_000,
            flush_scheduler_interval_ms: 1_000,
            recovery_point_checkpoint_interval_ms: 60_000,
            log_start_offset_checkpoint_interval_ms: 60_000,
            high_watermark_checkpoint_interval_ms: 5_000,
            cleaner_enable: true,
            cleaner_backoff_ms: 15_000,
            cleaner_dedupe_buffer_size: 134_217_728,
        }
    }
}
