//! Partition reassignment (AlterPartitionReassignments, ListPartitionReassignments) and
//! UnregisterBroker, which refuses a broker that still holds replicas.

mod support;

use kafka_protocol::error::ResponseError;
use strom_cluster::controller::{OngoingReassignment, list_partition_reassignments};
use strom_cluster::{BrokerId, MetadataRecord};
use support::*;

/// Brokers 1-4 up, topic "t" with one partition on [1, 2, 3], led by 1.
fn four_brokers() -> Cluster {
    let mut c = Cluster::new(config(4), 9);
    c.start_brokers(0, &[(1, None), (2, None), (3, None), (4, None)]);
    c.create_assigned("t", &[&[1, 2, 3]]).unwrap();
    c
}

#[test]
fn a_reassignment_adds_first_and_removes_once_the_new_replica_is_in_sync() {
    let mut c = four_brokers();
    let before = c.partition("t", 0).clone();
    c.reassign("t", 0, Some(&[4, 2, 3])).unwrap();
    let p = c.partition("t", 0).clone();
    assert_eq!(p.replicas, ids(&[4, 2, 3, 1]));
    assert_eq!(p.adding_replicas, ids(&[4]));
    assert_eq!(p.removing_replicas, ids(&[1]));
    assert_eq!(
        p.in_sync_replicas, before.in_sync_replicas,
        "in-sync replicas unchanged"
    );
    assert_eq!(
        (p.leader, p.leader_epoch),
        (BrokerId(1), before.leader_epoch)
    );
    assert_eq!(
        list_partition_reassignments(&c.image, None),
        vec![OngoingReassignment {
            topic: "t".into(),
            partition: 0,
            replicas: ids(&[4, 2, 3, 1]),
            adding_replicas: ids(&[4]),
            removing_replicas: ids(&[1]),
        }]
    );
    check_invariants(&c.image);

    // Leader 1 puts 4 in sync: that completes the reassignment in the same record, and the
    // leader, being removed, hands over to the first target replica in sync.
    let reply = c.alter_partition("t", 0, &[1, 2, 3, 4]).unwrap();
    let done = c.partition("t", 0);
    assert_eq!(done.replicas, ids(&[4, 2, 3]));
    assert_eq!(done.in_sync_replicas, ids(&[2, 3, 4]));
    assert!(done.adding_replicas.is_empty() && done.removing_replicas.is_empty());
    assert_eq!(done.leader, BrokerId(4));
    assert_eq!(done.leader_epoch, p.leader_epoch.next());
    assert_eq!(
        reply.leader,
        BrokerId(4),
        "the old leader learns it no longer leads"
    );
    assert!(list_partition_reassignments(&c.image, None).is_empty());
    check_invariants(&c.image);
}

#[test]
fn a_cancel_returns_to_the_original_replicas() {
    let mut c = four_brokers();
    c.reassign("t", 0, Some(&[4, 2, 3])).unwrap();
    let during = c.partition("t", 0).clone();
    c.reassign("t", 0, None).unwrap();
    let p = c.partition("t", 0);
    // The original brokers, in the reassignment's order (target first).
    assert_eq!(p.replicas, ids(&[2, 3, 1]));
    assert_eq!(p.in_sync_replicas, ids(&[1, 2, 3]));
    assert!(!p.is_reassigning());
    assert_eq!(p.leader, BrokerId(1));
    assert_eq!(
        p.leader_epoch,
        during.leader_epoch.next(),
        "4's fetches are fenced"
    );

    let err = c.reassign("t", 0, None).unwrap_err();
    assert_eq!(err.error, ResponseError::NoReassignmentInProgress);
}

#[test]
fn a_pure_shrink_or_reorder_completes_at_once() {
    let mut c = four_brokers();
    c.reassign("t", 0, Some(&[2, 1, 3])).unwrap();
    let p = c.partition("t", 0).clone();
    assert_eq!(p.replicas, ids(&[2, 1, 3]));
    assert!(!p.is_reassigning());
    assert_eq!(
        p.leader,
        BrokerId(1),
        "a reorder alone does not move leadership"
    );

    c.reassign("t", 0, Some(&[2, 1])).unwrap();
    let p = c.partition("t", 0);
    assert_eq!(p.replicas, ids(&[2, 1]));
    assert_eq!(p.in_sync_replicas, ids(&[1, 2]));
    assert!(!p.is_reassigning());
    check_invariants(&c.image);
}

