//! One segment of a partition log: the `.log` file of concatenated record batches, its sparse
//! `.index` and `.timeindex`, its optional `.txnindex` (the aborted transactions whose ABORT
//! marker it holds, see [`crate::txn_index`]), and the in-memory state that readers and the
//! appender share.
//!
//! The `.log` file is nothing but whole v2 record batches back to back (see [`crate::batch`]),
//! named `<base offset as 20 digits>.log`; the base offset is the first offset the segment may
//! hold. Only the log's appender writes a segment, and only at its end; readers read below the
//! committed size, which the appender publishes after each write completes, so a reader never
//! sees a partially written batch. The files are held open by the segment, and the segment by
//! `Arc`, so a reader that still holds a segment deleted by retention or replaced by the
//! cleaner keeps reading the old, unlinked file.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use crate::batch::{self, BatchHeader, RECORD_BATCH_OVERHEAD, Validation};
use crate::index::{
    IndexError, OFFSET_INDEX_ENTRY_SIZE, OffsetIndex, TIME_INDEX_ENTRY_SIZE, TimeIndex,
    TimestampOffset, preallocated_len,
};
use crate::io as fio;
use crate::txn_index::{self, AbortedTxn, TxnIndex};

/// Suffixes of a segment's files.
pub const LOG_SUFFIX: &str = ".log";
pub const INDEX_SUFFIX: &str = ".index";
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// The aborted-transaction index (see [`crate::txn_index`]). Created only when the segment's
/// first ABORT marker is appended, as Kafka does: most segments never hold one.
pub const TXN_INDEX_SUFFIX: &str = ".txnindex";
/// Files of a segment that is being deleted.
pub const DELETED_SUFFIX: &str = ".deleted";
/// Files written by the cleaner that are not yet committed.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Files of a cleaned segment that are committed but not yet swapped in.
pub const SWAP_SUFFIX: &str = ".swap";

/// The chunk size of sequential scans (recovery, index rebuilds, producer-state replay).
const SCAN_CHUNK_BYTES: usize = 1024 * 1024;

/// `00000000000000000042` for base offset 42: Kafka's file-name stem.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// Parses a file-name stem of exactly 20 digits.
pub fn parse_stem(stem: &str) -> Option<i64> {
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

/// Which file of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentFile {
    Log,
    Index,
    TimeIndex,
    /// Optional: absent until the segment holds an aborted transaction.
    TxnIndex,
}

impl SegmentFile {
    pub fn suffix(self) -> &'static str {
        match self {
            SegmentFile::Log => LOG_SUFFIX,
            SegmentFile::Index => INDEX_SUFFIX,
            SegmentFile::TimeIndex => TIME_INDEX_SUFFIX,
            SegmentFile::TxnIndex => TXN_INDEX_SUFFIX,
        }
    }
    pub const ALL: [SegmentFile; 4] = [
        SegmentFile::Log,
        SegmentFile::Index,
        SegmentFile::TimeIndex,
        SegmentFile::TxnIndex,
    ];
}

/// The path of one file of a segment, with an optional extra suffix (`.swap`, `.deleted`, ...).
pub fn segment_path(dir: &Path, base_offset: i64, file: SegmentFile, extra: &str) -> PathBuf {
    dir.join(format!(
        "{}{}{}",
        file_stem(base_offset),
        file.suffix(),
        extra
    ))
}

/// What the appender and readers know about a segment besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentStats {
    /// Largest batch max timestamp in the segment (-1 when none).
    pub max_timestamp: i64,
    /// Last offset of the first batch that carried `max_timestamp` (-1 when none).
    pub offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch: the base of time-based rolling, like Kafka.
    pub first_batch_max_timestamp: Option<i64>,
    /// The offset after the segment's last batch (the base offset when empty).
    pub next_offset: i64,
    /// Bytes appended since the last offset-index entry.
    pub bytes_since_last_index_entry: u64,
}

impl SegmentStats {
    fn empty(base_offset: i64) -> SegmentStats {
        SegmentStats {
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            first_batch_max_timestamp: None,
            next_offset: base_offset,
            bytes_since_last_index_entry: 0,
        }
    }
}

/// The two indexes, updated together under one lock.
#[derive(Debug, Clone)]
pub struct Indexes {
    pub offset: OffsetIndex,
    pub time: TimeIndex,
}

/// Where a segment's index entries live.
///
/// A segment that can still change (the active one, or one being recovered or cleaned) keeps
/// its entries in memory, mirrored to its files. Once it is sealed (inactive, files trimmed to
/// exactly its entries and verified), the files are the only copy and lookups search them in
/// place: memory then does not grow with the number of segments a log keeps, which is what
/// keeps a broker's RSS flat however much data it holds.
#[derive(Debug, Clone)]
enum IndexResidence {
    Memory(Indexes),
    Sealed {
        offset_entries: usize,
        time_entries: usize,
    },
}

/// Builds indexes and stats batch by batch, with Kafka's rule: an offset-index entry before a
/// batch once more than `index.interval.bytes` were appended since the last entry, and a
/// time-index entry at the same moment when the largest timestamp grew.
struct IndexBuilder<'a> {
    indexes: &'a mut Indexes,
    stats: &'a mut SegmentStats,
    index_interval_bytes: u64,
    new_offset_entries: Vec<u8>,
    new_time_entries: Vec<u8>,
}

impl IndexBuilder<'_> {
    fn on_batch(&mut self, position: u64, header: &BatchHeader) {
        let stats = &mut *self.stats;
        if stats.first_batch_max_timestamp.is_none() {
            stats.first_batch_max_timestamp = Some(header.max_timestamp);
        }
        if header.max_timestamp > stats.max_timestamp {
            stats.max_timestamp = header.max_timestamp;
            stats.offset_of_max_timestamp = header.last_offset();
        }
        if stats.bytes_since_last_index_entry > self.index_interval_bytes {
            if let Ok(position) = u32::try_from(position)
                && let Some(entry) = self.indexes.offset.append(header.last_offset(), position)
            {
                self.new_offset_entries.extend_from_slice(&entry);
            }
            if let Some(entry) = self.indexes.time.maybe_append(
                stats.max_timestamp,
                stats.offset_of_max_timestamp,
                true,
            ) {
                self.new_time_entries.extend_from_slice(&entry);
            }
            stats.bytes_since_last_index_entry = 0;
        }
        stats.bytes_since_last_index_entry += header.size() as u64;
        stats.next_offset = header.next_offset();
    }
}

