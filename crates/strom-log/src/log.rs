//! [`Log`]: one partition's log. It owns the list of segments (the last one is active), the
//! producer state, the leader-epoch cache and the offsets (log start, high watermark, log end,
//! recovery point), and it is where appends, reads, flushes, retention, compaction swaps and
//! truncation meet. A leader's append ([`Log::append_as_leader`]) and a follower's
//! ([`Log::append_as_follower`], in `log/follower.rs`) share the write path: roll if needed, one
//! positioned write, index entries, producer state, then the log end offset is published.
//!
//! Locks, in the order they are taken:
//! - `maintenance` serializes the structural operations that are not appends (retention,
//!   DeleteRecords, the cleaner, truncation), so they never race each other;
//! - `writer` is the append lock: it serializes appends and rolls and guards the producer
//!   state and the reusable write buffer;
//! - `segments` is held only to clone or replace the `Arc` of the segment list;
//! - `epochs` guards the leader-epoch cache.
//!
//! `flush_lock` serializes fsyncs and is never held with another lock. Readers take no lock
//! but the momentary `segments` one: they load the log end offset, snapshot the list, and read
//! each segment below its committed size, so they never wait for an append's IO.
//!
//! Transactions: the producer state (under `writer`) tracks each producer's open transaction;
//! every change to it refreshes an atomic copy of its first unstable offset, so the last stable
//! offset is read lock-free, and an ABORT marker (leader, follower or replay) adds an entry to
//! its segment's aborted-transaction index before the log end offset passes it. The markers
//! themselves are written in `log/marker.rs`, which also answers `aborted_transactions`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;

use crate::batch::{self, BatchHeader, Validation};
use crate::leader_epoch::{LeaderEpochCache, LeaderEpochFile};
use crate::producer_state::{self, Check, CompletedTxn, ProducerStateManager};
use crate::segment::{self, LogSegment, RollInput, SegmentFile};
use crate::{
    AppendError, AppendInfo, Error, LogConfig, OpenOptions, ReadInfo, Result, TimestampAndOffset,
    TimestampType, TopicPartition,
};

/// The most bytes one read returns (except a single larger first batch with
/// `min_one_batch`): the buffer is allocated up front, so a huge `max_bytes` must not turn
/// into a huge allocation.
pub const READ_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Producer snapshots kept when a segment rolls.
const SNAPSHOTS_KEPT: usize = 3;

/// A write buffer grown beyond this by a large append is released afterwards.
const WRITE_BUFFER_KEEP_BYTES: usize = 8 * 1024 * 1024;

mod follower;
mod marker;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state behind these locks is consistent between statements; a panic on another
    // thread (a bug) must not cascade into every later call.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// State owned by the appender.
pub(crate) struct Writer {
    pub(crate) producers: ProducerStateManager,
    buffer: Vec<u8>,
}

/// One partition's log: segments, indexes, producer state, leader-epoch cache, checkpoints.
pub struct Log {
    dir: PathBuf,
    topic_partition: TopicPartition,
    config: RwLock<Arc<LogConfig>>,
    segments: RwLock<Arc<Vec<Arc<LogSegment>>>>,
    pub(crate) writer: Mutex<Writer>,
    pub(crate) maintenance: Mutex<()>,
    flush_lock: Mutex<()>,
    epochs: Mutex<LeaderEpochFile>,
    log_end_offset: AtomicI64,
    log_start_offset: AtomicI64,
    high_watermark: AtomicI64,
    /// The first offset of the oldest open transaction (`i64::MAX` when none): the producer
    /// state's answer, copied here under the append lock whenever the producer state changes
    /// (appends, markers, truncation, opening), so that the last stable offset is read
    /// without the append lock on every Fetch.
    first_unstable_offset: AtomicI64,
    recovery_point: AtomicI64,
    /// The cleaner's checkpoint: offsets below it have been compacted.
    first_dirty_offset: AtomicI64,
    offline: AtomicBool,
    /// Files were created or renamed since the directory was last fsynced.
    dir_needs_sync: AtomicBool,
    /// A segment was rolled since the last flush (its trimmed indexes need an fsync).
    rolled_since_flush: AtomicBool,
    /// Records appended since the log was opened, and how many of them are flushed.
    appended_records: AtomicI64,
    flushed_records: AtomicI64,
    /// When the oldest unflushed append happened (`i64::MAX` when everything is flushed).
    first_unflushed_append_ms: AtomicI64,
    /// What opening the log had to repair.
    recovery_report: crate::recovery::RecoveryReport,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("topic_partition", &self.topic_partition)
            .field("log_start_offset", &self.log_start_offset())
            .field("log_end_offset", &self.log_end_offset())
            .finish()
    }
}

/// The `segment.jitter.ms` of a segment: deterministic (seeded by partition and base offset),
/// so that tests are reproducible, and different across partitions, which is what jitter is
/// for (spreading rolls of partitions created together).
pub(crate) fn rolling_jitter_ms(
    topic_partition: &TopicPartition,
    base_offset: i64,
    jitter_ms: i64,
) -> i64 {
    if jitter_ms <= 0 {
        return 0;
    }
    // FNV-1a over the partition name and the base offset.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let partition = topic_partition.partition.to_be_bytes();
    let base = base_offset.to_be_bytes();
    for byte in topic_partition.topic.bytes().chain(partition).chain(base) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % jitter_ms as u64) as i64
}

