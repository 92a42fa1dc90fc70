//! The durability rule: responses that acknowledge persisted state wait for their write,
//! failed writes leave nothing visible, and the log always reproduces what was acknowledged.

mod common;

use common::*;
use strom_group::*;

#[test]
fn commit_is_invisible_until_durable_and_a_failed_write_reports_an_error() {
    let mut h = Harness::new();
    h.auto_complete = false;
    let commit = h.send_commit(commit_request(GROUP, "", -1, &[("t", 0, 5), ("t", 1, 6)]));
    assert!(!h.is_answered(commit));
    assert_eq!(h.coordinator.held_responses(), 1);
    assert!(h.coordinator.committed_offsets(GROUP).is_empty());

    assert!(h.fail_one(codes::REQUEST_TIMED_OUT));
    let response = h.commit_response(commit);
    assert_eq!(
        commit_codes(&response),
        vec![
            codes::COORDINATOR_NOT_AVAILABLE,
            codes::COORDINATOR_NOT_AVAILABLE
        ]
    );
    assert!(h.coordinator.committed_offsets(GROUP).is_empty());
    let fetch = h.send_fetch(fetch_all(&[GROUP]));
    assert!(fetched(&h.fetch_response(fetch).groups[0]).is_empty());
    assert_eq!(h.coordinator.held_responses(), 0);
    assert_eq!(h.coordinator.pending_writes(), 0);
}

#[test]
fn a_failed_write_does_not_undo_a_later_successful_one() {
    let mut h = Harness::new();
    h.auto_complete = false;
    let first = h.send_commit(commit_request(GROUP, "", -1, &[("t", 0, 1)]));
    let second = h.send_commit(commit_request(GROUP, "", -1, &[("t", 0, 2)]));
    assert!(h.fail_one(codes::KAFKA_STORAGE_ERROR));
    assert!(h.complete_one());
    assert_eq!(
        commit_codes(&h.commit_response(first)),
        vec![codes::NOT_COORDINATOR]
    );
    assert_eq!(commit_codes(&h.commit_response(second)), vec![codes::NONE]);
    let offsets = h.coordinator.committed_offsets(GROUP);
    assert_eq!(offsets[0].2.committed_offset, 2);
    let replayed = h.replayed();
    assert_eq!(replayed.committed_offsets(GROUP), offsets);
}

#[test]
fn writes_must_be_resolved_in_order_per_partition() {
    let mut h = Harness::new();
    h.auto_complete = false;
    h.send_commit(commit_request(GROUP, "", -1, &[("t", 0, 1)]));
    h.send_commit(commit_request(GROUP, "", -1, &[("t", 0, 2)]));
    let second = h.in_flight[1].id;
    let error = h.coordinator.write_completed(h.now, second, 0).unwrap_err();
    assert!(matches!(error, Error::WriteOutOfOrder { .. }), "{error}");
    h.complete_all();
}

#[test]
fn failed_assignment_write_answers_every_sync_with_the_error_and_rebalances() {
    let mut h = Harness::new();
    let (join_a, a) = h.join_dynamic(GROUP, "a", &["t"]);
    let (join_b, b) = h.join_dynamic(GROUP, "b", &["t"]);
    h.advance(6_000);
    h.join_response(join_a);
    h.join_response(join_b);
    let follower = h.sync(GROUP, &b, 1, &[]);
    h.auto_complete = false;
    let leader = h.sync(GROUP, &a, 1, &[(&a, b"x"), (&b, b"y")]);
    assert!(h.fail_one(codes::NOT_LEADER_OR_FOLLOWER));
    for sync in [leader, follower] {
        let response = h.sync_response(sync);
        assert_eq!(response.error_code, codes::NOT_COORDINATOR);
        assert!(response.assignment.is_empty());
    }
    let summary = h.summary(GROUP);
    assert_eq!(summary.state, GroupState::PreparingRebalance);
    assert!(summary.members.iter().all(|m| m.assignment.is_empty()));
    assert!(h.log.is_empty());
}

#[test]
fn rebalance_while_the_assignment_is_being_written_wins_over_the_write() {
    let mut h = Harness::new();
    let (join_a, a) = h.join_dynamic(GROUP, "a", &["t"]);
    h.advance(3_000);
    h.join_response(join_a);
    h.auto_complete = false;
    let leader = h.sync(GROUP, &a, 1, &[(&a, b"x")]);
    let (join_b, _b) = h.join_dynamic(GROUP, "b", &["t"]);
    assert_eq!(
        h.sync_response(leader).error_code,
        codes::REBALANCE_IN_PROGRESS
    );
    h.complete_all();
    assert_eq!(h.summary(GROUP).state, GroupState::PreparingRebalance);
    assert!(!h.is_answered(join_b));
    assert!(h.outstanding.contains(&join_b));
}

#[test]
fn leave_response_waits_for_the_empty_generation_and_reports_its_failure() {
    let mut h = Harness::new();
    let member = h.stable_single_member_group(GROUP, &["t"]);
    h.auto_complete = false;
    let leave = h.send_leave(leave_request(GROUP, &member));
    assert!(!h.is_answered(leave));
    assert!(h.fail_one(codes::NOT_ENOUGH_REPLICAS));
    let response = h.leave_response(leave);
    assert_eq!(response.error_code, codes::COORDINATOR_NOT_AVAILABLE);
    assert!(response.members.is_empty());
    // Kafka does not revert an empty generation: nobody is left to be in the old one.
    assert_eq!(h.summary(GROUP).state, GroupState::Empty);
}

#[test]
fn failed_offset_delete_keeps_the_offsets() {
    let mut h = Harness::new();
    let commit = h.send_commit(commit_request(GROUP, "", -1, &[("t", 0, 1)]));
    h.commit_response(commit);
    h.auto_complete = false;
    let delete = h.send_offset_delete(OffsetDeleteRequest {
        group_id: GROUP.into(),
        topics: vec![OffsetDeleteTopic {
            name: "t".into(),
            partition_indexes: vec![0],
        }],
    });
    assert!(h.fail_one(codes::MESSAGE_TOO_LARGE));
    let response = h.offset_delete_response(delete);
    assert_eq!(response.error_code, codes::UNKNOWN_SERVER_ERROR);
    assert_eq!(h.coordinator.committed_offsets(GROUP).len(), 1);
}

#[test]
fn tombstone_for_a_commit_in_flight_is_written_after_it() {
    let mut h = Harness::new();
    h.auto_complete = false;
    let commit = h.send_commit(commit_request(GROUP, "", -1, &[("t", 0, 1)]));
    h.complete_all();
    h.commit_response(commit);
    let commit = h.send_commit(commit_request(GROUP, "", -1, &[("t", 1, 2)]));
    let delete = h.send_delete_groups(&[GROUP]);
    h.complete_all();
    assert_eq!(commit_codes(&h.commit_response(commit)), vec![codes::NONE]);
    assert_eq!(
        h.delete_groups_response(delete).results[0].error_code,
        codes::NONE
    );
    assert!(h.coordinator.committed_offsets(GROUP).is_empty());
    assert!(h.replayed().committed_offsets(GROUP).is_empty());
    assert!(h.replayed().group_summary(GROUP).is_none());
}
