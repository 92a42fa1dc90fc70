//! Records and Kafka's RecordBatch v2 format, encoded and decoded without IO.
//!
//! Producing: [`RecordBatchBuilder`] appends records straight into one growing buffer that
//! already reserves room for the batch header, so an uncompressed batch is finished by filling
//! in the header and CRC, without copying the records again. A compressed batch compresses the
//! record section once at [`RecordBatchBuilder::finish`] using kafka-protocol's Kafka-compatible
//! codecs (gzip, snappy with xerial framing, lz4 frames, zstd).
//!
//! Consuming: [`parse_batches`] splits the `records` bytes of a fetch response into batches,
//! stopping quietly at a partial trailing batch (a broker cuts the response at `max_bytes`), and
//! [`RecordBatch::records`] checks the CRC, decompresses and decodes the records, which keep
//! pointing into the fetched buffer rather than being copied.
//!
//! Why not kafka-protocol's `RecordBatchEncoder`/`RecordBatchDecoder`: their `Record` keeps
//! headers in an `IndexMap`, which cannot hold two headers with the same key, and Kafka allows
//! duplicate header keys (and applications rely on it). This module writes the same bytes for
//! records without duplicate headers; the tests check that against kafka-protocol both ways.
//!
//! The layout, all integers big-endian, varints zigzag-encoded like protobuf:
//! ```text
//! offset  size  field
//!      0     8  base offset
//!      8     4  batch length (bytes after this field)
//!     12     4  partition leader epoch
//!     16     1  magic (2)
//!     17     4  CRC-32C of bytes 21..end
//!     21     2  attributes: bits 0-2 compression, 3 timestamp type (1 = log append time),
//!               4 transactional, 5 control, 6 delete horizon
//!     23     4  last offset delta
//!     27     8  base timestamp
//!     35     8  max timestamp
//!     43     8  producer id
//!     51     2  producer epoch
//!     53     4  base sequence
//!     57     4  record count
//!     61     -  records (compressed as a whole when compression is not none), each:
//!               varint length, i8 attributes (unused), varlong timestamp delta,
//!               varint offset delta, varint key length (-1 = null), key,
//!               varint value length (-1 = null), value, varint header count, then per header:
//!               varint key length, key (UTF-8), varint value length (-1 = null), value
//! ```

use std::str::FromStr;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};

use crate::error::{Error, Result};

/// Size of the RecordBatch v2 header, up to and including the record count.
pub const RECORD_BATCH_HEADER_BYTES: usize = 61;

/// Bytes before the batch length field's payload: base offset (8) + batch length (4).
const LOG_OVERHEAD: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const MAGIC_V2: i8 = 2;

const ATTRIBUTE_COMPRESSION_MASK: i16 = 0x07;
const ATTRIBUTE_LOG_APPEND_TIME: i16 = 1 << 3;
const ATTRIBUTE_TRANSACTIONAL: i16 = 1 << 4;
const ATTRIBUTE_CONTROL: i16 = 1 << 5;

/// One record header. Keys may repeat; order is preserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header key.
    pub key: String,
    /// The header value; `None` is a null value, distinct from an empty one.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with `key` and `value`.
    pub fn new(key: impl Into<String>, value: Option<impl Into<Bytes>>) -> Header {
        Header {
            key: key.into(),
            value: value.map(Into::into),
        }
    }
}

/// A record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The topic to write to. An `Arc` so that a loop producing to one topic clones a pointer
    /// per record instead of allocating the name again.
    pub topic: Arc<str>,
    /// An explicit partition; `None` lets the partitioner choose (murmur2 of the key, or sticky
    /// for null keys).
    pub partition: Option<i32>,
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers in order, duplicates allowed.
    pub headers: Vec<Header>,
    /// Creation timestamp in milliseconds since the epoch; `None` uses the current time.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with `value`, no key, no headers.
    pub fn new(topic: impl Into<Arc<str>>, value: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets an explicit partition.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, key: impl Into<String>, value: Option<impl Into<Bytes>>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }

    /// Sets the creation timestamp (ms since the epoch).
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }
}

/// Whether a record's timestamp was set by the producer or by the broker on append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Set by the producer (`CreateTime`).
    CreateTime,
    /// Set by the broker when it appended the batch (`LogAppendTime`).
    LogAppendTime,
}

/// A record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic (shared by all records of a fetch, so cloning is cheap).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Timestamp in ms; see `timestamp_type`.
    pub timestamp: i64,
    /// Who set the timestamp.
    pub timestamp_type: TimestampType,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null.
    pub value: Option<Bytes>,
    /// Headers in order, duplicates preserved.
    pub headers: Vec<Header>,
    /// The leader epoch stamped on the record's batch, if any.
    pub leader_epoch: Option<i32>,
}

