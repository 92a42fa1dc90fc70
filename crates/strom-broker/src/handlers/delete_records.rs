//! DeleteRecords: move partitions' log start offsets forward; whole segments below the new
//! start are deleted, and reads below it get OFFSET_OUT_OF_RANGE.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{Reply, RequestContext};
use crate::errors::{KafkaError, led_partition};
use crate::partition::Partition;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// "Up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DeleteRecordsRequest,
) -> Reply<DeleteRecordsResponse> {
    let image = state.image();
    let authz = ctx.authz(state);
    let mut topics = Vec::with_capacity(request.topics.len());
    let mut work: Vec<(usize, usize, Arc<Partition>, i64)> = Vec::new();
    for (t, topic) in request.topics.iter().enumerate() {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for (slot, p) in topic.partitions.iter().enumerate() {
            let result = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            // Kafka: DELETE on the topic.
            let found = if authz.allows_topic(AclOperation::Delete, &topic.name) {
                led_partition(state, &image, &topic.name, p.partition_index)
            } else {
                Err(crate::security::authz::topic_denied(&topic.name))
            };
            match found {
                Ok(partition) => {
                    work.push((t, slot, partition, p.offset));
                    partitions.push(result);
                }
                Err(e) => partitions.push(result.with_error_code(e.code())),
            }
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    let outcomes = tokio::task::spawn_blocking(move || {
        work.into_iter()
            .map(|(t, slot, partition, offset)| (t, slot, delete_before(&partition, offset)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for (t, slot, outcome) in outcomes {
        let entry = &mut topics[t].partitions[slot];
        match outcome {
            Ok(low_watermark) => entry.low_watermark = low_watermark,
            Err(e) => entry.error_code = e.code(),
        }
    }
    Reply::Now(DeleteRecordsResponse::default().with_topics(topics))
}

fn delete_before(partition: &Partition, offset: i64) -> Result<i64, KafkaError> {
    let high_watermark = partition.high_watermark().0;
    let target = if offset == HIGH_WATERMARK {
        high_watermark
    } else {
        offset
    };
    if target < 0 || target > high_watermark {
        return Err(KafkaError::new(
            ResponseError::OffsetOutOfRange,
            format!(
                "Cannot delete records before {offset}: the high watermark is {high_watermark}"
            ),
        ));
    }
    partition
        .log
        .delete_records_before(target)
        .map_err(|e| KafkaError::from(&e))
}
