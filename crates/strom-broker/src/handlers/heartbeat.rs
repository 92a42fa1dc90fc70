//! Heartbeat: a member says it is alive and learns whether a rebalance started.

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::protocol::VersionRange;
use strom_group::Response;

use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, group_call};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: HeartbeatRequest,
) -> Reply<HeartbeatResponse> {
    // Kafka: READ on the group.
    if !ctx
        .authz(state)
        .allows_group(AclOperation::Read, &request.group_id)
    {
        return Reply::Now(HeartbeatResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
        ));
    }
    let core = strom_group::HeartbeatRequest {
        group_id: request.group_id.to_string(),
        generation_id: request.generation_id,
        member_id: request.member_id.to_string(),
        group_instance_id: (ctx.api_version >= 3)
            .then(|| request.group_instance_id.map(|i| i.to_string()))
            .flatten(),
    };
    group_call(
        state,
        move |c, now, id| c.heartbeat(now, id, core),
        |response| match response {
            Some(Response::Heartbeat(r)) => {
                HeartbeatResponse::default().with_error_code(r.error_code)
            }
            _ => HeartbeatResponse::default().with_error_code(COORDINATOR_NOT_AVAILABLE),
        },
    )
    .await
}
