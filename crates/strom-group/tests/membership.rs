//! JoinGroup / SyncGroup / Heartbeat / LeaveGroup sequences and the rebalance timers.

mod common;

use common::*;
use strom_group::record::{GroupMetadataValue, RecordKey};
use strom_group::*;

fn stable_group_of(h: &mut Harness, clients: &[&str]) -> (Vec<String>, i32) {
    let mut joins = Vec::new();
    let mut ids = Vec::new();
    for client in clients {
        let (join, member_id) = h.join_dynamic(GROUP, client, &["orders"]);
        joins.push(join);
        ids.push(member_id);
    }
    // Each member after the first extends the initial delay once: 3 s + 3 s.
    h.advance(6_000);
    let mut generation = -1;
    let mut leader = String::new();
    for join in &joins {
        let response = h.join_response(*join);
        assert_eq!(response.error_code, codes::NONE);
        generation = response.generation_id;
        leader = response.leader.clone();
    }
    let assignment: Vec<(String, Vec<u8>)> = ids
        .iter()
        .map(|id| (id.clone(), format!("assign-{id}").into_bytes()))
        .collect();
    let refs: Vec<(&str, &[u8])> = assignment
        .iter()
        .map(|(m, a)| (m.as_str(), a.as_slice()))
        .collect();
    let leader_sync = h.sync(GROUP, &leader, generation, &refs);
    assert_eq!(h.sync_response(leader_sync).error_code, codes::NONE);
    for id in ids.iter().filter(|id| **id != leader) {
        let sync = h.sync(GROUP, id, generation, &[]);
        assert_eq!(h.sync_response(sync).error_code, codes::NONE);
    }
    assert_eq!(h.summary(GROUP).state, GroupState::Stable);
    (ids, generation)
}

#[test]
fn single_member_joins_and_syncs_into_a_stable_group() {
    let mut h = Harness::new();
    let (join, member_id) = h.join_dynamic(GROUP, "client", &["orders"]);
    assert!(member_id.starts_with("client-"));
    // The new group waits group.initial.rebalance.delay.ms for more members.
    h.advance(2_999);
    assert!(!h.is_answered(join));
    assert_eq!(h.summary(GROUP).state, GroupState::PreparingRebalance);
    h.advance(1);
    let response = h.join_response(join);
    assert_eq!(
        response,
        JoinGroupResponse {
            error_code: codes::NONE,
            generation_id: 1,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader: member_id.clone(),
            skip_assignment: false,
            member_id: member_id.clone(),
            members: vec![JoinGroupResponseMember {
                member_id: member_id.clone(),
                group_instance_id: None,
                metadata: subscription(&["orders"]),
            }],
        }
    );
    assert_eq!(h.summary(GROUP).state, GroupState::CompletingRebalance);

    let sync = h.sync(GROUP, &member_id, 1, &[(&member_id, b"assignment")]);
    let sync = h.sync_response(sync);
    assert_eq!(sync.error_code, codes::NONE);
    assert_eq!(sync.assignment.as_ref(), b"assignment");
    assert_eq!(sync.protocol_name.as_deref(), Some("range"));
    assert_eq!(sync.protocol_type.as_deref(), Some("consumer"));

    let summary = h.summary(GROUP);
    assert_eq!(summary.state, GroupState::Stable);
    assert_eq!(summary.generation_id, 1);

    // The assignment was persisted as one GroupMetadata record in Kafka's format.
    assert_eq!(h.issued.len(), 1);
    let write = &h.issued[0];
    assert_eq!(write.partition, partition_for_group(GROUP, 4));
    assert_eq!(write.records.len(), 1);
    let record = &write.records[0];
    assert_eq!(
        RecordKey::decode(&record.key).unwrap(),
        RecordKey::GroupMetadata {
            group: GROUP.into()
        }
    );
    let value = GroupMetadataValue::decode(record.value.as_ref().unwrap()).unwrap();
    assert_eq!(value.generation, 1);
    assert_eq!(value.protocol_type, "consumer");
    assert_eq!(value.protocol.as_deref(), Some("range"));
    assert_eq!(value.leader.as_deref(), Some(member_id.as_str()));
    assert_eq!(value.members.len(), 1);
    assert_eq!(value.members[0].assignment.as_ref(), b"assignment");
    assert_eq!(value.members[0].session_timeout, SESSION_MS);
    assert_eq!(value.members[0].rebalance_timeout, REBALANCE_MS);

    assert_eq!(h.heartbeat(GROUP, &member_id, 1), codes::NONE);
}

