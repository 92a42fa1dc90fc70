//! [`LogManager`]: one data directory. It keeps Kafka's files at the top of the directory
//! (the `.kafka_cleanshutdown` marker and the four offset checkpoints, see
//! [`crate::checkpoint`]), opens partition logs with what those files say, deletes partition
//! directories, and runs the background threads:
//! - the scheduler: time-based flushes (`flush.ms`, and the flush that follows a segment
//!   roll), retention every `log.retention.check.interval.ms`, checkpoints at their intervals;
//! - the cleaner: compaction of `cleanup.policy=compact` logs every `log.cleaner.backoff.ms`.
//!
//! The clean-shutdown marker is removed when the manager opens (a crash from then on is
//! unclean) and written by [`LogManager::shutdown`] after every log was flushed and closed
//! and the checkpoints were written, so the next open skips recovery.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::checkpoint::{
    self, CLEAN_SHUTDOWN_MARKER, CLEANER_OFFSET_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT, REPLICATION_OFFSET_CHECKPOINT,
};
use crate::log::lock;
use crate::{Error, Log, LogConfig, ManagerConfig, OpenOptions, Result, TopicPartition};

/// Suffix of a partition directory being deleted (Kafka's `<tp>.<unique>-delete`).
const DELETE_DIR_SUFFIX: &str = "-delete";

type Offsets = BTreeMap<TopicPartition, i64>;

/// The checkpoints read at open, for partitions not loaded (yet): their entries are carried
/// over when the checkpoint files are rewritten.
#[derive(Debug, Default)]
struct Checkpoints {
    recovery_points: Offsets,
    log_start_offsets: Offsets,
    high_watermarks: Offsets,
    cleaner_offsets: Offsets,
}

struct Inner {
    data_dir: PathBuf,
    config: ManagerConfig,
    had_clean_shutdown: bool,
    logs: RwLock<BTreeMap<TopicPartition, Arc<Log>>>,
    initial: Mutex<Checkpoints>,
    /// Serializes checkpoint writes.
    checkpoint_lock: Mutex<()>,
    /// Serializes loads of logs.
    load_lock: Mutex<()>,
    /// Set to stop the background threads; the condvar wakes them.
    stopping: Mutex<bool>,
    wake: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
    unique: AtomicU64,
    /// Renamed partition directories waiting for `file.delete.delay.ms`: (path, due time).
    pending_deletes: Mutex<Vec<(PathBuf, i64)>>,
}

/// A data directory: its logs, the checkpoint files, the clean-shutdown marker, and the
/// background threads for retention, compaction, time-based flush and checkpointing.
pub struct LogManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LogManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogManager")
            .field("data_dir", &self.inner.data_dir)
            .finish()
    }
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Parses a partition directory name `<topic>-<partition>`.
pub(crate) fn parse_partition_dir(name: &str) -> Option<TopicPartition> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty()
        || partition.is_empty()
        || !partition.bytes().all(|b| b.is_ascii_digit())
        || !topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return None;
    }
    Some(TopicPartition {
        topic: topic.to_owned(),
        partition: partition.parse().ok()?,
    })
}

fn read_checkpoint(path: &Path) -> Result<Offsets> {
    match checkpoint::read(path).map_err(io_error("read checkpoint", path))? {
        Ok(offsets) => Ok(offsets),
        Err(error) => {
            // A malformed checkpoint costs a slower start (full recovery), not data.
            tracing::warn!(path = %path.display(), %error, "ignoring a malformed checkpoint");
            Ok(Offsets::new())
        }
    }
}

