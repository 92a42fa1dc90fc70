//! The wire protocol around the messages: version negotiation and bad input.

mod common;

use bytes::{BufMut, BytesMut};
use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

#[tokio::test]
async fn api_versions_lists_every_served_api_with_flexible_versions() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let response = conn
        .send(
            3,
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("strom-test"))
                .with_client_software_version(StrBytes::from_static_str("1.0")),
        )
        .await;
    assert_eq!(response.error_code, 0);
    let produce = response
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce as i16)
        .unwrap();
    assert_eq!((produce.min_version, produce.max_version), (3, 13));
    let fetch = response
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Fetch as i16)
        .unwrap();
    assert!(
        fetch.max_version >= 12,
        "flexible fetch versions are served"
    );
    broker.stop().await;
}

#[tokio::test]
async fn api_versions_with_an_unknown_version_gets_a_v0_answer() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    // KIP-511: a client newer than the broker sends ApiVersions v99.
    let mut body = BytesMut::new();
    body.put_i16(ApiKey::ApiVersions as i16);
    body.put_i16(99);
    body.put_i32(42);
    body.put_i16(-1);
    body.put_u8(0);
    let mut frame = conn
        .round_trip(&body)
        .await
        .expect("an answer, not a closed connection");
    let header = ResponseHeader::decode(&mut frame, 0).unwrap();
    assert_eq!(header.correlation_id, 42);
    let response = ApiVersionsResponse::decode(&mut frame, 0).unwrap();
    assert_eq!(
        response.error_code,
        ResponseError::UnsupportedVersion.code()
    );
    assert!(
        response
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Metadata as i16)
    );
    // The connection stays usable for the retry at a version we share.
    let retry = conn
        .send(
            3,
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("x"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        )
        .await;
    assert_eq!(retry.error_code, 0);
    broker.stop().await;
}

#[tokio::test]
async fn api_versions_v3_refuses_an_invalid_software_name() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let response = conn
        .send(
            3,
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("bad name!"))
                .with_client_software_version(StrBytes::from_static_str("1.0")),
        )
        .await;
    assert_eq!(response.error_code, ResponseError::InvalidRequest.code());
    broker.stop().await;
}

#[tokio::test]
async fn oversized_frame_closes_the_connection_and_the_broker_keeps_serving() {
    let broker = TestBroker::start_with(&[("socket.request.max.bytes", "1024")]).await;
    let mut conn = broker.connect().await;
    let mut frame = BytesMut::new();
    frame.put_i32(10_000);
    frame.put_slice(&[0u8; 16]);
    conn.write_raw(&frame).await;
    assert!(conn.is_closed().await);
    let mut other = broker.connect().await;
    let response = other.send(0, ApiVersionsRequest::default()).await;
    assert_eq!(response.error_code, 0);
    broker.stop().await;
}

#[tokio::test]
async fn unknown_api_key_closes_the_connection() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let mut body = BytesMut::new();
    body.put_i16(9999);
    body.put_i16(0);
    body.put_i32(1);
    body.put_i16(-1);
    assert!(conn.round_trip(&body).await.is_none());
    broker.stop().await;
}

#[tokio::test]
async fn unsupported_version_of_a_known_api_closes_the_connection() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    // Produce v2 carries message sets, which Kafka 4 and Strom do not serve.
    let mut body = BytesMut::new();
    body.put_i16(ApiKey::Produce as i16);
    body.put_i16(2);
    body.put_i32(7);
    body.put_i16(-1);
    assert!(conn.round_trip(&body).await.is_none());
    broker.stop().await;
}