impl Log {
    /// Opens (creating if missing) the log in `dir`, recovering it if the shutdown was unclean.
    pub fn open(
        dir: PathBuf,
        topic_partition: TopicPartition,
        config: LogConfig,
        options: OpenOptions,
    ) -> Result<Log> {
        let io_error = |op, path: &Path, source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(|e| io_error("create directory", &dir, e))?;
        let loaded = crate::recovery::load_segments(&dir, &topic_partition, &config, &options)?;
        let segments = loaded.segments;
        let log_end_offset = loaded.log_end_offset;
        let first_base = segments.first().map_or(0, |s| s.base_offset());
        let log_start_offset = options.log_start_offset.max(first_base).min(log_end_offset);

        // Producer state: the latest readable snapshot at or below the log end, then a replay
        // of the batch headers after it.
        let producers = crate::recovery::load_producer_state(
            &dir,
            &segments,
            log_end_offset,
            options.now_ms,
            config.producer_id_expiration_ms,
        )?;

        // Leader-epoch cache: the checkpoint, or a rebuild from the batches if it is missing
        // or malformed, then trimmed to the offsets the log holds.
        let (mut epochs, found) =
            LeaderEpochFile::load(&dir).map_err(|e| io_error("load leader epochs", &dir, e))?;
        let mut epochs_changed = false;
        if !found && log_end_offset > log_start_offset {
            epochs.cache = crate::recovery::rebuild_epoch_cache(&segments)?;
            epochs_changed = true;
        }
        epochs_changed |= epochs.cache.truncate_from_end(log_end_offset);
        epochs_changed |= epochs.cache.truncate_from_start(log_start_offset);
        if epochs_changed || !found {
            epochs
                .persist()
                .map_err(|e| io_error("write leader epochs", epochs.path(), e))?;
        }

        if let Some(active) = segments.last() {
            active
                .preallocate_indexes()
                .map_err(|e| io_error("preallocate index", &active.path(SegmentFile::Index), e))?;
        }
        crate::io::sync_dir(&dir).map_err(|e| io_error("sync directory", &dir, e))?;

        let high_watermark = options
            .high_watermark
            .clamp(log_start_offset, log_end_offset);
        let log = Log {
            dir,
            topic_partition,
            config: RwLock::new(Arc::new(config)),
            segments: RwLock::new(Arc::new(segments)),
            writer: Mutex::new(Writer {
                producers,
                buffer: Vec::new(),
            }),
            maintenance: Mutex::new(()),
            flush_lock: Mutex::new(()),
            epochs: Mutex::new(epochs),
            log_end_offset: AtomicI64::new(log_end_offset),
            log_start_offset: AtomicI64::new(log_start_offset),
            high_watermark: AtomicI64::new(high_watermark),
            first_unstable_offset: AtomicI64::new(i64::MAX),
            // Everything below the log end was either flushed at a clean shutdown or read back
            // and fsynced by recovery.
            recovery_point: AtomicI64::new(log_end_offset),
            first_dirty_offset: AtomicI64::new(log_start_offset),
            offline: AtomicBool::new(false),
            dir_needs_sync: AtomicBool::new(false),
            rolled_since_flush: AtomicBool::new(false),
            appended_records: AtomicI64::new(0),
            flushed_records: AtomicI64::new(0),
            first_unflushed_append_ms: AtomicI64::new(i64::MAX),
            recovery_report: loaded.report,
        };
        log.cache_first_unstable_offset(&lock(&log.writer).producers);
        tracing::debug!(
            partition = %log.topic_partition,
            log_start_offset,
            log_end_offset,
            segments = log.segment_count(),
            "opened log"
        );
        Ok(log)
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        &self.topic_partition
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> Arc<LogConfig> {
        self.config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
    /// Applies a changed topic config (AlterConfigs) to a live log. Index sizes apply to
    /// segments created from now on.
    pub fn update_config(&self, config: LogConfig) {
        *self
            .config
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(config);
    }

    /// The current segment list (the last one is active).
    pub fn segments(&self) -> Arc<Vec<Arc<LogSegment>>> {
        self.segments
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn replace_segments(&self, segments: Vec<Arc<LogSegment>>) {
        *self
            .segments
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(segments);
    }

    fn active_segment(&self) -> Arc<LogSegment> {
        let segments = self.segments();
        match segments.last() {
            Some(segment) => segment.clone(),
            // The list is never empty: open creates a segment and nothing removes the last.
            None => unreachable!("a log always has an active segment"),
        }
    }

    pub(crate) fn check_online(&self) -> Result<()> {
        if self.offline.load(Ordering::Acquire) {
            return Err(Error::Offline(self.topic_partition.clone()));
        }
        Ok(())
    }

    /// Takes the log offline after an IO error and returns the error to report.
    pub(crate) fn fail(&self, op: &'static str, path: &Path, source: std::io::Error) -> Error {
        if !self.offline.swap(true, Ordering::AcqRel) {
            tracing::error!(
                partition = %self.topic_partition,
                path = %path.display(),
                op,
                error = %source,
                "storage error: the log is offline until the broker restarts"
            );
        }
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
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
        let appended =
            self.append_as_leader_with(records, leader_epoch, now_ms, Origin::Client, false)?;
        // A blocking append always completes.
        appended.ok_or_else(|| AppendError::Storage(Error::Offline(self.topic_partition.clone())))
    }

    /// [`Log::append_as_leader`] for a caller on an async worker thread: appends only if it
    /// can do so without blocking on anything but a write into the page cache, and returns
    /// `Ok(None)` without changing anything when it would have to wait for the append lock,
    /// roll a segment (creating files), persist a new leader epoch, or fsync because
    /// `flush.messages` is due. The caller then appends on the blocking pool.
    pub fn try_append_as_leader_inline(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<Option<AppendInfo>, AppendError> {
        self.append_as_leader_with(records, leader_epoch, now_ms, Origin::Client, true)
    }

    pub(crate) fn append_as_leader_with(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        origin: Origin,
        inline: bool,
    ) -> Result<Option<AppendInfo>, AppendError> {
        self.check_online()?;
        let config = self.config();
        let log_append_time = config.message_timestamp_type == TimestampType::LogAppendTime;

        // Validation is pure CPU over the request's bytes: done before taking the lock.
        let mut headers: Vec<(usize, BatchHeader)> = Vec::new();
        let mut record_count = 0i64;
        for batch in batch::batches(records, Validation::Produce) {
            let batch = batch?;
            let header = batch::validate(batch.bytes, Validation::Produce)?;
            if header.size() > config.max_message_bytes.max(0) as usize {
                return Err(AppendError::RecordTooLarge {
                    size: header.size(),
                    max: config.max_message_bytes,
                });
            }
            check_origin(&header, origin)?;
            if !log_append_time {
                check_timestamps(&header, now_ms, &config)?;
            }
            if config.cleanup_policy.compact {
                check_keys_present(batch.bytes, &header)?;
            }
            record_count += i64::from(header.records_count);
            headers.push((batch.position, header));
        }
        if headers.is_empty() {
            return Err(batch::BatchError::Empty.into());
        }

        let mut writer = if inline {
            match self.writer.try_lock() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
            }
        } else {
            lock(&self.writer)
        };
        self.check_online()?;
        let Writer { producers, buffer } = &mut *writer;
        let check = match origin {
            Origin::Client => producers.check(headers.iter().map(|(_, header)| header))?,
            Origin::Coordinator => {
                producers.check_epochs(headers.iter().map(|(_, header)| header))?
            }
        };
        if let Check::Duplicate { original, .. } = check {
            return Ok(Some(AppendInfo {
                first_offset: original.first_offset,
                last_offset: original.last_offset,
                log_append_time_ms: -1,
                log_start_offset: self.log_start_offset(),
                record_count: original.last_offset - original.first_offset + 1,
                duplicate: true,
            }));
        }

        let first_offset = self.log_end_offset.load(Ordering::Acquire);
        let mut next_offset = first_offset;
        let mut append_max_timestamp = -1;
        for (_, header) in &mut headers {
            header.base_offset = next_offset;
            header.partition_leader_epoch = leader_epoch;
            if log_append_time {
                header.max_timestamp = now_ms;
                header.attributes |= 1 << 3;
            }
            append_max_timestamp = append_max_timestamp.max(header.max_timestamp);
            next_offset = header.next_offset();
        }
        let last_offset = next_offset - 1;

        let append = AppendShape {
            bytes: records.len() as u64,
            max_timestamp: append_max_timestamp,
            last_offset,
        };
        if inline && self.would_block(&config, &append, leader_epoch, record_count, now_ms) {
            return Ok(None);
        }
        let active = self.roll_if_needed(producers, &config, &append, first_offset, now_ms)?;

        // Like Kafka, the epoch cache learns the new epoch before the data is written; a crash
        // in between leaves an entry past the log end, which opening the log trims.
        self.assign_epoch(leader_epoch, first_offset)?;

        let written = if log_append_time {
            // New timestamps change the CRC: patch a copy of the request.
            buffer.clear();
            buffer.extend_from_slice(records);
            for (position, header) in &headers {
                let bytes = &mut buffer[*position..*position + header.size()];
                batch::set_base_offset(bytes, header.base_offset);
                batch::set_partition_leader_epoch(bytes, leader_epoch);
                batch::set_log_append_time(bytes, now_ms);
                debug_assert!(batch::validate(bytes, Validation::Produce).is_ok());
            }
            self.write_batches(
                &active,
                &mut [std::io::IoSlice::new(buffer)],
                &headers,
                &config,
            )
        } else {
            // The base offset and partition leader epoch are outside the CRC: write patched
            // copies of each batch's first bytes and the rest of the request where it is.
            let patched: Vec<[u8; batch::UNCHECKED_PREFIX_BYTES]> = headers
                .iter()
                .map(|(position, header)| {
                    let mut prefix = [0u8; batch::UNCHECKED_PREFIX_BYTES];
                    prefix.copy_from_slice(
                        &records[*position..*position + batch::UNCHECKED_PREFIX_BYTES],
                    );
                    batch::set_base_offset(&mut prefix, header.base_offset);
                    batch::set_partition_leader_epoch(&mut prefix, leader_epoch);
                    prefix
                })
                .collect();
            let mut pieces: Vec<std::io::IoSlice<'_>> = Vec::with_capacity(headers.len() * 2);
            for ((position, header), prefix) in headers.iter().zip(&patched) {
                pieces.push(std::io::IoSlice::new(prefix));
                pieces.push(std::io::IoSlice::new(
                    &records[*position + batch::UNCHECKED_PREFIX_BYTES..*position + header.size()],
                ));
            }
            self.write_batches(&active, &mut pieces, &headers, &config)
        };
        if buffer.capacity() > WRITE_BUFFER_KEEP_BYTES {
            *buffer = Vec::new();
        }
        written?;
        debug_assert!(next_offset > first_offset);
        // No marker comes from Produce or the coordinator: nothing ends a transaction here.
        self.publish_append(
            producers,
            &active,
            records,
            &headers,
            next_offset,
            record_count,
            now_ms,
        )?;
        drop(writer);

        self.flush_if_messages_due(&config)?;
        Ok(Some(AppendInfo {
            first_offset,
            last_offset,
            log_append_time_ms: if log_append_time { now_ms } else { -1 },
            log_start_offset: self.log_start_offset(),
            record_count,
            duplicate: false,
        }))
    }

    /// Whether appending `append` would do more than write into the page cache: roll a
    /// segment, persist a new leader epoch, or fsync for `flush.messages`. Called with the
    /// append lock held.
    fn would_block(
        &self,
        config: &LogConfig,
        append: &AppendShape,
        leader_epoch: i32,
        record_count: i64,
        now_ms: i64,
    ) -> bool {
        let active = self.active_segment();
        if roll_reason(&active, &Planned::of(&active), append, config, now_ms).is_some() {
            return true;
        }
        if lock(&self.epochs).cache.latest_epoch() != Some(leader_epoch) {
            return true;
        }
        let unflushed = self.appended_records.load(Ordering::Acquire)
            - self.flushed_records.load(Ordering::Acquire);
        unflushed + record_count >= config.flush_messages
    }

    /// Rolls the active segment if appending `append` to it would break a roll rule
    /// (`segment.bytes`, `segment.ms`, full indexes, relative-offset overflow); the new
    /// segment starts at `base_offset`, the first offset of the append. Returns the segment to
    /// append to. Called with the append lock held.
    fn roll_if_needed(
        &self,
        producers: &ProducerStateManager,
        config: &LogConfig,
        append: &AppendShape,
        base_offset: i64,
        now_ms: i64,
    ) -> Result<Arc<LogSegment>> {
        let active = self.active_segment();
        match roll_reason(&active, &Planned::of(&active), append, config, now_ms) {
            None => Ok(active),
            Some(reason) => {
                tracing::debug!(partition = %self.topic_partition, ?reason, "rolling segment");
                self.roll(producers, config, now_ms, base_offset)
            }
        }
    }

    /// Writes whole batches at the end of `segment` (one `pwritev`) and adds their index
    /// entries. An IO error takes the log offline: the segment may now hold part of the write
    /// past its committed size, which only recovery may judge.
    fn write_batches(
        &self,
        segment: &LogSegment,
        pieces: &mut [std::io::IoSlice<'_>],
        headers: &[(usize, BatchHeader)],
        config: &LogConfig,
    ) -> Result<(), AppendError> {
        segment
            .append(pieces, headers, config.index_interval_bytes)
            .map_err(|e| {
                self.fail("append", &segment.path(SegmentFile::Log), e)
                    .into()
            })
    }

    /// Makes written batches visible: records them in the producer state and ABORT markers in
    /// `segment`'s aborted-transaction index, refreshes the cached first unstable offset, then
    /// publishes the new log end offset (release store, so a reader that sees it also sees the
    /// bytes, index entries and aborted transactions below it) and counts the records for
    /// `flush.messages` and `flush.ms`. `records` holds the batches at the positions in
    /// `headers`. Called with the append lock held, after [`Log::write_batches`] succeeded.
    /// Returns the transactions the batches' markers ended.
    #[allow(clippy::too_many_arguments)]
    fn publish_append(
        &self,
        producers: &mut ProducerStateManager,
        segment: &LogSegment,
        records: &[u8],
        headers: &[(usize, BatchHeader)],
        next_offset: i64,
        record_count: i64,
        now_ms: i64,
    ) -> Result<Vec<CompletedTxn>, AppendError> {
        let mut ended = Vec::new();
        for (position, header) in headers {
            let bytes = records
                .get(*position..*position + header.size())
                .unwrap_or_default();
            let (completed, aborted) = crate::txn_index::apply_batch(producers, header, bytes);
            if let Some(entry) = aborted {
                segment.append_aborted_txn(entry).map_err(|e| {
                    self.fail(
                        "write transaction index",
                        &segment.path(SegmentFile::TxnIndex),
                        e,
                    )
                })?;
            }
            ended.extend(completed);
        }
        self.cache_first_unstable_offset(producers);
        debug_assert!(next_offset > self.log_end_offset.load(Ordering::Acquire));
        self.log_end_offset.store(next_offset, Ordering::Release);
        self.appended_records
            .fetch_add(record_count, Ordering::AcqRel);
        let _ = self.first_unflushed_append_ms.compare_exchange(
            i64::MAX,
            now_ms,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        Ok(ended)
    }

    /// Copies the producer state's first unstable offset for lock-free readers of the last
    /// stable offset. Called with the append lock held (or before the log is shared).
    fn cache_first_unstable_offset(&self, producers: &ProducerStateManager) {
        let first = producers.first_unstable_offset().unwrap_or(i64::MAX);
        self.first_unstable_offset.store(first, Ordering::Release);
    }

    /// `flush.messages`: fsyncs once that many records are unflushed. Called after the append
    /// lock is released, so that other appends are not held up by the fsync.
    fn flush_if_messages_due(&self, config: &LogConfig) -> Result<()> {
        let unflushed = self.appended_records.load(Ordering::Acquire)
            - self.flushed_records.load(Ordering::Acquire);
        if unflushed >= config.flush_messages {
            self.flush()?;
        }
        Ok(())
    }

    fn assign_epoch(&self, epoch: i32, start_offset: i64) -> Result<()> {
        self.change_epochs(|cache| cache.assign(epoch, start_offset))
    }

    /// Applies `change` to the epoch cache and persists it if it changed anything.
    fn change_epochs(&self, change: impl FnOnce(&mut LeaderEpochCache) -> bool) -> Result<()> {
        let mut epochs = lock(&self.epochs);
        if change(&mut epochs.cache)
            && let Err(error) = epochs.persist()
        {
            let path = epochs.path().to_path_buf();
            return Err(self.fail("write leader epochs", &path, error));
        }
        Ok(())
    }

    /// Makes a new active segment starting at `base_offset`: the log end offset, or for a
    /// follower the first offset of a batch after a gap that the leader's compaction left
    /// (Kafka's `roll(expectedNextOffset)`). Called with the append lock held.
    fn roll(
        &self,
        producers: &ProducerStateManager,
        config: &LogConfig,
        now_ms: i64,
        base_offset: i64,
    ) -> Result<Arc<LogSegment>> {
        debug_assert!(base_offset >= self.log_end_offset.load(Ordering::Acquire));
        let old = self.active_segment();
        if old.size() == 0 && old.base_offset() == base_offset {
            return Ok(old);
        }
        old.on_become_inactive()
            .map_err(|e| self.fail("roll", &old.path(SegmentFile::Index), e))?;
        let new = LogSegment::create(
            &self.dir,
            base_offset,
            config.segment_index_bytes,
            now_ms,
            rolling_jitter_ms(&self.topic_partition, base_offset, config.segment_jitter_ms),
            "",
        )
        .map(Arc::new)
        .map_err(|e| {
            let path = segment::segment_path(&self.dir, base_offset, SegmentFile::Log, "");
            self.fail("roll", &path, e)
        })?;
        producer_state::write_snapshot(&self.dir, base_offset, producers).map_err(|e| {
            self.fail(
                "write producer snapshot",
                &producer_state::snapshot_path(&self.dir, base_offset),
                e,
            )
        })?;
        self.prune_snapshots(base_offset)?;
        let mut segments = self.segments().as_ref().clone();
        segments.push(new.clone());
        self.replace_segments(segments);
        self.dir_needs_sync.store(true, Ordering::Release);
        self.rolled_since_flush.store(true, Ordering::Release);
        Ok(new)
    }

    /// Rolls the active segment if the log end offset is still `expected_log_end_offset`
    /// (retention decided to delete the active segment as it was; an append since then
    /// changes that). Returns whether it rolled.
    pub(crate) fn roll_if_unchanged(
        &self,
        expected_log_end_offset: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let writer = lock(&self.writer);
        self.check_online()?;
        if self.log_end_offset() != expected_log_end_offset {
            return Ok(false);
        }
        let config = self.config();
        self.roll(&writer.producers, &config, now_ms, expected_log_end_offset)?;
        Ok(true)
    }

    /// Reads whole batches starting with the batch that holds `fetch_offset`, stopping before
    /// the first batch whose base offset is at or above `upper_bound` (exclusive, normally the
    /// high watermark) and before `max_bytes` would be exceeded, except that the first batch is
    /// returned whole when `min_one_batch` is set (KIP-74).
    ///
    /// One `pread` per segment touched (two when a first batch larger than `max_bytes` must be
    /// returned whole); the bytes land in one buffer that the returned `Bytes` slices.
    /// `max_bytes` is capped at [`READ_BYTES_MAX`].
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one_batch: bool,
    ) -> Result<ReadInfo> {
        self.check_online()?;
        // Order matters: the log end offset first, then the segments. Everything below the log
        // end offset loaded here is committed in the segments loaded after it.
        let log_end_offset = self.log_end_offset.load(Ordering::Acquire);
        let segments = self.segments();
        let log_start_offset = self.log_start_offset();
        if fetch_offset < log_start_offset || fetch_offset > log_end_offset {
            return Err(Error::OffsetOutOfRange {
                offset: fetch_offset,
                log_start_offset,
                log_end_offset,
            });
        }
        let empty = ReadInfo {
            records: Bytes::new(),
            log_start_offset,
            log_end_offset,
        };
        let bound = upper_bound.min(log_end_offset);
        let max_bytes = max_bytes.min(READ_BYTES_MAX);
        if fetch_offset >= bound || (max_bytes == 0 && !min_one_batch) {
            return Ok(empty);
        }
        let first = segments
            .partition_point(|segment| segment.base_offset() <= fetch_offset)
            .saturating_sub(1);
        if segments[first].base_offset() > fetch_offset {
            // Only possible while retention races this read: the offset is being deleted.
            return Err(Error::OffsetOutOfRange {
                offset: fetch_offset,
                log_start_offset: self.log_start_offset(),
                log_end_offset,
            });
        }

        // Plan the buffer: the first segment's window covers the scan from the index floor to
        // the batch holding `fetch_offset` plus `max_bytes`; later segments, read only when
        // that window reaches the first segment's end, add at most `max_bytes` in total.
        // Reserving it up front means the reads never reallocate, and reserving no more than
        // that keeps `read_append_at` (which fills the spare capacity) from reading past the
        // window.
        // Until the first batch is found, windows hold at least a batch header, so that a
        // first batch larger than `max_bytes` is seen and can be returned whole.
        let first_batch_bytes = max_bytes.max(batch::RECORD_BATCH_OVERHEAD);
        let (floor_position, next_entry) = self.start_position(&segments[first], fetch_offset)?;
        let first_size = segments[first].size();
        let first_window = first_size.saturating_sub(floor_position).min(
            next_entry
                .unwrap_or(first_size)
                .saturating_sub(floor_position)
                .saturating_add(first_batch_bytes as u64),
        );
        let later_total: u64 = if floor_position + first_window >= first_size {
            segments[first + 1..].iter().map(|s| s.size()).sum()
        } else {
            0
        };
        let capacity = first_window
            .saturating_add(later_total.min(first_batch_bytes as u64))
            .min(isize::MAX as u64 / 2) as usize;
        let mut buf: Vec<u8> = Vec::with_capacity(capacity);

        let mut start: Option<usize> = None;
        let mut end = 0usize;
        // A first batch that did not fit `max_bytes`: (segment, position, size).
        let mut oversized: Option<(usize, u64, usize)> = None;
        'segments: for (index, segment) in segments.iter().enumerate().skip(first) {
            let committed = segment.size();
            let (position, window) = if index == first {
                (floor_position, first_window)
            } else {
                let remaining = match start {
                    Some(begin) => max_bytes.saturating_sub(end - begin),
                    None => first_batch_bytes,
                };
                if remaining == 0 {
                    break;
                }
                (0, committed.min(remaining as u64))
            };
            if window == 0 {
                continue;
            }
            let chunk_start = buf.len();
            let n = segment
                .read_append_at(&mut buf, window as usize, position)
                .map_err(|e| self.fail("read", &segment.path(SegmentFile::Log), e))?;
            let mut walker = batch::batch_headers(&buf[chunk_start..]);
            for (relative, header) in walker.by_ref() {
                if header.base_offset >= bound {
                    break 'segments;
                }
                let at = chunk_start + relative;
                let begin = match start {
                    Some(begin) => begin,
                    None if header.last_offset() < fetch_offset => continue,
                    None => {
                        start = Some(at);
                        end = at;
                        at
                    }
                };
                if at + header.size() - begin > max_bytes {
                    if end == begin {
                        oversized = Some((index, position + relative as u64, header.size()));
                    }
                    break 'segments;
                }
                end = at + header.size();
            }
            let walked = walker.position();
            if walked < n {
                // The window cut a batch: max_bytes was reached, or the first batch is larger
                // than max_bytes.
                if let Some(cut) = walker.peek_cut()
                    && cut.base_offset < bound
                    && cut.last_offset() >= fetch_offset
                    && start.is_none_or(|begin| end == begin)
                {
                    oversized = Some((index, position + walked as u64, cut.size()));
                }
                break;
            }
            if position + (n as u64) < committed {
                // The window ended on a batch boundary inside the segment: max_bytes reached.
                break;
            }
            // The whole segment was read: go on in the next one, contiguously in `buf`.
            if start.is_none() {
                buf.truncate(chunk_start);
            }
        }

        let records = match (start, oversized) {
            (Some(begin), _) if end > begin => Bytes::from(buf).slice(begin..end),
            (_, Some((index, position, size))) if min_one_batch => {
                let segment = &segments[index];
                let mut whole = vec![0u8; size];
                let n = segment
                    .read_at(&mut whole, position)
                    .map_err(|e| self.fail("read", &segment.path(SegmentFile::Log), e))?;
                if n < size {
                    return Ok(empty);
                }
                Bytes::from(whole)
            }
            _ => Bytes::new(),
        };
        Ok(ReadInfo {
            records,
            log_start_offset,
            log_end_offset,
        })
    }

    /// Where a read of `fetch_offset` in `segment` starts, and the position at or before which
    /// the batch holding it starts (see [`LogSegment::lookup`]). When the index brackets a long
    /// stretch (large batches are indexed one by one), the batch at the upper position is
    /// probed: if it holds `fetch_offset` the read starts there, instead of reading the whole
    /// preceding batch only to skip it, which doubled the bytes read per fetch of large
    /// batches.
    fn start_position(
        &self,
        segment: &LogSegment,
        fetch_offset: i64,
    ) -> Result<(u64, Option<u64>)> {
        const PROBE_ABOVE_BYTES: u64 = 64 * 1024;
        let (floor, next) = segment
            .lookup(fetch_offset)
            .map_err(|e| self.fail("read index", &segment.path(SegmentFile::Index), e))?;
        let Some(next_position) = next.filter(|&n| n.saturating_sub(floor) > PROBE_ABOVE_BYTES)
        else {
            return Ok((floor, next));
        };
        let mut header = [0u8; batch::RECORD_BATCH_OVERHEAD];
        let n = segment
            .read_at(&mut header, next_position)
            .map_err(|e| self.fail("read", &segment.path(SegmentFile::Log), e))?;
        match batch::BatchHeader::parse(&header[..n]) {
            Ok(probed) if probed.base_offset <= fetch_offset => {
                Ok((next_position, Some(next_position)))
            }
            _ => Ok((floor, next)),
        }
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }
    /// The last stable offset (LSO): the high watermark, or the first offset of the oldest
    /// open transaction when that is lower; a `read_committed` consumer reads no further. Never
    /// below the log start offset (DeleteRecords may remove the start of an open transaction,
    /// as in Kafka). Lock-free: two atomic loads and the cached first unstable offset.
    pub fn last_stable_offset(&self) -> i64 {
        let high_watermark = self.high_watermark();
        let first_unstable = self
            .first_unstable_offset
            .load(Ordering::Acquire)
            .max(self.log_start_offset());
        first_unstable.min(high_watermark)
    }
    /// Sets the high watermark (clamped into `[log_start_offset, log_end_offset]`).
    pub fn update_high_watermark(&self, offset: i64) -> i64 {
        let clamped = offset.clamp(self.log_start_offset(), self.log_end_offset());
        self.high_watermark.store(clamped, Ordering::Release);
        debug_assert!(self.log_start_offset() <= clamped);
        clamped
    }
    /// The offset below which every record is fsynced (the recovery point).
    pub fn flushed_offset(&self) -> i64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    /// Fsyncs everything appended before the call; returns the new flushed offset. Appends
    /// and reads go on meanwhile; concurrent callers share one fsync (group commit): a caller
    /// that finds its data already flushed by another returns at once.
    pub fn flush(&self) -> Result<i64> {
        self.check_online()?;
        let target = self.log_end_offset.load(Ordering::Acquire);
        let appended = self.appended_records.load(Ordering::Acquire);
        let _flushing = lock(&self.flush_lock);
        let flushed = self.recovery_point.load(Ordering::Acquire);
        if flushed >= target {
            return Ok(flushed);
        }
        self.check_online()?;
        let segments = self.segments();
        let rolled = self.rolled_since_flush.swap(false, Ordering::AcqRel);
        for (i, segment) in segments.iter().enumerate() {
            let segment_end = segments
                .get(i + 1)
                .map_or(i64::MAX, |next| next.base_offset());
            if segment_end <= flushed {
                continue;
            }
            let is_active = i + 1 == segments.len();
            let result = if rolled && !is_active {
                segment.sync_all()
            } else {
                segment.flush()
            };
            result.map_err(|e| self.fail("flush", &segment.path(SegmentFile::Log), e))?;
        }
        if self.dir_needs_sync.swap(false, Ordering::AcqRel) {
            crate::io::sync_dir(&self.dir)
                .map_err(|e| self.fail("sync directory", &self.dir, e))?;
        }
        self.recovery_point.fetch_max(target, Ordering::AcqRel);
        self.flushed_records.fetch_max(appended, Ordering::AcqRel);
        if self.log_end_offset.load(Ordering::Acquire) == target {
            self.first_unflushed_append_ms
                .store(i64::MAX, Ordering::Release);
        }
        Ok(target)
    }

    /// Flushes when the oldest unflushed append is older than `flush.ms`, or a segment was
    /// rolled (like Kafka's flush of a rolled segment, which bounds recovery to the active
    /// segment). Called by the manager's scheduler.
    pub fn flush_if_due(&self, now_ms: i64) -> Result<bool> {
        let config = self.config();
        let oldest = self.first_unflushed_append_ms.load(Ordering::Acquire);
        let due = (oldest != i64::MAX && now_ms.saturating_sub(oldest) >= config.flush_ms)
            || self.rolled_since_flush.load(Ordering::Acquire);
        if due && self.flushed_offset() < self.log_end_offset() {
            self.flush()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// ListOffsets by timestamp: the first record whose timestamp is >= `timestamp`.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampAndOffset>> {
        self.check_online()?;
        let log_end_offset = self.log_end_offset();
        let segments = self.segments();
        let log_start_offset = self.log_start_offset();
        for segment in segments.iter() {
            if segment.stats().max_timestamp < timestamp {
                continue;
            }
            let index_error = |e| self.fail("read index", &segment.path(SegmentFile::TimeIndex), e);
            let start = match segment.time_lookup_below(timestamp).map_err(index_error)? {
                Some(entry) => {
                    let index_error =
                        |e| self.fail("read index", &segment.path(SegmentFile::Index), e);
                    segment.lookup(entry.offset).map_err(index_error)?.0
                }
                None => 0,
            };
            let mut found = None;
            let mut failure = None;
            let end = segment.size();
            let scanned = segment::scan(
                segment.log_file(),
                &segment.path(SegmentFile::Log),
                start,
                end,
                false,
                |_, header, bytes| {
                    if header.base_offset >= log_end_offset {
                        return false;
                    }
                    if header.max_timestamp < timestamp || header.last_offset() < log_start_offset {
                        return true;
                    }
                    match first_record_at_or_after(header, bytes, timestamp, log_start_offset) {
                        Ok(Some(hit)) => {
                            found = Some(hit);
                            false
                        }
                        Ok(None) => true,
                        Err(error) => {
                            failure = Some(error);
                            false
                        }
                    }
                },
            );
            scanned.map_err(|e| self.fail("read", &segment.path(SegmentFile::Log), e))?;
            if let Some(error) = failure {
                tracing::warn!(partition = %self.topic_partition, %error, "undecodable batch skipped in a timestamp lookup");
            }
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP: the record with the largest timestamp (first one on ties).
    pub fn max_timestamp_and_offset(&self) -> Result<Option<TimestampAndOffset>> {
        self.check_online()?;
        let segments = self.segments();
        let mut best: Option<(Arc<LogSegment>, i64, i64)> = None;
        for segment in segments.iter() {
            let stats = segment.stats();
            if stats.max_timestamp >= 0
                && best
                    .as_ref()
                    .is_none_or(|(_, t, _)| stats.max_timestamp > *t)
            {
                best = Some((
                    segment.clone(),
                    stats.max_timestamp,
                    stats.offset_of_max_timestamp,
                ));
            }
        }
        let Some((segment, max_timestamp, batch_last_offset)) = best else {
            return Ok(None);
        };
        let (start, _) = segment
            .lookup(batch_last_offset)
            .map_err(|e| self.fail("read index", &segment.path(SegmentFile::Index), e))?;
        let mut found = None;
        segment::scan(
            segment.log_file(),
            &segment.path(SegmentFile::Log),
            start,
            segment.size(),
            false,
            |_, header, bytes| {
                if header.last_offset() < batch_last_offset {
                    return true;
                }
                found = first_record_at_or_after(header, bytes, max_timestamp, i64::MIN)
                    .ok()
                    .flatten()
                    .or(Some(TimestampAndOffset {
                        timestamp: max_timestamp,
                        offset: header.last_offset(),
                        leader_epoch: header.partition_leader_epoch,
                    }));
                false
            },
        )
        .map_err(|e| self.fail("read", &segment.path(SegmentFile::Log), e))?;
        Ok(found)
    }

    /// OffsetForLeaderEpoch: the largest epoch <= `epoch` and the offset where it ends, as
    /// Kafka's `LeaderEpochFileCache.endOffsetFor` defines it: when `epoch` is older than every
    /// cached epoch, `(epoch, start offset of the first cached epoch)`; `None` when the cache is
    /// empty or `epoch` is newer than the latest epoch.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let epochs = lock(&self.epochs);
        epochs.cache.end_offset_for(epoch, self.log_end_offset())
    }
    pub fn latest_epoch(&self) -> Option<i32> {
        lock(&self.epochs).cache.latest_epoch()
    }

    /// DeleteRecords: moves the log start offset to `offset` (<= high watermark; -1 means the
    /// high watermark) and deletes segments that fall wholly below it. Returns the new log
    /// start offset.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64> {
        self.check_online()?;
        let _maintenance = lock(&self.maintenance);
        let high_watermark = self.high_watermark();
        let offset = if offset == -1 { high_watermark } else { offset };
        if offset > high_watermark {
            return Err(Error::OffsetAboveHighWatermark {
                offset,
                high_watermark,
            });
        }
        if offset < 0 {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset(),
                log_end_offset: self.log_end_offset(),
            });
        }
        self.advance_log_start_offset(offset)?;
        self.delete_segments_below_log_start()?;
        Ok(self.log_start_offset())
    }

    /// Moves the log start offset up (never down) and trims the epoch cache.
    pub(crate) fn advance_log_start_offset(&self, offset: i64) -> Result<()> {
        let previous = self.log_start_offset.fetch_max(offset, Ordering::AcqRel);
        if offset <= previous {
            return Ok(());
        }
        self.first_dirty_offset.fetch_max(offset, Ordering::AcqRel);
        if self.high_watermark() < offset {
            self.high_watermark.fetch_max(offset, Ordering::AcqRel);
        }
        self.change_epochs(|cache| cache.truncate_from_start(offset))
    }

    /// Deletes the segments that lie wholly below the log start offset (never the active one).
    pub(crate) fn delete_segments_below_log_start(&self) -> Result<usize> {
        let log_start_offset = self.log_start_offset();
        let segments = self.segments();
        let count = segments
            .windows(2)
            .take_while(|pair| pair[1].base_offset() <= log_start_offset)
            .count();
        self.delete_oldest_segments(count)
    }

    /// Removes the `count` oldest segments from the list, deletes their files, and moves the
    /// log start offset to the first remaining segment if it was below. Called with the
    /// maintenance lock held; never removes the active segment.
    pub(crate) fn delete_oldest_segments(&self, count: usize) -> Result<usize> {
        if count == 0 {
            return Ok(0);
        }
        let (removed, new_start) = {
            let _writer = lock(&self.writer);
            let segments = self.segments();
            let count = count.min(segments.len().saturating_sub(1));
            if count == 0 {
                return Ok(0);
            }
            let removed = segments[..count].to_vec();
            let new_start = segments[count].base_offset();
            // The start moves before the segments go: a reader that sees the shorter list
            // also sees the new start, and answers OffsetOutOfRange below it.
            self.advance_log_start_offset(new_start)?;
            self.replace_segments(segments[count..].to_vec());
            (removed, new_start)
        };
        for segment in &removed {
            segment
                .delete_files()
                .map_err(|e| self.fail("delete segment", &segment.path(SegmentFile::Log), e))?;
        }
        self.delete_snapshots_below(new_start)?;
        crate::io::sync_dir(&self.dir).map_err(|e| self.fail("sync directory", &self.dir, e))?;
        Ok(removed.len())
    }

    /// Keeps the newest [`SNAPSHOTS_KEPT`] producer snapshots at or below `offset` (the one
    /// just written among them) and deletes older ones: replays after a crash start from the
    /// newest, deeper truncations from an older one, and nothing needs more.
    fn prune_snapshots(&self, offset: i64) -> Result<()> {
        let snapshots = producer_state::list_snapshots(&self.dir)
            .map_err(|e| self.fail("list producer snapshots", &self.dir, e))?;
        let below: Vec<i64> = snapshots.into_iter().filter(|&s| s <= offset).collect();
        for &snapshot in below.iter().rev().skip(SNAPSHOTS_KEPT) {
            let path = producer_state::snapshot_path(&self.dir, snapshot);
            crate::io::remove_file(&path)
                .map_err(|e| self.fail("delete producer snapshot", &path, e))?;
        }
        Ok(())
    }

    /// Deletes producer snapshots below `offset`, keeping the newest one below it (it is the
    /// starting point of a replay after an unclean stop).
    fn delete_snapshots_below(&self, offset: i64) -> Result<()> {
        let snapshots = producer_state::list_snapshots(&self.dir)
            .map_err(|e| self.fail("list producer snapshots", &self.dir, e))?;
        let below: Vec<i64> = snapshots.into_iter().filter(|&s| s < offset).collect();
        for &snapshot in below.iter().rev().skip(1) {
            let path = producer_state::snapshot_path(&self.dir, snapshot);
            crate::io::remove_file(&path)
                .map_err(|e| self.fail("delete producer snapshot", &path, e))?;
        }
        Ok(())
    }

    /// Retention: deletes segments past `retention.ms` or beyond `retention.bytes` (only
    /// segments wholly below the high watermark; the active segment is rolled first if it must
    /// go), and segments wholly below the log start offset. Returns the segments deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize> {
        self.check_online()?;
        let _maintenance = lock(&self.maintenance);
        let config = self.config();
        let mut deleted = 0;
        if config.cleanup_policy.delete {
            let log_end_offset = self.log_end_offset();
            let plan = self.retention_plan(log_end_offset, now_ms, &config);
            let mut count = plan.segments;
            if plan.roll_active && !self.roll_if_unchanged(log_end_offset, now_ms)? {
                count -= 1;
            }
            deleted += self.delete_oldest_segments(count)?;
        }
        deleted += self.delete_segments_below_log_start()?;
        lock(&self.writer)
            .producers
            .expire(now_ms, config.producer_id_expiration_ms);
        Ok(deleted)
    }

    fn retention_plan(
        &self,
        log_end_offset: i64,
        now_ms: i64,
        config: &LogConfig,
    ) -> crate::retention::RetentionPlan {
        let segments = self.segments();
        let mut infos = Vec::with_capacity(segments.len());
        for (i, segment) in segments.iter().enumerate() {
            let stats = segment.stats();
            let largest_timestamp = if stats.max_timestamp >= 0 {
                stats.max_timestamp
            } else {
                // No timestamps at all: the file's modification time, as Kafka does.
                std::fs::metadata(segment.path(SegmentFile::Log))
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(now_ms, |d| d.as_millis() as i64)
            };
            infos.push(crate::retention::SegmentInfo {
                base_offset: segment.base_offset(),
                next_base_offset: segments
                    .get(i + 1)
                    .map_or(log_end_offset, |next| next.base_offset()),
                size_bytes: segment.size(),
                largest_timestamp,
            });
        }
        crate::retention::plan(
            &infos,
            self.high_watermark(),
            config.retention_ms,
            config.retention_bytes,
            now_ms,
        )
    }

    /// Compacts the log once if `cleanup.policy` includes compact and it needs it (the
    /// manager's cleaner thread does this in the background), with a dedupe buffer of
    /// `log.cleaner.dedupe.buffer.size`'s default.
    pub fn compact(&self, now_ms: i64) -> Result<Option<crate::CleanerStats>> {
        crate::cleaner::clean(self, now_ms, 128 * 1024 * 1024)
    }

    /// Truncates the log to `offset` (a follower's truncation to its leader): batches at or
    /// after it go (a batch that holds it goes whole), and with them later segments, index
    /// entries, producer state and leader-epoch entries. Below the log start offset the log is
    /// emptied and restarts at `offset`. Returns the new log end offset.
    pub fn truncate_to(&self, offset: i64, now_ms: i64) -> Result<i64> {
        self.truncate(offset, false, now_ms)
    }

    /// Empties the log and restarts it at `offset`, which may be past the log end (Kafka's
    /// `truncateFullyAndStartAt`): a follower whose leader's log now starts beyond this log's
    /// end (retention, DeleteRecords), or inside a batch this log cannot continue. The epoch
    /// cache and producer state start empty.
    pub fn truncate_fully_and_start_at(&self, offset: i64, now_ms: i64) -> Result<i64> {
        self.truncate(offset, true, now_ms)
    }

    /// Epoch cache: `epoch` starts at `offset` (a new leader records its epoch at its log end
    /// when it takes over, as Kafka does, so followers asking about older epochs learn where
    /// they end). Persisted before it returns.
    pub fn assign_epoch_start_offset(&self, epoch: i32, offset: i64) -> Result<()> {
        self.check_online()?;
        self.assign_epoch(epoch, offset)
    }

    fn truncate(&self, offset: i64, start_over: bool, now_ms: i64) -> Result<i64> {
        self.check_online()?;
        let _maintenance = lock(&self.maintenance);
        let mut writer = lock(&self.writer);
        if offset >= self.log_end_offset() && !start_over {
            // No record goes, but an epoch entry at the log end may: a leader records its epoch
            // when it takes over, and if it lost leadership before appending anything, that
            // entry names an epoch the new leader never had. Kept, it makes every fetch report
            // a divergence that truncation never resolves.
            let log_end_offset = self.log_end_offset();
            self.change_epochs(|cache| cache.truncate_from_end(log_end_offset))?;
            return Ok(log_end_offset);
        }
        let config = self.config();
        let segments = self.segments();
        let keep = segments.partition_point(|segment| segment.base_offset() < offset);
        let start_over = start_over || keep == 0 || offset < self.log_start_offset();
        let (kept, removed): (Vec<_>, Vec<_>) = if start_over {
            // Nothing below `offset` survives: start over with an empty segment at `offset`.
            let segment = LogSegment::create(
                &self.dir,
                offset.max(0),
                config.segment_index_bytes,
                now_ms,
                rolling_jitter_ms(&self.topic_partition, offset, config.segment_jitter_ms),
                segment::SWAP_SUFFIX,
            )
            .map_err(|e| self.fail("truncate", &self.dir, e))?;
            (vec![Arc::new(segment)], segments.to_vec())
        } else {
            (segments[..keep].to_vec(), segments[keep..].to_vec())
        };
        for segment in &removed {
            segment
                .delete_files()
                .map_err(|e| self.fail("truncate", &segment.path(SegmentFile::Log), e))?;
        }
        let Some(last) = kept.last().cloned() else {
            unreachable!("truncation keeps or creates a segment");
        };
        if start_over {
            last.rename_files("")
                .map_err(|e| self.fail("truncate", &last.path(SegmentFile::Log), e))?;
            self.log_start_offset
                .store(offset.max(0), Ordering::Release);
        } else {
            last.truncate_to_offset(offset, config.index_interval_bytes)
                .map_err(|e| self.fail("truncate", &last.path(SegmentFile::Log), e))?;
            last.preallocate_indexes()
                .map_err(|e| self.fail("truncate", &last.path(SegmentFile::Index), e))?;
        }
        let log_end_offset = last.stats().next_offset;
        self.replace_segments(kept.clone());
        self.log_end_offset.store(log_end_offset, Ordering::Release);
        let log_start_offset = self.log_start_offset().min(log_end_offset);
        self.log_start_offset
            .store(log_start_offset, Ordering::Release);
        self.high_watermark.store(
            self.high_watermark()
                .clamp(log_start_offset, log_end_offset),
            Ordering::Release,
        );
        self.recovery_point
            .fetch_min(log_end_offset, Ordering::AcqRel);
        self.first_dirty_offset
            .fetch_min(log_end_offset, Ordering::AcqRel);
        // Starting over keeps no epoch: the log holds nothing from any of them.
        let end = if start_over { i64::MIN } else { log_end_offset };
        self.change_epochs(|cache| {
            let changed = cache.truncate_from_end(end);
            cache.truncate_from_start(log_start_offset) || changed
        })?;
        // Producer state: snapshots past the new end are stale; reload and replay.
        let snapshots = producer_state::list_snapshots(&self.dir)
            .map_err(|e| self.fail("list producer snapshots", &self.dir, e))?;
        for snapshot in snapshots
            .into_iter()
            .filter(|&s| s > log_end_offset || start_over)
        {
            let path = producer_state::snapshot_path(&self.dir, snapshot);
            crate::io::remove_file(&path).map_err(|e| self.fail("truncate", &path, e))?;
        }
        // The last kept segment may hold markers past the new end.
        last.truncate_txn_index(log_end_offset)
            .map_err(|e| self.fail("truncate", &last.path(SegmentFile::TxnIndex), e))?;
        writer.producers = crate::recovery::load_producer_state(
            &self.dir,
            &kept,
            log_end_offset,
            now_ms,
            config.producer_id_expiration_ms,
        )?;
        self.cache_first_unstable_offset(&writer.producers);
        crate::io::sync_dir(&self.dir).map_err(|e| self.fail("sync directory", &self.dir, e))?;
        Ok(log_end_offset)
    }

    /// Bytes in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments().iter().map(|segment| segment.size()).sum()
    }
    pub fn segment_count(&self) -> usize {
        self.segments().len()
    }
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    /// The cleaner's checkpoint: offsets below it are compacted.
    pub fn first_dirty_offset(&self) -> i64 {
        self.first_dirty_offset.load(Ordering::Acquire)
    }
    pub(crate) fn set_first_dirty_offset(&self, offset: i64) {
        let clamped = offset.clamp(self.log_start_offset(), self.log_end_offset());
        self.first_dirty_offset.store(clamped, Ordering::Release);
    }

