//! Log compaction (`cleanup.policy=compact`): keeps the latest record per key, removes
//! tombstones once their delete horizon has passed (KIP-534), removes the records of aborted
//! transactions and, later, the markers of transactions with no batch left, and keeps
//! offsets, batch attributes and producer fields.
//!
//! One cleaning of a log:
//! 1. Decide ([`plan`], pure): the cleanable part is the inactive segments wholly below the
//!    last stable offset (so below the high watermark, and never part of an open transaction)
//!    and older than `min.compaction.lag.ms`; the dirty part is what lies after the cleaner's
//!    checkpoint. Clean when the dirty ratio reaches `min.cleanable.dirty.ratio`, or when the
//!    oldest dirty batch is older than `max.compaction.lag.ms`.
//! 2. Map: read the dirty segments and record the last offset of every key, within the dedupe
//!    buffer budget (whole segments; the map then ends at a segment boundary). Batches of
//!    aborted transactions stay out of the map: an aborted record must not shadow a committed
//!    one.
//! 3. Copy: for each group of consecutive segments below the map's end (at most
//!    `segment.bytes` together), write a `<base>.log.cleaned` segment beside the log: a batch
//!    whose records all survive is copied byte for byte; otherwise the survivors are
//!    re-encoded into a batch with the same base offset, last offset delta, attributes,
//!    producer fields and codec. A batch of an aborted transaction loses all its records. A
//!    tombstone that survives gets the batch's delete horizon set (now +
//!    `delete.retention.ms`) the first time; once the horizon has passed it goes. Markers
//!    follow the same clock (see `cleaner_txn.rs`): a marker whose transaction has no
//!    batch left in the output gets a delete horizon, and a later cleaning past it removes the
//!    marker and its aborted-transaction index entry. The group's last batch is always kept
//!    (as an empty batch if need be), so that the cleaned segment ends exactly where the
//!    segments it replaces end; so is the last batch of each producer, which the producer
//!    state refers to (and with it the marker of its transaction).
//! 4. Validate the cleaned segment (every batch re-read, CRC-checked, offsets increasing,
//!    same end offset), fsync it, and commit it by renaming it to `.swap` (indexes first, the
//!    `.log` last: a `.log.swap` is the commit point, see [`crate::recovery`]).
//! 5. Swap under the append lock (a pointer swap: appends and reads carry on; readers that
//!    hold the old segments keep reading their unlinked files), then rename the old segments
//!    to `.deleted`, the swap files to live names, and unlink the old files.
//!
//! A crash at any point leaves either the old segments or the committed cleaned segment, and
//! opening the log resolves the leftovers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::batch::{self, BatchFields, BatchHeader};
use crate::cleaner_txn::CleanedTransactions;
use crate::log::lock;
use crate::segment::{self, CLEANED_SUFFIX, LogSegment, SWAP_SUFFIX, SegmentFile};
use crate::{Error, Log, LogConfig, Result};

/// What one cleaning did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanerStats {
    /// Segments read and rewritten.
    pub segments_cleaned: usize,
    /// Cleaned segments swapped in.
    pub groups: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_removed: u64,
    /// The cleaner checkpoint after this cleaning.
    pub first_dirty_offset: i64,
}

/// What the cleaner knows of a segment when deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSummary {
    pub base_offset: i64,
    /// The next segment's base offset (the log end offset for the active segment).
    pub next_base_offset: i64,
    pub size_bytes: u64,
    pub largest_timestamp: i64,
    /// Max timestamp of the first batch (-1 when unknown or empty).
    pub first_batch_timestamp: i64,
}

/// The decision of [`plan`]: segments `[0, dirty_end)` are considered, those from
/// `dirty_start` on are dirty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleaningPlan {
    pub dirty_start: usize,
    pub dirty_end: usize,
    pub dirty_ratio: f64,
    /// Cleaning is forced by `max.compaction.lag.ms`.
    pub forced: bool,
}

