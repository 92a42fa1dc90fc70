//! The controller's side of partition replication: AlterPartition from a partition leader,
//! eligible leader replicas (KIP-966) through fencing and elections, and unclean elections.

mod support;

use kafka_protocol::error::ResponseError;
use strom_cluster::controller::AlterPartitionRequest;
use strom_cluster::{BrokerEpoch, BrokerId, LeaderEpoch, LeaderRecoveryState, PartitionEpoch};
use support::*;
use uuid::Uuid;

/// Brokers 1-3 up, topic "t" with one partition on [1, 2, 3], led by 1.
fn three_replicas() -> Cluster {
    let mut c = Cluster::new(config(3), 7);
    c.start_brokers(0, &[(1, None), (2, None), (3, None)]);
    c.create_assigned("t", &[&[1, 2, 3]]).unwrap();
    assert_eq!(c.partition("t", 0).leader, BrokerId(1));
    c
}

fn refused(c: &mut Cluster, request: AlterPartitionRequest) -> ResponseError {
    let before = c.image.clone();
    let err = c.alter_partition_with(0, request).unwrap_err();
    assert_eq!(c.image, before, "a refused change writes nothing");
    err.error
}

#[test]
fn a_shrink_and_an_expand_bump_the_partition_epoch_only() {
    let mut c = three_replicas();
    let before = epochs(c.partition("t", 0));
    let reply = c.alter_partition("t", 0, &[1, 2]).unwrap();
    assert_eq!(reply.in_sync_replicas, ids(&[1, 2]));
    assert_eq!(reply.leader, BrokerId(1));
    assert_eq!(reply.leader_epoch, before.0);
    assert_eq!(reply.partition_epoch, before.1.next());
    assert_eq!(
        epochs(c.partition("t", 0)),
        (reply.leader_epoch, reply.partition_epoch)
    );

    let reply = c.alter_partition("t", 0, &[1, 2, 3]).unwrap();
    assert_eq!(reply.in_sync_replicas, ids(&[1, 2, 3]));
    assert_eq!(reply.partition_epoch, PartitionEpoch(before.1.0 + 2));
    check_invariants(&c.image);
}

#[test]
fn an_unchanged_in_sync_set_writes_nothing_and_returns_the_current_state() {
    let mut c = three_replicas();
    let request = c.alter_request("t", 0, &[1, 2, 3]);
    let (records, reply) = c.controller.alter_partition(&c.image, 0, request).unwrap();
    assert!(records.is_empty());
    assert_eq!(reply.partition_epoch, c.partition("t", 0).partition_epoch);
    assert_eq!(reply.in_sync_replicas, ids(&[1, 2, 3]));
}

#[test]
fn requests_from_old_incarnations_or_for_unknown_partitions_are_refused() {
    let mut c = three_replicas();
    let stale = AlterPartitionRequest {
        broker_epoch: BrokerEpoch(c.epoch(1).0 - 1),
        ..c.alter_request("t", 0, &[1, 2])
    };
    assert_eq!(refused(&mut c, stale), ResponseError::StaleBrokerEpoch);
    let unknown_topic = AlterPartitionRequest {
        topic_id: Uuid::from_u128(99),
        ..c.alter_request("t", 0, &[1, 2])
    };
    assert_eq!(
        refused(&mut c, unknown_topic),
        ResponseError::UnknownTopicId
    );
    let unknown_partition = AlterPartitionRequest {
        partition: 5,
        ..c.alter_request("t", 0, &[1, 2])
    };
    assert_eq!(
        refused(&mut c, unknown_partition),
        ResponseError::UnknownTopicOrPartition
    );
}

#[test]
fn changes_computed_against_another_state_are_refused() {
    let mut c = three_replicas();
    // A leader change (1 fenced, then back but out of sync) takes the leader epoch to 1.
    c.fence(1, 1);
    c.heartbeat(2, 1);
    assert_eq!(c.partition("t", 0).leader, BrokerId(2));
    let current = c.alter_request("t", 0, &[2]);

    let old_leader_epoch = AlterPartitionRequest {
        leader_epoch: LeaderEpoch(current.leader_epoch.0 - 1),
        ..current.clone()
    };
    assert_eq!(
        refused(&mut c, old_leader_epoch),
        ResponseError::FencedLeaderEpoch
    );
    let from_the_future = AlterPartitionRequest {
        partition_epoch: current.partition_epoch.next(),
        ..current.clone()
    };
    assert_eq!(
        refused(&mut c, from_the_future),
        ResponseError::NotController
    );
    let not_the_leader = AlterPartitionRequest {
        broker_id: BrokerId(3),
        broker_epoch: c.epoch(3),
        ..current.clone()
    };
    assert_eq!(
        refused(&mut c, not_the_leader),
        ResponseError::NotLeaderOrFollower
    );
    c.alter_partition_with(0, current.clone()).unwrap();
    // The same request again was computed against the state before the change.
    assert_eq!(
        refused(&mut c, current),
        ResponseError::InvalidUpdateVersion
    );
}

#[test]
fn in_sync_replicas_must_be_distinct_replicas_including_the_leader() {
    let mut c = three_replicas();
    for bad in [&[][..], &[1, 1], &[1, 9], &[2, 3]] {
        let request = c.alter_request("t", 0, bad);
        assert_eq!(
            refused(&mut c, request),
            ResponseError::InvalidRequest,
            "{bad:?}"
        );
    }
}

