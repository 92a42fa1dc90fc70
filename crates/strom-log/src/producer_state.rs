//! Idempotent-producer state, with the semantics of Kafka's `ProducerStateManager`: per
//! producer id the current epoch, the metadata of its last five batches (for duplicate
//! detection of retries) and the time of its last append (for `producer.id.expiration.ms`).
//!
//! The pure core validates a leader append ([`ProducerStateManager::check`]) and records the
//! batches that were written ([`ProducerStateManager::update`]); the log calls it under its
//! append lock. Rules, in Kafka's order:
//! - a batch equal (epoch, first and last sequence) to one of the producer's last five is a
//!   duplicate: nothing is written and the original offsets are returned;
//! - an epoch older than the known one is fenced (INVALID_PRODUCER_EPOCH);
//! - a new epoch must start at sequence 0, unless the producer is unknown;
//! - otherwise the first sequence must follow the last one (wrapping at `i32::MAX`).
//!
//! For transactions it also tracks each producer's open transaction: the first offset of its
//! first transactional batch, until a control batch (a COMMIT or ABORT marker) ends it. The
//! smallest such offset bounds the partition's last stable offset (LSO): a `read_committed`
//! consumer reads no further, since what follows may still be aborted.
//!
//! The state survives restarts through snapshot files `<offset>.snapshot` (20-digit offset:
//! the state covers every batch below it), written when a segment rolls and when the log
//! closes; after an unclean stop the log replays batch headers after the latest snapshot.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};

use crate::AppendError;
use crate::batch::{BatchHeader, NO_SEQUENCE};

/// How many batches per producer are remembered for duplicate detection (Kafka's 5, the
/// largest `max.in.flight.requests.per.connection` that keeps idempotence).
pub const BATCHES_REMEMBERED: usize = 5;

pub const SNAPSHOT_SUFFIX: &str = ".snapshot";

/// What is remembered of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// One producer's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first, at most [`BATCHES_REMEMBERED`].
    pub batches: VecDeque<BatchMetadata>,
    /// Max timestamp of the producer's last batch (Kafka expires producers by it).
    pub last_timestamp: i64,
    /// First offset of the producer's open transaction, if one is open.
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    pub fn last_sequence(&self) -> i32 {
        self.batches
            .back()
            .map_or(NO_SEQUENCE, |batch| batch.last_sequence)
    }

    pub fn last_offset(&self) -> i64 {
        self.batches.back().map_or(-1, |batch| batch.last_offset)
    }

    fn find_duplicate(&self, header: &BatchHeader) -> Option<BatchMetadata> {
        if header.producer_epoch != self.epoch {
            return None;
        }
        let last_sequence = header.last_sequence();
        self.batches
            .iter()
            .find(|batch| {
                batch.first_sequence == header.base_sequence && batch.last_sequence == last_sequence
            })
            .copied()
    }

    fn push(&mut self, epoch: i16, batch: BatchMetadata) {
        if epoch != self.epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
        if self.batches.len() == BATCHES_REMEMBERED {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
        self.last_timestamp = batch.max_timestamp;
    }
}

/// The outcome of checking a leader append against the producer state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Every batch may be written.
    Accept,
    /// Batch `index` is a retry of an appended batch: write nothing, answer with `original`.
    Duplicate {
        index: usize,
        original: BatchMetadata,
    },
}

/// A transaction whose marker was appended: its records span `first_offset` to the marker at
/// `last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// All producers of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: BTreeMap<i64, ProducerEntry>,
}

fn in_sequence(last_sequence: i32, next_sequence: i32) -> bool {
    i64::from(next_sequence) == i64::from(last_sequence) + 1
        || (next_sequence == 0 && last_sequence == i32::MAX)
}

