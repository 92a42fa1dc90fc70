//! [`Log::append_marker_as_leader`]: a partition leader writes the COMMIT or ABORT marker that
//! ends a producer's transaction (the WriteTxnMarkers path).
//!
//! The marker goes through the leader's write path like any batch (append lock, segment roll,
//! epoch cache, one write, producer state, log end offset), with two differences: the batch is
//! built here rather than taken from a request, and the producer check is the marker's own. A
//! marker from an epoch older than the producer's current one is refused: the coordinator
//! that sent it was replaced, or the producer was fenced, and the newer instance's transaction
//! must not be ended by it.

use crate::control::{self, Marker};
use crate::producer_state::CompletedTxn;
use crate::txn_index::AbortedTxn;
use crate::{AppendError, AppendInfo, Error, Log, batch};

use super::{AppendShape, Origin, Writer, lock};

impl Log {
    /// Appends a marker for `producer_id` at `producer_epoch` under `leader_epoch`. Returns the
    /// append and the transaction it ended (`None` when the producer had none open here, e.g. a
    /// partition added to a transaction that wrote nothing to it).
    pub fn append_marker_as_leader(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<(AppendInfo, Option<CompletedTxn>), AppendError> {
        self.check_online()?;
        let config = self.config();
        let mut bytes =
            control::marker_batch(producer_id, producer_epoch, marker, leader_epoch, now_ms);

        let mut writer = lock(&self.writer);
        self.check_online()?;
        let Writer { producers, .. } = &mut *writer;
        if let Some(entry) = producers.get(producer_id)
            && producer_epoch < entry.epoch
        {
            return Err(AppendError::ProducerFenced {
                producer_id,
                epoch: producer_epoch,
                current: entry.epoch,
            });
        }
        let offset = self
            .log_end_offset
            .load(std::sync::atomic::Ordering::Acquire);
        batch::set_base_offset(&mut bytes, offset);
        let header = batch::validate(&bytes, batch::Validation::Produce)?;
        let append = AppendShape {
            bytes: bytes.len() as u64,
            max_timestamp: now_ms,
            last_offset: offset,
        };
        let active = self.roll_if_needed(producers, &config, &append, offset, now_ms)?;
        self.assign_epoch(leader_epoch, offset)?;
        let headers = [(0usize, header)];
        self.write_batches(
            &active,
            &mut [std::io::IoSlice::new(&bytes)],
            &headers,
            &config,
        )?;
        let ended = self
            .publish_append(producers, &active, &bytes, &headers, offset + 1, 1, now_ms)?
            .pop();
        drop(writer);

        self.flush_if_messages_due(&config)?;
        Ok((
            AppendInfo {
                first_offset: offset,
                last_offset: offset,
                log_append_time_ms: -1,
                log_start_offset: self.log_start_offset(),
                record_count: 1,
                duplicate: false,
            },
            ended,
        ))
    }

    /// The group coordinator's own writes, notably TxnOffsetCommit's transactional offset
    /// commits: like [`Log::append_as_leader`], for batches written without sequence numbers
    /// (`base_sequence` -1, Kafka's NO_SEQUENCE) by the broker itself (Kafka's
    /// `AppendOrigin.COORDINATOR`). No sequence is checked and no retry is detected; a producer
    /// epoch older than the one the partition knows is fenced; a transactional batch opens
    /// its producer's transaction here, so the last stable offset and the markers that end it
    /// work as for a producer's batches. Control batches and batches with a sequence are
    /// refused ([`AppendError::InvalidRecord`]).
    pub fn append_as_coordinator(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let appended =
            self.append_as_leader_with(records, leader_epoch, now_ms, Origin::Coordinator, false)?;
        // A blocking append always completes.
        appended.ok_or_else(|| AppendError::Storage(Error::Offline(self.topic_partition().clone())))
    }

    /// The aborted transactions whose records a fetch of `[from_offset, upper_bound)` may
    /// return, oldest marker first: those whose range `[first_offset, marker offset]` overlaps
    /// it. The lookup starts at the segment holding `from_offset` (a transaction whose marker
    /// is in an earlier segment ended before it) and stops at the first entry whose last
    /// stable offset reaches `upper_bound`: every transaction ending later started at or after
    /// that offset, as Kafka reasons. Reads only in-memory indexes; takes no lock but the
    /// momentary segment-list one.
    pub fn aborted_transactions(&self, from_offset: i64, upper_bound: i64) -> Vec<AbortedTxn> {
        let mut aborted = Vec::new();
        if from_offset >= upper_bound {
            return aborted;
        }
        let segments = self.segments();
        let first = segments
            .partition_point(|segment| segment.base_offset() <= from_offset)
            .saturating_sub(1);
        // Later segments matter too: a transaction that started below `upper_bound` may have
        // its marker in any later segment.
        for segment in &segments[first..] {
            if segment.collect_aborted_txns(from_offset, upper_bound, &mut aborted) {
                break;
            }
        }
        aborted
    }
}
