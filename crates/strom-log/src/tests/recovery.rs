use std::fs::OpenOptions as FileOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use rand::{Rng, SeedableRng};

use super::*;
use crate::testing::{BatchSpec, encode};

/// Appends `n` batches of varied sizes; returns the log.
fn filled(dir: &Path, n: usize, seed: u64) -> Log {
    let log = open(dir, small_config());
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for i in 0..n {
        let count = rng.random_range(1..4);
        let size = rng.random_range(10..600);
        log.append_as_leader(&records(count, size, NOW + i as i64), 0, NOW)
            .expect("append");
    }
    log
}

fn segment_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("orders-0"))
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

#[test]
fn clean_restart_needs_no_recovery_and_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 40, 1);
    let before = read_all(&log);
    let indexes: Vec<_> = segment_files(dir.path(), ".index")
        .iter()
        .map(|p| std::fs::read(p).expect("index"))
        .collect();
    log.close().expect("close");
    drop(log);
    let log = open(dir.path(), small_config());
    assert_eq!(
        log.recovery_report(),
        &crate::recovery::RecoveryReport::default()
    );
    assert_eq!(read_all(&log), before);
    log.close().expect("close");
    let after: Vec<_> = segment_files(dir.path(), ".index")
        .iter()
        .map(|p| std::fs::read(p).expect("index"))
        .collect();
    assert_eq!(indexes[..indexes.len() - 1], after[..after.len() - 1]);
}

#[test]
fn unclean_restart_validates_and_keeps_every_intact_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 40, 2);
    let before = read_all(&log);
    drop(log); // a crash: no close, no snapshot, untrimmed active index
    let log = reopen_unclean(dir.path(), small_config(), 0);
    assert_eq!(read_all(&log), before);
    assert_eq!(log.recovery_report().truncated_bytes, 0);
    assert!(log.recovery_report().rebuilt_indexes >= 1);
    // Appends continue after recovery.
    let next = log.log_end_offset();
    let info = log
        .append_as_leader(&records(1, 10, NOW), 0, NOW)
        .expect("append");
    assert_eq!(info.first_offset, next);
}

#[test]
fn recovery_truncates_a_torn_batch_at_the_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 10, 3);
    let before = read_all(&log);
    drop(log);
    let active = segment_files(dir.path(), ".log")
        .pop()
        .expect("active segment");
    let len = std::fs::metadata(&active).expect("meta").len();
    let last = before.last().expect("a batch").1.len() as u64;
    FileOptions::new()
        .write(true)
        .open(&active)
        .expect("open")
        .set_len(len - last / 2)
        .expect("truncate");
    let log = reopen_unclean(dir.path(), small_config(), 0);
    assert_eq!(read_all(&log), before[..before.len() - 1]);
    assert_eq!(log.log_end_offset(), before[before.len() - 1].0.base_offset);
    assert_eq!(log.recovery_report().truncated_bytes, last - last / 2);
}

#[test]
fn recovery_removes_garbage_after_the_last_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 10, 4);
    let before = read_all(&log);
    drop(log);
    let active = segment_files(dir.path(), ".log")
        .pop()
        .expect("active segment");
    let len = std::fs::metadata(&active).expect("meta").len();
    let file = FileOptions::new().write(true).open(&active).expect("open");
    // Zeros (a preallocated or partially flushed tail) and then random bytes.
    file.write_all_at(&[0u8; 100], len).expect("zeros");
    let log = reopen_unclean(dir.path(), small_config(), 0);
    assert_eq!(read_all(&log), before);
    drop(log);
    let len = std::fs::metadata(&active).expect("meta").len();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let garbage: Vec<u8> = (0..300).map(|_| rng.random()).collect();
    file.write_all_at(&garbage, len).expect("garbage");
    let log = reopen_unclean(dir.path(), small_config(), 0);
    assert_eq!(read_all(&log), before);
}

