//! The leader-epoch cache of a partition: which leader epoch started at which offset, kept in
//! the partition directory's `leader-epoch-checkpoint` file. It answers OffsetForLeaderEpoch
//! (a follower's truncation point) and is updated when appended batches carry a new epoch.
//!
//! File format (text, Kafka's):
//!
//! ```text
//! 0              <- version
//! 2              <- number of entries
//! 0 0            <- epoch, start offset
//! 3 1500
//! ```
//!
//! The file is replaced atomically on every change (changes are rare: one per leader
//! election). Entries strictly increase in both epoch and start offset.

use std::io;
use std::path::{Path, PathBuf};

pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// One entry: the first offset written under `epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// The in-memory cache; the pure part. [`LeaderEpochFile`] persists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|entry| entry.epoch)
    }

    /// Records that `epoch` starts at `start_offset`, like Kafka's `assign`: nothing changes if
    /// the latest entry already has this epoch at or before that offset; otherwise entries
    /// whose epoch or start offset is not below the new one are dropped (they were never
    /// committed) and the new entry is added. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        if let Some(last) = self.entries.last()
            && last.epoch == epoch
            && last.start_offset <= start_offset
        {
            return false;
        }
        self.entries
            .retain(|entry| entry.epoch < epoch && entry.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// OffsetForLeaderEpoch as Kafka defines it: the largest epoch <= `requested` and the
    /// offset where it ends (the start of the next larger epoch, or the log end offset for the
    /// latest epoch). When `requested` is older than every cached epoch, Kafka answers the
    /// requested epoch with the start offset of the first cached epoch (the data before it was
    /// deleted). `None` (UNDEFINED_EPOCH_OFFSET) when the cache is empty, `requested` is
    /// negative, or it is newer than the latest epoch.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        if requested < 0 {
            return None;
        }
        let latest = self.entries.last()?;
        if latest.epoch == requested {
            return Some((requested, log_end_offset));
        }
        let higher = self
            .entries
            .partition_point(|entry| entry.epoch <= requested);
        let higher_entry = self.entries.get(higher)?;
        match higher.checked_sub(1) {
            None => Some((requested, higher_entry.start_offset)),
            Some(floor) => Some((self.entries[floor].epoch, higher_entry.start_offset)),
        }
    }

    /// Drops entries starting at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|entry| entry.start_offset < end_offset);
        before != self.entries.len()
    }

    /// Drops entries wholly below `start_offset` and moves the first remaining epoch's start
    /// up to it (the log start offset moved).
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let below = self
            .entries
            .partition_point(|entry| entry.start_offset <= start_offset);
        if below == 0 {
            return false;
        }
        let last_below = self.entries[below - 1];
        if below == 1 && last_below.start_offset == start_offset {
            return false;
        }
        self.entries.drain(..below);
        self.entries.insert(
            0,
            EpochEntry {
                epoch: last_below.epoch,
                start_offset,
            },
        );
        true
    }

    pub fn encode(&self) -> String {
        let mut out = format!("0\n{}\n", self.entries.len());
        for entry in &self.entries {
            out.push_str(&format!("{} {}\n", entry.epoch, entry.start_offset));
        }
        out
    }

    /// Parses the file; `None` when it is malformed or not increasing.
    pub fn parse(text: &str) -> Option<LeaderEpochCache> {
        let mut lines = text.lines();
        if lines.next()? != "0" {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut cache = LeaderEpochCache::default();
        for _ in 0..count {
            let mut fields = lines.next()?.split(' ');
            let epoch = fields.next()?.parse().ok()?;
            let start_offset = fields.next()?.parse().ok()?;
            if fields.next().is_some() {
                return None;
            }
            if let Some(last) = cache.entries.last()
                && (epoch <= last.epoch || start_offset < last.start_offset)
            {
                return None;
            }
            cache.entries.push(EpochEntry {
                epoch,
                start_offset,
            });
        }
        Some(cache)
    }
}

/// The cache and its checkpoint file.
#[derive(Debug)]
pub struct LeaderEpochFile {
    path: PathBuf,
    pub cache: LeaderEpochCache,
}

