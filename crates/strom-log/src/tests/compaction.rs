//! Compaction against a model (latest value per key, tombstones, offsets preserved), and a
//! crash at every step of the cleaner's swap.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::batch::Compression;
use crate::cleaner::{CRASH_AT, CrashPoint};
use crate::testing::{BatchSpec, encode};
use crate::{CleanupPolicy, Error};

const DELETE_RETENTION_MS: i64 = 10_000;

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

/// (key index, value or tombstone) per record, batches of records.
type Batches = Vec<(Vec<(u8, Option<u8>)>, Compression)>;

fn append_all(log: &Log, batches: &Batches) -> Vec<Kv> {
    let mut appended = Vec::new();
    for (records, compression) in batches {
        let recs: Vec<Rec> = records
            .iter()
            .map(|&(key, value)| match value {
                Some(v) => Rec::kv(&[b'k', key], &[v; 20], NOW),
                None => Rec::tombstone(&[b'k', key], NOW),
            })
            .collect();
        let bytes = batch_with(&recs, |s| s.compression = *compression);
        let info = log.append_as_leader(&bytes, 0, NOW).expect("append");
        for (i, &(key, value)) in records.iter().enumerate() {
            appended.push((
                info.first_offset + i as i64,
                Some(vec![b'k', key]),
                value.map(|v| vec![v; 20]),
            ));
        }
    }
    log.update_high_watermark(log.log_end_offset());
    appended
}

/// Checks the compacted log against everything appended: offsets preserved, each key's latest
/// record kept (a tombstone only until `tombstones_gone`), nothing superseded kept below the
/// active segment.
fn check_compacted(log: &Log, appended: &[Kv], tombstones_gone: bool) -> Result<(), TestCaseError> {
    let stored = all_records(log);
    let by_offset: BTreeMap<i64, &Kv> = appended.iter().map(|r| (r.0, r)).collect();
    let active_base = log.segments().last().expect("active").base_offset();
    let cleaned_end = log.first_dirty_offset();
    prop_assert!(cleaned_end <= active_base);
    // The cleaner deduplicates against what it mapped: the records below its checkpoint.
    let mut latest: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
    for (offset, key, _) in appended.iter().filter(|r| r.0 < cleaned_end) {
        latest.insert(key.clone().expect("keyed"), *offset);
    }
    // Every stored record is an appended one, at its original offset.
    for record in &stored {
        prop_assert_eq!(by_offset.get(&record.0).copied(), Some(record));
    }
    // Offsets increase.
    for pair in stored.windows(2) {
        prop_assert!(pair[0].0 < pair[1].0);
    }
    let stored_offsets: std::collections::BTreeSet<i64> = stored.iter().map(|r| r.0).collect();
    for (offset, key, value) in appended {
        let key = key.clone().expect("keyed");
        let is_latest = latest.get(&key) == Some(offset);
        let in_cleaned = *offset < cleaned_end;
        if *offset >= active_base || !in_cleaned {
            prop_assert!(
                stored_offsets.contains(offset),
                "uncleaned record {} lost",
                offset
            );
        } else if is_latest {
            if value.is_none() && tombstones_gone {
                prop_assert!(
                    !stored_offsets.contains(offset),
                    "expired tombstone {} kept",
                    offset
                );
            } else {
                prop_assert!(
                    stored_offsets.contains(offset),
                    "latest record {} lost",
                    offset
                );
            }
        } else {
            prop_assert!(
                !stored_offsets.contains(offset),
                "superseded record {} kept",
                offset
            );
        }
    }
    // The log end offset never moves.
    prop_assert_eq!(log.log_end_offset(), appended.last().map_or(0, |r| r.0 + 1));
    Ok(())
}