impl LogManager {
    /// Opens the data directory. Reads checkpoints and the clean-shutdown marker (and removes
    /// the marker), but opens no log yet: the broker calls [`LogManager::load`] for each
    /// partition its metadata knows.
    pub fn open(data_dir: &Path, config: ManagerConfig) -> Result<LogManager> {
        std::fs::create_dir_all(data_dir).map_err(io_error("create data directory", data_dir))?;
        let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
        let had_clean_shutdown = marker.exists();
        let initial = Checkpoints {
            recovery_points: read_checkpoint(&data_dir.join(RECOVERY_POINT_CHECKPOINT))?,
            log_start_offsets: read_checkpoint(&data_dir.join(LOG_START_OFFSET_CHECKPOINT))?,
            high_watermarks: read_checkpoint(&data_dir.join(REPLICATION_OFFSET_CHECKPOINT))?,
            cleaner_offsets: read_checkpoint(&data_dir.join(CLEANER_OFFSET_CHECKPOINT))?,
        };
        // Partition directories whose deletion was interrupted.
        let entries =
            std::fs::read_dir(data_dir).map_err(io_error("list data directory", data_dir))?;
        for entry in entries {
            let entry = entry.map_err(io_error("list data directory", data_dir))?;
            let name = entry.file_name();
            if name
                .to_str()
                .is_some_and(|n| n.ends_with(DELETE_DIR_SUFFIX))
            {
                let path = entry.path();
                std::fs::remove_dir_all(&path)
                    .map_err(io_error("remove deleted partition", &path))?;
            }
        }
        if had_clean_shutdown {
            crate::io::remove_file(&marker)
                .map_err(io_error("remove clean-shutdown marker", &marker))?;
        }
        crate::io::sync_dir(data_dir).map_err(io_error("sync data directory", data_dir))?;
        tracing::info!(data_dir = %data_dir.display(), had_clean_shutdown, "opened data directory");
        Ok(LogManager {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                config,
                had_clean_shutdown,
                logs: RwLock::new(BTreeMap::new()),
                initial: Mutex::new(initial),
                checkpoint_lock: Mutex::new(()),
                load_lock: Mutex::new(()),
                stopping: Mutex::new(false),
                wake: Condvar::new(),
                threads: Mutex::new(Vec::new()),
                unique: AtomicU64::new(0),
                pending_deletes: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Whether the previous shutdown was clean (the marker was present at open).
    pub fn had_clean_shutdown(&self) -> bool {
        self.inner.had_clean_shutdown
    }

    /// Partition directories found on disk (`<topic>-<partition>`), for the broker to load or
    /// delete. Directories that are not partition logs are not listed.
    pub fn partitions_on_disk(&self) -> Vec<TopicPartition> {
        let Ok(entries) = std::fs::read_dir(&self.inner.data_dir) else {
            return Vec::new();
        };
        let mut partitions: Vec<TopicPartition> = entries
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|entry| parse_partition_dir(entry.file_name().to_str()?))
            .collect();
        partitions.sort();
        partitions
    }

    /// Opens (recovering if needed) or creates the log of a partition. Loading a partition
    /// that is already loaded returns the same log, with `config` applied.
    pub fn load(&self, topic_partition: &TopicPartition, config: LogConfig) -> Result<Arc<Log>> {
        if let Some(log) = self.get(topic_partition) {
            log.update_config(config);
            return Ok(log);
        }
        // Loads are serialized (a partition must not be opened twice) but run outside the
        // map's lock, so that a long recovery does not stall lookups of other partitions.
        let _loading = lock(&self.inner.load_lock);
        if let Some(log) = self.get(topic_partition) {
            log.update_config(config);
            return Ok(log);
        }
        let (options, cleaner_offset) = {
            let initial = lock(&self.inner.initial);
            let get = |offsets: &Offsets| offsets.get(topic_partition).copied().unwrap_or(0);
            (
                OpenOptions {
                    recovery_point: get(&initial.recovery_points),
                    log_start_offset: get(&initial.log_start_offsets),
                    high_watermark: get(&initial.high_watermarks),
                    had_clean_shutdown: self.inner.had_clean_shutdown,
                    now_ms: wall_clock_ms(),
                },
                initial.cleaner_offsets.get(topic_partition).copied(),
            )
        };
        let dir = self.inner.data_dir.join(topic_partition.to_string());
        let log = Arc::new(Log::open(dir, topic_partition.clone(), config, options)?);
        if let Some(offset) = cleaner_offset {
            log.set_first_dirty_offset(offset);
        }
        self.inner
            .logs
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(topic_partition.clone(), log.clone());
        Ok(log)
    }

    pub fn get(&self, topic_partition: &TopicPartition) -> Option<Arc<Log>> {
        self.inner
            .logs
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(topic_partition)
            .cloned()
    }

    /// All loaded logs.
    pub fn logs(&self) -> Vec<Arc<Log>> {
        self.inner.logs()
    }

    /// Removes a partition's log from the manager and deletes its directory now.
    pub fn delete(&self, topic_partition: &TopicPartition) -> Result<()> {
        self.delete_after(topic_partition, 0)
    }

    /// Removes a partition's log from the manager and deletes its directory after `delay_ms`
    /// (Kafka's `file.delete.delay.ms`). The directory is renamed at once to
    /// `<topic>-<partition>.<unique>-delete`, so a new log of the same partition can be created
    /// meanwhile, and a crash before the delay ends leaves a name the next open recognises and
    /// finishes deleting. Readers that still hold the log keep their open files.
    pub fn delete_after(&self, topic_partition: &TopicPartition, delay_ms: i64) -> Result<()> {
        let removed = self
            .inner
            .logs
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(topic_partition);
        {
            let mut initial = lock(&self.inner.initial);
            initial.recovery_points.remove(topic_partition);
            initial.log_start_offsets.remove(topic_partition);
            initial.high_watermarks.remove(topic_partition);
            initial.cleaner_offsets.remove(topic_partition);
        }
        let dir = self.inner.data_dir.join(topic_partition.to_string());
        if !dir.exists() {
            return Ok(());
        }
        let unique = self.inner.unique.fetch_add(1, Ordering::Relaxed);
        let doomed = self.inner.data_dir.join(format!(
            "{topic_partition}.{}{unique}{DELETE_DIR_SUFFIX}",
            wall_clock_ms()
        ));
        crate::io::rename(&dir, &doomed).map_err(io_error("delete partition", &dir))?;
        crate::io::sync_dir(&self.inner.data_dir)
            .map_err(io_error("sync data directory", &self.inner.data_dir))?;
        drop(removed);
        if delay_ms <= 0 {
            std::fs::remove_dir_all(&doomed).map_err(io_error("delete partition", &doomed))?;
        } else {
            lock(&self.inner.pending_deletes).push((doomed, wall_clock_ms() + delay_ms));
        }
        Ok(())
    }

    /// Deletes the renamed directories whose delay has passed. The scheduler thread calls
    /// this every tick.
    pub fn delete_due_directories(&self, now_ms: i64) {
        self.inner.delete_due_directories(now_ms);
    }

    /// Starts the background threads. They stop on [`LogManager::shutdown`]. Calling it again
    /// does nothing.
    pub fn start_background_work(&self) {
        let mut threads = lock(&self.inner.threads);
        if !threads.is_empty() || *lock(&self.inner.stopping) {
            return;
        }
        let inner = self.inner.clone();
        let scheduler = std::thread::Builder::new()
            .name("strom-log-scheduler".to_owned())
            .spawn(move || inner.scheduler_loop());
        let inner = self.inner.clone();
        let cleaner = self.inner.config.cleaner_enable.then(|| {
            std::thread::Builder::new()
                .name("strom-log-cleaner".to_owned())
                .spawn(move || inner.cleaner_loop())
        });
        for spawned in std::iter::once(scheduler).chain(cleaner) {
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(error) => tracing::error!(%error, "cannot start a log background thread"),
            }
        }
    }

    /// One pass of the scheduler's work at `now_ms`, as the background thread does it:
    /// due flushes, retention when `retention_due`, and the checkpoints. Public for tests and
    /// for brokers that drive time themselves.
    pub fn run_maintenance(&self, now_ms: i64, retention_due: bool) -> Result<()> {
        self.inner.flush_due_logs(now_ms);
        if retention_due {
            self.inner.enforce_retention(now_ms);
        }
        self.inner.write_checkpoints()
    }

    /// One pass of the cleaner: compacts every log that needs it. Returns the number of logs
    /// compacted.
    pub fn run_cleaner(&self, now_ms: i64) -> usize {
        self.inner.clean_logs(now_ms)
    }

    /// Writes the four checkpoint files from the loaded logs (and the open-time entries of
    /// partitions not loaded).
    pub fn write_checkpoints(&self) -> Result<()> {
        self.inner.write_checkpoints()
    }

    /// Flushes every log, writes checkpoints and producer snapshots, then the clean-shutdown
    /// marker. After this, the next open skips recovery. If a log cannot be closed (it is
    /// offline, or an IO error happens now), the marker is not written and the error returned.
    pub fn shutdown(&self) -> Result<()> {
        {
            *lock(&self.inner.stopping) = true;
            self.inner.wake.notify_all();
        }
        let threads = std::mem::take(&mut *lock(&self.inner.threads));
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("a log background thread panicked");
            }
        }
        let mut first_error = None;
        for log in self.inner.logs() {
            if let Err(error) = log.close() {
                tracing::error!(partition = %log.topic_partition(), %error, "cannot close log cleanly");
                first_error.get_or_insert(error);
            }
        }
        self.inner.write_checkpoints()?;
        if let Some(error) = first_error {
            return Err(error);
        }
        let marker = self.inner.data_dir.join(CLEAN_SHUTDOWN_MARKER);
        let file = crate::io::open_rw(&marker, true, true)
            .map_err(io_error("write clean-shutdown marker", &marker))?;
        crate::io::sync_all(&file, &marker)
            .map_err(io_error("write clean-shutdown marker", &marker))?;
        crate::io::sync_dir(&self.inner.data_dir)
            .map_err(io_error("sync data directory", &self.inner.data_dir))?;
        tracing::info!(data_dir = %self.inner.data_dir.display(), "log manager shut down cleanly");
        Ok(())
    }
}

