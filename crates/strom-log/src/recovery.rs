//! Opening a partition directory: resolving the leftovers of interrupted operations, loading
//! segments and their indexes, and — after an unclean stop — validating every batch after the
//! recovery point and truncating at the first bad byte. Also rebuilds the producer state and
//! the leader-epoch cache from the batches when their files cannot be used.
//!
//! Leftover files are resolved Kafka's way:
//! - `*.deleted`: a deletion was interrupted after the segment left the log: removed.
//! - `*.cleaned`: the cleaner crashed before committing its output: removed.
//! - `*.tmp`: an interrupted atomic write of a small file: removed.
//! - `<base>.log.swap`: the cleaner committed a cleaned segment (its bytes were validated and
//!   fsynced before the rename that created this file) but did not finish swapping it in. It
//!   replaces every live segment whose base offset lies in `[base, next offset of the swap)`;
//!   then its files lose the `.swap` suffix. Index `.swap` files without a `.log.swap` belong
//!   to an uncommitted swap and are removed (the index is rebuilt if needed).
//!
//! After that, segments are loaded in offset order. Segments below the one holding the
//! recovery point keep their indexes when those pass the checks in
//! `LogSegment::load_indexes` (rebuilt otherwise); from that segment on, after an unclean
//! stop, every batch is validated (length, magic, CRC32C, offsets strictly increasing and
//! inside the segment), the log is truncated after the last valid batch, every later segment
//! is deleted, and the indexes are rebuilt. A torn batch is therefore never served.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::leader_epoch::LeaderEpochCache;
use crate::producer_state::{self, ProducerStateManager};
use crate::segment::{
    self, CLEANED_SUFFIX, DELETED_SUFFIX, LOG_SUFFIX, LogSegment, SWAP_SUFFIX, SegmentFile,
};
use crate::{Error, LogConfig, OpenOptions, Result, TopicPartition};

/// The segments of an opened log.
pub(crate) struct Loaded {
    pub segments: Vec<Arc<LogSegment>>,
    pub log_end_offset: i64,
    pub report: RecoveryReport,
}

/// What recovery did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes cut from the end of the segment where an invalid batch was found.
    pub truncated_bytes: u64,
    /// Segments deleted because they came after an invalid batch.
    pub deleted_segments: usize,
    /// Segments whose indexes were rebuilt.
    pub rebuilt_indexes: usize,
    /// Interrupted swaps completed.
    pub completed_swaps: usize,
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Splits `00000000000000000042.log.swap` into (42, ".log", ".swap").
fn parse_file_name(name: &str) -> Option<(i64, &str, &str)> {
    let stem = name.get(..20)?;
    let base = segment::parse_stem(stem)?;
    let rest = &name[20..];
    for suffix in [
        segment::LOG_SUFFIX,
        segment::INDEX_SUFFIX,
        segment::TIME_INDEX_SUFFIX,
        segment::TXN_INDEX_SUFFIX,
    ] {
        if let Some(extra) = rest.strip_prefix(suffix) {
            return Some((base, suffix, extra));
        }
    }
    None
}

