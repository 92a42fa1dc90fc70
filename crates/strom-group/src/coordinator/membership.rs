//! Membership: JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the timers of a rebalance.
//!
//! This follows Kafka's `GroupMetadataManager` (classic group part) method by method, with
//! the same names where it helps to compare: `prepare_rebalance`, `complete_join`,
//! `maybe_complete_join_phase`, `expire_heartbeat`, `expire_pending_sync`. Deviations are
//! marked in comments.
//!
//! A rebalance: a member change puts the group in PreparingRebalance and parks JoinGroup
//! requests. The join phase ends when every known member has rejoined (or at the rebalance
//! timeout, dropping those that did not): the generation is bumped, a protocol chosen, and
//! every parked JoinGroup answered (the leader with the member list). The group waits in
//! CompletingRebalance for the leader's SyncGroup; its assignment is written, and when the
//! write is durable every parked SyncGroup gets its part and the group is Stable.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{
    Coordinator, Ctx, Effect, Env, FailurePatch, StaticReplacement, group_id_too_long, group_key,
    status_error,
};
use crate::api::*;
use crate::codes::{self, ErrorCode};
use crate::group::{Group, GroupState, JoinTimer, Member};
use crate::timer::TimerKey;

/// Versions of JoinGroup from which an empty member id gets MEMBER_ID_REQUIRED (KIP-394).
const JOIN_GROUP_REQUIRES_KNOWN_MEMBER_ID_VERSION: i16 = 4;
/// Versions of JoinGroup that understand `skip_assignment` (KIP-814).
const JOIN_GROUP_SKIP_ASSIGNMENT_VERSION: i16 = 9;

/// The fields of a JoinGroup request the rebalance logic keeps.
struct JoinRequest {
    api_version: i16,
    member_id: String,
    group_instance_id: Option<String>,
    protocol_type: String,
    protocols: Vec<JoinGroupProtocol>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    client_id: String,
    client_host: String,
}

fn join_error(member_id: &str, code: ErrorCode) -> Response {
    Response::JoinGroup(JoinGroupResponse::error(member_id, code))
}

impl Coordinator {
    pub(super) fn join_group_in(
        &mut self,
        ctx: &mut Ctx,
        request_id: RequestId,
        request: JoinGroupRequest,
    ) {
        let respond_error =
            |ctx: &mut Ctx, code| ctx.respond(request_id, join_error(&request.member_id, code));
        if request.group_id.is_empty() || group_id_too_long(&request.group_id) {
            return respond_error(ctx, codes::INVALID_GROUP_ID);
        }
        if request.session_timeout_ms < self.config.group_min_session_timeout_ms
            || request.session_timeout_ms > self.config.group_max_session_timeout_ms
        {
            return respond_error(ctx, codes::INVALID_SESSION_TIMEOUT);
        }
        let partition = self.partition_for(&request.group_id);
        if let Some(code) = status_error(&self.shards, partition) {
            return respond_error(ctx, code);
        }
        let Coordinator {
            config,
            shards,
            timers,
            member_ids,
            ..
        } = self;
        let Some(shard) = shards.get_mut(&partition) else {
            return respond_error(ctx, codes::NOT_COORDINATOR);
        };
        let group_id = request.group_id;
        let created = !shard.groups.contains_key(&group_id);
        if created && !request.member_id.is_empty() {
            // A member id for a group that does not exist: the member must start over.
            return ctx.respond(
                request_id,
                join_error(&request.member_id, codes::UNKNOWN_MEMBER_ID),
            );
        }
        let group = shard
            .groups
            .entry(group_id.clone())
            .or_insert_with(|| Group::new(group_id.clone(), ctx.now_ms));
        let join = JoinRequest {
            api_version: request.api_version,
            member_id: request.member_id,
            group_instance_id: request.group_instance_id,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            session_timeout_ms: request.session_timeout_ms,
            // Version 0 has no rebalance timeout; Kafka uses the session timeout.
            rebalance_timeout_ms: if request.api_version == 0 {
                request.session_timeout_ms
            } else {
                request.rebalance_timeout_ms
            },
            client_id: request.client_id,
            client_host: request.client_host,
        };
        let mut env = Env {
            config,
            timers,
            ids: member_ids,
            ctx,
            partition,
        };
        env.join(group, request_id, join);
        // Kafka writes an empty GroupMetadata record for every new group; Strom persists a
        // group from its first completed generation on, and forgets a new group that a
        // rejected join left without members.
        if created && group.members.is_empty() && group.pending_join_members.is_empty() {
            shard.groups.remove(&group_id);
        }
    }

