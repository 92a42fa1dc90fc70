//! TxnOffsetCommit (KIP-98) and transaction markers: pending offsets per producer, what
//! OffsetFetch sees, the log-order rule when a transaction commits, replay and lifecycle.

mod common;

use common::*;
use strom_group::record::{OffsetCommitValue, RecordKey};
use strom_group::*;

const PRODUCER: i64 = 7_000;
const OTHER_PRODUCER: i64 = 8_000;

fn txn_commit(h: &mut Harness, request: TxnOffsetCommitRequest) -> Vec<ErrorCode> {
    let id = h.send_txn_commit(request);
    txn_commit_codes(&h.txn_commit_response(id))
}

fn commit(h: &mut Harness, request: OffsetCommitRequest) -> Vec<ErrorCode> {
    let id = h.send_commit(request);
    commit_codes(&h.commit_response(id))
}

/// Offsets OffsetFetch returns for every committed partition of the group.
fn fetch_one(h: &mut Harness, group: &str) -> Vec<(String, i32, i64)> {
    let id = h.send_fetch(fetch_all(&[group]));
    fetched(&h.fetch_response(id).groups[0])
}

/// (offset, error) of one partition, fetched by name.
fn fetch_partition(
    h: &mut Harness,
    group: &str,
    topic: &str,
    partition: i32,
    require_stable: bool,
) -> (i64, ErrorCode) {
    let id = h.send_fetch(OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: group.into(),
            member_id: None,
            member_epoch: -1,
            topics: Some(vec![OffsetFetchTopic {
                name: topic.into(),
                partition_indexes: vec![partition],
            }]),
        }],
        require_stable,
    });
    let response = h.fetch_response(id);
    let p = &response.groups[0].topics[0].partitions[0];
    (p.committed_offset, p.error_code)
}

fn simple_txn(
    group: &str,
    producer_id: i64,
    offsets: &[(&str, i32, i64)],
) -> TxnOffsetCommitRequest {
    txn_commit_request(group, producer_id, "", -1, offsets)
}

fn partition_of(h: &Harness, group: &str) -> i32 {
    h.coordinator.partition_for(group)
}

#[test]
fn txn_offsets_are_written_as_one_transactional_batch_of_the_producer() {
    let mut h = Harness::new();
    let mut request = simple_txn(GROUP, PRODUCER, &[("t", 0, 5), ("t", 1, 6)]);
    request.producer_epoch = 3;
    assert_eq!(txn_commit(&mut h, request), vec![codes::NONE, codes::NONE]);

    assert_eq!(h.issued.len(), 1);
    let write = &h.issued[0];
    assert_eq!(
        write.producer,
        Some(ProducerIdAndEpoch {
            producer_id: PRODUCER,
            producer_epoch: 3
        })
    );
    assert_eq!(write.records.len(), 2);
    // The same record format as OffsetCommit.
    assert_eq!(
        RecordKey::decode(&write.records[0].key).unwrap(),
        RecordKey::OffsetCommit {
            group: GROUP.into(),
            topic: "t".into(),
            partition: 0
        }
    );
    let value = OffsetCommitValue::decode(write.records[1].value.as_ref().unwrap()).unwrap();
    assert_eq!(value.offset, 6);
    assert_eq!(value.leader_epoch, 3);
    assert_eq!(value.commit_timestamp, h.now);
    assert_eq!(value.expire_timestamp, -1);
}

#[test]
fn txn_offsets_stay_pending_until_the_commit_marker() {
    let mut h = Harness::new();
    commit(&mut h, commit_request(GROUP, "", -1, &[("t", 0, 1)]));
    assert_eq!(
        txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 5)])),
        vec![codes::NONE]
    );

    // Without require_stable: the last committed offset.
    assert_eq!(
        fetch_partition(&mut h, GROUP, "t", 0, false),
        (1, codes::NONE)
    );
    // With it: the client must retry until the transaction ends.
    assert_eq!(
        fetch_partition(&mut h, GROUP, "t", 0, true),
        (-1, codes::UNSTABLE_OFFSET_COMMIT)
    );
    assert_eq!(
        h.coordinator.pending_transactional_offsets(GROUP).len(),
        1,
        "pending for the producer"
    );

    let partition = partition_of(&h, GROUP);
    h.marker(partition, PRODUCER, true);
    assert_eq!(
        fetch_partition(&mut h, GROUP, "t", 0, true),
        (5, codes::NONE)
    );
    assert!(
        h.coordinator
            .pending_transactional_offsets(GROUP)
            .is_empty()
    );
    assert!(h.in_flight.is_empty(), "a marker writes nothing");
}