/// Removes leftovers of interrupted deletions, cleanings and atomic writes; completes
/// interrupted swaps. Returns the number of swaps completed.
fn resolve_leftovers(
    dir: &Path,
    topic_partition: &TopicPartition,
    config: &LogConfig,
    options: &OpenOptions,
) -> Result<usize> {
    let mut swaps = BTreeSet::new();
    let mut remove = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(io_error("list directory", dir))?;
    for entry in entries {
        let entry = entry.map_err(io_error("list directory", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp")
            || name.ends_with(DELETED_SUFFIX)
            || name.ends_with(CLEANED_SUFFIX)
        {
            remove.push(entry.path());
            continue;
        }
        if let Some((base, suffix, extra)) = parse_file_name(name)
            && extra == SWAP_SUFFIX
        {
            if suffix == LOG_SUFFIX {
                swaps.insert(base);
            } else {
                remove.push(entry.path());
            }
        }
    }
    // Index swap files of a committed swap are kept (listed again below).
    remove.retain(|path| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        !parse_file_name(name)
            .is_some_and(|(base, _, extra)| extra == SWAP_SUFFIX && swaps.contains(&base))
    });
    for path in &remove {
        tracing::info!(partition = %topic_partition, path = %path.display(), "removing leftover file");
        crate::io::remove_file(path).map_err(io_error("remove leftover", path))?;
    }
    for &base in &swaps {
        complete_swap(dir, base, topic_partition, config, options)?;
    }
    Ok(swaps.len())
}

/// Finishes a committed swap of the cleaned segment `base`.
fn complete_swap(
    dir: &Path,
    base: i64,
    topic_partition: &TopicPartition,
    config: &LogConfig,
    options: &OpenOptions,
) -> Result<()> {
    let swap_log = segment::segment_path(dir, base, SegmentFile::Log, SWAP_SUFFIX);
    let swap = LogSegment::open_files(
        dir,
        base,
        config.segment_index_bytes,
        options.now_ms,
        0,
        SWAP_SUFFIX,
    )
    .map_err(io_error("open swap segment", &swap_log))?;
    // The swap was validated before it was committed; a scan gives its offset range.
    swap.rebuild_indexes(i64::MAX, config.index_interval_bytes)
        .map_err(io_error("scan swap segment", &swap_log))?;
    let next_offset = swap.stats().next_offset;
    let live = list_segment_bases(dir)?;
    for old in live
        .into_iter()
        .filter(|&old| old >= base && (old < next_offset || old == base))
    {
        tracing::info!(partition = %topic_partition, base_offset = old, "removing segment replaced by an interrupted swap");
        for file in SegmentFile::ALL {
            let path = segment::segment_path(dir, old, file, "");
            crate::io::remove_file(&path).map_err(io_error("remove replaced segment", &path))?;
        }
    }
    swap.rename_files("")
        .map_err(io_error("rename swap segment", &swap_log))?;
    crate::io::sync_dir(dir).map_err(io_error("sync directory", dir))?;
    tracing::info!(partition = %topic_partition, base_offset = base, "completed interrupted swap");
    Ok(())
}

/// Base offsets of the live `.log` files of a directory, ascending.
fn list_segment_bases(dir: &Path) -> Result<Vec<i64>> {
    let mut bases = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(io_error("list directory", dir))?;
    for entry in entries {
        let entry = entry.map_err(io_error("list directory", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((base, LOG_SUFFIX, "")) = parse_file_name(name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Removes index files whose log file is gone.
fn remove_orphan_indexes(dir: &Path, bases: &[i64]) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(io_error("list directory", dir))?;
    for entry in entries {
        let entry = entry.map_err(io_error("list directory", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((base, suffix, "")) = parse_file_name(name)
            && suffix != LOG_SUFFIX
            && bases.binary_search(&base).is_err()
        {
            let path = entry.path();
            crate::io::remove_file(&path).map_err(io_error("remove orphan index", &path))?;
        }
    }
    Ok(())
}

/// Loads (and, after an unclean stop, recovers) the segments of `dir`.
pub(crate) fn load_segments(
    dir: &Path,
    topic_partition: &TopicPartition,
    config: &LogConfig,
    options: &OpenOptions,
) -> Result<Loaded> {
    let mut report = RecoveryReport {
        completed_swaps: resolve_leftovers(dir, topic_partition, config, options)?,
        ..RecoveryReport::default()
    };
    let mut bases = list_segment_bases(dir)?;
    remove_orphan_indexes(dir, &bases)?;

    let jitter =
        |base| crate::log::rolling_jitter_ms(topic_partition, base, config.segment_jitter_ms);
    // Segments from the one holding the recovery point on are validated after an unclean stop.
    let recover_from = if options.had_clean_shutdown {
        usize::MAX
    } else {
        bases
            .partition_point(|&base| base <= options.recovery_point)
            .saturating_sub(1)
    };

    let mut segments: Vec<Arc<LogSegment>> = Vec::with_capacity(bases.len());
    let mut next_offset_expected = i64::MIN;
    let mut i = 0;
    while i < bases.len() {
        let base = bases[i];
        let offset_limit = bases.get(i + 1).copied().unwrap_or(i64::MAX);
        let log_path = segment::segment_path(dir, base, SegmentFile::Log, "");
        let segment = LogSegment::open_files(
            dir,
            base,
            config.segment_index_bytes,
            options.now_ms,
            jitter(base),
            "",
        )
        .map_err(io_error("open segment", &log_path))?;
        let must_verify = i >= recover_from || base < next_offset_expected;
        let mut stop_after = false;
        if must_verify {
            let outcome = segment
                .recover(
                    next_offset_expected,
                    offset_limit,
                    config.index_interval_bytes,
                    true,
                )
                .map_err(io_error("recover segment", &log_path))?;
            report.rebuilt_indexes += 1;
            if let Some(problem) = outcome.problem {
                tracing::warn!(
                    partition = %topic_partition,
                    path = %log_path.display(),
                    valid_bytes = outcome.valid_bytes,
                    truncated_bytes = outcome.truncated_bytes,
                    %problem,
                    "recovery truncated a segment at its first invalid batch"
                );
                report.truncated_bytes += outcome.truncated_bytes;
                stop_after = true;
            }
            segment
                .sync_all()
                .map_err(io_error("sync segment", &log_path))?;
        } else {
            let is_last = i + 1 == bases.len();
            let loaded = segment
                .load_indexes(offset_limit, config.index_interval_bytes, is_last)
                .map_err(io_error("load index", &log_path))?;
            if let Err(problem) = loaded {
                tracing::warn!(
                    partition = %topic_partition,
                    path = %log_path.display(),
                    %problem,
                    "rebuilding the indexes of a segment"
                );
                // Like Kafka, a segment below the recovery point is trusted to hold what was
                // fsynced: its index is rebuilt from the batch framing (no CRC pass), and a
                // framing error cuts only this segment.
                let outcome = segment
                    .rebuild_indexes(offset_limit, config.index_interval_bytes)
                    .map_err(io_error("rebuild index", &log_path))?;
                report.rebuilt_indexes += 1;
                if let Some(problem) = outcome.problem {
                    tracing::warn!(
                        partition = %topic_partition,
                        path = %log_path.display(),
                        %problem,
                        "a segment below the recovery point had a broken batch; truncated it"
                    );
                    report.truncated_bytes += outcome.truncated_bytes;
                }
                segment
                    .sync_all()
                    .map_err(io_error("sync segment", &log_path))?;
            }
        }
        next_offset_expected = segment.stats().next_offset;
        segments.push(Arc::new(segment));
        if stop_after {
            for &later in &bases[i + 1..] {
                tracing::warn!(partition = %topic_partition, base_offset = later, "deleting a segment after the truncation point");
                for file in SegmentFile::ALL {
                    let path = segment::segment_path(dir, later, file, "");
                    crate::io::remove_file(&path).map_err(io_error("delete segment", &path))?;
                }
                report.deleted_segments += 1;
            }
            bases.truncate(i + 1);
            break;
        }
        i += 1;
    }

    // Every segment but the active one keeps its index entries in its (trimmed, just checked)
    // files only, so a log's memory does not grow with the data it keeps.
    if let Some((_, sealed)) = segments.split_last() {
        for segment in sealed {
            segment.seal_indexes();
        }
    }

    if segments.is_empty() {
        let base = options.log_start_offset.max(0);
        let segment = LogSegment::create(
            dir,
            base,
            config.segment_index_bytes,
            options.now_ms,
            jitter(base),
            "",
        )
        .map_err(io_error("create segment", dir))?;
        segments.push(Arc::new(segment));
    }
    let log_end_offset = segments
        .last()
        .map_or(0, |segment| segment.stats().next_offset);
    if report != RecoveryReport::default() {
        tracing::info!(partition = %topic_partition, ?report, "log loaded with repairs");
    }
    Ok(Loaded {
        segments,
        log_end_offset,
        report,
    })
}

/// Loads the producer state: the newest snapshot at or below `log_end_offset` that decodes
/// (newer and corrupt snapshots are deleted), then a replay of the batch headers from its
/// offset to the log end. Producers idle past the expiration are dropped.
pub(crate) fn load_producer_state(
    dir: &Path,
    segments: &[Arc<LogSegment>],
    log_end_offset: i64,
    now_ms: i64,
    expiration_ms: i64,
) -> Result<ProducerStateManager> {
    let snapshots = producer_state::list_snapshots(dir).map_err(io_error("list snapshots", dir))?;
    let mut state = None;
    let mut replay_from = segments.first().map_or(0, |s| s.base_offset());
    for &offset in snapshots.iter().rev() {
        let path = producer_state::snapshot_path(dir, offset);
        if offset > log_end_offset {
            crate::io::remove_file(&path).map_err(io_error("remove snapshot", &path))?;
            continue;
        }
        let bytes = std::fs::read(&path).map_err(io_error("read snapshot", &path))?;
        match ProducerStateManager::decode_snapshot(&bytes) {
            Some(decoded) => {
                state = Some(decoded);
                replay_from = replay_from.max(offset);
                break;
            }
            None => {
                tracing::warn!(path = %path.display(), "removing a corrupt producer snapshot");
                crate::io::remove_file(&path).map_err(io_error("remove snapshot", &path))?;
            }
        }
    }
    let mut state = state.unwrap_or_default();
    for segment in segments {
        if segment.stats().next_offset <= replay_from {
            continue;
        }
        let path = segment.path(SegmentFile::Log);
        let (start, _) = segment
            .lookup(replay_from)
            .map_err(io_error("read index", &segment.path(SegmentFile::Index)))?;
        // The replay also restores the aborted-transaction entries a crash kept from the
        // `.txnindex` file (the segment skips the ones it already has).
        let mut index_error = None;
        segment::scan(
            segment.log_file(),
            &path,
            start,
            segment.size(),
            false,
            |_, header, bytes| {
                if header.base_offset < replay_from {
                    return true;
                }
                if let (_, Some(entry)) = crate::txn_index::apply_batch(&mut state, header, bytes)
                    && let Err(error) = segment.append_aborted_txn(entry)
                {
                    index_error = Some(error);
                    return false;
                }
                true
            },
        )
        .map_err(io_error("replay producer state", &path))?;
        if let Some(error) = index_error {
            return Err(io_error(
                "write transaction index",
                &segment.path(SegmentFile::TxnIndex),
            )(error));
        }
    }
    state.expire(now_ms, expiration_ms);
    Ok(state)
}

/// Rebuilds the leader-epoch cache from the batches' partition leader epochs.
pub(crate) fn rebuild_epoch_cache(segments: &[Arc<LogSegment>]) -> Result<LeaderEpochCache> {
    let mut cache = LeaderEpochCache::default();
    for segment in segments {
        let path = segment.path(SegmentFile::Log);
        segment::scan(
            segment.log_file(),
            &path,
            0,
            segment.size(),
            false,
            |_, header, _| {
                if header.partition_leader_epoch >= 0
                    && cache
                        .latest_epoch()
                        .is_none_or(|latest| header.partition_leader_epoch > latest)
                {
                    cache.assign(header.partition_leader_epoch, header.base_offset);
                }
                true
            },
        )
        .map_err(io_error("rebuild leader epochs", &path))?;
    }
    Ok(cache)
}
