//! The aborted-transaction index: per segment, the transactions whose ABORT marker landed in
//! it, so that a `read_committed` Fetch can list the aborted transactions its records overlap
//! and the consumer can drop their records. Kafka's `.txnindex` format, entry by entry:
//!
//! ```text
//! int16 version (0), int64 producer_id, int64 first_offset, int64 last_offset,
//! int64 last_stable_offset                                     (34 bytes, big-endian)
//! ```
//!
//! `last_offset` is the marker's offset; `last_stable_offset` is the partition's LSO right
//! after the marker, which lets a lookup stop early: once an entry's LSO is past the fetch's
//! upper bound, no later entry can overlap it.
//!
//! This module is the pure part (the entry format, the in-memory index and its queries, and
//! [`apply_batch`], which turns an appended batch into an entry); each segment keeps its
//! entries in a `<base offset>.txnindex` file (see `segment.rs`), written on every path that
//! stores an ABORT marker: the leader's marker append, the follower's append, and the replay
//! of the producer state when a log is opened or truncated.

use crate::batch::BatchHeader;
use crate::control;
use crate::producer_state::{CompletedTxn, ProducerStateManager};

/// Bytes per entry.
pub const ENTRY_BYTES: usize = 34;
const ENTRY_VERSION: i16 = 0;

/// One aborted transaction of one producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The ABORT marker's offset.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut out = [0u8; ENTRY_BYTES];
        out[0..2].copy_from_slice(&ENTRY_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// `None` for an entry of another version (Kafka refuses those too).
    pub fn decode(bytes: &[u8; ENTRY_BYTES]) -> Option<AbortedTxn> {
        let i64_at = |at: usize| {
            let mut field = [0u8; 8];
            field.copy_from_slice(&bytes[at..at + 8]);
            i64::from_be_bytes(field)
        };
        (i16::from_be_bytes([bytes[0], bytes[1]]) == ENTRY_VERSION).then(|| AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// Why an index file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnIndexError {
    #[error("transaction index entry {index} has an unknown version")]
    UnknownVersion { index: usize },
    #[error(
        "transaction index entry {index} ends at offset {last_offset}, before the previous one"
    )]
    OutOfOrder { index: usize, last_offset: i64 },
}

/// One segment's aborted transactions, in marker order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxnIndex {
    entries: Vec<AbortedTxn>,
}

impl TxnIndex {
    /// Reads a `.txnindex` file's bytes. A partial entry at the end (a crash mid-write) is
    /// dropped: recovery rebuilds what follows the recovery point anyway.
    pub fn decode(bytes: &[u8]) -> Result<TxnIndex, TxnIndexError> {
        let mut index = TxnIndex::default();
        for (i, chunk) in bytes.chunks_exact(ENTRY_BYTES).enumerate() {
            let mut entry = [0u8; ENTRY_BYTES];
            entry.copy_from_slice(chunk);
            let entry =
                AbortedTxn::decode(&entry).ok_or(TxnIndexError::UnknownVersion { index: i })?;
            if index
                .entries
                .last()
                .is_some_and(|last| entry.last_offset < last.last_offset)
            {
                return Err(TxnIndexError::OutOfOrder {
                    index: i,
                    last_offset: entry.last_offset,
                });
            }
            index.entries.push(entry);
        }
        Ok(index)
    }

    /// The whole file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.entries.iter().flat_map(AbortedTxn::encode).collect()
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Records an aborted transaction; its marker comes after every earlier one's.
    pub fn push(&mut self, entry: AbortedTxn) {
        debug_assert!(
            self.entries
                .last()
                .is_none_or(|last| last.last_offset <= entry.last_offset)
        );
        self.entries.push(entry);
    }

    /// Forgets transactions whose marker is at or after `offset` (the log was truncated
    /// there). Returns whether anything was dropped.
    pub fn truncate_to(&mut self, offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|entry| entry.last_offset < offset);
        self.entries.len() != before
    }

    /// Adds to `out` the transactions that overlap `[fetch_offset, upper_bound)`: aborted
    /// records a Fetch returning that range may contain. Returns `true` when the lookup is
    /// complete, i.e. no later segment can hold an overlapping transaction (an entry's last
    /// stable offset reached `upper_bound`); the caller moves on to the next segment otherwise.
    pub fn collect(&self, fetch_offset: i64, upper_bound: i64, out: &mut Vec<AbortedTxn>) -> bool {
        for entry in &self.entries {
            if entry.last_offset >= fetch_offset && entry.first_offset < upper_bound {
                out.push(*entry);
            }
            if entry.last_stable_offset >= upper_bound {
                return true;
            }
        }
        false
    }
}

