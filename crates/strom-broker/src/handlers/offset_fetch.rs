//! OffsetFetch: a group's committed offsets; v8+ for several groups at once.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_group::{OffsetFetchGroup, OffsetFetchGroupResponse, OffsetFetchTopic, Response};

use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, group_call};
use crate::state::BrokerState;
use kafka_protocol::error::ResponseError;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 9 };

/// The first version that names several groups.
const MULTI_GROUP_VERSION: i16 = 8;

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: OffsetFetchRequest,
) -> Reply<OffsetFetchResponse> {
    let version = ctx.api_version;
    let groups: Vec<OffsetFetchGroup> = if version >= MULTI_GROUP_VERSION {
        request
            .groups
            .into_iter()
            .map(|g| OffsetFetchGroup {
                group_id: g.group_id.to_string(),
                member_id: g.member_id.map(|m| m.to_string()),
                member_epoch: g.member_epoch,
                topics: g.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| OffsetFetchTopic {
                            name: t.name.to_string(),
                            partition_indexes: t.partition_indexes,
                        })
                        .collect()
                }),
            })
            .collect()
    } else {
        vec![OffsetFetchGroup {
            group_id: request.group_id.to_string(),
            member_id: None,
            member_epoch: -1,
            topics: request.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| OffsetFetchTopic {
                        name: t.name.to_string(),
                        partition_indexes: t.partition_indexes,
                    })
                    .collect()
            }),
        }]
    };
    let group_ids: Vec<String> = groups.iter().map(|g| g.group_id.clone()).collect();
    // Kafka: DESCRIBE on each group (else GROUP_AUTHORIZATION_FAILED); of its topics, those
    // the principal may not DESCRIBE are left out when all were asked for, and get
    // TOPIC_AUTHORIZATION_FAILED when named.
    let authz = ctx.authz(state);
    let all_topics: Vec<bool> = groups.iter().map(|g| g.topics.is_none()).collect();
    let core = strom_group::OffsetFetchRequest {
        groups,
        require_stable: version >= 7 && request.require_stable,
    };
    group_call(
        state,
        move |c, now, id| c.offset_fetch(now, id, core),
        move |response| {
            let groups = match response {
                Some(Response::OffsetFetch(r)) => r.groups,
                _ => group_ids
                    .into_iter()
                    .map(|group_id| OffsetFetchGroupResponse {
                        group_id,
                        error_code: COORDINATOR_NOT_AVAILABLE,
                        topics: Vec::new(),
                    })
                    .collect(),
            };
            let groups = groups
                .into_iter()
                .zip(all_topics)
                .map(|(g, all)| authorize(&authz, g, all))
                .collect();
            encode(groups, version)
        },
    )
    .await
}

fn authorize(
    authz: &crate::security::Authz,
    mut group: OffsetFetchGroupResponse,
    all_topics: bool,
) -> OffsetFetchGroupResponse {
    if !authz.allows_group(AclOperation::Describe, &group.group_id) {
        group.error_code = ResponseError::GroupAuthorizationFailed.code();
        group.topics.clear();
        return group;
    }
    if all_topics {
        group
            .topics
            .retain(|t| authz.allows_topic(AclOperation::Describe, &t.name));
        return group;
    }
    for topic in &mut group.topics {
        if !authz.allows_topic(AclOperation::Describe, &topic.name) {
            for p in &mut topic.partitions {
                p.committed_offset = -1;
                p.committed_leader_epoch = -1;
                p.metadata.clear();
                p.error_code = ResponseError::TopicAuthorizationFailed.code();
            }
        }
    }
    group
}

fn encode(groups: Vec<OffsetFetchGroupResponse>, version: i16) -> OffsetFetchResponse {
    let epoch = |e: i32| if version >= 5 { e } else { -1 };
    if version >= MULTI_GROUP_VERSION {
        return OffsetFetchResponse::default().with_groups(
            groups
                .into_iter()
                .map(|g| {
                    OffsetFetchResponseGroup::default()
                        .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                        .with_error_code(g.error_code)
                        .with_topics(
                            g.topics
                                .into_iter()
                                .map(|t| {
                                    OffsetFetchResponseTopics::default()
                                        .with_name(TopicName(StrBytes::from_string(t.name)))
                                        .with_partitions(
                                            t.partitions
                                                .into_iter()
                                                .map(|p| {
                                                    OffsetFetchResponsePartitions::default()
                                                        .with_partition_index(p.partition_index)
                                                        .with_committed_offset(p.committed_offset)
                                                        .with_committed_leader_epoch(
                                                            p.committed_leader_epoch,
                                                        )
                                                        .with_metadata(Some(StrBytes::from_string(
                                                            p.metadata,
                                                        )))
                                                        .with_error_code(p.error_code)
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    }
    let Some(group) = groups.into_iter().next() else {
        return OffsetFetchResponse::default();
    };
    // v2+ carries the group's error at the top level; v1 only per partition.
    let partition_error = |own: i16| {
        if version < 2 && own == 0 {
            group.error_code
        } else {
            own
        }
    };
    let topics = group
        .topics
        .iter()
        .map(|t| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(t.name.clone())))
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_committed_offset(p.committed_offset)
                                .with_committed_leader_epoch(epoch(p.committed_leader_epoch))
                                .with_metadata(Some(StrBytes::from_string(p.metadata.clone())))
                                .with_error_code(partition_error(p.error_code))
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default()
        .with_topics(topics)
        .with_error_code(if version >= 2 { group.error_code } else { 0 })
}