/// A compression codec for record batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy (xerial framing, as the Java client writes it).
    Snappy,
    /// LZ4 frames.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// Every codec, in attribute order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec's id in the batch attributes.
    pub fn attribute(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec for an attribute id.
    pub fn from_attribute(id: i16) -> Result<Compression> {
        Ok(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => {
                return Err(Error::CorruptRecordBatch(format!(
                    "unknown compression codec id {other}"
                )));
            }
        })
    }

    /// Kafka's name for the codec (`compression.type`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    fn compress(self, records: &[u8], out: &mut BytesMut) -> Result<()> {
        let copy = |tmp: &mut BytesMut| {
            tmp.extend_from_slice(records);
            Ok(())
        };
        let result = match self {
            Compression::None => {
                out.extend_from_slice(records);
                Ok(())
            }
            Compression::Gzip => Gzip::compress(out, copy),
            Compression::Snappy => Snappy::compress(out, copy),
            Compression::Lz4 => Lz4::compress(out, copy),
            Compression::Zstd => Zstd::compress(out, copy),
        };
        result.map_err(|e| Error::encode(format!("{} record batch", self.name()), e))
    }

    fn decompress(self, mut records: Bytes) -> Result<Bytes> {
        let take = |b: &mut Bytes| Ok(std::mem::take(b));
        let result = match self {
            Compression::None => return Ok(records),
            Compression::Gzip => Gzip::decompress(&mut records, take),
            Compression::Snappy => Snappy::decompress(&mut records, take),
            Compression::Lz4 => Lz4::decompress(&mut records, take),
            Compression::Zstd => Zstd::decompress(&mut records, take),
        };
        result.map_err(|e| {
            Error::CorruptRecordBatch(format!("{} decompression failed: {e}", self.name()))
        })
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = Error;

    fn from_str(s: &str) -> Result<Compression> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown compression '{s}' (expected none, gzip, snappy, lz4 or zstd)"
                ))
            })
    }
}

/// Batch-level fields written into the header by [`RecordBatchBuilder::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Base offset; producers write 0 and the broker assigns the real one.
    pub base_offset: i64,
    /// Partition leader epoch; producers write -1.
    pub partition_leader_epoch: i32,
    /// Producer id, -1 without idempotence.
    pub producer_id: i64,
    /// Producer epoch, -1 without idempotence.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 without idempotence.
    pub base_sequence: i32,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
    /// Whether the timestamps are log-append times.
    pub log_append_time: bool,
    /// Whether this is a control batch (transaction markers).
    pub control: bool,
}

impl Default for BatchHeader {
    fn default() -> Self {
        BatchHeader {
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            log_append_time: false,
            control: false,
        }
    }
}

