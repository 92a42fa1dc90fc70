//! The metadata log held in memory: every entry since the last purge, where its frame sits in
//! the log file, and the last purged log id.
//!
//! The metadata log is small and bounded by snapshots, so all of it stays in memory and reads
//! never touch the disk. [`super::LogStore`] is the only writer: it changes the index before it
//! queues the matching file write, so an entry is readable as soon as `append` returns.
//! [`LogReader`] is a cheap cloneable handle that openraft's replication tasks and the
//! leader's observer service read through, without `&mut` access to the store.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use openraft::{OptionalSend, RaftLogReader};

use crate::types::{Entry, LogId, StorageError, TypeConfig};

#[derive(Debug)]
struct StoredEntry {
    entry: Entry,
    /// Byte position of the entry's frame in the log file.
    position: u64,
    /// Length of the frame, header included.
    frame_bytes: u64,
}

/// What a change of the index means for the log file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileChange {
    None,
    /// Cut the file at this position.
    CutAt(u64),
    /// Rewrite the file with the kept entries.
    Rewrite,
}

/// Entries kept since the last purge, by index.
#[derive(Debug, Default)]
pub(crate) struct LogIndex {
    entries: BTreeMap<u64, StoredEntry>,
    last_purged: Option<LogId>,
    /// Length of the log file once every queued write is done, including frames of purged
    /// entries that have not been reclaimed yet: where the next frame goes.
    end_position: u64,
    /// Bytes of the frames of `entries`.
    live_bytes: u64,
}

impl LogIndex {
    pub(crate) fn new(last_purged: Option<LogId>) -> Self {
        Self {
            last_purged,
            ..Self::default()
        }
    }

    pub(crate) fn last_purged(&self) -> Option<LogId> {
        self.last_purged
    }

    /// The last entry's id, or the last purged id when every entry was purged.
    pub(crate) fn last_log_id(&self) -> Option<LogId> {
        self.entries
            .last_key_value()
            .map(|(_, stored)| stored.entry.log_id)
            .or(self.last_purged)
    }

    pub(crate) fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    pub(crate) fn end_position(&self) -> u64 {
        self.end_position
    }

    /// Bytes of the log file that hold no kept entry: frames of purged entries, and frames
    /// an append of the same index replaced.
    pub(crate) fn dead_bytes(&self) -> u64 {
        self.end_position - self.live_bytes
    }

    /// Adds an entry whose frame of `frame_bytes` goes at the end of the file. An entry at the
    /// same index is replaced; its frame becomes dead.
    pub(crate) fn push(&mut self, entry: Entry, frame_bytes: u64) {
        let stored = StoredEntry {
            entry,
            position: self.end_position,
            frame_bytes,
        };
        self.end_position += frame_bytes;
        self.live_bytes += frame_bytes;
        if let Some(old) = self.entries.insert(stored.entry.log_id.index, stored) {
            self.live_bytes -= old.frame_bytes;
        }
    }

    /// Records a frame found on open that belongs to an entry purged earlier.
    pub(crate) fn skip_dead_frame(&mut self, frame_bytes: u64) {
        self.end_position += frame_bytes;
    }

    /// Removes the entries from `index` on and says what that means for the log file.
    pub(crate) fn truncate(&mut self, index: u64) -> FileChange {
        let removed = self.entries.split_off(&index);
        let Some(cut) = removed.values().map(|s| s.position).min() else {
            return FileChange::None;
        };
        self.live_bytes -= removed.values().map(|s| s.frame_bytes).sum::<u64>();
        // openraft appends in index order, so every kept frame lies before the cut. Only a
        // caller that appended out of order (openraft's test suite does) needs a rewrite.
        if self
            .entries
            .values()
            .all(|s| s.position + s.frame_bytes <= cut)
        {
            self.end_position = cut;
            FileChange::CutAt(cut)
        } else {
            FileChange::Rewrite
        }
    }

    /// Removes the entries up to `log_id.index` inclusive and records `log_id` as purged.
    pub(crate) fn purge(&mut self, log_id: LogId) {
        let kept = match log_id.index.checked_add(1) {
            Some(next) => self.entries.split_off(&next),
            None => BTreeMap::new(),
        };
        let removed = std::mem::replace(&mut self.entries, kept);
        self.live_bytes -= removed.values().map(|s| s.frame_bytes).sum::<u64>();
        self.last_purged = Some(log_id);
    }

    /// The kept entries in index order: what a rewritten log file holds.
    pub(crate) fn kept(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values().map(|s| &s.entry)
    }