    pub(super) fn sync_group_in(
        &mut self,
        ctx: &mut Ctx,
        request_id: RequestId,
        request: SyncGroupRequest,
    ) {
        let respond_error = |ctx: &mut Ctx, code| {
            ctx.respond(
                request_id,
                Response::SyncGroup(SyncGroupResponse::error(code)),
            )
        };
        if request.group_id.is_empty() || group_id_too_long(&request.group_id) {
            return respond_error(ctx, codes::INVALID_GROUP_ID);
        }
        let partition = self.partition_for(&request.group_id);
        if let Some(code) = status_error(&self.shards, partition) {
            return respond_error(ctx, code);
        }
        let mut handled = false;
        self.with_group(ctx, &request.group_id.clone(), |env, group| {
            handled = true;
            if group.state == GroupState::Empty {
                env.ctx.respond(
                    request_id,
                    Response::SyncGroup(SyncGroupResponse::error(codes::UNKNOWN_MEMBER_ID)),
                );
            } else {
                env.sync(group, request_id, request);
            }
        });
        if !handled {
            respond_error(ctx, codes::UNKNOWN_MEMBER_ID);
        }
    }

    pub(super) fn heartbeat_in(
        &mut self,
        ctx: &mut Ctx,
        request_id: RequestId,
        request: HeartbeatRequest,
    ) {
        let respond = |ctx: &mut Ctx, error_code| {
            ctx.respond(
                request_id,
                Response::Heartbeat(HeartbeatResponse { error_code }),
            )
        };
        if request.group_id.is_empty() || group_id_too_long(&request.group_id) {
            return respond(ctx, codes::INVALID_GROUP_ID);
        }
        let partition = self.partition_for(&request.group_id);
        match status_error(&self.shards, partition) {
            // Kafka answers heartbeats of a loading partition with success: the member
            // keeps going and the session timers start once the load finishes.
            Some(codes::COORDINATOR_LOAD_IN_PROGRESS) => return respond(ctx, codes::NONE),
            Some(code) => return respond(ctx, code),
            None => {}
        }
        let mut code = codes::UNKNOWN_MEMBER_ID;
        self.with_group(ctx, &request.group_id.clone(), |env, group| {
            code = env.heartbeat(group, &request);
        });
        respond(ctx, code);
    }

    pub(super) fn leave_group_in(
        &mut self,
        ctx: &mut Ctx,
        request_id: RequestId,
        request: LeaveGroupRequest,
    ) {
        let respond_error = |ctx: &mut Ctx, error_code| {
            ctx.respond(
                request_id,
                Response::LeaveGroup(LeaveGroupResponse {
                    error_code,
                    members: Vec::new(),
                }),
            )
        };
        if request.group_id.is_empty() || group_id_too_long(&request.group_id) {
            return respond_error(ctx, codes::INVALID_GROUP_ID);
        }
        let partition = self.partition_for(&request.group_id);
        if let Some(code) = status_error(&self.shards, partition) {
            return respond_error(ctx, code);
        }
        let mut response = None;
        self.with_group(ctx, &request.group_id.clone(), |env, group| {
            response = Some(env.leave(group, &request));
        });
        let response = response.unwrap_or_else(|| LeaveGroupResponse {
            error_code: codes::NONE,
            members: request
                .members
                .iter()
                .map(|m| LeaveGroupMemberResponse {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    error_code: codes::UNKNOWN_MEMBER_ID,
                })
                .collect(),
        });
        // The response acknowledges the group's new state, so it waits for its write.
        let waiting = ctx
            .write_for(partition)
            .map(|write_id| BTreeMap::from([(write_id, FailurePatch::Whole)]))
            .unwrap_or_default();
        ctx.respond_after(request_id, Response::LeaveGroup(response), waiting);
    }
}

