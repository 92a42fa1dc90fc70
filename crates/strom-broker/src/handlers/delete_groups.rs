//! DeleteGroups: remove empty groups and their offsets.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_group::Response;

use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, group_call};
use crate::state::BrokerState;
use kafka_protocol::error::ResponseError;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DeleteGroupsRequest,
) -> Reply<DeleteGroupsResponse> {
    // Kafka: DELETE on each group, else GROUP_AUTHORIZATION_FAILED for it.
    let authz = ctx.authz(state);
    let (names, denied): (Vec<String>, Vec<String>) = request
        .groups_names
        .iter()
        .map(|g| g.to_string())
        .partition(|g| authz.allows_group(AclOperation::Delete, g));
    let denied: Vec<(String, i16)> = denied
        .into_iter()
        .map(|g| (g, ResponseError::GroupAuthorizationFailed.code()))
        .collect();
    let core = strom_group::DeleteGroupsRequest {
        groups_names: names.clone(),
    };
    group_call(
        state,
        move |c, now, id| c.delete_groups(now, id, core),
        move |response| {
            let results: Vec<(String, i16)> = match response {
                Some(Response::DeleteGroups(r)) => r
                    .results
                    .into_iter()
                    .map(|g| (g.group_id, g.error_code))
                    .collect(),
                _ => names
                    .into_iter()
                    .map(|g| (g, COORDINATOR_NOT_AVAILABLE))
                    .collect(),
            };
            DeleteGroupsResponse::default().with_results(
                results
                    .into_iter()
                    .chain(denied)
                    .map(|(group, code)| {
                        DeletableGroupResult::default()
                            .with_group_id(GroupId(StrBytes::from_string(group)))
                            .with_error_code(code)
                    })
                    .collect(),
            )
        },
    )
    .await
}
