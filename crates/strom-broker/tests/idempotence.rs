//! The idempotent producer: ids, duplicates, sequence gaps and epoch fencing.

mod common;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;

async fn producer_id(conn: &mut Conn) -> (i64, i16) {
    let response = conn
        .send(
            4,
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_eq!(response.error_code, 0);
    (response.producer_id.0, response.producer_epoch)
}

#[tokio::test]
async fn producer_ids_are_unique_and_survive_restarts() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let a = producer_id(&mut conn).await;
    let b = producer_id(&mut conn).await;
    assert_ne!(a.0, b.0);
    let broker = broker.restart().await;
    let mut conn = broker.connect().await;
    let c = producer_id(&mut conn).await;
    assert!(
        c.0 > b.0,
        "ids are never reused after a restart ({c:?} after {b:?})"
    );
    broker.stop().await;
}

#[tokio::test]
async fn a_retried_batch_is_acknowledged_without_a_second_append() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("idem", 1, &[]).await;
    let (pid, epoch) = producer_id(&mut conn).await;
    let first = conn
        .produce("idem", 0, -1, idempotent_batch(pid, epoch, 0, 5))
        .await;
    assert_eq!((first.error_code, first.base_offset), (0, 0));
    let second = conn
        .produce("idem", 0, -1, idempotent_batch(pid, epoch, 5, 5))
        .await;
    assert_eq!(second.base_offset, 5);
    let retry = conn
        .produce("idem", 0, -1, idempotent_batch(pid, epoch, 0, 5))
        .await;
    assert_eq!(
        (retry.error_code, retry.base_offset),
        (0, 0),
        "the duplicate gets the original offsets"
    );
    assert_eq!(
        conn.list_offset("idem", 0, -1).await.offset,
        10,
        "nothing was appended twice"
    );

    // The duplicate is still recognised after a restart (producer state is kept with the log).
    let broker = broker.restart().await;
    let mut conn = broker.connect().await;
    let retry = conn
        .produce("idem", 0, -1, idempotent_batch(pid, epoch, 5, 5))
        .await;
    assert_eq!((retry.error_code, retry.base_offset), (0, 5));
    assert_eq!(conn.list_offset("idem", 0, -1).await.offset, 10);
    broker.stop().await;
}

#[tokio::test]
async fn a_sequence_gap_gets_out_of_order_sequence_number() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("gaps", 1, &[]).await;
    let (pid, epoch) = producer_id(&mut conn).await;
    conn.produce("gaps", 0, 1, idempotent_batch(pid, epoch, 0, 3))
        .await;
    let gap = conn
        .produce("gaps", 0, 1, idempotent_batch(pid, epoch, 10, 3))
        .await;
    assert_eq!(
        gap.error_code,
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    assert_eq!(conn.list_offset("gaps", 0, -1).await.offset, 3);
    broker.stop().await;
}

#[tokio::test]
async fn an_older_epoch_is_fenced() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("fence", 1, &[]).await;
    let (pid, _) = producer_id(&mut conn).await;
    assert_eq!(
        conn.produce("fence", 0, 1, idempotent_batch(pid, 3, 0, 2))
            .await
            .error_code,
        0
    );
    let stale = conn
        .produce("fence", 0, 1, idempotent_batch(pid, 2, 2, 2))
        .await;
    assert_eq!(stale.error_code, ResponseError::InvalidProducerEpoch.code());
    let bumped = conn
        .produce("fence", 0, 1, idempotent_batch(pid, 4, 0, 2))
        .await;
    assert_eq!(bumped.error_code, 0, "a new epoch restarts at sequence 0");
    broker.stop().await;
}

#[tokio::test]
async fn transactional_producers_are_refused_clearly() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let response = conn
        .send(
            4,
            InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(
                    kafka_protocol::protocol::StrBytes::from_static_str("tx"),
                )))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_ne!(response.error_code, 0);
    broker.stop().await;
}