/// Records a stored batch (`bytes`, its `header`, final offsets) in the producer state and
/// returns the transaction it ended, if it ended one, and the index entry when that
/// transaction was aborted. The entry's last stable offset is the partition's right after the
/// marker, as far as the producer state bounds it: the oldest other open transaction's first
/// offset, or the offset after the marker.
///
/// A control batch whose marker cannot be parsed ends the transaction in the producer state
/// (its header says it is a marker) but adds no entry; it is logged, since a read_committed
/// consumer may then see that transaction's records.
pub(crate) fn apply_batch(
    producers: &mut ProducerStateManager,
    header: &BatchHeader,
    bytes: &[u8],
) -> (Option<CompletedTxn>, Option<AbortedTxn>) {
    let Some(ended) = producers.update(header) else {
        return (None, None);
    };
    let aborted = match control::parse_marker(bytes, header) {
        Ok(Some(marker)) => !marker.commit,
        Ok(None) => false,
        Err(error) => {
            tracing::warn!(
                producer_id = header.producer_id,
                offset = header.base_offset,
                %error,
                "a transaction marker that cannot be parsed is not indexed"
            );
            false
        }
    };
    let entry = aborted.then(|| AbortedTxn {
        producer_id: ended.producer_id,
        first_offset: ended.first_offset,
        last_offset: ended.last_offset,
        last_stable_offset: producers
            .first_unstable_offset()
            .map_or(ended.last_offset + 1, |first| {
                first.min(ended.last_offset + 1)
            }),
    });
    (Some(ended), entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(producer_id: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn an_entry_is_kafkas_34_bytes() {
        let bytes = txn(0x0102, 3, 9, 10).encode();
        let mut expected = vec![0, 0];
        expected.extend_from_slice(&0x0102i64.to_be_bytes());
        expected.extend_from_slice(&3i64.to_be_bytes());
        expected.extend_from_slice(&9i64.to_be_bytes());
        expected.extend_from_slice(&10i64.to_be_bytes());
        assert_eq!(bytes.to_vec(), expected);
        assert_eq!(AbortedTxn::decode(&bytes), Some(txn(0x0102, 3, 9, 10)));
        let mut other_version = bytes;
        other_version[1] = 1;
        assert_eq!(AbortedTxn::decode(&other_version), None);
    }

    #[test]
    fn a_file_round_trips_and_a_partial_last_entry_is_dropped() {
        let mut index = TxnIndex::default();
        index.push(txn(1, 0, 5, 6));
        index.push(txn(2, 3, 8, 9));
        let mut bytes = index.encode();
        assert_eq!(bytes.len(), 2 * ENTRY_BYTES);
        assert_eq!(TxnIndex::decode(&bytes), Ok(index.clone()));
        bytes.extend_from_slice(&[0; 10]);
        assert_eq!(TxnIndex::decode(&bytes), Ok(index));
    }

    #[test]
    fn unknown_versions_and_disorder_are_refused() {
        let mut bytes = txn(1, 0, 5, 6).encode().to_vec();
        bytes.extend_from_slice(&txn(2, 0, 4, 6).encode());
        assert_eq!(
            TxnIndex::decode(&bytes),
            Err(TxnIndexError::OutOfOrder {
                index: 1,
                last_offset: 4
            })
        );
        bytes[ENTRY_BYTES + 1] = 7;
        assert_eq!(
            TxnIndex::decode(&bytes),
            Err(TxnIndexError::UnknownVersion { index: 1 })
        );
    }

    #[test]
    fn collect_returns_the_overlapping_transactions_and_says_when_to_stop() {
        let mut index = TxnIndex::default();
        index.push(txn(1, 0, 4, 5));
        index.push(txn(2, 2, 10, 11));
        index.push(txn(3, 12, 15, 20));
        let mut out = Vec::new();
        // [5, 12): the first ended before 5; the third starts at 12.
        assert!(index.collect(5, 12, &mut out), "entry 3's LSO 20 passes 12");
        assert_eq!(out, vec![txn(2, 2, 10, 11)]);
        out.clear();
        // Up to 30: every entry from 3 on overlaps, and a later segment may still hold more.
        assert!(!index.collect(3, 30, &mut out));
        assert_eq!(out.len(), 3);
    }

    fn header(producer_id: i64, base_offset: i64, records: i32, control: bool) -> BatchHeader {
        let mut bytes = crate::testing::encode(
            &[crate::testing::Rec::kv(b"k", b"v", 0)],
            &crate::testing::BatchSpec {
                producer_id,
                producer_epoch: 0,
                base_sequence: if control { -1 } else { 0 },
                transactional: true,
                control,
                ..crate::testing::BatchSpec::default()
            },
        )
        .to_vec();
        crate::batch::set_base_offset(&mut bytes, base_offset);
        let mut header = BatchHeader::parse(&bytes).expect("header");
        header.last_offset_delta = records - 1;
        header
    }

    #[test]
    fn an_abort_becomes_an_entry_with_the_oldest_other_open_transaction_as_its_lso() {
        let mut producers = ProducerStateManager::new();
        assert_eq!(
            apply_batch(&mut producers, &header(1, 0, 3, false), &[]),
            (None, None)
        );
        apply_batch(&mut producers, &header(2, 3, 1, false), &[]);
        let abort = control::marker_batch(
            1,
            0,
            control::Marker {
                commit: false,
                coordinator_epoch: 0,
            },
            0,
            0,
        );
        let mut abort = abort.to_vec();
        crate::batch::set_base_offset(&mut abort, 4);
        let abort_header = BatchHeader::parse(&abort).expect("header");
        let (ended, entry) = apply_batch(&mut producers, &abort_header, &abort);
        assert_eq!(ended.map(|t| (t.first_offset, t.last_offset)), Some((0, 4)));
        assert_eq!(entry, Some(txn(1, 0, 4, 3)), "producer 2 is open from 3");

        let commit = control::marker_batch(
            2,
            0,
            control::Marker {
                commit: true,
                coordinator_epoch: 0,
            },
            0,
            0,
        );
        let mut commit = commit.to_vec();
        crate::batch::set_base_offset(&mut commit, 5);
        let commit_header = BatchHeader::parse(&commit).expect("header");
        let (ended, entry) = apply_batch(&mut producers, &commit_header, &commit);
        assert!(ended.is_some());
        assert_eq!(entry, None, "a commit is not indexed");
    }

    #[test]
    fn truncation_forgets_transactions_whose_marker_is_gone() {
        let mut index = TxnIndex::default();
        index.push(txn(1, 0, 4, 5));
        index.push(txn(2, 2, 10, 11));
        assert!(index.truncate_to(10));
        assert_eq!(index.entries(), &[txn(1, 0, 4, 5)]);
        assert!(!index.truncate_to(10));
    }
}