#[test]
fn fenced_or_shutting_down_replicas_may_not_join_the_in_sync_set() {
    let mut c = three_replicas();
    c.alter_partition("t", 0, &[1]).unwrap();
    c.fence(1, 3);
    let request = c.alter_request("t", 0, &[1, 3]);
    assert_eq!(refused(&mut c, request), ResponseError::IneligibleReplica);

    let shutdown = strom_cluster::controller::BrokerHeartbeatRequest {
        want_shutdown: true,
        ..c.request(2)
    };
    c.heartbeat_with(2, shutdown).unwrap();
    assert!(c.image.brokers[&BrokerId(2)].in_controlled_shutdown);
    let request = c.alter_request("t", 0, &[1, 2]);
    assert_eq!(refused(&mut c, request), ResponseError::IneligibleReplica);
}

#[test]
fn leavers_below_min_insync_replicas_stay_eligible_and_lead_after_the_last_in_sync_replica_dies() {
    let mut c = three_replicas();
    c.set_topic_config("t", "min.insync.replicas", "2");

    // The in-sync replicas shrink to {1}: below 2, so 2 and 3 keep every committed record.
    c.alter_partition("t", 0, &[1]).unwrap();
    let p = c.partition("t", 0);
    assert_eq!(p.in_sync_replicas, ids(&[1]));
    assert_eq!(p.eligible_leader_replicas, ids(&[2, 3]));

    // 2 and 3 stop; they stay eligible. Then leader 1 stops: nobody may lead.
    c.fence(10, 2);
    c.fence(10, 3);
    assert_eq!(c.partition("t", 0).eligible_leader_replicas, ids(&[2, 3]));
    c.fence(20, 1);
    let p = c.partition("t", 0).clone();
    assert_eq!(p.leader, BrokerId::NONE);
    assert_eq!(
        p.in_sync_replicas,
        ids(&[1]),
        "the last in-sync replica stays"
    );
    assert_eq!(p.eligible_leader_replicas, ids(&[2, 3]));
    check_invariants(&c.image);

    // 2 comes back: elected from the eligible replicas, it becomes the only in-sync one,
    // and 1 (which had every committed record as leader) becomes eligible.
    c.heartbeat(30, 2);
    let next = c.partition("t", 0);
    assert_eq!(next.leader, BrokerId(2));
    assert_eq!(next.in_sync_replicas, ids(&[2]));
    assert_eq!(next.eligible_leader_replicas, ids(&[1, 3]));
    assert_eq!(next.leader_epoch, p.leader_epoch.next());
    assert!(
        next.leader_recovery_state.is_recovered(),
        "no data was lost"
    );
    check_invariants(&c.image);

    // Back to the minimum: the eligible set is no longer needed.
    c.heartbeat(40, 3);
    c.alter_partition("t", 0, &[2, 3]).unwrap();
    assert!(c.partition("t", 0).eligible_leader_replicas.is_empty());
}

#[test]
fn with_min_insync_replicas_of_one_nobody_becomes_eligible() {
    let mut c = three_replicas();
    c.alter_partition("t", 0, &[1]).unwrap();
    assert!(c.partition("t", 0).eligible_leader_replicas.is_empty());
    c.fence(1, 1);
    assert_eq!(c.partition("t", 0).leader, BrokerId::NONE);
}

#[test]
fn a_fenced_follower_below_the_minimum_becomes_eligible() {
    let mut c = three_replicas();
    c.set_topic_config("t", "min.insync.replicas", "3");
    c.fence(1, 3);
    let p = c.partition("t", 0);
    assert_eq!(p.in_sync_replicas, ids(&[1, 2]));
    assert_eq!(p.eligible_leader_replicas, ids(&[3]));
}

#[test]
fn lowering_min_insync_replicas_clears_the_eligible_replicas() {
    let mut c = three_replicas();
    c.set_topic_config("t", "min.insync.replicas", "2");
    c.alter_partition("t", 0, &[1]).unwrap();
    assert_eq!(c.partition("t", 0).eligible_leader_replicas, ids(&[2, 3]));
    // With a minimum of 1 the leader may advance the high watermark alone: 2 and 3 fall
    // behind the committed records.
    c.set_topic_config("t", "min.insync.replicas", "1");
    assert!(c.partition("t", 0).eligible_leader_replicas.is_empty());
    c.fence(1, 1);
    c.fence(1, 2);
    assert_eq!(c.partition("t", 0).leader, BrokerId::NONE);
    check_invariants(&c.image);
}

#[test]
fn an_unclean_election_needs_the_topic_to_allow_it_and_starts_recovery() {
    let mut c = three_replicas();
    c.alter_partition("t", 0, &[1]).unwrap();
    c.fence(1, 1);
    assert_eq!(
        c.partition("t", 0).leader,
        BrokerId::NONE,
        "2 and 3 are not in sync"
    );

    c.set_topic_config("t", "unclean.leader.election.enable", "true");
    // The next broker event elects the first available replica.
    c.fence(2, 3);
    c.heartbeat(3, 3);
    let p = c.partition("t", 0).clone();
    assert_eq!(p.leader, BrokerId(2));
    assert_eq!(p.in_sync_replicas, ids(&[2]));
    assert_eq!(p.leader_recovery_state, LeaderRecoveryState::Recovering);
    check_invariants(&c.image);

    // While recovering the leader stays alone; it says when it is done.
    let mut request = c.alter_request("t", 0, &[2, 3]);
    request.leader_recovery_state = LeaderRecoveryState::Recovering;
    let err = c.alter_partition_with(4, request).unwrap_err();
    assert_eq!(err.error, ResponseError::InvalidRequest);
    let reply = c.alter_partition("t", 0, &[2, 3]).unwrap();
    assert_eq!(reply.leader_recovery_state, LeaderRecoveryState::Recovered);
    assert_eq!(reply.in_sync_replicas, ids(&[2, 3]));
}