/// Decides whether a log needs cleaning. `segments` are oldest first, the last one active.
/// Nothing at or past `last_stable_offset` is cleaned (Kafka's first uncleanable offset): it
/// is at most the high watermark, and an open transaction's records must stay as they are
/// until its marker decides whether they are committed or aborted.
pub fn plan(
    segments: &[SegmentSummary],
    first_dirty_offset: i64,
    last_stable_offset: i64,
    config: &LogConfig,
    now_ms: i64,
) -> Option<CleaningPlan> {
    let inactive = segments.len().saturating_sub(1);
    let dirty_start = segments[..inactive]
        .iter()
        .position(|s| s.next_base_offset > first_dirty_offset)
        .unwrap_or(inactive);
    let mut dirty_end = dirty_start;
    while dirty_end < inactive {
        let segment = &segments[dirty_end];
        if segment.next_base_offset > last_stable_offset {
            break;
        }
        if config.min_compaction_lag_ms > 0
            && segment.largest_timestamp > now_ms.saturating_sub(config.min_compaction_lag_ms)
        {
            break;
        }
        dirty_end += 1;
    }
    if dirty_end == dirty_start {
        return None;
    }
    let dirty: u64 = segments[dirty_start..dirty_end]
        .iter()
        .map(|s| s.size_bytes)
        .sum();
    let clean: u64 = segments[..dirty_start].iter().map(|s| s.size_bytes).sum();
    let dirty_ratio = if dirty + clean == 0 {
        0.0
    } else {
        dirty as f64 / (dirty + clean) as f64
    };
    let first_timestamp = segments[dirty_start].first_batch_timestamp;
    let forced = config.max_compaction_lag_ms < i64::MAX
        && first_timestamp >= 0
        && now_ms.saturating_sub(first_timestamp) > config.max_compaction_lag_ms;
    if dirty == 0 || (dirty_ratio < config.min_cleanable_dirty_ratio && !forced) {
        return None;
    }
    Some(CleaningPlan {
        dirty_start,
        dirty_end,
        dirty_ratio,
        forced,
    })
}

/// Points of a cleaning at which tests simulate a crash.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CrashPoint {
    /// The `.cleaned` files are written and fsynced.
    AfterCleaned,
    /// The index files are renamed to `.swap`, the log file not yet.
    AfterIndexSwapRename,
    /// The `.log.swap` exists (committed).
    AfterCommit,
    /// The first old segment was renamed to `.deleted`.
    AfterFirstOldDeleted,
    /// The swap's index files got their live names, the log file not yet.
    AfterSwapIndexLive,
    /// Everything renamed; the `.deleted` files not yet unlinked.
    BeforeUnlink,
}

#[cfg(test)]
thread_local! {
    pub(crate) static CRASH_AT: std::cell::Cell<Option<CrashPoint>> = const { std::cell::Cell::new(None) };
}

#[cfg(test)]
fn crash_here(point: CrashPoint) -> Result<()> {
    if CRASH_AT.with(|at| at.get()) == Some(point) {
        return Err(Error::Io {
            op: "simulated crash",
            path: std::path::PathBuf::new(),
            source: std::io::Error::other(format!("crash at {point:?}")),
        });
    }
    Ok(())
}

#[cfg(not(test))]
macro_rules! crash_point {
    ($point:ident) => {};
}
#[cfg(test)]
macro_rules! crash_point {
    ($point:ident) => {
        crash_here(CrashPoint::$point)?
    };
}

