//! OffsetCommit, OffsetFetch, OffsetDelete and offsets retention (KIP-211).

mod common;

use common::*;
use strom_group::record::{OffsetCommitValue, RecordKey};
use strom_group::*;

fn commit(h: &mut Harness, request: OffsetCommitRequest) -> Vec<ErrorCode> {
    let id = h.send_commit(request);
    commit_codes(&h.commit_response(id))
}

fn fetch_one(h: &mut Harness, group: &str) -> Vec<(String, i32, i64)> {
    let id = h.send_fetch(fetch_all(&[group]));
    let response = h.fetch_response(id);
    fetched(&response.groups[0])
}

#[test]
fn offset_commit_is_validated_in_every_group_state() {
    let mut h = Harness::new();
    let offsets = [("orders", 0, 5)];

    // Unknown group: a generation means the member thinks it is in a group that is gone.
    assert_eq!(
        commit(&mut h, commit_request(GROUP, "m", 1, &offsets)),
        vec![codes::GROUP_ID_NOT_FOUND]
    );
    let mut v8 = commit_request(GROUP, "m", 1, &offsets);
    v8.api_version = 8;
    assert_eq!(commit(&mut h, v8), vec![codes::ILLEGAL_GENERATION]);

    // PreparingRebalance (the first join phase): the member's current generation is 0.
    let (join, member) = h.join_dynamic(GROUP, "c", &["orders"]);
    assert_eq!(
        commit(&mut h, commit_request(GROUP, &member, 0, &offsets)),
        vec![codes::NONE]
    );

    // CompletingRebalance: the member must finish the rebalance first.
    h.advance(3_000);
    h.join_response(join);
    assert_eq!(
        commit(&mut h, commit_request(GROUP, &member, 1, &offsets)),
        vec![codes::REBALANCE_IN_PROGRESS]
    );

    // Stable.
    let sync = h.sync(GROUP, &member, 1, &[(&member, b"x")]);
    h.sync_response(sync);
    assert_eq!(
        commit(&mut h, commit_request(GROUP, &member, 1, &offsets)),
        vec![codes::NONE]
    );
    assert_eq!(
        commit(&mut h, commit_request(GROUP, &member, 0, &offsets)),
        vec![codes::ILLEGAL_GENERATION]
    );
    assert_eq!(
        commit(&mut h, commit_request(GROUP, "stranger", 1, &offsets)),
        vec![codes::UNKNOWN_MEMBER_ID]
    );
    // No member id and no generation while the group has members.
    assert_eq!(
        commit(&mut h, commit_request(GROUP, "", -1, &offsets)),
        vec![codes::UNKNOWN_MEMBER_ID]
    );
    let mut unknown_instance = commit_request(GROUP, &member, 1, &offsets);
    unknown_instance.group_instance_id = Some("instance-x".into());
    assert_eq!(
        commit(&mut h, unknown_instance),
        vec![codes::UNKNOWN_MEMBER_ID]
    );

    // Empty again: commits without a generation are accepted.
    let leave = h.send_leave(leave_request(GROUP, &member));
    h.leave_response(leave);
    assert_eq!(h.summary(GROUP).state, GroupState::Empty);
    assert_eq!(
        commit(&mut h, commit_request(GROUP, "", -1, &[("orders", 0, 9)])),
        vec![codes::NONE]
    );
    assert_eq!(fetch_one(&mut h, GROUP), vec![("orders".into(), 0, 9)]);

    // Dead (a deletion being written): retry later.
    h.auto_complete = false;
    let delete = h.send_delete_groups(&[GROUP]);
    assert_eq!(
        commit(&mut h, commit_request(GROUP, "", -1, &offsets)),
        vec![codes::COORDINATOR_NOT_AVAILABLE]
    );
    h.complete_all();
    assert_eq!(
        h.delete_groups_response(delete).results[0].error_code,
        codes::NONE
    );
}

