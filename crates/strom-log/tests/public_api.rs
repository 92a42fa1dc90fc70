//! The storage engine as the broker uses it: only the public API, from another crate.

use std::sync::Arc;

use strom_log::batch::{self, Validation};
use strom_log::testing::{BatchSpec, Rec, encode, sized_batch};
use strom_log::{AppendError, LogConfig, LogManager, ManagerConfig, TopicPartition};

const NOW: i64 = 1_700_000_000_000;

fn partition(n: i32) -> TopicPartition {
    TopicPartition {
        topic: "events".to_owned(),
        partition: n,
    }
}

#[test]
fn produce_fetch_restart_cycle_through_the_manager() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        message_timestamp_after_max_ms: i64::MAX,
        ..LogConfig::default()
    };
    {
        let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("open");
        manager.start_background_work();
        let logs: Vec<_> = (0..3)
            .map(|p| manager.load(&partition(p), config.clone()).expect("load"))
            .collect();
        for (p, log) in logs.iter().enumerate() {
            for i in 0..=p {
                let info = log
                    .append_as_leader(&sized_batch(4, 50, NOW), 7, NOW)
                    .expect("append");
                assert_eq!(info.first_offset, i as i64 * 4);
            }
            log.update_high_watermark(log.log_end_offset());
            assert_eq!(log.flush().expect("flush"), log.log_end_offset());
        }
        manager.shutdown().expect("clean shutdown");
    }
    let manager = Arc::new(LogManager::open(dir.path(), ManagerConfig::default()).expect("reopen"));
    assert!(manager.had_clean_shutdown());
    assert_eq!(
        manager.partitions_on_disk(),
        (0..3).map(partition).collect::<Vec<_>>()
    );
    for p in 0..3 {
        let log = manager.load(&partition(p), config.clone()).expect("load");
        assert_eq!(log.log_end_offset(), (p as i64 + 1) * 4);
        assert_eq!(log.high_watermark(), log.log_end_offset());
        let read = log
            .read(0, 1 << 20, log.high_watermark(), true)
            .expect("fetch");
        let mut count = 0;
        for b in batch::batches(&read.records, Validation::Stored) {
            batch::validate(b.expect("whole").bytes, Validation::Stored).expect("crc");
            count += 1;
        }
        assert_eq!(count, p as usize + 1);
        assert_eq!(log.end_offset_for_epoch(7), Some((7, log.log_end_offset())));
    }
    manager.delete(&partition(1)).expect("delete");
    assert_eq!(
        manager.partitions_on_disk(),
        vec![partition(0), partition(2)]
    );
}

#[test]
fn append_errors_map_to_distinct_variants() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("open");
    let log = manager
        .load(&partition(0), LogConfig::default())
        .expect("load");
    let idempotent = |sequence| {
        encode(
            &[Rec::kv(b"k", b"v", NOW)],
            &BatchSpec {
                producer_id: 1,
                producer_epoch: 0,
                base_sequence: sequence,
                ..BatchSpec::default()
            },
        )
    };
    log.append_as_leader(&idempotent(0), 0, NOW).expect("first");
    assert!(matches!(
        log.append_as_leader(&idempotent(5), 0, NOW),
        Err(AppendError::OutOfOrderSequence { .. })
    ));
    assert!(
        log.append_as_leader(&idempotent(0), 0, NOW)
            .expect("retry")
            .duplicate
    );
}

#[test]
fn a_follower_replicates_a_leader_through_the_public_api() {
    let leader_dir = tempfile::tempdir().expect("tempdir");
    let follower_dir = tempfile::tempdir().expect("tempdir");
    let leader = LogManager::open(leader_dir.path(), ManagerConfig::default()).expect("open");
    let follower = LogManager::open(follower_dir.path(), ManagerConfig::default()).expect("open");
    let config = LogConfig {
        message_timestamp_after_max_ms: i64::MAX,
        ..LogConfig::default()
    };
    let leader = leader.load(&partition(0), config.clone()).expect("load");
    let follower = follower.load(&partition(0), config).expect("load");
    for epoch in [3, 3, 5] {
        leader
            .append_as_leader(&sized_batch(3, 40, NOW), epoch, NOW)
            .expect("leader append");
    }
    while follower.log_end_offset() < leader.log_end_offset() {
        let read = leader
            .read(
                follower.log_end_offset(),
                200,
                leader.log_end_offset(),
                true,
            )
            .expect("replica read");
        let info = follower
            .append_as_follower(&read.records, NOW)
            .expect("follower append");
        assert_eq!(info.last_offset + 1, follower.log_end_offset());
    }
    let everything = |log: &strom_log::Log| {
        log.read(0, 1 << 20, log.log_end_offset(), true)
            .expect("read")
            .records
    };
    assert_eq!(everything(&follower), everything(&leader));
    assert_eq!(follower.end_offset_for_epoch(3), Some((3, 6)));
    let again = leader.read(0, 1 << 20, 9, true).expect("read");
    assert!(matches!(
        follower.append_as_follower(&again.records, NOW),
        Err(AppendError::OffsetMismatch {
            expected: 9,
            got: 0
        })
    ));
}
