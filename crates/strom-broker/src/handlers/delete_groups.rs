//! DeleteGroups: remove empty groups and their offsets.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_group::Response;

use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, group_call};
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub async fn handle(
    state: &Arc<BrokerState>,
    _ctx: RequestContext,
    request: DeleteGroupsRequest,
) -> Reply<DeleteGroupsResponse> {
    let names: Vec<String> = request.groups_names.iter().map(|g| g.to_string()).collect();
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