#[test]
fn require_stable_fetch_of_all_partitions_flags_only_the_pending_ones() {
    let mut h = Harness::new();
    commit(
        &mut h,
        commit_request(GROUP, "", -1, &[("t", 0, 1), ("t", 1, 2)]),
    );
    txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 1, 9)]));
    let mut request = fetch_all(&[GROUP]);
    request.require_stable = true;
    let id = h.send_fetch(request);
    let response = h.fetch_response(id);
    let codes_by_partition: Vec<(i32, i64, ErrorCode)> = response.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset, p.error_code))
        .collect();
    assert_eq!(
        codes_by_partition,
        vec![(0, 1, codes::NONE), (1, -1, codes::UNSTABLE_OFFSET_COMMIT)]
    );
}

#[test]
fn abort_marker_drops_the_producers_pending_offsets_only() {
    let mut h = Harness::new();
    commit(&mut h, commit_request(GROUP, "", -1, &[("t", 0, 1)]));
    txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 5)]));
    txn_commit(&mut h, simple_txn(GROUP, OTHER_PRODUCER, &[("u", 0, 8)]));
    let partition = partition_of(&h, GROUP);

    h.marker(partition, PRODUCER, false);
    assert_eq!(fetch_one(&mut h, GROUP), vec![("t".into(), 0, 1)]);
    let pending = h.coordinator.pending_transactional_offsets(GROUP);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].0, OTHER_PRODUCER);

    h.marker(partition, OTHER_PRODUCER, true);
    assert_eq!(
        fetch_one(&mut h, GROUP),
        vec![("t".into(), 0, 1), ("u".into(), 0, 8)]
    );
}

#[test]
fn a_plain_commit_written_after_the_txn_offset_wins_at_commit() {
    let mut h = Harness::new();
    txn_commit(
        &mut h,
        simple_txn(GROUP, PRODUCER, &[("t", 0, 5), ("t", 1, 5)]),
    );
    // Written after the transaction's record: newer, so the COMMIT must not undo it.
    commit(&mut h, commit_request(GROUP, "", -1, &[("t", 0, 7)]));
    h.marker(partition_of(&h, GROUP), PRODUCER, true);
    assert_eq!(
        fetch_one(&mut h, GROUP),
        vec![("t".into(), 0, 7), ("t".into(), 1, 5)]
    );
}

#[test]
fn a_txn_offset_written_after_a_plain_commit_wins_at_commit() {
    let mut h = Harness::new();
    commit(&mut h, commit_request(GROUP, "", -1, &[("t", 0, 7)]));
    txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 5)]));
    h.marker(partition_of(&h, GROUP), PRODUCER, true);
    assert_eq!(fetch_one(&mut h, GROUP), vec![("t".into(), 0, 5)]);
}

#[test]
fn unknown_group_is_created_without_a_generation_and_refused_with_one() {
    let mut h = Harness::new();
    assert_eq!(
        txn_commit(
            &mut h,
            txn_commit_request(GROUP, PRODUCER, "m", 1, &[("t", 0, 1)])
        ),
        vec![codes::ILLEGAL_GENERATION]
    );
    assert!(h.coordinator.group_summary(GROUP).is_none());
    assert!(h.issued.is_empty());

    assert_eq!(
        txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 1)])),
        vec![codes::NONE]
    );
    let summary = h.summary(GROUP);
    assert_eq!(summary.state, GroupState::Empty);
    assert_eq!(summary.protocol_type, None);
}

#[test]
fn member_and_generation_are_validated_like_offset_commit() {
    let mut h = Harness::new();
    let member = h.stable_single_member_group(GROUP, &["t"]);
    let offsets = [("t", 0, 3)];
    assert_eq!(
        txn_commit(
            &mut h,
            txn_commit_request(GROUP, PRODUCER, &member, 1, &offsets)
        ),
        vec![codes::NONE]
    );
    assert_eq!(
        txn_commit(
            &mut h,
            txn_commit_request(GROUP, PRODUCER, &member, 2, &offsets)
        ),
        vec![codes::ILLEGAL_GENERATION]
    );
    assert_eq!(
        txn_commit(
            &mut h,
            txn_commit_request(GROUP, PRODUCER, "stranger", 1, &offsets)
        ),
        vec![codes::UNKNOWN_MEMBER_ID]
    );
    // A producer that does not pass the consumer's group metadata (v0-2) is not checked.
    assert_eq!(
        txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &offsets)),
        vec![codes::NONE]
    );
}