/// One segment: files, committed size, indexes, stats.
pub struct LogSegment {
    base_offset: i64,
    dir: PathBuf,
    log: File,
    offset_index_file: File,
    time_index_file: File,
    /// Bytes of whole batches readers may read. Published (Release) after each append.
    committed_size: AtomicU64,
    indexes: RwLock<IndexResidence>,
    stats: Mutex<SegmentStats>,
    /// The extra suffix the files carry now ("" once live, ".swap" while being swapped in).
    suffix: Mutex<&'static str>,
    max_index_bytes: u64,
    /// Creation time, the roll base when no batch has a timestamp.
    created_ms: i64,
    /// `segment.jitter.ms` drawn for this segment.
    rolling_jitter_ms: i64,
    /// An index file did not exist when the segment was opened.
    index_file_missing: bool,
    /// The aborted transactions whose marker is in this segment. Kept in memory even when
    /// the segment is sealed: aborts are rare and a read_committed fetch consults them on
    /// every read. The `.txnindex` file mirrors them; `None` until it exists.
    txn_index: Mutex<TxnIndexState>,
}

/// A segment's aborted-transaction index and its file, opened on first use.
#[derive(Default)]
struct TxnIndexState {
    index: TxnIndex,
    file: Option<File>,
}

impl std::fmt::Debug for LogSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSegment")
            .field("base_offset", &self.base_offset)
            .field("size", &self.size())
            .finish()
    }
}

/// How a segment was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexState {
    /// The index files were loaded and passed their checks.
    Loaded,
    /// The index files were missing or inconsistent and were rebuilt from the log.
    Rebuilt,
}

