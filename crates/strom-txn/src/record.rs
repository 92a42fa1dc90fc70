//! The byte format of `__transaction_state` records: Kafka's own, so Kafka's tooling
//! (`kafka-dump-log --transaction-log-decoder`) can read a Strom log and Strom can load a log
//! Kafka wrote.
//!
//! Kafka defines the records in `transaction-coordinator/src/main/resources/common/message/`
//! (TransactionLogKey.json, TransactionLogValue.json; `core/src/main/resources/...` before
//! Kafka 4.0). Both key and value start with a big-endian `int16` version. The key has one
//! version and is never flexible; Kafka 4.x calls its prefix the coordinator record type (0
//! for TRANSACTION_LOG), which is the same two bytes. A null value (tombstone) deletes the
//! transactional id; that is the absence of a value, so it never reaches [`decode_value`].
//!
//! ```text
//! key   = int16 version (0), string transactional_id
//! value = int16 version (0 or 1), value fields
//!
//! TransactionLogValue (both versions, in this order)
//!   int64  producer_id
//!   int16  producer_epoch
//!   int32  transaction_timeout_ms
//!   int8   transaction_status          (0 Empty, 1 Ongoing, 2 PrepareCommit, 3 PrepareAbort,
//!                                       4 CompleteCommit, 5 CompleteAbort, 6 Dead,
//!                                       7 PrepareEpochFence)
//!   nullable array transaction_partitions of
//!       string topic, array of int32 partition_ids
//!   int64  transaction_last_update_timestamp_ms
//!   int64  transaction_start_timestamp_ms
//!
//! version 0: exactly the above, classic encodings
//! version 1: flexible: compact encodings, every struct (the value and each partitions
//!            entry) ends with a tagged-field section; the value's known tags are
//!     tag 0  int64 previous_producer_id        default -1
//!     tag 1  int64 next_producer_id            default -1
//!     tag 2  int16 client_transaction_version  default 0
//! ```
//!
//! Primitive encodings (Kafka's protocol types): `string` is an `int16` length then UTF-8
//! bytes; an array is an `int32` count then the elements, -1 meaning null. Flexible versions
//! use an unsigned varint of length+1 (0 meaning null) for strings and arrays, and every struct
//! ends with a tagged-field section: an unsigned varint count, then per field an unsigned
//! varint tag, an unsigned varint size and that many bytes. A tagged field is written only
//! when it differs from its default, in ascending tag order. Decoders skip unknown tagged
//! fields and ignore trailing bytes, as Kafka's do; newer Kafka adds more tags to this value
//! (NextProducerEpoch, tag 3, for KIP-939 two-phase commit), which Strom does not use and
//! skips like any unknown tag. Kafka 3.5 to 3.9 know none of the tags and skip them all; Kafka
//! 4.0 reads tags 0 and 1 but wrote only tag 2 until KAFKA-20310 (2026), so values from a
//! Kafka log often lack them.
//!
//! Field mapping: [`TransactionLogValue`]'s fields are Kafka's in snake case, except that
//! `TransactionStatus` is `state`, `TransactionPartitions` is `partitions` and the two
//! timestamps drop their `Transaction` prefix. Kafka groups the partitions by topic, so
//! `partitions` is a list of (topic, partition ids). It writes them as null for an Empty
//! transaction (and refuses an Empty one with partitions), as an array (possibly empty) in
//! every other state, and its reader ignores them for Empty; [`encode_value`] and
//! [`decode_value`] do the same, so an Empty value has no partitions after a round trip, and a
//! null array in another state reads as none.
//!
//! Which version Kafka writes depends on the cluster's `transaction.version` feature, not on
//! the record: version 0 below transaction version 1, version 1 from it on (Kafka's
//! `TransactionVersion.transactionLogValueVersion`). Version 0 has no place for the tagged
//! fields, so Kafka writes none there. [`encode_value`] has no feature level to look at, so it
//! writes the oldest version that holds the value: version 0 when every tagged field is at its
//! default, version 1 otherwise (a transaction version 2 client always has a non-zero
//! `client_transaction_version`, and a cluster serving one writes version 1 too). Version 0 is
//! readable by every Kafka since 0.11, version 1 by Kafka 3.5 and later. A shell that tracks
//! the feature level can mirror Kafka byte for byte with [`encode_value_version`].
//!
//! Kafka's loader skips a key with an unknown version (with a warning), calling it a left
//! over of an aborted upgrade; [`decode_key`] reports it as corrupt, and [`key_version`] lets
//! a loader tell that case apart and skip it too.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

