//! The storage side of transactions (KIP-98) through the wire: a transactional batch holds the
//! last stable offset (LSO) back, read_committed Fetch and ListOffsets stop at it, and a
//! marker written by `Partition::append_marker` moves it, listing an aborted transaction for
//! the consumer to filter. The producer registers with the transaction coordinator like a
//! client; its batches are built by hand and the markers written directly, so the test
//! decides exactly when the LSO moves.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use strom_broker::partition::Partition;
use strom_log::control::Marker;

const TOPIC: &str = "txn";
const READ_UNCOMMITTED: i8 = 0;
const READ_COMMITTED: i8 = 1;

const TRANSACTIONAL_ID: &str = "read-committed";

async fn producer_id(conn: &mut Conn) -> (i64, i16) {
    conn.transactional_producer(TRANSACTIONAL_ID, &[(TOPIC, 0)])
        .await
}

/// An idempotent producer's batch with the transactional attribute.
fn transactional_batch(
    producer_id: i64,
    epoch: i16,
    first_sequence: i32,
    count: i32,
) -> bytes::Bytes {
    transactional_batch_at(producer_id, epoch, first_sequence, count, now_ms())
}

async fn fetch(
    conn: &mut Conn,
    offset: i64,
    isolation_level: i8,
    max_wait_ms: i32,
) -> fetch_response::PartitionData {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 * 1024 * 1024)
        .with_isolation_level(isolation_level)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic_name(TOPIC))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_current_leader_epoch(-1)
                        .with_last_fetched_epoch(-1)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(10 * 1024 * 1024),
                ]),
        ]);
    let mut response = conn.send(12, request).await;
    assert_eq!(response.error_code, 0, "fetch top-level error");
    let data = response.responses.remove(0).partitions.remove(0);
    assert_eq!(data.error_code, 0, "fetch partition error");
    data
}

async fn latest(conn: &mut Conn, isolation_level: i8) -> i64 {
    offset_for(conn, -1, isolation_level).await
}

async fn offset_for(conn: &mut Conn, timestamp: i64, isolation_level: i8) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(vec![
            list_offsets_request::ListOffsetsTopic::default()
                .with_name(topic_name(TOPIC))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_current_leader_epoch(-1)
                        .with_timestamp(timestamp),
                ]),
        ]);
    let mut response = conn.send(8, request).await;
    let partition = response.topics.remove(0).partitions.remove(0);
    assert_eq!(partition.error_code, 0);
    partition.offset
}

/// Offsets of the data records (not markers) a fetch returned.
fn data_offsets(data: &fetch_response::PartitionData) -> Vec<i64> {
    decode(data.records.clone().unwrap_or_default())
        .iter()
        .filter(|r| !r.control)
        .map(|r| r.offset)
        .collect()
}

fn aborted(data: &fetch_response::PartitionData) -> Option<Vec<(i64, i64)>> {
    data.aborted_transactions.as_ref().map(|list| {
        list.iter()
            .map(|a| (a.producer_id.0, a.first_offset))
            .collect()
    })
}

fn partition(broker: &TestBroker) -> Arc<Partition> {
    let state = broker
        .broker
        .as_ref()
        .and_then(|b| b.state())
        .expect("broker state");
    state
        .partition(&strom_log::TopicPartition {
            topic: TOPIC.to_owned(),
            partition: 0,
        })
        .expect("the partition is hosted here")
}

fn marker(commit: bool) -> Marker {
    Marker {
        commit,
        coordinator_epoch: 0,
    }
}

