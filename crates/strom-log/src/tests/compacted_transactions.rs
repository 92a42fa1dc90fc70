//! Compaction of transactional data: aborted records go (and never shadow committed ones),
//! committed ones are compacted by key, nothing at or past the last stable offset is touched,
//! markers outlive their transaction's batches by `delete.retention.ms`, the
//! aborted-transaction index stays consistent, and the producer state rebuilds the same from
//! the cleaned log, after a crash at any step too.

use std::collections::BTreeMap;

use super::*;
use crate::cleaner::{CRASH_AT, CrashPoint};
use crate::control::Marker;
use crate::testing::{BatchSpec, encode};
use crate::txn_index::AbortedTxn;
use crate::{CleanupPolicy, Error};

const DELETE_RETENTION_MS: i64 = 10_000;

const ABORT: Marker = Marker {
    commit: false,
    coordinator_epoch: 0,
};
const COMMIT: Marker = Marker {
    commit: true,
    coordinator_epoch: 0,
};

fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: DELETE_RETENTION_MS,
        message_timestamp_after_max_ms: i64::MAX,
        ..LogConfig::default()
    }
}

/// Appends one batch of `(key, value)` records for `producer_id` (transactional or only
/// idempotent) and returns its first offset.
fn produce(
    log: &Log,
    producer_id: i64,
    transactional: bool,
    sequence: i32,
    records: &[(&str, &str)],
) -> i64 {
    let recs: Vec<Rec> = records
        .iter()
        .map(|(key, value)| Rec::kv(key.as_bytes(), value.as_bytes(), NOW))
        .collect();
    let bytes = encode(
        &recs,
        &BatchSpec {
            producer_id,
            producer_epoch: 0,
            base_sequence: sequence,
            transactional,
            ..BatchSpec::default()
        },
    );
    let info = log.append_as_leader(&bytes, 0, NOW).expect("append");
    info.first_offset
}

fn end_txn(log: &Log, producer_id: i64, epoch: i16, marker: Marker) -> i64 {
    let (info, _) = log
        .append_marker_as_leader(producer_id, epoch, marker, 0, NOW)
        .expect("marker");
    info.first_offset
}

/// A plain record with a key of its own, which compaction keeps.
fn fill_one(log: &Log) {
    let key = format!("filler-{}", log.log_end_offset());
    let bytes = batch_with(&[Rec::kv(key.as_bytes(), &[b'f'; 100], NOW)], |_| {});
    log.append_as_leader(&bytes, 0, NOW).expect("filler");
}

/// Appends fillers until the log rolls, so that what came before is in inactive segments,
/// and moves the high watermark to the end.
fn roll(log: &Log) {
    let segments = log.segment_count();
    while log.segment_count() == segments {
        fill_one(log);
    }
    log.update_high_watermark(log.log_end_offset());
}

/// The control batches of the log: (offset, delete horizon).
fn markers(log: &Log) -> Vec<(i64, Option<i64>)> {
    read_all(log)
        .iter()
        .filter(|(header, _)| header.is_control())
        .map(|(header, _)| (header.base_offset, header.delete_horizon_ms()))
        .collect()
}

fn all_entries(log: &Log) -> Vec<AbortedTxn> {
    log.segments()
        .iter()
        .flat_map(|segment| segment.aborted_txns())
        .collect()
}

/// The records a read_committed consumer gets, below the last stable offset: batches of
/// aborted transactions (by the aborted-transaction index, as Fetch answers) and markers are
/// skipped.
fn read_committed(log: &Log) -> Vec<Kv> {
    let last_stable_offset = log.last_stable_offset();
    let aborted = log.aborted_transactions(log.log_start_offset(), last_stable_offset);
    let is_aborted = |header: &BatchHeader| {
        header.is_transactional()
            && aborted.iter().any(|entry| {
                entry.producer_id == header.producer_id
                    && entry.first_offset <= header.base_offset
                    && header.base_offset < entry.last_offset
            })
    };
    let mut out = Vec::new();
    for (header, bytes) in read_all(log) {
        if header.is_control() || is_aborted(&header) {
            continue;
        }
        let payload = batch::records_payload(&bytes).expect("payload");
        for record in batch::records(payload.as_slice(), header.records_count) {
            let record = record.expect("record");
            let offset = header.base_offset + i64::from(record.offset_delta);
            if offset < last_stable_offset {
                out.push((
                    offset,
                    record.key.map(<[u8]>::to_vec),
                    record.value.map(<[u8]>::to_vec),
                ));
            }
        }
    }
    out
}

fn latest_values(records: &[Kv]) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    records
        .iter()
        .map(|(_, key, value)| (key.clone().expect("keyed"), value.clone()))
        .collect()
}

