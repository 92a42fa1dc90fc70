use super::*;
use proptest::prelude::*;

/// An Ongoing transaction of producer 1000 on partitions t-0 and t-2, with every tagged
/// field at its default.
fn ongoing() -> TransactionLogValue {
    TransactionLogValue {
        producer_id: 1000,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch: 5,
        transaction_timeout_ms: 60_000,
        state: 1,
        partitions: vec![("t".into(), vec![0, 2])],
        last_update_timestamp_ms: 1_700_000_000_500,
        start_timestamp_ms: 1_700_000_000_000,
        client_transaction_version: 0,
    }
}

/// The fields both versions share for [`ongoing`], after the version prefix, in the
/// classic encodings of version 0.
fn ongoing_v0_body() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x03, 0xe8]); // ProducerId 1000
    b.extend_from_slice(&[0, 5]); // ProducerEpoch 5
    b.extend_from_slice(&[0, 0, 0xea, 0x60]); // TransactionTimeoutMs 60000
    b.push(1); // TransactionStatus Ongoing
    b.extend_from_slice(&[0, 0, 0, 1]); // TransactionPartitions: int32 count 1
    b.extend_from_slice(&[0, 1, b't']); //   Topic "t": int16 length 1
    b.extend_from_slice(&[0, 0, 0, 2]); //   PartitionIds: int32 count 2
    b.extend_from_slice(&[0, 0, 0, 0]); //     0
    b.extend_from_slice(&[0, 0, 0, 2]); //     2
    b.extend_from_slice(&[0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x69, 0xf4]); // LastUpdate ...500
    b.extend_from_slice(&[0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00]); // Start ...000
    b
}

#[test]
fn key_matches_kafka_bytes() {
    let bytes = encode_key("txn-1").unwrap();
    let expected = [
        0, 0, // key version 0
        0, 5, // TransactionalId: int16 length 5
        b't', b'x', b'n', b'-', b'1',
    ];
    assert_eq!(bytes.as_ref(), &expected[..]);
    assert_eq!(decode_key(&expected).unwrap(), "txn-1");
    assert_eq!(key_version(&expected), Some(KEY_VERSION));
}

#[test]
fn value_v0_matches_kafka_bytes() {
    let mut expected = vec![0, 0]; // value version 0
    expected.extend(ongoing_v0_body());
    let bytes = encode_value(&ongoing());
    assert_eq!(bytes.as_ref(), expected.as_slice());
    assert_eq!(decode_value(&expected).unwrap(), ongoing());
}

#[test]
fn value_v1_with_tagged_fields_matches_kafka_bytes() {
    let value = TransactionLogValue {
        previous_producer_id: 999,
        state: 2,
        client_transaction_version: 2,
        ..ongoing()
    };
    // Lengths and counts are unsigned varints of n+1 in this flexible version.
    let expected: Vec<u8> = [
        &[0, 1][..],                                 // value version 1
        &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],             // ProducerId 1000
        &[0, 5],                                     // ProducerEpoch 5
        &[0, 0, 0xea, 0x60],                         // TransactionTimeoutMs 60000
        &[2],                                        // TransactionStatus PrepareCommit
        &[2],                                        // TransactionPartitions: count 1
        &[2, b't'],                                  //   Topic "t"
        &[3],                                        //   PartitionIds: count 2
        &[0, 0, 0, 0],                               //     0
        &[0, 0, 0, 2],                               //     2
        &[0],                                        //   the entry's tag section: empty
        &[0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x69, 0xf4], // LastUpdateTimestampMs
        &[0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00], // StartTimestampMs
        &[2],                                        // the value's tag section: 2 fields
        &[0, 8],                                     //   tag 0 PreviousProducerId, size 8
        &[0, 0, 0, 0, 0, 0, 0x03, 0xe7],             //     999
        &[2, 2],                                     //   tag 2 ClientTransactionVersion, size 2
        &[0, 2],                                     //     2
    ]
    .concat();
    assert_eq!(value.preferred_version(), 1);
    assert_eq!(encode_value(&value).as_ref(), expected.as_slice());
    assert_eq!(decode_value(&expected).unwrap(), value);
}

