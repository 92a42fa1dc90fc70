//! [`Log::append_as_follower`]: a follower's append of the record batches it fetched from its
//! leader.
//!
//! The batches are stored as the leader stored them: same offsets, same partition leader
//! epochs, same bytes. Nothing is patched, so the follower's log is a byte-for-byte copy of the
//! leader's and a read from either returns the same bytes. The flow:
//!
//! ```text
//! fetched bytes
//!   -> follower_batches (pure, before any lock): framing, magic, CRC32C, offsets increasing
//!      and consecutive, leader epochs not decreasing; a batch cut by the end of the fetch
//!      is left for the next fetch
//!   -> append lock: the first batch must start at the log end offset, and its epoch must not
//!      be older than the epoch cache's latest
//!   -> for each run of batches that go to one segment: roll if needed, teach the epoch
//!      cache the run's new epochs, one pwritev of the run straight from the fetched bytes
//!      (index entries as the leader adds them), producer state, publish the log end offset
//!   -> flush.messages, after the lock
//! ```
//!
//! What the leader checked when it accepted the batches is not checked again, as in Kafka:
//! timestamps, `max.message.bytes`, keys on compacted topics, producer sequences.
//! Transactional and control batches are stored like any other; a control batch also ends
//! its producer's transaction in the producer state and, for an ABORT, adds an entry to the
//! segment's aborted-transaction index, so a follower that becomes leader serves
//! read_committed fetches as its leader did.

use std::io::IoSlice;
use std::sync::atomic::Ordering;

use super::{AppendShape, Planned, Writer, lock, roll_reason};
use crate::batch::{self, BatchError, BatchHeader, Validation};
use crate::producer_state::ProducerStateManager;
use crate::segment::LogSegment;
use crate::{AppendError, AppendInfo, Log, LogConfig};

impl Log {
    /// Appends record batches fetched from the leader, keeping their offsets, partition leader
    /// epochs and bytes. `records` is a Fetch response's records for this partition: one or
    /// more concatenated v2 batches, possibly ending with a batch cut short by the response's
    /// size limit, which is left out (not an error). `last_offset + 1` of the result is the
    /// next fetch offset; when `records` holds no whole batch nothing is written and it is the
    /// log end offset.
    ///
    /// Refused with nothing written: a batch with bad framing, magic, length or CRC32C, offsets
    /// that go backwards or a leader epoch older than the one before it ([`AppendError::Corrupt`],
    /// the caller refetches); a first batch that does not start at the log end offset, or a gap
    /// between batches ([`AppendError::OffsetMismatch`]). Gaps are accepted on compacted topics,
    /// where the leader's cleaner removes whole batches.
    ///
    /// The write path is the leader's: the append lock, segment rolls (decided batch by batch,
    /// so one large fetch does not make one oversized segment), index entries every
    /// `index.interval.bytes`, the leader-epoch cache and the producer state updated, the log
    /// end offset published after each segment's write, `flush.messages`. An IO error takes
    /// the log offline; batches already published to an earlier segment by the same call stay
    /// (recovery keeps what is whole).
    pub fn append_as_follower(
        &self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.check_online()?;
        let config = self.config();
        let gaps_allowed = config.cleanup_policy.compact;
        // Validation is pure CPU over the fetched bytes: done before taking the lock.
        let headers = follower_batches(records, gaps_allowed)?;

        let mut writer = lock(&self.writer);
        self.check_online()?;
        let log_end_offset = self.log_end_offset.load(Ordering::Acquire);
        let (Some((_, first)), Some((_, last))) = (headers.first(), headers.last()) else {
            return Ok(self.nothing_appended(log_end_offset));
        };
        check_continues(log_end_offset, first.base_offset, gaps_allowed)?;
        self.check_epoch_continues(first.partition_leader_epoch)?;

        let Writer { producers, .. } = &mut *writer;
        let mut rest = headers.as_slice();
        while let Some((_, next)) = rest.first() {
            let active = self.roll_if_needed(
                producers,
                &config,
                &AppendShape::of(next),
                next.base_offset,
                now_ms,
            )?;
            let (run, tail) = rest.split_at(run_length(&active, rest, &config, now_ms));
            self.append_run(producers, &active, records, run, &config, now_ms)?;
            rest = tail;
        }
        drop(writer);

        self.flush_if_messages_due(&config)?;
        Ok(AppendInfo {
            first_offset: first.base_offset,
            last_offset: last.last_offset(),
            log_append_time_ms: -1,
            log_start_offset: self.log_start_offset(),
            record_count: record_count(&headers),
            duplicate: false,
        })
    }

