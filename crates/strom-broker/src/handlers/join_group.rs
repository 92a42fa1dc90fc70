//! JoinGroup: a member joins (or rejoins) a group; answered when the join phase ends.

use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_group::{JoinGroupProtocol, Response};

use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, client_host, group_call};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 9 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: JoinGroupRequest,
) -> Reply<JoinGroupResponse> {
    let version = ctx.api_version;
    // Kafka: READ on the group.
    if !ctx
        .authz(state)
        .allows_group(AclOperation::Read, &request.group_id)
    {
        return Reply::Now(
            JoinGroupResponse::default()
                .with_error_code(
                    kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
                )
                .with_generation_id(-1)
                .with_protocol_name(protocol_name(None, version)),
        );
    }
    let core = strom_group::JoinGroupRequest {
        api_version: version,
        group_id: request.group_id.to_string(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        member_id: request.member_id.to_string(),
        group_instance_id: (version >= 5)
            .then(|| request.group_instance_id.map(|i| i.to_string()))
            .flatten(),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| JoinGroupProtocol {
                name: p.name.to_string(),
                metadata: p.metadata,
            })
            .collect(),
        reason: request.reason.map(|r| r.to_string()),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: client_host(&ctx),
    };
    group_call(
        state,
        move |c, now, id| c.join_group(now, id, core),
        move |response| match response {
            Some(Response::JoinGroup(r)) => encode(r, version),
            _ => JoinGroupResponse::default()
                .with_error_code(COORDINATOR_NOT_AVAILABLE)
                .with_generation_id(-1)
                .with_protocol_name(protocol_name(None, version)),
        },
    )
    .await
}

/// Before v7 the protocol name is not nullable: "" stands for "none".
fn protocol_name(name: Option<String>, version: i16) -> Option<StrBytes> {
    match name {
        Some(n) => Some(StrBytes::from_string(n)),
        None if version < 7 => Some(StrBytes::default()),
        None => None,
    }
}

fn encode(r: strom_group::JoinGroupResponse, version: i16) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(r.error_code)
        .with_generation_id(r.generation_id)
        .with_protocol_type(if version >= 7 {
            r.protocol_type.map(StrBytes::from_string)
        } else {
            None
        })
        .with_protocol_name(protocol_name(r.protocol_name, version))
        .with_leader(StrBytes::from_string(r.leader))
        .with_skip_assignment(version >= 9 && r.skip_assignment)
        .with_member_id(StrBytes::from_string(r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(StrBytes::from_string(m.member_id))
                        .with_group_instance_id(if version >= 5 {
                            m.group_instance_id.map(StrBytes::from_string)
                        } else {
                            None
                        })
                        .with_metadata(m.metadata)
                })
                .collect(),
        )
}
