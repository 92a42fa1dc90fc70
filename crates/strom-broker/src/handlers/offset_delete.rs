//! OffsetDelete (KIP-496): remove a group's committed offsets for partitions it no longer
//! consumes.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_group::{OffsetDeleteTopic, Response};

use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, group_call};
use crate::state::BrokerState;
use kafka_protocol::error::ResponseError;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: OffsetDeleteRequest,
) -> Reply<OffsetDeleteResponse> {
    // Kafka: DELETE on the group (GROUP_AUTHORIZATION_FAILED), READ on each topic (its
    // partitions get TOPIC_AUTHORIZATION_FAILED).
    let authz = ctx.authz(state);
    if !authz.allows_group(AclOperation::Delete, &request.group_id) {
        return Reply::Now(
            OffsetDeleteResponse::default()
                .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
        );
    }
    let (topics, denied): (Vec<_>, Vec<_>) = request
        .topics
        .into_iter()
        .partition(|t| authz.allows_topic(AclOperation::Read, &t.name));
    let denied: Vec<OffsetDeleteResponseTopic> = denied
        .into_iter()
        .map(|t| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        })
                        .collect(),
                )
        })
        .collect();
    let core = strom_group::OffsetDeleteRequest {
        group_id: request.group_id.to_string(),
        topics: topics
            .into_iter()
            .map(|t| OffsetDeleteTopic {
                name: t.name.to_string(),
                partition_indexes: t.partitions.iter().map(|p| p.partition_index).collect(),
            })
            .collect(),
    };
    group_call(
        state,
        move |c, now, id| c.offset_delete(now, id, core),
        move |response| match response {
            Some(Response::OffsetDelete(r)) => OffsetDeleteResponse::default()
                .with_error_code(r.error_code)
                .with_topics(
                    r.topics
                        .into_iter()
                        .map(|t| {
                            OffsetDeleteResponseTopic::default()
                                .with_name(TopicName(StrBytes::from_string(t.name)))
                                .with_partitions(
                                    t.partitions
                                        .into_iter()
                                        .map(|p| {
                                            OffsetDeleteResponsePartition::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(p.error_code)
                                        })
                                        .collect(),
                                )
                        })
                        .chain(denied)
                        .collect(),
                ),
            _ => OffsetDeleteResponse::default().with_error_code(COORDINATOR_NOT_AVAILABLE),
        },
    )
    .await
}
