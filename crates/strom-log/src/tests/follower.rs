//! Follower appends: batches fetched from a leader's log are stored unchanged (offsets, leader
//! epochs, bytes), through the leader's write path, and refused whole when they do not
//! continue the follower's log.

use std::sync::Arc;

use super::*;
use crate::batch::{BatchError, Compression};
use crate::io::faults::{self, ENOSPC, Op};
use crate::testing::{BatchSpec, encode};
use crate::{AppendError, CleanupPolicy, Error, ReadInfo};

/// Fetches from `leader` at the follower's log end offset, as a replica fetcher does, and
/// appends what comes back, until the follower has everything. Returns the number of fetches.
fn replicate(leader: &Log, follower: &Log, max_bytes: usize) -> usize {
    let mut fetches = 0;
    while follower.log_end_offset() < leader.log_end_offset() {
        let fetch_offset = follower.log_end_offset();
        let read = leader
            .read(fetch_offset, max_bytes, leader.log_end_offset(), true)
            .expect("leader read");
        let info = follower
            .append_as_follower(&read.records, NOW)
            .expect("follower append");
        assert!(
            info.last_offset >= fetch_offset,
            "no progress at {fetch_offset}"
        );
        assert_eq!(info.last_offset + 1, follower.log_end_offset());
        fetches += 1;
    }
    fetches
}

/// Everything the log holds, as one read returns it.
fn everything(log: &Log) -> ReadInfo {
    log.read(log.log_start_offset(), 1 << 24, log.log_end_offset(), true)
        .expect("read")
}

fn idempotent(sequence: i32, epoch: i16) -> bytes::Bytes {
    encode(
        &[Rec::kv(b"k", b"v", NOW), Rec::kv(b"k", b"w", NOW)],
        &BatchSpec {
            producer_id: 42,
            producer_epoch: epoch,
            base_sequence: sequence,
            ..BatchSpec::default()
        },
    )
}

/// A leader log with several epochs, codecs and an idempotent producer.
fn leader_with_history(dir: &Path, config: LogConfig) -> Log {
    let leader = open(&dir.join("leader"), config);
    for i in 0..12i64 {
        let epoch = [1, 1, 1, 4, 4, 4, 4, 9, 9, 9, 9, 9][i as usize];
        let compression = if i % 3 == 0 {
            Compression::Zstd
        } else {
            Compression::None
        };
        let recs: Vec<Rec> = (0..=i % 4)
            .map(|r| Rec::kv(format!("k{r}").as_bytes(), &[b'v'; 150], NOW + i))
            .collect();
        leader
            .append_as_leader(
                &batch_with(&recs, |s| s.compression = compression),
                epoch,
                NOW,
            )
            .expect("leader append");
    }
    leader
        .append_as_leader(&idempotent(0, 0), 9, NOW)
        .expect("producer batch");
    leader
}

#[test]
fn follower_append_keeps_offsets_epochs_and_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = leader_with_history(dir.path(), LogConfig::default());
    let follower = open(&dir.path().join("follower"), LogConfig::default());

    // One fetch of the first three batches, exactly as the leader returns it.
    let read = leader
        .read(0, 1 << 20, 6, true)
        .expect("leader read of [0, 6)");
    let info = follower
        .append_as_follower(&read.records, NOW)
        .expect("follower append");
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (0, 5, 6)
    );
    assert!(!info.duplicate);
    assert_eq!(info.log_append_time_ms, -1);
    assert_eq!(follower.log_end_offset(), 6);

    // The rest in fetches that hold a few batches each.
    assert!(replicate(&leader, &follower, 700) > 2);
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(everything(&follower).records, everything(&leader).records);
    let epochs: Vec<i32> = read_all(&follower)
        .iter()
        .map(|(header, _)| header.partition_leader_epoch)
        .collect();
    assert_eq!(epochs, [1, 1, 1, 4, 4, 4, 4, 9, 9, 9, 9, 9, 9]);
    // Every range reads the same from both, as a consumer fetching from either would see.
    for offset in 0..leader.log_end_offset() {
        let from_leader = leader.read(offset, 500, 20, true).expect("leader read");
        let from_follower = follower.read(offset, 500, 20, true).expect("follower read");
        assert_eq!(
            from_follower.records, from_leader.records,
            "offset {offset}"
        );
    }
}

