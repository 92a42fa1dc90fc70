//! TxnOffsetCommit through the broker: the offsets are written as a transactional batch, stay
//! pending until the COMMIT marker reaches `__consumer_offsets`, and survive a restart.

mod common;

use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom_log::TopicPartition;
use strom_log::control::Marker;

const GROUP: &str = "txn-group";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// (committed offset, error code) of `orders`-0 at OffsetFetch v7.
async fn fetch(conn: &mut Conn, require_stable: bool) -> (i64, i16) {
    let response = conn
        .send(
            7,
            OffsetFetchRequest::default()
                .with_group_id(GroupId(s(GROUP)))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(topic_name("orders"))
                        .with_partition_indexes(vec![0]),
                ]))
                .with_require_stable(require_stable),
        )
        .await;
    let partition = &response.topics[0].partitions[0];
    (partition.committed_offset, partition.error_code)
}

#[tokio::test]
async fn txn_offsets_become_visible_when_the_commit_marker_is_written() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("orders", 1, &[]).await;
    conn.send(3, FindCoordinatorRequest::default().with_key(s(GROUP)))
        .await;
    let producer = conn
        .send(
            4,
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_eq!(producer.error_code, 0);
    let (producer_id, producer_epoch) = (producer.producer_id.0, producer.producer_epoch);

    let committed = conn
        .send(
            3,
            TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(s("txn-1")))
                .with_group_id(GroupId(s(GROUP)))
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(producer_epoch)
                .with_generation_id(-1)
                .with_topics(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(topic_name("orders"))
                        .with_partitions(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(42)
                                .with_committed_metadata(Some(s("txn"))),
                        ]),
                ]),
        )
        .await;
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    assert_eq!(fetch(&mut conn, false).await, (-1, 0));
    assert_eq!(
        fetch(&mut conn, true).await,
        (-1, 88),
        "UNSTABLE_OFFSET_COMMIT"
    );

    // What WriteTxnMarkers does: append the marker, then tell the group coordinator.
    let state = broker.broker.as_ref().unwrap().state().unwrap().clone();
    let groups = state.groups().unwrap().clone();
    let index = strom_group::partition_for_group(GROUP, groups.offsets_partitions);
    let partition = state
        .partition(&TopicPartition {
            topic: "__consumer_offsets".into(),
            partition: index,
        })
        .unwrap();
    let marker = Marker {
        commit: true,
        coordinator_epoch: 0,
    };
    tokio::task::spawn_blocking(move || {
        partition.append_marker(producer_id, producer_epoch, marker, 0)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("marker: {}", e.message));
    groups
        .complete_transaction(index, producer_id, true)
        .await
        .unwrap();
    assert_eq!(fetch(&mut conn, true).await, (42, 0));

    // The load replays the transactional batch and its marker.
    let broker = broker.restart().await;
    let mut conn = broker.connect().await;
    assert_eq!(fetch(&mut conn, true).await, (42, 0));
    broker.stop().await;
}