/// Cleans `log` once if it needs it. Returns `None` when there was nothing to do.
pub fn clean(log: &Log, now_ms: i64, dedupe_buffer_bytes: u64) -> Result<Option<CleanerStats>> {
    log.check_online()?;
    let config = log.config();
    if !config.cleanup_policy.compact {
        return Ok(None);
    }
    let _maintenance = lock(&log.maintenance);
    let segments = log.segments();
    let log_end_offset = log.log_end_offset();
    let summaries: Vec<SegmentSummary> = segments
        .iter()
        .enumerate()
        .map(|(i, segment)| {
            let stats = segment.stats();
            SegmentSummary {
                base_offset: segment.base_offset(),
                next_base_offset: segments
                    .get(i + 1)
                    .map_or(log_end_offset, |next| next.base_offset()),
                size_bytes: segment.size(),
                largest_timestamp: stats.max_timestamp,
                first_batch_timestamp: stats.first_batch_max_timestamp.unwrap_or(-1),
            }
        })
        .collect();
    let first_dirty = log.first_dirty_offset().max(log.log_start_offset());
    let Some(plan) = plan(
        &summaries,
        first_dirty,
        log.last_stable_offset(),
        &config,
        now_ms,
    ) else {
        return Ok(None);
    };
    let mut stats = CleanerStats::default();

    // The aborted transactions that may have records in the cleaned range: it starts at the
    // first segment and ends with the dirty part at the latest. Their markers may be in any
    // later segment, which `aborted_transactions` looks into. The producer state is read
    // before the copy: batches appended meanwhile are past the cleaned range.
    let cleaned_start = summaries[0].base_offset;
    let cleaned_end = summaries[plan.dirty_end - 1].next_base_offset;
    let mut txns = CleanedTransactions::new(
        &log.aborted_transactions(cleaned_start, cleaned_end),
        &log.producer_state(),
    );

    // Map the dirty segments' keys to their last offsets, whole segments within the budget.
    let mut map: HashMap<Vec<u8>, i64> = HashMap::new();
    let mut map_bytes = 0u64;
    let mut map_end = plan.dirty_start;
    for segment in &segments[plan.dirty_start..plan.dirty_end] {
        if map_end > plan.dirty_start && map_bytes >= dedupe_buffer_bytes {
            break;
        }
        let path = segment.path(SegmentFile::Log);
        let mut failure = None;
        let end = segment::scan(
            segment.log_file(),
            &path,
            0,
            segment.size(),
            true,
            |_, header, bytes| {
                // A marker's key is its control type, not a record key: markers stay out of
                // the map, so they neither replace each other nor any record.
                if header.is_control() {
                    return true;
                }
                if txns.aborted.contains(header) {
                    return true;
                }
                let mapped = for_each_record(header, bytes, |offset, record| {
                    if let Some(key) = record.key {
                        match map.get_mut(key) {
                            Some(latest) => *latest = offset,
                            None => {
                                map_bytes += key.len() as u64 + 48;
                                map.insert(key.to_vec(), offset);
                            }
                        }
                    }
                });
                match mapped {
                    Ok(()) => true,
                    Err(error) => {
                        failure = Some(error);
                        false
                    }
                }
            },
        )
        .map_err(|e| log.fail("compaction read", &path, e))?;
        if let Some(error) = failure.or(end.error) {
            tracing::warn!(partition = %log.topic_partition(), path = %path.display(), %error, "compaction skipped: unreadable batch");
            return Ok(None);
        }
        map_end += 1;
    }
    let map_end_offset = summaries[map_end - 1].next_base_offset;

    // Groups of consecutive segments that fit one segment.
    let mut start = 0;
    while start < map_end {
        let mut end = start + 1;
        let mut size = segments[start].size();
        while end < map_end {
            let next = &segments[end];
            let span_ok = crate::index::relative_offset(
                segments[start].base_offset(),
                summaries[end].next_base_offset - 1,
            )
            .is_some();
            if size + next.size() > config.segment_bytes || !span_ok {
                break;
            }
            size += next.size();
            end += 1;
        }
        let context = CopyContext {
            map: &map,
            now_ms,
            delete_retention_ms: config.delete_retention_ms,
            // Where the group's data ends (a gap before the next segment is possible after a
            // repaired crash, so not the next segment's base offset).
            group_last_offset: segments[end - 1].stats().next_offset - 1,
        };
        clean_group(
            log,
            &config,
            &segments[start..end],
            &context,
            &mut txns,
            now_ms,
            &mut stats,
        )?;
        start = end;
    }
    log.set_first_dirty_offset(map_end_offset);
    stats.first_dirty_offset = log.first_dirty_offset();
    tracing::info!(partition = %log.topic_partition(), ?stats, "compacted");
    Ok(Some(stats))
}

struct CopyContext<'a> {
    map: &'a HashMap<Vec<u8>, i64>,
    now_ms: i64,
    delete_retention_ms: i64,
    group_last_offset: i64,
}

