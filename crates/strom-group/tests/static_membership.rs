//! KIP-345 static membership: restarts without rebalances, fencing, and the leader's view.

mod common;

use common::*;
use strom_group::record::GroupMetadataValue;
use strom_group::*;

fn heartbeat_static(
    h: &mut Harness,
    member_id: &str,
    instance: &str,
    generation: i32,
) -> ErrorCode {
    let id = h.next_id();
    let out = h.coordinator.heartbeat(
        h.now,
        id,
        HeartbeatRequest {
            group_id: GROUP.into(),
            generation_id: generation,
            member_id: member_id.into(),
            group_instance_id: Some(instance.into()),
        },
    );
    h.handle(out);
    match h.take(id) {
        Some(Response::Heartbeat(r)) => r.error_code,
        other => panic!("unexpected {other:?}"),
    }
}

fn static_sync(
    h: &mut Harness,
    member_id: &str,
    instance: &str,
    generation: i32,
    assignment: &[(&str, &[u8])],
) -> SyncGroupResponse {
    let id = h.send_sync(SyncGroupRequest {
        group_id: GROUP.into(),
        generation_id: generation,
        member_id: member_id.into(),
        group_instance_id: Some(instance.into()),
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: assignment
            .iter()
            .map(|(m, a)| SyncGroupAssignment {
                member_id: m.to_string(),
                assignment: bytes::Bytes::copy_from_slice(a),
            })
            .collect(),
    });
    h.sync_response(id)
}

/// Two static members (instance-1 leads) in a Stable generation 1.
fn stable_static_group(h: &mut Harness) -> (String, String) {
    let j1 = h.send_join(static_join_request(GROUP, "", "instance-1", &["t"]));
    let j2 = h.send_join(static_join_request(GROUP, "", "instance-2", &["t"]));
    h.advance(6_000);
    let r1 = h.join_response(j1);
    let r2 = h.join_response(j2);
    assert_eq!(r1.leader, r1.member_id);
    let (s1, s2) = (r1.member_id, r2.member_id);
    assert!(s1.starts_with("instance-1-"));
    let leader = static_sync(h, &s1, "instance-1", 1, &[(&s1, b"a1"), (&s2, b"a2")]);
    assert_eq!(leader.error_code, codes::NONE);
    let follower = static_sync(h, &s2, "instance-2", 1, &[]);
    assert_eq!(follower.assignment.as_ref(), b"a2");
    (s1, s2)
}

#[test]
fn static_member_restart_keeps_its_assignment_without_a_rebalance_and_fences_the_old_id() {
    let mut h = Harness::new();
    let (old_s1, s2) = stable_static_group(&mut h);

    h.auto_complete = false;
    let restart = h.send_join(static_join_request(GROUP, "", "instance-1", &["t"]));
    assert!(
        !h.is_answered(restart),
        "answered once the new member id is persisted"
    );
    let write = h.in_flight.back().unwrap().clone();
    let value = GroupMetadataValue::decode(write.records[0].value.as_ref().unwrap()).unwrap();
    let new_s1 = value.members[0].member_id.clone();
    assert_ne!(new_s1, old_s1);
    assert_eq!(
        value.members[0].group_instance_id.as_deref(),
        Some("instance-1")
    );
    assert_eq!(value.members[0].assignment.as_ref(), b"a1");
    assert_eq!(value.generation, 1);
    h.complete_all();

    let response = h.join_response(restart);
    assert_eq!(response.error_code, codes::NONE);
    assert_eq!(response.member_id, new_s1);
    assert_eq!(response.generation_id, 1);
    // KIP-814: the restarted leader learns it leads but must not reassign.
    assert_eq!(response.leader, new_s1);
    assert!(response.skip_assignment);
    assert_eq!(response.members.len(), 2);

    let summary = h.summary(GROUP);
    assert_eq!(summary.state, GroupState::Stable);
    assert_eq!(summary.generation_id, 1);
    let sync = static_sync(&mut h, &new_s1, "instance-1", 1, &[]);
    assert_eq!(
        sync.assignment.as_ref(),
        b"a1",
        "the old assignment carries over"
    );

    assert_eq!(
        heartbeat_static(&mut h, &old_s1, "instance-1", 1),
        codes::FENCED_INSTANCE_ID
    );
    let zombie = h.send_join(static_join_request(GROUP, &old_s1, "instance-1", &["t"]));
    assert_eq!(
        h.join_response(zombie).error_code,
        codes::FENCED_INSTANCE_ID
    );
    assert_eq!(heartbeat_static(&mut h, &s2, "instance-2", 1), codes::NONE);
}

#[test]
fn restarted_static_follower_on_an_old_join_version_is_told_the_previous_leader() {
    let mut h = Harness::new();
    let (s1, old_s2) = stable_static_group(&mut h);
    let mut request = static_join_request(GROUP, "", "instance-2", &["t"]);
    request.api_version = 5;
    let restart = h.send_join(request);
    let response = h.join_response(restart);
    assert_eq!(response.error_code, codes::NONE);
    assert_ne!(response.member_id, old_s2);
    assert_eq!(response.leader, s1);
    assert!(!response.skip_assignment);
    assert!(response.members.is_empty());
    assert_eq!(h.summary(GROUP).state, GroupState::Stable);
}