/// Accumulates records into one RecordBatch v2.
#[derive(Debug)]
pub struct RecordBatchBuilder {
    /// `RECORD_BATCH_HEADER_BYTES` reserved bytes followed by the encoded records.
    buf: BytesMut,
    compression: Compression,
    record_count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl RecordBatchBuilder {
    /// An empty batch with room for `capacity` bytes before it has to grow.
    pub fn new(compression: Compression, capacity: usize) -> RecordBatchBuilder {
        let mut buf = BytesMut::with_capacity(capacity.max(RECORD_BATCH_HEADER_BYTES));
        buf.put_bytes(0, RECORD_BATCH_HEADER_BYTES);
        RecordBatchBuilder {
            buf,
            compression,
            record_count: 0,
            base_timestamp: 0,
            max_timestamp: i64::MIN,
        }
    }

    /// Number of records appended so far.
    pub fn record_count(&self) -> i32 {
        self.record_count
    }

    /// True when no record was appended.
    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// The batch size so far, uncompressed, header included.
    pub fn size_in_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The compression the batch will use.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Appends a record and returns its offset delta within the batch.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<i32> {
        let offset_delta = self.record_count;
        if offset_delta == i32::MAX {
            return Err(Error::InvalidArgument("record batch is full".into()));
        }
        if self.record_count == 0 {
            self.base_timestamp = timestamp;
        }
        let timestamp_delta = timestamp.wrapping_sub(self.base_timestamp);
        for (what, len) in [
            ("key", key.map_or(0, <[u8]>::len)),
            ("value", value.map_or(0, <[u8]>::len)),
        ] {
            if len > i32::MAX as usize {
                return Err(Error::InvalidArgument(format!("record {what} too large")));
            }
        }
        let body = record_body_size(timestamp_delta, offset_delta, key, value, headers);
        let body = i32::try_from(body)
            .map_err(|_| Error::InvalidArgument(format!("record of {body} bytes too large")))?;
        put_varint(&mut self.buf, body);
        self.buf.put_i8(0); // record attributes: unused
        put_varlong(&mut self.buf, timestamp_delta);
        put_varint(&mut self.buf, offset_delta);
        put_nullable_bytes(&mut self.buf, key);
        put_nullable_bytes(&mut self.buf, value);
        put_varint(&mut self.buf, len_i32(headers.len()));
        for header in headers {
            put_nullable_bytes(&mut self.buf, Some(header.key.as_bytes()));
            put_nullable_bytes(&mut self.buf, header.value.as_deref());
        }
        self.record_count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        Ok(offset_delta)
    }

    /// Finishes the batch: compresses the records if asked, fills in the header and CRC.
    pub fn finish(self, header: &BatchHeader) -> Result<Bytes> {
        let RecordBatchBuilder {
            buf,
            compression,
            record_count,
            base_timestamp,
            max_timestamp,
        } = self;
        let mut batch = if compression == Compression::None {
            buf
        } else {
            let records = &buf[RECORD_BATCH_HEADER_BYTES..];
            let mut out = BytesMut::with_capacity(RECORD_BATCH_HEADER_BYTES + records.len() / 2);
            out.put_bytes(0, RECORD_BATCH_HEADER_BYTES);
            compression.compress(records, &mut out)?;
            out
        };
        let batch_length = i32::try_from(batch.len() - LOG_OVERHEAD)
            .map_err(|_| Error::encode("record batch", "larger than 2 GiB"))?;
        let mut attributes = compression.attribute();
        if header.log_append_time {
            attributes |= ATTRIBUTE_LOG_APPEND_TIME;
        }
        if header.transactional {
            attributes |= ATTRIBUTE_TRANSACTIONAL;
        }
        if header.control {
            attributes |= ATTRIBUTE_CONTROL;
        }
        let max_timestamp = if record_count == 0 { -1 } else { max_timestamp };
        let base_timestamp = if record_count == 0 {
            -1
        } else {
            base_timestamp
        };
        {
            let mut h = &mut batch[..RECORD_BATCH_HEADER_BYTES];
            h.put_i64(header.base_offset);
            h.put_i32(batch_length);
            h.put_i32(header.partition_leader_epoch);
            h.put_i8(MAGIC_V2);
            h.put_u32(0); // CRC, filled in below
            h.put_i16(attributes);
            h.put_i32(record_count.saturating_sub(1).max(0));
            h.put_i64(base_timestamp);
            h.put_i64(max_timestamp);
            h.put_i64(header.producer_id);
            h.put_i16(header.producer_epoch);
            h.put_i32(header.base_sequence);
            h.put_i32(record_count);
        }
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(batch.freeze())
    }
}

/// An upper bound on the bytes a record adds to a batch (uncompressed): its fields with the
/// largest possible deltas (10-byte timestamp, 5-byte offset) and a 5-byte length prefix.
pub fn record_size_upper_bound(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    record_body_size(i64::MAX, i32::MAX, key, value, headers) + 5
}

fn len_i32(len: usize) -> i32 {
    // Callers bound every length to i32 before encoding; saturate rather than wrap regardless.
    i32::try_from(len).unwrap_or(i32::MAX)
}

fn record_body_size(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let mut size = 1 + varlong_size(timestamp_delta) + varint_size(offset_delta);
    size += nullable_bytes_size(key);
    size += nullable_bytes_size(value);
    size += varint_size(len_i32(headers.len()));
    for header in headers {
        size += nullable_bytes_size(Some(header.key.as_bytes()));
        size += nullable_bytes_size(header.value.as_deref());
    }
    size
}

fn nullable_bytes_size(bytes: Option<&[u8]>) -> usize {
    match bytes {
        None => varint_size(-1),
        Some(b) => varint_size(len_i32(b.len())) + b.len(),
    }
}

fn put_nullable_bytes(buf: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, len_i32(b.len()));
            buf.put_slice(b);
        }
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn varlong_size(value: i64) -> usize {
    let bits = 64 - (zigzag(value) | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn varint_size(value: i32) -> usize {
    varlong_size(i64::from(value))
}

fn put_varlong(buf: &mut BytesMut, value: i64) {
    let mut v = zigzag(value);
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_varint(buf: &mut BytesMut, value: i32) {
    // Zigzag of an i32 widened to i64 equals the 32-bit zigzag, so one encoder serves both.
    put_varlong(buf, i64::from(value));
}

fn get_varlong(buf: &mut Bytes) -> Result<i64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        if !buf.has_remaining() {
            return Err(corrupt("record truncated inside a varint"));
        }
        let byte = buf.get_u8();
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(corrupt("varint longer than 10 bytes"))
}

fn get_varint(buf: &mut Bytes) -> Result<i32> {
    let value = get_varlong(buf)?;
    i32::try_from(value).map_err(|_| corrupt("varint out of i32 range"))
}

fn get_nullable_bytes(buf: &mut Bytes) -> Result<Option<Bytes>> {
    let len = get_varint(buf)?;
    match len {
        -1 => Ok(None),
        len if len < -1 => Err(corrupt("negative length")),
        len => {
            let len = len as usize;
            if buf.remaining() < len {
                return Err(corrupt("record truncated inside a field"));
            }
            Ok(Some(buf.split_to(len)))
        }
    }
}

fn corrupt(reason: &str) -> Error {
    Error::CorruptRecordBatch(reason.to_owned())
}

/// One record batch as read from the wire: its header fields and its (possibly compressed)
/// record section, still undecoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Partition leader epoch stamped by the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// Raw attributes (compression, timestamp type, transactional, control).
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp the record deltas are relative to.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch (the log-append time for log-append-time batches).
    pub max_timestamp: i64,
    /// Producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
    /// The CRC stored in the batch.
    pub crc: u32,
    /// Whether the stored CRC matches the bytes.
    pub crc_valid: bool,
    /// The whole batch as it was on the wire.
    pub raw: Bytes,
}

impl RecordBatch {
    /// The batch's compression codec.
    pub fn compression(&self) -> Result<Compression> {
        Compression::from_attribute(self.attributes & ATTRIBUTE_COMPRESSION_MASK)
    }

    /// Who set the timestamps.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & ATTRIBUTE_LOG_APPEND_TIME != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// True for batches written inside a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTRIBUTE_TRANSACTIONAL != 0
    }

    /// True for control batches (transaction markers), which carry no application records.
    pub fn is_control(&self) -> bool {
        self.attributes & ATTRIBUTE_CONTROL != 0
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// The leader epoch, `None` when unset (-1).
    pub fn leader_epoch(&self) -> Option<i32> {
        (self.partition_leader_epoch >= 0).then_some(self.partition_leader_epoch)
    }

    /// Checks the CRC, decompresses and decodes every record.
    pub fn records(&self) -> Result<Vec<DecodedRecord>> {
        let mut records = Vec::with_capacity(self.record_count.clamp(0, 4096) as usize);
        self.for_each_record(|r| {
            records.push(r);
            Ok(())
        })?;
        Ok(records)
    }

    /// Checks the CRC, decompresses and hands each decoded record to `f` in offset order.
    pub fn for_each_record(&self, mut f: impl FnMut(DecodedRecord) -> Result<()>) -> Result<()> {
        if !self.crc_valid {
            return Err(Error::CorruptRecordBatch(format!(
                "CRC mismatch in batch at offset {}: stored {:#010x}",
                self.base_offset, self.crc
            )));
        }
        if self.record_count < 0 {
            return Err(corrupt("negative record count"));
        }
        let mut data = self
            .compression()?
            .decompress(self.raw.slice(RECORD_BATCH_HEADER_BYTES..))?;
        let log_append_time = self.timestamp_type() == TimestampType::LogAppendTime;
        for _ in 0..self.record_count {
            let length = get_varint(&mut data)?;
            let length = usize::try_from(length).map_err(|_| corrupt("negative record length"))?;
            if data.remaining() < length {
                return Err(corrupt("record longer than its batch"));
            }
            let mut record = data.split_to(length);
            let _attributes = record.try_get_i8().map_err(|_| corrupt("empty record"))?;
            let timestamp_delta = get_varlong(&mut record)?;
            let offset_delta = get_varint(&mut record)?;
            let key = get_nullable_bytes(&mut record)?;
            let value = get_nullable_bytes(&mut record)?;
            let header_count = get_varint(&mut record)?;
            let header_count =
                usize::try_from(header_count).map_err(|_| corrupt("negative header count"))?;
            // Each header takes at least two bytes, which bounds the allocation by the input.
            let mut headers = Vec::with_capacity(header_count.min(record.remaining() / 2));
            for _ in 0..header_count {
                let key =
                    get_nullable_bytes(&mut record)?.ok_or_else(|| corrupt("null header key"))?;
                let value = get_nullable_bytes(&mut record)?;
                headers.push(Header {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    value,
                });
            }
            if record.has_remaining() {
                return Err(corrupt("bytes left over inside a record"));
            }
            // For log-append-time batches every record carries the append time, which the
            // broker stores as the batch's max timestamp.
            let timestamp = if log_append_time {
                self.max_timestamp
            } else {
                self.base_timestamp.wrapping_add(timestamp_delta)
            };
            f(DecodedRecord {
                offset: self.base_offset + i64::from(offset_delta),
                timestamp,
                key,
                value,
                headers,
            })?;
        }
        Ok(())
    }
}

/// One record decoded from a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    /// Absolute offset.
    pub offset: i64,
    /// Absolute timestamp (ms).
    pub timestamp: i64,
    /// Key, `None` for null.
    pub key: Option<Bytes>,
    /// Value, `None` for null.
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<Header>,
}