impl ProducerStateManager {
    pub fn new() -> ProducerStateManager {
        ProducerStateManager::default()
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Producers by id, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, entry)| (*id, entry))
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Checks a leader append of `headers` (in order). Batches of the same producer within the
    /// request are checked against each other too.
    pub fn check<'a>(
        &self,
        headers: impl IntoIterator<Item = &'a BatchHeader>,
    ) -> Result<Check, AppendError> {
        let mut pending: BTreeMap<i64, (i16, i32)> = BTreeMap::new();
        for (index, header) in headers.into_iter().enumerate() {
            if !header.has_producer_id() {
                continue;
            }
            let producer_id = header.producer_id;
            let current = self.producers.get(&producer_id);
            if let Some(entry) = current
                && !pending.contains_key(&producer_id)
                && let Some(original) = entry.find_duplicate(header)
            {
                return Ok(Check::Duplicate { index, original });
            }
            let (known_epoch, last_sequence) = match pending.get(&producer_id) {
                Some(&(epoch, last_sequence)) => (Some(epoch), last_sequence),
                None => match current {
                    Some(entry) => (Some(entry.epoch), entry.last_sequence()),
                    None => (None, NO_SEQUENCE),
                },
            };
            if let Some(epoch) = known_epoch {
                if header.producer_epoch < epoch {
                    return Err(AppendError::ProducerFenced {
                        producer_id,
                        epoch: header.producer_epoch,
                        current: epoch,
                    });
                }
                if header.producer_epoch != epoch {
                    if header.base_sequence != 0 {
                        return Err(AppendError::OutOfOrderSequence {
                            producer_id,
                            expected: 0,
                            got: header.base_sequence,
                        });
                    }
                } else if last_sequence != NO_SEQUENCE
                    && !in_sequence(last_sequence, header.base_sequence)
                {
                    return Err(AppendError::OutOfOrderSequence {
                        producer_id,
                        expected: crate::batch::increment_sequence(last_sequence, 1),
                        got: header.base_sequence,
                    });
                }
            }
            pending.insert(producer_id, (header.producer_epoch, header.last_sequence()));
        }
        Ok(Check::Accept)
    }

    /// Checks a coordinator append (Kafka's `AppendOrigin.COORDINATOR`): the broker writes
    /// without sequence numbers, so only producer epochs are checked: an epoch older than the
    /// known one (or than an earlier batch of the same request) is fenced. Never a duplicate.
    pub fn check_epochs<'a>(
        &self,
        headers: impl IntoIterator<Item = &'a BatchHeader>,
    ) -> Result<Check, AppendError> {
        let mut pending: BTreeMap<i64, i16> = BTreeMap::new();
        for header in headers {
            if !header.has_producer_id() {
                continue;
            }
            let producer_id = header.producer_id;
            let known = pending
                .get(&producer_id)
                .copied()
                .or_else(|| self.producers.get(&producer_id).map(|entry| entry.epoch));
            if let Some(current) = known
                && header.producer_epoch < current
            {
                return Err(AppendError::ProducerFenced {
                    producer_id,
                    epoch: header.producer_epoch,
                    current,
                });
            }
            pending.insert(producer_id, header.producer_epoch);
        }
        Ok(Check::Accept)
    }

    /// Records an appended (or replayed) batch whose offsets are final. Returns the
    /// transaction a control batch ended, if it ended one.
    ///
    /// A control batch (a transaction marker, which a follower stores as its leader did) has no
    /// sequence: as in Kafka's `appendEndTxnMarker` it only moves the producer to its epoch
    /// and time, and is not remembered as a batch, so it neither takes one of the five
    /// duplicate-detection slots nor hides the last sequence from the next check.
    pub fn update(&mut self, header: &BatchHeader) -> Option<CompletedTxn> {
        if !header.has_producer_id() {
            return None;
        }
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::with_capacity(BATCHES_REMEMBERED),
                last_timestamp: header.max_timestamp,
                current_txn_first_offset: None,
            });
        if header.is_control() {
            if entry.epoch != header.producer_epoch {
                entry.batches.clear();
                entry.epoch = header.producer_epoch;
            }
            entry.last_timestamp = header.max_timestamp;
            return entry
                .current_txn_first_offset
                .take()
                .map(|first_offset| CompletedTxn {
                    producer_id: header.producer_id,
                    first_offset,
                    last_offset: header.base_offset,
                });
        }
        if header.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(header.base_offset);
        }
        entry.push(
            header.producer_epoch,
            BatchMetadata {
                first_sequence: header.base_sequence,
                last_sequence: header.last_sequence(),
                first_offset: header.base_offset,
                last_offset: header.last_offset(),
                max_timestamp: header.max_timestamp,
            },
        );
        None
    }

    /// The first offset of the oldest open transaction: the last stable offset can be no
    /// higher. `None` when no transaction is open.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers
            .values()
            .filter_map(|entry| entry.current_txn_first_offset)
            .min()
    }

    /// (producer id, first offset) of every open transaction, by producer id.
    pub fn open_transactions(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.producers
            .iter()
            .filter_map(|(id, entry)| Some((*id, entry.current_txn_first_offset?)))
    }

    /// Forgets producers idle for at least `expiration_ms`, except those with an open
    /// transaction (its coordinator aborts it; forgetting it would move the last stable offset
    /// past records that may still be aborted). Returns how many were removed.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, entry| {
            entry.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Forgets batches at or after `offset` (the log was truncated there); producers left
    /// with no batch are removed. The log reloads from a snapshot instead when it can; this is
    /// for the case without one.
    pub fn truncate_from(&mut self, offset: i64) {
        self.producers.retain(|_, entry| {
            entry.batches.retain(|batch| batch.last_offset < offset);
            if entry
                .current_txn_first_offset
                .is_some_and(|first| first >= offset)
            {
                entry.current_txn_first_offset = None;
            }
            !entry.batches.is_empty()
        });
    }

    /// Encodes a snapshot.
    ///
    /// Format (big-endian):
    ///
    /// | size | field                                                     |
    /// |-----:|-----------------------------------------------------------|
    /// |    8 | magic `STROMPS\0`                                         |
    /// |    2 | version (u16) = 2 (1: without the open transaction)     |
    /// |    4 | CRC32C (u32) of everything after this field              |
    /// |    4 | producer count (u32)                                      |
    /// |      | per producer:                                             |
    /// |    8 |   producer id (i64)                                       |
    /// |    2 |   producer epoch (i16)                                    |
    /// |    8 |   last timestamp (i64)                                    |
    /// |    8 |   open transaction's first offset (i64, -1: none; v2)    |
    /// |    1 |   batch count (u8, at most 5), oldest first               |
    /// |      |   per batch:                                              |
    /// |    4 |     first sequence (i32)                                  |
    /// |    4 |     last sequence (i32)                                   |
    /// |    8 |     first offset (i64)                                    |
    /// |    8 |     last offset (i64)                                     |
    /// |    8 |     max timestamp (i64)                                   |
    ///
    /// Unlike Kafka's snapshot, which keeps only each producer's last batch, all five are kept,
    /// so that any in-flight retry is still recognised as a duplicate after a restart.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * 64);
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (producer_id, entry) in &self.producers {
            body.extend_from_slice(&producer_id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            body.extend_from_slice(&entry.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            body.push(entry.batches.len() as u8);
            for batch in &entry.batches {
                body.extend_from_slice(&batch.first_sequence.to_be_bytes());
                body.extend_from_slice(&batch.last_sequence.to_be_bytes());
                body.extend_from_slice(&batch.first_offset.to_be_bytes());
                body.extend_from_slice(&batch.last_offset.to_be_bytes());
                body.extend_from_slice(&batch.max_timestamp.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(14 + body.len());
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a snapshot; `None` when it is corrupt (wrong magic, version, CRC or length).
    pub fn decode_snapshot(bytes: &[u8]) -> Option<ProducerStateManager> {
        let rest = bytes.strip_prefix(SNAPSHOT_MAGIC.as_slice())?;
        let (version, rest) = rest.split_first_chunk::<2>()?;
        let version = u16::from_be_bytes(*version);
        if !(1..=SNAPSHOT_VERSION).contains(&version) {
            return None;
        }
        let (crc, body) = rest.split_first_chunk::<4>()?;
        if u32::from_be_bytes(*crc) != crc32c::crc32c(body) {
            return None;
        }
        let mut reader = Reader(body);
        let count = reader.u32()?;
        let mut state = ProducerStateManager::default();
        for _ in 0..count {
            let producer_id = reader.i64()?;
            let epoch = reader.i16()?;
            let last_timestamp = reader.i64()?;
            let current_txn_first_offset = if version >= 2 {
                Some(reader.i64()?).filter(|offset| *offset >= 0)
            } else {
                None
            };
            let batch_count = usize::from(reader.u8()?);
            if batch_count > BATCHES_REMEMBERED {
                return None;
            }
            let mut batches = VecDeque::with_capacity(BATCHES_REMEMBERED);
            for _ in 0..batch_count {
                batches.push_back(BatchMetadata {
                    first_sequence: reader.i32()?,
                    last_sequence: reader.i32()?,
                    first_offset: reader.i64()?,
                    last_offset: reader.i64()?,
                    max_timestamp: reader.i64()?,
                });
            }
            state.producers.insert(
                producer_id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp,
                    current_txn_first_offset,
                },
            );
        }
        reader.0.is_empty().then_some(state)
    }
}

const SNAPSHOT_MAGIC: &[u8; 8] = b"STROMPS\0";
const SNAPSHOT_VERSION: u16 = 2;

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

/// The path of the snapshot taken at `offset`.
pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!(
        "{}{SNAPSHOT_SUFFIX}",
        crate::segment::file_stem(offset)
    ))
}

/// Offsets of the snapshot files in `dir`, ascending.
pub fn list_snapshots(dir: &Path) -> io::Result<Vec<i64>> {
    let mut offsets = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX)
            && let Some(offset) = crate::segment::parse_stem(stem)
        {
            offsets.push(offset);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Writes a snapshot atomically.
pub fn write_snapshot(dir: &Path, offset: i64, state: &ProducerStateManager) -> io::Result<()> {
    crate::io::write_atomically(&snapshot_path(dir, offset), &state.encode_snapshot())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
        count: i32,
        base_offset: i64,
    ) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 1000,
            max_timestamp: 1000 + base_offset,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            records_count: count,
        }
    }

    fn appended(state: &mut ProducerStateManager, h: BatchHeader) {
        assert_eq!(state.check(&[h]).expect("accepted"), Check::Accept);
        state.update(&h);
    }

    #[test]
    fn unknown_producer_may_start_at_any_sequence() {
        let state = ProducerStateManager::new();
        assert_eq!(
            state.check(&[header(1, 0, 42, 3, 0)]).expect("ok"),
            Check::Accept
        );
    }

    #[test]
    fn in_order_sequences_are_accepted_and_gaps_refused() {
        let mut state = ProducerStateManager::new();
        appended(&mut state, header(1, 0, 0, 3, 0));
        appended(&mut state, header(1, 0, 3, 2, 3));
        let error = state.check(&[header(1, 0, 6, 1, 5)]).expect_err("gap");
        assert!(matches!(
            error,
            AppendError::OutOfOrderSequence {
                expected: 5,
                got: 6,
                ..
            }
        ));
    }

    #[test]
    fn a_retry_of_any_of_the_last_five_batches_is_a_duplicate_with_original_offsets() {
        let mut state = ProducerStateManager::new();
        for i in 0..6 {
            appended(&mut state, header(9, 1, i * 2, 2, 100 + i64::from(i) * 2));
        }
        // Batch 0 fell out of the window; batches 1..=5 are remembered.
        let check = state.check(&[header(9, 1, 2, 2, 0)]).expect("dup");
        assert_eq!(
            check,
            Check::Duplicate {
                index: 0,
                original: BatchMetadata {
                    first_sequence: 2,
                    last_sequence: 3,
                    first_offset: 102,
                    last_offset: 103,
                    max_timestamp: 1102,
                }
            }
        );
        assert!(
            state.check(&[header(9, 1, 0, 2, 0)]).is_err(),
            "too old to be a known duplicate"
        );
    }

    #[test]
    fn older_epoch_is_fenced_and_new_epoch_must_start_at_zero() {
        let mut state = ProducerStateManager::new();
        appended(&mut state, header(1, 5, 0, 1, 0));
        assert!(matches!(
            state.check(&[header(1, 4, 1, 1, 1)]),
            Err(AppendError::ProducerFenced {
                epoch: 4,
                current: 5,
                ..
            })
        ));
        assert!(matches!(
            state.check(&[header(1, 6, 3, 1, 1)]),
            Err(AppendError::OutOfOrderSequence {
                expected: 0,
                got: 3,
                ..
            })
        ));
        appended(&mut state, header(1, 6, 0, 1, 1));
        assert_eq!(
            state.get(1).map(|e| (e.epoch, e.batches.len())),
            Some((6, 1))
        );
    }

    #[test]
    fn sequence_wraps_after_i32_max() {
        let mut state = ProducerStateManager::new();
        appended(&mut state, header(1, 0, i32::MAX - 1, 2, 0));
        assert_eq!(
            state.get(1).map(ProducerEntry::last_sequence),
            Some(i32::MAX)
        );
        appended(&mut state, header(1, 0, 0, 1, 2));
    }

    #[test]
    fn batches_in_one_request_are_checked_against_each_other() {
        let state = ProducerStateManager::new();
        let ok = [header(1, 0, 0, 2, 0), header(1, 0, 2, 2, 2)];
        assert_eq!(state.check(&ok).expect("ok"), Check::Accept);
        let gap = [header(1, 0, 0, 2, 0), header(1, 0, 5, 2, 2)];
        assert!(state.check(&gap).is_err());
    }

    #[test]
    fn idle_producers_expire() {
        let mut state = ProducerStateManager::new();
        appended(&mut state, header(1, 0, 0, 1, 0)); // last timestamp 1000
        appended(&mut state, header(2, 0, 0, 1, 50)); // last timestamp 1050
        assert_eq!(state.expire(2040, 1000), 1);
        assert!(state.get(1).is_none() && state.get(2).is_some());
    }

    #[test]
    fn snapshot_round_trips_and_detects_corruption() {
        let mut state = ProducerStateManager::new();
        for i in 0..7 {
            appended(&mut state, header(3, 2, i, 1, i64::from(i)));
        }
        appended(&mut state, header(4, 0, 10, 5, 10));
        let bytes = state.encode_snapshot();
        assert_eq!(
            ProducerStateManager::decode_snapshot(&bytes),
            Some(state.clone())
        );
        for at in [0, 9, 14, bytes.len() - 1] {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= 0x40;
            assert_eq!(
                ProducerStateManager::decode_snapshot(&corrupt),
                None,
                "flip at {at}"
            );
        }
        assert_eq!(
            ProducerStateManager::decode_snapshot(&bytes[..bytes.len() - 1]),
            None
        );
    }

    #[test]
    fn a_control_batch_moves_the_epoch_without_taking_a_batch_slot() {
        let mut state = ProducerStateManager::new();
        appended(&mut state, header(1, 0, 0, 2, 0));
        let mut marker = header(1, 0, NO_SEQUENCE, 1, 2);
        marker.attributes = 0b11_0000; // transactional + control
        state.update(&marker);
        assert_eq!(state.get(1).map(|e| e.batches.len()), Some(1));
        assert_eq!(state.get(1).map(ProducerEntry::last_sequence), Some(1));
        assert!(
            state.check(&[header(1, 0, 5, 1, 3)]).is_err(),
            "the marker does not hide the last sequence"
        );
        let mut bumped = header(1, 1, NO_SEQUENCE, 1, 3);
        bumped.attributes = 0b11_0000;
        state.update(&bumped);
        assert_eq!(
            state.get(1).map(|e| (e.epoch, e.batches.len())),
            Some((1, 0))
        );
    }

    #[test]
    fn truncation_forgets_later_batches() {
        let mut state = ProducerStateManager::new();
        appended(&mut state, header(1, 0, 0, 2, 0));
        appended(&mut state, header(1, 0, 2, 2, 2));
        appended(&mut state, header(2, 0, 0, 1, 4));
        state.truncate_from(2);
        assert_eq!(state.get(1).map(ProducerEntry::last_sequence), Some(1));
        assert!(state.get(2).is_none());
    }

    fn transactional(mut h: BatchHeader) -> BatchHeader {
        h.attributes |= crate::batch::TRANSACTIONAL_BIT;
        h
    }

    fn marker(producer_id: i64, epoch: i16, offset: i64) -> BatchHeader {
        let mut h = header(producer_id, epoch, NO_SEQUENCE, 1, offset);
        h.attributes |= crate::batch::TRANSACTIONAL_BIT | crate::batch::CONTROL_BIT;
        h
    }

    #[test]
    fn a_transaction_is_open_from_its_first_batch_to_its_marker() {
        let mut state = ProducerStateManager::new();
        appended(&mut state, header(9, 0, 0, 1, 0));
        assert_eq!(
            state.first_unstable_offset(),
            None,
            "idempotent, not transactional"
        );
        appended(&mut state, transactional(header(1, 0, 0, 2, 1)));
        appended(&mut state, transactional(header(2, 0, 0, 1, 3)));
        appended(&mut state, transactional(header(1, 0, 2, 1, 4)));
        assert_eq!(state.first_unstable_offset(), Some(1));
        assert_eq!(
            state.open_transactions().collect::<Vec<_>>(),
            vec![(1, 1), (2, 3)]
        );

        assert_eq!(
            state.update(&marker(1, 0, 5)),
            Some(CompletedTxn {
                producer_id: 1,
                first_offset: 1,
                last_offset: 5
            })
        );
        assert_eq!(state.first_unstable_offset(), Some(3));
        assert_eq!(
            state.update(&marker(2, 0, 6)).map(|t| t.first_offset),
            Some(3)
        );
        assert_eq!(state.first_unstable_offset(), None);
        // A marker with nothing open (an abort of an empty transaction) ends nothing.
        assert_eq!(state.update(&marker(2, 0, 7)), None);
        // The next transaction of the same producer starts at its own first batch.
        appended(&mut state, transactional(header(1, 0, 3, 1, 8)));
        assert_eq!(state.first_unstable_offset(), Some(8));
    }

    #[test]
    fn a_producer_with_an_open_transaction_does_not_expire() {
        let mut state = ProducerStateManager::new();
        appended(&mut state, transactional(header(1, 0, 0, 1, 0)));
        appended(&mut state, header(2, 0, 0, 1, 1));
        assert_eq!(state.expire(i64::MAX / 2, 1000), 1);
        assert_eq!(state.first_unstable_offset(), Some(0));
        state.update(&marker(1, 0, 2));
        assert_eq!(state.expire(i64::MAX / 2, 1000), 1);
        assert!(state.is_empty());
    }

    #[test]
    fn truncation_closes_a_transaction_that_started_after_it() {
        let mut state = ProducerStateManager::new();
        appended(&mut state, transactional(header(1, 0, 0, 1, 0)));
        appended(&mut state, header(2, 0, 0, 1, 1));
        appended(&mut state, transactional(header(2, 0, 1, 1, 2)));
        state.truncate_from(2);
        assert_eq!(state.open_transactions().collect::<Vec<_>>(), vec![(1, 0)]);
    }

    #[test]
    fn snapshots_keep_open_transactions_and_version_1_still_loads() {
        let mut state = ProducerStateManager::new();
        appended(&mut state, transactional(header(1, 0, 0, 2, 10)));
        appended(&mut state, header(2, 0, 0, 1, 12));
        let bytes = state.encode_snapshot();
        assert_eq!(
            ProducerStateManager::decode_snapshot(&bytes),
            Some(state.clone())
        );

        // The same state as version 1 wrote it: no open-transaction field.
        let mut body = Vec::new();
        body.extend_from_slice(&2u32.to_be_bytes());
        for (producer_id, entry) in state.iter() {
            body.extend_from_slice(&producer_id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            body.push(entry.batches.len() as u8);
            for batch in &entry.batches {
                body.extend_from_slice(&batch.first_sequence.to_be_bytes());
                body.extend_from_slice(&batch.last_sequence.to_be_bytes());
                body.extend_from_slice(&batch.first_offset.to_be_bytes());
                body.extend_from_slice(&batch.last_offset.to_be_bytes());
                body.extend_from_slice(&batch.max_timestamp.to_be_bytes());
            }
        }
        let mut v1 = SNAPSHOT_MAGIC.to_vec();
        v1.extend_from_slice(&1u16.to_be_bytes());
        v1.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        v1.extend_from_slice(&body);
        let loaded = ProducerStateManager::decode_snapshot(&v1).expect("version 1 loads");
        assert_eq!(loaded.first_unstable_offset(), None);
        assert_eq!(loaded.get(1).map(|e| e.last_offset()), Some(11));
    }
}
