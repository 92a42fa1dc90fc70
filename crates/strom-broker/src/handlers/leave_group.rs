//! LeaveGroup: members leave (v3+: several at once, by member id or static instance id).

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_group::{LeaveGroupMember, Response};

use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, group_call};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// The first version that lists members.
const BATCHED_VERSION: i16 = 3;

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: LeaveGroupRequest,
) -> Reply<LeaveGroupResponse> {
    let version = ctx.api_version;
    // Kafka: READ on the group.
    if !ctx
        .authz(state)
        .allows_group(AclOperation::Read, &request.group_id)
    {
        return Reply::Now(LeaveGroupResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
        ));
    }
    let members = if version >= BATCHED_VERSION {
        request
            .members
            .into_iter()
            .map(|m| LeaveGroupMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                reason: m.reason.map(|r| r.to_string()),
            })
            .collect()
    } else {
        vec![LeaveGroupMember {
            member_id: request.member_id.to_string(),
            group_instance_id: None,
            reason: None,
        }]
    };
    let core = strom_group::LeaveGroupRequest {
        group_id: request.group_id.to_string(),
        members,
    };
    group_call(
        state,
        move |c, now, id| c.leave_group(now, id, core),
        move |response| match response {
            Some(Response::LeaveGroup(r)) if version >= BATCHED_VERSION => {
                LeaveGroupResponse::default()
                    .with_error_code(r.error_code)
                    .with_members(
                        r.members
                            .into_iter()
                            .map(|m| {
                                MemberResponse::default()
                                    .with_member_id(StrBytes::from_string(m.member_id))
                                    .with_group_instance_id(
                                        m.group_instance_id.map(StrBytes::from_string),
                                    )
                                    .with_error_code(m.error_code)
                            })
                            .collect(),
                    )
            }
            Some(Response::LeaveGroup(r)) => {
                LeaveGroupResponse::default().with_error_code(r.legacy_error_code())
            }
            _ => LeaveGroupResponse::default().with_error_code(COORDINATOR_NOT_AVAILABLE),
        },
    )
    .await
}