    /// Flushes, snapshots the producer state at the log end, and trims the active segment's
    /// index files, so that the next open needs no recovery. The manager calls this at
    /// shutdown, before writing the clean-shutdown marker.
    pub fn close(&self) -> Result<()> {
        self.check_online()?;
        self.flush()?;
        let writer = lock(&self.writer);
        let log_end_offset = self.log_end_offset();
        producer_state::write_snapshot(&self.dir, log_end_offset, &writer.producers).map_err(
            |e| {
                self.fail(
                    "write producer snapshot",
                    &producer_state::snapshot_path(&self.dir, log_end_offset),
                    e,
                )
            },
        )?;
        let active = self.active_segment();
        active
            .on_become_inactive()
            .and_then(|()| active.sync_all())
            .map_err(|e| self.fail("close", &active.path(SegmentFile::Index), e))?;
        crate::io::sync_dir(&self.dir).map_err(|e| self.fail("sync directory", &self.dir, e))?;
        Ok(())
    }

    /// What opening the log had to repair (truncations, rebuilt indexes, completed swaps).
    pub fn recovery_report(&self) -> &crate::recovery::RecoveryReport {
        &self.recovery_report
    }

    /// Producer state, for tests and the cleaner.
    pub fn producer_state(&self) -> ProducerStateManager {
        lock(&self.writer).producers.clone()
    }

