//! The sparse offset and time indexes of a segment, as pure in-memory structures plus their
//! file encodings. The segment owns the files and writes the bytes these types produce.
//!
//! Both indexes are sparse: the segment adds an offset-index entry before a batch once more
//! than `index.interval.bytes` were appended since the previous entry, and at the same moment a
//! time-index entry when the segment's largest timestamp grew since the last time entry. A
//! lookup finds the floor entry and the caller scans batch headers forward from there, so a
//! short or missing index costs a longer scan, never a wrong answer. The active segment's
//! indexes are kept in memory (no mmap: the workspace forbids `unsafe`) and mirrored to their
//! files; once a segment is sealed its files are the only copy, searched in place with a few
//! small reads ([`search_offset_file`], [`search_time_file`]), so memory does not grow with
//! the data a log keeps. Files are rebuilt from the log when missing or inconsistent.

use std::io;

/// Why an index file cannot be trusted. The segment rebuilds the index from its log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("index file length {0} is not a multiple of the entry size")]
    PartialEntry(u64),
    #[error("index entry {0} does not increase")]
    NotIncreasing(usize),
    #[error("index entry {0} points past the segment end")]
    PastSegmentEnd(usize),
    #[error("index holds {entries} entries, more than its {max_entries} maximum")]
    TooManyEntries { entries: usize, max_entries: usize },
    #[error("index entry {0} lies outside the segment's offsets")]
    OutsideSegment(usize),
}

/// `offset - base_offset` as stored in an index, when it fits Kafka's 4-byte relative offset.
pub fn relative_offset(base_offset: i64, offset: i64) -> Option<u32> {
    let delta = offset.checked_sub(base_offset)?;
    if (0..=i64::from(i32::MAX)).contains(&delta) {
        Some(delta as u32)
    } else {
        None
    }
}

/// Index of the last element whose key is <= `target` (the floor), if any. `entries` must be
/// sorted by key.
pub fn floor_index<T>(entries: &[T], target: i64, key: impl Fn(&T) -> i64) -> Option<usize> {
    let after = entries.partition_point(|entry| key(entry) <= target);
    after.checked_sub(1)
}

/// An offset-index entry: a batch's last offset and the byte position where the batch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetPosition {
    pub offset: i64,
    pub position: u32,
}

/// A time-index entry: the segment's largest timestamp so far and the last offset of the
/// batch that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

/// The offset index of one segment (`<base>.index`).
///
/// File format: a sequence of 8-byte entries, big-endian:
///
/// | offset | size | field                                                               |
/// |-------:|-----:|---------------------------------------------------------------------|
/// |      0 |    4 | relative offset (u32): a batch's last offset minus the base offset  |
/// |      4 |    4 | position (u32): byte position of that batch in the `.log` file      |
///
/// Entries strictly increase in both fields. The file of the active segment is preallocated
/// to `segment.index.bytes` (the unused tail is zeros) and trimmed to its entries when the
/// segment becomes inactive or the log closes.
#[derive(Debug, Clone)]
pub struct OffsetIndex {
    base_offset: i64,
    entries: Vec<(u32, u32)>,
    max_entries: usize,
}

pub const OFFSET_INDEX_ENTRY_SIZE: usize = 8;
pub const TIME_INDEX_ENTRY_SIZE: usize = 12;

impl OffsetIndex {
    pub fn new(base_offset: i64, max_index_bytes: u64) -> OffsetIndex {
        OffsetIndex {
            base_offset,
            entries: Vec::new(),
            max_entries: max_entries(max_index_bytes, OFFSET_INDEX_ENTRY_SIZE),
        }
    }