/// Guards the cheap parts of a lock-poisoning situation: the data behind these locks is plain
/// state that is valid between statements, so a panic elsewhere does not corrupt it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LogSegment {
    /// Creates a new, empty segment (truncating leftovers with the same name), its index files
    /// preallocated to `max_index_bytes`.
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        max_index_bytes: u64,
        now_ms: i64,
        rolling_jitter_ms: i64,
        extra_suffix: &'static str,
    ) -> io::Result<LogSegment> {
        let path = |file| segment_path(dir, base_offset, file, extra_suffix);
        let log = fio::open_rw(&path(SegmentFile::Log), true, true)?;
        let offset_index_file = fio::open_rw(&path(SegmentFile::Index), true, true)?;
        fio::set_len(
            &offset_index_file,
            &path(SegmentFile::Index),
            preallocated_len(max_index_bytes, OFFSET_INDEX_ENTRY_SIZE),
        )?;
        let time_index_file = fio::open_rw(&path(SegmentFile::TimeIndex), true, true)?;
        fio::set_len(
            &time_index_file,
            &path(SegmentFile::TimeIndex),
            preallocated_len(max_index_bytes, TIME_INDEX_ENTRY_SIZE),
        )?;
        Ok(LogSegment {
            base_offset,
            dir: dir.to_path_buf(),
            log,
            offset_index_file,
            time_index_file,
            committed_size: AtomicU64::new(0),
            indexes: RwLock::new(IndexResidence::Memory(Indexes {
                offset: OffsetIndex::new(base_offset, max_index_bytes),
                time: TimeIndex::new(base_offset, max_index_bytes),
            })),
            stats: Mutex::new(SegmentStats::empty(base_offset)),
            suffix: Mutex::new(extra_suffix),
            max_index_bytes,
            created_ms: now_ms,
            rolling_jitter_ms,
            index_file_missing: false,
            txn_index: Mutex::new(TxnIndexState::default()),
        })
    }

    /// Opens an existing segment's files (creating missing index files), with empty indexes.
    /// The caller then loads or rebuilds the indexes ([`LogSegment::load_indexes`],
    /// [`LogSegment::recover`]).
    pub(crate) fn open_files(
        dir: &Path,
        base_offset: i64,
        max_index_bytes: u64,
        now_ms: i64,
        rolling_jitter_ms: i64,
        extra_suffix: &'static str,
    ) -> io::Result<LogSegment> {
        let path = |file| segment_path(dir, base_offset, file, extra_suffix);
        let log = fio::open_rw(&path(SegmentFile::Log), false, false)?;
        let size = log.metadata()?.len();
        let index_file_missing =
            !path(SegmentFile::Index).exists() || !path(SegmentFile::TimeIndex).exists();
        let offset_index_file = fio::open_rw(&path(SegmentFile::Index), true, false)?;
        let time_index_file = fio::open_rw(&path(SegmentFile::TimeIndex), true, false)?;
        let txn_index = load_txn_index(&path(SegmentFile::TxnIndex))?;
        Ok(LogSegment {
            base_offset,
            dir: dir.to_path_buf(),
            log,
            offset_index_file,
            time_index_file,
            committed_size: AtomicU64::new(size),
            indexes: RwLock::new(IndexResidence::Memory(Indexes {
                offset: OffsetIndex::new(base_offset, max_index_bytes),
                time: TimeIndex::new(base_offset, max_index_bytes),
            })),
            stats: Mutex::new(SegmentStats::empty(base_offset)),
            suffix: Mutex::new(extra_suffix),
            max_index_bytes,
            created_ms: now_ms,
            rolling_jitter_ms,
            index_file_missing,
            txn_index: Mutex::new(txn_index),
        })
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    /// Committed bytes: whole batches that readers may read.
    pub fn size(&self) -> u64 {
        self.committed_size.load(Ordering::Acquire)
    }
    pub fn stats(&self) -> SegmentStats {
        *lock(&self.stats)
    }
    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }
    pub fn rolling_jitter_ms(&self) -> i64 {
        self.rolling_jitter_ms
    }
    pub fn path(&self, file: SegmentFile) -> PathBuf {
        segment_path(&self.dir, self.base_offset, file, *lock(&self.suffix))
    }
    pub(crate) fn log_file(&self) -> &File {
        &self.log
    }
    /// A copy of the indexes (tests and diagnostics), read from the files when sealed.
    pub fn indexes(&self) -> io::Result<Indexes> {
        match &*self.state() {
            IndexResidence::Memory(indexes) => Ok(indexes.clone()),
            IndexResidence::Sealed { .. } => self.read_index_files(),
        }
    }
    /// Whether the indexes are held only in their files.
    pub fn is_sealed(&self) -> bool {
        matches!(&*self.state(), IndexResidence::Sealed { .. })
    }
    /// Full indexes roll the active segment; a sealed segment takes no more entries.
    pub fn offset_index_is_full(&self) -> bool {
        match &*self.state() {
            IndexResidence::Memory(indexes) => indexes.offset.is_full(),
            IndexResidence::Sealed { .. } => false,
        }
    }
    pub fn time_index_is_full(&self) -> bool {
        match &*self.state() {
            IndexResidence::Memory(indexes) => indexes.time.is_full(),
            IndexResidence::Sealed { .. } => false,
        }
    }
    fn state(&self) -> std::sync::RwLockReadGuard<'_, IndexResidence> {
        self.indexes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, IndexResidence> {
        self.indexes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the in-memory indexes, loading them from the files first if the segment
    /// was sealed (a sealed segment that changes again: truncation, reactivation).
    fn with_memory<R>(&self, f: impl FnOnce(&mut Indexes) -> R) -> io::Result<R> {
        let mut state = self.state_mut();
        if let IndexResidence::Sealed { .. } = &*state {
            *state = IndexResidence::Memory(self.read_index_files()?);
        }
        match &mut *state {
            IndexResidence::Memory(indexes) => Ok(f(indexes)),
            IndexResidence::Sealed { .. } => {
                Err(io::Error::other("index state changed while locked"))
            }
        }
    }

    fn set_indexes(&self, indexes: Indexes) {
        *self.state_mut() = IndexResidence::Memory(indexes);
    }

    /// Drops the in-memory index entries; lookups search the files from now on. Only for a
    /// segment whose files hold exactly its entries: after it became inactive, or after its
    /// indexes were loaded, recovered or rebuilt (which trim the files).
    pub(crate) fn seal_indexes(&self) {
        let mut state = self.state_mut();
        if let IndexResidence::Memory(indexes) = &*state {
            *state = IndexResidence::Sealed {
                offset_entries: indexes.offset.len(),
                time_entries: indexes.time.len(),
            };
        }
    }

    /// Parses both (trimmed) index files; they were checked when the segment was sealed.
    fn read_index_files(&self) -> io::Result<Indexes> {
        let invalid = |what: &str, e: IndexError| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"))
        };
        let offset_bytes = read_whole(&self.offset_index_file, &self.path(SegmentFile::Index))?;
        let offset = OffsetIndex::parse(
            self.base_offset,
            &offset_bytes,
            self.max_index_bytes,
            self.size(),
            false,
        )
        .map_err(|e| invalid("offset index", e))?;
        let time_bytes = read_whole(&self.time_index_file, &self.path(SegmentFile::TimeIndex))?;
        let time = TimeIndex::parse(
            self.base_offset,
            &time_bytes,
            self.max_index_bytes,
            i64::MAX - 1,
            false,
        )
        .map_err(|e| invalid("time index", e))?;
        Ok(Indexes { offset, time })
    }

    /// Fills `buf` from `position` of an index file (a whole entry, or an error).
    fn read_index_entry(
        &self,
        file: &File,
        which: SegmentFile,
        position: u64,
        buf: &mut [u8],
    ) -> io::Result<()> {
        let n = fio::read_at(file, &self.path(which), buf, position)?;
        if n < buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "index file shorter than its entries",
            ));
        }
        Ok(())
    }

    /// Where a scan for `offset` starts, and where the batch holding it starts at the latest
    /// (the position of the next index entry, when there is one).
    pub fn lookup(&self, offset: i64) -> io::Result<(u64, Option<u64>)> {
        let state = self.state();
        let (floor, next) = match &*state {
            IndexResidence::Memory(indexes) => (
                indexes.offset.lookup(offset),
                indexes.offset.entry_after(offset),
            ),
            IndexResidence::Sealed { offset_entries, .. } => {
                let read = |position: u64, buf: &mut [u8]| {
                    self.read_index_entry(
                        &self.offset_index_file,
                        SegmentFile::Index,
                        position,
                        buf,
                    )
                };
                crate::index::search_offset_file(&read, self.base_offset, *offset_entries, offset)?
            }
        };
        Ok((
            u64::from(floor.position),
            next.map(|entry| u64::from(entry.position)),
        ))
    }

    /// The last time-index entry whose timestamp is below `timestamp`.
    pub fn time_lookup_below(&self, timestamp: i64) -> io::Result<Option<TimestampOffset>> {
        match &*self.state() {
            IndexResidence::Memory(indexes) => Ok(indexes.time.lookup_below(timestamp)),
            IndexResidence::Sealed { time_entries, .. } => {
                let read = |position: u64, buf: &mut [u8]| {
                    self.read_index_entry(
                        &self.time_index_file,
                        SegmentFile::TimeIndex,
                        position,
                        buf,
                    )
                };
                crate::index::search_time_file(&read, self.base_offset, *time_entries, timestamp)
            }
        }
    }

    /// Reads into `buf` from `position`; returns the bytes read (short at the end of file).
    pub(crate) fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        fio::read_at(&self.log, &self.path(SegmentFile::Log), buf, position)
    }

    /// Appends up to `len` bytes of the log file at `position` to `buf`; returns the count.
    pub(crate) fn read_append_at(
        &self,
        buf: &mut Vec<u8>,
        len: usize,
        position: u64,
    ) -> io::Result<usize> {
        fio::read_append_at(&self.log, &self.path(SegmentFile::Log), buf, len, position)
    }

    /// Writes batches at the segment's end and updates indexes and stats; publishes the new
    /// committed size only after the write completed. The concatenation of `pieces` holds
    /// whole batches whose headers are `batches` (positions relative to that concatenation).
    /// Only the log's appender and the cleaner call this.
    pub(crate) fn append(
        &self,
        pieces: &mut [io::IoSlice<'_>],
        batches: &[(usize, BatchHeader)],
        index_interval_bytes: u64,
    ) -> io::Result<()> {
        let position = self.size();
        let len: usize = pieces.iter().map(|piece| piece.len()).sum();
        fio::write_all_vectored_at(&self.log, &self.path(SegmentFile::Log), pieces, position)?;
        let (offset_entries, time_entries, offset_slot, time_slot) =
            self.with_memory(|indexes| {
                let offset_slot = indexes.offset.len();
                let time_slot = indexes.time.len();
                let mut stats = lock(&self.stats);
                let mut builder = IndexBuilder {
                    indexes,
                    stats: &mut stats,
                    index_interval_bytes,
                    new_offset_entries: Vec::new(),
                    new_time_entries: Vec::new(),
                };
                for (relative_position, header) in batches {
                    builder.on_batch(position + *relative_position as u64, header);
                }
                (
                    builder.new_offset_entries,
                    builder.new_time_entries,
                    offset_slot,
                    time_slot,
                )
            })?;
        self.committed_size
            .store(position + len as u64, Ordering::Release);
        if !offset_entries.is_empty() {
            fio::write_all_at(
                &self.offset_index_file,
                &self.path(SegmentFile::Index),
                &offset_entries,
                (offset_slot * OFFSET_INDEX_ENTRY_SIZE) as u64,
            )?;
        }
        if !time_entries.is_empty() {
            fio::write_all_at(
                &self.time_index_file,
                &self.path(SegmentFile::TimeIndex),
                &time_entries,
                (time_slot * TIME_INDEX_ENTRY_SIZE) as u64,
            )?;
        }
        Ok(())
    }

    /// `fdatasync` of the log file.
    pub(crate) fn flush(&self) -> io::Result<()> {
        fio::sync_data(&self.log, &self.path(SegmentFile::Log))?;
        self.sync_txn_index()
    }

    /// `fsync` of all three files (after their sizes changed).
    pub(crate) fn sync_all(&self) -> io::Result<()> {
        fio::sync_all(&self.log, &self.path(SegmentFile::Log))?;
        fio::sync_all(&self.offset_index_file, &self.path(SegmentFile::Index))?;
        fio::sync_all(&self.time_index_file, &self.path(SegmentFile::TimeIndex))?;
        self.sync_txn_index()
    }

    /// Called when the segment stops being the active one (roll) and when the log closes:
    /// records the largest timestamp in the time index's reserved slot and trims both index
    /// files to their entries.
    pub(crate) fn on_become_inactive(&self) -> io::Result<()> {
        if self.is_sealed() {
            return Ok(());
        }
        let (offset_len, time_len, time_entry) = self.with_memory(|indexes| {
            let stats = *lock(&self.stats);
            let mut time_entry = None;
            if stats.max_timestamp >= 0 {
                let slot = indexes.time.len();
                if let Some(entry) = indexes.time.maybe_append(
                    stats.max_timestamp,
                    stats.offset_of_max_timestamp,
                    false,
                ) {
                    time_entry = Some((slot, entry));
                }
            }
            (
                indexes.offset.len() * OFFSET_INDEX_ENTRY_SIZE,
                indexes.time.len() * TIME_INDEX_ENTRY_SIZE,
                time_entry,
            )
        })?;
        if let Some((slot, entry)) = time_entry {
            fio::write_all_at(
                &self.time_index_file,
                &self.path(SegmentFile::TimeIndex),
                &entry,
                (slot * TIME_INDEX_ENTRY_SIZE) as u64,
            )?;
        }
        fio::set_len(
            &self.offset_index_file,
            &self.path(SegmentFile::Index),
            offset_len as u64,
        )?;
        fio::set_len(
            &self.time_index_file,
            &self.path(SegmentFile::TimeIndex),
            time_len as u64,
        )?;
        self.seal_indexes();
        Ok(())
    }

    /// Extends the index files back to their preallocated size, for the active segment after
    /// an open. The segment takes appends again, so its entries come back into memory first.
    pub(crate) fn preallocate_indexes(&self) -> io::Result<()> {
        self.with_memory(|_| ())?;
        fio::set_len(
            &self.offset_index_file,
            &self.path(SegmentFile::Index),
            preallocated_len(self.max_index_bytes, OFFSET_INDEX_ENTRY_SIZE),
        )?;
        fio::set_len(
            &self.time_index_file,
            &self.path(SegmentFile::TimeIndex),
            preallocated_len(self.max_index_bytes, TIME_INDEX_ENTRY_SIZE),
        )
    }

    /// Loads the index files and checks them against the log; on success the segment's stats
    /// are known. Returns the reason when the indexes cannot be trusted (then call
    /// [`LogSegment::rebuild_indexes`]). `offset_limit` is the first offset the segment may
    /// not hold (the next segment's base offset, or `i64::MAX` for the last one).
    pub(crate) fn load_indexes(
        &self,
        offset_limit: i64,
        index_interval_bytes: u64,
        allow_zero_tail: bool,
    ) -> io::Result<Result<(), String>> {
        if self.index_file_missing {
            return Ok(Err("index file missing".to_owned()));
        }
        let size = self.size();
        let offset_bytes = read_whole(&self.offset_index_file, &self.path(SegmentFile::Index))?;
        let offset_index = match OffsetIndex::parse(
            self.base_offset,
            &offset_bytes,
            self.max_index_bytes,
            size,
            allow_zero_tail,
        ) {
            Ok(index) => index,
            Err(error) => return Ok(Err(format!("offset index: {error}"))),
        };
        if let Some(last) = offset_index.last()
            && last.offset >= offset_limit
        {
            return Ok(Err(format!(
                "offset index: {}",
                IndexError::OutsideSegment(offset_index.len() - 1)
            )));
        }
        let time_bytes = read_whole(&self.time_index_file, &self.path(SegmentFile::TimeIndex))?;
        let time_index = match TimeIndex::parse(
            self.base_offset,
            &time_bytes,
            self.max_index_bytes,
            offset_limit.saturating_sub(1),
            allow_zero_tail,
        ) {
            Ok(index) => index,
            Err(error) => return Ok(Err(format!("time index: {error}"))),
        };

        // Walk the batches after the last offset-index entry: the entry must point at a batch
        // ending at its offset, and no batch after it may have been due an entry. This catches
        // indexes that are short (entries lost at the end) or belong to other data, at the cost
        // of reading about one index interval.
        let (start, start_offset) = match offset_index.last() {
            Some(entry) => (u64::from(entry.position), Some(entry.offset)),
            None => (0, None),
        };
        let mut stats = SegmentStats::empty(self.base_offset);
        let time_index_max = time_index.last().map_or(-1, |entry| entry.timestamp);
        if let Some(entry) = time_index.last() {
            stats.max_timestamp = entry.timestamp;
            stats.offset_of_max_timestamp = entry.offset;
        }
        stats.first_batch_max_timestamp = self.first_batch_header()?.map(|h| h.max_timestamp);
        let mut problem = None;
        let mut first = true;
        let mut bytes_since = 0u64;
        let end = scan(
            &self.log,
            &self.path(SegmentFile::Log),
            start,
            size,
            false,
            |_, header, _| {
                if first {
                    first = false;
                    if let Some(offset) = start_offset
                        && header.last_offset() != offset
                    {
                        problem = Some("last index entry does not point at its batch".to_owned());
                        return false;
                    }
                } else if bytes_since > index_interval_bytes {
                    problem = Some("index is missing entries at its end".to_owned());
                    return false;
                }
                if header.base_offset < self.base_offset || header.last_offset() >= offset_limit {
                    problem = Some("batch offsets outside the segment".to_owned());
                    return false;
                }
                bytes_since += header.size() as u64;
                if header.max_timestamp > stats.max_timestamp {
                    stats.max_timestamp = header.max_timestamp;
                    stats.offset_of_max_timestamp = header.last_offset();
                }
                stats.next_offset = header.next_offset();
                true
            },
        )?;
        if let Some(problem) = problem {
            return Ok(Err(problem));
        }
        if end.valid_end != size {
            return Ok(Err("log does not end with a whole batch".to_owned()));
        }
        if start_offset.is_none() && size > 0 && stats.next_offset == self.base_offset {
            return Ok(Err("no batch found in a non-empty log".to_owned()));
        }
        if let Some(last) = time_index.last()
            && last.offset >= stats.next_offset
        {
            return Ok(Err("time index points past the log end".to_owned()));
        }
        // A segment that was closed or rolled recorded its largest timestamp as the last
        // time-index entry; a larger timestamp after it means the time index lost entries.
        if stats.max_timestamp > time_index_max {
            return Ok(Err("time index is missing its last entry".to_owned()));
        }
        stats.bytes_since_last_index_entry = bytes_since;
        self.set_indexes(Indexes {
            offset: offset_index,
            time: time_index,
        });
        *lock(&self.stats) = stats;
        Ok(Ok(()))
    }

    /// Reads the header of the first batch, if the segment has one.
    pub(crate) fn first_batch_header(&self) -> io::Result<Option<BatchHeader>> {
        let mut buf = [0u8; RECORD_BATCH_OVERHEAD];
        if self.size() < RECORD_BATCH_OVERHEAD as u64 {
            return Ok(None);
        }
        let n = self.read_at(&mut buf, 0)?;
        Ok(BatchHeader::parse(&buf[..n]).ok())
    }

    /// Scans the log, validating every batch when `verify` is set (length, magic, CRC32C,
    /// offsets increasing from `min_base_offset` and inside the segment), rebuilds the
    /// indexes and stats from the batches, and truncates the log after the last valid batch.
    /// Returns how the scan ended.
    pub(crate) fn recover(
        &self,
        min_base_offset: i64,
        offset_limit: i64,
        index_interval_bytes: u64,
        verify: bool,
    ) -> io::Result<RecoveryOutcome> {
        let file_size = self.log.metadata()?.len();
        let mut indexes = Indexes {
            offset: OffsetIndex::new(self.base_offset, self.max_index_bytes),
            time: TimeIndex::new(self.base_offset, self.max_index_bytes),
        };
        let mut stats = SegmentStats::empty(self.base_offset);
        let mut expected_min_base = min_base_offset.max(self.base_offset);
        let mut problem = None;
        let mut builder = IndexBuilder {
            indexes: &mut indexes,
            stats: &mut stats,
            index_interval_bytes,
            new_offset_entries: Vec::new(),
            new_time_entries: Vec::new(),
        };
        let end = scan(
            &self.log,
            &self.path(SegmentFile::Log),
            0,
            file_size,
            verify,
            |position, header, _| {
                if header.base_offset < expected_min_base
                    || header.last_offset() >= offset_limit
                    || crate::index::relative_offset(self.base_offset, header.last_offset())
                        .is_none()
                {
                    problem = Some(format!(
                        "batch at {position} has offsets {}..={} (expected from {expected_min_base})",
                        header.base_offset,
                        header.last_offset()
                    ));
                    return false;
                }
                expected_min_base = header.next_offset();
                builder.on_batch(position, header);
                true
            },
        )?;
        let problem = problem.or(end.error.map(|error| error.to_string()));
        let truncated = end.valid_end < file_size;
        if truncated {
            fio::set_len(&self.log, &self.path(SegmentFile::Log), end.valid_end)?;
        }
        self.committed_size.store(end.valid_end, Ordering::Release);
        self.write_index_files(&indexes)?;
        self.set_indexes(indexes);
        // A marker cut by the truncation takes its aborted transaction with it.
        self.truncate_txn_index(stats.next_offset)?;
        *lock(&self.stats) = stats;
        Ok(RecoveryOutcome {
            valid_bytes: end.valid_end,
            truncated_bytes: file_size - end.valid_end,
            problem: if truncated { problem } else { None },
        })
    }

    /// Rebuilds the indexes from the log without validating batches (a clean segment whose
    /// index files were missing or inconsistent).
    pub(crate) fn rebuild_indexes(
        &self,
        offset_limit: i64,
        index_interval_bytes: u64,
    ) -> io::Result<RecoveryOutcome> {
        self.recover(self.base_offset, offset_limit, index_interval_bytes, false)
    }

    /// Rewrites both index files from `indexes` (trimmed to their entries).
    fn write_index_files(&self, indexes: &Indexes) -> io::Result<()> {
        let offset_bytes = indexes.offset.encode();
        fio::set_len(
            &self.offset_index_file,
            &self.path(SegmentFile::Index),
            offset_bytes.len() as u64,
        )?;
        fio::write_all_at(
            &self.offset_index_file,
            &self.path(SegmentFile::Index),
            &offset_bytes,
            0,
        )?;
        let time_bytes = indexes.time.encode();
        fio::set_len(
            &self.time_index_file,
            &self.path(SegmentFile::TimeIndex),
            time_bytes.len() as u64,
        )?;
        fio::write_all_at(
            &self.time_index_file,
            &self.path(SegmentFile::TimeIndex),
            &time_bytes,
            0,
        )
    }

    /// Truncates the log to the batches below `offset` (a batch holding `offset` goes too)
    /// and rebuilds the indexes and stats. Returns the bytes removed.
    pub(crate) fn truncate_to_offset(
        &self,
        offset: i64,
        index_interval_bytes: u64,
    ) -> io::Result<u64> {
        let size = self.size();
        let (start, _) = self.lookup(offset.saturating_sub(1))?;
        let mut cut = None;
        scan(
            &self.log,
            &self.path(SegmentFile::Log),
            start,
            size,
            false,
            |position, header, _| {
                if header.last_offset() >= offset {
                    cut = Some(position);
                    return false;
                }
                true
            },
        )?;
        let Some(cut) = cut else {
            return Ok(0);
        };
        self.committed_size.store(cut, Ordering::Release);
        fio::set_len(&self.log, &self.path(SegmentFile::Log), cut)?;
        self.rebuild_indexes(i64::MAX, index_interval_bytes)?;
        Ok(size - cut)
    }

    /// Records that the files were renamed to carry `extra`.
    pub(crate) fn set_suffix(&self, extra: &'static str) {
        *lock(&self.suffix) = extra;
    }

    /// Renames the segment's files from its current suffix to `extra` ("" = live names), the
    /// log file last: recovery keys on the `.log` file's name, so a crash in between leaves
    /// at worst index files to rebuild.
    pub(crate) fn rename_files(&self, extra: &'static str) -> io::Result<()> {
        let mut suffix = lock(&self.suffix);
        for file in [
            SegmentFile::Index,
            SegmentFile::TimeIndex,
            SegmentFile::TxnIndex,
            SegmentFile::Log,
        ] {
            let from = segment_path(&self.dir, self.base_offset, file, *suffix);
            let to = segment_path(&self.dir, self.base_offset, file, extra);
            rename_segment_file(file, &from, &to)?;
        }
        *suffix = extra;
        Ok(())
    }

    /// Deletes the segment's files: renamed to `.deleted` first (so that a crash in between
    /// leaves files the next open recognises and removes), then unlinked. Readers holding the
    /// segment keep reading the unlinked files.
    pub(crate) fn delete_files(&self) -> io::Result<()> {
        self.rename_files(DELETED_SUFFIX)?;
        for file in SegmentFile::ALL {
            fio::remove_file(&self.path(file))?;
        }
        Ok(())
    }
}