#[test]
fn follower_epoch_cache_answers_end_offset_for_epoch_like_the_leaders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = leader_with_history(dir.path(), LogConfig::default());
    let follower = open(&dir.path().join("follower"), LogConfig::default());
    // Small fetches: epochs change both between fetches and inside one.
    replicate(&leader, &follower, 900);
    assert_eq!(follower.latest_epoch(), Some(9));
    for epoch in -1..=10 {
        assert_eq!(
            follower.end_offset_for_epoch(epoch),
            leader.end_offset_for_epoch(epoch),
            "epoch {epoch}"
        );
    }
    let checkpoint = |name: &str| {
        std::fs::read_to_string(
            dir.path()
                .join(name)
                .join("orders-0/leader-epoch-checkpoint"),
        )
        .expect("checkpoint")
    };
    assert_eq!(checkpoint("follower"), checkpoint("leader"));
    assert_eq!(checkpoint("follower"), "0\n3\n1 0\n4 6\n9 16\n");
}

#[test]
fn a_base_offset_other_than_the_log_end_offset_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = leader_with_history(dir.path(), LogConfig::default());
    let follower = open(&dir.path().join("follower"), LogConfig::default());
    let first_two = leader.read(0, 1 << 20, 3, true).expect("read").records;
    follower
        .append_as_follower(&first_two, NOW)
        .expect("batches at 0 and 1");
    assert_eq!(follower.log_end_offset(), 3);
    let before = everything(&follower).records;
    let size_before = follower.size_bytes();

    // A gap: the batch at 6 while the log ends at 3.
    let later = leader.read(6, 1 << 20, 10, true).expect("read").records;
    assert!(matches!(
        follower.append_as_follower(&later, NOW),
        Err(AppendError::OffsetMismatch {
            expected: 3,
            got: 6
        })
    ));
    // An overlap: batches the follower already has.
    assert!(matches!(
        follower.append_as_follower(&first_two, NOW),
        Err(AppendError::OffsetMismatch {
            expected: 3,
            got: 0
        })
    ));
    // A gap between two batches of one fetch: [3, 6) and then [10, ...).
    let mut gapped = leader.read(3, 1, 6, true).expect("read").records.to_vec();
    gapped.extend_from_slice(&leader.read(10, 1, 20, true).expect("read").records);
    assert!(matches!(
        follower.append_as_follower(&gapped, NOW),
        Err(AppendError::OffsetMismatch {
            expected: 6,
            got: 10
        })
    ));
    // Offsets that go backwards inside a fetch are corrupt.
    let mut backwards = leader.read(3, 1, 6, true).expect("read").records.to_vec();
    backwards.extend_from_slice(&first_two);
    assert!(matches!(
        follower.append_as_follower(&backwards, NOW),
        Err(AppendError::Corrupt(BatchError::OffsetsNotIncreasing {
            base_offset: 0,
            previous_last_offset: 5
        }))
    ));
    assert_eq!(follower.log_end_offset(), 3);
    assert_eq!(follower.size_bytes(), size_before);
    assert_eq!(everything(&follower).records, before);
    assert_eq!(follower.end_offset_for_epoch(1), Some((1, 3)));
}

#[test]
fn a_leader_epoch_older_than_the_one_before_it_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let follower = open(dir.path(), LogConfig::default());
    let at = |base_offset: i64, epoch: i32| {
        let mut bytes = records(1, 10, NOW);
        batch::set_base_offset(&mut bytes, base_offset);
        batch::set_partition_leader_epoch(&mut bytes, epoch);
        bytes
    };
    follower
        .append_as_follower(&at(0, 5), NOW)
        .expect("epoch 5 at 0");
    // Older than the cache's latest epoch.
    assert!(matches!(
        follower.append_as_follower(&at(1, 4), NOW),
        Err(AppendError::Corrupt(BatchError::LeaderEpochDecreased {
            epoch: 4,
            previous: 5
        }))
    ));
    // Older than the batch before it in the same fetch.
    let mut two = at(1, 7);
    two.extend_from_slice(&at(2, 6));
    assert!(matches!(
        follower.append_as_follower(&two, NOW),
        Err(AppendError::Corrupt(BatchError::LeaderEpochDecreased {
            epoch: 6,
            previous: 7
        }))
    ));
    assert_eq!(follower.log_end_offset(), 1);
    assert_eq!(follower.latest_epoch(), Some(5));
    // The same epoch again, and a newer one, continue the log.
    let mut two = at(1, 5);
    two.extend_from_slice(&at(2, 8));
    follower.append_as_follower(&two, NOW).expect("5 then 8");
    assert_eq!(follower.end_offset_for_epoch(5), Some((5, 2)));
    assert_eq!(follower.end_offset_for_epoch(8), Some((8, 3)));
}