#[test]
fn a_new_target_replaces_an_ongoing_reassignment() {
    let mut c = four_brokers();
    c.reassign("t", 0, Some(&[4, 2, 3])).unwrap();
    c.reassign("t", 0, Some(&[1, 2, 4])).unwrap();
    let p = c.partition("t", 0).clone();
    assert_eq!(p.replicas, ids(&[1, 2, 4, 3]));
    assert_eq!(p.adding_replicas, ids(&[4]));
    assert_eq!(p.removing_replicas, ids(&[3]));
    // A cancel still knows the original replicas.
    c.reassign("t", 0, None).unwrap();
    assert_eq!(c.partition("t", 0).replicas, ids(&[1, 2, 3]));
}

#[test]
fn invalid_targets_are_refused() {
    let mut c = four_brokers();
    for bad in [&[][..], &[1, 1], &[1, 9]] {
        let err = c.reassign("t", 0, Some(bad)).unwrap_err();
        assert_eq!(
            err.error,
            ResponseError::InvalidReplicaAssignment,
            "{bad:?}"
        );
    }
    let err = c.reassign("t", 5, Some(&[1])).unwrap_err();
    assert_eq!(err.error, ResponseError::UnknownTopicOrPartition);
    let err = c.reassign("nope", 0, Some(&[1])).unwrap_err();
    assert_eq!(err.error, ResponseError::UnknownTopicOrPartition);
    assert!(list_partition_reassignments(&c.image, None).is_empty());
}

#[test]
fn reverting_when_only_added_replicas_are_in_sync_needs_unclean_election() {
    let mut c = four_brokers();
    c.register(0, registration(5, 0, None)).unwrap();
    c.heartbeat(0, 5);
    c.reassign("t", 0, Some(&[4, 5])).unwrap();
    c.alter_partition("t", 0, &[1, 2, 3, 4]).unwrap();
    assert!(c.partition("t", 0).is_reassigning(), "5 is not in sync yet");
    for id in [1, 2, 3] {
        c.fence(1, id);
    }
    let p = c.partition("t", 0);
    assert_eq!(
        (p.leader, p.in_sync_replicas.clone()),
        (BrokerId(4), ids(&[4]))
    );

    let err = c.reassign("t", 0, None).unwrap_err();
    assert_eq!(err.error, ResponseError::InvalidReplicaAssignment);
    assert!(err.message.contains("unclean"), "{}", err.message);

    c.set_topic_config("t", "unclean.leader.election.enable", "true");
    c.heartbeat(2, 2);
    c.reassign("t", 0, None).unwrap();
    let p = c.partition("t", 0);
    assert_eq!(p.replicas, ids(&[1, 2, 3]));
    assert_eq!(
        (p.leader, p.in_sync_replicas.clone()),
        (BrokerId(2), ids(&[2]))
    );
    assert!(!p.leader_recovery_state.is_recovered());
    check_invariants(&c.image);
}

#[test]
fn listing_is_limited_to_the_partitions_asked_for() {
    let mut c = four_brokers();
    c.create_assigned("u", &[&[1], &[2]]).unwrap();
    c.reassign("t", 0, Some(&[4, 2, 3])).unwrap();
    c.reassign("u", 1, Some(&[3])).unwrap();
    let all = list_partition_reassignments(&c.image, None);
    assert_eq!(all.len(), 2);
    let only_u = list_partition_reassignments(&c.image, Some(&[("u".into(), vec![0, 1])]));
    assert_eq!(only_u.len(), 1);
    assert_eq!((only_u[0].topic.as_str(), only_u[0].partition), ("u", 1));
}

#[test]
fn a_broker_is_unregistered_only_once_it_holds_no_replicas() {
    let mut c = four_brokers();
    let err = c
        .controller
        .unregister_broker(&c.image, BrokerId(9))
        .unwrap_err();
    assert_eq!(err.error, ResponseError::BrokerIdNotRegistered);

    let err = c
        .controller
        .unregister_broker(&c.image, BrokerId(3))
        .unwrap_err();
    assert_eq!(err.error, ResponseError::InvalidRequest);
    assert!(err.message.contains("t-0"), "{}", err.message);

    c.reassign("t", 0, Some(&[1, 2, 4])).unwrap();
    c.alter_partition("t", 0, &[1, 2, 3, 4]).unwrap();
    assert_eq!(c.partition("t", 0).replicas, ids(&[1, 2, 4]));
    let records = c
        .controller
        .unregister_broker(&c.image, BrokerId(3))
        .unwrap();
    assert_eq!(
        records,
        vec![MetadataRecord::UnregisterBroker {
            broker_id: BrokerId(3),
            broker_epoch: c.epoch(3),
        }]
    );
    c.apply(&records);
    assert!(!c.image.brokers.contains_key(&BrokerId(3)));
    check_invariants(&c.image);
}