#[test]
fn next_producer_id_is_tag_one() {
    let value = TransactionLogValue {
        next_producer_id: 7,
        ..ongoing()
    };
    let bytes = encode_value(&value);
    // The tag section is the tail: count 1, tag 1, size 8, int64 7.
    assert_eq!(
        &bytes[bytes.len() - 11..],
        &[1, 1, 8, 0, 0, 0, 0, 0, 0, 0, 7]
    );
    assert_eq!(decode_value(&bytes).unwrap(), value);
}

#[test]
fn decodes_version_0_and_version_1_without_tags() {
    let mut v0 = vec![0, 0];
    v0.extend(ongoing_v0_body());
    // The same value in version 1 with no tagged fields, as Kafka writes it at
    // transaction.version 1 for a client of transaction version 0.
    let v1: Vec<u8> = [
        &[0, 1][..],
        &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],
        &[0, 5],
        &[0, 0, 0xea, 0x60],
        &[1],
        &[2, 2, b't', 3, 0, 0, 0, 0, 0, 0, 0, 2, 0],
        &[0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x69, 0xf4],
        &[0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00],
        &[0],
    ]
    .concat();
    assert_eq!(decode_value(&v0).unwrap(), ongoing());
    assert_eq!(decode_value(&v1).unwrap(), ongoing());
    assert_eq!(
        encode_value_version(&ongoing(), 1).unwrap().as_ref(),
        v1.as_slice()
    );
}

#[test]
fn empty_transaction_stores_null_partitions() {
    let empty = TransactionLogValue {
        state: 0,
        partitions: Vec::new(),
        ..ongoing()
    };
    let v0 = encode_value_version(&empty, 0).unwrap();
    // After producer id, epoch, timeout and status: int32 -1, the null array.
    assert_eq!(&v0[2 + 8 + 2 + 4 + 1..][..4], &[0xff, 0xff, 0xff, 0xff]);
    let v1 = encode_value_version(&empty, 1).unwrap();
    assert_eq!(v1[2 + 8 + 2 + 4 + 1], 0); // compact null
    assert_eq!(decode_value(&v0).unwrap(), empty);
    assert_eq!(decode_value(&v1).unwrap(), empty);
}

#[test]
fn completed_transaction_stores_an_empty_array() {
    let done = TransactionLogValue {
        state: 4,
        partitions: Vec::new(),
        ..ongoing()
    };
    let v0 = encode_value(&done);
    assert_eq!(&v0[2 + 8 + 2 + 4 + 1..][..4], &[0, 0, 0, 0]);
    assert_eq!(decode_value(&v0).unwrap(), done);
}

#[test]
fn partitions_of_an_empty_transaction_are_not_kept() {
    // Kafka refuses to write these and ignores them on read; Strom writes null and
    // reads nothing.
    let empty_with_partitions = TransactionLogValue {
        state: 0,
        ..ongoing()
    };
    let bytes = encode_value(&empty_with_partitions);
    assert!(decode_value(&bytes).unwrap().partitions.is_empty());

    let mut stored = vec![0, 0];
    stored.extend(ongoing_v0_body());
    stored[2 + 8 + 2 + 4] = 0; // status Empty, partitions still stored
    assert!(decode_value(&stored).unwrap().partitions.is_empty());
}

#[test]
fn null_partitions_in_another_state_read_as_none() {
    let mut bytes = vec![0, 0];
    bytes.extend_from_slice(&[0; 8]); // ProducerId 0
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 3]); // epoch 0, timeout 0, PrepareAbort
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // null partitions
    bytes.extend_from_slice(&[0; 16]); // timestamps 0
    let decoded = decode_value(&bytes).unwrap();
    assert_eq!(decoded.state, 3);
    assert!(decoded.partitions.is_empty());
}

#[test]
fn unknown_tagged_fields_are_skipped() {
    let value = TransactionLogValue {
        client_transaction_version: 2,
        ..ongoing()
    };
    let bytes: Vec<u8> = [
        &[0, 1][..],
        &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],
        &[0, 5],
        &[0, 0, 0xea, 0x60],
        &[1],
        &[2, 2, b't', 3, 0, 0, 0, 0, 0, 0, 0, 2],
        &[1, 100, 3, b'a', b'b', b'c'], // the entry's tags: unknown tag 100, 3 bytes
        &[0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x69, 0xf4],
        &[0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00],
        &[3],             // three tagged fields:
        &[2, 2, 0, 2],    //   ClientTransactionVersion 2
        &[3, 2, 0, 9],    //   tag 3, a newer Kafka's NextProducerEpoch 9
        &[0x80, 0x01, 0], //   tag 128 (two-byte varint), empty
    ]
    .concat();
    assert_eq!(decode_value(&bytes).unwrap(), value);
}