fn values_of(records: &[Kv], key: &str) -> Vec<Vec<u8>> {
    records
        .iter()
        .filter(|(_, k, _)| k.as_deref() == Some(key.as_bytes()))
        .filter_map(|(_, _, value)| value.clone())
        .collect()
}

#[test]
fn compaction_removes_aborted_records_which_never_shadow_committed_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compact_config());
    produce(&log, -1, false, -1, &[("a", "committed")]);
    produce(&log, 8, true, 0, &[("b", "committed")]);
    end_txn(&log, 8, 0, COMMIT);
    let aborted_first = produce(&log, 7, true, 0, &[("a", "aborted"), ("b", "aborted")]);
    produce(&log, 7, true, 2, &[("c", "aborted")]);
    let abort = end_txn(&log, 7, 0, ABORT);
    fill_one(&log);
    roll(&log);
    // The producer's last batch is elsewhere, so its aborted batches may all go.
    produce(&log, 7, false, 3, &[("d", "later")]);
    roll(&log);
    let before = read_committed(&log);

    log.compact(NOW).expect("compaction").expect("cleanable");

    let stored = all_records(&log);
    assert!(
        stored
            .iter()
            .all(|(_, _, v)| v.as_deref() != Some(b"aborted")),
        "{stored:?}"
    );
    assert_eq!(values_of(&stored, "a"), [b"committed".to_vec()]);
    assert_eq!(values_of(&stored, "b"), [b"committed".to_vec()]);
    assert_eq!(latest_values(&read_committed(&log)), latest_values(&before));
    // The marker and its index entry stay for now: a consumer may have read the records.
    assert!(markers(&log).iter().any(|&(offset, _)| offset == abort));
    assert_eq!(
        all_entries(&log)
            .iter()
            .map(|e| (e.producer_id, e.first_offset, e.last_offset))
            .collect::<Vec<_>>(),
        [(7, aborted_first, abort)]
    );
}

#[test]
fn committed_transactional_records_are_compacted_by_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compact_config());
    produce(&log, 7, true, 0, &[("k1", "v1"), ("k2", "v1")]);
    let first_commit = end_txn(&log, 7, 0, COMMIT);
    produce(&log, 7, true, 2, &[("k1", "v2")]);
    let shadowed_commit = end_txn(&log, 7, 0, COMMIT);
    fill_one(&log);
    produce(&log, 7, true, 3, &[("k1", "v3")]);
    let last_commit = end_txn(&log, 7, 0, COMMIT);
    fill_one(&log);
    roll(&log);

    log.compact(NOW).expect("compaction").expect("cleanable");

    let stored = all_records(&log);
    assert_eq!(values_of(&stored, "k1"), [b"v3".to_vec()]);
    assert_eq!(values_of(&stored, "k2"), [b"v1".to_vec()]);
    let horizon = Some(NOW + DELETE_RETENTION_MS);
    assert_eq!(
        markers(&log),
        [
            (first_commit, None),
            (shadowed_commit, horizon),
            (last_commit, None)
        ],
        "only the transaction with no batch left has its marker on the way out"
    );
}

#[test]
fn nothing_at_or_past_the_last_stable_offset_is_cleaned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compact_config());
    produce(&log, -1, false, -1, &[("k", "old")]);
    roll(&log);
    let open_first = produce(&log, 9, true, 0, &[("k", "open")]);
    for i in 0..12 {
        let value = format!("v{i}");
        produce(
            &log,
            -1,
            false,
            -1,
            &[("k", &value), ("pad", &"p".repeat(80))],
        );
    }
    roll(&log);
    assert_eq!(log.last_stable_offset(), open_first);
    let before = all_records(&log);

    log.compact(NOW).expect("compaction").expect("cleanable");

    let stored = all_records(&log);
    let from_open: Vec<&Kv> = stored.iter().filter(|r| r.0 >= open_first).collect();
    let expected: Vec<&Kv> = before.iter().filter(|r| r.0 >= open_first).collect();
    assert_eq!(from_open, expected, "the open transaction and all after it");
    assert!(log.first_dirty_offset() <= open_first);

    // Once the transaction ends, the rest is cleanable.
    end_txn(&log, 9, 0, COMMIT);
    roll(&log);
    log.compact(NOW).expect("compaction").expect("cleanable");
    let active_base = log.segments().last().expect("active").base_offset();
    let stored = all_records(&log);
    let values: Vec<&Kv> = stored
        .iter()
        .filter(|r| r.0 < active_base && r.1.as_deref() == Some(b"k"))
        .collect();
    assert_eq!(values.len(), 1, "{values:?}");
}