impl LogSegment {
    /// Records an aborted transaction whose ABORT marker was appended to this segment, in
    /// memory and at the end of the `.txnindex` file (created on the first entry). An entry
    /// whose marker the index already holds is skipped: replaying the producer state after a
    /// restart or a truncation meets markers that were indexed before.
    pub(crate) fn append_aborted_txn(&self, entry: AbortedTxn) -> io::Result<()> {
        let mut state = lock(&self.txn_index);
        if state
            .index
            .entries()
            .last()
            .is_some_and(|last| last.last_offset >= entry.last_offset)
        {
            return Ok(());
        }
        let path = self.path(SegmentFile::TxnIndex);
        let position = (state.index.entries().len() * txn_index::ENTRY_BYTES) as u64;
        let file = match state.file.take() {
            Some(file) => file,
            None => fio::open_rw(&path, true, false)?,
        };
        let written = fio::write_all_at(&file, &path, &entry.encode(), position);
        state.file = Some(file);
        written?;
        state.index.push(entry);
        Ok(())
    }

    /// The aborted transactions whose marker is in this segment, in marker order.
    pub fn aborted_txns(&self) -> Vec<AbortedTxn> {
        lock(&self.txn_index).index.entries().to_vec()
    }

    /// See [`TxnIndex::collect`].
    pub(crate) fn collect_aborted_txns(
        &self,
        fetch_offset: i64,
        upper_bound: i64,
        out: &mut Vec<AbortedTxn>,
    ) -> bool {
        lock(&self.txn_index)
            .index
            .collect(fetch_offset, upper_bound, out)
    }

