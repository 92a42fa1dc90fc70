//! One classic consumer group: its state, members and the bookkeeping of a rebalance.
//!
//! This is the data half of Kafka's `ClassicGroup`/`ClassicGroupMember`: operations that only
//! touch one group's fields and emit nothing. The rules that involve timers, responses and
//! writes live in [`crate::coordinator`].

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

use crate::api::{JoinGroupProtocol, JoinGroupResponseMember, RequestId};
use crate::codes::{self, ErrorCode};
use crate::offsets::OffsetAndMetadata;
use crate::record::{GroupMetadataValue, MemberMetadata};

/// The protocol type of Kafka's consumer (the only one whose metadata the coordinator reads).
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// A classic group's state, named exactly as Kafka prints it.
///
/// ```text
///            +--------------------------------------------+
///            v                                            |
///  Empty --> PreparingRebalance --> CompletingRebalance --> Stable
///    ^          |   ^                     |                  |
///    +----------+   +---------------------+------------------+
///  (join phase ends with no members)  (member change, leader rejoin, leave, timeout)
///
///  any state --> Dead (group deleted, or its partition unloaded)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members. A group that only stores offsets stays here.
    Empty,
    /// Waiting for members to (re)join; JoinGroup requests are parked.
    PreparingRebalance,
    /// Generation chosen; waiting for the leader's assignment in SyncGroup.
    CompletingRebalance,
    /// Assignment persisted and handed out.
    Stable,
    /// Deleted (or being deleted); requests get COORDINATOR_NOT_AVAILABLE until it is gone.
    Dead,
}

impl GroupState {
    /// Kafka's name for the state, as DescribeGroups and ListGroups print it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Whether Kafka's `ClassicGroupState` allows moving from `from` to `self`.
    pub fn valid_after(self, from: GroupState) -> bool {
        use GroupState::*;
        match self {
            Empty => from == PreparingRebalance,
            PreparingRebalance => matches!(from, Stable | CompletingRebalance | Empty),
            CompletingRebalance => from == PreparingRebalance,
            Stable => from == CompletingRebalance,
            Dead => true,
        }
    }
}

impl std::fmt::Display for GroupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<JoinGroupProtocol>,
    pub assignment: Bytes,
    /// The parked JoinGroup request, answered when the join phase completes.
    pub awaiting_join: Option<RequestId>,
    /// The parked SyncGroup request, answered when the assignment is persisted.
    pub awaiting_sync: Option<RequestId>,
    /// Joined during the current join phase for the first time; such a member can be
    /// expired while it waits in JoinGroup (Kafka's `isNew`).
    pub is_new: bool,
}

impl Member {
    /// The metadata the member sent for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| &p.metadata)
    }

    /// Same protocols, same order, same metadata (Kafka compares the collections as lists).
    pub fn matches(&self, protocols: &[JoinGroupProtocol]) -> bool {
        self.protocols == protocols
    }

    /// The member's most preferred protocol among `candidates`.
    fn vote<'a>(&'a self, candidates: &BTreeSet<&str>) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| candidates.contains(name))
    }

    /// Whether an expired session should be forgiven: a member waiting in JoinGroup or
    /// SyncGroup cannot heartbeat, unless it is new (then it is the new-member join timeout
    /// that expired and it goes).
    pub fn has_satisfied_heartbeat(&self) -> bool {
        if self.is_new {
            false
        } else {
            self.awaiting_join.is_some() || self.awaiting_sync.is_some()
        }
    }

    fn protocol_names(&self) -> BTreeSet<&str> {
        self.protocols.iter().map(|p| p.name.as_str()).collect()
    }
}

/// Which handler runs when the group's join timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinTimer {
    /// The rebalance timeout: complete the join phase with whoever rejoined.
    Rebalance,
    /// The initial rebalance delay of a new group; extended while members keep arriving.
    Initial { delay_ms: i32, remaining_ms: i32 },
}

/// How offsets of a group expire (Kafka's `offsetExpirationCondition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpirationBase {
    /// Retention counts from each offset's commit timestamp.
    CommitTimestamp,
    /// Retention counts from when the group became Empty (KIP-211), or from the commit
    /// timestamp when that moment is unknown (a record from before Kafka 2.1).
    EmptySince(Option<i64>),
}