    pub(crate) fn mark_dir_dirty(&self) {
        self.dir_needs_sync.store(true, Ordering::Release);
    }
}

/// Who wrote the batches of a leader append; it decides which batches are accepted and how
/// they are checked (Kafka's `AppendOrigin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A producer's Produce request: sequences and epochs are checked.
    Client,
    /// The group coordinator's own writes (TxnOffsetCommit): no sequences, epochs checked.
    Coordinator,
}

/// What each origin may append. Control batches come only from the marker path (a client's
/// is Kafka's INVALID_RECORD); a transactional batch needs a producer id; the coordinator
/// writes without sequence numbers.
fn check_origin(header: &BatchHeader, origin: Origin) -> Result<(), AppendError> {
    if header.is_control() {
        return Err(AppendError::InvalidRecord(
            "control batches are written by the broker, not produced".to_owned(),
        ));
    }
    if header.is_transactional() && !header.has_producer_id() {
        return Err(AppendError::InvalidRecord(
            "a transactional batch needs a producer id".to_owned(),
        ));
    }
    if origin == Origin::Coordinator && header.base_sequence != batch::NO_SEQUENCE {
        return Err(AppendError::InvalidRecord(
            "coordinator batches carry no sequence number".to_owned(),
        ));
    }
    Ok(())
}

