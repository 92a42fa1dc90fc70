//! The metadata log's entries and vote on local files: openraft's `RaftLogStorage`.
//!
//! ```text
//!  openraft ──append / truncate / purge / save_vote / save_committed──▶ LogStore
//!                                                                          │
//!        1. update the in-memory LogIndex (shared with every LogReader) ◀──┤
//!        2. queue the file write, in call order ───▶ writer thread ──▶ entries.log, vote, …
//!                                                          │ fdatasync
//!                                                          ▼
//!                                      LogFlushed callback (append) / oneshot (the rest)
//! ```
//!
//! `open` reads every file back, drops a torn tail, and rebuilds the index; nothing is read
//! from disk after that.

use std::fs::{self, OpenOptions};
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, OptionalSend, RaftLogReader, StorageIOError};

use super::frame::{FRAME_HEADER_BYTES, remove_stale_tmp};
use super::frame::{FrameRead, encode_frame, encode_state, read_frame, read_state};
use super::log_index::{self, FileChange, LogIndex, LogReader, SharedIndex};
use super::writer::Writer;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const LOG_FILE: &str = "entries.log";
const VOTE_FILE: &str = "vote";
const COMMITTED_FILE: &str = "committed";
const PURGED_FILE: &str = "purged";

/// The largest entry the log accepts. One entry is one metadata batch (a topic with all its
/// partitions); a larger frame header on disk means damage.
const ENTRY_PAYLOAD_BYTES_MAX: usize = 64 * 1024 * 1024;

/// After a purge, the log file is rewritten with only the kept entries once dead frames take
/// at least this many bytes, or at least as many as the kept entries: the rewrite then costs
/// no more than the space it gives back.
const RECLAIM_BYTES_MIN: u64 = 1024 * 1024;

