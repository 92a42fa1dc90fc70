//! The byte format of `__consumer_offsets` records: Kafka's own, so Kafka's tooling
//! (`kafka-console-consumer --formatter ...GroupMetadataMessageFormatter`, `kafka-dump-log
//! --offsets-decoder`) can read a Strom log and Strom can load a log Kafka wrote.
//!
//! Kafka defines the records in `group-coordinator/src/main/resources/common/message/`
//! (OffsetCommitKey.json, OffsetCommitValue.json, GroupMetadataKey.json,
//! GroupMetadataValue.json). Both key and value start with a big-endian `int16` version; the
//! key's version doubles as the record type:
//!
//! ```text
//! key   = int16 record_type, key fields
//! value = int16 value_version, value fields            (absent for a tombstone)
//!
//! record_type 0 or 1: OffsetCommitKey   = string group, string topic, int32 partition
//! record_type 2:      GroupMetadataKey  = string group
//! record_type 3..=15: Kafka's KIP-848/KIP-932 group records (not supported here)
//!
//! OffsetCommitValue (version: fields)
//!   0: int64 offset, string metadata, int64 commit_timestamp
//!   1: int64 offset, string metadata, int64 commit_timestamp, int64 expire_timestamp
//!   2: int64 offset, string metadata, int64 commit_timestamp
//!   3: int64 offset, int32 leader_epoch, string metadata, int64 commit_timestamp
//!   4: as 3, flexible (compact strings, tagged fields)
//!
//! GroupMetadataValue (version: fields)
//!   0: string protocol_type, int32 generation, nullable string protocol,
//!      nullable string leader, array members
//!   1: as 0
//!   2: as 1 plus int64 current_state_timestamp after leader
//!   3: as 2
//!   4: as 3, flexible
//!   member 0: string member_id, string client_id, string client_host,
//!             int32 session_timeout, bytes subscription, bytes assignment
//!   member 1-2: as 0 plus int32 rebalance_timeout before session_timeout
//!   member 3-4: as 1 plus nullable string group_instance_id after member_id
//! ```
//!
//! Primitive encodings (Kafka's protocol types): `string` is an `int16` length then UTF-8
//! bytes, a nullable string uses length -1 for null; `bytes` is an `int32` length then the
//! bytes; an array is an `int32` count then the elements. Flexible versions use compact forms
//! instead: an unsigned varint of length+1 (0 meaning null) for strings, bytes and arrays, and
//! every struct ends with a tagged-field section (an unsigned varint count, then per field an
//! unsigned varint tag, an unsigned varint size and the bytes). Decoders skip unknown tagged
//! fields and ignore trailing bytes, as Kafka's do.
//!
//! Like Kafka, Strom writes OffsetCommitValue version 3 (version 1 when the commit carries an
//! explicit expire timestamp from an OffsetCommit v2-4 retention time) and GroupMetadataValue
//! version 3. A group whose strings do not fit an `int16` length is written as version 4.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

/// Record type (key version) of OffsetCommitKey as Strom writes it.
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Record type (key version) of GroupMetadataKey.
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Highest OffsetCommitValue version understood.
pub const OFFSET_COMMIT_VALUE_MAX_VERSION: i16 = 4;
/// Highest GroupMetadataValue version understood.
pub const GROUP_METADATA_VALUE_MAX_VERSION: i16 = 4;

/// The key of a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// A committed offset of `group` for `topic`/`partition`.
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    /// A group's membership and assignment.
    GroupMetadata { group: String },
}

impl RecordKey {
    /// The group the record belongs to.
    pub fn group_id(&self) -> &str {
        match self {
            RecordKey::OffsetCommit { group, .. } | RecordKey::GroupMetadata { group } => group,
        }
    }

