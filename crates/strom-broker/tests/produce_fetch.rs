//! Produce and Fetch against a real broker: offsets, acks, long polls, limits, bad batches.

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::Compression;

#[tokio::test]
async fn produced_batches_are_fetched_back_with_offsets_keys_headers_and_timestamps() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    assert_eq!(
        conn.create_topic("orders", 2, &[]).await.topics[0].error_code,
        0
    );
    let first = conn.produce("orders", 1, 1, simple_batch(0, 10)).await;
    assert_eq!((first.error_code, first.base_offset), (0, 0));
    let second = conn.produce("orders", 1, 1, simple_batch(10, 5)).await;
    assert_eq!((second.error_code, second.base_offset), (0, 10));

    let records = conn.consume("orders", 1, 0, 15).await;
    assert_eq!(records.len(), 15);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.key.as_deref(), Some(format!("key-{i}").as_bytes()));
        assert_eq!(r.value.as_deref(), Some(format!("value-{i}").as_bytes()));
        assert_eq!(r.headers.len(), 2);
        assert!(r.timestamp > 0);
    }
    let empty = conn.fetch("orders", 0, 0, 0, 0).await;
    assert_eq!(empty.high_watermark, 0);
    broker.stop().await;
}

#[tokio::test]
async fn null_keys_null_values_and_empty_values_survive() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("nulls", 1, &[]).await;
    let now = now_ms();
    let mut tombstone = record(0, now);
    tombstone.value = None;
    let mut keyless = record(1, now);
    keyless.key = None;
    let mut empty = record(2, now);
    empty.value = Some(Bytes::new());
    empty.headers.clear();
    conn.produce(
        "nulls",
        0,
        1,
        batch(&[tombstone, keyless, empty], Compression::Lz4),
    )
    .await;
    let got = conn.consume("nulls", 0, 0, 3).await;
    assert_eq!(got[0].value, None, "a null value stays null, not empty");
    assert_eq!(got[1].key, None, "a null key stays null");
    assert_eq!(
        got[2].value.as_deref(),
        Some(&b""[..]),
        "an empty value stays empty, not null"
    );
    assert!(got[2].headers.is_empty());
    broker.stop().await;
}

#[tokio::test]
async fn every_compression_codec_passes_through_byte_for_byte() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("codecs", 1, &[]).await;
    let now = now_ms();
    let mut offset = 0;
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let records: Vec<_> = (0..50).map(|i| record(i, now)).collect();
        let sent = batch(&records, codec);
        let response = conn.produce("codecs", 0, -1, sent.clone()).await;
        assert_eq!(response.error_code, 0, "{codec:?}");
        let fetched = conn
            .fetch("codecs", 0, offset, 1000, 1)
            .await
            .records
            .unwrap();
        // The stored batch differs from the sent one only in base offset and leader epoch.
        assert_eq!(fetched.len(), sent.len(), "{codec:?}");
        assert_eq!(
            &fetched[16..],
            &sent[16..],
            "{codec:?}: bytes after the offset/epoch header"
        );
        assert_eq!(i64::from_be_bytes(fetched[..8].try_into().unwrap()), offset);
        let decoded = decode(fetched);
        assert_eq!(decoded.len(), 50);
        assert_eq!(decoded[49].value.as_deref(), Some(&b"value-49"[..]));
        offset += 50;
    }
    broker.stop().await;
}

#[tokio::test]
async fn acks_zero_sends_no_response_but_appends() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("fire", 1, &[]).await;
    let request = kafka_protocol::messages::ProduceRequest::default()
        .with_acks(0)
        .with_timeout_ms(1000)
        .with_topic_data(vec![
            kafka_protocol::messages::produce_request::TopicProduceData::default()
                .with_name(topic_name("fire"))
                .with_partition_data(vec![
                    kafka_protocol::messages::produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(simple_batch(0, 3))),
                ]),
        ]);
    conn.send_no_response(9, request).await;
    // The next response on the connection is the fetch's: nothing was sent for acks=0.
    let records = conn.consume("fire", 0, 0, 3).await;
    assert_eq!(records.len(), 3);
    broker.stop().await;
}

