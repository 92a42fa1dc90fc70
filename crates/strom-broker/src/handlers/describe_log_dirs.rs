//! DescribeLogDirs: the data directory, its partitions' sizes, and the volume's space.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::{Reply, RequestContext};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 4 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DescribeLogDirsRequest,
) -> Reply<DescribeLogDirsResponse> {
    // Kafka: DESCRIBE on the cluster, else no log dirs and CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authz(state).allows_cluster(AclOperation::Describe) {
        return Reply::Now(
            DescribeLogDirsResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
        );
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect()
    });
    let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for partition in state.partitions() {
        let tp = &partition.topic_partition;
        let included = wanted.as_ref().is_none_or(|w| {
            w.iter()
                .any(|(topic, partitions)| *topic == tp.topic && partitions.contains(&tp.partition))
        });
        if included {
            topics.entry(tp.topic.clone()).or_default().push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_partition_size(partition.log.size_bytes() as i64)
                    .with_offset_lag(0),
            );
        }
    }
    let dir = state.config.data_dir.clone();
    let (total, usable) = tokio::task::spawn_blocking(move || {
        (
            fs4::total_space(&dir).map_or(-1, |b| b as i64),
            fs4::available_space(&dir).map_or(-1, |b| b as i64),
        )
    })
    .await
    .unwrap_or((-1, -1));
    let log_dir = std::fs::canonicalize(&state.config.data_dir)
        .unwrap_or_else(|_| state.config.data_dir.clone());
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(log_dir.display().to_string()))
        .with_total_bytes(total)
        .with_usable_bytes(usable)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, mut partitions)| {
                    partitions.sort_by_key(|p| p.partition_index);
                    DescribeLogDirsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    Reply::Now(DescribeLogDirsResponse::default().with_results(vec![result]))
}
