//! ListGroups: the groups this coordinator knows, filtered by state (v4+) and type (v5+).

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_group::Response;

use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, group_call};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: ListGroupsRequest,
) -> Reply<ListGroupsResponse> {
    let version = ctx.api_version;
    let strings = |list: Vec<StrBytes>| list.into_iter().map(|s| s.to_string()).collect();
    let core = strom_group::ListGroupsRequest {
        states_filter: if version >= 4 {
            strings(request.states_filter)
        } else {
            Vec::new()
        },
        types_filter: if version >= 5 {
            strings(request.types_filter)
        } else {
            Vec::new()
        },
    };
    // Kafka: every group with DESCRIBE on the cluster, else only the groups the principal may
    // DESCRIBE.
    let authz = ctx.authz(state);
    let all = authz.allows_cluster(AclOperation::Describe);
    group_call(
        state,
        move |c, now, id| c.list_groups(now, id, core),
        move |response| match response {
            Some(Response::ListGroups(r)) => ListGroupsResponse::default()
                .with_error_code(r.error_code)
                .with_groups(
                    r.groups
                        .into_iter()
                        .filter(|g| all || authz.allows_group(AclOperation::Describe, &g.group_id))
                        .map(|g| {
                            let listed = ListedGroup::default()
                                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                                .with_protocol_type(StrBytes::from_string(g.protocol_type));
                            let listed = if version >= 4 {
                                listed.with_group_state(StrBytes::from_string(g.group_state))
                            } else {
                                listed
                            };
                            if version >= 5 {
                                listed.with_group_type(StrBytes::from_string(g.group_type))
                            } else {
                                listed
                            }
                        })
                        .collect(),
                ),
            _ => ListGroupsResponse::default().with_error_code(COORDINATOR_NOT_AVAILABLE),
        },
    )
    .await
}