#[test]
fn a_trailing_partial_batch_is_ignored_and_the_whole_ones_are_appended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = leader_with_history(dir.path(), LogConfig::default());
    let follower = open(&dir.path().join("follower"), LogConfig::default());
    let read = leader.read(0, 1 << 20, 10, true).expect("read").records;
    let batches: Vec<BatchHeader> = batch::batches(&read, Validation::Stored)
        .map(|b| b.expect("whole").header)
        .collect();
    let two = batches[0].size() + batches[1].size();

    // Cut inside the third batch's records: the first two are appended.
    let info = follower
        .append_as_follower(&read[..two + batches[2].size() - 10], NOW)
        .expect("append");
    assert_eq!((info.first_offset, info.last_offset), (0, 2));
    assert_eq!(follower.log_end_offset(), 3);

    // Only part of a batch header: nothing is appended, the next fetch offset stays.
    for cut in [0, 1, 30, batch::RECORD_BATCH_OVERHEAD - 1] {
        let info = follower
            .append_as_follower(&read[two..two + cut], NOW)
            .expect("nothing to append is not an error");
        assert_eq!(
            (info.first_offset, info.last_offset, info.record_count),
            (3, 2, 0),
            "cut {cut}"
        );
    }
    assert_eq!(follower.log_end_offset(), 3);

    // The next fetch picks up at the cut batch.
    replicate(&leader, &follower, 1 << 20);
    assert_eq!(everything(&follower).records, everything(&leader).records);
}

#[test]
fn a_corrupt_batch_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = leader_with_history(dir.path(), LogConfig::default());
    let follower = open(&dir.path().join("follower"), LogConfig::default());
    let read = leader.read(0, 1 << 20, 10, true).expect("read").records;
    let first = BatchHeader::parse(&read).expect("header").size();

    let mut crc = read.to_vec();
    crc[first + 70] ^= 0x10; // in the second batch's records
    assert!(matches!(
        follower.append_as_follower(&crc, NOW),
        Err(AppendError::Corrupt(BatchError::CrcMismatch { .. }))
    ));
    let mut magic = read.to_vec();
    magic[first + 16] = 1;
    assert!(matches!(
        follower.append_as_follower(&magic, NOW),
        Err(AppendError::Corrupt(BatchError::UnsupportedMagic(1)))
    ));
    let mut base = read.to_vec();
    base[..8].copy_from_slice(&i64::MAX.to_be_bytes());
    assert!(matches!(
        follower.append_as_follower(&base, NOW),
        Err(AppendError::Corrupt(BatchError::InvalidBaseOffset { .. }))
    ));
    assert_eq!(follower.log_end_offset(), 0);
    assert_eq!(follower.size_bytes(), 0);
    assert_eq!(follower.latest_epoch(), None);

    // The refetch appends.
    follower.append_as_follower(&read, NOW).expect("refetch");
    assert_eq!(follower.log_end_offset(), 10);
}

#[test]
fn a_producers_batches_appended_as_follower_make_its_retries_duplicates_as_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = open(&dir.path().join("leader"), LogConfig::default());
    leader
        .append_as_leader(&records(1, 10, NOW), 0, NOW)
        .expect("plain");
    let first = leader
        .append_as_leader(&idempotent(0, 0), 0, NOW)
        .expect("first");
    let second = leader
        .append_as_leader(&idempotent(2, 0), 0, NOW)
        .expect("second");
    let follower = open(&dir.path().join("follower"), LogConfig::default());
    replicate(&leader, &follower, 1 << 20);

    // The follower becomes leader (epoch 1); the producer retries what it has not seen
    // acknowledged.
    for (sequence, original) in [(0, &first), (2, &second)] {
        let retry = follower
            .append_as_leader(&idempotent(sequence, 0), 1, NOW)
            .expect("retry");
        assert!(retry.duplicate, "sequence {sequence}");
        assert_eq!(
            (retry.first_offset, retry.last_offset),
            (original.first_offset, original.last_offset)
        );
    }
    assert_eq!(
        follower.log_end_offset(),
        5,
        "nothing written for duplicates"
    );
    // The next batch continues the sequence; a gap is still refused.
    assert!(matches!(
        follower.append_as_leader(&idempotent(6, 0), 1, NOW),
        Err(AppendError::OutOfOrderSequence {
            expected: 4,
            got: 6,
            ..
        })
    ));
    let next = follower
        .append_as_leader(&idempotent(4, 0), 1, NOW)
        .expect("next in sequence");
    assert_eq!(next.first_offset, 5);

    // After a crash the replayed producer state still knows the follower-appended batches.
    drop(follower);
    let follower = Log::open(
        dir.path().join("follower/orders-0"),
        tp(),
        LogConfig::default(),
        OpenOptions {
            had_clean_shutdown: false,
            now_ms: NOW,
            ..OpenOptions::default()
        },
    )
    .expect("reopen");
    let retry = follower
        .append_as_leader(&idempotent(2, 0), 1, NOW)
        .expect("retry after restart");
    assert!(retry.duplicate);
    assert_eq!(retry.first_offset, second.first_offset);
}