#[test]
fn a_static_member_with_a_stale_member_id_is_fenced() {
    let mut h = Harness::new();
    let join = h.send_join(static_join_request(GROUP, "", "instance-1", &["t"]));
    h.advance(3_000);
    let member = h.join_response(join).member_id;
    let sync = h.sync(GROUP, &member, 1, &[]);
    h.sync_response(sync);
    let mut request = txn_commit_request(GROUP, PRODUCER, "old-member-id", 1, &[("t", 0, 1)]);
    request.group_instance_id = Some("instance-1".into());
    assert_eq!(txn_commit(&mut h, request), vec![codes::FENCED_INSTANCE_ID]);
    let mut request = txn_commit_request(GROUP, PRODUCER, &member, 1, &[("t", 0, 1)]);
    request.group_instance_id = Some("instance-1".into());
    assert_eq!(txn_commit(&mut h, request), vec![codes::NONE]);
}

#[test]
fn a_rebalance_in_progress_does_not_refuse_a_txn_offset_commit() {
    let mut h = Harness::new();
    let (join, member) = h.join_dynamic(GROUP, "c", &["t"]);
    h.advance(3_000);
    h.join_response(join);
    assert_eq!(h.summary(GROUP).state, GroupState::CompletingRebalance);
    assert_eq!(
        txn_commit(
            &mut h,
            txn_commit_request(GROUP, PRODUCER, &member, 1, &[("t", 0, 1)])
        ),
        vec![codes::NONE]
    );
}

#[test]
fn oversized_metadata_fails_only_its_partition() {
    let mut h = Harness::new();
    let mut request = simple_txn(GROUP, PRODUCER, &[("t", 0, 1), ("t", 1, 2)]);
    request.topics[0].partitions[1].committed_metadata = Some("x".repeat(4_097));
    assert_eq!(
        txn_commit(&mut h, request),
        vec![codes::NONE, codes::OFFSET_METADATA_TOO_LARGE]
    );
    assert_eq!(h.issued[0].records.len(), 1);
}

#[test]
fn loading_and_unowned_partitions_answer_like_offset_commit() {
    let mut h = Harness::new();
    let partition = partition_of(&h, GROUP);
    let out = h.coordinator.unload_partition(h.now, partition);
    h.handle(out);
    assert_eq!(
        txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 1)])),
        vec![codes::NOT_COORDINATOR]
    );
    h.coordinator.load_partition(partition).unwrap();
    assert_eq!(
        txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 1)])),
        vec![codes::COORDINATOR_LOAD_IN_PROGRESS]
    );
    assert_eq!(
        txn_commit(&mut h, simple_txn("", PRODUCER, &[("t", 0, 1)])),
        vec![codes::INVALID_GROUP_ID]
    );
}

#[test]
fn the_response_waits_for_the_write_and_a_failed_write_leaves_nothing_pending() {
    let mut h = Harness::new();
    h.auto_complete = false;
    let id = h.send_txn_commit(simple_txn(GROUP, PRODUCER, &[("t", 0, 1)]));
    assert!(!h.is_answered(id));
    h.fail_one(codes::NOT_LEADER_OR_FOLLOWER);
    assert_eq!(
        txn_commit_codes(&h.txn_commit_response(id)),
        vec![codes::NOT_COORDINATOR]
    );
    assert!(
        h.coordinator
            .pending_transactional_offsets(GROUP)
            .is_empty()
    );
    assert!(h.coordinator.group_summary(GROUP).is_none());
}

#[test]
fn a_marker_that_overtakes_the_writes_completion_applies_after_it() {
    let mut h = Harness::new();
    h.auto_complete = false;
    let id = h.send_txn_commit(simple_txn(GROUP, PRODUCER, &[("t", 0, 4)]));
    // The batch reached the log, then the marker; the coordinator hears of the marker first.
    let partition = partition_of(&h, GROUP);
    let out = h
        .coordinator
        .complete_transaction(h.now, partition, PRODUCER, true);
    assert!(out.is_empty());
    h.complete_all();
    h.txn_commit_response(id);
    assert_eq!(fetch_one(&mut h, GROUP), vec![("t".into(), 0, 4)]);
}

#[test]
fn pending_txn_offsets_keep_the_group_and_their_partition_from_retention() {
    let mut h = Harness::with_config(Config {
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 1_000,
        ..config()
    });
    commit(
        &mut h,
        commit_request(GROUP, "", -1, &[("t", 0, 1), ("t", 1, 1)]),
    );
    txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 5)]));
    txn_commit(&mut h, simple_txn("txn-only", PRODUCER, &[("t", 0, 5)]));
    h.advance(120_000);
    // t-1 expired; t-0 has a pending transactional offset and stays, as do both groups.
    assert_eq!(fetch_one(&mut h, GROUP), vec![("t".into(), 0, 1)]);
    assert!(h.coordinator.group_summary("txn-only").is_some());
    assert_eq!(h.coordinator.pending_transactional_offsets(GROUP).len(), 1);

    // Once the transaction aborted, retention goes on.
    h.marker(partition_of(&h, GROUP), PRODUCER, false);
    h.marker(partition_of(&h, "txn-only"), PRODUCER, false);
    h.advance(2_000);
    assert!(h.coordinator.group_summary(GROUP).is_none());
    assert!(h.coordinator.group_summary("txn-only").is_none());
}

