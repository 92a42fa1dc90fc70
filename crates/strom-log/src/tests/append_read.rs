use super::*;
use crate::batch::Compression;
use crate::testing::{BatchSpec, encode};
use crate::{AppendError, CleanupPolicy, Error, TimestampType};

#[test]
fn new_log_is_empty_with_a_first_segment_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.high_watermark(), 0);
    assert_eq!(log.segment_count(), 1);
    assert!(
        dir.path()
            .join("orders-0/00000000000000000000.log")
            .exists()
    );
    assert!(
        dir.path()
            .join("orders-0/00000000000000000000.index")
            .exists()
    );
    assert!(
        dir.path()
            .join("orders-0/00000000000000000000.timeindex")
            .exists()
    );
    let read = log.read(0, 1000, 0, true).expect("read");
    assert!(read.records.is_empty());
}

#[test]
fn append_assigns_offsets_and_reads_return_the_stored_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    let first = log
        .append_as_leader(&records(3, 10, NOW), 5, NOW)
        .expect("append");
    assert_eq!(
        (first.first_offset, first.last_offset, first.record_count),
        (0, 2, 3)
    );
    assert!(!first.duplicate);
    assert_eq!(first.log_append_time_ms, -1);
    let second = log
        .append_as_leader(&records(2, 10, NOW), 5, NOW)
        .expect("append");
    assert_eq!((second.first_offset, second.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 5);

    let read = log.read(0, 1 << 20, 5, false).expect("read");
    let batches: Vec<_> = batch::batches(&read.records, Validation::Stored)
        .map(|b| batch::validate(b.expect("whole").bytes, Validation::Produce).expect("valid"))
        .collect();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].base_offset, 0);
    assert_eq!(batches[1].base_offset, 3);
    assert!(batches.iter().all(|b| b.partition_leader_epoch == 5));
    assert_eq!(log.latest_epoch(), Some(5));

    // A fetch from the middle of the second batch returns that batch whole.
    let read = log.read(4, 1 << 20, 5, false).expect("read");
    let header = BatchHeader::parse(&read.records).expect("header");
    assert_eq!(header.base_offset, 3);
    assert_eq!(read.records.len(), header.size());
}

#[test]
fn reads_stop_at_the_upper_bound_and_max_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    let batch = records(1, 100, NOW);
    for _ in 0..10 {
        log.append_as_leader(&batch, 0, NOW).expect("append");
    }
    let size = batch.len();
    // Upper bound (high watermark) 4: batches 0..=3 only.
    let read = log.read(0, 1 << 20, 4, false).expect("read");
    assert_eq!(read.records.len(), 4 * size);
    assert_eq!(read.log_end_offset, 10);
    // max_bytes cuts at a whole batch.
    let read = log.read(2, 3 * size + size / 2, 10, false).expect("read");
    assert_eq!(read.records.len(), 3 * size);
    // A first batch larger than max_bytes: whole with min_one_batch, nothing without.
    let read = log.read(2, size / 2, 10, true).expect("read");
    assert_eq!(read.records.len(), size);
    let read = log.read(2, size / 2, 10, false).expect("read");
    assert!(read.records.is_empty());
    // At the bound: nothing.
    assert!(
        log.read(10, 1000, 10, true)
            .expect("read")
            .records
            .is_empty()
    );
}