/// The key version, the only one Kafka defines.
pub const KEY_VERSION: i16 = 0;
/// Highest TransactionLogValue version understood (the first and only flexible one).
pub const VALUE_MAX_VERSION: i16 = 1;
/// Longest transactional id, in UTF-8 bytes, a key can hold: the key is never flexible, so the
/// id has an `int16` length. Kafka cannot store a longer one either.
pub const MAX_TRANSACTIONAL_ID_LEN: usize = i16::MAX as usize;

/// The status byte of Kafka's Empty state: the one state whose partitions are stored as null.
const EMPTY_STATUS: u8 = 0;
/// Default of the producer id tagged fields (Kafka's `RecordBatch.NO_PRODUCER_ID`).
const NO_PRODUCER_ID: i64 = -1;
const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;

/// Encodes the key of `transactional_id`'s records. Fails only when the id is longer than
/// [`MAX_TRANSACTIONAL_ID_LEN`] bytes, which the key format cannot hold; the coordinator
/// should refuse such an id before it prepares any record for it.
pub fn encode_key(transactional_id: &str) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity(4 + transactional_id.len());
    buf.put_i16(KEY_VERSION);
    put_legacy_string(&mut buf, "TransactionLogKey", transactional_id)?;
    Ok(buf.freeze())
}

/// Decodes a key to its transactional id.
pub fn decode_key(key: &[u8]) -> Result<String> {
    let mut r = Reader::new(key, "TransactionLogKey");
    let version = r.i16()?;
    if version != KEY_VERSION {
        return Err(r.corrupt(format!("unknown key version {version}")));
    }
    r.string()
}

/// The version prefix of a key, `None` when the key is shorter than the prefix. A loader can
/// skip keys whose version is not [`KEY_VERSION`], as Kafka does.
pub fn key_version(key: &[u8]) -> Option<i16> {
    let prefix: [u8; 2] = key.get(..2)?.try_into().ok()?;
    Some(i16::from_be_bytes(prefix))
}

/// The value of a `__transaction_state` record: one transactional id's state after a
/// transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionLogValue {
    /// Kafka's ProducerId: the producer id in use by the transactional id.
    pub producer_id: i64,
    /// Kafka's PreviousProducerId (tag 0, version 1 only): the producer id of the last
    /// committed transaction; -1 when none, and always -1 from a version 0 value.
    pub previous_producer_id: i64,
    /// Kafka's NextProducerId (tag 1, version 1 only): the producer id already handed to the
    /// producer for its next transaction; -1 when none, and always -1 from a version 0 value.
    pub next_producer_id: i64,
    /// Kafka's ProducerEpoch.
    pub producer_epoch: i16,
    /// Kafka's TransactionTimeoutMs.
    pub transaction_timeout_ms: i32,
    /// Kafka's TransactionStatus, the state id as stored (see the module doc). Not validated
    /// here: `TransactionState::from_id` maps it, and Kafka refuses to load an unknown one.
    pub state: u8,
    /// Kafka's TransactionPartitions: (topic, partition ids) in the order stored; empty when
    /// none, and always empty for an Empty (`state` 0) transaction.
    pub partitions: Vec<(String, Vec<i32>)>,
    /// Kafka's TransactionLastUpdateTimestampMs.
    pub last_update_timestamp_ms: i64,
    /// Kafka's TransactionStartTimestampMs.
    pub start_timestamp_ms: i64,
    /// Kafka's ClientTransactionVersion (tag 2, version 1 only): the transaction version the
    /// client speaks (2 with KIP-890's epoch bump per transaction); 0 when absent.
    pub client_transaction_version: i16,
}