    /// Drops the entries whose marker is at or after `offset`, in memory and in the file.
    pub(crate) fn truncate_txn_index(&self, offset: i64) -> io::Result<()> {
        let mut state = lock(&self.txn_index);
        if !state.index.truncate_to(offset) {
            return Ok(());
        }
        let len = (state.index.entries().len() * txn_index::ENTRY_BYTES) as u64;
        let path = self.path(SegmentFile::TxnIndex);
        let file = match state.file.take() {
            Some(file) => file,
            None => fio::open_rw(&path, true, false)?,
        };
        let cut = fio::set_len(&file, &path, len);
        state.file = Some(file);
        cut
    }

    /// Replaces the index with `entries` (the cleaner's output segment inherits the entries
    /// of the segments it replaces) and writes the whole file.
    pub(crate) fn set_aborted_txns(&self, entries: &[AbortedTxn]) -> io::Result<()> {
        let mut state = lock(&self.txn_index);
        let mut index = TxnIndex::default();
        for entry in entries {
            index.push(*entry);
        }
        if index.entries().is_empty() && state.file.is_none() {
            state.index = index;
            return Ok(());
        }
        let path = self.path(SegmentFile::TxnIndex);
        let file = match state.file.take() {
            Some(file) => file,
            None => fio::open_rw(&path, true, false)?,
        };
        let bytes = index.encode();
        let written = fio::set_len(&file, &path, bytes.len() as u64)
            .and_then(|()| fio::write_all_at(&file, &path, &bytes, 0));
        state.file = Some(file);
        written?;
        state.index = index;
        Ok(())
    }