#[tokio::test]
async fn acks_all_is_acknowledged_after_fsync() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("durable", 1, &[]).await;
    let state = broker.broker.as_ref().unwrap().state().unwrap().clone();
    for i in 0..5 {
        let response = conn.produce("durable", 0, -1, simple_batch(i * 4, 4)).await;
        assert_eq!(response.error_code, 0);
        let tp = strom_log::TopicPartition {
            topic: "durable".into(),
            partition: 0,
        };
        let log = state.partition(&tp).unwrap().log.clone();
        assert!(
            log.flushed_offset() >= (i + 1) * 4,
            "acks=all answered before the fsync covered it"
        );
    }
    broker.stop().await;
}

#[tokio::test]
async fn fetch_long_poll_answers_as_soon_as_data_arrives() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("waiting", 1, &[]).await;
    // Fetch then produce, pipelined on one connection. The broker runs the fetch's ordered
    // part (nothing to read: it parks) before it reads the produce, so the produce's append is
    // what must wake the fetch, long before its 10 s wait.
    let fetch = kafka_protocol::messages::FetchRequest::default()
        .with_max_wait_ms(10_000)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            kafka_protocol::messages::fetch_request::FetchTopic::default()
                .with_topic(topic_name("waiting"))
                .with_partitions(vec![
                    kafka_protocol::messages::fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let produce = kafka_protocol::messages::ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![
            kafka_protocol::messages::produce_request::TopicProduceData::default()
                .with_name(topic_name("waiting"))
                .with_partition_data(vec![
                    kafka_protocol::messages::produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(simple_batch(0, 1))),
                ]),
        ]);
    let (fetch_id, fetch_frame) = conn.encode(12, fetch);
    let (produce_id, produce_frame) = conn.encode(9, produce);
    let started = Instant::now();
    let mut both = BytesMut::new();
    for frame in [fetch_frame, produce_frame] {
        both.put_i32(frame.len() as i32);
        both.put_slice(&frame);
    }
    conn.write_raw(&both).await;
    let fetched = conn
        .receive::<kafka_protocol::messages::FetchRequest>(12, fetch_id)
        .await;
    let waited = started.elapsed();
    let produced = conn
        .receive::<kafka_protocol::messages::ProduceRequest>(9, produce_id)
        .await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let records = fetched.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(
        decode(records).len(),
        1,
        "the fetch returned the record produced after it"
    );
    assert!(
        waited < Duration::from_millis(9_000),
        "the fetch slept out max_wait_ms ({waited:?})"
    );
    broker.stop().await;
}

#[tokio::test]
async fn fetch_without_data_returns_after_max_wait() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("quiet", 1, &[]).await;
    let data = conn.fetch("quiet", 0, 0, 100, 1).await;
    assert_eq!(data.error_code, 0);
    assert!(data.records.unwrap_or_default().is_empty());
    broker.stop().await;
}

#[tokio::test]
async fn fetch_out_of_range_reports_offset_out_of_range() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("range", 1, &[]).await;
    conn.produce("range", 0, 1, simple_batch(0, 3)).await;
    let data = conn.fetch("range", 0, 100, 0, 0).await;
    assert_eq!(data.error_code, ResponseError::OffsetOutOfRange.code());
    assert_eq!(data.high_watermark, 3);
    broker.stop().await;
}

#[tokio::test]
async fn corrupt_batch_gets_corrupt_message_and_nothing_is_appended() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("crc", 1, &[]).await;
    let mut bad = BytesMut::from(&simple_batch(0, 3)[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    let response = conn.produce("crc", 0, 1, bad.freeze()).await;
    assert_eq!(response.error_code, ResponseError::CorruptMessage.code());
    // Truncated batch and plain garbage are refused the same way.
    let truncated = simple_batch(0, 3).slice(..30);
    assert_eq!(
        conn.produce("crc", 0, 1, truncated).await.error_code,
        ResponseError::CorruptMessage.code()
    );
    let mut garbage = BytesMut::new();
    garbage.put_slice(&[7u8; 100]);
    assert_eq!(
        conn.produce("crc", 0, 1, garbage.freeze()).await.error_code,
        ResponseError::CorruptMessage.code()
    );
    let good = conn.produce("crc", 0, 1, simple_batch(0, 2)).await;
    assert_eq!(
        (good.error_code, good.base_offset),
        (0, 0),
        "nothing from the bad batches was appended"
    );
    broker.stop().await;
}

#[tokio::test]
async fn batch_over_max_message_bytes_gets_message_too_large() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("small", 1, &[("max.message.bytes", "1000")])
        .await;
    let now = now_ms();
    let mut big = record(0, now);
    big.value = Some(Bytes::from(vec![b'x'; 5000]));
    let response = conn
        .produce("small", 0, 1, batch(&[big], Compression::None))
        .await;
    assert_eq!(response.error_code, ResponseError::MessageTooLarge.code());
    broker.stop().await;
}

