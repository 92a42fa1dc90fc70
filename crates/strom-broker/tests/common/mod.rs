//! Test support: a real broker on 127.0.0.1:0 with its data in a temporary directory, and a raw
//! connection that speaks exact protocol versions (and malformed bytes when a test wants them).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_broker::{Broker, BrokerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every network wait in a test is bounded by this.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

pub struct TestBroker {
    pub broker: Option<Broker>,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    properties: Vec<(String, String)>,
}

impl TestBroker {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(properties: &[(&str, &str)]) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().to_path_buf();
        let properties = properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut broker = Self::boot(dir.clone(), properties).await;
        broker._temp = Some(temp);
        broker
    }

    async fn boot(dir: PathBuf, properties: Vec<(String, String)>) -> Self {
        let mut props: BTreeMap<String, String> = properties.iter().cloned().collect();
        props.insert("log.dirs".into(), dir.display().to_string());
        props
            .entry("listeners".into())
            .or_insert_with(|| "PLAINTEXT://127.0.0.1:0".into());
        let config = BrokerConfig::from_properties(props).expect("valid test config");
        let broker = Broker::start(config).await.expect("broker starts");
        TestBroker {
            addr: broker.local_addr(),
            broker: Some(broker),
            dir,
            _temp: None,
            properties,
        }
    }

    /// Stops the broker cleanly and starts it again on the same data directory.
    pub async fn restart(mut self) -> Self {
        if let Some(broker) = self.broker.take() {
            broker.shutdown().await.expect("clean shutdown");
        }
        let mut next = Self::boot(self.dir.clone(), self.properties.clone()).await;
        next._temp = self._temp.take();
        next
    }

    pub async fn connect(&self) -> Conn {
        Conn::connect(self.addr).await
    }

    pub async fn stop(mut self) {
        if let Some(broker) = self.broker.take() {
            broker.shutdown().await.expect("clean shutdown");
        }
    }
}