/// Overwrites random bytes at a random place of a random segment and checks that recovery
/// keeps exactly the batches before the damaged one (file order), and nothing after it.
#[test]
fn recovery_truncates_at_the_first_damaged_batch_for_many_seeds() {
    for seed in 0..40u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = filled(dir.path(), 30, 100 + seed);
        let before = read_all(&log);
        drop(log);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // Pick a batch and a byte inside it. Base offset (0..8) and leader epoch (12..16)
        // are outside the CRC; see docs/storage.md on what recovery can detect there.
        let victim = rng.random_range(0..before.len());
        let (header, bytes) = &before[victim];
        let mut at = rng.random_range(8..bytes.len());
        if (12..16).contains(&at) {
            at = 16 + (at - 12);
        }
        let span = rng.random_range(1..8).min(bytes.len() - at);
        // Locate the batch in its segment file.
        let segments = segment_files(dir.path(), ".log");
        let mut position_in_segment = None;
        for path in &segments {
            let data = std::fs::read(path).expect("segment");
            if let Some(pos) = data.windows(bytes.len()).position(|w| w == &bytes[..]) {
                position_in_segment = Some((path.clone(), pos));
                break;
            }
        }
        let (path, pos) = position_in_segment.expect("batch found on disk");
        let original: Vec<u8> = bytes[at..at + span].to_vec();
        let mut replacement: Vec<u8> = (0..span).map(|_| rng.random()).collect();
        if replacement == original {
            replacement[0] ^= 0xff;
        }
        let file = FileOptions::new().write(true).open(&path).expect("open");
        file.write_all_at(&replacement, (pos + at) as u64)
            .expect("corrupt");
        drop(file);

        let log = reopen_unclean(dir.path(), small_config(), 0);
        let after = read_all(&log);
        assert_eq!(
            after,
            before[..victim],
            "seed {seed}: batch {victim} (base {}), byte {at}",
            header.base_offset
        );
        assert_eq!(log.log_end_offset(), header.base_offset, "seed {seed}");
        // The log is usable afterwards and survives another restart.
        log.append_as_leader(&records(1, 5, NOW), 0, NOW)
            .expect("append");
        log.close().expect("close");
        drop(log);
        let log = open(dir.path(), small_config());
        assert_eq!(read_all(&log).len(), victim + 1, "seed {seed}");
    }
}

#[test]
fn missing_or_damaged_index_files_are_rebuilt_identically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 60, 5);
    let before = read_all(&log);
    let lookups: Vec<_> = (0..before.len() as i64 * 2)
        .map(|t| log.offset_for_timestamp(NOW + t).expect("lookup"))
        .collect();
    log.close().expect("close");
    drop(log);
    let indexes = segment_files(dir.path(), ".index");
    let time_indexes = segment_files(dir.path(), ".timeindex");
    assert!(indexes.len() >= 5, "enough segments to damage");
    let originals: Vec<Vec<u8>> = indexes
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    let time_originals: Vec<Vec<u8>> = time_indexes
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();

    std::fs::remove_file(&indexes[0]).expect("delete index");
    std::fs::remove_file(&time_indexes[1]).expect("delete time index");
    // Short by one entry (still a multiple of 8 bytes).
    let shortened = &originals[2][..originals[2].len().saturating_sub(8)];
    std::fs::write(&indexes[2], shortened).expect("short index");
    // A partial entry.
    std::fs::write(&indexes[3], &originals[3][..3.min(originals[3].len())]).expect("partial");
    // Entries that do not increase.
    let mut garbage = originals[4].clone();
    garbage.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
    std::fs::write(&indexes[4], garbage).expect("garbage index");

    let log = open(dir.path(), small_config());
    assert!(
        log.recovery_report().rebuilt_indexes >= 4,
        "{:?}",
        log.recovery_report()
    );
    assert_eq!(read_all(&log), before);
    let again: Vec<_> = (0..before.len() as i64 * 2)
        .map(|t| log.offset_for_timestamp(NOW + t).expect("lookup"))
        .collect();
    assert_eq!(again, lookups);
    log.close().expect("close");
    for (path, original) in indexes.iter().zip(&originals) {
        assert_eq!(
            &std::fs::read(path).expect("read"),
            original,
            "{}",
            path.display()
        );
    }
    for (path, original) in time_indexes.iter().zip(&time_originals) {
        assert_eq!(
            &std::fs::read(path).expect("read"),
            original,
            "{}",
            path.display()
        );
    }
}

#[test]
fn an_index_pointing_past_the_segment_end_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 30, 6);
    let before = read_all(&log);
    log.close().expect("close");
    drop(log);
    let index = &segment_files(dir.path(), ".index")[0];
    let mut bytes = std::fs::read(index).expect("read");
    bytes.extend_from_slice(&[0, 0, 0, 200, 0, 1, 0, 0]); // position 65536, past the end
    std::fs::write(index, bytes).expect("write");
    let log = open(dir.path(), small_config());
    assert_eq!(log.recovery_report().rebuilt_indexes, 1);
    assert_eq!(read_all(&log), before);
}

#[test]
fn leftover_files_of_interrupted_operations_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 5, 7);
    let before = read_all(&log);
    log.close().expect("close");
    drop(log);
    let partition = dir.path().join("orders-0");
    for name in [
        "00000000000000000000.log.deleted",
        "00000000000000000003.index.cleaned",
        "00000000000000000003.log.cleaned",
        "00000000000000000000.index.swap",
        "leader-epoch-checkpoint.tmp",
        "00000000000000009999.index",
    ] {
        std::fs::write(partition.join(name), b"junk").expect("write junk");
    }
    let log = open(dir.path(), small_config());
    assert_eq!(read_all(&log), before);
    let names: Vec<String> = std::fs::read_dir(&partition)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for name in &names {
        assert!(
            !name.ends_with(".deleted")
                && !name.ends_with(".cleaned")
                && !name.ends_with(".swap")
                && !name.ends_with(".tmp")
                && !name.starts_with("00000000000000009999"),
            "leftover {name} survived"
        );
    }
}