#[tokio::test]
async fn produce_to_unknown_partition_gets_unknown_topic_or_partition() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("two", 2, &[]).await;
    let response = conn.produce("two", 7, 1, simple_batch(0, 1)).await;
    assert_eq!(
        response.error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    broker.stop().await;
}

#[tokio::test]
async fn produce_to_invalid_topic_name_gets_invalid_topic_exception() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let response = conn.produce("bad/name", 0, 1, simple_batch(0, 1)).await;
    assert_eq!(
        response.error_code,
        ResponseError::InvalidTopicException.code()
    );
    broker.stop().await;
}

#[tokio::test]
async fn produce_auto_creates_topics_unless_disabled() {
    let broker = TestBroker::start_with(&[("num.partitions", "3")]).await;
    let mut conn = broker.connect().await;
    let response = conn.produce("auto", 2, 1, simple_batch(0, 1)).await;
    assert_eq!(response.error_code, 0);
    broker.stop().await;

    let broker = TestBroker::start_with(&[("auto.create.topics.enable", "false")]).await;
    let mut conn = broker.connect().await;
    let response = conn.produce("auto", 0, 1, simple_batch(0, 1)).await;
    assert_eq!(
        response.error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    broker.stop().await;
}

#[tokio::test]
async fn log_append_time_topics_stamp_the_broker_clock() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("stamped", 1, &[("message.timestamp.type", "LogAppendTime")])
        .await;
    let old = 1_000_000_000_000; // 2001: far from now
    let records: Vec<_> = (0..3).map(|i| record(i, old)).collect();
    let before = now_ms();
    let response = conn
        .produce("stamped", 0, 1, batch(&records, Compression::None))
        .await;
    assert_eq!(response.error_code, 0);
    assert!(response.log_append_time_ms >= before);
    // Clients read a LogAppendTime batch's timestamp from its header: the timestamp-type bit
    // (attributes bit 3) and the max timestamp (bytes 35..43) that the broker stamped.
    let fetched = conn.fetch("stamped", 0, 0, 1000, 1).await.records.unwrap();
    let attributes = i16::from_be_bytes(fetched[21..23].try_into().unwrap());
    let max_timestamp = i64::from_be_bytes(fetched[35..43].try_into().unwrap());
    assert_eq!(
        attributes & 0b1000,
        0b1000,
        "timestamp type is LogAppendTime"
    );
    assert_eq!(max_timestamp, response.log_append_time_ms);
    for r in decode(fetched) {
        assert_eq!(
            r.timestamp_type,
            kafka_protocol::records::TimestampType::LogAppend
        );
    }
    broker.stop().await;
}

#[tokio::test]
async fn fetch_max_bytes_limits_the_response_but_returns_at_least_one_batch() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("limits", 1, &[]).await;
    for i in 0..10 {
        conn.produce("limits", 0, 1, simple_batch(i * 10, 10)).await;
    }
    let one_batch_len = simple_batch(0, 10).len();
    let request = kafka_protocol::messages::FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(10)
        .with_topics(vec![
            kafka_protocol::messages::fetch_request::FetchTopic::default()
                .with_topic(topic_name("limits"))
                .with_partitions(vec![
                    kafka_protocol::messages::fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(10),
                ]),
        ]);
    let response = conn.send(12, request).await;
    let records = response.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(
        decode(records.clone()).len(),
        10,
        "exactly the first batch (KIP-74)"
    );
    assert!(records.len() >= one_batch_len - 8 && records.len() <= one_batch_len + 8);
    broker.stop().await;
}