/// Calls `visit(offset, record)` for each record of a batch.
fn for_each_record(
    header: &BatchHeader,
    bytes: &[u8],
    mut visit: impl FnMut(i64, batch::RecordRef<'_>),
) -> Result<(), batch::BatchError> {
    let payload = batch::records_payload(bytes)?;
    for record in batch::records(payload.as_slice(), header.records_count) {
        let record = record?;
        visit(header.base_offset + i64::from(record.offset_delta), record);
    }
    Ok(())
}

/// What to write for one source batch.
enum Filtered {
    Verbatim,
    Rebuilt(bytes::BytesMut),
    Dropped,
}

fn filter_batch(
    header: &BatchHeader,
    bytes: &[u8],
    context: &CopyContext<'_>,
    txns: &mut CleanedTransactions,
    stats: &mut CleanerStats,
) -> Result<Filtered, batch::BatchError> {
    if header.is_control() {
        return filter_marker(header, bytes, context, txns, stats);
    }
    let filtered = filter_data_batch(header, bytes, context, txns, stats)?;
    if !matches!(filtered, Filtered::Dropped) {
        txns.on_data_batch_written(header);
    }
    Ok(filtered)
}

/// A marker stays while a batch of its transaction is in the log: a read_committed consumer
/// needs it to end that transaction, and so does a producer-state rebuild. After that it is
/// treated like a tombstone (Kafka piggy-backs on the tombstone rule the same way): the first
/// cleaning that finds it removable sets its batch's delete horizon to now +
/// `delete.retention.ms`, so that a consumer that read the transaction's records before they
/// were cleaned still meets the marker; a cleaning after the horizon removes it.
fn filter_marker(
    header: &BatchHeader,
    bytes: &[u8],
    context: &CopyContext<'_>,
    txns: &mut CleanedTransactions,
    stats: &mut CleanerStats,
) -> Result<Filtered, batch::BatchError> {
    let records = i64::from(header.records_count.max(0)) as u64;
    stats.records_read += records;
    let needed = txns.on_marker(header);
    // A control batch that is not a COMMIT or ABORT marker is not Strom's to remove.
    let is_marker = matches!(crate::control::parse_marker(bytes, header), Ok(Some(_)));
    if needed || !is_marker {
        return Ok(Filtered::Verbatim);
    }
    match header.delete_horizon_ms() {
        None => {
            let payload = batch::records_payload(bytes)?;
            let kept = batch::records(payload.as_slice(), header.records_count)
                .collect::<Result<Vec<_>, _>>()?;
            rebuild(header, &kept, true, context).map(Filtered::Rebuilt)
        }
        // The group's last batch keeps the cleaned segment's end offset; the marker stays
        // whole rather than becoming an empty control batch.
        Some(horizon)
            if context.now_ms >= horizon && header.last_offset() != context.group_last_offset =>
        {
            stats.records_removed += records;
            Ok(Filtered::Dropped)
        }
        Some(_) => Ok(Filtered::Verbatim),
    }
}

/// Keeps the latest record of each key (a tombstone until its horizon); a batch of an aborted
/// transaction keeps none.
fn filter_data_batch(
    header: &BatchHeader,
    bytes: &[u8],
    context: &CopyContext<'_>,
    txns: &CleanedTransactions,
    stats: &mut CleanerStats,
) -> Result<Filtered, batch::BatchError> {
    let aborted = txns.aborted.contains(header);
    let payload = batch::records_payload(bytes)?;
    let horizon = header.delete_horizon_ms();
    let mut total = 0u64;
    let mut kept = Vec::new();
    let mut tombstone_kept = false;
    for record in batch::records(payload.as_slice(), header.records_count) {
        let record = record?;
        total += 1;
        if aborted {
            continue;
        }
        let offset = header.base_offset + i64::from(record.offset_delta);
        let Some(key) = record.key else { continue };
        if context.map.get(key).is_some_and(|&latest| offset < latest) {
            continue;
        }
        if record.value.is_none() {
            if horizon.is_some_and(|horizon| context.now_ms >= horizon) {
                continue;
            }
            tombstone_kept = true;
        }
        kept.push(record);
    }
    stats.records_read += total;
    stats.records_removed += total - kept.len() as u64;
    let set_horizon = tombstone_kept && horizon.is_none();
    if kept.len() as u64 == total && !set_horizon {
        return Ok(Filtered::Verbatim);
    }
    if kept.is_empty() {
        if header.last_offset() != context.group_last_offset && !txns.producer_needs(header) {
            return Ok(Filtered::Dropped);
        }
        // An empty batch keeps the offsets (and the producer's sequence) without records;
        // like Kafka's, it is written uncompressed.
        let fields = BatchFields {
            base_offset: header.base_offset,
            partition_leader_epoch: header.partition_leader_epoch,
            attributes: header.attributes & !0x07,
            last_offset_delta: header.last_offset_delta,
            base_timestamp: header.base_timestamp,
            max_timestamp: header.max_timestamp,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            records_count: 0,
        };
        return batch::build_batch(&fields, &[]).map(Filtered::Rebuilt);
    }
    rebuild(header, &kept, set_horizon, context).map(Filtered::Rebuilt)
}

/// Re-encodes `kept` records of a batch with its offsets, attributes, producer fields and
/// codec; `set_horizon` sets the delete horizon (stored as the base timestamp, KIP-534).
fn rebuild(
    header: &BatchHeader,
    kept: &[batch::RecordRef<'_>],
    set_horizon: bool,
    context: &CopyContext<'_>,
) -> Result<bytes::BytesMut, batch::BatchError> {
    let horizon = header.delete_horizon_ms();
    let new_base_timestamp = if set_horizon {
        context.now_ms.saturating_add(context.delete_retention_ms)
    } else {
        header.base_timestamp
    };
    let mut encoded = Vec::new();
    let mut max_timestamp = i64::MIN;
    for record in kept {
        let timestamp = header.base_timestamp.saturating_add(record.timestamp_delta);
        max_timestamp = max_timestamp.max(timestamp);
        batch::encode_record(
            &mut encoded,
            timestamp.saturating_sub(new_base_timestamp),
            record.offset_delta,
            record.key,
            record.value,
            record.headers,
        );
    }
    let fields = BatchFields {
        base_offset: header.base_offset,
        partition_leader_epoch: header.partition_leader_epoch,
        attributes: batch::attributes_with_delete_horizon(
            header.attributes,
            set_horizon || horizon.is_some(),
        ),
        last_offset_delta: header.last_offset_delta,
        base_timestamp: new_base_timestamp,
        max_timestamp: if header.is_log_append_time() {
            header.max_timestamp
        } else {
            max_timestamp
        },
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
        records_count: kept.len() as i32,
    };
    batch::build_batch(&fields, &encoded)
}

/// Writes, validates, commits and swaps in the cleaned segment of one group.
fn clean_group(
    log: &Log,
    config: &LogConfig,
    group: &[Arc<LogSegment>],
    context: &CopyContext<'_>,
    txns: &mut CleanedTransactions,
    now_ms: i64,
    stats: &mut CleanerStats,
) -> Result<()> {
    let dir = log.dir();
    let base = group[0].base_offset();
    let cleaned_path = segment::segment_path(dir, base, SegmentFile::Log, CLEANED_SUFFIX);
    let fail = |e| log.fail("compaction write", &cleaned_path, e);
    let cleaned = LogSegment::create(
        dir,
        base,
        config.segment_index_bytes,
        now_ms,
        0,
        CLEANED_SUFFIX,
    )
    .map_err(fail)?;

    let mut out = Vec::with_capacity(1 << 20);
    let mut out_headers: Vec<(usize, BatchHeader)> = Vec::new();
    let mut written_batches = 0usize;
    let mut dropped_markers = HashSet::new();
    for segment in group {
        let path = segment.path(SegmentFile::Log);
        let mut failure: Option<batch::BatchError> = None;
        let mut write_error = None;
        let end = segment::scan(
            segment.log_file(),
            &path,
            0,
            segment.size(),
            true,
            |_, header, bytes| {
                stats.bytes_read += bytes.len() as u64;
                let filtered = match filter_batch(header, bytes, context, txns, stats) {
                    Ok(filtered) => filtered,
                    Err(error) => {
                        failure = Some(error);
                        return false;
                    }
                };
                let written: &[u8] = match &filtered {
                    Filtered::Verbatim => bytes,
                    Filtered::Rebuilt(rebuilt) => rebuilt,
                    Filtered::Dropped => {
                        if header.is_control() {
                            dropped_markers.insert(header.base_offset);
                        }
                        return true;
                    }
                };
                let Ok(written_header) = BatchHeader::parse(written) else {
                    failure = Some(batch::BatchError::Truncated {
                        needed: batch::RECORD_BATCH_OVERHEAD,
                        available: written.len(),
                    });
                    return false;
                };
                out_headers.push((out.len(), written_header));
                out.extend_from_slice(written);
                written_batches += 1;
                if out.len() >= 1 << 20 {
                    if let Err(error) = cleaned.append(
                        &mut [std::io::IoSlice::new(&out)],
                        &out_headers,
                        config.index_interval_bytes,
                    ) {
                        write_error = Some(error);
                        return false;
                    }
                    stats.bytes_written += out.len() as u64;
                    out.clear();
                    out_headers.clear();
                }
                true
            },
        )
        .map_err(|e| log.fail("compaction read", &path, e))?;
        if let Some(error) = write_error {
            return Err(fail(error));
        }
        if let Some(error) = failure.or(end.error) {
            discard(&cleaned);
            return Err(Error::Io {
                op: "compaction",
                path,
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string()),
            });
        }
        stats.segments_cleaned += 1;
    }
    if !out.is_empty() {
        cleaned
            .append(
                &mut [std::io::IoSlice::new(&out)],
                &out_headers,
                config.index_interval_bytes,
            )
            .map_err(fail)?;
        stats.bytes_written += out.len() as u64;
    }
    // The cleaned segment answers for the aborted transactions of the segments it replaces,
    // except those whose marker it removed: the marker goes only once no batch of the
    // transaction is left, so no record needs the entry any more.
    let aborted: Vec<_> = group
        .iter()
        .flat_map(|s| s.aborted_txns())
        .filter(|entry| !dropped_markers.contains(&entry.last_offset))
        .collect();
    cleaned.set_aborted_txns(&aborted).map_err(fail)?;
    cleaned.on_become_inactive().map_err(fail)?;
    cleaned.sync_all().map_err(fail)?;

    // Validate before anything refers to the output.
    let mut count = 0usize;
    let mut next = base;
    let mut ordered = true;
    let validation = segment::scan(
        cleaned.log_file(),
        &cleaned_path,
        0,
        cleaned.size(),
        true,
        |_, header, _| {
            ordered &= header.base_offset >= next;
            next = header.next_offset();
            count += 1;
            true
        },
    )
    .map_err(fail)?;
    let expected_end = context.group_last_offset + 1;
    if validation.error.is_some()
        || validation.valid_end != cleaned.size()
        || count != written_batches
        || !ordered
        || next != expected_end
    {
        discard(&cleaned);
        return Err(Error::Io {
            op: "compaction validation",
            path: cleaned_path,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "cleaned segment failed validation ({count}/{written_batches} batches, ends at {next}, expected {expected_end})"
                ),
            ),
        });
    }
    crash_point!(AfterCleaned);

    // Commit: indexes to `.swap`, then the log (the commit point), then the directory.
    let swap_fail = |e| log.fail("compaction swap", &cleaned_path, e);
    for file in [
        SegmentFile::Index,
        SegmentFile::TimeIndex,
        SegmentFile::TxnIndex,
    ] {
        segment::rename_segment_file(
            file,
            &segment::segment_path(dir, base, file, CLEANED_SUFFIX),
            &segment::segment_path(dir, base, file, SWAP_SUFFIX),
        )
        .map_err(swap_fail)?;
    }
    crash_point!(AfterIndexSwapRename);
    crate::io::rename(
        &cleaned_path,
        &segment::segment_path(dir, base, SegmentFile::Log, SWAP_SUFFIX),
    )
    .map_err(swap_fail)?;
    cleaned.set_suffix(SWAP_SUFFIX);
    crate::io::sync_dir(dir).map_err(swap_fail)?;
    crash_point!(AfterCommit);

    // Swap in memory, under the append lock: a pointer swap.
    let cleaned = Arc::new(cleaned);
    {
        let _writer = lock(&log.writer);
        let current = log.segments();
        let Some(first) = current.iter().position(|s| Arc::ptr_eq(s, &group[0])) else {
            unreachable!("the maintenance lock keeps the group in the log");
        };
        let mut replaced = Vec::with_capacity(current.len());
        replaced.extend_from_slice(&current[..first]);
        replaced.push(cleaned.clone());
        replaced.extend_from_slice(&current[first + group.len()..]);
        log.replace_segments(replaced);
    }

    // Files: old segments to `.deleted`, the swap to live names, then unlink.
    for (i, old) in group.iter().enumerate() {
        old.rename_files(segment::DELETED_SUFFIX)
            .map_err(|e| log.fail("compaction swap", &old.path(SegmentFile::Log), e))?;
        if i == 0 {
            crash_point!(AfterFirstOldDeleted);
        }
    }
    for file in [
        SegmentFile::Index,
        SegmentFile::TimeIndex,
        SegmentFile::TxnIndex,
    ] {
        segment::rename_segment_file(
            file,
            &segment::segment_path(dir, base, file, SWAP_SUFFIX),
            &segment::segment_path(dir, base, file, ""),
        )
        .map_err(swap_fail)?;
    }
    crash_point!(AfterSwapIndexLive);
    crate::io::rename(
        &segment::segment_path(dir, base, SegmentFile::Log, SWAP_SUFFIX),
        &segment::segment_path(dir, base, SegmentFile::Log, ""),
    )
    .map_err(swap_fail)?;
    cleaned.set_suffix("");
    crash_point!(BeforeUnlink);
    for old in group {
        for file in SegmentFile::ALL {
            let path = old.path(file);
            crate::io::remove_file(&path).map_err(|e| log.fail("compaction delete", &path, e))?;
        }
    }
    crate::io::sync_dir(dir).map_err(swap_fail)?;
    log.mark_dir_dirty();
    stats.groups += 1;
    Ok(())
}