#[test]
fn recovery_starts_at_the_segment_holding_the_recovery_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 60, 8);
    let flushed = log.flush().expect("flush");
    let segments = log.segment_count();
    drop(log);
    let log = reopen_unclean(dir.path(), small_config(), flushed);
    assert_eq!(
        log.recovery_report().rebuilt_indexes,
        1,
        "only the active segment"
    );
    assert!(segments > 2);
    drop(log);
    let log = reopen_unclean(dir.path(), small_config(), 0);
    assert_eq!(log.recovery_report().rebuilt_indexes, segments);
}

fn idempotent(sequence: i32, count: usize) -> Vec<u8> {
    let recs: Vec<Rec> = (0..count)
        .map(|i| Rec::kv(b"k", &[i as u8; 40], NOW))
        .collect();
    encode(
        &recs,
        &BatchSpec {
            producer_id: 77,
            producer_epoch: 3,
            base_sequence: sequence,
            ..BatchSpec::default()
        },
    )
    .to_vec()
}

#[test]
fn retries_are_detected_as_duplicates_after_a_crash_and_restart() {
    for crash in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path(), small_config());
        let mut acked = Vec::new();
        let mut sequence = 0;
        for _ in 0..40 {
            let bytes = idempotent(sequence, 3);
            acked.push((
                bytes.clone(),
                log.append_as_leader(&bytes, 0, NOW).expect("append"),
            ));
            sequence += 3;
        }
        assert!(log.segment_count() > 2, "snapshots are taken at rolls");
        if crash {
            drop(log);
        } else {
            log.close().expect("close");
            drop(log);
        }
        let log = if crash {
            reopen_unclean(dir.path(), small_config(), 0)
        } else {
            open(dir.path(), small_config())
        };
        // Each of the last five acknowledged batches is recognised with its original offsets.
        for (bytes, info) in &acked[acked.len() - 5..] {
            let retry = log.append_as_leader(bytes, 0, NOW).expect("retry");
            assert!(retry.duplicate, "crash={crash}");
            assert_eq!(
                (retry.first_offset, retry.last_offset),
                (info.first_offset, info.last_offset)
            );
        }
        // And the producer continues in sequence.
        let next = log
            .append_as_leader(&idempotent(sequence, 1), 0, NOW)
            .expect("next");
        assert!(!next.duplicate);
        assert!(matches!(
            log.append_as_leader(&idempotent(sequence + 5, 1), 0, NOW),
            Err(crate::AppendError::OutOfOrderSequence { .. })
        ));
    }
}

#[test]
fn corrupt_producer_snapshots_are_dropped_and_state_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config());
    let mut sequence = 0;
    let mut last = None;
    for _ in 0..20 {
        let bytes = idempotent(sequence, 2);
        last = Some((
            bytes.clone(),
            log.append_as_leader(&bytes, 0, NOW).expect("append"),
        ));
        sequence += 2;
    }
    log.close().expect("close");
    drop(log);
    for path in segment_files(dir.path(), ".snapshot") {
        std::fs::write(&path, b"STROMPS\0garbage").expect("corrupt snapshot");
    }
    let log = open(dir.path(), small_config());
    let (bytes, info) = last.expect("appended");
    let retry = log.append_as_leader(&bytes, 0, NOW).expect("retry");
    assert!(retry.duplicate);
    assert_eq!(retry.first_offset, info.first_offset);
}

#[test]
fn a_missing_leader_epoch_checkpoint_is_rebuilt_from_the_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config());
    for epoch in [0, 0, 2, 2, 5] {
        log.append_as_leader(&records(2, 300, NOW), epoch, NOW)
            .expect("append");
    }
    log.close().expect("close");
    drop(log);
    std::fs::remove_file(dir.path().join("orders-0/leader-epoch-checkpoint")).expect("remove");
    let log = open(dir.path(), small_config());
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 4)));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 8)));
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 10)));
}

#[test]
fn an_epoch_entry_past_the_log_end_is_trimmed_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config());
    log.append_as_leader(&records(2, 10, NOW), 1, NOW)
        .expect("append");
    drop(log);
    // As if the cache was written and then the append's data was lost in a crash.
    std::fs::write(
        dir.path().join("orders-0/leader-epoch-checkpoint"),
        "0\n2\n1 0\n2 2\n",
    )
    .expect("write");
    let log = reopen_unclean(dir.path(), small_config(), 0);
    assert_eq!(log.latest_epoch(), Some(1));
}