#[tokio::test]
async fn read_committed_reads_stop_at_the_last_stable_offset_and_list_aborted_transactions() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic(TOPIC, 1, &[]).await;
    let (pid, epoch) = producer_id(&mut conn).await;
    assert_eq!(
        conn.produce(TOPIC, 0, -1, simple_batch(0, 2))
            .await
            .error_code,
        0
    ); // 0..=1
    let produced = conn
        .produce_transactional(
            TRANSACTIONAL_ID,
            TOPIC,
            0,
            transactional_batch(pid, epoch, 0, 3),
        )
        .await; // 2..=4
    assert_eq!((produced.error_code, produced.base_offset), (0, 2));
    assert_eq!(
        conn.produce(TOPIC, 0, -1, simple_batch(0, 2))
            .await
            .error_code,
        0
    ); // 5..=6

    // The open transaction holds the LSO at its first offset.
    let committed = fetch(&mut conn, 0, READ_COMMITTED, 0).await;
    assert_eq!(
        (committed.high_watermark, committed.last_stable_offset),
        (7, 2)
    );
    assert_eq!(
        data_offsets(&committed),
        [0, 1],
        "nothing at or past the LSO"
    );
    assert_eq!(aborted(&committed), Some(vec![]));
    let uncommitted = fetch(&mut conn, 0, READ_UNCOMMITTED, 0).await;
    assert_eq!(uncommitted.last_stable_offset, 2, "reported at both levels");
    assert_eq!(data_offsets(&uncommitted), (0..7).collect::<Vec<_>>());
    assert_eq!(aborted(&uncommitted), None);
    assert_eq!(latest(&mut conn, READ_COMMITTED).await, 2);
    assert_eq!(latest(&mut conn, READ_UNCOMMITTED).await, 7);

    // A read_committed consumer waiting at the LSO is woken by the marker that moves it.
    let mut waiting = broker.connect().await;
    let waiter = tokio::spawn(async move { fetch(&mut waiting, 2, READ_COMMITTED, 15_000).await });
    let partition = partition(&broker);
    let state = broker
        .broker
        .as_ref()
        .and_then(|b| b.state())
        .expect("state");
    tokio::time::timeout(IO_TIMEOUT, async {
        while state.metrics.fetch_waits.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the fetch parks in a long poll");
    let appended = partition
        .append_marker(pid, epoch, marker(false), now_ms())
        .expect("abort marker"); // 7
    assert_eq!(appended.info.first_offset, 7);
    let woken = tokio::time::timeout(IO_TIMEOUT, waiter)
        .await
        .expect("woken before its max wait")
        .expect("fetch task");
    assert_eq!(woken.last_stable_offset, 8);
    assert_eq!(data_offsets(&woken), [2, 3, 4, 5, 6]);
    assert_eq!(aborted(&woken), Some(vec![(pid, 2)]));

    let after_abort = fetch(&mut conn, 0, READ_COMMITTED, 0).await;
    assert_eq!(
        (after_abort.high_watermark, after_abort.last_stable_offset),
        (8, 8)
    );
    assert_eq!(aborted(&after_abort), Some(vec![(pid, 2)]));
    assert_eq!(latest(&mut conn, READ_COMMITTED).await, 8);

    // A committed transaction lists nothing.
    let produced = conn
        .produce_transactional(
            TRANSACTIONAL_ID,
            TOPIC,
            0,
            transactional_batch(pid, epoch, 3, 2),
        )
        .await; // 8..=9
    assert_eq!((produced.error_code, produced.base_offset), (0, 8));
    assert_eq!(latest(&mut conn, READ_COMMITTED).await, 8);
    partition
        .append_marker(pid, epoch, marker(true), now_ms())
        .expect("commit marker"); // 10
    let after_commit = fetch(&mut conn, 8, READ_COMMITTED, 0).await;
    assert_eq!(after_commit.last_stable_offset, 11);
    assert_eq!(data_offsets(&after_commit), [8, 9]);
    assert_eq!(aborted(&after_commit), Some(vec![]));
    assert_eq!(latest(&mut conn, READ_COMMITTED).await, 11);
    assert_eq!(partition.last_stable_offset(), 11);

    // The index and the LSO survive a restart.
    let broker = broker.restart().await;
    let mut conn = broker.connect().await;
    let restarted = fetch(&mut conn, 0, READ_COMMITTED, 0).await;
    assert_eq!(restarted.last_stable_offset, 11);
    assert_eq!(aborted(&restarted), Some(vec![(pid, 2)]));
    broker.stop().await;
}

#[tokio::test]
async fn a_client_control_batch_is_an_invalid_record() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic(TOPIC, 1, &[]).await;
    let (pid, epoch) = producer_id(&mut conn).await;
    let now = now_ms();
    let mut r = record(0, now);
    r.producer_id = pid;
    r.producer_epoch = epoch;
    r.transactional = true;
    r.control = true;
    r.key = Some(bytes::Bytes::from_static(&[0, 0, 0, 1]));
    r.value = Some(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0]));
    r.headers.clear();
    let response = conn
        .produce(TOPIC, 0, -1, batch(&[r], Compression::None))
        .await;
    assert_eq!(
        response.error_code,
        kafka_protocol::error::ResponseError::InvalidRecord.code()
    );
    broker.stop().await;
}

#[tokio::test]
async fn read_committed_timestamp_lookups_find_nothing_at_or_past_the_last_stable_offset() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic(TOPIC, 1, &[]).await;
    let (pid, epoch) = producer_id(&mut conn).await;
    let now = now_ms();
    assert_eq!(
        conn.produce(TOPIC, 0, -1, simple_batch(0, 1))
            .await
            .error_code,
        0
    ); // 0
    let later = now + 60_000;
    let produced = conn
        .produce_transactional(
            TRANSACTIONAL_ID,
            TOPIC,
            0,
            transactional_batch_at(pid, epoch, 0, 2, later),
        )
        .await; // 1..=2
    assert_eq!(produced.error_code, 0);
    let after_now = now + 30_000;
    assert_eq!(offset_for(&mut conn, after_now, READ_UNCOMMITTED).await, 1);
    assert_eq!(
        offset_for(&mut conn, after_now, READ_COMMITTED).await,
        -1,
        "the match is past the LSO"
    );
    assert_eq!(
        offset_for(&mut conn, -3, READ_COMMITTED).await,
        -1,
        "MAX_TIMESTAMP too"
    );
    partition(&broker)
        .append_marker(pid, epoch, marker(true), now_ms())
        .expect("commit");
    assert_eq!(offset_for(&mut conn, after_now, READ_COMMITTED).await, 1);
    assert_eq!(offset_for(&mut conn, -3, READ_COMMITTED).await, 1);
    broker.stop().await;
}