impl LeaderEpochFile {
    /// Loads the checkpoint of `dir`. `Ok(None)` when it is missing or malformed (the caller
    /// rebuilds it from the batches' leader epochs).
    pub fn load(dir: &Path) -> io::Result<(LeaderEpochFile, bool)> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        match std::fs::read_to_string(&path) {
            Ok(text) => match LeaderEpochCache::parse(&text) {
                Some(cache) => Ok((LeaderEpochFile { path, cache }, true)),
                None => Ok((
                    LeaderEpochFile {
                        path,
                        cache: LeaderEpochCache::default(),
                    },
                    false,
                )),
            },
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok((
                LeaderEpochFile {
                    path,
                    cache: LeaderEpochCache::default(),
                },
                false,
            )),
            Err(error) => Err(error),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the cache to its file atomically.
    pub fn persist(&self) -> io::Result<()> {
        crate::io::write_atomically(&self.path, self.cache.encode().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut cache = LeaderEpochCache::default();
        for &(epoch, offset) in entries {
            assert!(cache.assign(epoch, offset));
        }
        cache
    }

    #[test]
    fn end_offset_for_epoch_follows_kafka() {
        let cache = cache(&[(1, 0), (3, 100), (5, 250)]);
        assert_eq!(cache.end_offset_for(5, 400), Some((5, 400)));
        assert_eq!(cache.end_offset_for(3, 400), Some((3, 250)));
        assert_eq!(cache.end_offset_for(4, 400), Some((3, 250)));
        assert_eq!(cache.end_offset_for(1, 400), Some((1, 100)));
        assert_eq!(cache.end_offset_for(2, 400), Some((1, 100)));
        assert_eq!(
            cache.end_offset_for(0, 400),
            Some((0, 0)),
            "older than all: first start"
        );
        assert_eq!(cache.end_offset_for(6, 400), None, "newer than the latest");
        assert_eq!(cache.end_offset_for(-1, 400), None);
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, 10), None);
    }

    #[test]
    fn assign_ignores_repeats_and_drops_conflicting_entries() {
        let mut cache = cache(&[(1, 0), (2, 10)]);
        assert!(!cache.assign(2, 15), "same epoch later is no change");
        assert!(cache.assign(2, 5), "same epoch earlier replaces");
        assert_eq!(
            cache.entries(),
            &[
                EpochEntry {
                    epoch: 1,
                    start_offset: 0
                },
                EpochEntry {
                    epoch: 2,
                    start_offset: 5
                }
            ]
        );
        assert!(
            cache.assign(4, 3),
            "an earlier start offset drops later entries"
        );
        assert_eq!(
            cache.entries(),
            &[
                EpochEntry {
                    epoch: 1,
                    start_offset: 0
                },
                EpochEntry {
                    epoch: 4,
                    start_offset: 3
                }
            ]
        );
    }

    #[test]
    fn truncation_from_both_ends() {
        let mut cache = cache(&[(1, 0), (3, 100), (5, 250)]);
        assert!(cache.truncate_from_end(250));
        assert_eq!(cache.latest_epoch(), Some(3));
        assert!(cache.truncate_from_start(120));
        assert_eq!(
            cache.entries(),
            &[EpochEntry {
                epoch: 3,
                start_offset: 120
            }]
        );
        assert!(!cache.truncate_from_start(120));
        assert!(!cache.truncate_from_start(50));
    }

    #[test]
    fn file_format_round_trips_and_rejects_garbage() {
        let cache = cache(&[(0, 0), (7, 42)]);
        let text = cache.encode();
        assert_eq!(text, "0\n2\n0 0\n7 42\n");
        assert_eq!(LeaderEpochCache::parse(&text), Some(cache));
        assert_eq!(LeaderEpochCache::parse("0\n2\n0 0\n"), None);
        assert_eq!(LeaderEpochCache::parse("0\n2\n5 0\n3 10\n"), None);
        assert_eq!(LeaderEpochCache::parse("1\n0\n"), None);
    }

    #[test]
    fn persist_and_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut file, found) = LeaderEpochFile::load(dir.path()).expect("load");
        assert!(!found);
        file.cache.assign(2, 7);
        file.persist().expect("persist");
        let (loaded, found) = LeaderEpochFile::load(dir.path()).expect("load");
        assert!(found);
        assert_eq!(loaded.cache, file.cache);
    }
}