#[test]
fn reads_of_large_indexed_batches_start_at_the_batch_holding_the_offset() {
    // Batches over 64 KiB are indexed one by one, which makes the read probe the batch the
    // index points past; every start offset must still get exactly the right batches.
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    let batch = records(4, 40_000, NOW);
    let size = batch.len();
    for _ in 0..6 {
        log.append_as_leader(&batch, 0, NOW).expect("append");
    }
    let stored = read_all(&log);
    for offset in [0, 3, 4, 5, 7, 8, 13, 20, 23] {
        let first = (offset / 4) as usize;
        // Two batches fit, a third does not.
        let read = log
            .read(offset, 2 * size + size / 2, 24, false)
            .expect("read");
        let expected: Vec<u8> = stored[first..(first + 2).min(6)]
            .iter()
            .flat_map(|(_, bytes)| bytes.clone())
            .collect();
        assert_eq!(
            read.records.as_ref(),
            expected.as_slice(),
            "offset {offset}"
        );
        // A max_bytes below one batch: the whole first batch, or nothing.
        let read = log.read(offset, size / 3, 24, true).expect("read");
        assert_eq!(
            read.records.as_ref(),
            stored[first].1.as_slice(),
            "offset {offset}"
        );
        assert!(
            log.read(offset, size / 3, 24, false)
                .expect("read")
                .records
                .is_empty()
        );
        // The upper bound stops before the batch that reaches it.
        let read = log.read(offset, 10 * size, 16, false).expect("read");
        assert_eq!(
            read.records.len(),
            4usize.saturating_sub(first) * size,
            "offset {offset}"
        );
    }
}

#[test]
fn reads_outside_the_log_are_out_of_range_with_the_bounds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&records(2, 10, NOW), 0, NOW)
        .expect("append");
    match log.read(3, 100, 10, true) {
        Err(Error::OffsetOutOfRange {
            offset: 3,
            log_start_offset: 0,
            log_end_offset: 2,
        }) => {}
        other => panic!("expected out of range, got {other:?}"),
    }
    assert!(matches!(
        log.read(-1, 100, 10, true),
        Err(Error::OffsetOutOfRange { .. })
    ));
}

#[test]
fn reads_span_segments_in_one_buffer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config());
    let batch = records(2, 300, NOW);
    for _ in 0..20 {
        log.append_as_leader(&batch, 0, NOW).expect("append");
    }
    assert!(log.segment_count() > 3, "small segments roll");
    let read = log.read(0, 1 << 20, 40, false).expect("read");
    let offsets: Vec<i64> = batch::batches(&read.records, Validation::Stored)
        .map(|b| b.expect("whole").header.base_offset)
        .collect();
    assert_eq!(offsets, (0..20).map(|i| i * 2).collect::<Vec<_>>());
    // From the middle of a middle segment.
    let read = log.read(17, 5 * batch.len(), 40, false).expect("read");
    let offsets: Vec<i64> = batch::batches(&read.records, Validation::Stored)
        .map(|b| b.expect("whole").header.base_offset)
        .collect();
    assert_eq!(offsets, vec![16, 18, 20, 22, 24]);
}

#[test]
fn log_append_time_topics_stamp_the_broker_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    let info = log
        .append_as_leader(&records(2, 10, 5), 0, NOW)
        .expect("append");
    assert_eq!(info.log_append_time_ms, NOW);
    let read = log.read(0, 1000, 2, true).expect("read");
    let header = batch::validate(&read.records, Validation::Produce).expect("valid CRC");
    assert!(header.is_log_append_time());
    assert_eq!(header.max_timestamp, NOW);
    let found = log
        .offset_for_timestamp(NOW)
        .expect("lookup")
        .expect("found");
    assert_eq!((found.offset, found.timestamp), (0, NOW));
}