impl Inner {
    fn delete_due_directories(&self, now_ms: i64) {
        let due: Vec<PathBuf> = {
            let mut pending = lock(&self.pending_deletes);
            let (due, later): (Vec<_>, Vec<_>) =
                pending.drain(..).partition(|(_, at)| *at <= now_ms);
            *pending = later;
            due.into_iter().map(|(path, _)| path).collect()
        };
        for path in due {
            if let Err(error) = std::fs::remove_dir_all(&path) {
                tracing::error!(path = %path.display(), %error, "cannot delete a partition directory");
            }
        }
    }

    fn logs(&self) -> Vec<Arc<Log>> {
        self.logs
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Waits up to `timeout_ms`; returns true when asked to stop.
    fn wait(&self, timeout_ms: i64) -> bool {
        let stopping = lock(&self.stopping);
        if *stopping {
            return true;
        }
        let timeout = Duration::from_millis(timeout_ms.clamp(1, 3_600_000) as u64);
        let (stopping, _) = self
            .wake
            .wait_timeout(stopping, timeout)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *stopping
    }

    fn scheduler_loop(&self) {
        let tick_ms = self.config.flush_scheduler_interval_ms.clamp(10, 1_000);
        let start = wall_clock_ms();
        let mut next_retention = start + self.config.retention_check_interval_ms.max(1);
        let mut next_recovery_points =
            start + self.config.recovery_point_checkpoint_interval_ms.max(1);
        let mut next_log_starts =
            start + self.config.log_start_offset_checkpoint_interval_ms.max(1);
        let mut next_high_watermarks =
            start + self.config.high_watermark_checkpoint_interval_ms.max(1);
        while !self.wait(tick_ms) {
            let now = wall_clock_ms();
            self.flush_due_logs(now);
            self.delete_due_directories(now);
            if now >= next_retention {
                self.enforce_retention(now);
                next_retention = now + self.config.retention_check_interval_ms.max(1);
            }
            // The checkpoints are written together when any is due: they are small, and one
            // consistent set is easier to reason about after a crash.
            if now
                >= next_recovery_points
                    .min(next_log_starts)
                    .min(next_high_watermarks)
            {
                if let Err(error) = self.write_checkpoints() {
                    tracing::error!(%error, "cannot write checkpoints");
                }
                next_recovery_points =
                    now + self.config.recovery_point_checkpoint_interval_ms.max(1);
                next_log_starts = now + self.config.log_start_offset_checkpoint_interval_ms.max(1);
                next_high_watermarks =
                    now + self.config.high_watermark_checkpoint_interval_ms.max(1);
            }
        }
    }

    fn cleaner_loop(&self) {
        while !self.wait(self.config.cleaner_backoff_ms) {
            self.clean_logs(wall_clock_ms());
        }
    }

    fn flush_due_logs(&self, now_ms: i64) {
        for log in self.logs() {
            if log.is_offline() {
                continue;
            }
            if let Err(error) = log.flush_if_due(now_ms) {
                tracing::error!(partition = %log.topic_partition(), %error, "scheduled flush failed");
            }
        }
    }

    fn enforce_retention(&self, now_ms: i64) {
        for log in self.logs() {
            if log.is_offline() {
                continue;
            }
            match log.enforce_retention(now_ms) {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(partition = %log.topic_partition(), deleted, "retention deleted segments")
                }
                Err(error) => {
                    tracing::error!(partition = %log.topic_partition(), %error, "retention failed")
                }
            }
        }
    }

