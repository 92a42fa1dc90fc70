//! Coordinator movement: ownership of `__consumer_offsets` partitions, loading by replay,
//! and unloading.

mod common;

use bytes::Bytes;
use common::*;
use strom_group::record::{GroupMetadataValue, MemberMetadata, OffsetCommitValue, RecordKey};
use strom_group::*;

fn offset_record(
    group: &str,
    topic: &str,
    partition: i32,
    value: Option<OffsetCommitValue>,
    version: i16,
) -> Record {
    Record {
        key: RecordKey::OffsetCommit {
            group: group.into(),
            topic: topic.into(),
            partition,
        }
        .encode()
        .unwrap(),
        value: value.map(|v| v.encode_version(version).unwrap()),
    }
}

#[test]
fn groups_on_partitions_not_owned_get_not_coordinator() {
    let mut h = Harness::new();
    let partition = h.coordinator.partition_for(GROUP);
    let out = h.coordinator.unload_partition(h.now, partition);
    h.handle(out);

    let join = h.send_join(join_request(GROUP, "", "c", &["t"]));
    assert_eq!(h.join_response(join).error_code, codes::NOT_COORDINATOR);
    assert_eq!(h.heartbeat(GROUP, "m", 1), codes::NOT_COORDINATOR);
    let commit = h.send_commit(commit_request(GROUP, "", -1, &[("t", 0, 1)]));
    assert_eq!(
        commit_codes(&h.commit_response(commit)),
        vec![codes::NOT_COORDINATOR]
    );
    let fetch = h.send_fetch(fetch_all(&[GROUP]));
    assert_eq!(
        h.fetch_response(fetch).groups[0].error_code,
        codes::NOT_COORDINATOR
    );
    assert_eq!(
        h.describe(&[GROUP]).groups[0].error_code,
        codes::NOT_COORDINATOR
    );
    let delete = h.send_delete_groups(&[GROUP]);
    assert_eq!(
        h.delete_groups_response(delete).results[0].error_code,
        codes::NOT_COORDINATOR
    );
    assert_eq!(h.list(ListGroupsRequest::default()).error_code, codes::NONE);
}

#[test]
fn groups_of_a_loading_partition_get_load_in_progress_but_heartbeats_pass() {
    let mut coordinator = Coordinator::new(config()).unwrap();
    let partition = coordinator.partition_for(GROUP);
    coordinator.load_partition(partition).unwrap();
    assert_eq!(
        coordinator.partitions(),
        vec![(partition, PartitionStatus::Loading)]
    );

    let out = coordinator.join_group(0, RequestId(1), join_request(GROUP, "", "c", &["t"]));
    let Some(Response::JoinGroup(join)) = out.response(RequestId(1)) else {
        panic!()
    };
    assert_eq!(join.error_code, codes::COORDINATOR_LOAD_IN_PROGRESS);
    let out = coordinator.heartbeat(
        0,
        RequestId(2),
        HeartbeatRequest {
            group_id: GROUP.into(),
            generation_id: 1,
            member_id: "m".into(),
            group_instance_id: None,
        },
    );
    assert_eq!(
        out.response(RequestId(2)),
        Some(&Response::Heartbeat(HeartbeatResponse {
            error_code: codes::NONE
        }))
    );
    let out = coordinator.list_groups(0, RequestId(3), ListGroupsRequest::default());
    let Some(Response::ListGroups(list)) = out.response(RequestId(3)) else {
        panic!()
    };
    assert_eq!(list.error_code, codes::COORDINATOR_LOAD_IN_PROGRESS);

    coordinator.finish_load(0, partition).unwrap();
    assert_eq!(
        coordinator.partitions(),
        vec![(partition, PartitionStatus::Active)]
    );
    let out = coordinator.join_group(0, RequestId(4), join_request(GROUP, "", "c", &["t"]));
    let Some(Response::JoinGroup(join)) = out.response(RequestId(4)) else {
        panic!()
    };
    assert_eq!(join.error_code, codes::MEMBER_ID_REQUIRED);
}