fn batches_strategy() -> impl Strategy<Value = Batches> {
    proptest::collection::vec(
        (
            proptest::collection::vec((0u8..8, proptest::option::weighted(0.8, any::<u8>())), 1..6),
            prop_oneof![3 => Just(Compression::None), 1 => Just(Compression::Gzip), 1 => Just(Compression::Lz4)],
        ),
        5..60,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn compaction_keeps_the_latest_record_per_key_and_offsets(batches in batches_strategy()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path(), compact_config());
        let appended = append_all(&log, &batches);
        let first = log.compact(NOW).expect("compaction");
        if log.segment_count() > 1 {
            prop_assert!(first.is_some());
        }
        check_compacted(&log, &appended, false)?;
        // Compacting again changes nothing visible; after the delete horizon tombstones go.
        log.compact(NOW).expect("compaction");
        check_compacted(&log, &appended, false)?;
        let before_horizon = all_records(&log);
        log.compact(NOW + DELETE_RETENTION_MS - 1).expect("compaction");
        prop_assert_eq!(all_records(&log), before_horizon);
        log.set_first_dirty_offset(0);
        log.compact(NOW + DELETE_RETENTION_MS).expect("compaction");
        check_compacted(&log, &appended, true)?;
        // The result survives restarts, clean and unclean.
        let expected = all_records(&log);
        log.close().expect("close");
        drop(log);
        let log = open(dir.path(), compact_config());
        prop_assert_eq!(all_records(&log), expected.clone());
        drop(log);
        let log = reopen_unclean(dir.path(), compact_config(), 0);
        prop_assert_eq!(all_records(&log), expected);
    }
}

fn keyed_log(dir: &Path) -> (Log, Vec<Kv>) {
    let log = open(dir, compact_config());
    let batches: Batches = (0..40u8)
        .map(|i| {
            let records = vec![
                (i % 5, Some(i)),
                ((i + 1) % 5, if i % 7 == 0 { None } else { Some(i) }),
            ];
            (
                records,
                if i % 3 == 0 {
                    Compression::Zstd
                } else {
                    Compression::None
                },
            )
        })
        .collect();
    let appended = append_all(&log, &batches);
    (log, appended)
}

/// The latest value of every key, as a reader would compute it from the whole log.
fn latest_values(records: &[Kv]) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    let mut latest = BTreeMap::new();
    for (_, key, value) in records {
        latest.insert(key.clone().expect("keyed"), value.clone());
    }
    latest
}

#[test]
fn a_crash_at_any_step_of_compaction_loses_nothing() {
    for point in [
        CrashPoint::AfterCleaned,
        CrashPoint::AfterIndexSwapRename,
        CrashPoint::AfterCommit,
        CrashPoint::AfterFirstOldDeleted,
        CrashPoint::AfterSwapIndexLive,
        CrashPoint::BeforeUnlink,
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, appended) = keyed_log(dir.path());
        let expected_latest = latest_values(&appended);
        let end = log.log_end_offset();
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
        let stored = all_records(&log);
        assert_eq!(log.log_end_offset(), end, "{point:?}");
        assert_eq!(latest_values(&stored), expected_latest, "{point:?}");
        let stored_offsets: std::collections::BTreeSet<i64> = stored.iter().map(|r| r.0).collect();
        let by_offset: BTreeMap<i64, &Kv> = appended.iter().map(|r| (r.0, r)).collect();
        for record in &stored {
            assert_eq!(by_offset.get(&record.0).copied(), Some(record), "{point:?}");
        }
        assert_eq!(stored_offsets.len(), stored.len());
        let names: Vec<String> = std::fs::read_dir(dir.path().join("orders-0"))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.ends_with(".cleaned")
                && !n.ends_with(".swap")
                && !n.ends_with(".deleted")),
            "{point:?}: {names:?}"
        );
        // Compaction works afterwards and reaches the same result as without a crash.
        log.update_high_watermark(end);
        log.set_first_dirty_offset(0);
        log.compact(NOW).expect("compaction after recovery");
        let clean_dir = tempfile::tempdir().expect("tempdir");
        let (reference, _) = keyed_log(clean_dir.path());
        reference.compact(NOW).expect("reference compaction");
        assert_eq!(all_records(&log), all_records(&reference), "{point:?}");
    }
}

