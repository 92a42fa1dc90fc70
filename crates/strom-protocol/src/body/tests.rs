use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::*;

fn encoded<T: Encodable>(message: &T, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    message.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn is_flexible(api_key: ApiKey, version: i16) -> bool {
    api_key.request_header_version(version) >= 2
}

#[test]
fn every_non_flexible_version_of_every_request_has_a_layout() {
    let mut learned = 0;
    for (api_key, versions) in every_request_version_range() {
        for version in versions.min..=versions.max {
            if is_flexible(api_key, version) {
                continue;
            }
            // A body of zeros is the smallest the codec accepts at every non-flexible version,
            // so decoding it exercises the layout lookup for that version.
            let mut body = Bytes::from(vec![0u8; 512]);
            match decode_request_by_key(api_key, &mut body, version) {
                Ok(_) => learned += 1,
                Err(error) => panic!("{api_key:?} v{version}: {error}"),
            }
        }
    }
    assert!(learned > 100, "only {learned} non-flexible versions");
}

#[test]
fn layouts_tell_counts_from_lengths_and_values() {
    use layout::Field;
    // Metadata v0: an array of topic names.
    let fields = layout::learn::<MetadataRequest>(0).unwrap();
    assert_eq!(
        fields,
        vec![Field::Array {
            element: vec![Field::Bytes { prefix: 2 }],
            element_bytes_min: 2,
            element_fixed_bytes: None,
        }]
    );
    // Produce v3: transactional id, acks, timeout, then topics of partitions with records.
    let fields = layout::learn::<ProduceRequest>(3).unwrap();
    assert_eq!(
        fields,
        vec![
            Field::Bytes { prefix: 2 },
            Field::Fixed(6),
            Field::Array {
                element: vec![
                    Field::Bytes { prefix: 2 },
                    Field::Array {
                        element: vec![Field::Fixed(4), Field::Bytes { prefix: 4 }],
                        element_bytes_min: 8,
                        element_fixed_bytes: None,
                    },
                ],
                element_bytes_min: 6,
                element_fixed_bytes: None,
            },
        ]
    );
}

fn metadata_request(topics: usize) -> MetadataRequest {
    MetadataRequest::default().with_topics(Some(
        (0..topics)
            .map(|i| {
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(format!("topic-{i}")))))
            })
            .collect(),
    ))
}

fn produce_request(partitions: i32) -> ProduceRequest {
    let partition_data = (0..partitions)
        .map(|index| {
            PartitionProduceData::default()
                .with_index(index)
                .with_records(Some(Bytes::from(vec![7u8; 100])))
        })
        .collect();
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("events")))
                .with_partition_data(partition_data),
        ])
}

fn fetch_request(partitions: i32) -> FetchRequest {
    let partitions = (0..partitions)
        .map(|partition| {
            FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(1_000_000)
                .with_partition_max_bytes(1 << 20)
        })
        .collect();
    FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(i32::MAX)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("events")))
                .with_partitions(partitions),
        ])
}

/// Real requests at every version they encode at decode the same through the bounds as
/// without them: the bounds refuse nothing a client sends. Large plain values (timeouts,
/// `max_bytes`, offsets) near the end of a body are the case a wrong layout would refuse.
#[test]
fn real_requests_decode_the_same_with_and_without_bounds() {
    let mut checked = 0;
    for version in MetadataRequest::VERSIONS.min..=MetadataRequest::VERSIONS.max {
        let request = metadata_request(3);
        let mut body = encoded(&request, version);
        let decoded: MetadataRequest = decode_request(&mut body, version).unwrap();
        assert_eq!(decoded.topics.unwrap().len(), 3, "Metadata v{version}");
        checked += 1;
    }
    // From v13 topics go by id and the name is not encoded, so the comparison stops at v12.
    for version in 3..=12 {
        let request = produce_request(4);
        let mut body = encoded(&request, version);
        let decoded: ProduceRequest = decode_request(&mut body, version).unwrap();
        assert_eq!(decoded, request, "Produce v{version}");
        checked += 1;
    }
    for version in 4..=12 {
        let request = fetch_request(50);
        let mut body = encoded(&request, version);
        let decoded: FetchRequest = decode_request(&mut body, version).unwrap();
        assert_eq!(decoded.topics[0].partitions.len(), 50, "Fetch v{version}");
        checked += 1;
    }
    assert!(checked > 20);
}

