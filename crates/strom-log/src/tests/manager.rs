use super::*;
use crate::checkpoint;
use crate::{LogManager, ManagerConfig};

fn partition(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_owned(),
        partition,
    }
}

#[test]
fn manager_loads_lists_gets_and_deletes_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("open");
    assert!(!manager.had_clean_shutdown());
    assert!(manager.partitions_on_disk().is_empty());
    let a = partition("orders", 0);
    let b = partition("my-topic.v2", 11);
    let log_a = manager.load(&a, LogConfig::default()).expect("load a");
    manager.load(&b, LogConfig::default()).expect("load b");
    std::fs::create_dir(dir.path().join("not a partition")).expect("mkdir");
    std::fs::create_dir(dir.path().join("lost+found")).expect("mkdir");
    assert_eq!(manager.partitions_on_disk(), vec![b.clone(), a.clone()]);
    assert!(std::sync::Arc::ptr_eq(
        &manager.get(&a).expect("loaded"),
        &log_a
    ));
    let again = manager.load(&a, LogConfig::default()).expect("load again");
    assert!(
        std::sync::Arc::ptr_eq(&again, &log_a),
        "loading twice returns the same log"
    );

    log_a
        .append_as_leader(&records(2, 10, NOW), 0, NOW)
        .expect("append");
    manager.delete(&a).expect("delete");
    assert!(manager.get(&a).is_none());
    assert_eq!(manager.partitions_on_disk(), vec![b.clone()]);
    // A reader that still holds the log keeps reading the unlinked files.
    assert_eq!(read_all(&log_a).len(), 1);
}

#[test]
fn delayed_deletion_frees_the_name_at_once_and_the_files_after_the_delay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("open");
    let a = partition("orders", 0);
    let log = manager.load(&a, LogConfig::default()).expect("load");
    log.append_as_leader(&records(2, 10, NOW), 0, NOW)
        .expect("append");
    manager.delete_after(&a, 60_000).expect("delete");
    assert!(manager.partitions_on_disk().is_empty(), "the name is free");
    let doomed = || {
        std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with("-delete"))
            .count()
    };
    assert_eq!(doomed(), 1, "the files wait for the delay");
    let fresh = manager.load(&a, LogConfig::default()).expect("a new log");
    assert_eq!(fresh.log_end_offset(), 0);
    manager.delete_due_directories(crate::manager::wall_clock_ms() + 1_000);
    assert_eq!(doomed(), 1, "not due yet");
    manager.delete_due_directories(crate::manager::wall_clock_ms() + 61_000);
    assert_eq!(doomed(), 0);
}

#[test]
fn clean_shutdown_writes_marker_and_checkpoints_and_reopen_skips_recovery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = partition("orders", 0);
    {
        let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("open");
        let log = manager.load(&a, small_config()).expect("load");
        for _ in 0..20 {
            log.append_as_leader(&records(2, 300, NOW), 3, NOW)
                .expect("append");
        }
        log.update_high_watermark(30);
        log.delete_records_before(5).expect("delete records");
        manager.shutdown().expect("shutdown");
    }
    assert!(dir.path().join(".kafka_cleanshutdown").exists());
    let read = |name| {
        checkpoint::read(&dir.path().join(name))
            .expect("io")
            .expect("parse")
            .get(&a)
            .copied()
    };
    assert_eq!(read(checkpoint::RECOVERY_POINT_CHECKPOINT), Some(40));
    assert_eq!(read(checkpoint::LOG_START_OFFSET_CHECKPOINT), Some(5));
    assert_eq!(read(checkpoint::REPLICATION_OFFSET_CHECKPOINT), Some(30));

    let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("reopen");
    assert!(manager.had_clean_shutdown());
    assert!(
        !dir.path().join(".kafka_cleanshutdown").exists(),
        "marker removed at open"
    );
    assert_eq!(manager.partitions_on_disk(), vec![a.clone()]);
    let log = manager.load(&a, small_config()).expect("load");
    assert_eq!(
        log.recovery_report(),
        &crate::recovery::RecoveryReport::default()
    );
    assert_eq!(log.log_start_offset(), 5);
    assert_eq!(log.high_watermark(), 30);
    assert_eq!(log.log_end_offset(), 40);
}