    fn clean_logs(&self, now_ms: i64) -> usize {
        let mut cleaned = 0;
        for log in self.logs() {
            if log.is_offline() || !log.config().cleanup_policy.compact {
                continue;
            }
            match crate::cleaner::clean(&log, now_ms, self.config.cleaner_dedupe_buffer_size) {
                Ok(Some(_)) => cleaned += 1,
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(partition = %log.topic_partition(), %error, "compaction failed")
                }
            }
        }
        cleaned
    }

    fn write_checkpoints(&self) -> Result<()> {
        let _writing = lock(&self.checkpoint_lock);
        let logs = self.logs();
        let (mut recovery_points, mut log_starts, mut high_watermarks, mut cleaner_offsets) = {
            let initial = lock(&self.initial);
            (
                initial.recovery_points.clone(),
                initial.log_start_offsets.clone(),
                initial.high_watermarks.clone(),
                initial.cleaner_offsets.clone(),
            )
        };
        for log in &logs {
            let tp = log.topic_partition().clone();
            recovery_points.insert(tp.clone(), log.flushed_offset());
            log_starts.insert(tp.clone(), log.log_start_offset());
            high_watermarks.insert(tp.clone(), log.high_watermark());
            if log.config().cleanup_policy.compact {
                cleaner_offsets.insert(tp, log.first_dirty_offset());
            }
        }
        for (name, offsets) in [
            (RECOVERY_POINT_CHECKPOINT, &recovery_points),
            (LOG_START_OFFSET_CHECKPOINT, &log_starts),
            (REPLICATION_OFFSET_CHECKPOINT, &high_watermarks),
            (CLEANER_OFFSET_CHECKPOINT, &cleaner_offsets),
        ] {
            let path = self.data_dir.join(name);
            checkpoint::write(&path, offsets).map_err(io_error("write checkpoint", &path))?;
        }
        Ok(())
    }
}

impl Drop for LogManager {
    fn drop(&mut self) {
        // Stop the threads if the owner forgot `shutdown` (no clean-shutdown marker then).
        *lock(&self.inner.stopping) = true;
        self.inner.wake.notify_all();
        for thread in std::mem::take(&mut *lock(&self.inner.threads)) {
            let _ = thread.join();
        }
    }
}
