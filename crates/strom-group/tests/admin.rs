//! ListGroups, DescribeGroups and DeleteGroups.

mod common;

use common::*;
use strom_group::record::RecordKey;
use strom_group::*;

fn names(response: &ListGroupsResponse) -> Vec<String> {
    let mut names: Vec<String> = response.groups.iter().map(|g| g.group_id.clone()).collect();
    names.sort();
    names
}

fn list(h: &mut Harness, states: &[&str], types: &[&str]) -> Vec<String> {
    let response = h.list(ListGroupsRequest {
        states_filter: states.iter().map(|s| s.to_string()).collect(),
        types_filter: types.iter().map(|s| s.to_string()).collect(),
    });
    assert_eq!(response.error_code, codes::NONE);
    names(&response)
}

#[test]
fn list_groups_filters_by_state_and_type() {
    let mut h = Harness::new();
    h.stable_single_member_group("stable-group", &["t"]);
    let id = h.send_commit(commit_request("simple-group", "", -1, &[("t", 0, 1)]));
    h.commit_response(id);
    let (_parked, _) = h.join_dynamic("preparing-group", "c", &["t"]);

    let all = h.list(ListGroupsRequest::default());
    assert_eq!(all.groups.len(), 3);
    let stable = all
        .groups
        .iter()
        .find(|g| g.group_id == "stable-group")
        .unwrap();
    assert_eq!(
        stable,
        &ListedGroup {
            group_id: "stable-group".into(),
            protocol_type: "consumer".into(),
            group_state: "Stable".into(),
            group_type: "classic".into(),
        }
    );
    assert_eq!(list(&mut h, &["stable"], &[]), vec!["stable-group"]);
    assert_eq!(
        list(&mut h, &["Empty", " PREPARINGREBALANCE "], &[]),
        vec!["preparing-group", "simple-group"]
    );
    assert_eq!(list(&mut h, &["Dead"], &[]), Vec::<String>::new());
    assert_eq!(list(&mut h, &[], &["Classic"]).len(), 3);
    assert!(list(&mut h, &[], &["consumer"]).is_empty());
}

#[test]
fn describe_groups_reports_members_and_kafka_state_names() {
    let mut h = Harness::new();
    let (join_a, a) = h.join_dynamic(GROUP, "client-a", &["orders"]);
    let (join_b, b) = h.join_dynamic(GROUP, "client-b", &["orders"]);

    let preparing = h.describe(&[GROUP]);
    let group = &preparing.groups[0];
    assert_eq!(group.group_state, "PreparingRebalance");
    assert_eq!(group.protocol_type, "consumer");
    assert_eq!(group.protocol_data, "");
    assert_eq!(group.members.len(), 2);
    assert!(
        group.members[0].member_metadata.is_empty(),
        "metadata only when Stable"
    );

    h.advance(6_000);
    h.join_response(join_a);
    h.join_response(join_b);
    assert_eq!(
        h.describe(&[GROUP]).groups[0].group_state,
        "CompletingRebalance"
    );
    let sync = h.sync(GROUP, &a, 1, &[(&a, b"for-a"), (&b, b"for-b")]);
    h.sync_response(sync);

    let described = h.describe(&[GROUP, "unknown-group"]);
    let group = &described.groups[0];
    assert_eq!(group.error_code, codes::NONE);
    assert_eq!(group.group_state, "Stable");
    assert_eq!(group.protocol_data, "range");
    assert_eq!(
        group.members[0],
        DescribedGroupMember {
            member_id: a.clone(),
            group_instance_id: None,
            client_id: "client-a".into(),
            client_host: "/127.0.0.1".into(),
            member_metadata: subscription(&["orders"]),
            member_assignment: bytes::Bytes::from_static(b"for-a"),
        }
    );
    assert_eq!(group.members[1].member_assignment.as_ref(), b"for-b");
    let unknown = &described.groups[1];
    assert_eq!(unknown.group_id, "unknown-group");
    assert_eq!(unknown.error_code, codes::NONE);
    assert_eq!(unknown.group_state, "Dead");
    assert!(unknown.members.is_empty());
}

#[test]
fn delete_groups_removes_empty_groups_with_their_offsets_and_refuses_others() {
    let mut h = Harness::new();
    h.stable_single_member_group("busy", &["t"]);
    let id = h.send_commit(commit_request("idle", "", -1, &[("t", 0, 1), ("u", 3, 2)]));
    h.commit_response(id);

    h.auto_complete = false;
    let delete = h.send_delete_groups(&["idle", "busy", "unknown"]);
    assert!(
        !h.is_answered(delete),
        "answered when the tombstones are durable"
    );
    assert_eq!(h.describe(&["idle"]).groups[0].group_state, "Dead");
    let write = h.in_flight.back().unwrap().clone();
    let keys: Vec<RecordKey> = write
        .records
        .iter()
        .map(|r| RecordKey::decode(&r.key).unwrap())
        .collect();
    assert_eq!(
        keys,
        vec![
            RecordKey::OffsetCommit {
                group: "idle".into(),
                topic: "t".into(),
                partition: 0
            },
            RecordKey::OffsetCommit {
                group: "idle".into(),
                topic: "u".into(),
                partition: 3
            },
            RecordKey::GroupMetadata {
                group: "idle".into()
            },
        ]
    );
    assert!(write.records.iter().all(|r| r.value.is_none()));
    h.complete_all();

    let response = h.delete_groups_response(delete);
    let results: Vec<(String, ErrorCode)> = response
        .results
        .iter()
        .map(|r| (r.group_id.clone(), r.error_code))
        .collect();
    assert_eq!(
        results,
        vec![
            ("idle".into(), codes::NONE),
            ("busy".into(), codes::NON_EMPTY_GROUP),
            ("unknown".into(), codes::GROUP_ID_NOT_FOUND),
        ]
    );
    assert!(h.coordinator.group_summary("idle").is_none());
    assert!(h.coordinator.committed_offsets("idle").is_empty());
    // A deleted group can be used again from scratch.
    let again = h.send_commit(commit_request("idle", "", -1, &[("t", 0, 5)]));
    h.complete_all();
    assert_eq!(commit_codes(&h.commit_response(again)), vec![codes::NONE]);
}

#[test]
fn failed_delete_restores_the_group_and_its_offsets() {
    let mut h = Harness::new();
    let id = h.send_commit(commit_request("idle", "", -1, &[("t", 0, 1)]));
    h.commit_response(id);
    let before = h.summary("idle");
    h.auto_complete = false;
    let delete = h.send_delete_groups(&["idle"]);
    assert!(h.fail_one(codes::NOT_ENOUGH_REPLICAS));
    let response = h.delete_groups_response(delete);
    assert_eq!(
        response.results[0].error_code,
        codes::COORDINATOR_NOT_AVAILABLE
    );
    let after = h.summary("idle");
    assert_eq!(after.state, GroupState::Empty);
    assert_eq!(after.state_timestamp_ms, before.state_timestamp_ms);
    assert_eq!(h.coordinator.committed_offsets("idle").len(), 1);
}
