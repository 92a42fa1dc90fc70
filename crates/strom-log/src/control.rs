//! Control batches: the COMMIT and ABORT markers that end a transaction in a partition.
//!
//! A marker is a batch of one record with the transactional and control attribute bits, the
//! producer's id and epoch, and no sequence. Its record's key is the control record type and
//! its value the end-transaction marker, both Kafka's formats:
//!
//! ```text
//! key   = int16 version (0), int16 type (0 ABORT, 1 COMMIT)
//! value = int16 version (0), int32 coordinator_epoch
//! ```
//!
//! A partition leader writes one for WriteTxnMarkers; followers store it as fetched; readers
//! (the producer state, the aborted-transaction index, `read_committed` consumers) learn from
//! it whether the transaction's records count.

use bytes::BytesMut;

use crate::batch::{
    self, BatchError, BatchFields, BatchHeader, CONTROL_BIT, NO_SEQUENCE, TRANSACTIONAL_BIT,
};

const CONTROL_KEY_VERSION: i16 = 0;
const ABORT: i16 = 0;
const COMMIT: i16 = 1;
const MARKER_VALUE_VERSION: i16 = 0;

/// What a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub commit: bool,
    /// The leader epoch of the coordinator's `__transaction_state` partition when it decided.
    pub coordinator_epoch: i32,
}

/// A marker batch at base offset 0 (the log assigns the offset on append).
pub fn marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: Marker,
    partition_leader_epoch: i32,
    timestamp_ms: i64,
) -> BytesMut {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&CONTROL_KEY_VERSION.to_be_bytes());
    key.extend_from_slice(&(if marker.commit { COMMIT } else { ABORT }).to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&MARKER_VALUE_VERSION.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let mut record = Vec::with_capacity(24);
    // No headers: a zero header count.
    batch::encode_record(&mut record, 0, 0, Some(&key), Some(&value), &[0]);
    let fields = BatchFields {
        base_offset: 0,
        partition_leader_epoch,
        attributes: TRANSACTIONAL_BIT | CONTROL_BIT,
        last_offset_delta: 0,
        base_timestamp: timestamp_ms,
        max_timestamp: timestamp_ms,
        producer_id,
        producer_epoch,
        base_sequence: NO_SEQUENCE,
        records_count: 1,
    };
    // An uncompressed batch cannot fail to build.
    batch::build_batch(&fields, &record).unwrap_or_default()
}

/// The marker a control batch carries. `Ok(None)` for a batch that is not a control batch,
/// or whose control record is of a type this version does not know (Kafka skips those too).
pub fn parse_marker(batch: &[u8], header: &BatchHeader) -> Result<Option<Marker>, BatchError> {
    if !header.is_control() {
        return Ok(None);
    }
    let payload = batch::records_payload(batch)?;
    let Some(record) = batch::records(payload.as_slice(), header.records_count).next() else {
        return Err(BatchError::MalformedRecord(
            "a control batch without a record",
        ));
    };
    let record = record?;
    let key = record.key.ok_or(BatchError::MalformedRecord(
        "a control record without a key",
    ))?;
    let [v0, v1, t0, t1, ..] = *key else {
        return Err(BatchError::MalformedRecord(
            "a control record key under 4 bytes",
        ));
    };
    if i16::from_be_bytes([v0, v1]) != CONTROL_KEY_VERSION {
        return Ok(None);
    }
    let commit = match i16::from_be_bytes([t0, t1]) {
        COMMIT => true,
        ABORT => false,
        _ => return Ok(None),
    };
    let coordinator_epoch = match record.value {
        Some([_, _, e0, e1, e2, e3, ..]) => i32::from_be_bytes([*e0, *e1, *e2, *e3]),
        _ => return Err(BatchError::MalformedRecord("a marker value under 6 bytes")),
    };
    Ok(Some(Marker {
        commit,
        coordinator_epoch,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Validation;
    use crate::testing::{BatchSpec, Rec, encode};

    fn header_of(bytes: &[u8]) -> BatchHeader {
        batch::validate(bytes, Validation::Produce).expect("a valid batch")
    }

    #[test]
    fn a_marker_batch_is_a_valid_control_batch_that_parses_back() {
        for commit in [true, false] {
            let marker = Marker {
                commit,
                coordinator_epoch: 17,
            };
            let bytes = marker_batch(42, 3, marker, 5, 1_700_000_000_000);
            let header = header_of(&bytes);
            assert!(header.is_control() && header.is_transactional());
            assert_eq!(
                (
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence
                ),
                (42, 3, NO_SEQUENCE)
            );
            assert_eq!(
                (header.records_count, header.partition_leader_epoch),
                (1, 5)
            );
            assert_eq!(parse_marker(&bytes, &header), Ok(Some(marker)));
        }
    }

    #[test]
    fn the_record_bytes_are_kafkas() {
        let bytes = marker_batch(
            1,
            0,
            Marker {
                commit: true,
                coordinator_epoch: 0x0102_0304,
            },
            0,
            0,
        );
        let header = header_of(&bytes);
        let payload = batch::records_payload(&bytes).unwrap();
        let record = batch::records(payload.as_slice(), 1)
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(record.key, Some(&[0, 0, 0, 1][..]), "version 0, COMMIT");
        assert_eq!(
            record.value,
            Some(&[0, 0, 1, 2, 3, 4][..]),
            "version 0, epoch"
        );
        assert_eq!(header.size(), bytes.len());
    }

    #[test]
    fn data_batches_and_unknown_control_types_carry_no_marker() {
        let data = encode(&[Rec::kv(b"k", b"v", 0)], &BatchSpec::default());
        assert_eq!(parse_marker(&data, &header_of(&data)), Ok(None));

        let control = |key: &[u8], value: &[u8]| {
            encode(
                &[Rec::kv(key, value, 0)],
                &BatchSpec {
                    producer_id: 1,
                    producer_epoch: 0,
                    transactional: true,
                    control: true,
                    ..BatchSpec::default()
                },
            )
        };
        // Type 5 is not a marker Strom knows (Kafka has other control types, e.g. KRaft's).
        let unknown = control(&[0, 0, 0, 5], &[0, 0, 0, 0, 0, 0]);
        assert_eq!(parse_marker(&unknown, &header_of(&unknown)), Ok(None));
        let short_key = control(&[0, 0, 0], &[0, 0, 0, 0, 0, 0]);
        assert!(parse_marker(&short_key, &header_of(&short_key)).is_err());
        let short_value = control(&[0, 0, 0, 0], &[0, 0]);
        assert!(parse_marker(&short_value, &header_of(&short_value)).is_err());
    }
}