/// An append as the roll decision sees it.
struct AppendShape {
    bytes: u64,
    max_timestamp: i64,
    last_offset: i64,
}

impl AppendShape {
    fn of(header: &BatchHeader) -> AppendShape {
        AppendShape {
            bytes: header.size() as u64,
            max_timestamp: header.max_timestamp,
            last_offset: header.last_offset(),
        }
    }
}

/// The active segment as the roll decision sees it: as it is, or with batches that an append
/// plans to write to it first.
struct Planned {
    size: u64,
    first_batch_max_timestamp: Option<i64>,
}

impl Planned {
    fn of(segment: &LogSegment) -> Planned {
        Planned {
            size: segment.size(),
            first_batch_max_timestamp: segment.stats().first_batch_max_timestamp,
        }
    }

    fn add(&mut self, header: &BatchHeader) {
        self.size += header.size() as u64;
        self.first_batch_max_timestamp
            .get_or_insert(header.max_timestamp);
    }
}

/// Why `segment`, holding `planned`, must roll before `append` is written to it, if it must.
fn roll_reason(
    segment: &LogSegment,
    planned: &Planned,
    append: &AppendShape,
    config: &LogConfig,
    now_ms: i64,
) -> Option<segment::RollReason> {
    segment::should_roll(&RollInput {
        segment_size: planned.size,
        segment_base_offset: segment.base_offset(),
        first_batch_max_timestamp: planned.first_batch_max_timestamp,
        segment_created_ms: segment.created_ms(),
        rolling_jitter_ms: segment.rolling_jitter_ms(),
        offset_index_full: segment.offset_index_is_full(),
        time_index_full: segment.time_index_is_full(),
        append_bytes: append.bytes,
        append_max_timestamp: append.max_timestamp,
        append_last_offset: append.last_offset,
        now_ms,
        segment_bytes: config.segment_bytes,
        segment_ms: config.segment_ms,
    })
}

