//! Record batches in Kafka's v2 format (magic 2): header view, validation, iteration over
//! concatenated batches, record parsing and encoding, and the in-place patches a leader applies
//! before writing a producer's batch.
//!
//! The bytes a producer sends are the bytes stored in a segment and the bytes a consumer
//! fetches, so this module never re-encodes a batch on the append or fetch path: it reads the
//! fixed 61-byte header, checks it, and patches the few fields the leader owns (base offset,
//! partition leader epoch, LogAppendTime) in the caller's buffer. Records are only parsed where
//! a topic rule needs them (compaction keys, timestamp lookups, the cleaner).
//!
//! # RecordBatch v2, byte by byte (all integers big-endian)
//!
//! | offset | size | field                                                             |
//! |-------:|-----:|-------------------------------------------------------------------|
//! |      0 |    8 | base offset (i64)                                                 |
//! |      8 |    4 | batch length (i32): bytes after this field                        |
//! |     12 |    4 | partition leader epoch (i32)                                      |
//! |     16 |    1 | magic (i8) = 2                                                    |
//! |     17 |    4 | CRC32C (u32) of bytes 21..end                                     |
//! |     21 |    2 | attributes (i16), see below                                       |
//! |     23 |    4 | last offset delta (i32)                                           |
//! |     27 |    8 | base timestamp (i64), or the delete horizon when bit 6 is set      |
//! |     35 |    8 | max timestamp (i64)                                               |
//! |     43 |    8 | producer id (i64), -1 when none                                   |
//! |     51 |    2 | producer epoch (i16)                                              |
//! |     53 |    4 | base sequence (i32)                                               |
//! |     57 |    4 | records count (i32)                                               |
//! |     61 |    … | records, compressed as a whole when the codec is not `none`       |
//!
//! Attributes: bits 0-2 compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd), bit 3
//! timestamp type (1 = LogAppendTime), bit 4 transactional, bit 5 control, bit 6 delete horizon
//! set (KIP-534). The CRC does not cover the base offset, the length, the leader epoch or the
//! magic, so a leader rewrites base offset and leader epoch without recomputing it.
//!
//! # Record, byte by byte (varints are zigzag-encoded, as in protobuf)
//!
//! `length: varint` (bytes after this field), `attributes: i8` (unused, 0),
//! `timestamp delta: varlong` (from the base timestamp), `offset delta: varint` (from the base
//! offset), `key length: varint` (-1 = null) + key, `value length: varint` (-1 = null, a
//! tombstone) + value, `header count: varint`, then per header `key length: varint` + key and
//! `value length: varint` (-1 = null) + value.

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes before the batch length field ends: base offset (8) + batch length (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed batch header, up to and including the records count.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// The smallest legal value of the batch length field (a header with no records).
pub const BATCH_LENGTH_MIN: i32 = (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32;
/// The only record format this engine stores.
pub const MAGIC_V2: i8 = 2;
/// Producer id of a batch that has none.
pub const NO_PRODUCER_ID: i64 = -1;
/// Sequence of a batch that has none.
pub const NO_SEQUENCE: i32 = -1;

const BATCH_LENGTH_OFFSET: usize = 8;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
/// The batch's leading bytes that the CRC does not cover and a leader rewrites on append: base
/// offset, batch length and partition leader epoch.
pub const UNCHECKED_PREFIX_BYTES: usize = PARTITION_LEADER_EPOCH_OFFSET + 4;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORDS_COUNT_OFFSET: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
pub(crate) const TRANSACTIONAL_BIT: i16 = 1 << 4;
pub(crate) const CONTROL_BIT: i16 = 1 << 5;
const DELETE_HORIZON_BIT: i16 = 1 << 6;

/// The smallest encoded record: one byte each for length, attributes, timestamp delta, offset
/// delta, key length, value length and header count.
const RECORD_SIZE_MIN: usize = 7;

/// Why bytes are not a valid record batch, or a run of stored batches is not a valid piece of
/// a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than a batch header or than the batch length announces.
    #[error("record batch truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    /// The batch length field is below the header size or negative.
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// The magic byte is not 2.
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
    /// The stored CRC32C does not match the bytes.
    #[error("CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    /// Compression codec bits 5, 6 or 7.
    #[error("unknown compression codec {0}")]
    UnknownCompression(i16),
    /// The records count or last offset delta is impossible.
    #[error("records count {records_count} does not fit last offset delta {last_offset_delta}")]
    InvalidRecordCount {
        records_count: i32,
        last_offset_delta: i32,
    },
    /// A produce request with no batch at all.
    #[error("no record batch in the request")]
    Empty,
    /// A record inside the batch does not parse.
    #[error("malformed record: {0}")]
    MalformedRecord(&'static str),
    /// The compressed records do not decompress.
    #[error("cannot decompress records ({codec:?}): {reason}")]
    Decompression { codec: Compression, reason: String },
    /// A stored batch's base offset is negative, or its last offset does not fit an i64.
    #[error("invalid base offset {base_offset} (last offset delta {last_offset_delta})")]
    InvalidBaseOffset {
        base_offset: i64,
        last_offset_delta: i32,
    },
    /// A stored batch starts at or below the last offset of the batch before it.
    #[error(
        "batch at offset {base_offset} does not follow the previous batch ending at {previous_last_offset}"
    )]
    OffsetsNotIncreasing {
        base_offset: i64,
        previous_last_offset: i64,
    },
    /// A stored batch carries a partition leader epoch older than the one before it: leader
    /// epochs never decrease along a valid log.
    #[error("partition leader epoch {epoch} after epoch {previous}")]
    LeaderEpochDecreased { epoch: i32, previous: i32 },
}

