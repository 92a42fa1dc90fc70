//! Helpers that build record batches for tests and benchmarks, through the kafka-protocol
//! crate's encoder (an independent implementation of the format, so tests do not only check
//! this crate against itself). Not part of the supported API.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as WireCompression, Record, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType as WireTimestampType,
};

use crate::batch::Compression;

/// One record to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Rec {
    pub fn kv(key: &[u8], value: &[u8], timestamp: i64) -> Rec {
        Rec {
            key: Some(key.to_vec()),
            value: Some(value.to_vec()),
            timestamp,
            headers: Vec::new(),
        }
    }
    pub fn tombstone(key: &[u8], timestamp: i64) -> Rec {
        Rec {
            key: Some(key.to_vec()),
            value: None,
            timestamp,
            headers: Vec::new(),
        }
    }
    pub fn no_key(value: &[u8], timestamp: i64) -> Rec {
        Rec {
            key: None,
            value: Some(value.to_vec()),
            timestamp,
            headers: Vec::new(),
        }
    }
    pub fn header(mut self, key: &[u8], value: Option<&[u8]>) -> Rec {
        self.headers.push((key.to_vec(), value.map(<[u8]>::to_vec)));
        self
    }
}

/// Batch-level settings.
#[derive(Debug, Clone, Copy)]
pub struct BatchSpec {
    pub compression: Compression,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sequence of the first record (ignored without a producer id).
    pub base_sequence: i32,
    pub transactional: bool,
    pub control: bool,
    pub partition_leader_epoch: i32,
}

impl Default for BatchSpec {
    fn default() -> Self {
        BatchSpec {
            compression: Compression::None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
        }
    }
}

/// One batch of `records` with default settings (base offset 0, no producer).
pub fn batch_bytes(records: &[Rec]) -> Vec<u8> {
    batch_with(records, |_| {})
}

/// One batch of `records`, with settings changed by `configure`.
pub fn batch_with(records: &[Rec], configure: impl FnOnce(&mut BatchSpec)) -> Vec<u8> {
    let mut spec = BatchSpec::default();
    configure(&mut spec);
    encode(records, &spec).to_vec()
}

/// Encodes one batch. The kafka-protocol encoder starts a new batch whenever
/// `offset - sequence` changes, so sequences are chosen to keep that constant.
pub fn encode(records: &[Rec], spec: &BatchSpec) -> Bytes {
    let idempotent = spec.producer_id >= 0;
    let wire: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, rec)| Record {
            transactional: spec.transactional,
            control: spec.control,
            delete_horizon: false,
            partition_leader_epoch: spec.partition_leader_epoch,
            producer_id: spec.producer_id,
            producer_epoch: spec.producer_epoch,
            timestamp_type: WireTimestampType::Creation,
            offset: i as i64,
            sequence: if idempotent {
                crate::batch::increment_sequence(spec.base_sequence, i as i32)
            } else {
                i as i32 - 1
            },
            timestamp: rec.timestamp,
            key: rec.key.clone().map(Bytes::from),
            value: rec.value.clone().map(Bytes::from),
            headers: rec
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        StrBytes::from_utf8(Bytes::from(k.clone()))
                            .unwrap_or_else(|_| StrBytes::from_static_str("?")),
                        v.clone().map(Bytes::from),
                    )
                })
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let compression = match spec.compression {
        Compression::None => WireCompression::None,
        Compression::Gzip => WireCompression::Gzip,
        Compression::Snappy => WireCompression::Snappy,
        Compression::Lz4 => WireCompression::Lz4,
        Compression::Zstd => WireCompression::Zstd,
    };
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    if let Err(error) = RecordBatchEncoder::encode(&mut out, wire.iter(), &options) {
        panic!("test batch does not encode: {error}");
    }
    out.freeze()
}

/// `count` records of `value_size` bytes each with keys `key-<n>`, timestamps from
/// `timestamp`, in one batch.
pub fn sized_batch(count: usize, value_size: usize, timestamp: i64) -> Vec<u8> {
    let value = vec![b'x'; value_size];
    let records: Vec<Rec> = (0..count)
        .map(|i| Rec::kv(format!("key-{i}").as_bytes(), &value, timestamp + i as i64))
        .collect();
    batch_bytes(&records)
}