pub struct Conn {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Conn {
            stream,
            next_correlation_id: 1,
        }
    }

    /// Sends a request at `version` and decodes its response.
    pub async fn send<R: Request>(&mut self, version: i16, request: R) -> R::Response {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("strom-test")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .expect("encode header");
        let api = ApiKey::try_from(R::KEY)
            .map(|k| format!("{k:?}"))
            .unwrap_or_default();
        request
            .encode(&mut body, version)
            .unwrap_or_else(|e| panic!("encode {api} v{version} request: {e}"));
        let mut response = self.round_trip(&body).await.unwrap_or_else(|| {
            panic!("{api} v{version}: the broker closed the connection instead of answering")
        });
        let header = ResponseHeader::decode(&mut response, R::Response::header_version(version))
            .expect("response header");
        assert_eq!(
            header.correlation_id, correlation_id,
            "responses come in request order"
        );
        R::Response::decode(&mut response, version).expect("decode response")
    }

    /// Encodes a request frame body (header + request) without sending it.
    pub fn encode<R: Request>(&mut self, version: i16, request: R) -> (i32, BytesMut) {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id);
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .expect("encode header");
        request.encode(&mut body, version).expect("encode request");
        (correlation_id, body)
    }

    /// Reads the next response and decodes it as `R`'s response at `version`.
    pub async fn receive<R: Request>(&mut self, version: i16, correlation_id: i32) -> R::Response {
        let mut response = self.read_frame().await.expect("a response");
        let header = ResponseHeader::decode(&mut response, R::Response::header_version(version))
            .expect("response header");
        assert_eq!(
            header.correlation_id, correlation_id,
            "responses come in request order"
        );
        R::Response::decode(&mut response, version).expect("decode response")
    }

    /// Sends a request and expects no response (acks=0): the next request's response comes first.
    pub async fn send_no_response<R: Request>(&mut self, version: i16, request: R) {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id);
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .expect("encode header");
        request.encode(&mut body, version).expect("encode request");
        self.write_frame(&body).await;
    }

    /// Writes one length-prefixed frame.
    pub async fn write_frame(&mut self, body: &[u8]) {
        let mut frame = BytesMut::with_capacity(4 + body.len());
        frame.put_i32(body.len() as i32);
        frame.put_slice(body);
        self.write_raw(&frame).await;
    }

    pub async fn write_raw(&mut self, bytes: &[u8]) {
        tokio::time::timeout(IO_TIMEOUT, self.stream.write_all(bytes))
            .await
            .expect("write in time")
            .expect("write");
    }

    /// Writes a frame and reads one response frame body; `None` if the broker closed the
    /// connection instead.
    pub async fn round_trip(&mut self, body: &[u8]) -> Option<Bytes> {
        self.write_frame(body).await;
        self.read_frame().await
    }

    /// Reads one response frame body; `None` when the connection is closed.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        let read = tokio::time::timeout(IO_TIMEOUT, self.stream.read_exact(&mut size))
            .await
            .expect("the broker answers or closes in time");
        if read.is_err() {
            return None;
        }
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        tokio::time::timeout(IO_TIMEOUT, self.stream.read_exact(&mut body))
            .await
            .expect("the broker sends the whole frame in time")
            .ok()?;
        Some(Bytes::from(body))
    }

    /// True when the broker has closed this connection.
    pub async fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(IO_TIMEOUT, self.stream.read(&mut byte))
                .await
                .expect("closed in time"),
            Ok(0) | Err(_)
        )
    }

    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> CreateTopicsResponse {
        let topic = kafka_protocol::messages::create_topics_request::CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        kafka_protocol::messages::create_topics_request::CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_value(Some(StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            );
        self.send(
            7,
            CreateTopicsRequest::default()
                .with_topics(vec![topic])
                .with_timeout_ms(5000),
        )
        .await
    }

    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        acks: i16,
        batches: Bytes,
    ) -> produce_response::PartitionProduceResponse {
        let request = produce_request(topic, partition, acks, batches);
        let mut response = self.send(9, request).await;
        response.responses.remove(0).partition_responses.remove(0)
    }

    /// [`Conn::produce`] of a transactional producer: the request names its transactional id.
    pub async fn produce_transactional(
        &mut self,
        transactional_id: &str,
        topic: &str,
        partition: i32,
        batches: Bytes,
    ) -> produce_response::PartitionProduceResponse {
        let request = produce_request(topic, partition, -1, batches)
            .with_transactional_id(Some(TransactionalId(transactional_id.to_string().into())));
        let mut response = self.send(9, request).await;
        response.responses.remove(0).partition_responses.remove(0)
    }

    /// A transactional producer as a client starts one on a single broker: FindCoordinator
    /// (which creates `__transaction_state`), InitProducerId until the coordinator has loaded
    /// the id's partition, then AddPartitionsToTxn for `partitions`. Returns the producer id
    /// and epoch.
    pub async fn transactional_producer(
        &mut self,
        transactional_id: &str,
        partitions: &[(&str, i32)],
    ) -> (i64, i16) {
        let id = || TransactionalId(transactional_id.to_string().into());
        let found = self
            .send(
                4,
                FindCoordinatorRequest::default()
                    .with_key_type(1)
                    .with_coordinator_keys(vec![transactional_id.to_string().into()]),
            )
            .await;
        assert_eq!(found.coordinators[0].error_code, 0, "FindCoordinator");
        let mut init = None;
        // The coordinator loads the new topic's partitions as the broker learns it leads them:
        // until then it answers with a retriable error, as to any client.
        for _ in 0..500 {
            let response = self
                .send(
                    4,
                    InitProducerIdRequest::default()
                        .with_transactional_id(Some(id()))
                        .with_transaction_timeout_ms(60_000)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1),
                )
                .await;
            if response.error_code == 0 {
                init = Some((response.producer_id.0, response.producer_epoch));
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let (producer_id, epoch) =
            init.expect("InitProducerId succeeds once the coordinator loaded");
        let mut topics: Vec<add_partitions_to_txn_request::AddPartitionsToTxnTopic> = Vec::new();
        for (topic, partition) in partitions {
            topics.push(
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![*partition]),
            );
        }
        let added = self
            .send(
                3,
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(id())
                    .with_v3_and_below_producer_id(ProducerId(producer_id))
                    .with_v3_and_below_producer_epoch(epoch)
                    .with_v3_and_below_topics(topics),
            )
            .await;
        for topic in &added.results_by_topic_v3_and_below {
            for p in &topic.results_by_partition {
                assert_eq!(p.partition_error_code, 0, "AddPartitionsToTxn");
            }
        }
        (producer_id, epoch)
    }

    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
        min_bytes: i32,
    ) -> fetch_response::PartitionData {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(min_bytes)
            .with_max_bytes(50 * 1024 * 1024)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_current_leader_epoch(-1)
                            .with_last_fetched_epoch(-1)
                            .with_log_start_offset(-1)
                            .with_partition_max_bytes(10 * 1024 * 1024),
                    ]),
            ]);
        let mut response = self.send(12, request).await;
        assert_eq!(response.error_code, 0, "fetch top-level error");
        response.responses.remove(0).partitions.remove(0)
    }

    /// Fetches from `offset` until `count` records have arrived; returns them in order.
    pub async fn consume(
        &mut self,
        topic: &str,
        partition: i32,
        mut offset: i64,
        count: usize,
    ) -> Vec<Record> {
        let mut out = Vec::new();
        while out.len() < count {
            let data = self.fetch(topic, partition, offset, 1000, 1).await;
            assert_eq!(data.error_code, 0, "fetch error at offset {offset}");
            for record in decode(data.records.unwrap_or_default()) {
                if record.offset >= offset {
                    offset = record.offset + 1;
                    out.push(record);
                }
            }
        }
        out
    }

    pub async fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> list_offsets_response::ListOffsetsPartitionResponse {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![
                        list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(partition)
                            .with_current_leader_epoch(-1)
                            .with_timestamp(timestamp),
                    ]),
            ]);
        let mut response = self.send(8, request).await;
        response.topics.remove(0).partitions.remove(0)
    }
}