/// The compression codec of a batch (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn from_attributes(attributes: i16) -> Result<Compression, BatchError> {
        match attributes & COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }

    /// The codec's id in the attribute bits.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

/// How strict validation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// A producer's batch: at least one record, and exactly `last_offset_delta + 1` of them.
    Produce,
    /// A stored batch: the cleaner may have removed records but kept the batch's last offset,
    /// so `0 <= records_count <= last_offset_delta + 1`.
    Stored,
}

/// The fixed 61-byte header of a v2 record batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    /// The base timestamp, or the delete horizon when [`BatchHeader::has_delete_horizon`].
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Decodes the header at the start of `buf` without checking anything but its size.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < RECORD_BATCH_OVERHEAD {
            return Err(BatchError::Truncated {
                needed: RECORD_BATCH_OVERHEAD,
                available: buf.len(),
            });
        }
        Ok(BatchHeader {
            base_offset: read_i64(buf, 0),
            batch_length: read_i32(buf, BATCH_LENGTH_OFFSET),
            partition_leader_epoch: read_i32(buf, PARTITION_LEADER_EPOCH_OFFSET),
            magic: buf[MAGIC_OFFSET] as i8,
            crc: read_u32(buf, CRC_OFFSET),
            attributes: read_i16(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA_OFFSET),
            base_timestamp: read_i64(buf, BASE_TIMESTAMP_OFFSET),
            max_timestamp: read_i64(buf, MAX_TIMESTAMP_OFFSET),
            producer_id: read_i64(buf, PRODUCER_ID_OFFSET),
            producer_epoch: read_i16(buf, PRODUCER_EPOCH_OFFSET),
            base_sequence: read_i32(buf, BASE_SEQUENCE_OFFSET),
            records_count: read_i32(buf, RECORDS_COUNT_OFFSET),
        })
    }

    /// Checks the header fields that do not need the records: length, magic, codec, counts.
    pub fn check(&self, validation: Validation) -> Result<(), BatchError> {
        if self.batch_length < BATCH_LENGTH_MIN {
            return Err(BatchError::InvalidLength(self.batch_length));
        }
        if self.magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(self.magic));
        }
        let compression = Compression::from_attributes(self.attributes)?;
        let count_ok = match validation {
            Validation::Produce => {
                self.records_count >= 1
                    && self.last_offset_delta >= 0
                    && i64::from(self.records_count) == i64::from(self.last_offset_delta) + 1
            }
            Validation::Stored => {
                self.records_count >= 0
                    && self.last_offset_delta >= 0
                    && i64::from(self.records_count) <= i64::from(self.last_offset_delta) + 1
            }
        };
        // Uncompressed records take at least RECORD_SIZE_MIN bytes each, so a count that
        // cannot fit in the payload is a lie we can catch without parsing records.
        let payload = self.batch_length as usize - BATCH_LENGTH_MIN as usize;
        let fits = compression != Compression::None
            || (self.records_count.max(0) as usize).saturating_mul(RECORD_SIZE_MIN) <= payload;
        if !count_ok || !fits {
            return Err(BatchError::InvalidRecordCount {
                records_count: self.records_count,
                last_offset_delta: self.last_offset_delta,
            });
        }
        Ok(())
    }

    /// Total size of the batch in bytes, including the base offset and length fields.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }
    /// Offset of the batch's last record (kept by the cleaner even if that record is gone).
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
    /// The compression codec; `Compression::None` for unknown bits (rejected by `check`).
    pub fn compression(&self) -> Compression {
        Compression::from_attributes(self.attributes).unwrap_or(Compression::None)
    }
    /// Timestamp type bit: true when the records carry LogAppendTime.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }
    pub fn timestamp_type(&self) -> crate::TimestampType {
        if self.is_log_append_time() {
            crate::TimestampType::LogAppendTime
        } else {
            crate::TimestampType::CreateTime
        }
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_BIT != 0
    }
    /// The delete horizon set by the cleaner (KIP-534): tombstones in this batch may be
    /// removed once the wall clock passes it.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        self.has_delete_horizon().then_some(self.base_timestamp)
    }
    /// Whether the batch belongs to an idempotent or transactional producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// Sequence of the last record, wrapping at `i32::MAX` like Kafka.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return NO_SEQUENCE;
        }
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// Adds `increment` to a producer sequence, wrapping from `i32::MAX` to 0.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// CRC32C of a batch as it should be stored: bytes 21..end.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_OFFSET..).unwrap_or(&[]))
}