    /// Decodes and checks an index file. A preallocated file's zero tail is not an entry: the
    /// first entry that does not increase ends the parse when `allow_zero_tail` is set and
    /// everything from there on is zero; otherwise it is an error.
    pub fn parse(
        base_offset: i64,
        bytes: &[u8],
        max_index_bytes: u64,
        segment_size: u64,
        allow_zero_tail: bool,
    ) -> Result<OffsetIndex, IndexError> {
        if !bytes.len().is_multiple_of(OFFSET_INDEX_ENTRY_SIZE) {
            return Err(IndexError::PartialEntry(bytes.len() as u64));
        }
        let mut index = OffsetIndex::new(base_offset, max_index_bytes);
        for (i, chunk) in bytes.chunks_exact(OFFSET_INDEX_ENTRY_SIZE).enumerate() {
            let relative = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let position = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            if allow_zero_tail
                && relative == 0
                && position == 0
                && bytes[i * OFFSET_INDEX_ENTRY_SIZE..].iter().all(|&b| b == 0)
            {
                break;
            }
            if relative > i32::MAX as u32 {
                return Err(IndexError::OutsideSegment(i));
            }
            if let Some(&(last_relative, last_position)) = index.entries.last()
                && (relative <= last_relative || position <= last_position)
            {
                return Err(IndexError::NotIncreasing(i));
            }
            if u64::from(position) >= segment_size {
                return Err(IndexError::PastSegmentEnd(i));
            }
            index.entries.push((relative, position));
        }
        if index.entries.len() > index.max_entries {
            return Err(IndexError::TooManyEntries {
                entries: index.entries.len(),
                max_entries: index.max_entries,
            });
        }
        Ok(index)
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    fn entry(&self, i: usize) -> OffsetPosition {
        let (relative, position) = self.entries[i];
        OffsetPosition {
            offset: self.base_offset + i64::from(relative),
            position,
        }
    }

    pub fn last(&self) -> Option<OffsetPosition> {
        (!self.entries.is_empty()).then(|| self.entry(self.entries.len() - 1))
    }

    /// The entry with the largest offset <= `target`, or `(base_offset, 0)` when there is none:
    /// where a scan for `target` must start.
    pub fn lookup(&self, target: i64) -> OffsetPosition {
        let base = self.base_offset;
        match floor_index(&self.entries, target, |&(relative, _)| {
            base + i64::from(relative)
        }) {
            Some(i) => self.entry(i),
            None => OffsetPosition {
                offset: base,
                position: 0,
            },
        }
    }

    /// The first entry with an offset > `target`: the batch holding `target` starts at or
    /// before its position.
    pub fn entry_after(&self, target: i64) -> Option<OffsetPosition> {
        let base = self.base_offset;
        let after = self
            .entries
            .partition_point(|&(relative, _)| base + i64::from(relative) <= target);
        (after < self.entries.len()).then(|| self.entry(after))
    }

    /// Adds an entry and returns its encoding, to be written at `(len() - 1) * 8` in the file.
    /// Returns `None` (and adds nothing) if the entry would not increase, does not fit a
    /// relative offset, or the index is full.
    pub fn append(&mut self, offset: i64, position: u32) -> Option<[u8; OFFSET_INDEX_ENTRY_SIZE]> {
        let relative = relative_offset(self.base_offset, offset)?;
        if self.is_full() {
            return None;
        }
        if let Some(&(last_relative, last_position)) = self.entries.last()
            && (relative <= last_relative || position <= last_position)
        {
            return None;
        }
        self.entries.push((relative, position));
        let mut encoded = [0u8; OFFSET_INDEX_ENTRY_SIZE];
        encoded[..4].copy_from_slice(&relative.to_be_bytes());
        encoded[4..].copy_from_slice(&position.to_be_bytes());
        Some(encoded)
    }

    /// Drops entries at or past byte `position` (after the log was truncated there).
    pub fn truncate_to_position(&mut self, position: u64) {
        let keep = self
            .entries
            .partition_point(|&(_, entry_position)| u64::from(entry_position) < position);
        self.entries.truncate(keep);
    }

    /// The whole index, encoded as its file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * OFFSET_INDEX_ENTRY_SIZE);
        for &(relative, position) in &self.entries {
            out.extend_from_slice(&relative.to_be_bytes());
            out.extend_from_slice(&position.to_be_bytes());
        }
        out
    }

    pub fn entries(&self) -> impl Iterator<Item = OffsetPosition> + '_ {
        (0..self.entries.len()).map(|i| self.entry(i))
    }
}

