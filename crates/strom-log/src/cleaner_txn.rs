//! What the cleaner knows of transactions while it walks the cleaned range in offset order
//! (the role of Kafka's `CleanedTransactionMetadata`), as a pure core the cleaner feeds batch
//! headers to:
//! - which data batches belong to an aborted transaction: from the aborted-transaction index
//!   entries overlapping the range, a producer's transactional batches between an aborted
//!   transaction's first offset and its ABORT marker. The cleaner removes them and leaves
//!   their keys out of its key map, so an aborted record never shadows a committed one;
//! - whether a marker still ends a transaction with a batch in the cleaned output: the cleaner
//!   reports each transactional data batch it writes, and a marker whose transaction has none
//!   left may start its `delete.retention.ms` countdown;
//! - which batches the producer state needs on a rebuild (Kafka's "last batch of each
//!   producer"): the producer's last data batch, or, for a producer whose state holds no data
//!   batch (its epoch came from a marker), its markers at its current epoch.

use std::collections::{HashMap, HashSet};

use crate::batch::BatchHeader;
use crate::producer_state::ProducerStateManager;
use crate::txn_index::AbortedTxn;

/// The aborted transactions overlapping the cleaned range, by producer: `(first offset,
/// marker offset)`, marker order. A producer has one transaction open at a time, so its
/// ranges do not overlap.
#[derive(Debug, Default)]
pub(crate) struct AbortedRanges {
    by_producer: HashMap<i64, Vec<(i64, i64)>>,
}

impl AbortedRanges {
    pub(crate) fn new(entries: &[AbortedTxn]) -> AbortedRanges {
        let mut by_producer: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for entry in entries {
            by_producer
                .entry(entry.producer_id)
                .or_default()
                .push((entry.first_offset, entry.last_offset));
        }
        for ranges in by_producer.values_mut() {
            ranges.sort_unstable_by_key(|&(_, marker)| marker);
        }
        AbortedRanges { by_producer }
    }

    /// Whether a data batch belongs to an aborted transaction (a control batch never does:
    /// markers have their own rule).
    pub(crate) fn contains(&self, header: &BatchHeader) -> bool {
        if header.is_control() || !header.is_transactional() {
            return false;
        }
        let Some(ranges) = self.by_producer.get(&header.producer_id) else {
            return false;
        };
        // The only candidate is the first transaction whose marker comes after the batch.
        let next = ranges.partition_point(|&(_, marker)| marker <= header.base_offset);
        ranges
            .get(next)
            .is_some_and(|&(first, _)| first <= header.base_offset)
    }
}

/// The last batch of one producer the producer state refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LastBatch {
    /// The last offset of its last data batch; `None` when the state holds none.
    last_data_offset: Option<i64>,
    epoch: i16,
}

/// The transaction state of one cleaning, carried across its groups of segments.
#[derive(Debug, Default)]
pub(crate) struct CleanedTransactions {
    pub(crate) aborted: AbortedRanges,
    /// Producers whose current transaction has a data batch in the cleaned output.
    written: HashSet<i64>,
    producers: HashMap<i64, LastBatch>,
}

impl CleanedTransactions {
    pub(crate) fn new(aborted: &[AbortedTxn], producers: &ProducerStateManager) -> Self {
        let producers = producers
            .iter()
            .map(|(producer_id, entry)| {
                let last_offset = entry.last_offset();
                let last = LastBatch {
                    last_data_offset: (last_offset >= 0).then_some(last_offset),
                    epoch: entry.epoch,
                };
                (producer_id, last)
            })
            .collect();
        CleanedTransactions {
            aborted: AbortedRanges::new(aborted),
            written: HashSet::new(),
            producers,
        }
    }