#[test]
fn follower_data_survives_a_crash_and_truncation_then_more_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = leader_with_history(dir.path(), small_config());
    let follower = open(&dir.path().join("follower"), small_config());
    replicate(&leader, &follower, 1500);
    assert!(follower.segment_count() > 1);
    drop(follower);

    // No clean shutdown: recovery reads every segment back and keeps it all.
    let follower = reopen_unclean(&dir.path().join("follower"), small_config(), 0);
    assert_eq!(follower.recovery_report().truncated_bytes, 0);
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(everything(&follower).records, everything(&leader).records);
    assert_eq!(
        follower.end_offset_for_epoch(4),
        leader.end_offset_for_epoch(4)
    );
    assert!(follower.producer_state().get(42).is_some());

    // A follower truncates to where it diverged and fetches again from there.
    assert_eq!(follower.truncate_to(21, NOW).expect("truncate"), 21);
    assert_eq!(follower.latest_epoch(), Some(9));
    assert!(follower.producer_state().get(42).is_none());
    replicate(&leader, &follower, 1500);
    assert_eq!(everything(&follower).records, everything(&leader).records);
    assert_eq!(
        follower.end_offset_for_epoch(9),
        leader.end_offset_for_epoch(9)
    );
    assert!(follower.producer_state().get(42).is_some());
    // Truncating to an epoch's start offset removes the epoch, which the refetch restores.
    follower.truncate_to(6, NOW).expect("truncate");
    assert_eq!(follower.latest_epoch(), Some(1));
    replicate(&leader, &follower, 1500);
    assert_eq!(everything(&follower).records, everything(&leader).records);
    for epoch in 0..10 {
        assert_eq!(
            follower.end_offset_for_epoch(epoch),
            leader.end_offset_for_epoch(epoch)
        );
    }
}

#[test]
fn follower_segments_roll_where_the_leaders_did() {
    let dir = tempfile::tempdir().expect("tempdir");
    let time = LogConfig {
        segment_ms: 1000,
        ..small_config()
    };
    for (name, config) in [("size", small_config()), ("time", time)] {
        let leader = open(&dir.path().join(name).join("leader"), config.clone());
        for i in 0..30i64 {
            let batch = records(1 + (i % 3) as usize, 300, NOW + i * 400);
            leader.append_as_leader(&batch, 0, NOW).expect("append");
        }
        assert!(leader.segment_count() > 3, "{name}: the leader rolls");
        let follower = open(&dir.path().join(name).join("follower"), config);
        // One fetch holds far more than a segment.
        assert_eq!(replicate(&leader, &follower, 1 << 20), 1);

        let (leader_segments, follower_segments) = (leader.segments(), follower.segments());
        let bases = |segments: &[Arc<crate::segment::LogSegment>]| -> Vec<i64> {
            segments.iter().map(|s| s.base_offset()).collect()
        };
        assert_eq!(bases(&follower_segments), bases(&leader_segments), "{name}");
        for (ours, theirs) in follower_segments.iter().zip(leader_segments.iter()) {
            assert_eq!(ours.size(), theirs.size(), "{name}");
            let ours = ours.indexes().expect("indexes");
            let theirs = theirs.indexes().expect("indexes");
            assert_eq!(
                ours.offset.entries().collect::<Vec<_>>(),
                theirs.offset.entries().collect::<Vec<_>>(),
                "{name}: index entries every index.interval.bytes"
            );
            assert_eq!(
                ours.time.entries().collect::<Vec<_>>(),
                theirs.time.entries().collect::<Vec<_>>(),
                "{name}: time index entries"
            );
        }
    }
}