/// The time index of one segment (`<base>.timeindex`).
///
/// File format: a sequence of 12-byte entries, big-endian:
///
/// | offset | size | field                                                               |
/// |-------:|-----:|---------------------------------------------------------------------|
/// |      0 |    8 | timestamp (i64): the segment's largest timestamp up to this entry   |
/// |      8 |    4 | relative offset (u32): last offset of the batch that carried it     |
///
/// Timestamps strictly increase and offsets do not decrease. Like Kafka, the last slot is
/// reserved for the entry written when the segment becomes inactive, which records the
/// segment's largest timestamp, so that a restarted broker knows it without a scan.
#[derive(Debug, Clone)]
pub struct TimeIndex {
    base_offset: i64,
    entries: Vec<(i64, u32)>,
    max_entries: usize,
}

impl TimeIndex {
    pub fn new(base_offset: i64, max_index_bytes: u64) -> TimeIndex {
        TimeIndex {
            base_offset,
            entries: Vec::new(),
            max_entries: max_entries(max_index_bytes, TIME_INDEX_ENTRY_SIZE),
        }
    }

    /// Decodes and checks a time-index file; see [`OffsetIndex::parse`] for `allow_zero_tail`.
    /// `last_offset` is the segment's last offset (entries past it are inconsistent).
    pub fn parse(
        base_offset: i64,
        bytes: &[u8],
        max_index_bytes: u64,
        last_offset: i64,
        allow_zero_tail: bool,
    ) -> Result<TimeIndex, IndexError> {
        if !bytes.len().is_multiple_of(TIME_INDEX_ENTRY_SIZE) {
            return Err(IndexError::PartialEntry(bytes.len() as u64));
        }
        let mut index = TimeIndex::new(base_offset, max_index_bytes);
        for (i, chunk) in bytes.chunks_exact(TIME_INDEX_ENTRY_SIZE).enumerate() {
            if allow_zero_tail && bytes[i * TIME_INDEX_ENTRY_SIZE..].iter().all(|&b| b == 0) {
                break;
            }
            let mut timestamp = [0u8; 8];
            timestamp.copy_from_slice(&chunk[..8]);
            let timestamp = i64::from_be_bytes(timestamp);
            let relative = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            if relative > i32::MAX as u32 || base_offset + i64::from(relative) > last_offset {
                return Err(IndexError::OutsideSegment(i));
            }
            if let Some(&(last_timestamp, last_relative)) = index.entries.last()
                && (timestamp <= last_timestamp || relative < last_relative)
            {
                return Err(IndexError::NotIncreasing(i));
            }
            index.entries.push((timestamp, relative));
        }
        if index.entries.len() > index.max_entries {
            return Err(IndexError::TooManyEntries {
                entries: index.entries.len(),
                max_entries: index.max_entries,
            });
        }
        Ok(index)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Full when only the slot reserved for the inactive-segment entry is left.
    pub fn is_full(&self) -> bool {
        self.entries.len() + 1 >= self.max_entries
    }

    fn entry(&self, i: usize) -> TimestampOffset {
        let (timestamp, relative) = self.entries[i];
        TimestampOffset {
            timestamp,
            offset: self.base_offset + i64::from(relative),
        }
    }

    pub fn last(&self) -> Option<TimestampOffset> {
        (!self.entries.is_empty()).then(|| self.entry(self.entries.len() - 1))
    }

    /// The last entry whose timestamp is strictly below `target`: every record at or before
    /// its offset has a timestamp below `target`, so a search can start after it.
    pub fn lookup_below(&self, target: i64) -> Option<TimestampOffset> {
        let after = self
            .entries
            .partition_point(|&(timestamp, _)| timestamp < target);
        after.checked_sub(1).map(|i| self.entry(i))
    }

    /// Adds an entry if the timestamp grew; returns its encoding for the file. `reserve_slot`
    /// keeps the last slot free (normal appends); the inactive-segment entry may use it.
    pub fn maybe_append(
        &mut self,
        timestamp: i64,
        offset: i64,
        reserve_slot: bool,
    ) -> Option<[u8; TIME_INDEX_ENTRY_SIZE]> {
        let relative = relative_offset(self.base_offset, offset)?;
        let full = if reserve_slot {
            self.is_full()
        } else {
            self.entries.len() >= self.max_entries
        };
        if full {
            return None;
        }
        if let Some(&(last_timestamp, last_relative)) = self.entries.last()
            && (timestamp <= last_timestamp || relative < last_relative)
        {
            return None;
        }
        self.entries.push((timestamp, relative));
        let mut encoded = [0u8; TIME_INDEX_ENTRY_SIZE];
        encoded[..8].copy_from_slice(&timestamp.to_be_bytes());
        encoded[8..].copy_from_slice(&relative.to_be_bytes());
        Some(encoded)
    }

    /// Drops entries whose offset is >= `offset`.
    pub fn truncate_to_offset(&mut self, offset: i64) {
        let base = self.base_offset;
        let keep = self
            .entries
            .partition_point(|&(_, relative)| base + i64::from(relative) < offset);
        self.entries.truncate(keep);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * TIME_INDEX_ENTRY_SIZE);
        for &(timestamp, relative) in &self.entries {
            out.extend_from_slice(&timestamp.to_be_bytes());
            out.extend_from_slice(&relative.to_be_bytes());
        }
        out
    }