    fn sync_txn_index(&self) -> io::Result<()> {
        let state = lock(&self.txn_index);
        match &state.file {
            Some(file) => fio::sync_all(file, &self.path(SegmentFile::TxnIndex)),
            None => Ok(()),
        }
    }
}

/// Loads a `.txnindex` file if there is one. A torn last entry (a crash mid-append) is cut
/// from the file. An index that cannot be read (an unknown entry version, entries out of
/// order) is discarded with a warning rather than failing the log: losing it only makes
/// read_committed consumers see records of aborted transactions below the recovery point,
/// which is what a log without the index would do.
fn load_txn_index(path: &Path) -> io::Result<TxnIndexState> {
    let file = match std::fs::metadata(path) {
        Ok(_) => fio::open_rw(path, false, false)?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(TxnIndexState::default());
        }
        Err(error) => return Err(error),
    };
    let bytes = read_whole(&file, path)?;
    let index = TxnIndex::decode(&bytes).unwrap_or_else(|error| {
        tracing::warn!(path = %path.display(), %error, "discarding an unreadable transaction index");
        TxnIndex::default()
    });
    let len = (index.entries().len() * txn_index::ENTRY_BYTES) as u64;
    if len != bytes.len() as u64 {
        fio::set_len(&file, path, len)?;
    }
    Ok(TxnIndexState {
        index,
        file: Some(file),
    })
}