#[test]
fn load_api_misuse_and_bad_records_are_errors() {
    let mut coordinator = Coordinator::new(config()).unwrap();
    let partition = coordinator.partition_for(GROUP);
    assert!(matches!(
        coordinator.load_partition(99),
        Err(Error::InvalidPartition { .. })
    ));
    assert_eq!(
        coordinator.replay(partition, 0, &[0, 2], None),
        Err(Error::PartitionNotLoading(partition))
    );
    coordinator.load_partition(partition).unwrap();
    assert_eq!(
        coordinator.load_partition(partition),
        Err(Error::PartitionAlreadyOwned(partition))
    );
    assert!(matches!(
        coordinator.replay(partition, 0, &[0, 2, 0], None),
        Err(Error::CorruptRecord { .. })
    ));
    assert_eq!(
        coordinator.replay(partition, 0, &[0, 5, 0, 1, b'g'], None),
        Err(Error::UnsupportedRecordType(5))
    );
    let other = (0..100)
        .map(|i| format!("g{i}"))
        .find(|g| partition_for_group(g, 4) != partition)
        .unwrap();
    let key = RecordKey::GroupMetadata { group: other }.encode().unwrap();
    assert!(matches!(
        coordinator.replay(partition, 0, &key, None),
        Err(Error::WrongPartition { .. })
    ));
    let key = RecordKey::GroupMetadata {
        group: GROUP.into(),
    }
    .encode()
    .unwrap();
    let members_without_protocol = GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation: 1,
        protocol: None,
        leader: None,
        current_state_timestamp: -1,
        members: vec![MemberMetadata {
            member_id: "m".into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            rebalance_timeout: -1,
            session_timeout: 10_000,
            subscription: Bytes::new(),
            assignment: Bytes::new(),
        }],
    };
    assert!(matches!(
        coordinator.replay(partition, 0, &key, Some(&members_without_protocol.encode())),
        Err(Error::InvalidGroupRecord { .. })
    ));
}

#[test]
fn unload_answers_parked_and_held_requests_with_not_coordinator() {
    let mut h = Harness::new();
    let (join, member) = h.join_dynamic(GROUP, "c", &["t"]);
    h.auto_complete = false;
    // The member may commit for generation 0 while the first join phase runs.
    let commit = h.send_commit(commit_request(GROUP, &member, 0, &[("t", 0, 1)]));
    let write = h.in_flight.pop_front().unwrap();
    let partition = h.coordinator.partition_for(GROUP);
    let out = h.coordinator.unload_partition(h.now, partition);
    h.handle(out);
    assert_eq!(h.join_response(join).error_code, codes::NOT_COORDINATOR);
    assert_eq!(
        commit_codes(&h.commit_response(commit)),
        vec![codes::NOT_COORDINATOR]
    );
    assert!(h.outstanding.is_empty());
    // The write's late outcome is ignored.
    assert!(
        h.coordinator
            .write_completed(h.now, write.id, 0)
            .unwrap()
            .is_empty()
    );
    // Nothing of the partition is left to fire.
    h.advance(1_000_000);
    assert!(h.coordinator.group_summary(GROUP).is_none());
}

#[test]
fn replay_reproduces_groups_generations_and_offsets() {
    let mut h = Harness::new();
    // A Stable group in generation 2 with two members and assignments.
    let (join_a, a) = h.join_dynamic(GROUP, "a", &["orders"]);
    h.advance(3_000);
    h.join_response(join_a);
    let sync = h.sync(GROUP, &a, 1, &[(&a, b"a-gen1")]);
    h.sync_response(sync);
    let (join_b, b) = h.join_dynamic(GROUP, "b", &["orders"]);
    let rejoin_a = h.send_join(join_request(GROUP, &a, "a", &["orders"]));
    h.join_response(join_b);
    h.join_response(rejoin_a);
    let sync = h.sync(GROUP, &a, 2, &[(&a, b"a-gen2"), (&b, b"b-gen2")]);
    h.sync_response(sync);
    let commit = h.send_commit(commit_request(
        GROUP,
        &a,
        2,
        &[("orders", 0, 100), ("orders", 1, 200)],
    ));
    h.commit_response(commit);
    // A group that only stores offsets, and one that went Empty after a generation.
    let commit = h.send_commit(commit_request("offsets-only", "", -1, &[("x", 0, 1)]));
    h.commit_response(commit);
    let member = h.stable_single_member_group("emptied", &["t"]);
    let leave = h.send_leave(leave_request("emptied", &member));
    h.leave_response(leave);
    // A deleted group leaves no trace.
    let commit = h.send_commit(commit_request("deleted", "", -1, &[("x", 0, 1)]));
    h.commit_response(commit);
    let delete = h.send_delete_groups(&["deleted"]);
    h.delete_groups_response(delete);

    let replayed = h.replayed();
    let mut live_ids = h.coordinator.group_ids();
    let mut replayed_ids = replayed.group_ids();
    live_ids.sort();
    replayed_ids.sort();
    assert_eq!(replayed_ids, live_ids);
    assert_eq!(replayed_ids, vec!["emptied", GROUP, "offsets-only"]);

    let live = h.summary(GROUP);
    let again = replayed.group_summary(GROUP).unwrap();
    assert_eq!(again.state, GroupState::Stable);
    assert_eq!(again.generation_id, 2);
    assert_eq!(again.leader_id, live.leader_id);
    assert_eq!(again.protocol_type, live.protocol_type);
    assert_eq!(again.protocol_name, live.protocol_name);
    let members = |s: &GroupSummary| -> Vec<(String, Bytes, i32, i32)> {
        s.members
            .iter()
            .map(|m| {
                (
                    m.member_id.clone(),
                    m.assignment.clone(),
                    m.session_timeout_ms,
                    m.rebalance_timeout_ms,
                )
            })
            .collect()
    };
    assert_eq!(members(&again), members(&live));
    assert_eq!(
        replayed.committed_offsets(GROUP),
        h.coordinator.committed_offsets(GROUP)
    );
    assert_eq!(
        replayed.committed_offsets("offsets-only"),
        h.coordinator.committed_offsets("offsets-only")
    );

    let emptied = replayed.group_summary("emptied").unwrap();
    assert_eq!(emptied.state, GroupState::Empty);
    assert_eq!(emptied.generation_id, 2);
    assert_eq!(
        emptied.state_timestamp_ms,
        h.summary("emptied").state_timestamp_ms
    );
    let only = replayed.group_summary("offsets-only").unwrap();
    assert_eq!(only.protocol_type, None);
}

