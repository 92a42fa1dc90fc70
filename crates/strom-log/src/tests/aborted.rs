//! Transactions on the leader's and follower's write paths: transactional produce, the
//! coordinator's appends, the aborted-transaction index of each segment (appends, rolls,
//! truncation, retention, compaction, restarts) and the lock-free last stable offset.

use super::*;
use crate::AppendError;
use crate::control::{self, Marker};
use crate::segment::SegmentFile;
use crate::testing::{BatchSpec, encode};
use crate::txn_index::AbortedTxn;

const ABORT: Marker = Marker {
    commit: false,
    coordinator_epoch: 0,
};
const COMMIT: Marker = Marker {
    commit: true,
    coordinator_epoch: 0,
};

/// A transactional batch of `count` records (keys `k<producer>-<sequence + i>`).
fn txn_batch(producer_id: i64, epoch: i16, sequence: i32, count: usize) -> Vec<u8> {
    let records: Vec<Rec> = (0..count)
        .map(|i| {
            let key = format!("k{producer_id}-{}", sequence.max(0) as usize + i);
            Rec::kv(key.as_bytes(), &[b'v'; 40], NOW)
        })
        .collect();
    encode(
        &records,
        &BatchSpec {
            producer_id,
            producer_epoch: epoch,
            base_sequence: sequence,
            transactional: true,
            ..BatchSpec::default()
        },
    )
    .to_vec()
}

/// A marker batch as a leader stored it at `offset`, for follower appends.
fn stored_marker(producer_id: i64, marker: Marker, offset: i64) -> Vec<u8> {
    let mut bytes = control::marker_batch(producer_id, 0, marker, 0, NOW).to_vec();
    batch::set_base_offset(&mut bytes, offset);
    bytes
}

/// A batch as a leader stored it at `offset`, for follower appends.
fn stored(mut bytes: Vec<u8>, offset: i64) -> Vec<u8> {
    batch::set_base_offset(&mut bytes, offset);
    batch::set_partition_leader_epoch(&mut bytes, 0);
    bytes
}

fn entry(producer_id: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id,
        first_offset: first,
        last_offset: last,
        last_stable_offset: lso,
    }
}

fn all_entries(log: &Log) -> Vec<AbortedTxn> {
    log.segments()
        .iter()
        .flat_map(|segment| segment.aborted_txns())
        .collect()
}

fn txn_index_files(log: &Log) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(log.dir())
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".txnindex"))
        .collect();
    names.sort();
    names
}

#[test]
fn client_transactional_batches_are_checked_like_idempotent_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&records(2, 10, NOW), 0, NOW)
        .expect("plain");
    let info = log
        .append_as_leader(&txn_batch(7, 0, 0, 3), 0, NOW)
        .expect("transactional");
    assert_eq!((info.first_offset, info.last_offset), (2, 4));
    let retry = log
        .append_as_leader(&txn_batch(7, 0, 0, 3), 0, NOW)
        .expect("retry");
    assert!(retry.duplicate, "a retry is answered with the original");
    assert!(matches!(
        log.append_as_leader(&txn_batch(7, 0, 5, 1), 0, NOW),
        Err(AppendError::OutOfOrderSequence { expected: 3, .. })
    ));
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), 2, "open from its first offset");
    assert_eq!(
        log.producer_state().open_transactions().collect::<Vec<_>>(),
        [(7, 2)]
    );
}