    /// Whether the producer state rebuilt from the log needs this batch: it carries the
    /// producer's last sequence (a data batch), or its current epoch when the state has no data
    /// batch for it (a marker), which keeps fencing working after a restart.
    pub(crate) fn producer_needs(&self, header: &BatchHeader) -> bool {
        if !header.has_producer_id() {
            return false;
        }
        self.producers
            .get(&header.producer_id)
            .is_some_and(|last| match last.last_data_offset {
                Some(offset) => !header.is_control() && header.last_offset() == offset,
                None => header.is_control() && header.producer_epoch == last.epoch,
            })
    }

    /// Records that a data batch was written to the cleaned output.
    pub(crate) fn on_data_batch_written(&mut self, header: &BatchHeader) {
        if header.is_transactional() && header.has_producer_id() {
            self.written.insert(header.producer_id);
        }
    }

    /// Ends the producer's transaction at its marker; returns whether the marker must stay
    /// because a batch of its transaction is still in the log (a read_committed consumer, and
    /// a producer-state rebuild, need the marker to end that transaction).
    pub(crate) fn on_marker(&mut self, header: &BatchHeader) -> bool {
        self.written.remove(&header.producer_id) || self.producer_needs(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{BatchSpec, Rec, encode};

    fn header(
        producer_id: i64,
        base_offset: i64,
        transactional: bool,
        control: bool,
    ) -> BatchHeader {
        let bytes = encode(
            &[Rec::kv(b"k", b"v", 0)],
            &BatchSpec {
                producer_id,
                producer_epoch: 0,
                base_sequence: if control { -1 } else { 0 },
                transactional,
                control,
                ..BatchSpec::default()
            },
        );
        let mut header = BatchHeader::parse(&bytes).expect("header");
        header.base_offset = base_offset;
        header
    }

    fn aborted(producer_id: i64, first: i64, marker: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset: first,
            last_offset: marker,
            last_stable_offset: marker + 1,
        }
    }

    #[test]
    fn only_the_producers_transactional_batches_between_first_offset_and_abort_are_aborted() {
        let ranges = AbortedRanges::new(&[aborted(7, 10, 20), aborted(7, 30, 40)]);
        assert!(ranges.contains(&header(7, 10, true, false)));
        assert!(ranges.contains(&header(7, 19, true, false)));
        assert!(ranges.contains(&header(7, 35, true, false)));
        assert!(!ranges.contains(&header(7, 9, true, false)), "before it");
        assert!(!ranges.contains(&header(7, 25, true, false)), "between two");
        assert!(!ranges.contains(&header(7, 41, true, false)), "after");
        assert!(
            !ranges.contains(&header(8, 15, true, false)),
            "another producer"
        );
        assert!(!ranges.contains(&header(7, 15, false, false)), "idempotent");
        assert!(!ranges.contains(&header(7, 20, true, true)), "the marker");
    }

    #[test]
    fn a_marker_stays_while_a_batch_of_its_transaction_was_written() {
        let mut txns = CleanedTransactions::new(&[], &ProducerStateManager::new());
        txns.on_data_batch_written(&header(7, 0, true, false));
        txns.on_data_batch_written(&header(8, 1, false, false));
        assert!(txns.on_marker(&header(7, 2, true, true)));
        assert!(
            !txns.on_marker(&header(8, 3, true, true)),
            "idempotent only"
        );
        assert!(
            !txns.on_marker(&header(7, 4, true, true)),
            "the next transaction of the producer has no batch"
        );
    }

    #[test]
    fn the_producers_last_data_batch_or_its_marker_is_needed() {
        let mut state = ProducerStateManager::new();
        state.update(&header(7, 5, true, false));
        state.update(&header(8, 6, true, true));
        let txns = CleanedTransactions::new(&[], &state);
        assert!(txns.producer_needs(&header(7, 5, true, false)));
        assert!(!txns.producer_needs(&header(7, 3, true, false)));
        assert!(
            !txns.producer_needs(&header(7, 9, true, true)),
            "it has a data batch"
        );
        assert!(
            txns.producer_needs(&header(8, 6, true, true)),
            "only markers"
        );
        assert!(!txns.producer_needs(&header(9, 6, true, false)), "unknown");
    }
}
