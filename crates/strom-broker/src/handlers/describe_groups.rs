//! DescribeGroups: state, protocol and members (with metadata and assignment) of groups.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_group::Response;

use super::metadata::OPERATIONS_OMITTED;
use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, group_call};
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

/// Kafka's group operations (READ=3, DELETE=6, DESCRIBE=8) as authorized-operation bits; with
/// no ACLs all are allowed.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DescribeGroupsRequest,
) -> Reply<DescribeGroupsResponse> {
    let version = ctx.api_version;
    let include_operations = version >= 3 && request.include_authorized_operations;
    let names: Vec<String> = request.groups.iter().map(|g| g.to_string()).collect();
    let core = strom_group::DescribeGroupsRequest {
        groups: names.clone(),
    };
    group_call(
        state,
        move |c, now, id| c.describe_groups(now, id, core),
        move |response| {
            let operations = if include_operations {
                GROUP_OPERATIONS
            } else {
                OPERATIONS_OMITTED
            };
            let groups = match response {
                Some(Response::DescribeGroups(r)) => r
                    .groups
                    .into_iter()
                    .map(|g| {
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
                            .with_group_id(GroupId(StrBytes::from_string(g)))
                            .with_authorized_operations(operations)
                    })
                    .collect(),
            };
            DescribeGroupsResponse::default().with_groups(groups)
        },
    )
    .await
}