#[test]
fn known_tag_with_wrong_size_is_corrupt() {
    let mut bytes = encode_value_version(&ongoing(), 1).unwrap().to_vec();
    bytes.pop(); // the empty tag section
    bytes.extend_from_slice(&[1, 0, 4, 0, 0, 0, 1]); // PreviousProducerId in 4 bytes
    assert!(matches!(decode_value(&bytes), Err(Error::Corrupt(_))));
}

#[test]
fn explicit_version_0_drops_tagged_fields() {
    let value = TransactionLogValue {
        previous_producer_id: 1,
        next_producer_id: 2,
        client_transaction_version: 2,
        ..ongoing()
    };
    let bytes = encode_value_version(&value, 0).unwrap();
    assert_eq!(&bytes[..2], &[0, 0]);
    assert_eq!(decode_value(&bytes).unwrap(), ongoing());
    assert!(encode_value_version(&value, 2).is_err());
    assert!(encode_value_version(&value, -1).is_err());
}

#[test]
fn preferred_version_is_the_oldest_that_holds_the_value() {
    assert_eq!(ongoing().preferred_version(), 0);
    for value in [
        TransactionLogValue {
            previous_producer_id: 0,
            ..ongoing()
        },
        TransactionLogValue {
            next_producer_id: 0,
            ..ongoing()
        },
        TransactionLogValue {
            client_transaction_version: 1,
            ..ongoing()
        },
    ] {
        assert_eq!(value.preferred_version(), 1, "{value:?}");
        assert_eq!(&encode_value(&value)[..2], &[0, 1]);
    }
}

#[test]
fn topic_too_long_for_version_0_falls_back_to_version_1() {
    let value = TransactionLogValue {
        partitions: vec![("x".repeat(40_000), vec![1])],
        ..ongoing()
    };
    assert_eq!(value.preferred_version(), 1);
    assert!(encode_value_version(&value, 0).is_err());
    let bytes = encode_value(&value);
    assert_eq!(&bytes[..2], &[0, 1]);
    assert_eq!(decode_value(&bytes).unwrap(), value);
}

#[test]
fn transactional_id_longer_than_int16_is_refused() {
    let longest = "i".repeat(MAX_TRANSACTIONAL_ID_LEN);
    assert_eq!(decode_key(&encode_key(&longest).unwrap()).unwrap(), longest);
    assert!(matches!(
        encode_key(&"i".repeat(MAX_TRANSACTIONAL_ID_LEN + 1)),
        Err(Error::Corrupt(_))
    ));
}

#[test]
fn unknown_versions_are_corrupt() {
    assert!(matches!(
        decode_key(&[0, 1, 0, 1, b'x']),
        Err(Error::Corrupt(_))
    ));
    assert_eq!(key_version(&[0, 1, 0, 1, b'x']), Some(1));
    assert_eq!(key_version(&[0]), None);
    let mut bytes = encode_value(&ongoing()).to_vec();
    bytes[1] = 2;
    assert!(matches!(decode_value(&bytes), Err(Error::Corrupt(_))));
    bytes[0] = 0xff;
    bytes[1] = 0xff;
    assert!(matches!(decode_value(&bytes), Err(Error::Corrupt(_))));
}

#[test]
fn truncated_input_is_corrupt_not_a_panic() {
    let key = encode_key("some-id").unwrap();
    for cut in 0..key.len() {
        assert!(decode_key(&key[..cut]).is_err(), "key cut {cut}");
    }
    let value = TransactionLogValue {
        next_producer_id: 3,
        partitions: vec![("a".into(), vec![1, 2]), ("bb".into(), vec![])],
        ..ongoing()
    };
    for version in 0..=VALUE_MAX_VERSION {
        let full = encode_value_version(&value, version).unwrap();
        for cut in 0..full.len() {
            assert!(decode_value(&full[..cut]).is_err(), "v{version} cut {cut}");
        }
    }
}