#[test]
fn static_restart_that_changes_the_chosen_protocol_rebalances() {
    let mut h = Harness::new();
    let both = |instance: &str, first: &str, second: &str| {
        let mut r = static_join_request(GROUP, "", instance, &["t"]);
        r.protocols = vec![
            JoinGroupProtocol {
                name: first.into(),
                metadata: subscription(&["t"]),
            },
            JoinGroupProtocol {
                name: second.into(),
                metadata: subscription(&["t"]),
            },
        ];
        r
    };
    let j1 = h.send_join(both("instance-1", "range", "roundrobin"));
    let j2 = h.send_join(both("instance-2", "range", "roundrobin"));
    h.advance(6_000);
    assert_eq!(h.join_response(j1).protocol_name.as_deref(), Some("range"));
    h.join_response(j2);
    let s1 = h.summary(GROUP).members[0].member_id.clone();
    let s2 = h.summary(GROUP).members[1].member_id.clone();
    let sync = h.send_sync(SyncGroupRequest {
        group_id: GROUP.into(),
        generation_id: 1,
        member_id: s1,
        group_instance_id: Some("instance-1".into()),
        protocol_type: None,
        protocol_name: None,
        assignments: vec![],
    });
    h.sync_response(sync);
    let sync = h.send_sync(SyncGroupRequest {
        group_id: GROUP.into(),
        generation_id: 1,
        member_id: s2,
        group_instance_id: Some("instance-2".into()),
        protocol_type: None,
        protocol_name: None,
        assignments: vec![],
    });
    h.sync_response(sync);
    assert_eq!(h.summary(GROUP).state, GroupState::Stable);

    // instance-1 now prefers roundrobin: one vote each, and the tie goes to the first
    // member's choice, so the protocol would change.
    let restart = h.send_join(both("instance-1", "roundrobin", "range"));
    assert!(!h.is_answered(restart));
    assert_eq!(h.summary(GROUP).state, GroupState::PreparingRebalance);
}

#[test]
fn duplicate_instance_id_fences_the_member_parked_in_join() {
    let mut h = Harness::new();
    let first = h.send_join(static_join_request(GROUP, "", "instance-1", &["t"]));
    let first_id = h.summary(GROUP).members[0].member_id.clone();
    let second = h.send_join(static_join_request(GROUP, "", "instance-1", &["t"]));
    let fenced = h.join_response(first);
    assert_eq!(fenced.error_code, codes::FENCED_INSTANCE_ID);
    assert_eq!(fenced.member_id, first_id);
    h.advance(3_000);
    let response = h.join_response(second);
    assert_eq!(response.error_code, codes::NONE);
    assert_ne!(response.member_id, first_id);
    assert_eq!(response.leader, response.member_id);
    let zombie = h.send_join(static_join_request(GROUP, &first_id, "instance-1", &["t"]));
    assert_eq!(
        h.join_response(zombie).error_code,
        codes::FENCED_INSTANCE_ID
    );
    let unknown_instance = h.send_join(static_join_request(GROUP, &first_id, "instance-9", &["t"]));
    assert_eq!(
        h.join_response(unknown_instance).error_code,
        codes::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn static_member_that_misses_a_rebalance_stays_until_its_session_expires() {
    let mut h = Harness::new();
    let js = h.send_join(static_join_request(GROUP, "", "instance-1", &["t"]));
    let (jd, d) = h.join_dynamic(GROUP, "dynamic", &["t"]);
    h.advance(6_000);
    let s = h.join_response(js).member_id;
    let leader = h.join_response(jd);
    assert_eq!(leader.leader, s);
    let sync = static_sync(&mut h, &s, "instance-1", 1, &[]);
    assert_eq!(sync.error_code, codes::NONE);
    let sync = h.sync(GROUP, &d, 1, &[]);
    h.sync_response(sync);

    // The dynamic member changes its subscription; the static one is silent (restarting)
    // but heartbeats keep its session alive meanwhile.
    let rejoin = h.send_join(join_request(GROUP, &d, "dynamic", &["t", "u"]));
    for _ in 0..9 {
        h.advance(3_000);
        assert_eq!(
            heartbeat_static(&mut h, &s, "instance-1", 1),
            codes::REBALANCE_IN_PROGRESS
        );
    }
    h.advance(3_000);
    let response = h.join_response(rejoin);
    assert_eq!(response.generation_id, 2);
    assert_eq!(
        response.leader, d,
        "leadership moves to a member that rejoined"
    );
    let members: Vec<&str> = response
        .members
        .iter()
        .map(|m| m.member_id.as_str())
        .collect();
    assert!(
        members.contains(&s.as_str()),
        "the static member keeps its place"
    );

    // Without heartbeats it goes after its session timeout; the dynamic member stays.
    let sync = h.sync(GROUP, &d, 2, &[]);
    assert_eq!(h.sync_response(sync).error_code, codes::NONE);
    for _ in 0..4 {
        h.advance(3_000);
        h.heartbeat(GROUP, &d, 2);
    }
    let summary = h.summary(GROUP);
    assert_eq!(summary.members.len(), 1);
    assert_eq!(summary.members[0].member_id, d);
}

#[test]
fn failed_write_of_a_static_restart_restores_the_old_member_id() {
    let mut h = Harness::new();
    let (old_s1, _s2) = stable_static_group(&mut h);
    h.auto_complete = false;
    let restart = h.send_join(static_join_request(GROUP, "", "instance-1", &["t"]));
    assert!(h.fail_one(codes::NOT_LEADER_OR_FOLLOWER));
    let response = h.join_response(restart);
    assert_eq!(response.error_code, codes::NOT_COORDINATOR);
    assert_eq!(response.member_id, "");
    let summary = h.summary(GROUP);
    assert_eq!(summary.members[0].member_id, old_s1);
    assert_eq!(summary.leader_id.as_deref(), Some(old_s1.as_str()));
    assert_eq!(
        heartbeat_static(&mut h, &old_s1, "instance-1", 1),
        codes::NONE
    );
}