#[test]
fn follower_appends_skip_the_checks_the_leader_made_and_keep_transactional_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A follower whose own config would refuse all of these as a leader.
    let strict = LogConfig {
        max_message_bytes: 100,
        message_timestamp_after_max_ms: 0,
        message_timestamp_before_max_ms: 0,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..LogConfig::default()
    };
    let follower = open(dir.path(), strict);
    let transactional = BatchSpec {
        producer_id: 7,
        producer_epoch: 3,
        base_sequence: 0,
        transactional: true,
        ..BatchSpec::default()
    };
    let control = BatchSpec {
        base_sequence: -1,
        control: true,
        ..transactional
    };
    let fetched: Vec<Vec<u8>> = vec![
        records(2, 500, NOW),
        batch_with(&[Rec::no_key(b"v", NOW - 1_000_000)], |_| {}),
        encode(&[Rec::kv(b"k", b"v", NOW + 1_000_000)], &transactional).to_vec(),
        encode(
            &[Rec::kv(b"\x00\x00", b"\x00\x00\x00\x00\x00\x00", NOW)],
            &control,
        )
        .to_vec(),
    ];
    let mut bytes = Vec::new();
    let mut offset = 0;
    for mut batch in fetched {
        batch::set_base_offset(&mut batch, offset);
        batch::set_partition_leader_epoch(&mut batch, 2);
        offset = BatchHeader::parse(&batch).expect("header").next_offset();
        bytes.extend_from_slice(&batch);
    }
    let info = follower.append_as_follower(&bytes, NOW).expect("append");
    assert_eq!((info.first_offset, info.last_offset), (0, 4));
    assert_eq!(everything(&follower).records.as_ref(), bytes.as_slice());
    let stored = read_all(&follower);
    assert!(stored[2].0.is_transactional() && stored[3].0.is_control());
    // The marker takes no batch slot: the producer's data batch is still the one remembered.
    let entry = follower
        .producer_state()
        .get(7)
        .cloned()
        .expect("producer 7");
    assert_eq!((entry.epoch, entry.batches.len()), (3, 1));
}

#[test]
fn compacted_topics_accept_the_gaps_the_leaders_cleaner_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let compacted = LogConfig {
        segment_bytes: 1024,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        min_cleanable_dirty_ratio: 0.0,
        message_timestamp_after_max_ms: i64::MAX,
        ..LogConfig::default()
    };
    let leader = open(&dir.path().join("leader"), compacted.clone());
    for i in 0..40u8 {
        let batch = batch_with(&[Rec::kv(&[b'k', i % 2], &[i; 100], NOW)], |_| {});
        leader.append_as_leader(&batch, 0, NOW).expect("append");
    }
    leader.update_high_watermark(leader.log_end_offset());
    assert!(leader.compact(NOW).expect("compact").is_some());
    let leader_batches: Vec<i64> = read_all(&leader)
        .iter()
        .map(|(header, _)| header.base_offset)
        .collect();
    assert!(
        leader_batches.windows(2).any(|pair| pair[1] > pair[0] + 1),
        "the cleaner removed whole batches: {leader_batches:?}"
    );

    let follower = open(&dir.path().join("follower"), compacted);
    replicate(&leader, &follower, 600);
    assert_eq!(everything(&follower).records, everything(&leader).records);
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());

    // The same fetches on a topic that is not compacted are refused at the first gap.
    let plain = open(&dir.path().join("plain"), LogConfig::default());
    let read = leader.read(0, 1 << 20, 40, true).expect("read");
    assert!(matches!(
        plain.append_as_follower(&read.records, NOW),
        Err(AppendError::OffsetMismatch { .. })
    ));
    assert_eq!(plain.log_end_offset(), 0);
}

#[test]
fn flush_messages_counts_follower_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = open(&dir.path().join("leader"), LogConfig::default());
    for count in [3, 1] {
        leader
            .append_as_leader(&records(count, 10, NOW), 0, NOW)
            .expect("append");
    }
    let config = LogConfig {
        flush_messages: 4,
        ..LogConfig::default()
    };
    let follower = open(&dir.path().join("follower"), config);
    let read = leader.read(0, 1, 4, true).expect("first batch");
    follower
        .append_as_follower(&read.records, NOW)
        .expect("append");
    assert_eq!(follower.flushed_offset(), 0);
    replicate(&leader, &follower, 1 << 20);
    assert_eq!(
        follower.flushed_offset(),
        4,
        "the fourth record triggers an fsync"
    );
}