#[test]
fn static_member_commit_with_a_stale_member_id_is_fenced() {
    let mut h = Harness::new();
    let join = h.send_join(static_join_request(GROUP, "", "instance-1", &["t"]));
    h.advance(3_000);
    let member = h.join_response(join).member_id;
    let sync = h.sync(GROUP, &member, 1, &[]);
    h.sync_response(sync);
    let mut request = commit_request(GROUP, "old-member-id", 1, &[("t", 0, 1)]);
    request.group_instance_id = Some("instance-1".into());
    assert_eq!(commit(&mut h, request), vec![codes::FENCED_INSTANCE_ID]);
}

#[test]
fn oversized_metadata_fails_only_its_partition() {
    let mut h = Harness::new();
    let mut request = commit_request(GROUP, "", -1, &[("t", 0, 1), ("t", 1, 2)]);
    request.topics[0].partitions[1].committed_metadata = Some("x".repeat(4_097));
    assert_eq!(
        commit(&mut h, request),
        vec![codes::NONE, codes::OFFSET_METADATA_TOO_LARGE]
    );
    assert_eq!(fetch_one(&mut h, GROUP), vec![("t".into(), 0, 1)]);
    // Exactly the limit is fine (counted in UTF-16 units like Kafka: 'é' is one unit).
    let mut request = commit_request(GROUP, "", -1, &[("t", 1, 3)]);
    request.topics[0].partitions[0].committed_metadata = Some("é".repeat(4_096));
    assert_eq!(commit(&mut h, request), vec![codes::NONE]);
}

#[test]
fn commit_keeps_a_stable_member_session_alive() {
    let mut h = Harness::new();
    let member = h.stable_single_member_group(GROUP, &["t"]);
    for i in 0..5 {
        h.advance(8_000);
        assert_eq!(
            commit(&mut h, commit_request(GROUP, &member, 1, &[("t", 0, i)])),
            vec![codes::NONE]
        );
    }
    assert_eq!(
        h.summary(GROUP).state,
        GroupState::Stable,
        "40 s without a heartbeat"
    );
}

#[test]
fn standalone_commit_creates_a_simple_group_and_persists_kafka_records() {
    let mut h = Harness::new();
    let mut request = commit_request("simple", "", -1, &[("t", 2, 77)]);
    request.topics[0].partitions[0].committed_leader_epoch = 4;
    assert_eq!(commit(&mut h, request), vec![codes::NONE]);
    let summary = h.summary("simple");
    assert_eq!(summary.state, GroupState::Empty);
    assert_eq!(summary.protocol_type, None);
    let listed = h.list(ListGroupsRequest::default());
    let simple = listed
        .groups
        .iter()
        .find(|g| g.group_id == "simple")
        .unwrap();
    assert_eq!(simple.protocol_type, "");
    assert_eq!(simple.group_state, "Empty");

    let record = &h.issued[0].records[0];
    assert_eq!(
        RecordKey::decode(&record.key).unwrap(),
        RecordKey::OffsetCommit {
            group: "simple".into(),
            topic: "t".into(),
            partition: 2
        }
    );
    let value = OffsetCommitValue::decode(record.value.as_ref().unwrap()).unwrap();
    assert_eq!(
        value,
        OffsetCommitValue {
            offset: 77,
            leader_epoch: 4,
            metadata: "m77".into(),
            commit_timestamp: h.now,
            expire_timestamp: -1,
        }
    );
    assert_eq!(
        &record.value.as_ref().unwrap()[..2],
        &[0, 3],
        "value version 3"
    );
}