/// Validates `batch`, which must be exactly one whole batch: header, length against the
/// buffer, magic, codec, record count, and CRC32C.
pub fn validate(batch: &[u8], validation: Validation) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    header.check(validation)?;
    if header.size() != batch.len() {
        return Err(BatchError::Truncated {
            needed: header.size(),
            available: batch.len(),
        });
    }
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// One batch inside a buffer of concatenated batches.
#[derive(Debug, Clone, Copy)]
pub struct BatchRef<'a> {
    /// Byte position of the batch in the buffer.
    pub position: usize,
    pub header: BatchHeader,
    /// The whole batch, header included.
    pub bytes: &'a [u8],
}

/// Iterates over concatenated batches, checking each header and its length against the
/// buffer (not the CRC: call [`validate`] on `bytes` for that). A batch that runs past the end
/// of the buffer is an error, so a caller that reads a chunk of a segment should use
/// [`BatchHeaders`] instead.
pub struct Batches<'a> {
    buf: &'a [u8],
    position: usize,
    validation: Validation,
    failed: bool,
}

/// Iterates over the concatenated batches of `buf`.
pub fn batches(buf: &[u8], validation: Validation) -> Batches<'_> {
    Batches {
        buf,
        position: 0,
        validation,
        failed: false,
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<BatchRef<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.position..];
        let result = BatchHeader::parse(rest).and_then(|header| {
            header.check(self.validation)?;
            if header.size() > rest.len() {
                return Err(BatchError::Truncated {
                    needed: header.size(),
                    available: rest.len(),
                });
            }
            Ok(header)
        });
        match result {
            Ok(header) => {
                let batch = BatchRef {
                    position: self.position,
                    header,
                    bytes: &rest[..header.size()],
                };
                self.position += header.size();
                Some(Ok(batch))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

/// Walks the headers of the whole batches at the start of a chunk read from a segment, and
/// stops quietly at a batch cut by the chunk's end. Used by fetch reads and index lookups:
/// the stored bytes were validated when written, so only framing is checked here.
pub struct BatchHeaders<'a> {
    buf: &'a [u8],
    position: usize,
}

pub fn batch_headers(buf: &[u8]) -> BatchHeaders<'_> {
    BatchHeaders { buf, position: 0 }
}