    /// Encodes the key (OffsetCommitKey version 1 or GroupMetadataKey version 2). Fails only
    /// when a name does not fit an `int16` length.
    pub fn encode(&self) -> Result<Bytes> {
        let mut w = Writer::new(false);
        match self {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                w.i16(OFFSET_COMMIT_KEY_VERSION);
                w.string("OffsetCommitKey.group", group)?;
                w.string("OffsetCommitKey.topic", topic)?;
                w.i32(*partition);
            }
            RecordKey::GroupMetadata { group } => {
                w.i16(GROUP_METADATA_KEY_VERSION);
                w.string("GroupMetadataKey.group", group)?;
            }
        }
        Ok(w.finish())
    }

    /// Decodes a key. Kafka's newer group record types (3 to 15) give
    /// [`Error::UnsupportedRecordType`], which a loader may skip.
    pub fn decode(bytes: &[u8]) -> Result<RecordKey> {
        let mut r = Reader::new(bytes, "record key", false);
        let record_type = r.i16()?;
        match record_type {
            0 | 1 => {
                let group = r.string()?;
                let topic = r.string()?;
                let partition = r.i32()?;
                Ok(RecordKey::OffsetCommit {
                    group,
                    topic,
                    partition,
                })
            }
            2 => Ok(RecordKey::GroupMetadata { group: r.string()? }),
            3..=15 => Err(Error::UnsupportedRecordType(record_type)),
            other => Err(Error::UnsupportedVersion {
                what: "record key",
                version: other,
            }),
        }
    }
}

/// The value of an OffsetCommitKey record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// -1 when unknown (and in versions before 3).
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Only in version 1; -1 otherwise.
    pub expire_timestamp: i64,
}

impl OffsetCommitValue {
    /// The version Kafka writes for this value: 1 when it carries an expire timestamp, else 3.
    pub fn preferred_version(&self) -> i16 {
        if self.expire_timestamp != -1 { 1 } else { 3 }
    }

    /// Encodes with [`Self::preferred_version`].
    pub fn encode(&self) -> Result<Bytes> {
        self.encode_version(self.preferred_version())
    }

    /// Encodes with an explicit version (0 to 4); fields the version lacks are dropped.
    pub fn encode_version(&self, version: i16) -> Result<Bytes> {
        if !(0..=OFFSET_COMMIT_VALUE_MAX_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                what: "OffsetCommitValue",
                version,
            });
        }
        let mut w = Writer::new(version >= 4);
        w.i16(version);
        w.i64(self.offset);
        if version >= 3 {
            w.i32(self.leader_epoch);
        }
        w.string("OffsetCommitValue.metadata", &self.metadata)?;
        w.i64(self.commit_timestamp);
        if version == 1 {
            w.i64(self.expire_timestamp);
        }
        w.tagged_fields();
        Ok(w.finish())
    }

    /// Decodes any version from 0 to 4.
    pub fn decode(bytes: &[u8]) -> Result<OffsetCommitValue> {
        let mut r = Reader::new(bytes, "OffsetCommitValue", false);
        let version = r.i16()?;
        if !(0..=OFFSET_COMMIT_VALUE_MAX_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                what: "OffsetCommitValue",
                version,
            });
        }
        r.flexible = version >= 4;
        let offset = r.i64()?;
        let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
        let metadata = r.string()?;
        let commit_timestamp = r.i64()?;
        let expire_timestamp = if version == 1 { r.i64()? } else { -1 };
        r.skip_tagged_fields()?;
        Ok(OffsetCommitValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
            expire_timestamp,
        })
    }
}

/// The value of a GroupMetadataKey record: the group as of its last persisted generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// "" for a group without a protocol type.
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// When the group entered its current state; -1 when unknown (versions before 2).
    pub current_state_timestamp: i64,
    pub members: Vec<MemberMetadata>,
}

/// One member inside [`GroupMetadataValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    /// Version 3+.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Version 1+; -1 when unknown.
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    /// The member's metadata for the group's protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

impl GroupMetadataValue {
    /// Version 3 (what Kafka writes), or 4 when a string is too long for version 3.
    pub fn preferred_version(&self) -> i16 {
        let too_long = |s: &str| s.len() > i16::MAX as usize;
        let any_too_long = too_long(&self.protocol_type)
            || self.protocol.as_deref().is_some_and(too_long)
            || self.leader.as_deref().is_some_and(too_long)
            || self.members.iter().any(|m| {
                too_long(&m.member_id)
                    || m.group_instance_id.as_deref().is_some_and(too_long)
                    || too_long(&m.client_id)
                    || too_long(&m.client_host)
            });
        if any_too_long { 4 } else { 3 }
    }