/// Renames one file of a segment; the optional `.txnindex` may be absent.
pub(crate) fn rename_segment_file(file: SegmentFile, from: &Path, to: &Path) -> io::Result<()> {
    match fio::rename(from, to) {
        Err(error) if file == SegmentFile::TxnIndex && error.kind() == io::ErrorKind::NotFound => {
            Ok(())
        }
        other => other,
    }
}

/// The outcome of recovering or re-indexing a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryOutcome {
    pub valid_bytes: u64,
    pub truncated_bytes: u64,
    /// Why the scan stopped early, when it did.
    pub problem: Option<String>,
}

fn read_whole(file: &File, path: &Path) -> io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX).min(1 << 30)];
    let n = fio::read_at(file, path, &mut buf, 0)?;
    buf.truncate(n);
    Ok(buf)
}

/// Where a scan ended.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// Position after the last batch that was whole, valid, and accepted by the visitor.
    pub valid_end: u64,
    /// The batch error that stopped the scan, if one did.
    pub error: Option<batch::BatchError>,
}

/// Reads `[start, end)` of a log file in chunks and calls `visit(position, header, bytes)` for
/// each whole batch (validated with CRC32C when `verify` is set) until it returns false, a
/// batch is invalid or cut by `end`, or the range ends.
pub(crate) fn scan(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    verify: bool,
    mut visit: impl FnMut(u64, &BatchHeader, &[u8]) -> bool,
) -> io::Result<ScanEnd> {
    let mut position = start;
    let mut buf = Vec::new();
    while position < end {
        let remaining = end - position;
        let want = remaining.min(SCAN_CHUNK_BYTES as u64) as usize;
        buf.resize(want, 0);
        let n = fio::read_at(file, path, &mut buf, position)?;
        buf.truncate(n);
        let mut offset = 0usize;
        while offset < buf.len() {
            let rest = &buf[offset..];
            let header = match BatchHeader::parse(rest) {
                Ok(header) => header,
                Err(error) => {
                    let at = position + offset as u64;
                    // The range ends inside this header, or the file is shorter than the range.
                    if at + RECORD_BATCH_OVERHEAD as u64 > end || offset == 0 {
                        return Ok(ScanEnd {
                            valid_end: at,
                            error: Some(error),
                        });
                    }
                    // The header straddles the chunk end: read the next chunk from here.
                    break;
                }
            };
            if let Err(error) = header.check(Validation::Stored) {
                return Ok(ScanEnd {
                    valid_end: position + offset as u64,
                    error: Some(error),
                });
            }
            let size = header.size();
            if position + (offset + size) as u64 > end {
                return Ok(ScanEnd {
                    valid_end: position + offset as u64,
                    error: Some(batch::BatchError::Truncated {
                        needed: size,
                        available: (end - position - offset as u64) as usize,
                    }),
                });
            }
            if size > rest.len() {
                if offset == 0 {
                    // A batch larger than the chunk: read exactly it.
                    buf.resize(size, 0);
                    let n = fio::read_at(file, path, &mut buf, position)?;
                    if n < size {
                        return Ok(ScanEnd {
                            valid_end: position,
                            error: Some(batch::BatchError::Truncated {
                                needed: size,
                                available: n,
                            }),
                        });
                    }
                    continue;
                }
                break;
            }
            let bytes = &rest[..size];
            if verify && let Err(error) = batch::validate(bytes, Validation::Stored) {
                return Ok(ScanEnd {
                    valid_end: position + offset as u64,
                    error: Some(error),
                });
            }
            if !visit(position + offset as u64, &header, bytes) {
                return Ok(ScanEnd {
                    valid_end: position + offset as u64,
                    error: None,
                });
            }
            offset += size;
        }
        if offset == 0 {
            // Nothing whole fits in what could be read: the file is shorter than `end`.
            return Ok(ScanEnd {
                valid_end: position,
                error: Some(batch::BatchError::Truncated {
                    needed: RECORD_BATCH_OVERHEAD,
                    available: buf.len(),
                }),
            });
        }
        position += offset as u64;
    }
    Ok(ScanEnd {
        valid_end: position,
        error: None,
    })
}