#[test]
fn offset_fetch_answers_specific_partitions_all_partitions_and_many_groups() {
    let mut h = Harness::new();
    commit(
        &mut h,
        commit_request(
            GROUP,
            "",
            -1,
            &[("t0", 0, 10), ("t0", 1, 11), ("t1", 0, 20)],
        ),
    );
    commit(&mut h, commit_request("group-b", "", -1, &[("x", 0, 5)]));

    let specific = h.send_fetch(OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: GROUP.into(),
            member_id: None,
            member_epoch: -1,
            topics: Some(vec![OffsetFetchTopic {
                name: "t0".into(),
                partition_indexes: vec![0, 1, 2],
            }]),
        }],
        require_stable: false,
    });
    let response = h.fetch_response(specific);
    let partitions = &response.groups[0].topics[0].partitions;
    assert_eq!(
        partitions[0],
        OffsetFetchPartitionResponse {
            partition_index: 0,
            committed_offset: 10,
            committed_leader_epoch: 3,
            metadata: "m10".into(),
            error_code: codes::NONE,
        }
    );
    assert_eq!(
        partitions[2],
        OffsetFetchPartitionResponse {
            partition_index: 2,
            committed_offset: -1,
            committed_leader_epoch: -1,
            metadata: String::new(),
            error_code: codes::NONE,
        }
    );

    assert_eq!(
        fetch_one(&mut h, GROUP),
        vec![
            ("t0".into(), 0, 10),
            ("t0".into(), 1, 11),
            ("t1".into(), 0, 20)
        ]
    );

    let many = h.send_fetch(fetch_all(&[GROUP, "group-b", "nobody"]));
    let response = h.fetch_response(many);
    assert_eq!(response.groups.len(), 3);
    assert_eq!(fetched(&response.groups[0]).len(), 3);
    assert_eq!(fetched(&response.groups[1]), vec![("x".into(), 0, 5)]);
    assert_eq!(response.groups[2].group_id, "nobody");
    assert_eq!(response.groups[2].error_code, codes::NONE);
    assert!(response.groups[2].topics.is_empty());
}

#[test]
fn require_stable_fetch_waits_for_commits_in_flight() {
    let mut h = Harness::new();
    h.auto_complete = false;
    let commit_id = h.send_commit(commit_request(GROUP, "", -1, &[("t", 0, 42)]));
    assert!(!h.is_answered(commit_id));

    let unstable = h.send_fetch(fetch_all(&[GROUP]));
    let response = h.fetch_response(unstable);
    assert!(
        fetched(&response.groups[0]).is_empty(),
        "not durable, not visible"
    );

    let mut request = fetch_all(&[GROUP]);
    request.require_stable = true;
    let stable = h.send_fetch(request);
    assert!(!h.is_answered(stable));
    h.complete_all();
    assert_eq!(
        commit_codes(&h.commit_response(commit_id)),
        vec![codes::NONE]
    );
    let response = h.fetch_response(stable);
    assert_eq!(fetched(&response.groups[0]), vec![("t".into(), 0, 42)]);
}

#[test]
fn offset_delete_refuses_subscribed_topics_of_a_consumer_group() {
    let mut h = Harness::new();
    let member = h.stable_single_member_group(GROUP, &["orders"]);
    commit(
        &mut h,
        commit_request(GROUP, &member, 1, &[("orders", 0, 1), ("old-topic", 0, 2)]),
    );
    let delete = h.send_offset_delete(OffsetDeleteRequest {
        group_id: GROUP.into(),
        topics: vec![
            OffsetDeleteTopic {
                name: "orders".into(),
                partition_indexes: vec![0],
            },
            OffsetDeleteTopic {
                name: "old-topic".into(),
                partition_indexes: vec![0, 1],
            },
        ],
    });
    let response = h.offset_delete_response(delete);
    assert_eq!(response.error_code, codes::NONE);
    assert_eq!(
        response.topics[0].partitions[0].error_code,
        codes::GROUP_SUBSCRIBED_TO_TOPIC
    );
    assert_eq!(response.topics[1].partitions[0].error_code, codes::NONE);
    assert_eq!(response.topics[1].partitions[1].error_code, codes::NONE);
    assert_eq!(fetch_one(&mut h, GROUP), vec![("orders".into(), 0, 1)]);
    // One tombstone, for the one offset that existed.
    let last = h.issued.last().unwrap();
    assert_eq!(last.records.len(), 1);
    assert_eq!(last.records[0].value, None);

    let missing = h.send_offset_delete(OffsetDeleteRequest {
        group_id: "missing".into(),
        topics: vec![],
    });
    assert_eq!(
        h.offset_delete_response(missing).error_code,
        codes::GROUP_ID_NOT_FOUND
    );
}

#[test]
fn offset_delete_on_a_non_consumer_group_with_members_is_refused() {
    let mut h = Harness::new();
    let mut request = join_request(GROUP, "", "worker", &[]);
    request.protocol_type = "connect".into();
    request.api_version = 3;
    let join = h.send_join(request);
    h.advance(3_000);
    h.join_response(join);
    let delete = h.send_offset_delete(OffsetDeleteRequest {
        group_id: GROUP.into(),
        topics: vec![],
    });
    assert_eq!(
        h.offset_delete_response(delete).error_code,
        codes::NON_EMPTY_GROUP
    );
}