    pub fn entries(&self) -> impl Iterator<Item = TimestampOffset> + '_ {
        (0..self.entries.len()).map(|i| self.entry(i))
    }
}

fn max_entries(max_index_bytes: u64, entry_size: usize) -> usize {
    // At least two entries, so that the time index always has its reserved slot plus one.
    ((max_index_bytes / entry_size as u64) as usize).max(2)
}

/// The preallocated file length of an index with room for `max_index_bytes`.
pub fn preallocated_len(max_index_bytes: u64, entry_size: usize) -> u64 {
    (max_entries(max_index_bytes, entry_size) * entry_size) as u64
}

/// Reads one entry of an index file: `read(position, buf)` fills `buf` from `position`.
type ReadEntry<'a> = &'a dyn Fn(u64, &mut [u8]) -> io::Result<()>;

fn read_offset_entry(read: ReadEntry, base_offset: i64, i: usize) -> io::Result<OffsetPosition> {
    let mut entry = [0u8; OFFSET_INDEX_ENTRY_SIZE];
    read((i * OFFSET_INDEX_ENTRY_SIZE) as u64, &mut entry)?;
    let relative = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
    let position = u32::from_be_bytes([entry[4], entry[5], entry[6], entry[7]]);
    Ok(OffsetPosition {
        offset: base_offset + i64::from(relative),
        position,
    })
}

fn read_time_entry(read: ReadEntry, base_offset: i64, i: usize) -> io::Result<TimestampOffset> {
    let mut entry = [0u8; TIME_INDEX_ENTRY_SIZE];
    read((i * TIME_INDEX_ENTRY_SIZE) as u64, &mut entry)?;
    let mut timestamp = [0u8; 8];
    timestamp.copy_from_slice(&entry[..8]);
    let relative = u32::from_be_bytes([entry[8], entry[9], entry[10], entry[11]]);
    Ok(TimestampOffset {
        timestamp: i64::from_be_bytes(timestamp),
        offset: base_offset + i64::from(relative),
    })
}

