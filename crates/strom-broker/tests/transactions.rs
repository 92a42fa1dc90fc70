//! The transaction coordinator through the wire, on one broker: the request sequence a
//! transactional client sends (FindCoordinator, InitProducerId, AddPartitionsToTxn, Produce,
//! EndTxn), what the partition leader refuses (KIP-890 verification, batches without a
//! transactional id, fenced epochs), DescribeTransactions/ListTransactions, and the
//! coordinator's state surviving a restart.

mod common;

use std::time::Duration;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;

const TOPIC: &str = "ledger";

fn txn_batch(producer_id: i64, epoch: i16, first_sequence: i32, count: i32) -> bytes::Bytes {
    transactional_batch_at(producer_id, epoch, first_sequence, count, now_ms())
}

fn id(s: &str) -> TransactionalId {
    TransactionalId(s.to_string().into())
}

async fn end_txn(conn: &mut Conn, txn: &str, producer: (i64, i16), commit: bool) -> i16 {
    conn.send(
        3,
        EndTxnRequest::default()
            .with_transactional_id(id(txn))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_committed(commit),
    )
    .await
    .error_code
}

async fn describe(conn: &mut Conn, txn: &str) -> describe_transactions_response::TransactionState {
    let mut response = conn
        .send(
            0,
            DescribeTransactionsRequest::default().with_transactional_ids(vec![id(txn)]),
        )
        .await;
    response.transaction_states.remove(0)
}

/// Polls DescribeTransactions until the id reaches `state` (markers are written in the
/// background after EndTxn answers). Bounded.
async fn wait_state(conn: &mut Conn, txn: &str, state: &str) {
    for _ in 0..1000 {
        if describe(conn, txn).await.transaction_state.as_str() == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "{txn} never reached {state}: {:?}",
        describe(conn, txn).await
    );
}

fn last_stable_offset(data: &fetch_response::PartitionData) -> i64 {
    data.last_stable_offset
}