#[test]
fn compaction_respects_dirty_ratio_and_compaction_lags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        min_cleanable_dirty_ratio: 0.5,
        ..compact_config()
    };
    let log = open(dir.path(), config.clone());
    let batches: Batches = (0..30u8)
        .map(|i| (vec![(i % 3, Some(i))], Compression::None))
        .collect();
    append_all(&log, &batches);
    assert!(log.compact(NOW).expect("compaction").is_some(), "all dirty");
    assert!(
        log.compact(NOW).expect("compaction").is_none(),
        "nothing dirty"
    );

    // min.compaction.lag.ms keeps recent segments out.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        min_compaction_lag_ms: 60_000,
        ..compact_config()
    };
    let log = open(dir.path(), config);
    append_all(&log, &batches);
    assert!(log.compact(NOW + 1_000).expect("compaction").is_none());
    assert!(log.compact(NOW + 61_000).expect("compaction").is_some());

    // max.compaction.lag.ms forces a cleaning below the dirty ratio.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        min_cleanable_dirty_ratio: 0.99,
        max_compaction_lag_ms: 5_000,
        ..compact_config()
    };
    let log = open(dir.path(), config);
    append_all(&log, &batches);
    log.compact(NOW).expect("compaction");
    append_all(&log, &batches);
    assert!(
        log.compact(NOW + 1_000).expect("compaction").is_none(),
        "ratio too low"
    );
    assert!(
        log.compact(NOW + 6_000).expect("compaction").is_some(),
        "lag forces it"
    );
}

#[test]
fn the_active_segment_and_data_above_the_high_watermark_are_never_compacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compact_config());
    let batches: Batches = (0..30u8)
        .map(|i| (vec![(0, Some(i))], Compression::None))
        .collect();
    let appended = append_all(&log, &batches);
    log.update_high_watermark(0);
    assert!(
        log.compact(NOW).expect("compaction").is_none(),
        "nothing below the high watermark"
    );
    log.update_high_watermark(log.log_end_offset());
    log.compact(NOW).expect("compaction");
    let stored = all_records(&log);
    let active_base = log.segments().last().expect("active").base_offset();
    let expected_active: Vec<&Kv> = appended.iter().filter(|r| r.0 >= active_base).collect();
    let stored_active: Vec<&Kv> = stored.iter().filter(|r| r.0 >= active_base).collect();
    assert_eq!(stored_active, expected_active);
}

#[test]
fn compaction_keeps_batch_attributes_producer_fields_and_codec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compact_config());
    let mut sequence = 0;
    for i in 0..30u8 {
        let bytes = encode(
            &[
                Rec::kv(b"a", &[i; 30], NOW),
                Rec::kv(&[b'u', i], &[i; 30], NOW),
            ],
            &BatchSpec {
                producer_id: 5,
                producer_epoch: 2,
                base_sequence: sequence,
                compression: Compression::Snappy,
                ..BatchSpec::default()
            },
        );
        sequence += 2;
        log.append_as_leader(&bytes, 3, NOW).expect("append");
    }
    log.update_high_watermark(log.log_end_offset());
    let stats = log.compact(NOW).expect("compaction").expect("cleaned");
    assert!(stats.records_removed > 0);
    for (header, _) in read_all(&log) {
        assert_eq!(header.producer_id, 5);
        assert_eq!(header.producer_epoch, 2);
        assert_eq!(header.partition_leader_epoch, 3);
        assert_eq!(i64::from(header.base_sequence), header.base_offset);
        assert_eq!(
            header.last_offset_delta, 1,
            "the batch keeps its last offset"
        );
        if header.records_count > 0 {
            assert_eq!(header.compression(), Compression::Snappy);
        }
    }
    // The producer continues in sequence after compaction, and retries are still found.
    let next = encode(
        &[Rec::kv(b"z", b"z", NOW)],
        &BatchSpec {
            producer_id: 5,
            producer_epoch: 2,
            base_sequence: sequence,
            ..BatchSpec::default()
        },
    );
    assert!(
        !log.append_as_leader(&next, 3, NOW)
            .expect("append")
            .duplicate
    );
}

#[test]
fn compaction_does_not_block_appends_or_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = std::sync::Arc::new(open(dir.path(), compact_config()));
    let batches: Batches = (0..200u8)
        .map(|i| (vec![(i % 10, Some(i))], Compression::None))
        .collect();
    append_all(&log, &batches);
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 0..250u8 {
                let bytes = batch_with(&[Rec::kv(&[b'k', i % 10], &[i; 20], NOW)], |_| {});
                log.append_as_leader(&bytes, 0, NOW)
                    .expect("append during compaction");
                let _ = read_all(&log);
            }
        })
    };
    for _ in 0..5 {
        log.update_high_watermark(log.log_end_offset());
        log.compact(NOW).expect("compaction");
    }
    writer.join().expect("writer");
    let records = all_records(&log);
    assert!(records.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(records.last().map(|r| r.0 + 1), Some(log.log_end_offset()));
}