#[test]
fn appends_that_break_topic_rules_are_refused_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        max_message_bytes: 200,
        message_timestamp_after_max_ms: 1000,
        message_timestamp_before_max_ms: 1000,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    let mut two = records(1, 10, NOW);
    two.extend_from_slice(&records(1, 500, NOW));
    assert!(matches!(
        log.append_as_leader(&two, 0, NOW),
        Err(AppendError::RecordTooLarge { max: 200, .. })
    ));
    assert_eq!(log.log_end_offset(), 0, "all or nothing");
    assert!(matches!(
        log.append_as_leader(&records(1, 10, NOW + 5000), 0, NOW),
        Err(AppendError::InvalidTimestamp { .. })
    ));
    assert!(matches!(
        log.append_as_leader(&records(1, 10, NOW - 5000), 0, NOW),
        Err(AppendError::InvalidTimestamp { .. })
    ));
    // Markers are the broker's to write: a client's control batch is INVALID_RECORD.
    let control = encode(
        &[Rec::kv(&[0, 0, 0, 1], &[0, 0, 0, 0, 0, 0], NOW)],
        &BatchSpec {
            producer_id: 1,
            producer_epoch: 0,
            transactional: true,
            control: true,
            ..BatchSpec::default()
        },
    );
    assert!(matches!(
        log.append_as_leader(&control, 0, NOW),
        Err(AppendError::InvalidRecord(_))
    ));
    let mut corrupt = records(1, 10, NOW);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert!(matches!(
        log.append_as_leader(&corrupt, 0, NOW),
        Err(AppendError::Corrupt(batch::BatchError::CrcMismatch { .. }))
    ));
    assert!(matches!(
        log.append_as_leader(&[], 0, NOW),
        Err(AppendError::Corrupt(batch::BatchError::Empty))
    ));
    assert!(matches!(
        log.append_as_leader(&corrupt[..30], 0, NOW),
        Err(AppendError::Corrupt(_))
    ));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn compacted_topics_refuse_records_without_a_key_even_compressed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    for compression in [Compression::None, Compression::Zstd, Compression::Gzip] {
        let bytes = batch_with(&[Rec::kv(b"k", b"v", NOW), Rec::no_key(b"v", NOW)], |s| {
            s.compression = compression;
        });
        assert!(matches!(
            log.append_as_leader(&bytes, 0, NOW),
            Err(AppendError::InvalidRecord(_))
        ));
    }
    log.append_as_leader(&batch_with(&[Rec::kv(b"k", b"v", NOW)], |_| {}), 0, NOW)
        .expect("keyed record accepted");
}

#[test]
fn flush_advances_the_recovery_point_and_flush_messages_flushes_on_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&records(3, 10, NOW), 0, NOW)
        .expect("append");
    assert_eq!(log.flushed_offset(), 0);
    assert_eq!(log.flush().expect("flush"), 3);
    assert_eq!(log.flushed_offset(), 3);

    let config = LogConfig {
        flush_messages: 4,
        ..LogConfig::default()
    };
    let log = open(&dir.path().join("other"), config);
    log.append_as_leader(&records(3, 10, NOW), 0, NOW)
        .expect("append");
    assert_eq!(log.flushed_offset(), 0);
    log.append_as_leader(&records(1, 10, NOW), 0, NOW)
        .expect("append");
    assert_eq!(
        log.flushed_offset(),
        4,
        "the fourth record triggers an fsync"
    );
}

#[test]
fn flush_ms_is_honoured_by_flush_if_due() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        flush_ms: 1000,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    log.append_as_leader(&records(1, 10, NOW), 0, NOW)
        .expect("append");
    assert!(!log.flush_if_due(NOW + 999).expect("flush check"));
    assert!(log.flush_if_due(NOW + 1000).expect("flush check"));
    assert_eq!(log.flushed_offset(), 1);
    assert!(!log.flush_if_due(NOW + 5000).expect("nothing new"));
}

#[test]
fn high_watermark_is_clamped_into_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&records(3, 10, NOW), 0, NOW)
        .expect("append");
    assert_eq!(log.update_high_watermark(10), 3);
    assert_eq!(log.update_high_watermark(-5), 0);
    assert_eq!(log.update_high_watermark(2), 2);
}

