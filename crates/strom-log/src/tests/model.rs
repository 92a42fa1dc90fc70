//! Reads by offset and by timestamp against a model of the appended records, across segment
//! rolls, restarts (clean and unclean), and concurrent appends and reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proptest::prelude::*;

use super::*;
use crate::batch::Compression;
use crate::testing::{Rec, batch_with};

/// A model record: offset, timestamp, value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelRecord {
    offset: i64,
    timestamp: i64,
    value: Vec<u8>,
}

#[derive(Debug, Clone)]
struct AppendSpec {
    /// Per record: timestamp delta from NOW and value size.
    records: Vec<(i64, usize)>,
    compression: Compression,
}

fn append_spec() -> impl Strategy<Value = AppendSpec> {
    (
        proptest::collection::vec((0i64..5_000, 0usize..300), 1..6),
        prop_oneof![
            4 => Just(Compression::None),
            1 => Just(Compression::Zstd),
            1 => Just(Compression::Snappy)
        ],
    )
        .prop_map(|(records, compression)| AppendSpec {
            records,
            compression,
        })
}

fn check_against_model(
    log: &Log,
    model: &[ModelRecord],
    probes: &[(i64, usize, i64)],
) -> Result<(), TestCaseError> {
    let end = model.len() as i64;
    prop_assert_eq!(log.log_end_offset(), end);
    let stored = all_records(log);
    prop_assert_eq!(stored.len(), model.len());
    for (record, (offset, _, value)) in model.iter().zip(&stored) {
        prop_assert_eq!(record.offset, *offset);
        prop_assert_eq!(Some(&record.value), value.as_ref());
    }
    for &(fetch, max_bytes, target) in probes {
        let fetch = fetch.rem_euclid(end.max(1));
        if fetch < end {
            let read = log.read(fetch, max_bytes, end, true).expect("read");
            let batches: Vec<_> = batch::batches(&read.records, Validation::Stored)
                .map(|b| batch::validate(b.expect("whole").bytes, Validation::Stored).expect("crc"))
                .collect();
            prop_assert!(!batches.is_empty());
            prop_assert!(batches[0].base_offset <= fetch && fetch <= batches[0].last_offset());
            prop_assert!(read.records.len() <= max_bytes || batches.len() == 1);
            for pair in batches.windows(2) {
                prop_assert_eq!(pair[0].next_offset(), pair[1].base_offset);
            }
        }
        let target = NOW + target;
        let expected = model
            .iter()
            .find(|r| r.timestamp >= target)
            .map(|r| (r.offset, r.timestamp));
        let got = log
            .offset_for_timestamp(target)
            .expect("lookup")
            .map(|f| (f.offset, f.timestamp));
        prop_assert_eq!(got, expected, "timestamp {}", target);
    }
    let max = model.iter().map(|r| r.timestamp).max();
    let expected = max
        .and_then(|m| model.iter().find(|r| r.timestamp == m))
        .map(|r| (r.offset, r.timestamp));
    let got = log
        .max_timestamp_and_offset()
        .expect("max")
        .map(|f| (f.offset, f.timestamp));
    prop_assert_eq!(got, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn reads_by_offset_and_timestamp_match_the_model(
        appends in proptest::collection::vec(append_spec(), 1..40),
        segment_bytes in 300u64..4000,
        index_interval_bytes in 0u64..600,
        segment_index_bytes in 24u64..400,
        probes in proptest::collection::vec((0i64..1000, 1usize..3000, -10i64..5_100), 1..20),
        restart in 0u8..3,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            segment_bytes,
            index_interval_bytes,
            segment_index_bytes,
            message_timestamp_after_max_ms: i64::MAX,
            ..LogConfig::default()
        };
        let log = open(dir.path(), config.clone());
        let mut model = Vec::new();
        for (i, spec) in appends.iter().enumerate() {
            let recs: Vec<Rec> = spec
                .records
                .iter()
                .enumerate()
                .map(|(j, &(delta, size))| Rec::kv(b"k", &vec![(i * 7 + j) as u8; size], NOW + delta))
                .collect();
            let bytes = batch_with(&recs, |s| s.compression = spec.compression);
            let info = log.append_as_leader(&bytes, 0, NOW).expect("append");
            for (j, &(delta, size)) in spec.records.iter().enumerate() {
                model.push(ModelRecord {
                    offset: info.first_offset + j as i64,
                    timestamp: NOW + delta,
                    value: vec![(i * 7 + j) as u8; size],
                });
            }
        }
        check_against_model(&log, &model, &probes)?;
        let log = match restart {
            0 => log,
            1 => {
                log.close().expect("close");
                drop(log);
                open(dir.path(), config)
            }
            _ => {
                drop(log);
                reopen_unclean(dir.path(), config, 0)
            }
        };
        check_against_model(&log, &model, &probes)?;
    }
}