#[test]
fn an_io_error_on_a_follower_append_takes_the_log_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = leader_with_history(dir.path(), LogConfig::default());
    let follower = open(&dir.path().join("follower"), LogConfig::default());
    let read = leader.read(0, 1 << 20, 3, true).expect("read");
    follower
        .append_as_follower(&read.records, NOW)
        .expect("append");
    let before = everything(&follower).records;

    let guard = faults::inject(
        &dir.path().join("follower/orders-0"),
        Op::Write,
        ENOSPC,
        false,
        None,
    );
    // A batch of the epoch the log already has: the segment write itself fails.
    let rest = leader.read(3, 1, 6, true).expect("read");
    match follower.append_as_follower(&rest.records, NOW) {
        Err(AppendError::Storage(Error::Io { source, op, .. })) => {
            assert_eq!(source.raw_os_error(), Some(ENOSPC));
            assert_eq!(op, "append");
        }
        other => panic!("expected an IO error, got {other:?}"),
    }
    assert!(follower.is_offline());
    assert_eq!(
        follower.log_end_offset(),
        3,
        "the failed append is not visible"
    );
    assert!(matches!(
        follower.append_as_follower(&rest.records, NOW),
        Err(AppendError::Storage(Error::Offline(_)))
    ));
    drop(guard);
    drop(follower);

    let follower = reopen_unclean(&dir.path().join("follower"), LogConfig::default(), 0);
    assert_eq!(everything(&follower).records, before);
}

#[test]
fn a_replica_read_at_the_log_end_offset_is_empty_and_past_it_out_of_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = leader_with_history(dir.path(), LogConfig::default());
    let end = leader.log_end_offset();
    let read = leader
        .read(end, 1 << 20, end, true)
        .expect("read at the end");
    assert!(read.records.is_empty());
    assert_eq!(read.log_end_offset, end);
    assert!(matches!(
        leader.read(end + 1, 1 << 20, end, true),
        Err(Error::OffsetOutOfRange { .. })
    ));
    // Appending the empty answer is a no-op for the follower.
    let follower = open(&dir.path().join("follower"), LogConfig::default());
    let info = follower
        .append_as_follower(&read.records, NOW)
        .expect("empty append");
    assert_eq!((info.first_offset, info.last_offset), (0, -1));
}

#[test]
fn a_follower_log_starts_over_past_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config());
    log.append_as_leader(&records(3, 10, NOW), 1, NOW)
        .expect("append");
    assert_eq!(log.log_end_offset(), 3);
    log.truncate_fully_and_start_at(100, NOW)
        .expect("start over");
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.high_watermark()
        ),
        (100, 100, 100)
    );
    assert_eq!(log.latest_epoch(), None, "no epoch survives");
    let read = log
        .read(100, 1 << 20, 100, true)
        .expect("read at the new start");
    assert!(read.records.is_empty());
    // It continues from the new start.
    let leader_dir = tempfile::tempdir().expect("tempdir");
    let leader = open(leader_dir.path(), small_config());
    leader
        .truncate_fully_and_start_at(100, NOW)
        .expect("leader starts at 100");
    leader
        .append_as_leader(&records(2, 10, NOW), 4, NOW)
        .expect("append");
    let bytes = leader
        .read(100, 1 << 20, leader.log_end_offset(), true)
        .expect("read")
        .records;
    log.append_as_follower(&bytes, NOW)
        .expect("follower append");
    assert_eq!(log.log_end_offset(), 102);
    assert_eq!(log.latest_epoch(), Some(4));
}

#[test]
fn a_new_leader_records_where_its_epoch_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config());
    log.append_as_leader(&records(5, 10, NOW), 1, NOW)
        .expect("append");
    log.assign_epoch_start_offset(2, log.log_end_offset())
        .expect("assign");
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 5)));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 5)));
}

#[test]
fn truncating_at_the_log_end_drops_an_epoch_that_never_wrote() {
    // A leader of epoch 2 that lost leadership before appending: its epoch entry sits at the
    // log end and the new leader never heard of epoch 2.
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config());
    log.append_as_leader(&records(5, 10, NOW), 1, NOW)
        .expect("append");
    log.assign_epoch_start_offset(2, 5).expect("assign");
    assert_eq!(log.latest_epoch(), Some(2));

    assert_eq!(log.truncate_to(5, NOW).expect("truncate"), 5);
    assert_eq!(log.log_end_offset(), 5, "no record goes");
    assert_eq!(log.latest_epoch(), Some(1), "the empty epoch goes");
    drop(log);
    let log = open(dir.path(), small_config());
    assert_eq!(
        log.latest_epoch(),
        Some(1),
        "and stays gone after a restart"
    );
}