impl TransactionLogValue {
    /// The version [`encode_value`] writes: 0 when version 0 holds every field, else 1.
    pub fn preferred_version(&self) -> i16 {
        if self.has_tagged_fields() || !self.fits_version_0() {
            1
        } else {
            0
        }
    }

    /// Whether any field that only version 1 can hold differs from its default.
    fn has_tagged_fields(&self) -> bool {
        self.previous_producer_id != NO_PRODUCER_ID
            || self.next_producer_id != NO_PRODUCER_ID
            || self.client_transaction_version != 0
    }

    /// Whether the classic encodings' `int16` string and `int32` array lengths suffice.
    fn fits_version_0(&self) -> bool {
        let count_fits = |n: usize| i32::try_from(n).is_ok();
        count_fits(self.partitions.len())
            && self
                .partitions
                .iter()
                .all(|(topic, ids)| topic.len() <= i16::MAX as usize && count_fits(ids.len()))
    }

    /// The partitions as stored: null (`None`) for an Empty transaction.
    fn stored_partitions(&self) -> Option<&[(String, Vec<i32>)]> {
        (self.state != EMPTY_STATUS).then_some(self.partitions.as_slice())
    }
}

/// Encodes a value with [`TransactionLogValue::preferred_version`]; cannot fail.
pub fn encode_value(value: &TransactionLogValue) -> Bytes {
    if value.has_tagged_fields() {
        return write_value_v1(value);
    }
    // A topic name too long for an int16 length (Kafka's topics are at most 249 bytes, so
    // only a hand-made value) is written with the compact encodings instead.
    write_value_v0(value).unwrap_or_else(|_| write_value_v1(value))
}

/// Encodes a value with an explicit version, as Kafka does for its `transaction.version`
/// feature level (0 below level 1, else 1). Version 0 drops the tagged fields, as Kafka's
/// version 0 records lack them. Fails for a version Kafka does not define and when version 0
/// cannot hold a topic name or count.
pub fn encode_value_version(value: &TransactionLogValue, version: i16) -> Result<Bytes> {
    match version {
        0 => write_value_v0(value),
        1 => Ok(write_value_v1(value)),
        other => Err(Error::Corrupt(format!(
            "TransactionLogValue: Kafka defines no version {other}"
        ))),
    }
}

/// Decodes a value of any version Kafka defines (0 and 1).
pub fn decode_value(value: &[u8]) -> Result<TransactionLogValue> {
    let mut r = Reader::new(value, "TransactionLogValue");
    let version = r.i16()?;
    if !(0..=VALUE_MAX_VERSION).contains(&version) {
        return Err(r.corrupt(format!("unknown value version {version}")));
    }
    r.flexible = version >= 1;

    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let transaction_timeout_ms = r.i32()?;
    let state = r.u8()?;
    // Smallest partitions entry: an empty topic and no ids, plus an empty tag section in
    // flexible versions (1 + 1 + 1 bytes), or an int16 and an int32 length (2 + 4).
    let min_entry = if r.flexible { 3 } else { 6 };
    let mut partitions = Vec::new();
    if let Some(count) = r.array_len(min_entry)? {
        partitions.reserve(count);
        for _ in 0..count {
            let topic = r.string()?;
            let n = r
                .array_len(4)?
                .ok_or_else(|| r.corrupt("null partition ids"))?;
            let mut ids = Vec::with_capacity(n);
            for _ in 0..n {
                ids.push(r.i32()?);
            }
            // Each partitions entry has its own (so far always empty) tag section.
            for _ in 0..r.tagged_field_count()? {
                r.tagged_field()?;
            }
            partitions.push((topic, ids));
        }
    }
    let last_update_timestamp_ms = r.i64()?;
    let start_timestamp_ms = r.i64()?;

    let mut decoded = TransactionLogValue {
        producer_id,
        previous_producer_id: NO_PRODUCER_ID,
        next_producer_id: NO_PRODUCER_ID,
        producer_epoch,
        transaction_timeout_ms,
        state,
        partitions,
        last_update_timestamp_ms,
        start_timestamp_ms,
        client_transaction_version: 0,
    };
    for _ in 0..r.tagged_field_count()? {
        let (tag, data) = r.tagged_field()?;
        match tag {
            TAG_PREVIOUS_PRODUCER_ID => {
                decoded.previous_producer_id = i64::from_be_bytes(r.fixed(data, "tag 0")?);
            }
            TAG_NEXT_PRODUCER_ID => {
                decoded.next_producer_id = i64::from_be_bytes(r.fixed(data, "tag 1")?);
            }
            TAG_CLIENT_TRANSACTION_VERSION => {
                decoded.client_transaction_version = i16::from_be_bytes(r.fixed(data, "tag 2")?);
            }
            // A field of a newer Kafka: skipped, as Kafka's generated readers do.
            _ => {}
        }
    }
    if decoded.state == EMPTY_STATUS {
        // Kafka's reader ignores whatever an Empty value stores for its partitions.
        decoded.partitions.clear();
    }
    Ok(decoded)
}