#[test]
fn fourth_member_rebalances_everyone_into_a_new_generation() {
    let mut h = Harness::new();
    let (ids, generation) = stable_group_of(&mut h, &["a", "b", "c"]);
    assert_eq!(generation, 1);
    let leader = h.summary(GROUP).leader_id.unwrap();
    assert_eq!(leader, ids[0]);

    let (join_d, id_d) = h.join_dynamic(GROUP, "d", &["orders"]);
    assert!(!h.is_answered(join_d));
    assert_eq!(h.summary(GROUP).state, GroupState::PreparingRebalance);
    for id in &ids {
        assert_eq!(h.heartbeat(GROUP, id, 1), codes::REBALANCE_IN_PROGRESS);
    }

    let mut rejoins = Vec::new();
    for id in &ids {
        rejoins.push(h.send_join(join_request(GROUP, id, "x", &["orders"])));
    }
    // The join phase ends as soon as the last known member is back.
    let mut all = rejoins.clone();
    all.push(join_d);
    let responses: Vec<JoinGroupResponse> = all.iter().map(|id| h.join_response(*id)).collect();
    for response in &responses {
        assert_eq!(response.error_code, codes::NONE);
        assert_eq!(response.generation_id, 2);
        assert_eq!(response.leader, leader, "the rejoining leader stays leader");
    }
    let leader_response = &responses[0];
    assert_eq!(leader_response.members.len(), 4);
    assert!(responses[1..].iter().all(|r| r.members.is_empty()));
    let mut member_ids: Vec<String> = leader_response
        .members
        .iter()
        .map(|m| m.member_id.clone())
        .collect();
    member_ids.sort();
    let mut expected = ids.clone();
    expected.push(id_d.clone());
    expected.sort();
    assert_eq!(member_ids, expected);
    let summary = h.summary(GROUP);
    assert_eq!(summary.state, GroupState::CompletingRebalance);
    assert_eq!(summary.generation_id, 2);
}

#[test]
fn follower_sync_waits_for_the_leader_and_unassigned_members_get_empty_assignments() {
    let mut h = Harness::new();
    let (join_a, a) = h.join_dynamic(GROUP, "a", &["orders"]);
    let (join_b, b) = h.join_dynamic(GROUP, "b", &["orders"]);
    h.advance(6_000);
    let leader = h.join_response(join_a);
    assert_eq!(leader.leader, a);
    h.join_response(join_b);

    let follower_sync = h.sync(GROUP, &b, 1, &[]);
    assert!(
        !h.is_answered(follower_sync),
        "a follower waits for the leader"
    );
    h.auto_complete = false;
    let leader_sync = h.sync(GROUP, &a, 1, &[(&a, b"for-a")]);
    assert_eq!(h.in_flight.len(), 1);
    assert!(!h.is_answered(leader_sync) && !h.is_answered(follower_sync));
    assert_eq!(h.summary(GROUP).state, GroupState::CompletingRebalance);
    h.complete_all();
    assert_eq!(h.sync_response(leader_sync).assignment.as_ref(), b"for-a");
    let follower = h.sync_response(follower_sync);
    assert_eq!(follower.error_code, codes::NONE);
    assert!(follower.assignment.is_empty());
    assert_eq!(h.summary(GROUP).state, GroupState::Stable);
}