#[test]
fn coordinator_appends_skip_sequences_but_fence_older_epochs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    let first = log
        .append_as_coordinator(&txn_batch(9, 1, -1, 1), 0, NOW)
        .expect("coordinator write");
    let second = log
        .append_as_coordinator(&txn_batch(9, 1, -1, 1), 0, NOW)
        .expect("the same bytes again are a new write, not a duplicate");
    assert!(!second.duplicate);
    assert_eq!((first.first_offset, second.first_offset), (0, 1));
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(
        log.last_stable_offset(),
        0,
        "the offset commit's transaction is open"
    );
    assert!(matches!(
        log.append_as_coordinator(&txn_batch(9, 0, -1, 1), 0, NOW),
        Err(AppendError::ProducerFenced {
            epoch: 0,
            current: 1,
            ..
        })
    ));
    assert!(matches!(
        log.append_as_coordinator(&txn_batch(9, 1, 0, 1), 0, NOW),
        Err(AppendError::InvalidRecord(_))
    ));
    let (_, ended) = log
        .append_marker_as_leader(9, 1, COMMIT, 0, NOW)
        .expect("commit");
    assert_eq!(ended.map(|t| (t.first_offset, t.last_offset)), Some((0, 2)));
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), 3);
    assert!(all_entries(&log).is_empty(), "a commit is not indexed");
}

#[test]
fn an_abort_marker_is_indexed_with_the_last_stable_offset_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&txn_batch(7, 0, 0, 3), 0, NOW)
        .expect("txn 7"); // 0..=2
    log.append_as_leader(&txn_batch(8, 0, 0, 1), 0, NOW)
        .expect("txn 8"); // 3
    log.append_marker_as_leader(7, 0, ABORT, 0, NOW)
        .expect("abort 7"); // 4
    assert_eq!(
        all_entries(&log),
        [entry(7, 0, 4, 3)],
        "8 is still open from 3"
    );
    log.append_marker_as_leader(8, 0, COMMIT, 0, NOW)
        .expect("commit 8"); // 5
    assert_eq!(all_entries(&log), [entry(7, 0, 4, 3)]);
    assert_eq!(txn_index_files(&log), ["00000000000000000000.txnindex"]);
    let bytes = std::fs::read(log.segments()[0].path(SegmentFile::TxnIndex)).expect("file");
    assert_eq!(bytes, entry(7, 0, 4, 3).encode());
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), 6);
}

#[test]
fn a_follower_indexes_the_aborts_it_replicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_follower(&stored(txn_batch(7, 0, 0, 2), 0), NOW)
        .expect("txn");
    log.append_as_follower(&stored_marker(7, ABORT, 2), NOW)
        .expect("abort");
    log.append_as_follower(&stored(txn_batch(7, 0, 2, 1), 3), NOW)
        .expect("next txn");
    log.append_as_follower(&stored_marker(7, COMMIT, 4), NOW)
        .expect("commit");
    assert_eq!(all_entries(&log), [entry(7, 0, 2, 3)]);
    assert_eq!(log.producer_state().first_unstable_offset(), None);
}

#[test]
fn a_clean_reopen_loads_the_index_and_cuts_a_torn_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&txn_batch(7, 0, 0, 2), 0, NOW)
        .expect("txn");
    log.append_marker_as_leader(7, 0, ABORT, 0, NOW)
        .expect("abort");
    log.close().expect("close");
    let path = log.segments()[0].path(SegmentFile::TxnIndex);
    drop(log);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend_from_slice(&[0; 10]);
    std::fs::write(&path, &bytes).expect("tear");

    let log = open(dir.path(), LogConfig::default());
    assert_eq!(all_entries(&log), [entry(7, 0, 2, 3)]);
    assert_eq!(
        std::fs::metadata(&path).expect("file").len(),
        crate::txn_index::ENTRY_BYTES as u64
    );
    assert_eq!(log.aborted_transactions(0, 3), [entry(7, 0, 2, 3)]);
}

#[test]
fn recovery_restores_entries_a_crash_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&txn_batch(7, 0, 0, 2), 0, NOW)
        .expect("txn");
    log.append_as_leader(&txn_batch(8, 0, 0, 1), 0, NOW)
        .expect("txn 8");
    log.append_marker_as_leader(7, 0, ABORT, 0, NOW)
        .expect("abort");
    let path = log.segments()[0].path(SegmentFile::TxnIndex);
    drop(log);
    // The marker reached the log file but its index entry did not.
    std::fs::remove_file(&path).expect("lose the index");

    let log = reopen_unclean(dir.path(), LogConfig::default(), 0);
    assert_eq!(all_entries(&log), [entry(7, 0, 3, 2)]);
    assert!(path.exists());
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), 2, "8's transaction is still open");
}