impl BatchHeaders<'_> {
    /// Byte position after the last whole batch yielded so far.
    pub fn position(&self) -> usize {
        self.position
    }
    /// When the walk stopped at a batch the chunk cuts, that batch's header (if readable).
    pub fn peek_cut(&self) -> Option<BatchHeader> {
        BatchHeader::parse(self.buf.get(self.position..)?).ok()
    }
}

impl Iterator for BatchHeaders<'_> {
    /// Position of the batch in the chunk and its header.
    type Item = (usize, BatchHeader);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.position..)?;
        let header = BatchHeader::parse(rest).ok()?;
        if header.batch_length < BATCH_LENGTH_MIN || header.size() > rest.len() {
            return None;
        }
        let position = self.position;
        self.position += header.size();
        Some((position, header))
    }
}

/// Sets the base offset (not covered by the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Sets the partition leader epoch (not covered by the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

/// Stamps LogAppendTime: sets the timestamp-type bit and the max timestamp, then recomputes
/// the CRC, as Kafka's leader does for topics with `message.timestamp.type=LogAppendTime`.
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) {
    let attributes = read_i16(batch, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&timestamp_ms.to_be_bytes());
    update_crc(batch);
}

/// Recomputes and stores the CRC32C of a batch.
pub fn update_crc(batch: &mut [u8]) {
    let crc = compute_crc(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// One record of a batch, borrowed from the (decompressed) records payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The header count varint and the headers, as encoded.
    pub headers: &'a [u8],
}

/// The records payload of a batch: the bytes after the header, decompressed when needed.
/// Borrowed for uncompressed batches, owned after decompression.
pub enum RecordsPayload<'a> {
    Borrowed(&'a [u8]),
    Owned(Bytes),
}

impl RecordsPayload<'_> {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            RecordsPayload::Borrowed(slice) => slice,
            RecordsPayload::Owned(bytes) => bytes,
        }
    }
}

/// The records payload of a whole batch, decompressed if the batch is compressed.
pub fn records_payload(batch: &[u8]) -> Result<RecordsPayload<'_>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let raw = batch
        .get(RECORD_BATCH_OVERHEAD..header.size().min(batch.len()))
        .unwrap_or(&[]);
    let compression = Compression::from_attributes(header.attributes)?;
    if compression == Compression::None {
        return Ok(RecordsPayload::Borrowed(raw));
    }
    decompress(compression, raw).map(RecordsPayload::Owned)
}

/// The most bytes a batch's records may decompress to. Decompression happens only on cold
/// paths (null-key checks on compacted topics, timestamp lookups, the cleaner), and this bound
/// keeps a hostile "compression bomb" from exhausting memory there.
pub const DECOMPRESSED_RECORDS_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Decompresses a records payload, refusing output larger than
/// [`DECOMPRESSED_RECORDS_BYTES_MAX`].
fn decompress(codec: Compression, raw: &[u8]) -> Result<Bytes, BatchError> {
    use std::io::Read;
    let fail = |reason: String| BatchError::Decompression { codec, reason };
    let limit = DECOMPRESSED_RECORDS_BYTES_MAX as u64;
    let mut out = Vec::new();
    let read_bounded = |reader: &mut dyn Read, out: &mut Vec<u8>| -> Result<(), BatchError> {
        reader
            .take(limit + 1)
            .read_to_end(out)
            .map_err(|error| fail(error.to_string()))?;
        if out.len() as u64 > limit {
            return Err(fail(format!("decompresses to more than {limit} bytes")));
        }
        Ok(())
    };
    match codec {
        Compression::None => out.extend_from_slice(raw),
        Compression::Gzip => read_bounded(&mut flate2::read::GzDecoder::new(raw), &mut out)?,
        Compression::Lz4 => {
            let mut decoder = lz4::Decoder::new(raw).map_err(|error| fail(error.to_string()))?;
            read_bounded(&mut decoder, &mut out)?;
        }
        Compression::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::new(raw).map_err(|error| fail(error.to_string()))?;
            read_bounded(&mut decoder, &mut out)?;
        }
        Compression::Snappy => snappy_decompress(raw, &mut out).map_err(fail)?,
    }
    Ok(Bytes::from(out))
}

