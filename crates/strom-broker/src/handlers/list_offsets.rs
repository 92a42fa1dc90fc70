//! ListOffsets: earliest, latest, max-timestamp and by-timestamp offsets of partitions.
//!
//! What a consumer may fetch bounds every answer but the earliest: the high watermark for
//! read_uncommitted, the last stable offset for read_committed (v2+, KIP-98). LATEST is that
//! bound, and a timestamp or max-timestamp match at or beyond it is no match, as in Kafka.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{Reply, RequestContext};
use crate::errors::{KafkaError, led_partition};
use crate::partition::Partition;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 10 };

/// Kafka's special timestamps (ListOffsetsRequest).
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

/// The first version whose response carries the leader epoch.
const LEADER_EPOCH_VERSION: i16 = 4;

/// The isolation level that sees only committed transactions.
const READ_COMMITTED: i8 = 1;

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: ListOffsetsRequest,
) -> Reply<ListOffsetsResponse> {
    let image = state.image();
    let authz = ctx.authz(state);
    let mut topics = Vec::with_capacity(request.topics.len());
    let mut lookups: Vec<(usize, usize, Arc<Partition>, i64)> = Vec::new();
    for (t, topic) in request.topics.iter().enumerate() {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for (slot, p) in topic.partitions.iter().enumerate() {
            let response = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            // Kafka: DESCRIBE on the topic.
            let found = if authz.allows_topic(AclOperation::Describe, &topic.name) {
                led_partition(state, &image, &topic.name, p.partition_index)
            } else {
                Err(crate::security::authz::topic_denied(&topic.name))
            };
            let found = found.and_then(|partition| {
                let ours = partition.leader_epoch();
                match p.current_leader_epoch {
                    e if e < 0 || e == ours => Ok(partition),
                    e if e > ours => Err(KafkaError::new(ResponseError::UnknownLeaderEpoch, "")),
                    _ => Err(KafkaError::new(ResponseError::FencedLeaderEpoch, "")),
                }
            });
            match found {
                Ok(partition) => lookups.push((t, slot, partition, p.timestamp)),
                Err(e) => {
                    partitions.push(response.with_error_code(e.code()));
                    continue;
                }
            }
            partitions.push(response);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }

    // v0 and v1 have no isolation level: the field reads 0 (read_uncommitted) there.
    let read_committed = request.isolation_level == READ_COMMITTED;
    let results = tokio::task::spawn_blocking(move || {
        lookups
            .into_iter()
            .map(|(t, slot, partition, timestamp)| {
                (t, slot, lookup(&partition, timestamp, read_committed))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for (t, slot, result) in results {
        let entry = &mut topics[t].partitions[slot];
        match result {
            Ok((timestamp, offset, epoch)) => {
                entry.timestamp = timestamp;
                entry.offset = offset;
                if ctx.api_version >= LEADER_EPOCH_VERSION {
                    entry.leader_epoch = epoch;
                }
            }
            Err(e) => entry.error_code = e.code(),
        }
    }
    Reply::Now(ListOffsetsResponse::default().with_topics(topics))
}

/// (timestamp, offset, leader epoch) for one partition; -1s when no record matches.
fn lookup(
    partition: &Partition,
    timestamp: i64,
    read_committed: bool,
) -> Result<(i64, i64, i32), KafkaError> {
    let log = &partition.log;
    let none = (-1, -1, -1);
    // The first offset a consumer of this isolation level may not fetch.
    let fetchable_end = if read_committed {
        partition.last_stable_offset()
    } else {
        partition.high_watermark().0
    };
    match timestamp {
        LATEST => Ok((-1, fetchable_end, partition.leader_epoch())),
        EARLIEST | EARLIEST_LOCAL => Ok((-1, log.log_start_offset(), -1)),
        // No tiered storage: nothing is tiered or waiting for upload.
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok(none),
        MAX_TIMESTAMP => match log.max_timestamp_and_offset() {
            Ok(Some(found)) if found.offset < fetchable_end => {
                Ok((found.timestamp, found.offset, found.leader_epoch))
            }
            Ok(_) => Ok(none),
            Err(e) => Err(KafkaError::from(&e)),
        },
        t if t < 0 => Err(KafkaError::new(
            ResponseError::InvalidRequest,
            format!("{t} is not a timestamp ListOffsets understands"),
        )),
        t => match log.offset_for_timestamp(t) {
            // Only fetchable records are visible: a match at or above the high watermark (the
            // LSO for read_committed) is reported as no match, as Kafka does.
            Ok(Some(found)) if found.offset < fetchable_end => {
                Ok((found.timestamp, found.offset, found.leader_epoch))
            }
            Ok(_) => Ok(none),
            Err(e) => Err(KafkaError::from(&e)),
        },
    }
}