#[test]
fn truncation_drops_the_entries_at_or_past_the_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&txn_batch(7, 0, 0, 2), 0, NOW)
        .expect("txn"); // 0..=1
    log.append_marker_as_leader(7, 0, ABORT, 0, NOW)
        .expect("abort"); // 2
    log.append_as_leader(&txn_batch(7, 0, 2, 2), 0, NOW)
        .expect("txn"); // 3..=4
    log.append_marker_as_leader(7, 0, ABORT, 0, NOW)
        .expect("abort"); // 5
    assert_eq!(all_entries(&log).len(), 2);

    log.truncate_to(5, NOW).expect("truncate");
    assert_eq!(all_entries(&log), [entry(7, 0, 2, 3)]);
    let path = log.segments()[0].path(SegmentFile::TxnIndex);
    assert_eq!(
        std::fs::metadata(&path).expect("file").len(),
        crate::txn_index::ENTRY_BYTES as u64
    );
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(
        log.last_stable_offset(),
        3,
        "the second transaction is open again"
    );

    log.truncate_fully_and_start_at(10, NOW)
        .expect("start over");
    assert!(all_entries(&log).is_empty());
    assert!(
        txn_index_files(&log).is_empty(),
        "files went with the segment"
    );
    log.update_high_watermark(10);
    assert_eq!(log.last_stable_offset(), 10);
}

/// Transactions of producer 7 (3 records, then ABORT) until the log has `segments` segments.
fn aborts_across_segments(log: &Log, segments: usize) -> Vec<AbortedTxn> {
    let mut sequence = 0;
    while log.segment_count() < segments {
        log.append_as_leader(&txn_batch(7, 0, sequence, 3), 0, NOW)
            .expect("txn");
        sequence += 3;
        log.append_marker_as_leader(7, 0, ABORT, 0, NOW)
            .expect("abort");
    }
    log.update_high_watermark(log.log_end_offset());
    all_entries(log)
}

#[test]
fn each_abort_is_indexed_in_its_markers_segment_across_rolls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config());
    let entries = aborts_across_segments(&log, 3);
    for segment in log.segments().iter() {
        let next = log
            .segments()
            .iter()
            .find(|s| s.base_offset() > segment.base_offset())
            .map_or(i64::MAX, |s| s.base_offset());
        assert!(
            segment
                .aborted_txns()
                .iter()
                .all(|e| (segment.base_offset()..next).contains(&e.last_offset))
        );
    }
    let expected: Vec<AbortedTxn> = entries
        .iter()
        .filter(|e| e.last_offset >= 5 && e.first_offset < 13)
        .copied()
        .collect();
    assert_eq!(
        expected.len(),
        3,
        "4..=7, 8..=11 and 12..=15 overlap [5, 13)"
    );
    assert_eq!(log.aborted_transactions(5, 13), expected);
    assert!(log.aborted_transactions(5, 5).is_empty());
}

#[test]
fn retention_deletes_the_index_with_its_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config());
    aborts_across_segments(&log, 3);
    let first = log.segments()[0].clone();
    assert!(first.path(SegmentFile::TxnIndex).exists());
    let second_base = log.segments()[1].base_offset();
    log.delete_records_before(second_base)
        .expect("delete records");
    assert!(!first.path(SegmentFile::TxnIndex).exists());
    assert!(
        all_entries(&log)
            .iter()
            .all(|e| e.last_offset >= second_base)
    );
    assert_eq!(txn_index_files(&log).len(), log.segment_count());
}