/// The header Java's snappy-java puts before its framed blocks; Kafka producers use it.
const XERIAL_SNAPPY_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_SNAPPY_HEADER_LEN: usize = 16;

/// Snappy as Kafka clients write it: either snappy-java's framing (16-byte header, then blocks
/// of `u32` length + raw snappy block) or one raw snappy block. Every block's announced
/// length is checked against the limit before anything is allocated.
fn snappy_decompress(raw: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut decoder = snap::raw::Decoder::new();
    let mut block = |input: &[u8], out: &mut Vec<u8>| -> Result<(), String> {
        let length = snap::raw::decompress_len(input).map_err(|error| error.to_string())?;
        if out.len().saturating_add(length) > DECOMPRESSED_RECORDS_BYTES_MAX {
            return Err(format!(
                "decompresses to more than {DECOMPRESSED_RECORDS_BYTES_MAX} bytes"
            ));
        }
        let start = out.len();
        out.resize(start + length, 0);
        decoder
            .decompress(input, &mut out[start..])
            .map_err(|error| error.to_string())?;
        Ok(())
    };
    if !raw.starts_with(XERIAL_SNAPPY_MAGIC) {
        return block(raw, out);
    }
    let mut rest = raw.get(XERIAL_SNAPPY_HEADER_LEN..).unwrap_or(&[]);
    while !rest.is_empty() {
        let (length, tail) = rest
            .split_first_chunk::<4>()
            .ok_or("snappy block length cut short")?;
        let length = u32::from_be_bytes(*length) as usize;
        let input = tail
            .get(..length)
            .ok_or("snappy block past the batch end")?;
        block(input, out)?;
        rest = &tail[length..];
    }
    Ok(())
}

/// Compresses an encoded records payload with `codec` into `out`.
pub fn compress_into(codec: Compression, records: &[u8], out: &mut BytesMut) -> Result<(), String> {
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
    let fill = |tmp: &mut BytesMut| {
        tmp.put_slice(records);
        Ok(())
    };
    let result = match codec {
        Compression::None => {
            out.put_slice(records);
            Ok(())
        }
        Compression::Gzip => Gzip::compress(out, fill),
        Compression::Snappy => Snappy::compress(out, fill),
        Compression::Lz4 => Lz4::compress(out, fill),
        Compression::Zstd => Zstd::compress(out, fill),
    };
    result.map_err(|error| error.to_string())
}

/// Iterates over the records of a records payload.
pub struct Records<'a> {
    buf: &'a [u8],
    remaining: usize,
    failed: bool,
}

/// Parses `count` records from `payload` (the output of [`records_payload`]).
pub fn records(payload: &[u8], count: i32) -> Records<'_> {
    Records {
        buf: payload,
        remaining: count.max(0) as usize,
        failed: false,
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RecordRef<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let result = parse_record(&mut self.buf);
        if result.is_err() {
            self.failed = true;
        }
        Some(result)
    }
}