/// Why the active segment must be rolled before an append, if it must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollReason {
    /// `segment.bytes` would be exceeded.
    Size,
    /// `segment.ms` (minus jitter) passed since the first batch's timestamp.
    Time,
    /// The offset index is full.
    OffsetIndexFull,
    /// The time index is full.
    TimeIndexFull,
    /// The appended offsets would not fit a 4-byte relative offset.
    OffsetOverflow,
}

/// The inputs of the roll decision (a pure function, so that it is tested without files).
#[derive(Debug, Clone, Copy)]
pub struct RollInput {
    pub segment_size: u64,
    pub segment_base_offset: i64,
    pub first_batch_max_timestamp: Option<i64>,
    pub segment_created_ms: i64,
    pub rolling_jitter_ms: i64,
    pub offset_index_full: bool,
    pub time_index_full: bool,
    pub append_bytes: u64,
    pub append_max_timestamp: i64,
    pub append_last_offset: i64,
    pub now_ms: i64,
    pub segment_bytes: u64,
    pub segment_ms: i64,
}

/// Kafka's `LogSegment.shouldRoll`: an empty segment is never rolled except for offsets that
/// cannot be expressed relative to its base.
pub fn should_roll(input: &RollInput) -> Option<RollReason> {
    if crate::index::relative_offset(input.segment_base_offset, input.append_last_offset).is_none()
    {
        return Some(RollReason::OffsetOverflow);
    }
    if input.segment_size == 0 {
        return None;
    }
    if input.segment_size > input.segment_bytes.saturating_sub(input.append_bytes) {
        return Some(RollReason::Size);
    }
    let waited = match input.first_batch_max_timestamp {
        Some(first) if first >= 0 => input.append_max_timestamp.saturating_sub(first),
        _ => input.now_ms.saturating_sub(input.segment_created_ms),
    };
    if waited > input.segment_ms.saturating_sub(input.rolling_jitter_ms) {
        return Some(RollReason::Time);
    }
    if input.offset_index_full {
        return Some(RollReason::OffsetIndexFull);
    }
    if input.time_index_full {
        return Some(RollReason::TimeIndexFull);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn input() -> RollInput {
        RollInput {
            segment_size: 1000,
            segment_base_offset: 0,
            first_batch_max_timestamp: Some(10_000),
            segment_created_ms: 0,
            rolling_jitter_ms: 0,
            offset_index_full: false,
            time_index_full: false,
            append_bytes: 100,
            append_max_timestamp: 10_500,
            append_last_offset: 50,
            now_ms: 20_000,
            segment_bytes: 2000,
            segment_ms: 1000,
        }
    }

    #[test]
    fn roll_by_size_when_the_append_would_overflow_segment_bytes() {
        assert_eq!(should_roll(&input()), None);
        let i = RollInput {
            append_bytes: 1001,
            ..input()
        };
        assert_eq!(should_roll(&i), Some(RollReason::Size));
        let i = RollInput {
            append_bytes: 1000,
            ..input()
        };
        assert_eq!(should_roll(&i), None, "exactly full is allowed");
    }

    #[test]
    fn roll_by_time_is_measured_from_the_first_batch_timestamp_with_jitter() {
        let i = RollInput {
            append_max_timestamp: 11_001,
            ..input()
        };
        assert_eq!(should_roll(&i), Some(RollReason::Time));
        let i = RollInput {
            append_max_timestamp: 11_000,
            ..input()
        };
        assert_eq!(should_roll(&i), None);
        let i = RollInput {
            append_max_timestamp: 10_901,
            rolling_jitter_ms: 100,
            ..input()
        };
        assert_eq!(should_roll(&i), Some(RollReason::Time));
        // Without timestamps, the wall clock since creation counts.
        let i = RollInput {
            first_batch_max_timestamp: Some(-1),
            now_ms: 1001,
            ..input()
        };
        assert_eq!(should_roll(&i), Some(RollReason::Time));
    }

    #[test]
    fn roll_when_an_index_is_full_or_offsets_overflow() {
        let i = RollInput {
            offset_index_full: true,
            ..input()
        };
        assert_eq!(should_roll(&i), Some(RollReason::OffsetIndexFull));
        let i = RollInput {
            time_index_full: true,
            ..input()
        };
        assert_eq!(should_roll(&i), Some(RollReason::TimeIndexFull));
        let i = RollInput {
            append_last_offset: i64::from(i32::MAX) + 1,
            ..input()
        };
        assert_eq!(should_roll(&i), Some(RollReason::OffsetOverflow));
    }

    #[test]
    fn an_empty_segment_is_never_rolled_for_size_or_time() {
        let i = RollInput {
            segment_size: 0,
            append_bytes: 1 << 40,
            append_max_timestamp: i64::MAX,
            ..input()
        };
        assert_eq!(should_roll(&i), None);
    }

    #[test]
    fn file_names_are_twenty_digits() {
        assert_eq!(file_stem(42), "00000000000000000042");
        assert_eq!(parse_stem("00000000000000000042"), Some(42));
        assert_eq!(parse_stem("42"), None);
        assert_eq!(parse_stem("0000000000000000004x"), None);
    }

    proptest! {
        #[test]
        fn size_roll_matches_the_model(size in 1u64..10_000, append in 0u64..10_000, max in 1u64..10_000) {
            let i = RollInput { segment_size: size, append_bytes: append, segment_bytes: max, ..input() };
            let rolled = should_roll(&i) == Some(RollReason::Size);
            prop_assert_eq!(rolled, size + append > max);
        }
    }
}
