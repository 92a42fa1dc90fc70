//! Writes the seed corpus of every target into fuzz/corpus/: real requests encoded by the codec,
//! record batches built by `strom_log::testing`, small segments. Run it after a format change:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.

use std::path::Path;

use bytes::BytesMut;
use strom_log::batch::{self, Compression};
use strom_log::testing::{Rec, batch_bytes, batch_with};
use strom_protocol::body::every_request_version_range;
use strom_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use strom_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use strom_protocol::kafka_protocol::messages::*;
use strom_protocol::kafka_protocol::protocol::{Request, StrBytes};

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    requests(&corpus.join("request_decode"));
    batches(&corpus.join("record_batch"));
    segments(&corpus.join("log_recovery"));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus directory");
    std::fs::write(dir.join(name), bytes).expect("seed file");
}

/// The target's input for `request` at `version`: API index, version offset, body.
fn request_input<R: Request>(request: &R, version: i16) -> Vec<u8> {
    let apis = every_request_version_range();
    let index = apis
        .iter()
        .position(|(key, _)| *key as i16 == R::KEY)
        .expect("known API");
    let min = apis[index].1.min;
    let mut input = vec![index as u8, (version - min) as u8];
    let mut body = BytesMut::new();
    request.encode(&mut body, version).expect("encode");
    input.extend_from_slice(&body);
    input
}

fn requests(dir: &Path) {
    let topic = |name: &'static str| TopicName(StrBytes::from_static_str(name));
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic("orders"))),
        MetadataRequestTopic::default().with_name(Some(topic("events"))),
    ]));
    write(dir, "metadata-v1", &request_input(&metadata, 1));
    write(dir, "metadata-v12", &request_input(&metadata, 12));
    let records = batch_bytes(&[Rec::kv(b"k", b"v", 1_700_000_000_000)]);
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic("orders"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records.into())),
                ]),
        ]);
    write(dir, "produce-v3", &request_input(&produce, 3));
    write(dir, "produce-v9", &request_input(&produce, 9));
    let fetch = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_max_bytes(52_428_800)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic("orders"))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    write(dir, "fetch-v4", &request_input(&fetch, 4));
    write(dir, "fetch-v12", &request_input(&fetch, 12));
    let api_versions = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("strom"))
        .with_client_software_version(StrBytes::from_static_str("0.1"));
    write(dir, "api-versions-v3", &request_input(&api_versions, 3));
}

fn batches(dir: &Path) {
    let records = [
        Rec::kv(b"key", b"value", 1_700_000_000_000),
        Rec::no_key(b"second", 1_700_000_000_001).header(b"h", Some(b"x")),
        Rec::tombstone(b"key", 1_700_000_000_002),
    ];
    write(dir, "plain", &batch_bytes(&records));
    for (name, codec) in [
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        write(
            dir,
            name,
            &batch_with(&records, |spec| spec.compression = codec),
        );
    }
    let idempotent = batch_with(&records, |spec| {
        spec.producer_id = 7;
        spec.producer_epoch = 0;
        spec.base_sequence = 0;
        spec.transactional = true;
    });
    write(dir, "transactional", &idempotent);
}

/// A segment of three batches at offsets 0, 3 and 6, in the target's input format.
fn segments(dir: &Path) {
    let mut log = Vec::new();
    for base in [0i64, 3, 6] {
        let mut one = batch_bytes(&[
            Rec::kv(b"a", b"1", 1_700_000_000_000 + base),
            Rec::kv(b"b", b"2", 1_700_000_000_001 + base),
            Rec::kv(b"c", b"3", 1_700_000_000_002 + base),
        ]);
        batch::set_base_offset(&mut one, base);
        log.extend_from_slice(&one);
    }
    // An index entry for offset 3 at the second batch, a time index entry for it.
    let second = log.len() / 3;
    let mut index = Vec::new();
    index.extend_from_slice(&3u32.to_be_bytes());
    index.extend_from_slice(&(second as u32).to_be_bytes());
    let mut time_index = Vec::new();
    time_index.extend_from_slice(&1_700_000_000_005i64.to_be_bytes());
    time_index.extend_from_slice(&3u32.to_be_bytes());
    for (name, flags, with_indexes) in [
        ("unclean", 0u8, true),
        ("unclean-fix-crcs", 2, true),
        ("clean", 1, true),
        ("two-segments", 8, false),
    ] {
        let mut input = vec![flags];
        input.extend_from_slice(&(log.len() as u16).to_be_bytes());
        input.extend_from_slice(&log);
        if with_indexes {
            // The target splits what follows the log in half: index, then time index.
            let mut padded_index = index.clone();
            padded_index.resize(time_index.len(), 0);
            input.extend_from_slice(&padded_index);
            input.extend_from_slice(&time_index);
        }
        write(dir, name, &input);
    }
}