impl ExpirationBase {
    /// Whether `offset` has outlived `retention_ms` at `now_ms`. An offset committed with an
    /// explicit retention (OffsetCommit v2-4) expires at its own expire timestamp.
    pub fn is_expired(self, offset: &OffsetAndMetadata, now_ms: i64, retention_ms: i64) -> bool {
        if let Some(expire) = offset.expire_timestamp_ms {
            return now_ms >= expire;
        }
        let base = match self {
            ExpirationBase::CommitTimestamp => offset.commit_timestamp_ms,
            ExpirationBase::EmptySince(since) => since.unwrap_or(offset.commit_timestamp_ms),
        };
        now_ms.saturating_sub(base) >= retention_ms
    }
}

/// A classic group.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub previous_state: GroupState,
    /// When the group entered its current state (persisted as `currentStateTimestamp`).
    pub state_timestamp_ms: Option<i64>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    /// In join order: the first member becomes leader when the leader leaves.
    pub members: IndexMap<String, Member>,
    static_members: BTreeMap<String, String>,
    /// KIP-394: member ids handed out with MEMBER_ID_REQUIRED, not yet members.
    pub pending_join_members: BTreeSet<String>,
    /// Members that have not sent SyncGroup since the join phase completed.
    pub pending_sync_members: BTreeSet<String>,
    num_awaiting_join: usize,
    protocol_counts: BTreeMap<String, usize>,
    /// Topics the consumer-protocol members subscribe to; `None` when unknown.
    pub subscribed_topics: Option<BTreeSet<String>>,
    /// A member joined during the initial rebalance delay, so the delay is extended.
    pub new_member_added: bool,
    pub join_timer: JoinTimer,
    /// The generation the sync deadline was set for.
    pub sync_timer_generation: i32,
    /// Set while a deletion is being written: the Empty state's timestamp to restore if the
    /// write fails.
    pub deleting_from_empty_since: Option<Option<i64>>,
}

impl Group {
    /// A new, Empty group.
    pub fn new(group_id: String, now_ms: i64) -> Group {
        Group {
            group_id,
            state: GroupState::Empty,
            previous_state: GroupState::Dead,
            state_timestamp_ms: Some(now_ms),
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: IndexMap::new(),
            static_members: BTreeMap::new(),
            pending_join_members: BTreeSet::new(),
            pending_sync_members: BTreeSet::new(),
            num_awaiting_join: 0,
            protocol_counts: BTreeMap::new(),
            subscribed_topics: None,
            new_member_added: false,
            join_timer: JoinTimer::Rebalance,
            sync_timer_generation: 0,
            deleting_from_empty_since: None,
        }
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub fn transition_to(&mut self, state: GroupState, now_ms: i64) {
        debug_assert!(
            state.valid_after(self.state),
            "group {} cannot move from {} to {}",
            self.group_id,
            self.state,
            state
        );
        self.previous_state = self.state;
        self.state = state;
        self.state_timestamp_ms = Some(now_ms);
    }

    /// Kafka's `canRebalance`: PreparingRebalance may follow the current state.
    pub fn can_rebalance(&self) -> bool {
        GroupState::PreparingRebalance.valid_after(self.state)
    }

    pub fn static_member_id(&self, group_instance_id: &str) -> Option<&str> {
        self.static_members
            .get(group_instance_id)
            .map(String::as_str)
    }

    pub fn num_awaiting_join(&self) -> usize {
        self.num_awaiting_join
    }

    /// Every member has rejoined and no KIP-394 member is still expected.
    pub fn has_all_members_joined(&self) -> bool {
        self.members.len() == self.num_awaiting_join && self.pending_join_members.is_empty()
    }

    /// The group's rebalance timeout: the largest of its members'.
    pub fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
            .max(0)
    }

    pub fn uses_consumer_protocol(&self) -> bool {
        self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
    }