fn parse_record<'a>(buf: &mut &'a [u8]) -> Result<RecordRef<'a>, BatchError> {
    let length = read_varint(buf)?;
    if length < 0 || length as usize > buf.len() {
        return Err(BatchError::MalformedRecord(
            "record length past the batch end",
        ));
    }
    let (mut record, rest) = buf.split_at(length as usize);
    *buf = rest;
    let attributes = *record
        .first()
        .ok_or(BatchError::MalformedRecord("empty record"))? as i8;
    record = &record[1..];
    let timestamp_delta = read_varlong(&mut record)?;
    let offset_delta = read_varint(&mut record)?;
    let key = read_nullable_bytes(&mut record)?;
    let value = read_nullable_bytes(&mut record)?;
    let headers = record;
    let mut cursor = record;
    let header_count = read_varint(&mut cursor)?;
    if header_count < 0 {
        return Err(BatchError::MalformedRecord("negative header count"));
    }
    for _ in 0..header_count {
        let header_key = read_nullable_bytes(&mut cursor)?;
        if header_key.is_none() {
            return Err(BatchError::MalformedRecord("null header key"));
        }
        read_nullable_bytes(&mut cursor)?;
    }
    if !cursor.is_empty() {
        return Err(BatchError::MalformedRecord(
            "bytes after the record headers",
        ));
    }
    Ok(RecordRef {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

/// Appends one record to `out` with the given deltas, copying key, value and the raw headers.
pub fn encode_record(
    out: &mut Vec<u8>,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[u8],
) {
    let mut body = Vec::with_capacity(
        16 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + headers.len(),
    );
    body.push(0);
    write_varlong(&mut body, timestamp_delta);
    write_varlong(&mut body, i64::from(offset_delta));
    write_nullable_bytes(&mut body, key);
    write_nullable_bytes(&mut body, value);
    body.extend_from_slice(headers);
    write_varlong(out, body.len() as i64);
    out.extend_from_slice(&body);
}

/// The fields of a batch header that a builder sets; offsets, length and CRC are derived.
#[derive(Debug, Clone, Copy)]
pub struct BatchFields {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

/// Writes a whole batch from header fields and an encoded (uncompressed) records payload,
/// compressing it with the codec in `fields.attributes`. Returns the batch bytes.
pub fn build_batch(fields: &BatchFields, records: &[u8]) -> Result<BytesMut, BatchError> {
    let codec = Compression::from_attributes(fields.attributes)?;
    let mut out = BytesMut::with_capacity(RECORD_BATCH_OVERHEAD + records.len());
    out.put_i64(fields.base_offset);
    out.put_i32(0);
    out.put_i32(fields.partition_leader_epoch);
    out.put_i8(MAGIC_V2);
    out.put_u32(0);
    out.put_i16(fields.attributes);
    out.put_i32(fields.last_offset_delta);
    out.put_i64(fields.base_timestamp);
    out.put_i64(fields.max_timestamp);
    out.put_i64(fields.producer_id);
    out.put_i16(fields.producer_epoch);
    out.put_i32(fields.base_sequence);
    out.put_i32(fields.records_count);
    if codec == Compression::None || fields.records_count == 0 {
        out.put_slice(records);
    } else {
        compress_into(codec, records, &mut out)
            .map_err(|reason| BatchError::Decompression { codec, reason })?;
    }
    let length =
        i32::try_from(out.len() - LOG_OVERHEAD).map_err(|_| BatchError::InvalidLength(-1))?;
    out[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
    update_crc(&mut out);
    Ok(out)
}

/// Attribute bits with the delete-horizon flag set or cleared.
pub fn attributes_with_delete_horizon(attributes: i16, set: bool) -> i16 {
    if set {
        attributes | DELETE_HORIZON_BIT
    } else {
        attributes & !DELETE_HORIZON_BIT
    }
}

fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}
fn read_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}
fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}
fn read_i64(buf: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(bytes)
}

fn read_varlong(buf: &mut &[u8]) -> Result<i64, BatchError> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf
            .split_first()
            .ok_or(BatchError::MalformedRecord("varint past the record end"))?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(BatchError::MalformedRecord("varint longer than 10 bytes"))
}

fn read_varint(buf: &mut &[u8]) -> Result<i32, BatchError> {
    let value = read_varlong(buf)?;
    i32::try_from(value).map_err(|_| BatchError::MalformedRecord("varint out of i32 range"))
}

fn read_nullable_bytes<'a>(buf: &mut &'a [u8]) -> Result<Option<&'a [u8]>, BatchError> {
    let length = read_varint(buf)?;
    if length < 0 {
        return Ok(None);
    }
    let length = length as usize;
    if length > buf.len() {
        return Err(BatchError::MalformedRecord("field past the record end"));
    }
    let (bytes, rest) = buf.split_at(length);
    *buf = rest;
    Ok(Some(bytes))
}