#[tokio::test]
async fn truncated_and_garbage_frames_close_the_connection() {
    let broker = TestBroker::start().await;
    for body in [
        vec![0u8, 3],                               // shorter than a header
        vec![0, 3, 0, 12, 0, 0, 0, 1, 0, 50, b'x'], // Metadata v12: client id runs past the end
        // Metadata v1: an array that claims 2^31-1 topics in a 14-byte frame.
        vec![0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff],
        // Metadata v12 (flexible): a compact array that claims 2^32-2 topics.
        vec![
            0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xff, 0x0f,
        ],
        // CreateTopics v7: an absurd number of configs inside one topic.
        vec![
            0, 19, 0, 7, 0, 0, 0, 1, 0xff, 0xff, 0, 2, 2, b't', 0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0,
            1, 0xff, 0xff, 0xff, 0xff, 0x0f,
        ],
    ] {
        let mut conn = broker.connect().await;
        assert!(conn.round_trip(&body).await.is_none(), "{body:?}");
    }
    let mut conn = broker.connect().await;
    assert_eq!(
        conn.send(0, ApiVersionsRequest::default()).await.error_code,
        0
    );
    broker.stop().await;
}

#[tokio::test]
async fn a_frame_split_across_many_writes_is_assembled() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(0)
        .with_correlation_id(5);
    let mut body = BytesMut::new();
    header.encode(&mut body, 1).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    for byte in frame.iter() {
        conn.write_raw(&[*byte]).await;
    }
    let mut response = conn.read_frame().await.unwrap();
    assert_eq!(
        ResponseHeader::decode(&mut response, 0)
            .unwrap()
            .correlation_id,
        5
    );
    broker.stop().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("pipelined", 1, &[]).await;
    // A long-polling fetch first, then metadata: the metadata answer must wait its turn.
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(300)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            fetch_request::FetchTopic::default()
                .with_topic(topic_name("pipelined"))
                .with_partitions(vec![
                    fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let mut frames = BytesMut::new();
    for (id, version, key) in [(100, 12i16, ApiKey::Fetch), (101, 12, ApiKey::Metadata)] {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(id);
        let mut body = BytesMut::new();
        header.encode(&mut body, 2).unwrap();
        match key {
            ApiKey::Fetch => fetch.encode(&mut body, version).unwrap(),
            _ => MetadataRequest::default()
                .encode(&mut body, version)
                .unwrap(),
        }
        frames.put_i32(body.len() as i32);
        frames.put_slice(&body);
    }
    conn.write_raw(&frames).await;
    let mut first = conn.read_frame().await.unwrap();
    let mut second = conn.read_frame().await.unwrap();
    assert_eq!(
        ResponseHeader::decode(&mut first, 1)
            .unwrap()
            .correlation_id,
        100
    );
    assert_eq!(
        ResponseHeader::decode(&mut second, 1)
            .unwrap()
            .correlation_id,
        101
    );
    broker.stop().await;
}

#[tokio::test]
async fn one_address_holds_at_most_max_connections_per_ip() {
    let broker = TestBroker::start_with(&[("max.connections.per.ip", "2")]).await;
    let mut first = broker.connect().await;
    let mut second = broker.connect().await;
    // Both are served.
    for conn in [&mut first, &mut second] {
        let versions = conn.send(0, ApiVersionsRequest::default()).await;
        assert_eq!(versions.error_code, 0);
    }
    // The third from the same address is closed at once.
    let mut third = broker.connect().await;
    assert!(third.is_closed().await);
    // Closing one frees its place once the broker has noticed; until then a new connection
    // may still be refused, so try a bounded number of times.
    drop(first);
    let mut served = false;
    for _ in 0..100 {
        if served_once(broker.addr).await {
            served = true;
            break;
        }
    }
    assert!(served, "a place was freed by closing a connection");
    broker.stop().await;
}

/// Connects, asks ApiVersions v0 and says whether an answer came (not a close).
async fn served_once(addr: std::net::SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let mut frame = BytesMut::new();
    frame.put_i32(10);
    frame.put_i16(18); // ApiVersions
    frame.put_i16(0);
    frame.put_i32(99);
    frame.put_i16(-1); // no client id
    if stream.write_all(&frame).await.is_err() {
        return false;
    }
    let mut size = [0u8; 4];
    matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_exact(&mut size)
        )
        .await,
        Ok(Ok(_))
    )
}
