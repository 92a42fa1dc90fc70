//! Administration: ListGroups, DescribeGroups and DeleteGroups.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{Coordinator, Ctx, Effect, FailurePatch, group_key, status_error};
use crate::api::*;
use crate::codes;
use crate::group::GroupState;
use crate::record::RecordKey;

/// The only group type this coordinator has (KIP-848's "consumer" groups are not
/// implemented).
const CLASSIC_GROUP_TYPE: &str = "classic";

impl Coordinator {
    pub(super) fn list_groups_response(&self, request: &ListGroupsRequest) -> ListGroupsResponse {
        if self.shards.values().any(|shard| shard.loading) {
            return ListGroupsResponse {
                error_code: codes::COORDINATOR_LOAD_IN_PROGRESS,
                groups: Vec::new(),
            };
        }
        let normalize = |filter: &[String]| -> Vec<String> {
            filter.iter().map(|s| s.trim().to_lowercase()).collect()
        };
        let states = normalize(&request.states_filter);
        let types = normalize(&request.types_filter);
        let type_matches = types.is_empty() || types.iter().any(|t| t == CLASSIC_GROUP_TYPE);
        let groups = self
            .shards
            .values()
            .flat_map(|shard| shard.groups.values())
            .filter(|group| {
                type_matches
                    && (states.is_empty() || states.contains(&group.state.as_str().to_lowercase()))
            })
            .map(|group| ListedGroup {
                group_id: group.group_id.clone(),
                protocol_type: group.protocol_type.clone().unwrap_or_default(),
                group_state: group.state.as_str().to_owned(),
                group_type: CLASSIC_GROUP_TYPE.to_owned(),
            })
            .collect();
        ListGroupsResponse {
            error_code: codes::NONE,
            groups,
        }
    }

    pub(super) fn describe_groups_response(
        &self,
        request: &DescribeGroupsRequest,
    ) -> DescribeGroupsResponse {
        let groups = request
            .groups
            .iter()
            .map(|group_id| {
                let described = |error_code, state: &str| DescribedGroup {
                    error_code,
                    group_id: group_id.clone(),
                    group_state: state.to_owned(),
                    protocol_type: String::new(),
                    protocol_data: String::new(),
                    members: Vec::new(),
                };
                let partition = self.partition_for(group_id);
                if let Some(code) = status_error(&self.shards, partition) {
                    return described(code, "");
                }
                let Some(group) = self
                    .shards
                    .get(&partition)
                    .and_then(|shard| shard.groups.get(group_id))
                else {
                    // Kafka describes an unknown group as Dead, without an error.
                    return described(codes::NONE, GroupState::Dead.as_str());
                };
                let stable = group.state == GroupState::Stable;
                let protocol = group.protocol_name.clone().unwrap_or_default();
                DescribedGroup {
                    error_code: codes::NONE,
                    group_id: group_id.clone(),
                    group_state: group.state.as_str().to_owned(),
                    protocol_type: group.protocol_type.clone().unwrap_or_default(),
                    protocol_data: if stable {
                        protocol.clone()
                    } else {
                        String::new()
                    },
                    members: group
                        .members
                        .values()
                        .map(|m| DescribedGroupMember {
                            member_id: m.member_id.clone(),
                            group_instance_id: m.group_instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            member_metadata: if stable {
                                m.metadata(&protocol).cloned().unwrap_or_default()
                            } else {
                                Bytes::new()
                            },
                            member_assignment: m.assignment.clone(),
                        })
                        .collect(),
                }
            })
            .collect();
        DescribeGroupsResponse { groups }
    }

    pub(super) fn delete_groups_in(
        &mut self,
        ctx: &mut Ctx,
        request_id: RequestId,
        request: DeleteGroupsRequest,
    ) {
        let mut results = Vec::with_capacity(request.groups_names.len());
        let mut deleted_by_write: BTreeMap<WriteId, Vec<String>> = BTreeMap::new();
        for group_id in request.groups_names {
            let partition = self.partition_for(&group_id);
            let error_code = match status_error(&self.shards, partition) {
                Some(code) => code,
                None => match self.shards.get_mut(&partition) {
                    None => codes::NOT_COORDINATOR,
                    Some(shard) => {
                        let offset_keys = shard.offset_keys_with_pending(&group_id);
                        match shard.groups.get_mut(&group_id) {
                            None => codes::GROUP_ID_NOT_FOUND,
                            Some(group) if group.state == GroupState::Dead => {
                                codes::GROUP_ID_NOT_FOUND
                            }
                            Some(group) if group.state != GroupState::Empty => {
                                codes::NON_EMPTY_GROUP
                            }
                            Some(group) => match group_key(&group_id) {
                                None => codes::GROUP_ID_NOT_FOUND,
                                Some(key) => {
                                    // Tombstones for every offset (durable or in flight),
                                    // then for the group; the group is Dead meanwhile.
                                    let offset_records: Vec<Record> = offset_keys
                                        .iter()
                                        .filter_map(|(topic, p)| {
                                            RecordKey::OffsetCommit {
                                                group: group_id.clone(),
                                                topic: topic.clone(),
                                                partition: *p,
                                            }
                                            .encode()
                                            .ok()
                                            .map(|key| Record { key, value: None })
                                        })
                                        .collect();
                                    if !offset_records.is_empty() {
                                        ctx.append(
                                            partition,
                                            offset_records,
                                            Effect::DeleteOffsets {
                                                group_id: group_id.clone(),
                                                partitions: offset_keys,
                                            },
                                        );
                                    }
                                    group.deleting_from_empty_since =
                                        Some(group.state_timestamp_ms);
                                    group.transition_to(GroupState::Dead, ctx.now_ms);
                                    let write_id = ctx.append(
                                        partition,
                                        vec![Record { key, value: None }],
                                        Effect::DeleteGroup {
                                            group_id: group_id.clone(),
                                        },
                                    );
                                    deleted_by_write
                                        .entry(write_id)
                                        .or_default()
                                        .push(group_id.clone());
                                    codes::NONE
                                }
                            },
                        }
                    }
                },
            };
            results.push(DeletableGroupResult {
                group_id,
                error_code,
            });
        }
        let waiting = deleted_by_write
            .into_iter()
            .map(|(write_id, groups)| (write_id, FailurePatch::Groups(groups)))
            .collect();
        ctx.respond_after(
            request_id,
            Response::DeleteGroups(DeleteGroupsResponse { results }),
            waiting,
        );
    }
}