/// One appender, three readers (two random, one following the tail) and a retention thread:
/// readers only ever see whole, CRC-valid batches with increasing offsets.
#[test]
fn concurrent_readers_see_only_whole_valid_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 8 * 1024,
        index_interval_bytes: 512,
        retention_bytes: 64 * 1024,
        ..LogConfig::default()
    };
    let log = Arc::new(open(dir.path(), config));
    let done = Arc::new(AtomicBool::new(false));
    let appends = 3_000;

    let appender = {
        let log = log.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            for i in 0..appends {
                let count = 1 + i % 5;
                let size = (i * 37) % 400;
                log.append_as_leader(&records(count, size, NOW + i as i64), 0, NOW)
                    .expect("append");
                log.update_high_watermark(log.log_end_offset());
            }
            done.store(true, Ordering::Release);
        })
    };
    let retention = {
        let log = log.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut deleted = 0;
            while !done.load(Ordering::Acquire) {
                deleted += log.enforce_retention(NOW).expect("retention");
                std::thread::yield_now();
            }
            deleted
        })
    };
    let mut readers = Vec::new();
    for reader in 0..3u64 {
        let log = log.clone();
        let done = done.clone();
        readers.push(std::thread::spawn(move || {
            let mut seen = 0usize;
            let mut tail = 0i64;
            let mut state = reader.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            loop {
                let finished = done.load(Ordering::Acquire);
                let end = log.log_end_offset();
                let fetch = if reader == 0 {
                    tail.max(log.log_start_offset())
                } else {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let start = log.log_start_offset();
                    start + (state % ((end - start).max(1) as u64)) as i64
                };
                match log.read(fetch, 4096, end, true) {
                    Ok(read) => {
                        let mut expected = None;
                        for b in batch::batches(&read.records, Validation::Stored) {
                            let b = b.expect("only whole batches");
                            let header =
                                batch::validate(b.bytes, Validation::Produce).expect("valid CRC");
                            if let Some(next) = expected {
                                assert_eq!(
                                    header.base_offset, next,
                                    "offsets increase without gaps"
                                );
                            } else {
                                assert!(
                                    header.base_offset <= fetch && fetch <= header.last_offset()
                                );
                            }
                            assert!(header.last_offset() < end);
                            expected = Some(header.next_offset());
                            seen += 1;
                        }
                        if let Some(next) = expected {
                            tail = next;
                        }
                    }
                    // Retention may move the start past the offset picked.
                    Err(crate::Error::OffsetOutOfRange { .. }) => {}
                    Err(other) => panic!("read failed: {other}"),
                }
                if finished && (reader != 0 || tail >= log.log_end_offset()) {
                    break;
                }
            }
            seen
        }));
    }
    appender.join().expect("appender");
    let deleted = retention.join().expect("retention thread");
    for reader in readers {
        assert!(reader.join().expect("reader") > 0);
    }
    assert!(deleted > 0, "retention ran concurrently");
    log.enforce_retention(NOW).expect("retention");
    assert!(log.size_bytes() < 80 * 1024);
    assert_eq!(
        read_all(&log).last().map(|(h, _)| h.next_offset()),
        Some(log.log_end_offset())
    );
}