#[test]
fn members_of_a_reloaded_group_carry_on_with_their_generation() {
    let mut h = Harness::new();
    let member = h.stable_single_member_group(GROUP, &["t"]);
    let partition = h.coordinator.partition_for(GROUP);
    let out = h.coordinator.unload_partition(h.now, partition);
    h.handle(out);
    h.coordinator.load_partition(partition).unwrap();
    let entries = h.full_log.get(&partition).cloned().unwrap_or_default();
    replay_log(&mut h.coordinator, partition, &entries);
    let out = h.coordinator.finish_load(h.now, partition).unwrap();
    h.handle(out);
    assert_eq!(h.heartbeat(GROUP, &member, 1), codes::NONE);
    let sync = h.sync(GROUP, &member, 1, &[]);
    assert_eq!(h.sync_response(sync).assignment.as_ref(), b"a1");
    // Sessions restart at load: a member that does not come back is removed.
    h.advance(i64::from(SESSION_MS));
    assert_eq!(h.summary(GROUP).state, GroupState::Empty);
}

#[test]
fn logs_written_with_older_record_versions_load() {
    let mut coordinator = Coordinator::new(config()).unwrap();
    let partition = coordinator.partition_for(GROUP);
    coordinator.load_partition(partition).unwrap();
    let v0 = OffsetCommitValue {
        offset: 11,
        leader_epoch: -1,
        metadata: "old".into(),
        commit_timestamp: 5,
        expire_timestamp: -1,
    };
    let mut old_key = RecordKey::OffsetCommit {
        group: GROUP.into(),
        topic: "t".into(),
        partition: 0,
    }
    .encode()
    .unwrap()
    .to_vec();
    old_key[1] = 0; // OffsetCommitKey version 0
    coordinator
        .replay(partition, 0, &old_key, Some(&v0.encode_version(0).unwrap()))
        .unwrap();
    let record = offset_record(
        GROUP,
        "t",
        1,
        Some(OffsetCommitValue {
            offset: 12,
            ..v0.clone()
        }),
        2,
    );
    coordinator
        .replay(partition, 0, &record.key, record.value.as_deref())
        .unwrap();
    let record = offset_record(GROUP, "t", 1, None, 3);
    coordinator
        .replay(partition, 1, &record.key, record.value.as_deref())
        .unwrap();

    let group = GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation: 4,
        protocol: Some("range".into()),
        leader: Some("m1".into()),
        current_state_timestamp: -1,
        members: vec![MemberMetadata {
            member_id: "m1".into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/1.2.3.4".into(),
            rebalance_timeout: -1,
            session_timeout: 7_000,
            subscription: subscription(&["t"]),
            assignment: Bytes::from_static(b"assigned"),
        }],
    };
    let key = RecordKey::GroupMetadata {
        group: GROUP.into(),
    }
    .encode()
    .unwrap();
    coordinator
        .replay(partition, 0, &key, Some(&group.encode_version(0).unwrap()))
        .unwrap();
    coordinator.finish_load(0, partition).unwrap();

    let summary = coordinator.group_summary(GROUP).unwrap();
    assert_eq!(summary.state, GroupState::Stable);
    assert_eq!(summary.generation_id, 4);
    assert_eq!(
        summary.members[0].rebalance_timeout_ms, 7_000,
        "v0: rebalance = session"
    );
    let offsets = coordinator.committed_offsets(GROUP);
    assert_eq!(offsets.len(), 1);
    assert_eq!(offsets[0].2.committed_offset, 11);
    assert_eq!(offsets[0].2.leader_epoch, None);
}