#[test]
fn segments_roll_by_size_time_and_full_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Size.
    let log = open(&dir.path().join("size"), small_config());
    let batch = records(1, 1000, NOW);
    for _ in 0..8 {
        log.append_as_leader(&batch, 0, NOW).expect("append");
    }
    assert!(log.segment_count() >= 2);
    assert!(log.segments().iter().all(|s| s.size() <= 4096));

    // Time: measured from the first batch's timestamp.
    let config = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let log = open(&dir.path().join("time"), config);
    log.append_as_leader(&records(1, 10, NOW), 0, NOW)
        .expect("append");
    log.append_as_leader(&records(1, 10, NOW + 1000), 0, NOW)
        .expect("append");
    assert_eq!(log.segment_count(), 1);
    log.append_as_leader(&records(1, 10, NOW + 1001), 0, NOW)
        .expect("append");
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.segments()[1].base_offset(), 2);

    // Full offset index: room for two entries, an entry every batch.
    let config = LogConfig {
        segment_index_bytes: 24,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let log = open(&dir.path().join("index"), config);
    for _ in 0..8 {
        log.append_as_leader(&records(1, 10, NOW), 0, NOW)
            .expect("append");
    }
    assert!(
        log.segment_count() >= 3,
        "index-full rolls: {}",
        log.segment_count()
    );
    assert_eq!(read_all(&log).len(), 8);
}

#[test]
fn timestamp_lookups_find_the_exact_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config());
    // Timestamps inside batches are not sorted.
    let recs = [
        Rec::kv(b"a", b"1", NOW + 50),
        Rec::kv(b"b", b"2", NOW + 10),
        Rec::kv(b"c", b"3", NOW + 70),
    ];
    log.append_as_leader(&batch_with(&recs, |_| {}), 0, NOW)
        .expect("append");
    for compression in [Compression::None, Compression::Lz4] {
        let recs = [Rec::kv(b"d", b"4", NOW + 60), Rec::kv(b"e", b"5", NOW + 90)];
        log.append_as_leader(&batch_with(&recs, |s| s.compression = compression), 0, NOW)
            .expect("append");
    }
    let lookup = |t| {
        log.offset_for_timestamp(t)
            .expect("lookup")
            .map(|f| (f.offset, f.timestamp))
    };
    assert_eq!(lookup(NOW), Some((0, NOW + 50)));
    assert_eq!(lookup(NOW + 51), Some((2, NOW + 70)));
    assert_eq!(lookup(NOW + 71), Some((4, NOW + 90)));
    assert_eq!(lookup(NOW + 85), Some((4, NOW + 90)));
    assert_eq!(lookup(NOW + 91), None);
    let max = log.max_timestamp_and_offset().expect("max").expect("some");
    assert_eq!((max.offset, max.timestamp), (4, NOW + 90));
}

#[test]
fn delete_records_moves_the_log_start_and_deletes_whole_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config());
    let batch = records(2, 500, NOW);
    for _ in 0..12 {
        log.append_as_leader(&batch, 0, NOW).expect("append");
    }
    let segments_before = log.segment_count();
    assert!(matches!(
        log.delete_records_before(10),
        Err(Error::OffsetAboveHighWatermark {
            offset: 10,
            high_watermark: 0
        })
    ));
    log.update_high_watermark(24);
    assert_eq!(log.delete_records_before(13).expect("delete"), 13);
    assert!(log.segment_count() < segments_before);
    assert!(log.segments()[0].base_offset() <= 13);
    assert!(matches!(
        log.read(12, 100, 24, true),
        Err(Error::OffsetOutOfRange {
            log_start_offset: 13,
            ..
        })
    ));
    let read = log.read(13, 1 << 20, 24, true).expect("read");
    assert_eq!(
        BatchHeader::parse(&read.records)
            .expect("header")
            .base_offset,
        12
    );
    assert_eq!(
        log.delete_records_before(-1).expect("to high watermark"),
        24
    );
    assert_eq!(log.segment_count(), 1);
}