    /// Kafka's `supportsProtocols`: an Empty group takes any non-empty protocol type and
    /// list; otherwise the type must match and one protocol must be supported by every member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[JoinGroupProtocol]) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| {
                self.protocol_counts.get(&p.name).copied().unwrap_or(0) == self.members.len()
            })
    }

    fn count_protocols(&mut self, member: &Member, add: bool) {
        for name in member.protocol_names() {
            let count = self.protocol_counts.entry(name.to_owned()).or_insert(0);
            if add {
                *count += 1;
            } else {
                *count = count.saturating_sub(1);
            }
        }
        self.protocol_counts.retain(|_, count| *count > 0);
    }

    /// Adds a member (Kafka's `ClassicGroup.add`). The caller checked the protocols.
    pub fn add(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        self.count_protocols(&member, true);
        if member.awaiting_join.is_some() {
            self.num_awaiting_join += 1;
        }
        self.pending_join_members.remove(&member.member_id);
        self.members.insert(member.member_id.clone(), member);
    }

    /// Removes a member or pending member and returns the member, whose parked requests the
    /// caller must answer. A new leader (the oldest remaining member) is chosen if needed.
    pub fn remove(&mut self, member_id: &str) -> Option<Member> {
        let removed = self.members.shift_remove(member_id);
        if let Some(member) = &removed {
            self.count_protocols(member, false);
            if member.awaiting_join.is_some() {
                self.num_awaiting_join -= 1;
            }
            if let Some(instance) = &member.group_instance_id
                && self.static_members.get(instance).map(String::as_str) == Some(member_id)
            {
                self.static_members.remove(instance);
            }
        }
        if self.is_leader(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.pending_join_members.remove(member_id);
        self.pending_sync_members.remove(member_id);
        removed
    }

    /// Parks (or clears) a member's JoinGroup request; returns a request it replaced.
    pub fn set_awaiting_join(
        &mut self,
        member_id: &str,
        request: Option<RequestId>,
    ) -> Option<RequestId> {
        let member = self.members.get_mut(member_id)?;
        let previous = std::mem::replace(&mut member.awaiting_join, request);
        match (previous.is_some(), request.is_some()) {
            (false, true) => self.num_awaiting_join += 1,
            (true, false) => self.num_awaiting_join -= 1,
            _ => {}
        }
        previous
    }

    /// Kafka's `updateMember`: new protocols and timeouts, and the parked JoinGroup request.
    /// Returns a parked request that was replaced.
    pub fn update_member(
        &mut self,
        member_id: &str,
        protocols: Vec<JoinGroupProtocol>,
        rebalance_timeout_ms: i32,
        session_timeout_ms: i32,
        awaiting_join: Option<RequestId>,
    ) -> Option<RequestId> {
        let mut member = self.members.get(member_id)?.clone();
        self.count_protocols(&member, false);
        member.protocols = protocols;
        member.rebalance_timeout_ms = rebalance_timeout_ms;
        member.session_timeout_ms = session_timeout_ms;
        self.count_protocols(&member, true);
        if let Some(slot) = self.members.get_mut(member_id) {
            slot.protocols = member.protocols;
            slot.rebalance_timeout_ms = rebalance_timeout_ms;
            slot.session_timeout_ms = session_timeout_ms;
        }
        self.set_awaiting_join(member_id, awaiting_join)
    }

    /// Kafka's `replaceStaticMember`: the member with `old_member_id` continues as
    /// `new_member_id`, keeping its place, protocols, timeouts and assignment. Returns the old
    /// member with its parked requests, which the caller answers with FENCED_INSTANCE_ID.
    pub fn replace_static_member(
        &mut self,
        group_instance_id: &str,
        old_member_id: &str,
        new_member_id: &str,
    ) -> Option<Member> {
        let index = self.members.get_index_of(old_member_id)?;
        let (_, old) = self.members.shift_remove_index(index)?;
        if old.awaiting_join.is_some() {
            self.num_awaiting_join -= 1;
        }
        let mut replacement = old.clone();
        replacement.member_id = new_member_id.to_owned();
        replacement.awaiting_join = None;
        replacement.awaiting_sync = None;
        self.members
            .shift_insert(index, new_member_id.to_owned(), replacement);
        if self.is_leader(old_member_id) {
            self.leader_id = Some(new_member_id.to_owned());
        }
        self.static_members
            .insert(group_instance_id.to_owned(), new_member_id.to_owned());
        // Kafka leaves the old id in the pending-sync set, which makes the sync deadline
        // remove nobody and rebalance anyway; carrying the obligation over to the new id
        // is what the bookkeeping means.
        if self.pending_sync_members.remove(old_member_id) {
            self.pending_sync_members.insert(new_member_id.to_owned());
        }
        Some(old)
    }

    /// Kafka's `validateMember`: the instance id (if any) must map to this member id, and the
    /// member must exist.
    pub fn validate_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if let Some(instance) = group_instance_id {
            match self.static_member_id(instance) {
                None => return Err(codes::UNKNOWN_MEMBER_ID),
                Some(existing) if existing != member_id => return Err(codes::FENCED_INSTANCE_ID),
                Some(_) => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(codes::UNKNOWN_MEMBER_ID);
        }
        Ok(())
    }

    /// The protocol every member supports that most members prefer. Ties go to the protocol
    /// whose first vote came earliest in member order (Kafka leaves ties to hash order).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates: BTreeSet<&str> = self
            .protocol_counts
            .iter()
            .filter(|(_, count)| **count == self.members.len())
            .map(|(name, _)| name.as_str())
            .collect();
        let mut votes: IndexMap<&str, usize> = IndexMap::new();
        for member in self.members.values() {
            if let Some(name) = member.vote(&candidates) {
                *votes.entry(name).or_insert(0) += 1;
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in votes {
            if best.is_none_or(|(_, best_count)| count > best_count) {
                best = Some((name, count));
            }
        }
        best.map(|(name, _)| name.to_owned())
    }

    /// Kafka's `maybeElectNewJoinedLeader`: keep the leader if it rejoined, else pick the
    /// first member that did. False when nobody rejoined.
    pub fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.clone() else {
            return false;
        };
        let leader_rejoined = self
            .members
            .get(&leader)
            .is_some_and(|m| m.awaiting_join.is_some());
        if leader_rejoined {
            return true;
        }
        match self.members.values().find(|m| m.awaiting_join.is_some()) {
            Some(member) => {
                self.leader_id = Some(member.member_id.clone());
                true
            }
            None => false,
        }
    }

    /// Kafka's `initNextGeneration`: bump the generation and choose the protocol.
    pub fn init_next_generation(&mut self, now_ms: i64) {
        self.generation_id = self.generation_id.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::Empty, now_ms);
        } else {
            self.protocol_name = self.select_protocol();
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::CompletingRebalance, now_ms);
        }
        self.pending_sync_members.clear();
    }

    /// The member list the leader receives: every member with its metadata for the chosen
    /// protocol.
    pub fn members_for_leader(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinGroupResponseMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Kafka's `computeSubscribedTopics`: for a consumer-protocol group, the union of the
    /// topics in the members' `ConsumerProtocolSubscription` (read with version 0, the prefix
    /// of every version). `None` when unknown (not a consumer group, or unreadable metadata).
    pub fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if !self.uses_consumer_protocol() {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            let metadata = member.metadata(protocol)?;
            topics.extend(decode_subscribed_topics(metadata)?);
        }
        Some(topics)
    }

    /// Whether the group consumes `topic`; unknown subscriptions count as subscribed for
    /// consumer groups, as in Kafka.
    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        match &self.subscribed_topics {
            Some(topics) => topics.contains(topic),
            None => self.uses_consumer_protocol(),
        }
    }

    /// Kafka's `offsetExpirationCondition`.
    pub fn offset_expiration(&self) -> Option<ExpirationBase> {
        match &self.protocol_type {
            None => Some(ExpirationBase::CommitTimestamp),
            Some(_) if self.state == GroupState::Empty => {
                Some(ExpirationBase::EmptySince(self.state_timestamp_ms))
            }
            Some(_)
                if self.uses_consumer_protocol()
                    && self.subscribed_topics.is_some()
                    && self.state == GroupState::Stable =>
            {
                Some(ExpirationBase::CommitTimestamp)
            }
            Some(_) => None,
        }
    }

    /// The GroupMetadataValue for the group with the given assignment per member (members
    /// missing from `assignment` get their current one).
    pub fn metadata_value(&self, assignment: &BTreeMap<String, Bytes>) -> GroupMetadataValue {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp: self.state_timestamp_ms.unwrap_or(-1),
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: m.metadata(protocol).cloned().unwrap_or_default(),
                    assignment: assignment
                        .get(&m.member_id)
                        .cloned()
                        .unwrap_or_else(|| m.assignment.clone()),
                })
                .collect(),
        }
    }

    /// Rebuilds a group from its persisted record (Kafka's `replay` of GroupMetadataValue):
    /// Stable with the recorded members, or Empty without. Each member's only protocol is
    /// the group's, with its recorded subscription.
    pub fn from_record(group_id: String, value: GroupMetadataValue) -> Result<Group, String> {
        let state = if value.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        let protocol_type = (!value.protocol_type.is_empty()).then_some(value.protocol_type);
        let mut group = Group::new(group_id, 0);
        group.state = state;
        group.previous_state = GroupState::Dead;
        group.state_timestamp_ms =
            (value.current_state_timestamp != -1).then_some(value.current_state_timestamp);
        group.generation_id = value.generation;
        group.protocol_type = protocol_type.clone();
        group.protocol_name = value.protocol.clone();
        if !value.members.is_empty() && value.protocol.is_none() {
            return Err("members without a protocol".to_owned());
        }
        for member in value.members {
            if group.members.contains_key(&member.member_id) {
                return Err(format!("member {} appears twice", member.member_id));
            }
            if let Some(instance) = &member.group_instance_id
                && group.static_members.contains_key(instance)
            {
                return Err(format!("group instance id {instance} appears twice"));
            }
            let rebalance_timeout_ms = if member.rebalance_timeout == -1 {
                member.session_timeout
            } else {
                member.rebalance_timeout
            };
            group.add(Member {
                member_id: member.member_id,
                group_instance_id: member.group_instance_id,
                client_id: member.client_id,
                client_host: member.client_host,
                rebalance_timeout_ms,
                session_timeout_ms: member.session_timeout,
                protocol_type: protocol_type.clone().unwrap_or_default(),
                protocols: vec![JoinGroupProtocol {
                    name: value.protocol.clone().unwrap_or_default(),
                    metadata: member.subscription,
                }],
                assignment: member.assignment,
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
            });
        }
        // `add` made the first member leader; the record knows better, unless it names
        // someone who is not a member (then the first member leads, as after a removal).
        if let Some(leader) = value.leader.filter(|l| group.members.contains_key(l)) {
            group.leader_id = Some(leader);
        }
        group.subscribed_topics = group.compute_subscribed_topics();
        Ok(group)
    }
}