#[test]
fn compaction_keeps_the_aborted_transactions_of_the_segments_it_replaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        cleanup_policy: crate::CleanupPolicy {
            delete: false,
            compact: true,
        },
        min_cleanable_dirty_ratio: 0.0,
        ..small_config()
    };
    let log = open(dir.path(), config.clone());
    let before = aborts_across_segments(&log, 4);
    let stats = log.compact(NOW).expect("compaction");
    assert!(stats.is_some(), "the log was cleanable");
    assert_eq!(all_entries(&log), before);
    let markers = read_all(&log)
        .iter()
        .filter(|(header, _)| header.is_control())
        .count();
    assert_eq!(
        markers,
        before.len(),
        "markers outlive their aborted records by delete.retention.ms"
    );
    // And from the files, after a restart.
    log.close().expect("close");
    drop(log);
    let log = open(dir.path(), config);
    assert_eq!(all_entries(&log), before);
}

#[test]
fn the_lookup_stops_at_the_first_entry_whose_last_stable_offset_reaches_the_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&txn_batch(7, 0, 0, 1), 0, NOW)
        .expect("7"); // 0
    log.append_as_leader(&txn_batch(8, 0, 0, 1), 0, NOW)
        .expect("8"); // 1
    log.append_marker_as_leader(7, 0, ABORT, 0, NOW)
        .expect("abort 7 at 2, LSO 1");
    log.append_marker_as_leader(8, 0, ABORT, 0, NOW)
        .expect("abort 8 at 3, LSO 4");
    log.append_as_leader(&txn_batch(9, 0, 0, 1), 0, NOW)
        .expect("9"); // 4
    log.append_marker_as_leader(9, 0, ABORT, 0, NOW)
        .expect("abort 9 at 5");
    let ids = |found: Vec<AbortedTxn>| found.iter().map(|e| e.producer_id).collect::<Vec<_>>();
    assert_eq!(ids(log.aborted_transactions(0, 2)), [7, 8]);
    assert_eq!(ids(log.aborted_transactions(0, 6)), [7, 8, 9]);
    assert_eq!(ids(log.aborted_transactions(3, 6)), [8, 9]);
    assert_eq!(ids(log.aborted_transactions(4, 6)), [9]);
}

#[test]
fn the_last_stable_offset_follows_markers_and_the_log_start_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&records(2, 10, NOW), 0, NOW)
        .expect("plain"); // 0..=1
    log.append_as_leader(&txn_batch(7, 0, 0, 2), 0, NOW)
        .expect("txn"); // 2..=3
    assert_eq!(log.last_stable_offset(), 0, "bounded by the high watermark");
    log.update_high_watermark(4);
    assert_eq!(log.last_stable_offset(), 2);
    log.delete_records_before(3).expect("delete records");
    assert_eq!(
        log.last_stable_offset(),
        3,
        "never below the log start offset"
    );
    log.append_marker_as_leader(7, 0, COMMIT, 0, NOW)
        .expect("commit"); // 4
    assert_eq!(log.last_stable_offset(), 4);
    log.update_high_watermark(5);
    assert_eq!(log.last_stable_offset(), 5);
}

#[test]
fn a_crash_at_any_step_of_compaction_keeps_the_aborted_transactions() {
    use crate::cleaner::{CRASH_AT, CrashPoint};
    let config = LogConfig {
        cleanup_policy: crate::CleanupPolicy {
            delete: false,
            compact: true,
        },
        min_cleanable_dirty_ratio: 0.0,
        ..small_config()
    };
    for point in [
        CrashPoint::AfterCleaned,
        CrashPoint::AfterIndexSwapRename,
        CrashPoint::AfterCommit,
        CrashPoint::AfterFirstOldDeleted,
        CrashPoint::AfterSwapIndexLive,
        CrashPoint::BeforeUnlink,
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path(), config.clone());
        let before = aborts_across_segments(&log, 4);
        CRASH_AT.with(|at| at.set(Some(point)));
        let result = log.compact(NOW);
        CRASH_AT.with(|at| at.set(None));
        assert!(result.is_err(), "{point:?}: the crash happened");
        drop(log);
        let log = reopen_unclean(dir.path(), config.clone(), 0);
        assert_eq!(all_entries(&log), before, "{point:?}");
        log.update_high_watermark(log.log_end_offset());
        let end = log.log_end_offset();
        assert_eq!(log.aborted_transactions(0, end), before, "{point:?}");
    }
}
