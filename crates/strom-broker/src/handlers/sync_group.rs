//! SyncGroup: the leader hands out the assignment; every member receives its part.

use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_group::{Response, SyncGroupAssignment};

use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, group_call};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: SyncGroupRequest,
) -> Reply<SyncGroupResponse> {
    let version = ctx.api_version;
    // Kafka: READ on the group.
    if !ctx
        .authz(state)
        .allows_group(AclOperation::Read, &request.group_id)
    {
        return Reply::Now(SyncGroupResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
        ));
    }
    let core = strom_group::SyncGroupRequest {
        group_id: request.group_id.to_string(),
        generation_id: request.generation_id,
        member_id: request.member_id.to_string(),
        group_instance_id: (version >= 3)
            .then(|| request.group_instance_id.map(|i| i.to_string()))
            .flatten(),
        protocol_type: (version >= 5)
            .then(|| request.protocol_type.map(|p| p.to_string()))
            .flatten(),
        protocol_name: (version >= 5)
            .then(|| request.protocol_name.map(|p| p.to_string()))
            .flatten(),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| SyncGroupAssignment {
                member_id: a.member_id.to_string(),
                assignment: a.assignment,
            })
            .collect(),
    };
    group_call(
        state,
        move |c, now, id| c.sync_group(now, id, core),
        move |response| match response {
            Some(Response::SyncGroup(r)) => SyncGroupResponse::default()
                .with_error_code(r.error_code)
                .with_protocol_type(if version >= 5 {
                    r.protocol_type.map(StrBytes::from_string)
                } else {
                    None
                })
                .with_protocol_name(if version >= 5 {
                    r.protocol_name.map(StrBytes::from_string)
                } else {
                    None
                })
                .with_assignment(r.assignment),
            _ => SyncGroupResponse::default().with_error_code(COORDINATOR_NOT_AVAILABLE),
        },
    )
    .await
}