fn retention_config() -> Config {
    Config {
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 1_000,
        ..config()
    }
}

#[test]
fn offsets_of_an_empty_group_expire_retention_after_it_became_empty() {
    let mut h = Harness::with_config(retention_config());
    let member = h.stable_single_member_group(GROUP, &["orders"]);
    commit(
        &mut h,
        commit_request(GROUP, &member, 1, &[("orders", 0, 7)]),
    );
    // Long after the commit, the offset lives on: the group consumes the topic.
    for _ in 0..40 {
        h.advance(3_000);
        h.heartbeat(GROUP, &member, 1);
    }
    assert_eq!(fetch_one(&mut h, GROUP), vec![("orders".into(), 0, 7)]);

    let leave = h.send_leave(leave_request(GROUP, &member));
    h.leave_response(leave);
    let empty_since = h.now;
    h.advance(59_000);
    assert_eq!(fetch_one(&mut h, GROUP), vec![("orders".into(), 0, 7)]);
    h.advance(1_000);
    assert!(h.now - empty_since >= 60_000);
    assert!(
        fetch_one(&mut h, GROUP).is_empty(),
        "expired 60 s after the group emptied"
    );
    // With its last offset gone, the Empty group is deleted (offset then group tombstone).
    assert!(h.coordinator.group_summary(GROUP).is_none());
    let last = h.issued.last().unwrap();
    let keys: Vec<RecordKey> = last
        .records
        .iter()
        .map(|r| RecordKey::decode(&r.key).unwrap())
        .collect();
    assert!(matches!(keys[0], RecordKey::OffsetCommit { .. }));
    assert!(matches!(keys[1], RecordKey::GroupMetadata { .. }));
    assert!(last.records.iter().all(|r| r.value.is_none()));
}

#[test]
fn offsets_of_topics_a_stable_consumer_group_left_expire_by_commit_time() {
    let mut h = Harness::with_config(retention_config());
    let member = h.stable_single_member_group(GROUP, &["orders"]);
    commit(
        &mut h,
        commit_request(GROUP, &member, 1, &[("orders", 0, 1), ("gone", 0, 2)]),
    );
    for _ in 0..21 {
        h.advance(3_000);
        h.heartbeat(GROUP, &member, 1);
    }
    assert_eq!(fetch_one(&mut h, GROUP), vec![("orders".into(), 0, 1)]);
    assert_eq!(h.summary(GROUP).state, GroupState::Stable);
}

#[test]
fn standalone_offsets_expire_by_commit_time_and_an_explicit_retention_wins() {
    let mut h = Harness::with_config(retention_config());
    commit(&mut h, commit_request("simple", "", -1, &[("t", 0, 1)]));
    let mut v2 = commit_request("simple", "", -1, &[("t", 1, 2)]);
    v2.api_version = 2;
    v2.retention_time_ms = 5_000;
    commit(&mut h, v2);
    let record = &h.issued.last().unwrap().records[0];
    let value = OffsetCommitValue::decode(record.value.as_ref().unwrap()).unwrap();
    assert_eq!(value.expire_timestamp, h.now + 5_000);
    assert_eq!(
        &record.value.as_ref().unwrap()[..2],
        &[0, 1],
        "written as value version 1"
    );

    h.advance(5_000);
    assert_eq!(fetch_one(&mut h, "simple"), vec![("t".into(), 0, 1)]);
    h.advance(55_000);
    assert!(fetch_one(&mut h, "simple").is_empty());
    assert!(h.coordinator.group_summary("simple").is_none());
}

#[test]
fn commit_timestamp_of_version_1_is_kept() {
    let mut h = Harness::new();
    let mut v1 = commit_request("simple", "", -1, &[("t", 0, 1)]);
    v1.api_version = 1;
    v1.topics[0].partitions[0].commit_timestamp = 123;
    commit(&mut h, v1);
    let offsets = h.coordinator.committed_offsets("simple");
    assert_eq!(offsets[0].2.commit_timestamp_ms, 123);
}