#[test]
fn bad_lengths_and_utf8_are_corrupt() {
    // A non-UTF-8 transactional id.
    assert!(decode_key(&[0, 0, 0, 2, 0xc3, 0x28]).is_err());
    // A null (-1) and a negative (-2) transactional id length.
    assert!(decode_key(&[0, 0, 0xff, 0xff]).is_err());
    assert!(decode_key(&[0, 0, 0xff, 0xfe]).is_err());

    let header = |count: [u8; 4]| {
        let mut b = vec![0, 0];
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1]); // epoch, timeout, Ongoing
        b.extend_from_slice(&count);
        b
    };
    // An absurd partitions count must fail before allocating.
    let mut huge = header(i32::MAX.to_be_bytes());
    huge.extend_from_slice(&[0; 32]);
    assert!(decode_value(&huge).is_err());
    // A negative count other than -1.
    assert!(decode_value(&header((-2i32).to_be_bytes())).is_err());
    // A compact varint longer than Kafka's 5 bytes.
    let mut long_varint = vec![0, 1];
    long_varint.extend_from_slice(&[0; 8]);
    long_varint.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1]);
    long_varint.extend_from_slice(&[0xff; 6]);
    assert!(decode_value(&long_varint).is_err());
}

#[test]
fn trailing_bytes_are_ignored() {
    let mut key = encode_key("id").unwrap().to_vec();
    key.extend_from_slice(b"later");
    assert_eq!(decode_key(&key).unwrap(), "id");
    let mut value = encode_value(&ongoing()).to_vec();
    value.extend_from_slice(&[1, 2, 3]);
    assert_eq!(decode_value(&value).unwrap(), ongoing());
}

fn any_value() -> impl Strategy<Value = TransactionLogValue> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i16>()),
        (any::<i32>(), any::<u8>(), any::<i64>(), any::<i64>()),
        any::<i16>(),
        proptest::collection::vec(
            (".{0,12}", proptest::collection::vec(any::<i32>(), 0..5)),
            0..4,
        ),
    )
        .prop_map(
            |((pid, prev, next, epoch), (timeout, state, last, start), cv, partitions)| {
                TransactionLogValue {
                    producer_id: pid,
                    previous_producer_id: prev,
                    next_producer_id: next,
                    producer_epoch: epoch,
                    transaction_timeout_ms: timeout,
                    state,
                    partitions,
                    last_update_timestamp_ms: last,
                    start_timestamp_ms: start,
                    client_transaction_version: cv,
                }
            },
        )
}

/// What a round trip keeps: an Empty transaction's partitions are never stored.
fn as_stored(mut value: TransactionLogValue) -> TransactionLogValue {
    if value.state == EMPTY_STATUS {
        value.partitions.clear();
    }
    value
}

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_key(&bytes);
        let _ = key_version(&bytes);
        let _ = decode_value(&bytes);
        // Also with a valid version prefix, so the field decoding is exercised.
        for version in 0..=VALUE_MAX_VERSION {
            let mut prefixed = version.to_be_bytes().to_vec();
            prefixed.extend_from_slice(&bytes);
            let _ = decode_value(&prefixed);
        }
    }

    #[test]
    fn values_round_trip(value in any_value()) {
        let expected = as_stored(value.clone());
        let bytes = encode_value(&value);
        prop_assert_eq!(i16::from_be_bytes([bytes[0], bytes[1]]), value.preferred_version());
        prop_assert_eq!(decode_value(&bytes).unwrap(), expected.clone());
        prop_assert_eq!(
            decode_value(&encode_value_version(&value, 1).unwrap()).unwrap(),
            expected.clone()
        );
        let v0 = TransactionLogValue {
            previous_producer_id: -1,
            next_producer_id: -1,
            client_transaction_version: 0,
            ..expected
        };
        prop_assert_eq!(decode_value(&encode_value_version(&value, 0).unwrap()).unwrap(), v0);
    }

    #[test]
    fn keys_round_trip(id in ".{0,40}") {
        prop_assert_eq!(decode_key(&encode_key(&id).unwrap()).unwrap(), id);
    }
}