fn write_varlong(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn write_nullable_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => write_varlong(out, -1),
        Some(bytes) => {
            write_varlong(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rec, batch_bytes, batch_with};
    use proptest::prelude::*;

    #[test]
    fn header_fields_round_trip_through_the_encoder() {
        let bytes = batch_with(
            &[Rec::kv(b"k", b"v", 1_000), Rec::kv(b"k2", b"v2", 1_005)],
            |b| {
                b.producer_id = 7;
                b.producer_epoch = 3;
                b.base_sequence = 11;
            },
        );
        let header = validate(&bytes, Validation::Produce).expect("valid batch");
        assert_eq!(header.base_offset, 0);
        assert_eq!(header.records_count, 2);
        assert_eq!(header.last_offset_delta, 1);
        assert_eq!(header.base_timestamp, 1_000);
        assert_eq!(header.max_timestamp, 1_005);
        assert_eq!(header.producer_id, 7);
        assert_eq!(header.producer_epoch, 3);
        assert_eq!(header.base_sequence, 11);
        assert_eq!(header.last_sequence(), 12);
        assert_eq!(header.size(), bytes.len());
        assert_eq!(header.compression(), Compression::None);
        assert!(!header.is_transactional() && !header.is_control());
    }

    #[test]
    fn crc_mismatch_is_detected_anywhere_after_attributes() {
        let bytes = batch_bytes(&[Rec::kv(b"key", b"value", 5)]);
        for at in ATTRIBUTES_OFFSET..bytes.len() {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= 0x01;
            let result = validate(&corrupt, Validation::Produce);
            assert!(result.is_err(), "flip at {at} went unnoticed");
        }
    }

    #[test]
    fn base_offset_and_epoch_patches_keep_the_crc_valid() {
        let mut bytes = batch_bytes(&[Rec::kv(b"a", b"b", 5)]);
        set_base_offset(&mut bytes, 1234);
        set_partition_leader_epoch(&mut bytes, 9);
        let header = validate(&bytes, Validation::Produce).expect("still valid");
        assert_eq!(header.base_offset, 1234);
        assert_eq!(header.partition_leader_epoch, 9);
    }

    #[test]
    fn log_append_time_patch_sets_bit_and_max_timestamp_and_crc() {
        let mut bytes = batch_bytes(&[Rec::kv(b"a", b"b", 5)]);
        set_log_append_time(&mut bytes, 99_999);
        let header = validate(&bytes, Validation::Produce).expect("still valid");
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp, 99_999);
    }

    #[test]
    fn wrong_magic_and_short_length_are_rejected() {
        let mut bytes = batch_bytes(&[Rec::kv(b"a", b"b", 5)]);
        bytes[MAGIC_OFFSET] = 1;
        assert_eq!(
            validate(&bytes, Validation::Produce),
            Err(BatchError::UnsupportedMagic(1))
        );
        let mut bytes = batch_bytes(&[Rec::kv(b"a", b"b", 5)]);
        bytes[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(
            validate(&bytes, Validation::Produce),
            Err(BatchError::InvalidLength(10))
        );
    }

    #[test]
    fn length_beyond_the_buffer_is_truncation() {
        let bytes = batch_bytes(&[Rec::kv(b"a", b"b", 5)]);
        let cut = &bytes[..bytes.len() - 1];
        assert!(matches!(
            validate(cut, Validation::Produce),
            Err(BatchError::Truncated { .. })
        ));
        let mut iter = batches(cut, Validation::Produce);
        assert!(matches!(
            iter.next(),
            Some(Err(BatchError::Truncated { .. }))
        ));
        assert!(iter.next().is_none());
        assert_eq!(batch_headers(cut).count(), 0);
    }

    #[test]
    fn produce_validation_requires_dense_counts_but_stored_accepts_compacted() {
        let mut bytes = batch_bytes(&[Rec::kv(b"a", b"b", 5), Rec::kv(b"c", b"d", 6)]);
        // Pretend the cleaner dropped the first record but kept the last offset: count 1,
        // last offset delta 1. The payload still holds two records, which is fine for the
        // count check (it only bounds the count from above).
        bytes[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4].copy_from_slice(&1i32.to_be_bytes());
        update_crc(&mut bytes);
        assert!(matches!(
            validate(&bytes, Validation::Produce),
            Err(BatchError::InvalidRecordCount { .. })
        ));
        assert!(validate(&bytes, Validation::Stored).is_ok());
    }

    #[test]
    fn records_iterate_with_keys_values_and_headers() {
        let bytes = batch_bytes(&[
            Rec::kv(b"k1", b"v1", 10).header(b"h", Some(b"x")),
            Rec::tombstone(b"k2", 12),
            Rec::no_key(b"v3", 11),
        ]);
        let header = validate(&bytes, Validation::Produce).expect("valid");
        let payload = records_payload(&bytes).expect("payload");
        let parsed: Vec<_> = records(payload.as_slice(), header.records_count)
            .collect::<Result<_, _>>()
            .expect("records parse");
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].key, Some(&b"k1"[..]));
        assert_eq!(parsed[0].value, Some(&b"v1"[..]));
        assert_eq!(parsed[1].value, None);
        assert_eq!(parsed[2].key, None);
        assert_eq!(parsed[2].offset_delta, 2);
        assert_eq!(header.base_timestamp + parsed[1].timestamp_delta, 12);
    }

    #[test]
    fn compressed_batches_decompress_for_every_codec() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let bytes = batch_with(
                &[Rec::kv(b"key", b"value", 1), Rec::kv(b"k", b"v", 2)],
                |b| {
                    b.compression = codec;
                },
            );
            let header = validate(&bytes, Validation::Produce).expect("valid");
            assert_eq!(header.compression(), codec);
            let payload = records_payload(&bytes).expect("decompresses");
            let keys: Vec<_> = records(payload.as_slice(), header.records_count)
                .map(|r| r.expect("record").key.map(<[u8]>::to_vec))
                .collect();
            assert_eq!(keys, vec![Some(b"key".to_vec()), Some(b"k".to_vec())]);
        }
    }

    #[test]
    fn built_batches_validate_and_reparse() {
        let mut payload = Vec::new();
        encode_record(&mut payload, 0, 0, Some(b"a"), Some(b"1"), &[0]);
        encode_record(&mut payload, -3, 4, Some(b"b"), None, &[0]);
        for codec in [Compression::None, Compression::Zstd] {
            let fields = BatchFields {
                base_offset: 100,
                partition_leader_epoch: 2,
                attributes: codec.id(),
                last_offset_delta: 4,
                base_timestamp: 50,
                max_timestamp: 50,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                records_count: 2,
            };
            let built = build_batch(&fields, &payload).expect("builds");
            let header = validate(&built, Validation::Stored).expect("valid");
            assert_eq!(header.last_offset(), 104);
            let records_payload = records_payload(&built).expect("payload");
            let parsed: Vec<_> = records(records_payload.as_slice(), 2)
                .collect::<Result<_, _>>()
                .expect("parse");
            assert_eq!(parsed[1].timestamp_delta, -3);
            assert_eq!(parsed[1].offset_delta, 4);
            assert_eq!(parsed[1].value, None);
        }
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 0), 5);
    }

    proptest! {
        #[test]
        fn varlong_round_trips(value in any::<i64>()) {
            let mut out = Vec::new();
            write_varlong(&mut out, value);
            let mut slice = &out[..];
            prop_assert_eq!(read_varlong(&mut slice), Ok(value));
            prop_assert!(slice.is_empty());
        }

        #[test]
        fn garbage_never_panics_the_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = validate(&bytes, Validation::Stored);
            let _ = batches(&bytes, Validation::Stored).count();
            let _ = batch_headers(&bytes).count();
            let _ = records(&bytes, 10).count();
            let _ = records_payload(&bytes).map(|p| p.as_slice().len());
        }
    }
}