#[test]
fn a_marker_outlives_its_transactions_records_by_delete_retention_ms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compact_config());
    produce(&log, 7, true, 0, &[("k", "aborted")]);
    let abort = end_txn(&log, 7, 0, ABORT);
    fill_one(&log);
    produce(&log, 7, false, 1, &[("other", "v")]);
    roll(&log);
    let view = read_committed(&log);

    log.compact(NOW).expect("compaction").expect("cleanable");
    assert_eq!(
        markers(&log),
        [(abort, Some(NOW + DELETE_RETENTION_MS))],
        "records gone, the marker's countdown starts"
    );
    assert_eq!(all_entries(&log).len(), 1);

    roll(&log);
    log.compact(NOW + DELETE_RETENTION_MS - 1)
        .expect("compaction")
        .expect("cleanable");
    assert_eq!(markers(&log), [(abort, Some(NOW + DELETE_RETENTION_MS))]);
    assert_eq!(all_entries(&log).len(), 1);

    roll(&log);
    log.compact(NOW + DELETE_RETENTION_MS)
        .expect("compaction")
        .expect("cleanable");
    assert_eq!(markers(&log), [], "past its horizon");
    assert_eq!(all_entries(&log), [], "the entry goes with its marker");
    let fillers = |records: Vec<Kv>| -> Vec<Kv> {
        records
            .into_iter()
            .filter(|r| !r.1.as_deref().unwrap_or_default().starts_with(b"filler"))
            .collect()
    };
    assert_eq!(fillers(read_committed(&log)), fillers(view));

    // From the files too.
    log.close().expect("close");
    drop(log);
    let log = open(dir.path(), compact_config());
    assert_eq!(markers(&log), []);
    assert_eq!(all_entries(&log), []);
}

#[test]
fn an_aborted_transactions_index_entry_stays_while_its_records_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compact_config());
    let first = produce(&log, 7, true, 0, &[("k", "aborted-1")]);
    roll(&log);
    produce(&log, 7, true, 1, &[("k", "aborted-2")]);
    roll(&log);
    let abort = end_txn(&log, 7, 0, ABORT);
    fill_one(&log);
    produce(&log, 7, false, 2, &[("other", "v")]);
    roll(&log);
    let entry = all_entries(&log);
    assert_eq!(entry.len(), 1);
    let view = read_committed(&log);

    // A dedupe buffer of one byte maps one segment: only the first is cleaned, and the
    // transaction's second batch and its marker stay with the entry.
    crate::cleaner::clean(&log, NOW, 1)
        .expect("compaction")
        .expect("cleanable");
    let stored = all_records(&log);
    assert!(stored.iter().all(|r| r.0 != first), "{stored:?}");
    assert_eq!(values_of(&stored, "k"), [b"aborted-2".to_vec()]);
    assert_eq!(all_entries(&log), entry);
    assert_eq!(
        read_committed(&log),
        view,
        "the aborted record stays hidden"
    );
    assert_eq!(markers(&log), [(abort, None)]);

    // The next cleaning reaches the rest.
    log.compact(NOW).expect("compaction").expect("cleanable");
    assert_eq!(values_of(&all_records(&log), "k"), Vec::<Vec<u8>>::new());
    assert_eq!(all_entries(&log), entry, "kept with its marker");
    assert_eq!(read_committed(&log), view);
}

#[test]
fn the_last_batch_of_a_producer_and_its_marker_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compact_config());
    let last = produce(&log, 7, true, 0, &[("k", "aborted")]);
    let abort = end_txn(&log, 7, 0, ABORT);
    // Producer 10's state holds no data batch: its epoch comes from the marker.
    let bumped = end_txn(&log, 10, 1, ABORT);
    fill_one(&log);
    roll(&log);
    for now in [NOW, NOW + DELETE_RETENTION_MS] {
        log.compact(now).expect("compaction").expect("cleanable");
        roll(&log);
    }
    let kept: Vec<(i64, i32)> = read_all(&log)
        .iter()
        .filter(|(header, _)| header.producer_id == 7 || header.producer_id == 10)
        .map(|(header, _)| (header.base_offset, header.records_count))
        .collect();
    assert_eq!(
        kept,
        [(last, 0), (abort, 1), (bumped, 1)],
        "the batch empty, the markers whole"
    );
}

