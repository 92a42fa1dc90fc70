//! Injected IO faults: a failing disk takes one log offline, fails fast afterwards, never
//! panics, and leaves a log that recovers to its last whole batch.

use super::*;
use crate::io::faults::{self, EIO, ENOSPC, Op};
use crate::{AppendError, Error};

fn partition_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("orders-0")
}

fn assert_offline<T: std::fmt::Debug>(result: Result<T, AppendError>) {
    match result {
        Err(AppendError::Storage(Error::Offline(tp))) => assert_eq!(tp, super::tp()),
        other => panic!("expected Offline, got {other:?}"),
    }
}

#[test]
fn enospc_on_append_takes_only_that_log_offline() {
    let failing = tempfile::tempdir().expect("tempdir");
    let healthy = tempfile::tempdir().expect("tempdir");
    let log = open(failing.path(), LogConfig::default());
    let other = open(healthy.path(), LogConfig::default());
    log.append_as_leader(&records(2, 10, NOW), 0, NOW)
        .expect("append");
    let before = read_all(&log);

    let guard = faults::inject(
        &partition_dir(failing.path()),
        Op::Write,
        ENOSPC,
        false,
        None,
    );
    match log.append_as_leader(&records(2, 10, NOW), 0, NOW) {
        Err(AppendError::Storage(Error::Io { source, op, path })) => {
            assert_eq!(source.raw_os_error(), Some(ENOSPC));
            assert_eq!(op, "append");
            assert!(path.ends_with("00000000000000000000.log"));
        }
        other => panic!("expected an IO error, got {other:?}"),
    }
    assert!(log.is_offline());
    assert_eq!(log.log_end_offset(), 2, "the failed append is not visible");
    assert_offline(log.append_as_leader(&records(1, 10, NOW), 0, NOW));
    assert!(matches!(log.read(0, 100, 2, true), Err(Error::Offline(_))));
    assert!(matches!(log.flush(), Err(Error::Offline(_))));
    // Other logs are unaffected.
    other
        .append_as_leader(&records(1, 10, NOW), 0, NOW)
        .expect("healthy log appends");
    assert_eq!(read_all(&other).len(), 1);
    drop(guard);
    drop(log);

    // After a restart the log holds what was acknowledged.
    let log = reopen_unclean(failing.path(), LogConfig::default(), 0);
    assert_eq!(read_all(&log), before);
}

#[test]
fn a_torn_write_is_cut_off_by_recovery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&records(3, 100, NOW), 0, NOW)
        .expect("append");
    let before = read_all(&log);
    let guard = faults::inject(&partition_dir(dir.path()), Op::Write, EIO, true, Some(1));
    assert!(matches!(
        log.append_as_leader(&records(3, 100, NOW), 0, NOW),
        Err(AppendError::Storage(Error::Io { .. }))
    ));
    drop(guard);
    drop(log);
    let log = reopen_unclean(dir.path(), LogConfig::default(), 0);
    assert_eq!(read_all(&log), before);
    assert!(log.recovery_report().truncated_bytes > 0);
}

#[test]
fn eio_on_flush_takes_the_log_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&records(1, 10, NOW), 0, NOW)
        .expect("append");
    let guard = faults::inject(&partition_dir(dir.path()), Op::Sync, EIO, false, None);
    match log.flush() {
        Err(Error::Io { source, op, .. }) => {
            assert_eq!(source.raw_os_error(), Some(EIO));
            assert_eq!(op, "flush");
        }
        other => panic!("expected an IO error, got {other:?}"),
    }
    assert_eq!(
        log.flushed_offset(),
        0,
        "a failed fsync does not advance the recovery point"
    );
    assert!(matches!(log.flush(), Err(Error::Offline(_))));
    assert_offline(log.append_as_leader(&records(1, 10, NOW), 0, NOW));
    drop(guard);
}

#[test]
fn enospc_on_flush_triggered_by_flush_messages_fails_the_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        flush_messages: 1,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    let _guard = faults::inject(&partition_dir(dir.path()), Op::Sync, ENOSPC, false, None);
    assert!(matches!(
        log.append_as_leader(&records(1, 10, NOW), 0, NOW),
        Err(AppendError::Storage(Error::Io { .. }))
    ));
    assert!(log.is_offline());
}

#[test]
fn eio_on_append_write_of_an_index_entry_takes_the_log_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    log.append_as_leader(&records(1, 10, NOW), 0, NOW)
        .expect("first batch: no index entry");
    let _guard = faults::inject(
        &partition_dir(dir.path()).join("00000000000000000000.index"),
        Op::Write,
        EIO,
        false,
        None,
    );
    assert!(log.append_as_leader(&records(1, 10, NOW), 0, NOW).is_err());
    assert!(log.is_offline());
}

#[test]
fn failure_to_create_a_segment_at_roll_takes_the_log_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config());
    log.append_as_leader(&records(1, 500, NOW), 0, NOW)
        .expect("append");
    let _guard = faults::inject(&partition_dir(dir.path()), Op::Create, ENOSPC, false, None);
    let mut result = Ok(());
    for _ in 0..20 {
        if let Err(error) = log.append_as_leader(&records(1, 500, NOW), 0, NOW) {
            result = Err(error);
            break;
        }
    }
    assert!(matches!(
        result,
        Err(AppendError::Storage(Error::Io { op: "roll", .. }))
    ));
    assert!(log.is_offline());
}

#[test]
fn failure_to_delete_a_segment_in_retention_takes_the_log_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        retention_bytes: 0,
        ..small_config()
    };
    let log = open(dir.path(), config);
    for _ in 0..20 {
        log.append_as_leader(&records(1, 500, NOW), 0, NOW)
            .expect("append");
    }
    log.update_high_watermark(i64::MAX);
    let _guard = faults::inject(&partition_dir(dir.path()), Op::Rename, EIO, false, None);
    assert!(matches!(log.enforce_retention(NOW), Err(Error::Io { .. })));
    assert!(log.is_offline());
    assert!(matches!(log.enforce_retention(NOW), Err(Error::Offline(_))));
}

#[test]
fn read_errors_are_reported_not_panicked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&records(1, 10, NOW), 0, NOW)
        .expect("append");
    let _guard = faults::inject(&partition_dir(dir.path()), Op::Read, EIO, false, None);
    assert!(matches!(log.read(0, 100, 1, true), Err(Error::Io { .. })));
}