    /// Encodes with [`Self::preferred_version`]; cannot fail.
    pub fn encode(&self) -> Bytes {
        match self.encode_version(self.preferred_version()) {
            Ok(bytes) => bytes,
            // Version 4 has no length limit below the sizes Rust can hold, so only a
            // version 3 attempt can fail, and preferred_version avoided it.
            Err(_) => Bytes::new(),
        }
    }

    /// Encodes with an explicit version (0 to 4); fields the version lacks are dropped.
    pub fn encode_version(&self, version: i16) -> Result<Bytes> {
        if !(0..=GROUP_METADATA_VALUE_MAX_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                what: "GroupMetadataValue",
                version,
            });
        }
        let mut w = Writer::new(version >= 4);
        w.i16(version);
        w.string("GroupMetadataValue.protocolType", &self.protocol_type)?;
        w.i32(self.generation);
        w.nullable_string("GroupMetadataValue.protocol", self.protocol.as_deref())?;
        w.nullable_string("GroupMetadataValue.leader", self.leader.as_deref())?;
        if version >= 2 {
            w.i64(self.current_state_timestamp);
        }
        w.array_len(self.members.len())?;
        for member in &self.members {
            w.string("MemberMetadata.memberId", &member.member_id)?;
            if version >= 3 {
                w.nullable_string(
                    "MemberMetadata.groupInstanceId",
                    member.group_instance_id.as_deref(),
                )?;
            }
            w.string("MemberMetadata.clientId", &member.client_id)?;
            w.string("MemberMetadata.clientHost", &member.client_host)?;
            if version >= 1 {
                w.i32(member.rebalance_timeout);
            }
            w.i32(member.session_timeout);
            w.bytes("MemberMetadata.subscription", &member.subscription)?;
            w.bytes("MemberMetadata.assignment", &member.assignment)?;
            w.tagged_fields();
        }
        w.tagged_fields();
        Ok(w.finish())
    }

    /// Decodes any version from 0 to 4.
    pub fn decode(bytes: &[u8]) -> Result<GroupMetadataValue> {
        let mut r = Reader::new(bytes, "GroupMetadataValue", false);
        let version = r.i16()?;
        if !(0..=GROUP_METADATA_VALUE_MAX_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                what: "GroupMetadataValue",
                version,
            });
        }
        r.flexible = version >= 4;
        let protocol_type = r.string()?;
        let generation = r.i32()?;
        let protocol = r.nullable_string()?;
        let leader = r.nullable_string()?;
        let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
        let count = r.array_len()?;
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let member_id = r.string()?;
            let group_instance_id = if version >= 3 {
                r.nullable_string()?
            } else {
                None
            };
            let client_id = r.string()?;
            let client_host = r.string()?;
            let rebalance_timeout = if version >= 1 { r.i32()? } else { -1 };
            let session_timeout = r.i32()?;
            let subscription = r.bytes()?;
            let assignment = r.bytes()?;
            r.skip_tagged_fields()?;
            members.push(MemberMetadata {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout,
                session_timeout,
                subscription,
                assignment,
            });
        }
        r.skip_tagged_fields()?;
        Ok(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}

/// Appends Kafka protocol primitives; `flexible` selects the compact forms.
struct Writer {
    buf: BytesMut,
    flexible: bool,
}

impl Writer {
    fn new(flexible: bool) -> Self {
        Writer {
            buf: BytesMut::with_capacity(64),
            flexible,
        }
    }

    fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    fn i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }

    fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    fn i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    fn unsigned_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    fn string(&mut self, what: &'static str, s: &str) -> Result<()> {
        self.nullable_string(what, Some(s))
    }

    fn nullable_string(&mut self, what: &'static str, s: Option<&str>) -> Result<()> {
        match (s, self.flexible) {
            (None, true) => self.unsigned_varint(0),
            (None, false) => self.i16(-1),
            (Some(s), true) => {
                self.unsigned_varint(s.len() as u64 + 1);
                self.buf.put_slice(s.as_bytes());
            }
            (Some(s), false) => {
                let len = i16::try_from(s.len()).map_err(|_| Error::CorruptRecord {
                    what,
                    reason: format!("string of {} bytes does not fit an int16 length", s.len()),
                })?;
                self.i16(len);
                self.buf.put_slice(s.as_bytes());
            }
        }
        Ok(())
    }

    fn bytes(&mut self, what: &'static str, b: &[u8]) -> Result<()> {
        if self.flexible {
            self.unsigned_varint(b.len() as u64 + 1);
        } else {
            let len = i32::try_from(b.len()).map_err(|_| Error::CorruptRecord {
                what,
                reason: format!("{} bytes do not fit an int32 length", b.len()),
            })?;
            self.i32(len);
        }
        self.buf.put_slice(b);
        Ok(())
    }

    fn array_len(&mut self, n: usize) -> Result<()> {
        if self.flexible {
            self.unsigned_varint(n as u64 + 1);
        } else {
            let n = i32::try_from(n).map_err(|_| Error::CorruptRecord {
                what: "array",
                reason: format!("{n} elements do not fit an int32 count"),
            })?;
            self.i32(n);
        }
        Ok(())
    }

    /// An empty tagged-field section; nothing in non-flexible versions.
    fn tagged_fields(&mut self) {
        if self.flexible {
            self.unsigned_varint(0);
        }
    }
}