#[test]
fn idempotent_retries_are_duplicates_with_the_original_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    let producer = |sequence: i32, epoch: i16| {
        encode(
            &[Rec::kv(b"k", b"v", NOW), Rec::kv(b"k", b"w", NOW)],
            &BatchSpec {
                producer_id: 42,
                producer_epoch: epoch,
                base_sequence: sequence,
                ..BatchSpec::default()
            },
        )
    };
    log.append_as_leader(&records(1, 10, NOW), 0, NOW)
        .expect("plain");
    let first = log
        .append_as_leader(&producer(0, 0), 0, NOW)
        .expect("first");
    let second = log
        .append_as_leader(&producer(2, 0), 0, NOW)
        .expect("second");
    assert_eq!((first.first_offset, second.first_offset), (1, 3));
    let retry = log
        .append_as_leader(&producer(0, 0), 0, NOW)
        .expect("retry");
    assert!(retry.duplicate);
    assert_eq!((retry.first_offset, retry.last_offset), (1, 2));
    assert_eq!(log.log_end_offset(), 5, "nothing written for a duplicate");
    assert!(matches!(
        log.append_as_leader(&producer(6, 0), 0, NOW),
        Err(AppendError::OutOfOrderSequence {
            expected: 4,
            got: 6,
            ..
        })
    ));
    assert!(matches!(
        log.append_as_leader(&producer(0, -1), 0, NOW),
        Err(AppendError::ProducerFenced { .. })
    ));
}

#[test]
fn leader_epochs_are_cached_and_answer_offset_for_leader_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&records(2, 10, NOW), 1, NOW)
        .expect("append");
    log.append_as_leader(&records(2, 10, NOW), 1, NOW)
        .expect("append");
    log.append_as_leader(&records(3, 10, NOW), 4, NOW)
        .expect("append");
    assert_eq!(log.latest_epoch(), Some(4));
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 4)));
    assert_eq!(log.end_offset_for_epoch(3), Some((1, 4)));
    assert_eq!(log.end_offset_for_epoch(4), Some((4, 7)));
    assert_eq!(log.end_offset_for_epoch(5), None);
    let text = std::fs::read_to_string(dir.path().join("orders-0/leader-epoch-checkpoint"))
        .expect("checkpoint file");
    assert_eq!(text, "0\n2\n1 0\n4 4\n");
}

#[test]
fn truncate_to_removes_batches_indexes_epochs_and_producer_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config());
    for epoch in 0..10 {
        log.append_as_leader(&records(2, 400, NOW), epoch / 3, NOW)
            .expect("append");
    }
    let producer = encode(
        &[Rec::kv(b"k", b"v", NOW)],
        &BatchSpec {
            producer_id: 7,
            producer_epoch: 0,
            base_sequence: 0,
            ..BatchSpec::default()
        },
    );
    log.append_as_leader(&producer, 3, NOW)
        .expect("producer batch at 20");
    log.update_high_watermark(21);
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 18)));

    assert_eq!(
        log.truncate_to(15, NOW).expect("truncate"),
        14,
        "a batch holding 15 goes whole"
    );
    assert_eq!(log.log_end_offset(), 14);
    assert_eq!(log.high_watermark(), 14);
    assert_eq!(log.latest_epoch(), Some(2));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 14)));
    assert!(log.producer_state().get(7).is_none());
    let batches = read_all(&log);
    assert_eq!(batches.last().map(|(h, _)| h.next_offset()), Some(14));
    // Truncating at an epoch's start offset removes the epoch.
    assert_eq!(log.truncate_to(12, NOW).expect("truncate"), 12);
    assert_eq!(log.latest_epoch(), Some(1));
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 12)));
    // Appends continue at the new end; a reopen agrees.
    log.append_as_leader(&records(1, 10, NOW), 5, NOW)
        .expect("append");
    assert_eq!(log.log_end_offset(), 13);
    log.close().expect("close");
    drop(log);
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), 13);
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(read_all(&log).len(), 7);

    // Truncation below every segment restarts the log there.
    assert_eq!(log.truncate_to(0, NOW).expect("truncate"), 0);
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (0, 0, 1)
    );
    log.append_as_leader(&records(1, 10, NOW), 6, NOW)
        .expect("append");
    assert_eq!(read_all(&log).len(), 1);
}

