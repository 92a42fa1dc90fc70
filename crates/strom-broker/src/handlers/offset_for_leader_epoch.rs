//! OffsetForLeaderEpoch: where a leader epoch ends in a partition's log (KIP-101, KIP-320).
//! Consumers use it to detect log truncation after a leader change; followers to truncate.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::protocol::VersionRange;

use super::{Reply, RequestContext};
use crate::errors::led_partition;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 4 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> Reply<OffsetForLeaderEpochResponse> {
    let image = state.image();
    // Kafka: a replica (replica id >= 0) needs CLUSTER_ACTION on the cluster, else every
    // partition gets CLUSTER_AUTHORIZATION_FAILED; a consumer DESCRIBE on each topic.
    let authz = ctx.authz(state);
    let replica = ctx.api_version >= 3 && request.replica_id.0 >= 0;
    let cluster_denied = replica && !authz.allows_cluster(AclOperation::ClusterAction);
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if cluster_denied {
                        return result
                            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
                    }
                    if !replica && !authz.allows_topic(AclOperation::Describe, &topic.topic) {
                        return result
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let partition = match led_partition(state, &image, &topic.topic, p.partition) {
                        Ok(partition) => partition,
                        Err(e) => return result.with_error_code(e.code()),
                    };
                    let ours = partition.leader_epoch();
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch != ours {
                        let error = if p.current_leader_epoch > ours {
                            ResponseError::UnknownLeaderEpoch
                        } else {
                            ResponseError::FencedLeaderEpoch
                        };
                        return result.with_error_code(error.code());
                    }
                    match partition.log.end_offset_for_epoch(p.leader_epoch) {
                        Some((epoch, end_offset)) => {
                            result.with_leader_epoch(epoch).with_end_offset(end_offset)
                        }
                        // UNDEFINED_EPOCH_OFFSET: the epoch is older than anything in the log.
                        None => result,
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    Reply::Now(OffsetForLeaderEpochResponse::default().with_topics(topics))
}