    /// Writes `run`, batches that all go to `segment`, as one slice of the fetched bytes, and
    /// publishes them. Called with the append lock held.
    fn append_run(
        &self,
        producers: &mut ProducerStateManager,
        segment: &LogSegment,
        records: &[u8],
        run: &[(usize, BatchHeader)],
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(), AppendError> {
        let (Some((start, _)), Some((last_position, last))) = (run.first(), run.last()) else {
            return Ok(());
        };
        // Like the leader, the cache learns an epoch before the data carrying it is written; a
        // crash in between leaves an entry past the log end, which opening the log trims.
        let mut previous_epoch = None;
        for (_, header) in run {
            if previous_epoch != Some(header.partition_leader_epoch) {
                self.assign_epoch(header.partition_leader_epoch, header.base_offset)?;
                previous_epoch = Some(header.partition_leader_epoch);
            }
        }
        // The run is contiguous in the fetched bytes; the segment wants positions within it.
        let headers: Vec<(usize, BatchHeader)> = run
            .iter()
            .map(|(position, header)| (position - start, *header))
            .collect();
        let bytes = &records[*start..last_position + last.size()];
        self.write_batches(segment, &mut [IoSlice::new(bytes)], &headers, config)?;
        // The producer state and the aborted-transaction index learn the leader's markers
        // here, as the leader's did when it appended them.
        self.publish_append(
            producers,
            segment,
            bytes,
            &headers,
            last.next_offset(),
            record_count(run),
            now_ms,
        )?;
        Ok(())
    }

    /// Refuses batches whose leader epoch is older than the latest one the log holds: the
    /// follower's log diverged from the leader's and must be truncated first (the caller's
    /// OffsetsForLeaderEpoch step), or the leader sent something that is not its log.
    fn check_epoch_continues(&self, epoch: i32) -> Result<(), AppendError> {
        match lock(&self.epochs).cache.latest_epoch() {
            Some(latest) if epoch < latest => Err(BatchError::LeaderEpochDecreased {
                epoch,
                previous: latest,
            }
            .into()),
            _ => Ok(()),
        }
    }

    /// The outcome of a follower append of no whole batch: the next fetch offset is still the
    /// log end offset.
    fn nothing_appended(&self, log_end_offset: i64) -> AppendInfo {
        AppendInfo {
            first_offset: log_end_offset,
            last_offset: log_end_offset - 1,
            log_append_time_ms: -1,
            log_start_offset: self.log_start_offset(),
            record_count: 0,
            duplicate: false,
        }
    }
}

/// The whole batches at the start of fetched `records`, each validated as stored data (the
/// leader's cleaner may have removed records, so the count may be below the offsets), with
/// their positions. A batch that the end of `records` cuts ends the list: fetch responses are
/// cut at their size limit, possibly inside a batch, and the next fetch starts at it.
fn follower_batches(
    records: &[u8],
    gaps_allowed: bool,
) -> Result<Vec<(usize, BatchHeader)>, AppendError> {
    let mut headers: Vec<(usize, BatchHeader)> = Vec::new();
    for batch in batch::batches(records, Validation::Stored) {
        let batch = match batch {
            Ok(batch) => batch,
            Err(BatchError::Truncated { .. }) => break,
            Err(error) => return Err(error.into()),
        };
        let header = batch::validate(batch.bytes, Validation::Stored)?;
        check_offsets_fit(&header)?;
        if let Some((_, previous)) = headers.last() {
            check_follows(previous, &header, gaps_allowed)?;
        }
        headers.push((batch.position, header));
    }
    Ok(headers)
}

/// The base offset comes from the network: a negative one, or one whose next offset
/// overflows, is refused before any offset arithmetic.
fn check_offsets_fit(header: &BatchHeader) -> Result<(), BatchError> {
    let next_offset = header
        .base_offset
        .checked_add(i64::from(header.last_offset_delta))
        .and_then(|last_offset| last_offset.checked_add(1));
    if header.base_offset < 0 || next_offset.is_none() {
        return Err(BatchError::InvalidBaseOffset {
            base_offset: header.base_offset,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(())
}

/// A batch must start after the one before it in the same fetch, without a gap unless gaps
/// are allowed, and must not carry an older leader epoch.
fn check_follows(
    previous: &BatchHeader,
    header: &BatchHeader,
    gaps_allowed: bool,
) -> Result<(), AppendError> {
    if header.base_offset <= previous.last_offset() {
        return Err(BatchError::OffsetsNotIncreasing {
            base_offset: header.base_offset,
            previous_last_offset: previous.last_offset(),
        }
        .into());
    }
    check_continues(previous.next_offset(), header.base_offset, gaps_allowed)?;
    if header.partition_leader_epoch < previous.partition_leader_epoch {
        return Err(BatchError::LeaderEpochDecreased {
            epoch: header.partition_leader_epoch,
            previous: previous.partition_leader_epoch,
        }
        .into());
    }
    Ok(())
}

/// A batch that should start at `expected` starts at `got`: refused if it overlaps what is
/// before it, or leaves a gap where gaps cannot be (a topic that was never compacted has
/// none, so a gap there means the fetch offset and the log disagree).
fn check_continues(expected: i64, got: i64, gaps_allowed: bool) -> Result<(), AppendError> {
    if got == expected || (got > expected && gaps_allowed) {
        return Ok(());
    }
    Err(AppendError::OffsetMismatch { expected, got })
}

/// How many of `batches` go to `segment` in one write: the first (the roll check made room for
/// it), then each next one while appending it after those before would not roll the segment.
/// The follower's segments thus follow the roll rules batch by batch, as the leader's did
/// when its producers sent one batch per request, even when one fetch brings more than a
/// segment holds. (Index fullness is judged as it is before the run, as the leader judges it
/// before a request.)
fn run_length(
    segment: &LogSegment,
    batches: &[(usize, BatchHeader)],
    config: &LogConfig,
    now_ms: i64,
) -> usize {
    let mut planned = Planned::of(segment);
    for (count, (_, header)) in batches.iter().enumerate() {
        if count > 0
            && roll_reason(segment, &planned, &AppendShape::of(header), config, now_ms).is_some()
        {
            return count;
        }
        planned.add(header);
    }
    batches.len()
}

fn record_count(headers: &[(usize, BatchHeader)]) -> i64 {
    headers
        .iter()
        .map(|(_, header)| i64::from(header.records_count))
        .sum()
}