/// Version 0: classic encodings, no tagged fields.
fn write_value_v0(value: &TransactionLogValue) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(0);
    buf.put_i64(value.producer_id);
    buf.put_i16(value.producer_epoch);
    buf.put_i32(value.transaction_timeout_ms);
    buf.put_u8(value.state);
    match value.stored_partitions() {
        None => buf.put_i32(-1),
        Some(partitions) => {
            buf.put_i32(legacy_count(partitions.len())?);
            for (topic, ids) in partitions {
                put_legacy_string(&mut buf, "TransactionLogValue topic", topic)?;
                buf.put_i32(legacy_count(ids.len())?);
                for &id in ids {
                    buf.put_i32(id);
                }
            }
        }
    }
    buf.put_i64(value.last_update_timestamp_ms);
    buf.put_i64(value.start_timestamp_ms);
    Ok(buf.freeze())
}

/// Version 1: compact encodings, then the non-default tagged fields in ascending tag order.
fn write_value_v1(value: &TransactionLogValue) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(1);
    buf.put_i64(value.producer_id);
    buf.put_i16(value.producer_epoch);
    buf.put_i32(value.transaction_timeout_ms);
    buf.put_u8(value.state);
    match value.stored_partitions() {
        None => put_unsigned_varint(&mut buf, 0),
        Some(partitions) => {
            put_unsigned_varint(&mut buf, partitions.len() as u64 + 1);
            for (topic, ids) in partitions {
                put_unsigned_varint(&mut buf, topic.len() as u64 + 1);
                buf.put_slice(topic.as_bytes());
                put_unsigned_varint(&mut buf, ids.len() as u64 + 1);
                for &id in ids {
                    buf.put_i32(id);
                }
                put_unsigned_varint(&mut buf, 0); // the entry's empty tag section
            }
        }
    }
    buf.put_i64(value.last_update_timestamp_ms);
    buf.put_i64(value.start_timestamp_ms);

    let previous = value.previous_producer_id != NO_PRODUCER_ID;
    let next = value.next_producer_id != NO_PRODUCER_ID;
    let client_version = value.client_transaction_version != 0;
    let count = [previous, next, client_version]
        .into_iter()
        .filter(|&present| present)
        .count();
    put_unsigned_varint(&mut buf, count as u64);
    if previous {
        put_unsigned_varint(&mut buf, TAG_PREVIOUS_PRODUCER_ID.into());
        put_unsigned_varint(&mut buf, 8);
        buf.put_i64(value.previous_producer_id);
    }
    if next {
        put_unsigned_varint(&mut buf, TAG_NEXT_PRODUCER_ID.into());
        put_unsigned_varint(&mut buf, 8);
        buf.put_i64(value.next_producer_id);
    }
    if client_version {
        put_unsigned_varint(&mut buf, TAG_CLIENT_TRANSACTION_VERSION.into());
        put_unsigned_varint(&mut buf, 2);
        buf.put_i16(value.client_transaction_version);
    }
    buf.freeze()
}