/// Splits `data` (a fetch response's `records`, or a produce request's) into batches.
///
/// A partial batch at the end is not an error: brokers cut fetch responses at the byte limit,
/// so the tail is dropped and [`ParsedBatches::partial_tail_bytes`] says how much was dropped.
/// A complete batch with a bad CRC is returned with `crc_valid == false` (decoding its records
/// then fails); a malformed header or a magic other than 2 is an error.
pub fn parse_batches(data: &Bytes) -> Result<ParsedBatches> {
    let mut batches = Vec::new();
    let mut position = 0;
    while data.len() - position >= LOG_OVERHEAD {
        let rest = &data[position..];
        let batch_length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let batch_length =
            usize::try_from(batch_length).map_err(|_| corrupt("negative batch length"))?;
        if batch_length < RECORD_BATCH_HEADER_BYTES - LOG_OVERHEAD {
            // Too short to be any batch: if the magic byte is there, say which format it is.
            if rest.len() > MAGIC_OFFSET && rest[MAGIC_OFFSET] as i8 != MAGIC_V2 {
                return Err(unsupported_magic(rest[MAGIC_OFFSET] as i8));
            }
            return Err(Error::CorruptRecordBatch(format!(
                "batch length {batch_length} is shorter than a batch header"
            )));
        }
        let total = LOG_OVERHEAD + batch_length;
        if rest.len() < total {
            break;
        }
        let raw = data.slice(position..position + total);
        batches.push(parse_batch(raw)?);
        position += total;
    }
    Ok(ParsedBatches {
        batches,
        partial_tail_bytes: data.len() - position,
    })
}

