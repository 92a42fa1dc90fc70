//! OffsetCommit: store a group's consumed positions; answered once they are durable.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_group::{OffsetCommitPartition, OffsetCommitTopic, Response};

use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, group_call};
use crate::state::BrokerState;
use kafka_protocol::error::ResponseError;
use strom_cluster::acl::AclOperation;

const GROUP_AUTHORIZATION_FAILED: i16 = ResponseError::GroupAuthorizationFailed.code();
const TOPIC_AUTHORIZATION_FAILED: i16 = ResponseError::TopicAuthorizationFailed.code();

pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 9 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: OffsetCommitRequest,
) -> Reply<OffsetCommitResponse> {
    let version = ctx.api_version;
    // Echo the request's shape in an error answer: every partition gets the code.
    let failed = |code: i16, request_topics: &[(String, Vec<i32>)]| {
        OffsetCommitResponse::default().with_topics(
            request_topics
                .iter()
                .map(|(name, partitions)| {
                    OffsetCommitResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.clone())))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|&p| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    };
    let shape: Vec<(String, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    // Kafka: READ on the group (else every partition fails), and READ on each topic (else
    // its partitions get TOPIC_AUTHORIZATION_FAILED and are not committed).
    let authz = ctx.authz(state);
    if !authz.allows_group(AclOperation::Read, &request.group_id) {
        return Reply::Now(failed(GROUP_AUTHORIZATION_FAILED, &shape));
    }
    let (topics, denied): (Vec<_>, Vec<_>) = request
        .topics
        .into_iter()
        .partition(|t| authz.allows_topic(AclOperation::Read, &t.name));
    let denied: Vec<(String, Vec<i32>)> = denied
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let denied = failed(TOPIC_AUTHORIZATION_FAILED, &denied).topics;
    if topics.is_empty() && !denied.is_empty() {
        return Reply::Now(OffsetCommitResponse::default().with_topics(denied));
    }
    let core = strom_group::OffsetCommitRequest {
        api_version: version,
        group_id: request.group_id.to_string(),
        generation_id_or_member_epoch: request.generation_id_or_member_epoch,
        member_id: request.member_id.to_string(),
        group_instance_id: (version >= 7)
            .then(|| request.group_instance_id.map(|i| i.to_string()))
            .flatten(),
        retention_time_ms: if (2..=4).contains(&version) {
            request.retention_time_ms
        } else {
            -1
        },
        topics: topics
            .into_iter()
            .map(|t| OffsetCommitTopic {
                name: t.name.to_string(),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| OffsetCommitPartition {
                        partition_index: p.partition_index,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: if version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        commit_timestamp: -1,
                        committed_metadata: p.committed_metadata.map(|m| m.to_string()),
                    })
                    .collect(),
            })
            .collect(),
    };
    group_call(
        state,
        move |c, now, id| c.offset_commit(now, id, core),
        move |response| match response {
            Some(Response::OffsetCommit(r)) => OffsetCommitResponse::default().with_topics(
                r.topics
                    .into_iter()
                    .map(|t| {
                        OffsetCommitResponseTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.name)))
                            .with_partitions(
                                t.partitions
                                    .into_iter()
                                    .map(|p| {
                                        OffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(p.error_code)
                                    })
                                    .collect(),
                            )
                    })
                    .chain(denied)
                    .collect(),
            ),
            _ => failed(COORDINATOR_NOT_AVAILABLE, &shape),
        },
    )
    .await
}