impl Env<'_> {
    // -----------------------------------------------------------------------------------------
    // Small helpers

    fn answer_join(&mut self, request_id: RequestId, response: JoinGroupResponse) {
        self.ctx.respond(request_id, Response::JoinGroup(response));
    }

    fn answer_sync(&mut self, request_id: RequestId, response: SyncGroupResponse) {
        self.ctx.respond(request_id, Response::SyncGroup(response));
    }

    fn heartbeat_key(group: &Group, member_id: &str) -> TimerKey {
        TimerKey::Heartbeat {
            group_id: group.group_id.clone(),
            member_id: member_id.to_owned(),
        }
    }

    fn schedule_heartbeat(&mut self, group: &Group, member_id: &str, timeout_ms: i64) {
        let deadline = self.now().saturating_add(timeout_ms);
        self.timers
            .schedule(Self::heartbeat_key(group, member_id), deadline);
    }

    fn cancel_heartbeat(&mut self, group: &Group, member_id: &str) {
        self.timers.cancel(&Self::heartbeat_key(group, member_id));
    }

    /// Restarts a member's session (Kafka's `rescheduleClassicGroupMemberHeartbeat`).
    pub(crate) fn reschedule_heartbeat(&mut self, group: &Group, member_id: &str) {
        if let Some(member) = group.members.get(member_id) {
            let timeout = i64::from(member.session_timeout_ms);
            self.schedule_heartbeat(group, member_id, timeout);
        }
    }

    /// Removes a member (or pending member), stops its session and answers its parked
    /// requests: JoinGroup with UNKNOWN_MEMBER_ID so a live client rejoins (Kafka), SyncGroup
    /// with REBALANCE_IN_PROGRESS (Kafka would leave it unanswered).
    fn remove_member(&mut self, group: &mut Group, member_id: &str) {
        self.cancel_heartbeat(group, member_id);
        if let Some(member) = group.remove(member_id) {
            if let Some(request_id) = member.awaiting_join {
                self.answer_join(
                    request_id,
                    JoinGroupResponse::error("", codes::UNKNOWN_MEMBER_ID),
                );
            }
            if let Some(request_id) = member.awaiting_sync {
                self.answer_sync(
                    request_id,
                    SyncGroupResponse::error(codes::REBALANCE_IN_PROGRESS),
                );
            }
        }
    }

    /// A JoinGroup response describing the group's current generation.
    fn current_join_response(
        group: &Group,
        member_id: &str,
        with_members: bool,
        leader: String,
        skip_assignment: bool,
    ) -> JoinGroupResponse {
        JoinGroupResponse {
            error_code: codes::NONE,
            generation_id: group.generation_id,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            leader,
            skip_assignment,
            member_id: member_id.to_owned(),
            members: if with_members {
                group.members_for_leader()
            } else {
                Vec::new()
            },
        }
    }

    /// Appends the group's GroupMetadata record to this call's write.
    fn write_group(&mut self, group: &Group, assignment: &BTreeMap<String, Bytes>, effect: Effect) {
        let Some(key) = group_key(&group.group_id) else {
            debug_assert!(
                false,
                "group id {} does not fit a record key",
                group.group_id
            );
            return;
        };
        let value = group.metadata_value(assignment).encode();
        self.ctx.append(
            self.partition,
            vec![Record {
                key,
                value: Some(value),
            }],
            effect,
        );
    }

    // -----------------------------------------------------------------------------------------
    // JoinGroup

    fn join(&mut self, group: &mut Group, request_id: RequestId, request: JoinRequest) {
        if !self.accept_joining_member(group, &request.member_id) {
            // Kafka removes the member, so a rejoining member over the limit is kicked out.
            self.remove_member(group, &request.member_id);
            return self
                .ctx
                .respond(request_id, join_error("", codes::GROUP_MAX_SIZE_REACHED));
        }
        if request.member_id.is_empty() {
            self.join_new_member(group, request_id, request);
        } else {
            self.join_existing_member(group, request_id, request);
        }
    }

    /// Kafka's `acceptJoiningMember`: `group.max.size`.
    fn accept_joining_member(&self, group: &Group, member_id: &str) -> bool {
        let max = self.config.group_max_size;
        match group.state {
            GroupState::Empty | GroupState::Dead => true,
            // The number of members already parked is used, not the group size: the group
            // may be over a lowered limit, and this kicks out the last members to rejoin.
            GroupState::PreparingRebalance => {
                group
                    .members
                    .get(member_id)
                    .is_some_and(|m| m.awaiting_join.is_some())
                    || group.num_awaiting_join() < max
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                group.members.contains_key(member_id) || group.members.len() < max
            }
        }
    }

    fn join_new_member(&mut self, group: &mut Group, request_id: RequestId, request: JoinRequest) {
        if group.state == GroupState::Dead {
            return self
                .ctx
                .respond(request_id, join_error("", codes::COORDINATOR_NOT_AVAILABLE));
        }
        if !group.supports_protocols(&request.protocol_type, &request.protocols) {
            return self.ctx.respond(
                request_id,
                join_error("", codes::INCONSISTENT_GROUP_PROTOCOL),
            );
        }
        let prefix = request
            .group_instance_id
            .as_deref()
            .unwrap_or(&request.client_id);
        let new_member_id = self.ids.next(prefix);
        match request.group_instance_id.clone() {
            Some(instance) => match group.static_member_id(&instance).map(str::to_owned) {
                Some(old_member_id) => self.update_static_member_then_rebalance_or_complete_join(
                    group,
                    request_id,
                    request,
                    old_member_id,
                    new_member_id,
                ),
                None => self.add_member_then_rebalance_or_complete_join(
                    group,
                    request_id,
                    request,
                    new_member_id,
                ),
            },
            None if request.api_version >= JOIN_GROUP_REQUIRES_KNOWN_MEMBER_ID_VERSION => {
                if group.pending_join_members.len() >= self.config.group_pending_members_max {
                    return self
                        .ctx
                        .respond(request_id, join_error("", codes::GROUP_MAX_SIZE_REACHED));
                }
                // KIP-394: hand out the id and wait for the member to come back with it,
                // so a client that never does is not counted as a member.
                group.pending_join_members.insert(new_member_id.clone());
                self.schedule_heartbeat(
                    group,
                    &new_member_id,
                    i64::from(request.session_timeout_ms),
                );
                self.ctx.respond(
                    request_id,
                    join_error(&new_member_id, codes::MEMBER_ID_REQUIRED),
                );
            }
            None => self.add_member_then_rebalance_or_complete_join(
                group,
                request_id,
                request,
                new_member_id,
            ),
        }
    }

    fn join_existing_member(
        &mut self,
        group: &mut Group,
        request_id: RequestId,
        request: JoinRequest,
    ) {
        let member_id = request.member_id.clone();
        if group.state == GroupState::Dead {
            return self.ctx.respond(
                request_id,
                join_error(&member_id, codes::COORDINATOR_NOT_AVAILABLE),
            );
        }
        if !group.supports_protocols(&request.protocol_type, &request.protocols) {
            return self.ctx.respond(
                request_id,
                join_error(&member_id, codes::INCONSISTENT_GROUP_PROTOCOL),
            );
        }
        if group.pending_join_members.contains(&member_id) {
            if request.group_instance_id.is_some() {
                // Pending members are dynamic; Kafka fails such a request with an internal
                // error, which reaches the client as UNKNOWN_SERVER_ERROR.
                return self.ctx.respond(
                    request_id,
                    join_error(&member_id, codes::UNKNOWN_SERVER_ERROR),
                );
            }
            return self
                .add_member_then_rebalance_or_complete_join(group, request_id, request, member_id);
        }
        if let Err(code) = group.validate_member(&member_id, request.group_instance_id.as_deref()) {
            return self.ctx.respond(request_id, join_error(&member_id, code));
        }
        let (is_leader, matches) = match group.members.get(&member_id) {
            Some(member) => (
                group.is_leader(&member_id),
                member.matches(&request.protocols),
            ),
            None => (false, false),
        };
        match group.state {
            GroupState::PreparingRebalance => {
                self.update_member_then_rebalance_or_complete_join(group, request_id, request)
            }
            GroupState::CompletingRebalance if matches => {
                // The member probably missed its JoinGroup response; send it again.
                let leader = group.leader_id.clone().unwrap_or_default();
                let response =
                    Self::current_join_response(group, &member_id, is_leader, leader, false);
                self.answer_join(request_id, response);
            }
            GroupState::Stable if !is_leader && matches => {
                // A follower with unchanged metadata just learns the current generation.
                let leader = group.leader_id.clone().unwrap_or_default();
                let response = Self::current_join_response(group, &member_id, false, leader, false);
                self.answer_join(request_id, response);
            }
            // Changed metadata, or the leader rejoining a Stable group (the leader's way to
            // ask for a rebalance, e.g. after a topic's partition count changed).
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_then_rebalance_or_complete_join(group, request_id, request)
            }
            GroupState::Empty | GroupState::Dead => self
                .ctx
                .respond(request_id, join_error(&member_id, codes::UNKNOWN_MEMBER_ID)),
        }
    }

    fn add_member_then_rebalance_or_complete_join(
        &mut self,
        group: &mut Group,
        request_id: RequestId,
        request: JoinRequest,
        member_id: String,
    ) {
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            session_timeout_ms: request.session_timeout_ms,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(request_id),
            awaiting_sync: None,
            is_new: true,
        };
        if group.state == GroupState::PreparingRebalance
            && group.previous_state == GroupState::Empty
        {
            group.new_member_added = true;
        }
        group.add(member);
        // A new member cannot heartbeat while parked in JoinGroup and its socket is muted,
        // so its session is the (longer) new-member join timeout; a client that gave up
        // leaves no defunct member behind for long.
        let timeout = i64::from(self.config.group_new_member_join_timeout_ms);
        self.schedule_heartbeat(group, &member_id, timeout);
        self.maybe_prepare_rebalance_or_complete_join(group);
    }

    fn update_member_then_rebalance_or_complete_join(
        &mut self,
        group: &mut Group,
        request_id: RequestId,
        request: JoinRequest,
    ) {
        let superseded = group.update_member(
            &request.member_id,
            request.protocols,
            request.rebalance_timeout_ms,
            request.session_timeout_ms,
            Some(request_id),
        );
        if let Some(old) = superseded.filter(|old| *old != request_id) {
            // Kafka drops a superseded JoinGroup silently; answering keeps the promise that
            // every request id gets exactly one response.
            self.answer_join(
                old,
                JoinGroupResponse::error(&request.member_id, codes::REBALANCE_IN_PROGRESS),
            );
        }
        self.maybe_prepare_rebalance_or_complete_join(group);
    }

    /// KIP-345: a static member restarted (same instance id, empty member id). It takes over
    /// the old member's place under a new member id; the old id is fenced.
    fn update_static_member_then_rebalance_or_complete_join(
        &mut self,
        group: &mut Group,
        request_id: RequestId,
        request: JoinRequest,
        old_member_id: String,
        new_member_id: String,
    ) {
        let Some(instance) = request.group_instance_id.clone() else {
            return;
        };
        let leader_before = group.leader_id.clone();
        let Some(old) = group.replace_static_member(&instance, &old_member_id, &new_member_id)
        else {
            return;
        };
        if let Some(parked) = old.awaiting_join {
            self.answer_join(
                parked,
                JoinGroupResponse::error(&old_member_id, codes::FENCED_INSTANCE_ID),
            );
        }
        if let Some(parked) = old.awaiting_sync {
            self.answer_sync(parked, SyncGroupResponse::error(codes::FENCED_INSTANCE_ID));
        }
        self.cancel_heartbeat(group, &old_member_id);
        self.reschedule_heartbeat(group, &new_member_id);
        let old_protocols = old.protocols.clone();
        group.update_member(
            &new_member_id,
            request.protocols,
            request.rebalance_timeout_ms,
            request.session_timeout_ms,
            Some(request_id),
        );
        match group.state {
            GroupState::Stable => {
                if group.protocol_name == group.select_protocol() {
                    // Same protocol next generation: no rebalance. Persist the new member id;
                    // the member gets its JoinGroup response when that is durable.
                    let replacement = StaticReplacement {
                        group_id: group.group_id.clone(),
                        group_instance_id: instance,
                        old_member_id,
                        new_member_id,
                        old_protocols,
                        old_rebalance_timeout_ms: old.rebalance_timeout_ms,
                        old_session_timeout_ms: old.session_timeout_ms,
                        request_id,
                        api_version: request.api_version,
                        leader_before,
                    };
                    self.write_group(
                        group,
                        &BTreeMap::new(),
                        Effect::ReplaceStaticMember(Box::new(replacement)),
                    );
                } else {
                    self.maybe_prepare_rebalance_or_complete_join(group);
                }
            }
            // The leader may already have assigned partitions to the old member id, so the
            // assignment would miss the new one: rebalance.
            GroupState::CompletingRebalance => self.prepare_rebalance(group),
            GroupState::PreparingRebalance => self.maybe_complete_join_phase(group),
            GroupState::Empty | GroupState::Dead => {
                // Unreachable: the old member existed, so the group had members. Answer
                // rather than leave the request parked.
                debug_assert!(false, "static member replaced in state {}", group.state);
                if let Some(parked) = group.set_awaiting_join(&new_member_id, None) {
                    self.answer_join(
                        parked,
                        JoinGroupResponse::error("", codes::UNKNOWN_SERVER_ERROR),
                    );
                }
            }
        }
    }

    /// The GroupMetadata write of a static replacement resolved.
    pub(crate) fn static_replacement_resolved(
        &mut self,
        group: &mut Group,
        replacement: StaticReplacement,
        failure: Option<ErrorCode>,
    ) {
        let still_parked = group.state == GroupState::Stable
            && group
                .members
                .get(&replacement.new_member_id)
                .is_some_and(|m| m.awaiting_join == Some(replacement.request_id));
        if !still_parked {
            // A rebalance started meanwhile; the member's JoinGroup is answered when it ends.
            return;
        }
        group.set_awaiting_join(&replacement.new_member_id, None);
        match failure {
            None => {
                let response = if replacement.api_version >= JOIN_GROUP_SKIP_ASSIGNMENT_VERSION {
                    // KIP-814: tell a static leader it leads, but that the group is Stable and
                    // it must not compute a new assignment.
                    let is_leader = group.is_leader(&replacement.new_member_id);
                    let leader = group.leader_id.clone().unwrap_or_default();
                    Self::current_join_response(
                        group,
                        &replacement.new_member_id,
                        is_leader,
                        leader,
                        is_leader,
                    )
                } else {
                    // Older clients get the previous leader id, so a restarted static leader
                    // does not think it leads and runs no assignment a Stable group would
                    // ignore.
                    let leader = replacement.leader_before.clone().unwrap_or_default();
                    Self::current_join_response(
                        group,
                        &replacement.new_member_id,
                        false,
                        leader,
                        false,
                    )
                };
                self.answer_join(replacement.request_id, response);
            }
            Some(code) => {
                // Revert to the old member id: the log still has it.
                group.update_member(
                    &replacement.new_member_id,
                    replacement.old_protocols,
                    replacement.old_rebalance_timeout_ms,
                    replacement.old_session_timeout_ms,
                    None,
                );
                group.replace_static_member(
                    &replacement.group_instance_id,
                    &replacement.new_member_id,
                    &replacement.old_member_id,
                );
                self.cancel_heartbeat(group, &replacement.new_member_id);
                self.reschedule_heartbeat(group, &replacement.old_member_id);
                let mut response = JoinGroupResponse::error("", code);
                response.generation_id = group.generation_id;
                response.protocol_type = group.protocol_type.clone();
                response.protocol_name = group.protocol_name.clone();
                response.leader = replacement.leader_before.unwrap_or_default();
                self.answer_join(replacement.request_id, response);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // The join phase

    fn maybe_prepare_rebalance_or_complete_join(&mut self, group: &mut Group) {
        if group.can_rebalance() {
            self.prepare_rebalance(group);
        } else {
            self.maybe_complete_join_phase(group);
        }
    }

    /// Starts a rebalance: PreparingRebalance, parked SyncGroups answered with
    /// REBALANCE_IN_PROGRESS, and a deadline for the join phase.
    pub(crate) fn prepare_rebalance(&mut self, group: &mut Group) {
        if group.state == GroupState::CompletingRebalance {
            self.reset_and_propagate_assignment_with_error(group, codes::REBALANCE_IN_PROGRESS);
        }
        self.remove_sync_expiration(group);
        let initial = group.state == GroupState::Empty;
        if initial {
            // A new group waits group.initial.rebalance.delay.ms for more members, so a
            // starting application does not rebalance once per instance.
            let delay_ms = self.config.group_initial_rebalance_delay_ms;
            let remaining_ms = group.rebalance_timeout_ms().saturating_sub(delay_ms).max(0);
            group.join_timer = JoinTimer::Initial {
                delay_ms,
                remaining_ms,
            };
            self.schedule_join(group, delay_ms);
        }
        group.transition_to(GroupState::PreparingRebalance, self.now());
        if !initial {
            self.maybe_complete_join_else_schedule(group);
        }
    }

    fn schedule_join(&mut self, group: &Group, delay_ms: i32) {
        let deadline = self.now().saturating_add(i64::from(delay_ms));
        self.timers.schedule(
            TimerKey::Join {
                group_id: group.group_id.clone(),
            },
            deadline,
        );
    }

    fn maybe_complete_join_else_schedule(&mut self, group: &mut Group) {
        if group.has_all_members_joined() {
            self.complete_join(group);
        } else {
            group.join_timer = JoinTimer::Rebalance;
            let timeout = group.rebalance_timeout_ms();
            self.schedule_join(group, timeout);
        }
    }

    /// Completes the join phase early when every member is back (never during the initial
    /// delay: that is what the delay is for).
    fn maybe_complete_join_phase(&mut self, group: &mut Group) {
        if group.state == GroupState::PreparingRebalance
            && group.previous_state != GroupState::Empty
            && group.has_all_members_joined()
        {
            self.complete_join(group);
        }
    }

    /// The join timer fired.
    pub(crate) fn join_deadline(&mut self, group: &mut Group) {
        match group.join_timer {
            JoinTimer::Rebalance => self.complete_join(group),
            JoinTimer::Initial {
                delay_ms,
                remaining_ms,
            } => {
                if group.new_member_added && remaining_ms != 0 {
                    // Someone joined during the delay: wait again, up to the rebalance
                    // timeout in total.
                    group.new_member_added = false;
                    let new_delay = self
                        .config
                        .group_initial_rebalance_delay_ms
                        .min(remaining_ms);
                    let new_remaining = remaining_ms.saturating_sub(delay_ms).max(0);
                    group.join_timer = JoinTimer::Initial {
                        delay_ms: new_delay,
                        remaining_ms: new_remaining,
                    };
                    self.schedule_join(group, new_delay);
                } else {
                    self.complete_join(group);
                }
            }
        }
    }

    /// Ends the join phase: dynamic members that did not rejoin are removed, the generation
    /// bumped, and every parked JoinGroup answered.
    pub(crate) fn complete_join(&mut self, group: &mut Group) {
        self.timers.cancel(&TimerKey::Join {
            group_id: group.group_id.clone(),
        });
        let not_rejoined: Vec<String> = group
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in not_rejoined {
            self.remove_member(group, &member_id);
        }
        if group.state == GroupState::Dead {
            return;
        }
        if !group.maybe_elect_new_joined_leader() && !group.members.is_empty() {
            // Only static members that did not rejoin are left. Wait another rebalance
            // timeout; their sessions expire meanwhile if they are gone. Kafka waits exactly
            // the rebalance timeout, which spins the timer when members sent 0; waiting at
            // least the minimum session timeout changes nothing for sane clients.
            group.join_timer = JoinTimer::Rebalance;
            let timeout = group
                .rebalance_timeout_ms()
                .max(self.config.group_min_session_timeout_ms);
            self.schedule_join(group, timeout);
            return;
        }
        group.init_next_generation(self.now());
        if group.state == GroupState::Empty {
            self.write_group(group, &BTreeMap::new(), Effect::EmptyGeneration);
            return;
        }
        let member_ids: Vec<String> = group.members.keys().cloned().collect();
        let leader = group.leader_id.clone().unwrap_or_default();
        for member_id in member_ids {
            let is_leader = group.is_leader(&member_id);
            if let Some(parked) = group.set_awaiting_join(&member_id, None) {
                let response = Self::current_join_response(
                    group,
                    &member_id,
                    is_leader,
                    leader.clone(),
                    false,
                );
                self.answer_join(parked, response);
            }
            self.reschedule_heartbeat(group, &member_id);
            if let Some(member) = group.members.get_mut(&member_id) {
                member.is_new = false;
            }
            group.pending_sync_members.insert(member_id);
        }
        self.schedule_pending_sync(group);
    }

    fn schedule_pending_sync(&mut self, group: &mut Group) {
        group.sync_timer_generation = group.generation_id;
        let deadline = self
            .now()
            .saturating_add(i64::from(group.rebalance_timeout_ms()));
        self.timers.schedule(
            TimerKey::Sync {
                group_id: group.group_id.clone(),
            },
            deadline,
        );
    }

    fn remove_sync_expiration(&mut self, group: &mut Group) {
        group.pending_sync_members.clear();
        self.timers.cancel(&TimerKey::Sync {
            group_id: group.group_id.clone(),
        });
    }

    fn remove_pending_sync_member(&mut self, group: &mut Group, member_id: &str) {
        group.pending_sync_members.remove(member_id);
        let cancel = match group.state {
            GroupState::Dead | GroupState::Empty | GroupState::PreparingRebalance => true,
            GroupState::CompletingRebalance | GroupState::Stable => {
                group.pending_sync_members.is_empty()
            }
        };
        if cancel {
            self.timers.cancel(&TimerKey::Sync {
                group_id: group.group_id.clone(),
            });
        }
    }

    /// The sync deadline passed: members that never sent SyncGroup are removed and the group
    /// rebalances without them.
    pub(crate) fn expire_pending_sync(&mut self, group: &mut Group, generation_id: i32) {
        if generation_id != group.generation_id {
            return;
        }
        let syncing = matches!(
            group.state,
            GroupState::CompletingRebalance | GroupState::Stable
        );
        if syncing && !group.pending_sync_members.is_empty() {
            let late: Vec<String> = group.pending_sync_members.iter().cloned().collect();
            for member_id in late {
                self.remove_member(group, &member_id);
            }
            self.prepare_rebalance(group);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Sessions

    /// A member's session deadline passed.
    pub(crate) fn expire_heartbeat(&mut self, group: &mut Group, member_id: &str) {
        if group.state == GroupState::Dead {
            return;
        }
        if group.pending_join_members.contains(member_id) {
            group.remove(member_id);
            if group.state == GroupState::PreparingRebalance && group.has_all_members_joined() {
                self.complete_join(group);
            }
            return;
        }
        let satisfied = match group.members.get(member_id) {
            None => return,
            Some(member) => member.has_satisfied_heartbeat(),
        };
        if !satisfied {
            self.remove_member_and_update_group(group, member_id);
        }
    }

    fn remove_member_and_update_group(&mut self, group: &mut Group, member_id: &str) {
        self.remove_member(group, member_id);
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance_or_complete_join(group)
            }
            GroupState::PreparingRebalance if group.has_all_members_joined() => {
                self.complete_join(group)
            }
            _ => {}
        }
    }

    // -----------------------------------------------------------------------------------------
    // SyncGroup

    fn sync(&mut self, group: &mut Group, request_id: RequestId, request: SyncGroupRequest) {
        if let Err(code) = Self::validate_sync(group, &request) {
            return self.answer_sync(request_id, SyncGroupResponse::error(code));
        }
        let member_id = request.member_id;
        match group.state {
            GroupState::PreparingRebalance => self.answer_sync(
                request_id,
                SyncGroupResponse::error(codes::REBALANCE_IN_PROGRESS),
            ),
            GroupState::CompletingRebalance => {
                let superseded = group
                    .members
                    .get_mut(&member_id)
                    .and_then(|m| m.awaiting_sync.replace(request_id));
                if let Some(old) = superseded.filter(|old| *old != request_id) {
                    self.answer_sync(old, SyncGroupResponse::error(codes::REBALANCE_IN_PROGRESS));
                }
                self.remove_pending_sync_member(group, &member_id);
                if group.is_leader(&member_id) {
                    // Members the leader left out get an empty assignment.
                    let mut assignment: BTreeMap<String, Bytes> = group
                        .members
                        .keys()
                        .map(|id| (id.clone(), Bytes::new()))
                        .collect();
                    for entry in request.assignments {
                        if let Some(slot) = assignment.get_mut(&entry.member_id) {
                            *slot = entry.assignment;
                        }
                    }
                    let effect = Effect::StoreAssignment {
                        group_id: group.group_id.clone(),
                        generation_id: group.generation_id,
                        assignment: assignment.clone(),
                    };
                    self.write_group(group, &assignment, effect);
                }
            }
            GroupState::Stable => {
                self.remove_pending_sync_member(group, &member_id);
                let assignment = group
                    .members
                    .get(&member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                self.answer_sync(
                    request_id,
                    SyncGroupResponse {
                        error_code: codes::NONE,
                        protocol_type: group.protocol_type.clone(),
                        protocol_name: group.protocol_name.clone(),
                        assignment,
                    },
                );
            }
            // Empty was answered by the caller and Dead by validate_sync.
            GroupState::Empty | GroupState::Dead => self.answer_sync(
                request_id,
                SyncGroupResponse::error(codes::UNKNOWN_MEMBER_ID),
            ),
        }
    }

    fn validate_sync(group: &Group, request: &SyncGroupRequest) -> Result<(), ErrorCode> {
        if group.state == GroupState::Dead {
            return Err(codes::COORDINATOR_NOT_AVAILABLE);
        }
        group.validate_member(&request.member_id, request.group_instance_id.as_deref())?;
        if request.generation_id != group.generation_id {
            return Err(codes::ILLEGAL_GENERATION);
        }
        let inconsistent = |requested: &Option<String>, current: &Option<String>| matches!((requested, current), (Some(r), Some(c)) if r != c);
        if inconsistent(&request.protocol_type, &group.protocol_type)
            || inconsistent(&request.protocol_name, &group.protocol_name)
        {
            return Err(codes::INCONSISTENT_GROUP_PROTOCOL);
        }
        Ok(())
    }

    /// The leader's assignment write resolved.
    pub(crate) fn assignment_write_resolved(
        &mut self,
        group: &mut Group,
        generation_id: i32,
        assignment: BTreeMap<String, Bytes>,
        failure: Option<ErrorCode>,
    ) {
        // A rebalance may have started while the write was in flight; then this generation
        // is over and its parked SyncGroups were already answered.
        if group.state != GroupState::CompletingRebalance || group.generation_id != generation_id {
            return;
        }
        match failure {
            None => {
                for member in group.members.values_mut() {
                    member.assignment = assignment
                        .get(&member.member_id)
                        .cloned()
                        .unwrap_or_default();
                }
                self.propagate_assignment(group, codes::NONE);
                group.transition_to(GroupState::Stable, self.now());
            }
            Some(code) => {
                self.reset_and_propagate_assignment_with_error(group, code);
                self.maybe_prepare_rebalance_or_complete_join(group);
            }
        }
    }

    fn reset_and_propagate_assignment_with_error(&mut self, group: &mut Group, code: ErrorCode) {
        debug_assert_eq!(group.state, GroupState::CompletingRebalance);
        for member in group.members.values_mut() {
            member.assignment = Bytes::new();
        }
        self.propagate_assignment(group, code);
    }

    /// Answers every parked SyncGroup with the member's assignment (or the error), and
    /// restarts those members' sessions: an expiry while they waited was ignored.
    fn propagate_assignment(&mut self, group: &mut Group, code: ErrorCode) {
        let (protocol_type, protocol_name) = if code == codes::NONE {
            (group.protocol_type.clone(), group.protocol_name.clone())
        } else {
            (None, None)
        };
        let parked: Vec<(String, RequestId, Bytes)> = group
            .members
            .values_mut()
            .filter_map(|m| {
                m.awaiting_sync
                    .take()
                    .map(|request_id| (m.member_id.clone(), request_id, m.assignment.clone()))
            })
            .collect();
        for (member_id, request_id, assignment) in parked {
            self.answer_sync(
                request_id,
                SyncGroupResponse {
                    error_code: code,
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    assignment,
                },
            );
            self.reschedule_heartbeat(group, &member_id);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Heartbeat

    fn heartbeat(&mut self, group: &mut Group, request: &HeartbeatRequest) -> ErrorCode {
        if group.state == GroupState::Dead {
            return codes::COORDINATOR_NOT_AVAILABLE;
        }
        if let Err(code) =
            group.validate_member(&request.member_id, request.group_instance_id.as_deref())
        {
            return code;
        }
        if request.generation_id != group.generation_id {
            return codes::ILLEGAL_GENERATION;
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => codes::UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => {
                self.reschedule_heartbeat(group, &request.member_id);
                codes::REBALANCE_IN_PROGRESS
            }
            // Consumers may heartbeat between their JoinGroup and SyncGroup responses.
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.reschedule_heartbeat(group, &request.member_id);
                codes::NONE
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // LeaveGroup

    fn leave(&mut self, group: &mut Group, request: &LeaveGroupRequest) -> LeaveGroupResponse {
        if group.state == GroupState::Dead {
            return LeaveGroupResponse {
                error_code: codes::COORDINATOR_NOT_AVAILABLE,
                members: Vec::new(),
            };
        }
        let mut members = Vec::with_capacity(request.members.len());
        let mut anyone_left = false;
        for leaving in &request.members {
            let error_code = if leaving.member_id.is_empty() {
                // Removal by group instance id (an operator removing a static member).
                match leaving
                    .group_instance_id
                    .as_deref()
                    .and_then(|instance| group.static_member_id(instance))
                    .map(str::to_owned)
                {
                    Some(member_id) => {
                        self.remove_member(group, &member_id);
                        codes::NONE
                    }
                    None => codes::UNKNOWN_MEMBER_ID,
                }
            } else if group.pending_join_members.contains(&leaving.member_id) {
                self.remove_member(group, &leaving.member_id);
                codes::NONE
            } else {
                match group
                    .validate_member(&leaving.member_id, leaving.group_instance_id.as_deref())
                {
                    Ok(()) => {
                        self.remove_member(group, &leaving.member_id);
                        codes::NONE
                    }
                    Err(code) => code,
                }
            };
            anyone_left |= error_code == codes::NONE;
            members.push(LeaveGroupMemberResponse {
                member_id: leaving.member_id.clone(),
                group_instance_id: leaving.group_instance_id.clone(),
                error_code,
            });
        }
        if anyone_left {
            match group.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    self.maybe_prepare_rebalance_or_complete_join(group)
                }
                GroupState::PreparingRebalance => self.maybe_complete_join_phase(group),
                GroupState::Empty | GroupState::Dead => {}
            }
        }
        LeaveGroupResponse {
            error_code: codes::NONE,
            members,
        }
    }
}