#[test]
fn every_default_request_decodes_at_every_version_it_encodes_at() {
    macro_rules! defaults {
        ($($key:ident => $request:ident),* $(,)?) => {
            $(
                for version in $request::VERSIONS.min..=$request::VERSIONS.max {
                    let request = $request::default();
                    let mut buf = BytesMut::new();
                    if request.encode(&mut buf, version).is_err() {
                        // The default sets a field this version lacks.
                        continue;
                    }
                    let mut body = buf.freeze();
                    let decoded: $request = decode_request(&mut body, version)
                        .unwrap_or_else(|e| panic!("{} v{version}: {e}", stringify!($key)));
                    assert_eq!(decoded, request, "{} v{version}", stringify!($key));
                }
            )*
        };
    }
    every_request!(defaults);
}

#[test]
fn huge_array_count_is_refused_before_decoding() {
    // Metadata v1: topics count i32::MAX, then nothing.
    let mut body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
    let error = decode_request::<MetadataRequest>(&mut body, 1).unwrap_err();
    assert!(
        matches!(
            error,
            BodyError::Oversized {
                what: "array",
                declared: 0x7fff_ffff,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn nested_huge_count_is_refused() {
    // Produce v3: null transactional id, acks, timeout, one topic "t", partitions i32::MAX.
    let mut body = BytesMut::new();
    body.put_i16(-1);
    body.put_i16(1);
    body.put_i32(1000);
    body.put_i32(1);
    body.put_i16(1);
    body.put_u8(b't');
    body.put_i32(i32::MAX);
    body.put_bytes(0, 40);
    let error = decode_request::<ProduceRequest>(&mut body.freeze(), 3).unwrap_err();
    assert!(
        matches!(error, BodyError::Oversized { what: "array", .. }),
        "{error}"
    );
}

#[test]
fn huge_records_length_is_refused() {
    let mut body = BytesMut::new();
    body.put_i16(-1);
    body.put_i16(1);
    body.put_i32(1000);
    body.put_i32(1);
    body.put_i16(1);
    body.put_u8(b't');
    body.put_i32(1);
    body.put_i32(0); // partition index
    body.put_i32(i32::MAX); // records length
    body.put_bytes(0, 40);
    let error = decode_request::<ProduceRequest>(&mut body.freeze(), 3).unwrap_err();
    assert!(
        matches!(error, BodyError::Oversized { what: "length", .. }),
        "{error}"
    );
}

#[test]
fn huge_compact_count_is_refused() {
    // Metadata v12: compact topics count 2^32 - 1.
    let mut body = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0]);
    let error = decode_request::<MetadataRequest>(&mut body, 12).unwrap_err();
    assert!(matches!(error, BodyError::Oversized { .. }), "{error}");
}

#[test]
fn huge_compact_string_is_refused() {
    // CreateTopics v5: one topic whose compact name claims 2^28 bytes.
    let mut body = Bytes::from_static(&[0x02, 0x80, 0x80, 0x80, 0x80, 0x01, b'a']);
    let error = decode_request::<CreateTopicsRequest>(&mut body, 5).unwrap_err();
    assert!(matches!(error, BodyError::Oversized { .. }), "{error}");
}

#[test]
fn versions_outside_the_codec_are_refused() {
    let mut body = Bytes::new();
    assert!(matches!(
        decode_request::<MetadataRequest>(&mut body, 99),
        Err(BodyError::Malformed(_))
    ));
}

/// Found by the `request_decode` fuzz target: the varint rule cannot tell a tag from a count, so
/// an unknown tag number above the bytes after it is refused. Kafka numbers tags from 0 and no
/// client sends such a tag; this pins the documented limit.
#[test]
fn a_tag_number_above_the_bytes_after_it_is_refused() {
    // AlterUserScramCredentials v0: no deletions, no upsertions, one tagged field, tag 131,
    // one byte of data.
    let tagged = [1, 1, 1, 0x83, 0x01, 1, b'x'];
    let error =
        decode_request::<AlterUserScramCredentialsRequest>(&mut Bytes::copy_from_slice(&tagged), 0)
            .unwrap_err();
    assert!(
        matches!(
            error,
            BodyError::Oversized {
                what: varint::REFUSED_VARINT,
                declared: 131,
                ..
            }
        ),
        "{error}"
    );
    // The same field with enough bytes behind it passes.
    let mut padded = tagged.to_vec();
    padded.extend_from_slice(&[0; 200]);
    let request: AlterUserScramCredentialsRequest =
        decode_request(&mut Bytes::from(padded), 0).unwrap();
    assert_eq!(request.unknown_tagged_fields.len(), 1);
}
