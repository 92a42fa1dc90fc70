//! Transactions in the log: the producer state's open transactions bound the last stable
//! offset, and a leader's COMMIT or ABORT marker ends them.

use super::*;
use crate::AppendError;
use crate::control::{self, Marker};
use crate::testing::{BatchSpec, encode};

/// A transactional batch of `count` records from producer 7 at `base_offset`; a control batch
/// (the transaction's marker) when `marker`.
fn transactional_at(base_offset: i64, sequence: i32, count: usize, marker: bool) -> Vec<u8> {
    let records: Vec<Rec> = (0..count)
        .map(|i| Rec::kv(&[0, 0, 0, 1], format!("v{i}").as_bytes(), NOW))
        .collect();
    let spec = BatchSpec {
        producer_id: 7,
        producer_epoch: 0,
        base_sequence: if marker { -1 } else { sequence },
        transactional: true,
        control: marker,
        partition_leader_epoch: 0,
        ..BatchSpec::default()
    };
    let mut bytes = encode(&records, &spec).to_vec();
    // The base offset is outside the CRC: a follower stores what its leader assigned.
    bytes[..8].copy_from_slice(&base_offset.to_be_bytes());
    bytes
}

#[test]
fn an_open_transaction_holds_the_last_stable_offset_until_its_marker_even_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let follower = open(&dir.path().join("follower"), LogConfig::default());
    follower
        .append_as_follower(&records(2, 10, NOW), NOW)
        .expect("plain");
    follower
        .append_as_follower(&transactional_at(2, 0, 3, false), NOW)
        .expect("transactional");
    follower.update_high_watermark(5);
    assert_eq!(follower.high_watermark(), 5);
    assert_eq!(
        follower.last_stable_offset(),
        2,
        "the transaction is open from 2"
    );

    // Recovery replays the batches and finds the transaction still open.
    drop(follower);
    let follower = reopen_unclean(&dir.path().join("follower"), LogConfig::default(), 0);
    follower.update_high_watermark(5);
    assert_eq!(follower.last_stable_offset(), 2);

    follower
        .append_as_follower(&transactional_at(5, 0, 1, true), NOW)
        .expect("marker");
    assert_eq!(
        follower.last_stable_offset(),
        5,
        "bounded by the high watermark"
    );
    follower.update_high_watermark(6);
    assert_eq!(follower.last_stable_offset(), 6);
}

#[test]
fn a_leaders_marker_ends_the_transaction_and_reads_back_as_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(&dir.path().join("log"), LogConfig::default());
    log.append_as_follower(&transactional_at(0, 0, 3, false), NOW)
        .expect("transactional");
    let commit = Marker {
        commit: true,
        coordinator_epoch: 4,
    };
    let (info, ended) = log
        .append_marker_as_leader(7, 0, commit, 2, NOW)
        .expect("marker");
    assert_eq!((info.first_offset, info.last_offset), (3, 3));
    let ended = ended.expect("it ended the open transaction");
    assert_eq!((ended.first_offset, ended.last_offset), (0, 3));
    log.update_high_watermark(4);
    assert_eq!(log.last_stable_offset(), 4);
    assert_eq!(log.latest_epoch(), Some(2));

    // The marker is a control batch at offset 3 that says COMMIT.
    let read = log.read(3, 1 << 20, 4, true).expect("read");
    let header = batch::validate(&read.records, batch::Validation::Produce).expect("a batch");
    assert_eq!((header.base_offset, header.partition_leader_epoch), (3, 2));
    assert_eq!(
        control::parse_marker(&read.records, &header),
        Ok(Some(commit))
    );

    // A marker for a partition the producer wrote nothing to ends nothing.
    let abort = Marker {
        commit: false,
        coordinator_epoch: 4,
    };
    let (_, ended) = log
        .append_marker_as_leader(7, 0, abort, 2, NOW)
        .expect("empty abort");
    assert_eq!(ended, None);
}

#[test]
fn a_marker_from_an_older_producer_epoch_is_fenced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(&dir.path().join("log"), LogConfig::default());
    let mut batch = transactional_at(0, 0, 1, false);
    // Epoch 1: rewrite the producer epoch (inside the CRC, so recompute it).
    batch[51..53].copy_from_slice(&1i16.to_be_bytes());
    batch::update_crc(&mut batch);
    log.append_as_follower(&batch, NOW).expect("epoch 1");
    let stale = Marker {
        commit: true,
        coordinator_epoch: 0,
    };
    assert!(matches!(
        log.append_marker_as_leader(7, 0, stale, 0, NOW),
        Err(AppendError::ProducerFenced {
            epoch: 0,
            current: 1,
            ..
        })
    ));
    assert_eq!(log.log_end_offset(), 1, "nothing written");
    log.update_high_watermark(1);
    assert_eq!(log.last_stable_offset(), 0, "still open");
}