    /// The log file was rewritten with the frames of [`Self::kept`], whose lengths are
    /// `frame_bytes`, back to back from the start.
    pub(crate) fn rewritten(&mut self, frame_bytes: &[u64]) {
        debug_assert_eq!(frame_bytes.len(), self.entries.len());
        let mut position = 0;
        for (stored, &bytes) in self.entries.values_mut().zip(frame_bytes) {
            stored.position = position;
            stored.frame_bytes = bytes;
            position += bytes;
        }
        self.end_position = position;
        self.live_bytes = position;
    }

    fn entries(&self, range: impl RangeBounds<u64>) -> Vec<Entry> {
        let Some((start, end)) = half_open(&range) else {
            return Vec::new();
        };
        let selected = match end {
            Some(end) => self.entries.range(start..end),
            None => self.entries.range(start..),
        };
        selected.map(|(_, stored)| stored.entry.clone()).collect()
    }
}

/// `[start, end)` of a range of indexes (`end` `None` for unbounded); `None` when it is empty,
/// so `BTreeMap::range` is never handed a reversed range.
fn half_open(range: &impl RangeBounds<u64>) -> Option<(u64, Option<u64>)> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    };
    match end {
        Some(end) if end <= start => None,
        _ => Some((start, end)),
    }
}

/// The shared index. The lock is never held across an `.await`.
pub(crate) type SharedIndex = Arc<RwLock<LogIndex>>;

pub(crate) fn read(index: &SharedIndex) -> RwLockReadGuard<'_, LogIndex> {
    // Updates under the lock are plain map and counter operations that do not panic, so a
    // lock poisoned by a panic elsewhere still guards a consistent index.
    index.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write(index: &SharedIndex) -> RwLockWriteGuard<'_, LogIndex> {
    index.write().unwrap_or_else(PoisonError::into_inner)
}

/// A cloneable read handle on the metadata log: openraft's `LogReader`, and what the leader
/// serves observers (broker-only nodes) from.
#[derive(Debug, Clone)]
pub struct LogReader {
    index: SharedIndex,
}

impl LogReader {
    pub(crate) fn new(index: SharedIndex) -> Self {
        Self { index }
    }

    /// The entries in `range` that are kept (purged or missing indexes are left out).
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Vec<Entry> {
        read(&self.index).entries(range)
    }

    /// The id of the last purged entry: entries up to it are only in the snapshot.
    pub fn last_purged(&self) -> Option<LogId> {
        read(&self.index).last_purged()
    }

    /// The id of the last entry, or of the last purged one when no entry is kept.
    pub fn last_log_id(&self) -> Option<LogId> {
        read(&self.index).last_log_id()
    }

    /// Bytes of the frames of the entries currently kept.
    pub fn log_bytes(&self) -> u64 {
        read(&self.index).live_bytes()
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self.entries(range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(index: u64) -> Entry {
        openraft::testing::blank_ent::<TypeConfig>(1, 0, index)
    }

    #[test]
    fn reversed_or_empty_ranges_read_nothing() {
        let mut index = LogIndex::default();
        for i in 1..=3 {
            index.push(blank(i), 10);
        }
        let (start, end) = (3, 2);
        assert!(index.entries(start..end).is_empty());
        assert!(index.entries(2..2).is_empty());
        assert_eq!(index.entries(2..=2).len(), 1);
        assert_eq!(index.entries(..).len(), 3);
        assert_eq!(
            index.entries((Bound::Excluded(u64::MAX), Bound::Unbounded)),
            Vec::new()
        );
    }

    #[test]
    fn purge_and_truncate_track_positions_and_bytes() {
        let mut index = LogIndex::default();
        for i in 1..=5 {
            index.push(blank(i), 10);
        }
        index.purge(openraft::testing::log_id(1, 0, 2));
        assert_eq!((index.live_bytes(), index.dead_bytes()), (30, 20));
        assert_eq!(index.truncate(4), FileChange::CutAt(30));
        assert_eq!(index.truncate(9), FileChange::None);
        index.rewritten(&[10]);
        assert_eq!((index.dead_bytes(), index.end_position()), (0, 10));
        index.purge(openraft::testing::log_id(1, 0, 9));
        assert_eq!(
            index.last_log_id(),
            Some(openraft::testing::log_id(1, 0, 9))
        );
        assert_eq!(index.dead_bytes(), 10);
    }

    #[test]
    fn out_of_order_appends_need_a_rewrite_to_truncate() {
        let mut index = LogIndex::default();
        index.push(blank(5), 10);
        index.push(blank(3), 10);
        index.push(blank(3), 12);
        assert_eq!((index.live_bytes(), index.dead_bytes()), (22, 10));
        assert_eq!(index.truncate(4), FileChange::Rewrite);
        assert_eq!(index.entries(..).len(), 1);
    }
}