/// Reads Kafka protocol primitives from a slice without ever panicking: every length is
/// checked against the bytes that remain.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str, flexible: bool) -> Self {
        Reader {
            buf,
            what,
            flexible,
        }
    }

    fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::CorruptRecord {
            what: self.what,
            reason: reason.into(),
        }
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
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
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

    fn unsigned_varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let [byte] = self.array::<1>()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.corrupt("unsigned varint longer than 10 bytes"))
    }

    /// A length: `Ok(None)` for null.
    fn length(&mut self, wide: bool) -> Result<Option<usize>> {
        if self.flexible {
            let raw = self.unsigned_varint()?;
            return match raw {
                0 => Ok(None),
                n => usize::try_from(n - 1)
                    .map(Some)
                    .map_err(|_| self.corrupt("length overflows usize")),
            };
        }
        let raw = if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match raw {
            -1 => Ok(None),
            n if n < 0 => Err(self.corrupt(format!("negative length {n}"))),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| self.corrupt("length overflows usize")),
        }
    }

    fn nullable_string(&mut self) -> Result<Option<String>> {
        let Some(len) = self.length(false)? else {
            return Ok(None);
        };
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(e) => Err(self.corrupt(format!("string is not UTF-8: {e}"))),
        }
    }

    fn string(&mut self) -> Result<String> {
        self.nullable_string()?
            .ok_or_else(|| self.corrupt("null in a non-nullable string"))
    }

    fn bytes(&mut self) -> Result<Bytes> {
        match self.length(true)? {
            // Kafka's MemberMetadata bytes are not nullable; tolerate a null as empty.
            None => Ok(Bytes::new()),
            Some(len) => Ok(Bytes::copy_from_slice(self.take(len)?)),
        }
    }

    fn array_len(&mut self) -> Result<usize> {
        let len = self
            .length(true)?
            .ok_or_else(|| self.corrupt("null in a non-nullable array"))?;
        // Every element takes at least one byte, so a count above the remaining bytes is
        // corrupt; checking here keeps a bad count from reserving a huge vector.
        if len > self.buf.len() {
            return Err(self.corrupt(format!(
                "array of {len} elements in {} bytes",
                self.buf.len()
            )));
        }
        Ok(len)
    }

    fn skip_tagged_fields(&mut self) -> Result<()> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.unsigned_varint()?;
        for _ in 0..count {
            let _tag = self.unsigned_varint()?;
            let size = self.unsigned_varint()?;
            let size = usize::try_from(size).map_err(|_| self.corrupt("tag size overflows"))?;
            self.take(size)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_group() -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("c1-abc".into()),
            current_state_timestamp: 1_700_000_000_000,
            members: vec![
                MemberMetadata {
                    member_id: "c1-abc".into(),
                    group_instance_id: Some("instance-1".into()),
                    client_id: "c1".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout: 300_000,
                    session_timeout: 45_000,
                    subscription: Bytes::from_static(b"\x00\x01sub"),
                    assignment: Bytes::from_static(b"\x00\x01assign"),
                },
                MemberMetadata {
                    member_id: "c2-def".into(),
                    group_instance_id: None,
                    client_id: "c2".into(),
                    client_host: "/10.0.0.2".into(),
                    rebalance_timeout: 60_000,
                    session_timeout: 10_000,
                    subscription: Bytes::new(),
                    assignment: Bytes::new(),
                },
            ],
        }
    }

    #[test]
    fn offset_commit_key_matches_kafka_bytes() {
        // OffsetCommitKey v1 for group "g", topic "t", partition 3, byte by byte.
        let key = RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        let bytes = key.encode().unwrap();
        assert_eq!(
            bytes.as_ref(),
            &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3][..]
        );
        assert_eq!(RecordKey::decode(&bytes).unwrap(), key);
    }

    #[test]
    fn group_metadata_key_matches_kafka_bytes() {
        let key = RecordKey::GroupMetadata { group: "ab".into() };
        let bytes = key.encode().unwrap();
        assert_eq!(bytes.as_ref(), &[0, 2, 0, 2, b'a', b'b'][..]);
        assert_eq!(RecordKey::decode(&bytes).unwrap(), key);
    }

    #[test]
    fn offset_commit_key_version_zero_decodes() {
        let bytes = [0, 0, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 9];
        assert_eq!(
            RecordKey::decode(&bytes).unwrap(),
            RecordKey::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 9
            }
        );
    }

    #[test]
    fn offset_commit_value_v3_matches_kafka_bytes() {
        let value = OffsetCommitValue {
            offset: 42,
            leader_epoch: 5,
            metadata: "m".into(),
            commit_timestamp: 1000,
            expire_timestamp: -1,
        };
        let bytes = value.encode().unwrap();
        let mut expected = vec![0, 3];
        expected.extend_from_slice(&42i64.to_be_bytes());
        expected.extend_from_slice(&5i32.to_be_bytes());
        expected.extend_from_slice(&[0, 1, b'm']);
        expected.extend_from_slice(&1000i64.to_be_bytes());
        assert_eq!(bytes.as_ref(), expected.as_slice());
        assert_eq!(OffsetCommitValue::decode(&bytes).unwrap(), value);
    }

    #[test]
    fn offset_commit_value_with_expiry_is_written_as_version_one() {
        let value = OffsetCommitValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 10,
            expire_timestamp: 20,
        };
        let bytes = value.encode().unwrap();
        assert_eq!(&bytes[..2], &[0, 1]);
        assert_eq!(OffsetCommitValue::decode(&bytes).unwrap(), value);
    }

    #[test]
    fn offset_commit_value_round_trips_every_version() {
        let value = OffsetCommitValue {
            offset: 123_456_789,
            leader_epoch: 17,
            metadata: "some metadata ✓".into(),
            commit_timestamp: 1_700_000_000_123,
            expire_timestamp: 1_700_000_999_000,
        };
        for version in 0..=4 {
            let decoded =
                OffsetCommitValue::decode(&value.encode_version(version).unwrap()).unwrap();
            assert_eq!(decoded.offset, value.offset, "v{version}");
            assert_eq!(decoded.metadata, value.metadata, "v{version}");
            assert_eq!(
                decoded.commit_timestamp, value.commit_timestamp,
                "v{version}"
            );
            let epoch = if version >= 3 { 17 } else { -1 };
            assert_eq!(decoded.leader_epoch, epoch, "v{version}");
            let expire = if version == 1 {
                value.expire_timestamp
            } else {
                -1
            };
            assert_eq!(decoded.expire_timestamp, expire, "v{version}");
        }
    }

    #[test]
    fn group_metadata_value_round_trips_every_version() {
        let value = sample_group();
        for version in 0..=4 {
            let decoded =
                GroupMetadataValue::decode(&value.encode_version(version).unwrap()).unwrap();
            let mut expected = value.clone();
            if version < 2 {
                expected.current_state_timestamp = -1;
            }
            for member in &mut expected.members {
                if version < 3 {
                    member.group_instance_id = None;
                }
                if version < 1 {
                    member.rebalance_timeout = -1;
                }
            }
            assert_eq!(decoded, expected, "v{version}");
        }
    }

    #[test]
    fn group_metadata_value_v3_layout_starts_like_kafka() {
        let value = GroupMetadataValue {
            protocol_type: String::new(),
            generation: 2,
            protocol: None,
            leader: None,
            current_state_timestamp: 5,
            members: Vec::new(),
        };
        let bytes = value.encode();
        let mut expected = vec![0, 3, 0, 0];
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // null protocol, null leader
        expected.extend_from_slice(&5i64.to_be_bytes());
        expected.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(bytes.as_ref(), expected.as_slice());
    }

    #[test]
    fn group_metadata_with_huge_member_id_falls_back_to_flexible_version() {
        let mut value = sample_group();
        value.members[0].member_id = "x".repeat(40_000);
        assert_eq!(value.preferred_version(), 4);
        let bytes = value.encode();
        assert_eq!(&bytes[..2], &[0, 4]);
        assert_eq!(GroupMetadataValue::decode(&bytes).unwrap(), value);
    }

    #[test]
    fn flexible_decoder_skips_unknown_tagged_fields() {
        let value = OffsetCommitValue {
            offset: 9,
            leader_epoch: 1,
            metadata: "x".into(),
            commit_timestamp: 2,
            expire_timestamp: -1,
        };
        let mut bytes = value.encode_version(4).unwrap().to_vec();
        // Replace the empty tag section with one tag (tag 7, 2 bytes).
        bytes.pop();
        bytes.extend_from_slice(&[1, 7, 2, 0xaa, 0xbb]);
        assert_eq!(OffsetCommitValue::decode(&bytes).unwrap(), value);
    }

    #[test]
    fn newer_kafka_record_types_are_reported_as_unsupported() {
        assert_eq!(
            RecordKey::decode(&[0, 3, 0, 1, b'g']),
            Err(Error::UnsupportedRecordType(3))
        );
        assert!(matches!(
            RecordKey::decode(&[0, 99]),
            Err(Error::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error_not_a_panic() {
        let full = sample_group().encode();
        for cut in 0..full.len() {
            assert!(
                GroupMetadataValue::decode(&full[..cut]).is_err(),
                "cut {cut}"
            );
        }
        // An absurd member count must not allocate.
        let mut bytes = vec![0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        bytes.extend_from_slice(&0i64.to_be_bytes());
        bytes.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(GroupMetadataValue::decode(&bytes).is_err());
    }

    #[test]
    fn key_with_name_longer_than_int16_cannot_be_encoded() {
        let key = RecordKey::GroupMetadata {
            group: "g".repeat(40_000),
        };
        assert!(key.encode().is_err());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = RecordKey::decode(&bytes);
            let _ = OffsetCommitValue::decode(&bytes);
            let _ = GroupMetadataValue::decode(&bytes);
        }

        #[test]
        fn offset_commit_records_round_trip(
            group in ".{0,20}", topic in ".{0,20}", partition in any::<i32>(),
            offset in any::<i64>(), epoch in any::<i32>(), metadata in ".{0,40}",
            commit in any::<i64>(),
        ) {
            let key = RecordKey::OffsetCommit { group, topic, partition };
            prop_assert_eq!(RecordKey::decode(&key.encode().unwrap()).unwrap(), key);
            let value = OffsetCommitValue {
                offset, leader_epoch: epoch, metadata, commit_timestamp: commit,
                expire_timestamp: -1,
            };
            prop_assert_eq!(OffsetCommitValue::decode(&value.encode().unwrap()).unwrap(), value);
        }
    }
}