fn unsupported_magic(magic: i8) -> Error {
    Error::CorruptRecordBatch(format!(
        "record format with magic {magic} is not supported (only RecordBatch v2)"
    ))
}

fn parse_batch(raw: Bytes) -> Result<RecordBatch> {
    let mut h = &raw[..RECORD_BATCH_HEADER_BYTES];
    let base_offset = h.get_i64();
    let _batch_length = h.get_i32();
    let partition_leader_epoch = h.get_i32();
    let magic = h.get_i8();
    if magic != MAGIC_V2 {
        return Err(unsupported_magic(magic));
    }
    let crc = h.get_u32();
    let attributes = h.get_i16();
    let last_offset_delta = h.get_i32();
    let base_timestamp = h.get_i64();
    let max_timestamp = h.get_i64();
    let producer_id = h.get_i64();
    let producer_epoch = h.get_i16();
    let base_sequence = h.get_i32();
    let record_count = h.get_i32();
    let crc_valid = crc32c::crc32c(&raw[ATTRIBUTES_OFFSET..]) == crc;
    Ok(RecordBatch {
        base_offset,
        partition_leader_epoch,
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        record_count,
        crc,
        crc_valid,
        raw,
    })
}

/// The result of [`parse_batches`].
#[derive(Debug, Clone)]
pub struct ParsedBatches {
    /// The complete batches, in order.
    pub batches: Vec<RecordBatch>,
    /// Bytes at the end that did not form a complete batch.
    pub partial_tail_bytes: usize,
}

/// A transaction the broker reports as aborted in a read_committed fetch: records of
/// `producer_id` from `first_offset` up to its abort marker are to be skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// The producer whose transaction aborted.
    pub producer_id: i64,
    /// The first offset of the aborted transaction.
    pub first_offset: i64,
}

/// Decodes fetched `data` into consumer records, skipping records below `fetch_offset` (a fetch
/// returns whole batches, which may start before the requested offset), control batches, and
/// batches of `aborted` transactions (read_committed; pass an empty slice otherwise).
/// Returns the offset to fetch next: past the last complete batch, or `fetch_offset` when there
/// was none.
pub fn decode_fetched_records(
    topic: &Arc<str>,
    partition: i32,
    data: &Bytes,
    fetch_offset: i64,
    aborted: &[AbortedTransaction],
    out: &mut Vec<ConsumerRecord>,
) -> Result<i64> {
    let parsed = parse_batches(data)?;
    let mut next_offset = fetch_offset;
    let mut aborted: Vec<AbortedTransaction> = aborted.to_vec();
    // Sorted by first offset, descending, so the next one to start is at the end.
    aborted.sort_by_key(|a| std::cmp::Reverse(a.first_offset));
    let mut aborting_producers: Vec<i64> = Vec::new();
    for batch in &parsed.batches {
        if batch.next_offset() <= fetch_offset {
            continue;
        }
        next_offset = next_offset.max(batch.next_offset());
        while aborted
            .last()
            .is_some_and(|a| a.first_offset <= batch.last_offset())
        {
            if let Some(a) = aborted.pop() {
                aborting_producers.push(a.producer_id);
            }
        }
        if batch.is_control() {
            if is_abort_marker(batch)? {
                aborting_producers.retain(|p| *p != batch.producer_id);
            }
            continue;
        }
        if batch.is_transactional() && aborting_producers.contains(&batch.producer_id) {
            continue;
        }
        let timestamp_type = batch.timestamp_type();
        let leader_epoch = batch.leader_epoch();
        batch.for_each_record(|r| {
            if r.offset >= fetch_offset {
                out.push(ConsumerRecord {
                    topic: Arc::clone(topic),
                    partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    timestamp_type,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                    leader_epoch,
                });
            }
            Ok(())
        })?;
    }
    Ok(next_offset)
}