/// The metadata log's storage: entries, vote, committed and last purged log ids.
///
/// # Files (in the directory given to [`LogStore::open`])
///
/// Every file is a sequence of frames (layout on `frame::encode_frame`):
///
/// ```text
/// offset 0  u32 BE  payload length in bytes
/// offset 4  u32 BE  CRC32C (Castagnoli) of the payload
/// offset 8  [u8]    payload: JSON
/// ```
///
/// - `entries.log`: one frame per entry, appended in index order; the payload is the
///   `openraft::Entry` as JSON, e.g. `{"log_id":{"leader_id":{"term":1,"node_id":1},
///   "index":7},"payload":{"Normal":[{"type":"cluster","cluster_id":"c7"}]}}`. Frames of
///   purged entries stay at the front until a purge finds them worth reclaiming and rewrites
///   the file; `open` skips frames at or below the last purged index. `open` stops at the
///   first frame that is incomplete or fails its checksum and cuts the file there, with a
///   warning: a torn tail was never fsynced, so nobody was told it was durable. A damaged
///   frame in the middle is treated the same way (as Kafka's log recovery does): this node
///   loses the entries from there on and the leader sends them again.
/// - `vote`: one frame, the `openraft::Vote` as JSON.
/// - `committed`: one frame, the committed `Option<LogId>` as JSON (`null` when none).
/// - `purged`: one frame, the last purged `LogId` as JSON.
///
/// The last three are replaced whole (temp file, fsync, rename, fsync the directory); a
/// damaged one is an error, not something to skip. `*.tmp` files are leftovers of a crash
/// before a rename and are removed on open.
pub struct LogStore {
    dir: PathBuf,
    index: SharedIndex,
    writer: Writer,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

/// What `open` read back from disk.
struct Recovered {
    index: LogIndex,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

impl LogStore {
    /// Opens (creating it if missing) the metadata log in `dir`, e.g. `<data dir>/metadata/raft`.
    pub async fn open(dir: &Path) -> Result<LogStore, StorageError> {
        let dir = dir.to_path_buf();
        let task = tokio::task::spawn_blocking(move || {
            let recovered = recover(&dir)?;
            let writer = Writer::spawn(dir.clone(), LOG_FILE)?;
            Ok::<_, io::Error>((dir, recovered, writer))
        });
        let (dir, recovered, writer) = task
            .await
            .map_err(|e| StorageIOError::read_logs(AnyError::error(e)))?
            .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
        Ok(LogStore {
            dir,
            index: Arc::new(RwLock::new(recovered.index)),
            writer,
            vote: recovered.vote,
            committed: recovered.committed,
        })
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of the frames of the entries currently kept.
    pub fn log_bytes(&self) -> u64 {
        log_index::read(&self.index).live_bytes()
    }

    /// A cloneable read handle, usable without `&mut` access to the store.
    pub fn reader(&self) -> LogReader {
        LogReader::new(Arc::clone(&self.index))
    }

    /// Rewrites the log file with only the kept entries, back to back.
    async fn rewrite(&mut self) -> Result<(), StorageError> {
        let write_err = |e: io::Error| StorageIOError::write_logs(AnyError::new(&e));
        let encoded = encode_entries(log_index::read(&self.index).kept());
        let (frames, sizes) = encoded.map_err(write_err)?;
        self.writer.replace_log(frames).await.map_err(write_err)?;
        log_index::write(&self.index).rewritten(&sizes);
        Ok(())
    }
}

/// Frames `entries` back to back; returns the frames and the length of each.
fn encode_entries<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
) -> io::Result<(Vec<u8>, Vec<u64>)> {
    let mut frames = Vec::new();
    let mut sizes = Vec::new();
    for entry in entries {
        let start = frames.len();
        let payload = serde_json::to_vec(entry)?;
        encode_frame(&payload, ENTRY_PAYLOAD_BYTES_MAX, &mut frames)
            .map_err(|e| io::Error::new(e.kind(), format!("entry {}: {e}", entry.log_id)))?;
        sizes.push((frames.len() - start) as u64);
    }
    Ok((frames, sizes))
}

/// Reads every file of the log in `dir` back (the layout is on [`LogStore`]).
fn recover(dir: &Path) -> io::Result<Recovered> {
    fs::create_dir_all(dir)?;
    for name in [LOG_FILE, VOTE_FILE, COMMITTED_FILE, PURGED_FILE] {
        remove_stale_tmp(dir, name)?;
    }
    let vote = read_state(dir, VOTE_FILE)?;
    let committed = read_state::<Option<LogId>>(dir, COMMITTED_FILE)?.flatten();
    let last_purged = read_state(dir, PURGED_FILE)?;
    let index = read_entries(dir, last_purged)?;
    Ok(Recovered {
        index,
        vote,
        committed,
    })
}

/// Replays `entries.log`, cutting it at the first torn or corrupt frame.
fn read_entries(dir: &Path, last_purged: Option<LogId>) -> io::Result<LogIndex> {
    let path = dir.join(LOG_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut index = LogIndex::new(last_purged);
    let mut position = 0;
    let stop = loop {
        let rest = &bytes[position..];
        match read_frame(rest, ENTRY_PAYLOAD_BYTES_MAX) {
            FrameRead::Complete {
                payload,
                frame_bytes,
            } => {
                let entry: Entry = serde_json::from_slice(payload).map_err(|e| {
                    invalid(
                        &path,
                        position,
                        format!("an entry that passed its checksum: {e}"),
                    )
                })?;
                keep_or_skip(&mut index, entry, frame_bytes as u64);
                position += frame_bytes;
            }
            FrameRead::Incomplete if rest.is_empty() => break None,
            FrameRead::Incomplete if rest.len() < FRAME_HEADER_BYTES => {
                break Some("the file ends inside a frame header".to_string());
            }
            FrameRead::Incomplete => break Some("the file ends inside a frame".to_string()),
            FrameRead::Corrupt(why) => break Some(why),
        }
    };
    if let Some(reason) = stop {
        let bytes_dropped = bytes.len() - position;
        tracing::warn!(
            file = %path.display(),
            position,
            bytes_dropped,
            %reason,
            "cutting the metadata log at a torn or corrupt frame: it was never acknowledged"
        );
        let file = OpenOptions::new().write(true).open(&path)?;
        file.set_len(position as u64)?;
        file.sync_all()?;
    }
    debug_assert_eq!(index.end_position(), position as u64);
    Ok(index)
}

/// Adds a replayed entry to the index, or skips it when it was purged before the crash.
fn keep_or_skip(index: &mut LogIndex, entry: Entry, frame_bytes: u64) {
    if index
        .last_purged()
        .is_some_and(|p| entry.log_id.index <= p.index)
    {
        index.skip_dead_frame(frame_bytes);
        return;
    }
    // openraft never writes a hole, so one means a bug; the index keeps what was written, as
    // it did before the restart, and openraft's own checks decide what to make of it.
    if let Some(last) = index.last_log_id()
        && entry.log_id.index != last.index + 1
    {
        tracing::warn!(
            entry = %entry.log_id,
            previous = %last,
            "the metadata log is not consecutive"
        );
    }
    index.push(entry, frame_bytes);
}

fn invalid(path: &Path, position: usize, why: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} at byte {position}: {why}", path.display()),
    )
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self.reader().entries(range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let index = log_index::read(&self.index);
        Ok(LogState {
            last_purged_log_id: index.last_purged(),
            last_log_id: index.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let bytes =
            encode_state(vote).map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        self.writer
            .save_state(VOTE_FILE, bytes)
            .await
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        self.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        if committed == self.committed {
            return Ok(());
        }
        let bytes =
            encode_state(&committed).map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        self.writer
            .save_state(COMMITTED_FILE, bytes)
            .await
            .map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        self.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let write_err = |e: io::Error| StorageIOError::write_logs(AnyError::new(&e));
        let entries: Vec<Entry> = entries.into_iter().collect();
        debug_assert!(
            entries
                .windows(2)
                .all(|w| w[0].log_id.index < w[1].log_id.index),
            "openraft appends a batch in index order"
        );
        let (frames, sizes) = encode_entries(&entries).map_err(write_err)?;
        {
            let mut index = log_index::write(&self.index);
            for (entry, frame_bytes) in entries.into_iter().zip(sizes) {
                index.push(entry, frame_bytes);
            }
        }
        self.writer
            .append(frames, callback)
            .await
            .map_err(write_err)?;
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let change = log_index::write(&self.index).truncate(log_id.index);
        match change {
            FileChange::None => Ok(()),
            FileChange::CutAt(position) => self
                .writer
                .truncate(position)
                .await
                .map_err(|e| StorageIOError::write_log_entry(log_id, AnyError::new(&e)).into()),
            FileChange::Rewrite => self.rewrite().await,
        }
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let purged = log_index::read(&self.index).last_purged();
        if purged.is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        // The purged id is durable before any entry leaves memory or disk: a crash in between
        // leaves extra entries, never a hole.
        let bytes = encode_state(&log_id)
            .map_err(|e| StorageIOError::write_log_entry(log_id, AnyError::new(&e)))?;
        self.writer
            .save_state(PURGED_FILE, bytes)
            .await
            .map_err(|e| StorageIOError::write_log_entry(log_id, AnyError::new(&e)))?;
        let (dead, live) = {
            let mut index = log_index::write(&self.index);
            index.purge(log_id);
            (index.dead_bytes(), index.live_bytes())
        };
        tracing::info!(
            upto = log_id.index,
            "deleted metadata log entries covered by a snapshot"
        );
        if dead > 0 && (dead >= RECLAIM_BYTES_MIN || dead >= live) {
            self.rewrite().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