/// CreateTime checks of `message.timestamp.before.max.ms` / `after.max.ms`, on the batch's base
/// and max timestamps (Kafka checks every record; the header's two timestamps bound the records
/// of batches written by real producers, whose deltas are never negative).
fn check_timestamps(
    header: &BatchHeader,
    now_ms: i64,
    config: &LogConfig,
) -> Result<(), AppendError> {
    for timestamp in [header.base_timestamp, header.max_timestamp] {
        if timestamp < 0 {
            continue;
        }
        if timestamp < now_ms.saturating_sub(config.message_timestamp_before_max_ms) {
            return Err(AppendError::InvalidTimestamp {
                timestamp,
                reason: "older than message.timestamp.before.max.ms allows",
            });
        }
        if timestamp > now_ms.saturating_add(config.message_timestamp_after_max_ms) {
            return Err(AppendError::InvalidTimestamp {
                timestamp,
                reason: "newer than message.timestamp.after.max.ms allows",
            });
        }
    }
    Ok(())
}

/// Compacted topics need a key on every record (Kafka's INVALID_RECORD otherwise).
fn check_keys_present(bytes: &[u8], header: &BatchHeader) -> Result<(), AppendError> {
    let payload = batch::records_payload(bytes)?;
    for record in batch::records(payload.as_slice(), header.records_count) {
        if record?.key.is_none() {
            return Err(AppendError::InvalidRecord(
                "compacted topic accepts only records with a key".to_owned(),
            ));
        }
    }
    Ok(())
}

/// The first record of a batch at or after `timestamp` and `min_offset`.
fn first_record_at_or_after(
    header: &BatchHeader,
    bytes: &[u8],
    timestamp: i64,
    min_offset: i64,
) -> Result<Option<TimestampAndOffset>, batch::BatchError> {
    let payload = batch::records_payload(bytes)?;
    for record in batch::records(payload.as_slice(), header.records_count) {
        let record = record?;
        let offset = header.base_offset + i64::from(record.offset_delta);
        let record_timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.saturating_add(record.timestamp_delta)
        };
        if record_timestamp >= timestamp && offset >= min_offset {
            return Ok(Some(TimestampAndOffset {
                timestamp: record_timestamp,
                offset,
                leader_epoch: header.partition_leader_epoch,
            }));
        }
    }
    Ok(None)
}

const _: () = {
    // The broker shares logs across blocking threads.
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
};