#[test]
fn segment_jitter_is_deterministic_bounded_and_varies_by_partition() {
    use crate::log::rolling_jitter_ms;
    assert_eq!(rolling_jitter_ms(&tp(), 100, 0), 0);
    let jitters: Vec<i64> = (0..50)
        .map(|base| rolling_jitter_ms(&tp(), base, 1000))
        .collect();
    assert!(jitters.iter().all(|j| (0..1000).contains(j)));
    assert_eq!(
        jitters,
        (0..50)
            .map(|base| rolling_jitter_ms(&tp(), base, 1000))
            .collect::<Vec<_>>()
    );
    let distinct: std::collections::BTreeSet<_> = jitters.iter().collect();
    assert!(distinct.len() > 25, "jitter spreads rolls");
}

#[test]
fn sealed_segments_search_their_index_files_and_reads_stay_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Small segments with an index entry before every batch: many sealed segments.
    let config = LogConfig {
        index_interval_bytes: 1,
        ..small_config()
    };
    let log = open(dir.path(), config.clone());
    for i in 0..40 {
        log.append_as_leader(&records(1, 300, NOW + i * 10), 0, NOW)
            .expect("append");
    }
    let segments = log.segments();
    assert!(segments.len() >= 4, "{} segments", segments.len());
    let (active, sealed) = segments.split_last().expect("segments");
    assert!(
        sealed.iter().all(|s| s.is_sealed()),
        "rolled segments drop their in-memory entries"
    );
    assert!(
        !active.is_sealed(),
        "the active segment keeps its entries in memory"
    );
    assert!(sealed[0].indexes().expect("index files").offset.len() > 1);

    // Reads by offset and by timestamp land on the right batch in every segment.
    for offset in 0..40 {
        let read = log.read(offset, 1, 40, true).expect("read");
        let header = BatchHeader::parse(&read.records).expect("a batch");
        assert_eq!(header.base_offset, offset);
        let found = log
            .offset_for_timestamp(NOW + offset * 10)
            .expect("lookup")
            .expect("found");
        assert_eq!((found.offset, found.timestamp), (offset, NOW + offset * 10));
    }
    assert_eq!(
        log.max_timestamp_and_offset()
            .expect("max")
            .map(|t| t.offset),
        Some(39)
    );

    // After a restart every segment but the last is sealed again, and reads still work.
    drop(log);
    let log = reopen_unclean(dir.path(), config, 0);
    let segments = log.segments();
    let (active, sealed) = segments.split_last().expect("segments");
    assert!(sealed.iter().all(|s| s.is_sealed()) && !active.is_sealed());
    assert_eq!(read_all(&log).len(), 40);

    // Truncating into a sealed segment brings it back as the active one.
    let target = sealed[1].base_offset() + 1;
    log.truncate_to(target, NOW).expect("truncate");
    assert_eq!(log.log_end_offset(), target);
    let last = log.segments().last().cloned().expect("segment");
    assert!(!last.is_sealed());
    log.append_as_leader(&records(1, 10, NOW), 0, NOW)
        .expect("append after truncation");
    assert_eq!(read_all(&log).len() as i64, target + 1);
}

#[test]
fn an_inline_append_declines_whatever_would_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = small_config();
    config.segment_bytes = 4096;
    let log = open(dir.path(), config);
    // A new epoch must be persisted first: declined, nothing written.
    assert!(
        log.try_append_as_leader_inline(&records(2, 10, NOW), 1, NOW)
            .expect("try")
            .is_none()
    );
    assert_eq!(log.log_end_offset(), 0);
    log.append_as_leader(&records(2, 10, NOW), 1, NOW)
        .expect("append");
    let inline = log
        .try_append_as_leader_inline(&records(2, 10, NOW), 1, NOW)
        .expect("try");
    assert_eq!(
        inline.map(|i| i.first_offset),
        Some(2),
        "a page-cache write goes inline"
    );
    // A write that needs a roll is declined.
    let big = records(1, 5000, NOW);
    assert!(
        log.try_append_as_leader_inline(&big, 1, NOW)
            .expect("try")
            .is_none()
    );
    assert_eq!(log.log_end_offset(), 4);
    log.append_as_leader(&big, 1, NOW)
        .expect("the blocking path rolls");
    assert_eq!(log.log_end_offset(), 5);
}