#[test]
fn a_crash_after_open_means_the_next_open_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = partition("orders", 0);
    {
        let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("open");
        let log = manager.load(&a, small_config()).expect("load");
        log.append_as_leader(&records(2, 300, NOW), 0, NOW)
            .expect("append");
        manager.shutdown().expect("shutdown");
    }
    {
        let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("open");
        let log = manager.load(&a, small_config()).expect("load");
        log.append_as_leader(&records(2, 300, NOW), 0, NOW)
            .expect("append");
        // No shutdown: the process dies.
    }
    let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("open");
    assert!(!manager.had_clean_shutdown());
    let log = manager.load(&a, small_config()).expect("load");
    assert!(log.recovery_report().rebuilt_indexes >= 1);
    assert_eq!(log.log_end_offset(), 4);
}

#[test]
fn an_interrupted_partition_deletion_is_finished_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("orders-0.1234-delete")).expect("mkdir");
    std::fs::write(
        dir.path()
            .join("orders-0.1234-delete/00000000000000000000.log"),
        b"x",
    )
    .expect("write");
    let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("open");
    assert!(!dir.path().join("orders-0.1234-delete").exists());
    assert!(manager.partitions_on_disk().is_empty());
}

#[test]
fn maintenance_pass_applies_retention_and_writes_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("open");
    let config = LogConfig {
        retention_ms: 1000,
        ..small_config()
    };
    let log = manager.load(&partition("orders", 0), config).expect("load");
    for i in 0..20 {
        log.append_as_leader(&records(1, 500, NOW + i), 0, NOW)
            .expect("append");
    }
    log.update_high_watermark(20);
    let segments = log.segment_count();
    manager.run_maintenance(NOW + 500, true).expect("pass");
    assert_eq!(log.segment_count(), segments, "nothing expired yet");
    manager.run_maintenance(NOW + 100_000, true).expect("pass");
    assert_eq!(
        log.segment_count(),
        1,
        "everything expired; the active segment was rolled"
    );
    assert_eq!(log.log_start_offset(), 20);
    let starts = checkpoint::read(&dir.path().join(checkpoint::LOG_START_OFFSET_CHECKPOINT))
        .expect("io")
        .expect("parse");
    assert_eq!(starts.get(&partition("orders", 0)), Some(&20));
}

#[test]
fn checkpoints_keep_partitions_that_are_not_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = partition("a", 0);
    let b = partition("b", 0);
    {
        let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("open");
        for tp in [&a, &b] {
            let log = manager.load(tp, LogConfig::default()).expect("load");
            log.append_as_leader(&records(3, 10, NOW), 0, NOW)
                .expect("append");
        }
        manager.shutdown().expect("shutdown");
    }
    let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("open");
    manager.load(&a, LogConfig::default()).expect("load a only");
    manager.write_checkpoints().expect("checkpoints");
    let points = checkpoint::read(&dir.path().join(checkpoint::RECOVERY_POINT_CHECKPOINT))
        .expect("io")
        .expect("parse");
    assert_eq!(points.get(&b), Some(&3));
}

#[test]
fn background_threads_start_and_stop_with_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ManagerConfig {
        flush_scheduler_interval_ms: 10,
        retention_check_interval_ms: 10,
        cleaner_backoff_ms: 10,
        ..ManagerConfig::default()
    };
    let manager = LogManager::open(dir.path(), config).expect("open");
    manager.start_background_work();
    manager.start_background_work();
    let log = manager
        .load(&partition("orders", 0), LogConfig::default())
        .expect("load");
    log.append_as_leader(&records(1, 10, NOW), 0, NOW)
        .expect("append");
    manager.shutdown().expect("shutdown joins the threads");
    assert!(dir.path().join(".kafka_cleanshutdown").exists());
}

#[test]
fn an_offline_log_prevents_the_clean_shutdown_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = LogManager::open(dir.path(), ManagerConfig::default()).expect("open");
    let log = manager
        .load(&partition("orders", 0), LogConfig::default())
        .expect("load");
    log.append_as_leader(&records(1, 10, NOW), 0, NOW)
        .expect("append");
    {
        let _guard = crate::io::faults::inject(
            &dir.path().join("orders-0"),
            crate::io::faults::Op::Sync,
            crate::io::faults::EIO,
            false,
            None,
        );
        assert!(log.flush().is_err());
    }
    assert!(manager.shutdown().is_err());
    assert!(!dir.path().join(".kafka_cleanshutdown").exists());
}