/// A classic `string`: `int16` length, then the UTF-8 bytes.
fn put_legacy_string(buf: &mut BytesMut, what: &str, s: &str) -> Result<()> {
    let len = i16::try_from(s.len()).map_err(|_| {
        Error::Corrupt(format!(
            "{what}: a string of {} bytes does not fit an int16 length",
            s.len()
        ))
    })?;
    buf.put_i16(len);
    buf.put_slice(s.as_bytes());
    Ok(())
}

/// A classic array count (`int32`).
fn legacy_count(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| {
        Error::Corrupt(format!(
            "TransactionLogValue: {n} elements do not fit an int32 count"
        ))
    })
}

fn put_unsigned_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Reads Kafka protocol primitives from a slice without ever panicking: every length is
/// checked against the bytes that remain; `flexible` selects the compact forms.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader {
            buf,
            what,
            flexible: false,
        }
    }

    fn corrupt(&self, reason: impl std::fmt::Display) -> Error {
        Error::Corrupt(format!("{}: {reason}", self.what))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(self.corrupt(format!(
                "needs {n} more bytes, only {} remain",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        self.fixed(bytes, "field")
    }

    /// `bytes` as exactly `N` bytes; a tagged field's size must match its type.
    fn fixed<const N: usize>(&self, bytes: &[u8], field: &str) -> Result<[u8; N]> {
        bytes
            .try_into()
            .map_err(|_| self.corrupt(format!("{field} has {} bytes, expected {N}", bytes.len())))
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Kafka's unsigned varints are 32-bit: at most 5 bytes.
    fn unsigned_varint(&mut self) -> Result<u32> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let [byte] = self.array::<1>()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return u32::try_from(value)
                    .map_err(|_| self.corrupt("unsigned varint exceeds 32 bits"));
            }
        }
        Err(self.corrupt("unsigned varint longer than 5 bytes"))
    }

    /// A compact length: `Ok(None)` for null (0), else the varint minus one.
    fn compact_length(&mut self) -> Result<Option<usize>> {
        match self.unsigned_varint()? {
            0 => Ok(None),
            n => usize::try_from(n - 1)
                .map(Some)
                .map_err(|_| self.corrupt("length overflows usize")),
        }
    }

    /// A classic length: -1 for null, any other negative value is corrupt.
    fn classic_length(&self, raw: i32) -> Result<Option<usize>> {
        match raw {
            -1 => Ok(None),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| self.corrupt(format!("negative length {n}"))),
        }
    }

    fn string(&mut self) -> Result<String> {
        let len = if self.flexible {
            self.compact_length()?
        } else {
            let raw = self.i16()?;
            self.classic_length(raw.into())?
        };
        let len = len.ok_or_else(|| self.corrupt("null in a non-nullable string"))?;
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(self.corrupt(format!("string is not UTF-8: {e}"))),
        }
    }

    /// An array count, `Ok(None)` for null. Each element takes at least `min_element_size`
    /// bytes, so a count the remaining bytes cannot hold is corrupt; checking here keeps a
    /// bad count from reserving a huge vector.
    fn array_len(&mut self, min_element_size: usize) -> Result<Option<usize>> {
        let len = if self.flexible {
            self.compact_length()?
        } else {
            let raw = self.i32()?;
            self.classic_length(raw)?
        };
        if let Some(n) = len {
            let fits = n
                .checked_mul(min_element_size)
                .is_some_and(|size| size <= self.buf.len());
            if !fits {
                return Err(
                    self.corrupt(format!("array of {n} elements in {} bytes", self.buf.len()))
                );
            }
        }
        Ok(len)
    }

    /// The number of fields in a struct's tag section; 0 in non-flexible versions, which
    /// have none.
    fn tagged_field_count(&mut self) -> Result<u32> {
        if self.flexible {
            self.unsigned_varint()
        } else {
            Ok(0)
        }
    }

    /// One tagged field: its tag and its bytes.
    fn tagged_field(&mut self) -> Result<(u32, &'a [u8])> {
        let tag = self.unsigned_varint()?;
        let size = self.unsigned_varint()?;
        let size = usize::try_from(size).map_err(|_| self.corrupt("tag size overflows"))?;
        Ok((tag, self.take(size)?))
    }
}

#[cfg(test)]
mod tests;