async fn fetch_committed(conn: &mut Conn) -> fetch_response::PartitionData {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_isolation_level(1)
        .with_session_epoch(-1)
        .with_topics(vec![
            fetch_request::FetchTopic::default()
                .with_topic(topic_name(TOPIC))
                .with_partitions(vec![
                    fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_current_leader_epoch(-1)
                        .with_last_fetched_epoch(-1)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let mut response = conn.send(12, request).await;
    response.responses.remove(0).partitions.remove(0)
}

#[tokio::test]
async fn a_committed_transaction_moves_the_last_stable_offset_past_its_marker() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic(TOPIC, 1, &[]).await;
    let producer = conn.transactional_producer("t-commit", &[(TOPIC, 0)]).await;
    let produced = conn
        .produce_transactional(
            "t-commit",
            TOPIC,
            0,
            txn_batch(producer.0, producer.1, 0, 4),
        )
        .await;
    assert_eq!(produced.error_code, 0);
    assert_eq!(last_stable_offset(&fetch_committed(&mut conn).await), 0);

    let ongoing = describe(&mut conn, "t-commit").await;
    assert_eq!(ongoing.transaction_state.as_str(), "Ongoing");
    assert_eq!(ongoing.producer_id.0, producer.0);
    assert_eq!(ongoing.topics.len(), 1);
    assert_eq!(ongoing.topics[0].partitions, vec![0]);
    let listed = conn
        .send(
            1,
            ListTransactionsRequest::default()
                .with_state_filters(vec!["Ongoing".into(), "NoSuchState".into()])
                .with_duration_filter(-1),
        )
        .await;
    assert_eq!(
        listed.unknown_state_filters,
        vec![kafka_protocol::protocol::StrBytes::from_static_str(
            "NoSuchState"
        )]
    );
    let ids: Vec<_> = listed
        .transaction_states
        .iter()
        .map(|t| t.transactional_id.to_string())
        .collect();
    assert_eq!(ids, ["t-commit"]);

    assert_eq!(end_txn(&mut conn, "t-commit", producer, true).await, 0);
    wait_state(&mut conn, "t-commit", "CompleteCommit").await;
    let data = fetch_committed(&mut conn).await;
    // 4 records and the COMMIT marker.
    assert_eq!((data.high_watermark, last_stable_offset(&data)), (5, 5));
    broker.stop().await;
}

#[tokio::test]
async fn the_leader_refuses_transactional_batches_the_coordinator_does_not_know_about() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic(TOPIC, 2, &[]).await;
    // Partition 1 is never added to the transaction.
    let producer = conn.transactional_producer("t-verify", &[(TOPIC, 0)]).await;
    let refused = conn
        .produce_transactional(
            "t-verify",
            TOPIC,
            1,
            txn_batch(producer.0, producer.1, 0, 1),
        )
        .await;
    assert_eq!(refused.error_code, ResponseError::InvalidTxnState.code());

    // A transactional batch in a request without a transactional id.
    let anonymous = conn
        .produce(TOPIC, 0, -1, txn_batch(producer.0, producer.1, 0, 1))
        .await;
    assert_eq!(
        anonymous.error_code,
        ResponseError::TransactionalIdAuthorizationFailed.code()
    );

    // The added partition takes it.
    let accepted = conn
        .produce_transactional(
            "t-verify",
            TOPIC,
            0,
            txn_batch(producer.0, producer.1, 0, 1),
        )
        .await;
    assert_eq!(accepted.error_code, 0);
    broker.stop().await;
}

#[tokio::test]
async fn a_new_instance_fences_the_old_one_and_aborts_its_transaction() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic(TOPIC, 1, &[]).await;
    let old = conn.transactional_producer("t-fence", &[(TOPIC, 0)]).await;
    let produced = conn
        .produce_transactional("t-fence", TOPIC, 0, txn_batch(old.0, old.1, 0, 3))
        .await;
    assert_eq!(produced.error_code, 0);

    // The new instance: the first InitProducerId starts the abort of the old transaction
    // (CONCURRENT_TRANSACTIONS until its markers are written), a retry gets the bumped epoch.
    let new = conn.transactional_producer("t-fence", &[]).await;
    assert_eq!(new.0, old.0);
    assert!(new.1 > old.1, "epoch bumped: {old:?} then {new:?}");
    let data = fetch_committed(&mut conn).await;
    assert_eq!(
        (data.high_watermark, last_stable_offset(&data)),
        (4, 4),
        "the old transaction was aborted"
    );
    assert_eq!(
        data.aborted_transactions.as_ref().map(|a| a
            .iter()
            .map(|t| (t.producer_id.0, t.first_offset))
            .collect::<Vec<_>>()),
        Some(vec![(old.0, 0)])
    );

    assert_eq!(
        end_txn(&mut conn, "t-fence", old, true).await,
        ResponseError::ProducerFenced.code()
    );
    let zombie = conn
        .produce_transactional("t-fence", TOPIC, 0, txn_batch(old.0, old.1, 3, 1))
        .await;
    assert_ne!(zombie.error_code, 0, "the zombie's write is refused");
    broker.stop().await;
}

#[tokio::test]
async fn the_coordinator_state_survives_a_restart() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic(TOPIC, 1, &[]).await;
    let producer = conn
        .transactional_producer("t-restart", &[(TOPIC, 0)])
        .await;
    let produced = conn
        .produce_transactional(
            "t-restart",
            TOPIC,
            0,
            txn_batch(producer.0, producer.1, 0, 2),
        )
        .await;
    assert_eq!(produced.error_code, 0);
    drop(conn);

    let broker = broker.restart().await;
    let mut conn = broker.connect().await;
    // The reloaded coordinator still knows the open transaction and its partition.
    let mut reloaded = None;
    for _ in 0..500 {
        let d = describe(&mut conn, "t-restart").await;
        if d.error_code == 0 {
            reloaded = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reloaded = reloaded.expect("the coordinator reloads its partition");
    assert_eq!(reloaded.transaction_state.as_str(), "Ongoing");
    assert_eq!((reloaded.producer_id.0, reloaded.producer_epoch), producer);
    assert_eq!(end_txn(&mut conn, "t-restart", producer, false).await, 0);
    wait_state(&mut conn, "t-restart", "CompleteAbort").await;
    let data = fetch_committed(&mut conn).await;
    assert_eq!((data.high_watermark, last_stable_offset(&data)), (3, 3));
    broker.stop().await;
}