#[test]
fn deleting_the_group_deletes_its_pending_txn_offsets() {
    let mut h = Harness::new();
    txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 5)]));
    let delete = h.send_delete_groups(&[GROUP]);
    assert_eq!(
        h.delete_groups_response(delete).results[0].error_code,
        codes::NONE
    );
    h.marker(partition_of(&h, GROUP), PRODUCER, true);
    assert!(fetch_one(&mut h, GROUP).is_empty());
    // The log says the same.
    let replayed = h.replayed();
    assert!(replayed.committed_offsets(GROUP).is_empty());
    assert!(replayed.group_summary(GROUP).is_none());
}

#[test]
fn unloading_drops_pending_state_and_the_log_brings_it_back() {
    let mut h = Harness::new();
    txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 5)]));
    let partition = partition_of(&h, GROUP);
    let out = h.coordinator.unload_partition(h.now, partition);
    h.handle(out);
    assert!(
        h.coordinator
            .pending_transactional_offsets(GROUP)
            .is_empty()
    );
    // A marker for a partition this broker no longer owns is ignored...
    let out = h
        .coordinator
        .complete_transaction(h.now, partition, PRODUCER, true);
    assert!(out.is_empty());
    // ...and its log has no marker: the transaction is open again after the load.
    h.reload(partition);
    assert_eq!(h.coordinator.pending_transactional_offsets(GROUP).len(), 1);
    assert!(fetch_one(&mut h, GROUP).is_empty());
}

#[test]
fn a_marker_reported_during_the_load_applies_after_the_replay() {
    let mut h = Harness::new();
    txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 5)]));
    let partition = partition_of(&h, GROUP);
    let out = h.coordinator.unload_partition(h.now, partition);
    h.handle(out);
    h.coordinator.load_partition(partition).unwrap();
    let out = h
        .coordinator
        .complete_transaction(h.now, partition, PRODUCER, true);
    assert!(out.is_empty());
    let entries = h.full_log.get(&partition).cloned().unwrap_or_default();
    replay_log(&mut h.coordinator, partition, &entries);
    let out = h.coordinator.finish_load(h.now, partition).unwrap();
    h.handle(out);
    assert_eq!(fetch_one(&mut h, GROUP), vec![("t".into(), 0, 5)]);
}

// ---- replay

#[test]
fn replay_pending_then_commit_marker_commits() {
    let mut h = Harness::new();
    txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 5)]));
    h.marker(partition_of(&h, GROUP), PRODUCER, true);
    let replayed = h.replayed();
    assert_eq!(replayed.committed_offsets(GROUP)[0].2.committed_offset, 5);
    assert!(replayed.pending_transactional_offsets(GROUP).is_empty());
}

#[test]
fn replay_pending_then_abort_marker_drops() {
    let mut h = Harness::new();
    commit(&mut h, commit_request(GROUP, "", -1, &[("t", 0, 1)]));
    txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 5)]));
    h.marker(partition_of(&h, GROUP), PRODUCER, false);
    let replayed = h.replayed();
    assert_eq!(replayed.committed_offsets(GROUP)[0].2.committed_offset, 1);
    assert!(replayed.pending_transactional_offsets(GROUP).is_empty());
}

#[test]
fn replay_pending_without_marker_stays_pending_until_the_marker_comes() {
    let mut h = Harness::new();
    txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 5)]));
    let partition = partition_of(&h, GROUP);
    h.reload(partition);
    let pending = h.coordinator.pending_transactional_offsets(GROUP);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].0, PRODUCER);
    assert_eq!(
        fetch_partition(&mut h, GROUP, "t", 0, true),
        (-1, codes::UNSTABLE_OFFSET_COMMIT)
    );
    // The transaction coordinator sends the marker again.
    h.marker(partition, PRODUCER, true);
    assert_eq!(fetch_one(&mut h, GROUP), vec![("t".into(), 0, 5)]);
}

#[test]
fn replay_txn_commit_older_than_a_later_plain_commit_loses() {
    let mut h = Harness::new();
    txn_commit(&mut h, simple_txn(GROUP, PRODUCER, &[("t", 0, 5)]));
    commit(&mut h, commit_request(GROUP, "", -1, &[("t", 0, 7)]));
    h.marker(partition_of(&h, GROUP), PRODUCER, true);
    let replayed = h.replayed();
    assert_eq!(replayed.committed_offsets(GROUP)[0].2.committed_offset, 7);
    assert_eq!(
        h.coordinator.committed_offsets(GROUP)[0].2.committed_offset,
        7
    );
}