/// The first index in `0..entries` whose entry is not `before` the target (a binary search
/// reading one entry per step).
fn partition_point_in_file<T>(
    entries: usize,
    entry: impl Fn(usize) -> io::Result<T>,
    before: impl Fn(&T) -> bool,
) -> io::Result<usize> {
    let (mut low, mut high) = (0, entries);
    while low < high {
        let middle = low + (high - low) / 2;
        if before(&entry(middle)?) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

/// [`OffsetIndex::lookup`] and [`OffsetIndex::entry_after`] on a sealed segment's offset
/// index file of `entries` entries, without loading it: about log2(entries) 8-byte reads.
pub fn search_offset_file(
    read: ReadEntry,
    base_offset: i64,
    entries: usize,
    target: i64,
) -> io::Result<(OffsetPosition, Option<OffsetPosition>)> {
    let entry = |i| read_offset_entry(read, base_offset, i);
    let after = partition_point_in_file(entries, entry, |e| e.offset <= target)?;
    let floor = match after.checked_sub(1) {
        Some(i) => entry(i)?,
        None => OffsetPosition {
            offset: base_offset,
            position: 0,
        },
    };
    let next = if after < entries {
        Some(entry(after)?)
    } else {
        None
    };
    Ok((floor, next))
}

/// [`TimeIndex::lookup_below`] on a sealed segment's time index file of `entries` entries.
pub fn search_time_file(
    read: ReadEntry,
    base_offset: i64,
    entries: usize,
    target: i64,
) -> io::Result<Option<TimestampOffset>> {
    let entry = |i| read_time_entry(read, base_offset, i);
    let after = partition_point_in_file(entries, entry, |e| e.timestamp < target)?;
    after.checked_sub(1).map(entry).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn relative_offsets_fit_only_within_i32_of_the_base() {
        assert_eq!(relative_offset(100, 100), Some(0));
        assert_eq!(
            relative_offset(100, 100 + i64::from(i32::MAX)),
            Some(i32::MAX as u32)
        );
        assert_eq!(relative_offset(100, 101 + i64::from(i32::MAX)), None);
        assert_eq!(relative_offset(100, 99), None);
        assert_eq!(relative_offset(i64::MIN, i64::MAX), None);
    }

    #[test]
    fn lookup_returns_floor_entry_or_segment_start() {
        let mut index = OffsetIndex::new(1000, 1024);
        index.append(1009, 4100).expect("append");
        index.append(1019, 8300).expect("append");
        assert_eq!(index.lookup(999).position, 0);
        assert_eq!(
            index.lookup(1008),
            OffsetPosition {
                offset: 1000,
                position: 0
            }
        );
        assert_eq!(index.lookup(1009).position, 4100);
        assert_eq!(index.lookup(1018).position, 4100);
        assert_eq!(index.lookup(5000).position, 8300);
        assert_eq!(index.entry_after(1009).map(|e| e.position), Some(8300));
        assert_eq!(index.entry_after(1019), None);
    }

    #[test]
    fn append_refuses_non_increasing_entries_and_full_index() {
        let mut index = OffsetIndex::new(0, 16);
        assert!(index.append(5, 100).is_some());
        assert!(index.append(5, 200).is_none());
        assert!(index.append(6, 100).is_none());
        assert!(index.append(7, 200).is_some());
        assert!(index.is_full());
        assert!(index.append(8, 300).is_none());
    }

    #[test]
    fn parse_round_trips_and_rejects_inconsistent_files() {
        let mut index = OffsetIndex::new(50, 1024);
        index.append(60, 10).expect("append");
        index.append(70, 20).expect("append");
        let bytes = index.encode();
        let parsed = OffsetIndex::parse(50, &bytes, 1024, 100, false).expect("parses");
        assert_eq!(
            parsed.entries().collect::<Vec<_>>(),
            index.entries().collect::<Vec<_>>()
        );

        assert_eq!(
            OffsetIndex::parse(50, &bytes[..11], 1024, 100, false).err(),
            Some(IndexError::PartialEntry(11))
        );
        assert_eq!(
            OffsetIndex::parse(50, &bytes, 1024, 15, false).err(),
            Some(IndexError::PastSegmentEnd(1))
        );
        let mut swapped = bytes[8..].to_vec();
        swapped.extend_from_slice(&bytes[..8]);
        assert_eq!(
            OffsetIndex::parse(50, &swapped, 1024, 100, false).err(),
            Some(IndexError::NotIncreasing(1))
        );
        // A preallocated tail of zeros is fine only where allowed.
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0; 24]);
        assert_eq!(
            OffsetIndex::parse(50, &padded, 1024, 100, true).map(|i| i.len()),
            Ok(2)
        );
        assert!(OffsetIndex::parse(50, &padded, 1024, 100, false).is_err());
    }

    #[test]
    fn time_index_keeps_a_slot_for_the_inactive_entry() {
        let mut index = TimeIndex::new(0, 36); // three entries
        assert!(index.maybe_append(10, 1, true).is_some());
        assert!(
            index.maybe_append(10, 2, true).is_none(),
            "timestamp must grow"
        );
        assert!(index.maybe_append(20, 2, true).is_some());
        assert!(index.is_full());
        assert!(index.maybe_append(30, 3, true).is_none());
        assert!(index.maybe_append(30, 3, false).is_some());
        assert_eq!(index.lookup_below(20).map(|e| e.offset), Some(1));
        assert_eq!(index.lookup_below(10), None);
        assert_eq!(index.lookup_below(31).map(|e| e.timestamp), Some(30));
        index.truncate_to_offset(2);
        assert_eq!(index.len(), 1);
    }

    proptest! {
        #[test]
        fn lookup_matches_a_linear_scan(
            mut offsets in proptest::collection::btree_set(0i64..10_000, 0..60),
            target in -10i64..10_100,
        ) {
            let base = 0;
            let mut index = OffsetIndex::new(base, 1 << 20);
            let offsets: Vec<i64> = std::mem::take(&mut offsets).into_iter().filter(|&o| o > 0).collect();
            for (i, &offset) in offsets.iter().enumerate() {
                prop_assert!(index.append(offset, (i as u32 + 1) * 100).is_some());
            }
            let expected = offsets
                .iter()
                .enumerate()
                .rev()
                .find(|&(_, &o)| o <= target)
                .map(|(i, &o)| OffsetPosition { offset: o, position: (i as u32 + 1) * 100 })
                .unwrap_or(OffsetPosition { offset: base, position: 0 });
            prop_assert_eq!(index.lookup(target), expected);
            let after = offsets
                .iter()
                .enumerate()
                .find(|&(_, &o)| o > target)
                .map(|(i, &o)| OffsetPosition { offset: o, position: (i as u32 + 1) * 100 });
            prop_assert_eq!(index.entry_after(target), after);
            let reparsed = OffsetIndex::parse(base, &index.encode(), 1 << 20, u64::MAX, false);
            prop_assert_eq!(reparsed.map(|i| i.len()), Ok(offsets.len()));

            // A sealed segment searches the file in place and must agree with memory.
            let file = index.encode();
            let read = |position: u64, buf: &mut [u8]| -> io::Result<()> {
                let start = position as usize;
                buf.copy_from_slice(&file[start..start + buf.len()]);
                Ok(())
            };
            let (floor, next) = search_offset_file(&read, base, index.len(), target).unwrap();
            prop_assert_eq!(floor, index.lookup(target));
            prop_assert_eq!(next, index.entry_after(target));
        }

        #[test]
        fn time_file_search_matches_memory(
            steps in proptest::collection::vec((1i64..1000, 1i64..50), 0..60),
            target in 0i64..40_000,
        ) {
            let base = 100;
            let mut index = TimeIndex::new(base, 1 << 20);
            let (mut timestamp, mut offset) = (0, base);
            for (dt, doffset) in steps {
                timestamp += dt;
                offset += doffset;
                prop_assert!(index.maybe_append(timestamp, offset, false).is_some());
            }
            let file = index.encode();
            let read = |position: u64, buf: &mut [u8]| -> io::Result<()> {
                let start = position as usize;
                buf.copy_from_slice(&file[start..start + buf.len()]);
                Ok(())
            };
            let found = search_time_file(&read, base, index.len(), target).unwrap();
            prop_assert_eq!(found, index.lookup_below(target));
        }

        #[test]
        fn floor_index_is_the_last_key_not_above_target(
            keys in proptest::collection::vec(-100i64..100, 0..40),
            target in -120i64..120,
        ) {
            let mut keys = keys;
            keys.sort_unstable();
            let got = floor_index(&keys, target, |&k| k);
            let expected = keys.iter().rposition(|&k| k <= target);
            prop_assert_eq!(got, expected);
        }
    }
}