/// The topics of a serialized `ConsumerProtocolSubscription` (an `int16` version, then the
/// version 0 fields every version starts with). `None` when unreadable.
pub(crate) fn decode_subscribed_topics(metadata: &Bytes) -> Option<BTreeSet<String>> {
    let mut buf = metadata.clone();
    if buf.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    if version < 0 {
        return None;
    }
    bytes::Buf::advance(&mut buf, 2);
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, 0).ok()?;
    Some(
        subscription
            .topics
            .iter()
            .map(|topic| topic.as_str().to_owned())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            member_id: id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 1000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|name| JoinGroupProtocol {
                    name: (*name).into(),
                    metadata: Bytes::new(),
                })
                .collect(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
        }
    }

    #[test]
    fn protocol_is_chosen_by_vote_among_common_protocols() {
        let mut group = Group::new("g".into(), 0);
        group.add(member("a", &["range", "roundrobin"]));
        group.add(member("b", &["roundrobin", "range"]));
        group.add(member("c", &["roundrobin", "sticky", "range"]));
        assert_eq!(group.select_protocol().as_deref(), Some("roundrobin"));
    }

    #[test]
    fn vote_ties_go_to_the_earliest_member() {
        let mut group = Group::new("g".into(), 0);
        group.add(member("a", &["range", "roundrobin"]));
        group.add(member("b", &["roundrobin", "range"]));
        assert_eq!(group.select_protocol().as_deref(), Some("range"));
    }

    #[test]
    fn removing_the_leader_promotes_the_oldest_member() {
        let mut group = Group::new("g".into(), 0);
        group.add(member("a", &["range"]));
        group.add(member("b", &["range"]));
        group.add(member("c", &["range"]));
        assert!(group.is_leader("a"));
        group.remove("a");
        assert!(group.is_leader("b"));
    }

    #[test]
    fn state_transitions_follow_kafka() {
        use GroupState::*;
        assert!(PreparingRebalance.valid_after(Empty));
        assert!(!Stable.valid_after(PreparingRebalance));
        assert!(!CompletingRebalance.valid_after(Stable));
        assert!(Empty.valid_after(PreparingRebalance));
        assert!(Dead.valid_after(Stable));
    }

    #[test]
    fn subscription_topics_are_read_from_consumer_protocol_metadata() {
        // ConsumerProtocolSubscription v1: version, topics ["a", "b"], null user data,
        // no owned partitions.
        let bytes = Bytes::from_static(&[
            0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 1, b'b', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        let topics = decode_subscribed_topics(&bytes).unwrap();
        assert_eq!(
            topics.into_iter().collect::<Vec<_>>(),
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(decode_subscribed_topics(&Bytes::from_static(&[0, 1, 0])).is_none());
    }
}