/// Producers 7 (transactions committed and aborted), 8 (idempotent, overwriting its keys),
/// 9 (its last transaction aborted) and 10 (its epoch bumped by a marker alone), over several
/// segments.
fn mixed_log(dir: &Path) -> Log {
    let log = open(dir, compact_config());
    let mut sequences = BTreeMap::new();
    let mut next = |producer: i64, count: i32| {
        let sequence = sequences.entry(producer).or_insert(0);
        let current = *sequence;
        *sequence += count;
        current
    };
    for round in 0..6 {
        let value = format!("r{round}");
        let s = next(7, 2);
        produce(&log, 7, true, s, &[("a", &value), ("b", &value)]);
        let s = next(8, 1);
        produce(&log, 8, false, s, &[("c", &value)]);
        end_txn(&log, 7, 0, if round % 2 == 0 { COMMIT } else { ABORT });
        let s = next(9, 1);
        produce(&log, 9, true, s, &[("a", "nine")]);
        end_txn(&log, 9, 0, if round < 5 { COMMIT } else { ABORT });
        if round == 2 {
            let s = next(10, 1);
            produce(&log, 10, false, s, &[("d", "ten")]);
            end_txn(&log, 10, 1, ABORT);
        }
        fill_one(&log);
        fill_one(&log);
    }
    roll(&log);
    log
}

/// What of the producer state a rebuild must restore: epoch, last sequence and offset, open
/// transaction.
fn producer_summary(log: &Log) -> Vec<(i64, i16, i32, i64, Option<i64>)> {
    log.producer_state()
        .iter()
        .map(|(id, entry)| {
            (
                id,
                entry.epoch,
                entry.last_sequence(),
                entry.last_offset(),
                entry.current_txn_first_offset,
            )
        })
        .collect()
}

fn remove_snapshots(dir: &Path) {
    for entry in std::fs::read_dir(dir.join("orders-0")).expect("list") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|ext| ext == "snapshot") {
            std::fs::remove_file(&path).expect("remove snapshot");
        }
    }
}

#[test]
fn recovery_after_compaction_rebuilds_the_same_producer_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = mixed_log(dir.path());
    let view = latest_values(&read_committed(&log));
    for now in [NOW, NOW + DELETE_RETENTION_MS] {
        log.compact(now).expect("compaction").expect("cleanable");
        roll(&log);
    }
    assert!(
        markers(&log).len() < 13,
        "some markers went: {:?}",
        markers(&log)
    );
    let producers = producer_summary(&log);
    let entries = all_entries(&log);
    let stable = log.last_stable_offset();
    assert_eq!(
        latest_values(&read_committed(&log)),
        latest_values_plus_fillers(&log, &view)
    );
    drop(log);

    // A rebuild from the log alone: no snapshot, recovery from the first offset.
    remove_snapshots(dir.path());
    let log = reopen_unclean(dir.path(), compact_config(), 0);
    assert_eq!(producer_summary(&log), producers);
    assert_eq!(all_entries(&log), entries);
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), stable);
}

/// `view` with the fillers the log holds now (rolls add some).
fn latest_values_plus_fillers(
    log: &Log,
    view: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    let mut expected = view.clone();
    for (key, value) in latest_values(&all_records(log)) {
        if key.starts_with(b"filler") {
            expected.insert(key, value);
        }
    }
    expected
}

#[test]
fn a_crash_at_any_step_of_compaction_keeps_what_read_committed_consumers_see() {
    for point in [
        CrashPoint::AfterCleaned,
        CrashPoint::AfterIndexSwapRename,
        CrashPoint::AfterCommit,
        CrashPoint::AfterFirstOldDeleted,
        CrashPoint::AfterSwapIndexLive,
        CrashPoint::BeforeUnlink,
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = mixed_log(dir.path());
        let view = latest_values(&read_committed(&log));
        CRASH_AT.with(|at| at.set(Some(point)));
        let result = log.compact(NOW);
        CRASH_AT.with(|at| at.set(None));
        assert!(
            matches!(
                result,
                Err(Error::Io {
                    op: "simulated crash",
                    ..
                })
            ),
            "{point:?}: {result:?}"
        );
        drop(log);
        let log = reopen_unclean(dir.path(), compact_config(), 0);
        log.update_high_watermark(log.log_end_offset());
        assert_eq!(latest_values(&read_committed(&log)), view, "{point:?}");

        // Cleaning afterwards reaches what a cleaning without a crash reaches.
        log.set_first_dirty_offset(0);
        log.compact(NOW).expect("compaction after recovery");
        let reference_dir = tempfile::tempdir().expect("tempdir");
        let reference = mixed_log(reference_dir.path());
        reference.compact(NOW).expect("reference compaction");
        assert_eq!(all_records(&log), all_records(&reference), "{point:?}");
        assert_eq!(markers(&log), markers(&reference), "{point:?}");
        assert_eq!(all_entries(&log), all_entries(&reference), "{point:?}");
        assert_eq!(latest_values(&read_committed(&log)), view, "{point:?}");
    }
}