/// Best-effort removal of a cleaned segment that will not be used (a failed validation); a
/// leftover is removed by the next open anyway.
fn discard(cleaned: &LogSegment) {
    for file in SegmentFile::ALL {
        let _ = crate::io::remove_file(&cleaned.path(file));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CleanupPolicy;

    fn config() -> LogConfig {
        LogConfig {
            cleanup_policy: CleanupPolicy {
                delete: false,
                compact: true,
            },
            ..LogConfig::default()
        }
    }

    /// Segments of 100 bytes, 10 offsets each, the last one active.
    fn segments(count: usize, timestamp: i64) -> Vec<SegmentSummary> {
        (0..count)
            .map(|i| SegmentSummary {
                base_offset: i as i64 * 10,
                next_base_offset: (i as i64 + 1) * 10,
                size_bytes: 100,
                largest_timestamp: timestamp,
                first_batch_timestamp: timestamp,
            })
            .collect()
    }

    #[test]
    fn only_inactive_segments_below_the_high_watermark_are_cleanable() {
        let s = segments(4, 0);
        let plan = plan(&s, 0, 1_000, &config(), 0).expect("dirty");
        assert_eq!(
            (plan.dirty_start, plan.dirty_end),
            (0, 3),
            "never the active segment"
        );
        let plan = plan_or_none(&s, 0, 15);
        assert_eq!(plan.map(|p| p.dirty_end), Some(1));
        assert_eq!(plan_or_none(&s, 0, 5), None);
    }

    fn plan_or_none(
        s: &[SegmentSummary],
        first_dirty: i64,
        high_watermark: i64,
    ) -> Option<CleaningPlan> {
        plan(s, first_dirty, high_watermark, &config(), 0)
    }

    #[test]
    fn dirty_ratio_gates_cleaning_unless_max_lag_forces_it() {
        let s = segments(5, 1_000);
        // Checkpoint at 30: clean 300 bytes, dirty 100 bytes: ratio 0.25 < 0.5.
        assert_eq!(plan(&s, 30, 1_000, &config(), 2_000), None);
        let low = LogConfig {
            min_cleanable_dirty_ratio: 0.2,
            ..config()
        };
        let p = plan(&s, 30, 1_000, &low, 2_000).expect("ratio reached");
        assert_eq!((p.dirty_start, p.dirty_end), (3, 4));
        assert!((p.dirty_ratio - 0.25).abs() < 1e-9);
        let lagging = LogConfig {
            max_compaction_lag_ms: 500,
            ..config()
        };
        let p = plan(&s, 30, 1_000, &lagging, 2_000).expect("forced by lag");
        assert!(p.forced);
        assert_eq!(
            plan(&s, 30, 1_000, &lagging, 1_400),
            None,
            "not old enough yet"
        );
    }

    #[test]
    fn min_compaction_lag_holds_back_recent_segments() {
        let mut s = segments(5, 1_000);
        s[2].largest_timestamp = 9_000;
        let lag = LogConfig {
            min_compaction_lag_ms: 5_000,
            ..config()
        };
        let p = plan(&s, 0, 1_000, &lag, 10_000).expect("older segments");
        assert_eq!((p.dirty_start, p.dirty_end), (0, 2));
    }
}
