//! DescribeGroups: state, protocol and members (with metadata and assignment) of groups.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_group::Response;

use kafka_protocol::error::ResponseError;
use strom_cluster::acl::{AclOperation, ResourceType};

use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, group_call};
use crate::security::authz::{GROUP_OPERATIONS, OPERATIONS_NOT_REQUESTED};
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DescribeGroupsRequest,
) -> Reply<DescribeGroupsResponse> {
    let version = ctx.api_version;
    let include_operations = version >= 3 && request.include_authorized_operations;
    let names: Vec<String> = request.groups.iter().map(|g| g.to_string()).collect();
    // Kafka: DESCRIBE on each group, else GROUP_AUTHORIZATION_FAILED for that group.
    let authz = ctx.authz(state);
    let operations = move |group: &str| {
        if include_operations {
            authz.authorized_operations(ResourceType::Group, group, GROUP_OPERATIONS)
        } else {
            OPERATIONS_NOT_REQUESTED
        }
    };
    let denied: std::collections::HashSet<String> = names
        .iter()
        .filter(|g| !ctx.authz(state).allows_group(AclOperation::Describe, g))
        .cloned()
        .collect();
    let core = strom_group::DescribeGroupsRequest {
        groups: names.clone(),
    };
    group_call(
        state,
        move |c, now, id| c.describe_groups(now, id, core),
        move |response| {
            let groups = match response {
                Some(Response::DescribeGroups(r)) => r
                    .groups
                    .into_iter()
                    .map(|g| {
                        if denied.contains(&g.group_id) {
                            return DescribedGroup::default()
                                .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                                .with_authorized_operations(OPERATIONS_NOT_REQUESTED);
                        }
                        let operations = operations(&g.group_id);
                        DescribedGroup::default()
                            .with_error_code(g.error_code)
                            .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                            .with_group_state(StrBytes::from_string(g.group_state))
                            .with_protocol_type(StrBytes::from_string(g.protocol_type))
                            .with_protocol_data(StrBytes::from_string(g.protocol_data))
                            .with_authorized_operations(operations)
                            .with_members(
                                g.members
                                    .into_iter()
                                    .map(|m| {
                                        DescribedGroupMember::default()
                                            .with_member_id(StrBytes::from_string(m.member_id))
                                            .with_group_instance_id(if version >= 4 {
                                                m.group_instance_id.map(StrBytes::from_string)
                                            } else {
                                                None
                                            })
                                            .with_client_id(StrBytes::from_string(m.client_id))
                                            .with_client_host(StrBytes::from_string(m.client_host))
                                            .with_member_metadata(m.member_metadata)
                                            .with_member_assignment(m.member_assignment)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
                _ => names
                    .into_iter()
                    .map(|g| {
                        DescribedGroup::default()
                            .with_error_code(COORDINATOR_NOT_AVAILABLE)
                            .with_authorized_operations(operations(&g))
                            .with_group_id(GroupId(StrBytes::from_string(g)))
                    })
                    .collect(),
            };
            DescribeGroupsResponse::default().with_groups(groups)
        },
    )
    .await
}