#[test]
fn sync_errors_follow_kafka() {
    let mut h = Harness::new();
    let unknown_group = h.sync("nobody-here", "m", 1, &[]);
    assert_eq!(
        h.sync_response(unknown_group).error_code,
        codes::UNKNOWN_MEMBER_ID
    );

    let (join_a, a) = h.join_dynamic(GROUP, "a", &["orders"]);
    // Still preparing the first rebalance.
    let early = h.sync(GROUP, &a, 0, &[]);
    assert_eq!(
        h.sync_response(early).error_code,
        codes::REBALANCE_IN_PROGRESS
    );
    h.advance(3_000);
    h.join_response(join_a);

    let unknown_member = h.sync(GROUP, "stranger", 1, &[]);
    assert_eq!(
        h.sync_response(unknown_member).error_code,
        codes::UNKNOWN_MEMBER_ID
    );
    let old_generation = h.sync(GROUP, &a, 0, &[]);
    assert_eq!(
        h.sync_response(old_generation).error_code,
        codes::ILLEGAL_GENERATION
    );
    let wrong_protocol = h.send_sync(SyncGroupRequest {
        group_id: GROUP.into(),
        generation_id: 1,
        member_id: a.clone(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("roundrobin".into()),
        assignments: vec![],
    });
    assert_eq!(
        h.sync_response(wrong_protocol).error_code,
        codes::INCONSISTENT_GROUP_PROTOCOL
    );
    let empty_id = h.sync("", &a, 1, &[]);
    assert_eq!(
        h.sync_response(empty_id).error_code,
        codes::INVALID_GROUP_ID
    );
}

#[test]
fn heartbeat_errors_follow_the_group_state() {
    let mut h = Harness::new();
    assert_eq!(h.heartbeat("", "m", 0), codes::INVALID_GROUP_ID);
    assert_eq!(h.heartbeat("unknown", "m", 0), codes::UNKNOWN_MEMBER_ID);

    let (join_a, a) = h.join_dynamic(GROUP, "a", &["orders"]);
    assert_eq!(h.heartbeat(GROUP, &a, 0), codes::REBALANCE_IN_PROGRESS);
    h.advance(3_000);
    h.join_response(join_a);
    assert_eq!(
        h.heartbeat(GROUP, &a, 1),
        codes::NONE,
        "CompletingRebalance"
    );
    assert_eq!(h.heartbeat(GROUP, &a, 0), codes::ILLEGAL_GENERATION);
    assert_eq!(h.heartbeat(GROUP, "stranger", 1), codes::UNKNOWN_MEMBER_ID);
    let sync = h.sync(GROUP, &a, 1, &[(&a, b"x")]);
    h.sync_response(sync);
    assert_eq!(h.heartbeat(GROUP, &a, 1), codes::NONE, "Stable");
    let leave = h.send_leave(leave_request(GROUP, &a));
    h.leave_response(leave);
    assert_eq!(h.summary(GROUP).state, GroupState::Empty);
    assert_eq!(h.heartbeat(GROUP, &a, 2), codes::UNKNOWN_MEMBER_ID, "Empty");
}

#[test]
fn join_is_rejected_for_bad_session_timeouts_group_ids_and_protocols() {
    let mut h = Harness::new();
    let mut request = join_request(GROUP, "", "c", &["t"]);
    request.session_timeout_ms = 5_999;
    let low = h.send_join(request.clone());
    assert_eq!(
        h.join_response(low).error_code,
        codes::INVALID_SESSION_TIMEOUT
    );
    request.session_timeout_ms = 1_800_001;
    let high = h.send_join(request.clone());
    assert_eq!(
        h.join_response(high).error_code,
        codes::INVALID_SESSION_TIMEOUT
    );

    let empty_group = h.send_join(join_request("", "", "c", &["t"]));
    assert_eq!(
        h.join_response(empty_group).error_code,
        codes::INVALID_GROUP_ID
    );

    let unknown = h.send_join(join_request("missing", "some-member", "c", &["t"]));
    let unknown = h.join_response(unknown);
    assert_eq!(unknown.error_code, codes::UNKNOWN_MEMBER_ID);
    assert_eq!(unknown.member_id, "some-member");

    let mut no_protocols = join_request(GROUP, "", "c", &["t"]);
    no_protocols.protocols.clear();
    let rejected = h.send_join(no_protocols);
    assert_eq!(
        h.join_response(rejected).error_code,
        codes::INCONSISTENT_GROUP_PROTOCOL
    );
    assert!(
        h.coordinator.group_summary(GROUP).is_none(),
        "no group left behind"
    );

    let _member = h.stable_single_member_group(GROUP, &["t"]);
    let mut other_type = join_request(GROUP, "", "c", &["t"]);
    other_type.protocol_type = "connect".into();
    let rejected = h.send_join(other_type);
    assert_eq!(
        h.join_response(rejected).error_code,
        codes::INCONSISTENT_GROUP_PROTOCOL
    );
    let mut other_protocol = join_request(GROUP, "", "c", &["t"]);
    other_protocol.protocols[0].name = "roundrobin".into();
    let rejected = h.send_join(other_protocol);
    assert_eq!(
        h.join_response(rejected).error_code,
        codes::INCONSISTENT_GROUP_PROTOCOL
    );
}

#[test]
fn kip394_member_id_is_required_and_an_unused_one_expires() {
    let mut h = Harness::new();
    let first = h.send_join(join_request(GROUP, "", "client", &["t"]));
    let response = h.join_response(first);
    assert_eq!(response.error_code, codes::MEMBER_ID_REQUIRED);
    let pending_id = response.member_id;
    assert!(pending_id.starts_with("client-"));
    let summary = h.summary(GROUP);
    assert_eq!(summary.pending_members, vec![pending_id.clone()]);
    assert!(summary.members.is_empty());
    assert_eq!(summary.state, GroupState::Empty);

    // The client never comes back: the id lapses after the session timeout.
    h.advance(i64::from(SESSION_MS) - 1);
    assert_eq!(h.summary(GROUP).pending_members.len(), 1);
    h.advance(1);
    assert!(h.summary(GROUP).pending_members.is_empty());
    let late = h.send_join(join_request(GROUP, &pending_id, "client", &["t"]));
    assert_eq!(h.join_response(late).error_code, codes::UNKNOWN_MEMBER_ID);

    // JoinGroup v3 and older join straight away with a generated id.
    let mut v3 = join_request(GROUP, "", "old-client", &["t"]);
    v3.api_version = 3;
    let join = h.send_join(v3);
    h.advance(3_000);
    let response = h.join_response(join);
    assert_eq!(response.error_code, codes::NONE);
    assert!(response.member_id.starts_with("old-client-"));
}

#[test]
fn join_v0_uses_the_session_timeout_as_rebalance_timeout() {
    let mut h = Harness::new();
    let mut v0 = join_request(GROUP, "", "c", &["t"]);
    v0.api_version = 0;
    v0.rebalance_timeout_ms = 999_999;
    let join = h.send_join(v0);
    h.advance(3_000);
    h.join_response(join);
    assert_eq!(h.summary(GROUP).members[0].rebalance_timeout_ms, SESSION_MS);
}

#[test]
fn member_leaving_rebalances_and_the_last_one_leaving_empties_the_group() {
    let mut h = Harness::new();
    let (ids, _) = stable_group_of(&mut h, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);

    let leave = h.send_leave(leave_request(GROUP, a));
    let response = h.leave_response(leave);
    assert_eq!(response.error_code, codes::NONE);
    assert_eq!(response.members.len(), 1);
    assert_eq!(response.members[0].error_code, codes::NONE);
    assert_eq!(h.summary(GROUP).state, GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat(GROUP, b, 1), codes::REBALANCE_IN_PROGRESS);

    let rejoin = h.send_join(join_request(GROUP, b, "b", &["orders"]));
    let response = h.join_response(rejoin);
    assert_eq!(response.generation_id, 2);
    assert_eq!(&response.leader, b, "the remaining member leads");

    // The last member leaves: the group is Empty in generation 3 and that is persisted
    // before the LeaveGroup response goes out.
    h.auto_complete = false;
    let leave = h.send_leave(leave_request(GROUP, b));
    assert!(!h.is_answered(leave));
    let summary = h.summary(GROUP);
    assert_eq!(summary.state, GroupState::Empty);
    assert_eq!(summary.generation_id, 3);
    let write = h.in_flight.back().unwrap().clone();
    let value = GroupMetadataValue::decode(write.records[0].value.as_ref().unwrap()).unwrap();
    assert_eq!(value.generation, 3);
    assert!(value.members.is_empty());
    assert_eq!(value.protocol, None);
    assert_eq!(value.protocol_type, "consumer");
    h.complete_all();
    assert_eq!(h.leave_response(leave).error_code, codes::NONE);
}

#[test]
fn batched_leave_reports_each_member_and_removes_static_members_by_instance_id() {
    let mut h = Harness::new();
    let s1 = h.send_join(static_join_request(GROUP, "", "instance-1", &["t"]));
    let s2 = h.send_join(static_join_request(GROUP, "", "instance-2", &["t"]));
    h.advance(6_000);
    let s1 = h.join_response(s1).member_id;
    let s2 = h.join_response(s2).member_id;
    let request = LeaveGroupRequest {
        group_id: GROUP.into(),
        members: vec![
            LeaveGroupMember {
                member_id: String::new(),
                group_instance_id: Some("instance-1".into()),
                reason: Some("operator".into()),
            },
            LeaveGroupMember {
                member_id: "nobody".into(),
                group_instance_id: None,
                reason: None,
            },
            LeaveGroupMember {
                member_id: "wrong-id".into(),
                group_instance_id: Some("instance-2".into()),
                reason: None,
            },
        ],
    };
    let leave = h.send_leave(request);
    let response = h.leave_response(leave);
    let codes_by_member: Vec<ErrorCode> = response.members.iter().map(|m| m.error_code).collect();
    assert_eq!(
        codes_by_member,
        vec![
            codes::NONE,
            codes::UNKNOWN_MEMBER_ID,
            codes::FENCED_INSTANCE_ID
        ]
    );
    assert_eq!(response.legacy_error_code(), codes::UNKNOWN_MEMBER_ID);
    let members: Vec<String> = h
        .summary(GROUP)
        .members
        .into_iter()
        .map(|m| m.member_id)
        .collect();
    assert_eq!(members, vec![s2]);
    assert!(!members.contains(&s1));

    let unknown_group = h.send_leave(leave_request("no-such-group", "m"));
    let response = h.leave_response(unknown_group);
    assert_eq!(response.error_code, codes::NONE);
    assert_eq!(response.members[0].error_code, codes::UNKNOWN_MEMBER_ID);
}

#[test]
fn member_that_stops_heartbeating_is_removed_after_its_session_timeout() {
    let mut h = Harness::new();
    let (ids, _) = stable_group_of(&mut h, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    // Sessions restarted when the assignment was handed out (now). B keeps heartbeating.
    for _ in 0..3 {
        h.advance(3_000);
        assert_eq!(h.heartbeat(GROUP, b, 1), codes::NONE);
    }
    h.advance(999);
    assert_eq!(
        h.summary(GROUP).members.len(),
        2,
        "9.999 s: A is still a member"
    );
    h.advance(1);
    let summary = h.summary(GROUP);
    assert_eq!(summary.members.len(), 1, "10 s: A's session expired");
    assert_eq!(&summary.members[0].member_id, b);
    assert_eq!(summary.state, GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat(GROUP, a, 1), codes::UNKNOWN_MEMBER_ID);
    let rejoin = h.send_join(join_request(GROUP, b, "b", &["orders"]));
    assert_eq!(h.join_response(rejoin).generation_id, 2);
}

#[test]
fn member_missing_the_rebalance_timeout_is_removed() {
    let mut h = Harness::new();
    let (ids, _) = stable_group_of(&mut h, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    let (join_c, c) = h.join_dynamic(GROUP, "c", &["orders"]);
    let rejoin_a = h.send_join(join_request(GROUP, a, "a", &["orders"]));
    // B heartbeats (keeping its session) but never rejoins.
    for _ in 0..9 {
        h.advance(3_000);
        assert_eq!(h.heartbeat(GROUP, b, 1), codes::REBALANCE_IN_PROGRESS);
    }
    assert!(!h.is_answered(rejoin_a));
    h.advance(2_999);
    assert!(!h.is_answered(rejoin_a), "29.999 s: still waiting for B");
    h.advance(1);
    let response_a = h.join_response(rejoin_a);
    let response_c = h.join_response(join_c);
    assert_eq!(response_a.generation_id, 2);
    assert_eq!(response_c.generation_id, 2);
    let mut members: Vec<String> = response_a
        .members
        .iter()
        .map(|m| m.member_id.clone())
        .collect();
    members.sort();
    let mut expected = vec![a.clone(), c.clone()];
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(h.heartbeat(GROUP, b, 1), codes::UNKNOWN_MEMBER_ID);
}

#[test]
fn member_that_never_syncs_is_removed_at_the_sync_deadline() {
    let mut h = Harness::new();
    let (join_a, a) = h.join_dynamic(GROUP, "a", &["orders"]);
    let (join_b, b) = h.join_dynamic(GROUP, "b", &["orders"]);
    h.advance(6_000);
    h.join_response(join_a);
    h.join_response(join_b);
    let sync = h.sync(GROUP, &a, 1, &[(&a, b"x"), (&b, b"y")]);
    assert_eq!(h.sync_response(sync).error_code, codes::NONE);
    // B heartbeats but never sends SyncGroup; the sync deadline is the rebalance timeout.
    for _ in 0..9 {
        h.advance(3_000);
        h.heartbeat(GROUP, &a, 1);
        h.heartbeat(GROUP, &b, 1);
    }
    h.advance(2_999);
    assert_eq!(h.summary(GROUP).members.len(), 2);
    h.advance(1);
    let summary = h.summary(GROUP);
    assert_eq!(summary.members.len(), 1);
    assert_eq!(summary.members[0].member_id, a);
    assert_eq!(summary.state, GroupState::PreparingRebalance);
}

#[test]
fn leader_rejoining_a_stable_group_forces_a_rebalance_but_a_follower_does_not() {
    let mut h = Harness::new();
    let (ids, _) = stable_group_of(&mut h, &["a", "b"]);
    let follower = h.send_join(join_request(GROUP, &ids[1], "b", &["orders"]));
    let response = h.join_response(follower);
    assert_eq!(response.generation_id, 1);
    assert!(response.members.is_empty());
    assert_eq!(h.summary(GROUP).state, GroupState::Stable);

    let leader = h.send_join(join_request(GROUP, &ids[0], "a", &["orders"]));
    assert!(!h.is_answered(leader));
    assert_eq!(h.summary(GROUP).state, GroupState::PreparingRebalance);

    // A follower with new metadata (another subscription) also rebalances.
    let changed = h.send_join(join_request(GROUP, &ids[1], "b", &["orders", "payments"]));
    let leader = h.join_response(leader);
    let changed = h.join_response(changed);
    assert_eq!(leader.generation_id, 2);
    assert_eq!(changed.generation_id, 2);
}

#[test]
fn rebalance_during_completing_rebalance_answers_parked_syncs_with_rebalance_in_progress() {
    let mut h = Harness::new();
    let (join_a, _) = h.join_dynamic(GROUP, "a", &["orders"]);
    let (join_b, b) = h.join_dynamic(GROUP, "b", &["orders"]);
    h.advance(6_000);
    h.join_response(join_a);
    h.join_response(join_b);
    let follower_sync = h.sync(GROUP, &b, 1, &[]);
    assert!(!h.is_answered(follower_sync));
    let (join_c, _) = h.join_dynamic(GROUP, "c", &["orders"]);
    assert_eq!(
        h.sync_response(follower_sync).error_code,
        codes::REBALANCE_IN_PROGRESS
    );
    assert!(!h.is_answered(join_c));
    assert_eq!(h.summary(GROUP).state, GroupState::PreparingRebalance);
}

#[test]
fn initial_rebalance_delay_is_extended_while_members_join_up_to_the_rebalance_timeout() {
    let mut h = Harness::new();
    let request = |client: &str| {
        let mut r = join_request(GROUP, "", client, &["t"]);
        r.api_version = 3; // join without the MEMBER_ID_REQUIRED round trip
        r.rebalance_timeout_ms = 10_000;
        r
    };
    let first = h.send_join(request("a"));
    let mut joins = vec![first];
    // Members arrive at 2 s, 5 s, 8 s and 9.5 s. Each extends the delay at the next check
    // (3 s, 6 s, 9 s), but never beyond the 10 s rebalance timeout.
    for (at, client) in [(2_000, "b"), (3_000, "c"), (3_000, "d"), (1_500, "e")] {
        h.advance(at);
        assert!(!h.is_answered(first));
        joins.push(h.send_join(request(client)));
    }
    h.advance(499); // 9.999 s after the first member
    assert!(!h.is_answered(first));
    h.advance(1);
    for join in joins {
        let response = h.join_response(join);
        assert_eq!(response.error_code, codes::NONE);
        assert_eq!(response.generation_id, 1);
    }
    assert_eq!(h.summary(GROUP).members.len(), 5);
}

#[test]
fn initial_rebalance_without_more_members_completes_after_the_delay() {
    let mut h = Harness::new();
    let mut request = join_request(GROUP, "", "a", &["t"]);
    request.api_version = 3;
    let join = h.send_join(request);
    h.advance(2_999);
    assert!(!h.is_answered(join));
    h.advance(1);
    assert_eq!(h.join_response(join).generation_id, 1);
}

#[test]
fn group_max_size_rejects_members_beyond_the_limit() {
    let mut h = Harness::with_config(Config {
        group_max_size: 2,
        ..config()
    });
    let request = |client: &str| {
        let mut r = join_request(GROUP, "", client, &["t"]);
        r.api_version = 3;
        r
    };
    let a = h.send_join(request("a"));
    let b = h.send_join(request("b"));
    let c = h.send_join(request("c"));
    let rejected = h.join_response(c);
    assert_eq!(rejected.error_code, codes::GROUP_MAX_SIZE_REACHED);
    assert_eq!(rejected.member_id, "");
    h.advance(6_000);
    let a = h.join_response(a);
    let b = h.join_response(b);
    assert_eq!(a.members.len() + b.members.len(), 2);
    let sync = h.sync(GROUP, &a.leader, 1, &[]);
    h.sync_response(sync);
    let follower = if a.member_id == a.leader {
        &b.member_id
    } else {
        &a.member_id
    };
    let sync = h.sync(GROUP, follower, 1, &[]);
    h.sync_response(sync);
    // Stable with two members: a third is still turned away.
    let d = h.send_join(request("d"));
    assert_eq!(h.join_response(d).error_code, codes::GROUP_MAX_SIZE_REACHED);
    assert_eq!(h.summary(GROUP).state, GroupState::Stable);
}

#[test]
fn superseded_join_request_is_answered_so_no_request_is_left_hanging() {
    let mut h = Harness::new();
    let (first, member_id) = h.join_dynamic(GROUP, "a", &["t"]);
    let second = h.send_join(join_request(GROUP, &member_id, "a", &["t"]));
    assert_eq!(
        h.join_response(first).error_code,
        codes::REBALANCE_IN_PROGRESS
    );
    h.advance(3_000);
    assert_eq!(h.join_response(second).error_code, codes::NONE);
    assert!(h.outstanding.is_empty());
}

#[test]
fn protocol_is_chosen_by_vote_over_the_protocols_every_member_supports() {
    let mut h = Harness::new();
    let with_protocols = |client: &str, names: &[&str]| {
        let mut r = join_request(GROUP, "", client, &["t"]);
        r.api_version = 3;
        r.protocols = names
            .iter()
            .map(|name| JoinGroupProtocol {
                name: name.to_string(),
                metadata: subscription(&["t"]),
            })
            .collect();
        r
    };
    let a = h.send_join(with_protocols("a", &["range", "roundrobin"]));
    let b = h.send_join(with_protocols("b", &["roundrobin", "range", "sticky"]));
    let c = h.send_join(with_protocols("c", &["sticky", "roundrobin", "range"]));
    h.advance(9_000);
    for join in [a, b, c] {
        let response = h.join_response(join);
        assert_eq!(response.protocol_name.as_deref(), Some("roundrobin"));
    }
}

#[test]
fn zero_rebalance_timeouts_do_not_spin_the_timers() {
    let mut h = Harness::new();
    let mut static_member = static_join_request(GROUP, "", "instance-1", &["t"]);
    static_member.rebalance_timeout_ms = 0;
    let mut dynamic = join_request(GROUP, "", "d", &["t"]);
    dynamic.api_version = 3;
    let s = h.send_join(static_member);
    let d = h.send_join(dynamic);
    h.advance(6_000);
    let s = h.join_response(s).member_id;
    let d = h.join_response(d).member_id;
    for member in [&s, &d] {
        let sync = h.sync(GROUP, member, 1, &[]);
        assert_eq!(h.sync_response(sync).error_code, codes::NONE);
    }
    // The dynamic member leaves; the static one is silent. The join phase can only end when
    // its session expires, and the clock must be able to get there.
    let leave = h.send_leave(leave_request(GROUP, &d));
    h.leave_response(leave);
    let mut polls = 0;
    let target = h.now + 20_000;
    while let Some(deadline) = h.coordinator.next_deadline() {
        if deadline > target {
            break;
        }
        h.now = h.now.max(deadline);
        let out = h.coordinator.poll(h.now);
        h.handle(out);
        polls += 1;
        assert!(polls < 100, "timers spin");
    }
    assert_eq!(h.summary(GROUP).state, GroupState::Empty);
}
