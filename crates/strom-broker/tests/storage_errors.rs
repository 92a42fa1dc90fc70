//! A disk error takes only the affected partition offline: its clients get
//! KAFKA_STORAGE_ERROR, other partitions keep working, and the broker does not crash.

mod common;

use std::path::Path;

use common::*;
use kafka_protocol::error::ResponseError;
use strom_log::faults::{self, EIO, ENOSPC, Op};

#[tokio::test]
async fn a_full_disk_on_append_takes_only_that_partition_offline() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("enospc-victim", 1, &[]).await;
    conn.create_topic("enospc-bystander", 1, &[]).await;
    assert_eq!(
        conn.produce("enospc-victim", 0, 1, simple_batch(0, 3))
            .await
            .error_code,
        0
    );

    let _fault = faults::inject(Path::new("enospc-victim-0"), Op::Write, ENOSPC, false, None);
    let failed = conn
        .produce("enospc-victim", 0, 1, simple_batch(3, 3))
        .await;
    assert_eq!(failed.error_code, ResponseError::KafkaStorageError.code());
    // Offline from now on, for reads too, without touching the disk again.
    let read = conn.fetch("enospc-victim", 0, 0, 0, 0).await;
    assert_eq!(read.error_code, ResponseError::KafkaStorageError.code());
    let again = conn
        .produce("enospc-victim", 0, 1, simple_batch(3, 1))
        .await;
    assert_eq!(again.error_code, ResponseError::KafkaStorageError.code());

    // Everything else keeps working.
    assert_eq!(
        conn.produce("enospc-bystander", 0, 1, simple_batch(0, 5))
            .await
            .error_code,
        0
    );
    assert_eq!(conn.consume("enospc-bystander", 0, 0, 5).await.len(), 5);
    let listed = conn.list_offset("enospc-bystander", 0, -1).await;
    assert_eq!(listed.offset, 5);
    drop(_fault);
    broker.stop().await;
}

#[tokio::test]
async fn a_failed_fsync_fails_acks_all_with_a_storage_error() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("eio-sync", 1, &[]).await;
    let _fault = faults::inject(Path::new("eio-sync-0"), Op::Sync, EIO, false, None);
    let response = conn.produce("eio-sync", 0, -1, simple_batch(0, 2)).await;
    assert_eq!(response.error_code, ResponseError::KafkaStorageError.code());
    // acks=1 does not wait for the fsync, but the log went offline when the fsync failed.
    let later = conn.produce("eio-sync", 0, 1, simple_batch(2, 2)).await;
    assert_eq!(later.error_code, ResponseError::KafkaStorageError.code());
    drop(_fault);
    broker.stop().await;
}