/// A control batch's record key is `i16 version, i16 type`; type 0 is an abort marker.
fn is_abort_marker(batch: &RecordBatch) -> Result<bool> {
    let mut abort = false;
    batch.for_each_record(|r| {
        if let Some(key) = r.key.as_deref()
            && key.len() >= 4
        {
            abort = i16::from_be_bytes([key[2], key[3]]) == 0;
        }
        Ok(())
    })?;
    Ok(abort)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{
        Compression as KpCompression, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
        Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType as KpTimestampType,
    };

    /// (timestamp, key, value, headers)
    type Sample = (i64, Option<Bytes>, Option<Bytes>, Vec<Header>);

    fn sample_records() -> Vec<Sample> {
        vec![
            (
                1_700_000_000_000,
                Some(Bytes::from_static(b"key-1")),
                Some(Bytes::from_static(b"value-1")),
                vec![
                    Header::new("trace", Some("a")),
                    Header::new("trace", Some("b")),
                    Header::new("empty", Some("")),
                    Header::new("null", None::<Bytes>),
                    Header::new("trace", None::<Bytes>),
                ],
            ),
            (
                1_700_000_000_005,
                None,
                Some(Bytes::from_static(b"no key")),
                vec![],
            ),
            (
                1_699_999_999_990,
                Some(Bytes::from_static(b"tombstone")),
                None,
                vec![],
            ),
            (1_700_000_000_007, None, None, vec![]),
            (
                1_700_000_000_009,
                Some(Bytes::from(vec![0u8; 300])),
                Some(Bytes::from(vec![7u8; 5000])),
                vec![Header::new("big", Some(vec![1u8; 200]))],
            ),
        ]
    }

    fn build(compression: Compression, header: &BatchHeader) -> Bytes {
        let mut builder = RecordBatchBuilder::new(compression, 1024);
        for (ts, key, value, headers) in sample_records() {
            builder
                .append(ts, key.as_deref(), value.as_deref(), &headers)
                .unwrap();
        }
        builder.finish(header).unwrap()
    }

    #[test]
    fn records_round_trip_with_every_compression() {
        for compression in Compression::ALL {
            let header = BatchHeader {
                base_offset: 42,
                producer_id: 7,
                producer_epoch: 1,
                base_sequence: 100,
                ..BatchHeader::default()
            };
            let bytes = build(compression, &header);
            let parsed = parse_batches(&bytes).unwrap();
            assert_eq!(parsed.partial_tail_bytes, 0, "{compression}");
            assert_eq!(parsed.batches.len(), 1);
            let batch = &parsed.batches[0];
            assert!(batch.crc_valid, "{compression}");
            assert_eq!(batch.compression().unwrap(), compression);
            assert_eq!(batch.base_offset, 42);
            assert_eq!(batch.last_offset_delta, 4);
            assert_eq!(batch.producer_id, 7);
            assert_eq!(batch.producer_epoch, 1);
            assert_eq!(batch.base_sequence, 100);
            assert_eq!(batch.record_count, 5);
            assert_eq!(batch.base_timestamp, 1_700_000_000_000);
            assert_eq!(batch.max_timestamp, 1_700_000_000_009);
            let decoded = batch.records().unwrap();
            let expected = sample_records();
            assert_eq!(decoded.len(), expected.len());
            for (i, (record, (ts, key, value, headers))) in decoded.iter().zip(expected).enumerate()
            {
                assert_eq!(record.offset, 42 + i as i64, "{compression}");
                assert_eq!(record.timestamp, ts);
                assert_eq!(record.key, key);
                assert_eq!(record.value, value);
                assert_eq!(record.headers, headers, "{compression} record {i}");
            }
        }
    }

    #[test]
    fn compressed_batches_are_smaller_for_repetitive_data() {
        let plain = build(Compression::None, &BatchHeader::default());
        for compression in &Compression::ALL[1..] {
            let compressed = build(*compression, &BatchHeader::default());
            assert!(
                compressed.len() < plain.len(),
                "{compression}: {} >= {}",
                compressed.len(),
                plain.len()
            );
        }
    }

    fn kp_record(offset: i64, ts: i64, key: Option<Bytes>, value: Option<Bytes>) -> KpRecord {
        KpRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: KpTimestampType::Creation,
            offset,
            // kafka-protocol starts a new batch whenever offset - sequence changes; keep it
            // constant with a base sequence of -1 (no idempotence), as our builder writes.
            sequence: offset as i32 - 1,
            timestamp: ts,
            key,
            value,
            headers: [
                ("h1".into(), Some(Bytes::from_static(b"v1"))),
                ("h2".into(), None),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn uncompressed_encoding_matches_kafka_protocol_byte_for_byte() {
        // kafka-protocol uses the minimum timestamp as the base; with increasing timestamps the
        // minimum is the first record's, so both encoders must produce identical bytes.
        let inputs = [
            (
                1000,
                Some(Bytes::from_static(b"k")),
                Some(Bytes::from_static(b"v")),
            ),
            (1001, None, Some(Bytes::from_static(b"value two"))),
            (1005, Some(Bytes::from_static(b"k3")), None),
        ];
        let kp_records: Vec<KpRecord> = inputs
            .iter()
            .enumerate()
            .map(|(i, (ts, k, v))| kp_record(i as i64, *ts, k.clone(), v.clone()))
            .collect();
        let mut theirs = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut theirs,
            &kp_records,
            &RecordEncodeOptions {
                version: 2,
                compression: KpCompression::None,
            },
        )
        .unwrap();

        let headers = [
            Header::new("h1", Some("v1")),
            Header::new("h2", None::<Bytes>),
        ];
        let mut builder = RecordBatchBuilder::new(Compression::None, 0);
        for (ts, k, v) in &inputs {
            builder
                .append(*ts, k.as_deref(), v.as_deref(), &headers)
                .unwrap();
        }
        let ours = builder.finish(&BatchHeader::default()).unwrap();
        assert_eq!(ours, theirs.freeze());
    }

    #[test]
    fn kafka_protocol_decodes_our_batches_for_every_compression() {
        for compression in Compression::ALL {
            let mut builder = RecordBatchBuilder::new(compression, 0);
            builder
                .append(
                    5,
                    Some(b"key"),
                    Some(b"value"),
                    &[Header::new("a", Some("1"))],
                )
                .unwrap();
            builder.append(6, None, None, &[]).unwrap();
            let mut bytes = builder.finish(&BatchHeader::default()).unwrap();
            let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
            assert_eq!(set.records.len(), 2, "{compression}");
            assert_eq!(set.records[0].key.as_deref(), Some(&b"key"[..]));
            assert_eq!(set.records[0].value.as_deref(), Some(&b"value"[..]));
            assert_eq!(set.records[0].headers.len(), 1);
            assert_eq!(set.records[1].key, None);
            assert_eq!(set.records[1].value, None);
            assert_eq!(set.records[1].offset, 1);
            assert_eq!(set.records[1].timestamp, 6);
        }
    }

    #[test]
    fn we_decode_kafka_protocol_batches_for_every_compression() {
        let kinds = [
            (Compression::None, KpCompression::None),
            (Compression::Gzip, KpCompression::Gzip),
            (Compression::Snappy, KpCompression::Snappy),
            (Compression::Lz4, KpCompression::Lz4),
            (Compression::Zstd, KpCompression::Zstd),
        ];
        for (ours, theirs) in kinds {
            let records = vec![
                kp_record(0, 10, Some(Bytes::from_static(b"a")), None),
                kp_record(1, 11, None, Some(Bytes::from_static(b"b"))),
            ];
            let mut buf = BytesMut::new();
            RecordBatchEncoder::encode(
                &mut buf,
                &records,
                &RecordEncodeOptions {
                    version: 2,
                    compression: theirs,
                },
            )
            .unwrap();
            let parsed = parse_batches(&buf.freeze()).unwrap();
            assert_eq!(parsed.batches[0].compression().unwrap(), ours);
            let decoded = parsed.batches[0].records().unwrap();
            assert_eq!(decoded.len(), 2);
            assert_eq!(decoded[0].key.as_deref(), Some(&b"a"[..]));
            assert_eq!(decoded[0].value, None);
            assert_eq!(decoded[1].value.as_deref(), Some(&b"b"[..]));
            assert_eq!(
                decoded[0].headers,
                vec![
                    Header::new("h1", Some("v1")),
                    Header::new("h2", None::<Bytes>)
                ]
            );
        }
    }

    fn two_batches() -> Bytes {
        let mut all = BytesMut::new();
        for (base, count) in [(0i64, 3), (3, 2)] {
            let mut builder = RecordBatchBuilder::new(Compression::None, 0);
            for i in 0..count {
                let value = format!("v{}", base + i);
                builder
                    .append(100, None, Some(value.as_bytes()), &[])
                    .unwrap();
            }
            let batch = builder
                .finish(&BatchHeader {
                    base_offset: base,
                    partition_leader_epoch: 3,
                    ..BatchHeader::default()
                })
                .unwrap();
            all.extend_from_slice(&batch);
        }
        all.freeze()
    }

    #[test]
    fn partial_trailing_batch_is_dropped_not_an_error() {
        let all = two_batches();
        let first_len = parse_batches(&all).unwrap().batches[0].raw.len();
        for cut in [first_len + 1, first_len + 11, first_len + 12, all.len() - 1] {
            let truncated = all.slice(..cut);
            let parsed = parse_batches(&truncated).unwrap();
            assert_eq!(parsed.batches.len(), 1, "cut at {cut}");
            assert_eq!(parsed.partial_tail_bytes, cut - first_len);
        }
    }

    #[test]
    fn fetched_records_below_the_fetch_offset_are_skipped() {
        let all = two_batches();
        let topic: Arc<str> = Arc::from("t");
        let mut out = Vec::new();
        let next = decode_fetched_records(&topic, 0, &all, 1, &[], &mut out).unwrap();
        assert_eq!(next, 5);
        let offsets: Vec<i64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![1, 2, 3, 4]);
        assert_eq!(out[0].value.as_deref(), Some(&b"v1"[..]));
        assert_eq!(out[0].leader_epoch, Some(3));

        out.clear();
        let next = decode_fetched_records(&topic, 0, &all, 4, &[], &mut out).unwrap();
        assert_eq!(next, 5);
        assert_eq!(out.len(), 1);

        out.clear();
        let next = decode_fetched_records(&topic, 0, &all.slice(..20), 7, &[], &mut out).unwrap();
        assert_eq!(next, 7, "no complete batch: stay at the fetch offset");
        assert!(out.is_empty());
    }

    fn batch(base_offset: i64, producer_id: i64, transactional: bool, values: &[&str]) -> Bytes {
        let mut builder = RecordBatchBuilder::new(Compression::None, 0);
        for v in values {
            builder.append(1, None, Some(v.as_bytes()), &[]).unwrap();
        }
        builder
            .finish(&BatchHeader {
                base_offset,
                producer_id,
                producer_epoch: 0,
                base_sequence: 0,
                transactional,
                ..BatchHeader::default()
            })
            .unwrap()
    }

    fn marker(offset: i64, producer_id: i64, commit: bool) -> Bytes {
        let mut builder = RecordBatchBuilder::new(Compression::None, 0);
        let key = [0u8, 0, 0, u8::from(commit)];
        let value = [0u8, 0, 0, 0, 0, 0];
        builder.append(1, Some(&key), Some(&value), &[]).unwrap();
        builder
            .finish(&BatchHeader {
                base_offset: offset,
                producer_id,
                producer_epoch: 0,
                transactional: true,
                control: true,
                ..BatchHeader::default()
            })
            .unwrap()
    }

    #[test]
    fn read_committed_skips_aborted_transactions_and_markers() {
        let mut data = BytesMut::new();
        data.extend_from_slice(&batch(0, 7, true, &["aborted-1", "aborted-2"]));
        data.extend_from_slice(&batch(2, 8, true, &["committed"]));
        data.extend_from_slice(&marker(3, 7, false));
        data.extend_from_slice(&marker(4, 8, true));
        data.extend_from_slice(&batch(5, 7, true, &["later, not aborted"]));
        data.extend_from_slice(&batch(6, -1, false, &["plain"]));
        let data = data.freeze();
        let topic: Arc<str> = Arc::from("t");
        let aborted = [AbortedTransaction {
            producer_id: 7,
            first_offset: 0,
        }];
        let mut out = Vec::new();
        let next = decode_fetched_records(&topic, 0, &data, 0, &aborted, &mut out).unwrap();
        assert_eq!(next, 7);
        let values: Vec<&[u8]> = out.iter().filter_map(|r| r.value.as_deref()).collect();
        assert_eq!(
            values,
            vec![&b"committed"[..], b"later, not aborted", b"plain"]
        );

        // read_uncommitted (no aborted list) sees everything except the markers.
        out.clear();
        decode_fetched_records(&topic, 0, &data, 0, &[], &mut out).unwrap();
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn corrupted_batch_fails_its_crc() {
        let bytes = build(Compression::None, &BatchHeader::default());
        let mut corrupted = BytesMut::from(&bytes[..]);
        let last = corrupted.len() - 1;
        corrupted[last] ^= 0xff;
        let parsed = parse_batches(&corrupted.freeze()).unwrap();
        assert!(!parsed.batches[0].crc_valid);
        let err = parsed.batches[0].records().unwrap_err();
        assert!(matches!(err, Error::CorruptRecordBatch(_)), "{err}");
    }

    #[test]
    fn base_offset_is_not_covered_by_the_crc() {
        // Brokers assign offsets by rewriting the base offset; the CRC must still hold.
        let bytes = build(Compression::Lz4, &BatchHeader::default());
        let mut moved = BytesMut::from(&bytes[..]);
        moved[..8].copy_from_slice(&1234i64.to_be_bytes());
        let parsed = parse_batches(&moved.freeze()).unwrap();
        assert!(parsed.batches[0].crc_valid);
        assert_eq!(parsed.batches[0].records().unwrap()[0].offset, 1234);
    }

    #[test]
    fn legacy_magic_is_rejected() {
        let bytes = build(Compression::None, &BatchHeader::default());
        let mut legacy = BytesMut::from(&bytes[..]);
        legacy[MAGIC_OFFSET] = 1;
        let err = parse_batches(&legacy.freeze()).unwrap_err();
        assert!(err.to_string().contains("magic 1"), "{err}");
    }

    #[test]
    fn log_append_time_batches_report_the_append_time() {
        let mut builder = RecordBatchBuilder::new(Compression::None, 0);
        builder.append(10, None, Some(b"a"), &[]).unwrap();
        builder.append(20, None, Some(b"b"), &[]).unwrap();
        let bytes = builder
            .finish(&BatchHeader {
                log_append_time: true,
                ..BatchHeader::default()
            })
            .unwrap();
        let batch = &parse_batches(&bytes).unwrap().batches[0];
        assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
        let records = batch.records().unwrap();
        assert!(records.iter().all(|r| r.timestamp == 20));
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for value in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ] {
            let mut buf = BytesMut::new();
            put_varlong(&mut buf, value);
            assert_eq!(buf.len(), varlong_size(value), "{value}");
            let mut bytes = buf.freeze();
            assert_eq!(get_varlong(&mut bytes).unwrap(), value);
            assert!(bytes.is_empty());
        }
    }

    #[test]
    fn compression_names_parse() {
        for c in Compression::ALL {
            assert_eq!(c.name().parse::<Compression>().unwrap(), c);
        }
        assert_eq!("ZSTD".parse::<Compression>().unwrap(), Compression::Zstd);
        assert!("brotli".parse::<Compression>().is_err());
    }
}