/// A Produce request with one partition's batches.
fn produce_request(topic: &str, partition: i32, acks: i16, batches: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batches)),
                ]),
        ])
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// A record with a key, a value, two headers and a timestamp.
pub fn record(i: i64, timestamp: i64) -> Record {
    let mut headers = IndexMap::new();
    headers.insert(
        StrBytes::from_static_str("h1"),
        Some(Bytes::from(format!("hv{i}"))),
    );
    headers.insert(StrBytes::from_static_str("h2"), None);
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        sequence: -1,
        timestamp_type: TimestampType::Creation,
        offset: i,
        timestamp,
        key: Some(Bytes::from(format!("key-{i}"))),
        value: Some(Bytes::from(format!("value-{i}"))),
        headers,
    }
}

/// Encodes records as one batch.
///
/// kafka-protocol's encoder keeps records in one batch only while `offset - sequence` stays
/// constant, so records without a producer get sequences that advance with their offsets from
/// -1: the batch's base sequence is then -1 ("no sequence"), as a non-idempotent batch needs.
pub fn batch(records: &[Record], compression: Compression) -> Bytes {
    let mut records = records.to_vec();
    if let Some(first) = records.first().map(|r| r.offset) {
        for r in records.iter_mut().filter(|r| r.producer_id < 0) {
            r.sequence = (r.offset - first) as i32 - 1;
        }
    }
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    let batch = buf.freeze();
    assert_eq!(
        i32::from_be_bytes(batch[8..12].try_into().unwrap()) as usize + 12,
        batch.len(),
        "the records fit one batch"
    );
    batch
}

/// `count` records starting at `first` as one batch, stamped now.
pub fn simple_batch(first: i64, count: i64) -> Bytes {
    let now = now_ms();
    let records: Vec<Record> = (first..first + count).map(|i| record(i, now)).collect();
    batch(&records, Compression::None)
}

/// An idempotent producer's batch.
pub fn idempotent_batch(producer_id: i64, epoch: i16, first_sequence: i32, count: i32) -> Bytes {
    let now = now_ms();
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let mut r = record(i as i64, now);
            r.producer_id = producer_id;
            r.producer_epoch = epoch;
            r.sequence = first_sequence + i;
            r
        })
        .collect();
    batch(&records, Compression::None)
}

/// A transactional producer's batch of `count` records stamped `now`.
pub fn transactional_batch_at(
    producer_id: i64,
    epoch: i16,
    first_sequence: i32,
    count: i32,
    now: i64,
) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let mut r = record(i64::from(i), now);
            r.producer_id = producer_id;
            r.producer_epoch = epoch;
            r.sequence = first_sequence + i;
            r.transactional = true;
            r
        })
        .collect();
    batch(&records, Compression::None)
}

pub fn decode(mut records: Bytes) -> Vec<Record> {
    let mut out = Vec::new();
    while records.remaining() > 0 {
        let set = RecordBatchDecoder::decode(&mut records).expect("whole, valid batches");
        out.extend(set.records);
    }
    out
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
