//! Broker lifecycle timelines against the controller, with the clock passed in: registration,
//! fencing and unfencing, session expiry, re-registration and controlled shutdown.

mod support;

use kafka_protocol::error::ResponseError;
use strom_cluster::controller::{BrokerHeartbeatRequest, Controller};
use strom_cluster::{BrokerEpoch, BrokerId, LeaderEpoch, MetadataRecord};
use support::*;

#[test]
fn a_new_registration_is_fenced_until_it_has_caught_up() {
    let mut c = Cluster::new(config(1), 1);
    let epoch = c.register(0, registration(1, 0, None)).unwrap();
    assert_eq!(epoch, BrokerEpoch(1), "the index of the registering entry");
    assert!(c.is_fenced(1));

    let behind = BrokerHeartbeatRequest {
        metadata_offset: 0,
        ..c.request(1)
    };
    let (records, reply) = c.controller.heartbeat(&c.image, 10, behind).unwrap();
    assert!(records.is_empty());
    assert!(!reply.is_caught_up && reply.is_fenced && !reply.should_shut_down);

    let reply = c.heartbeat(20, 1);
    assert!(reply.is_caught_up && !reply.is_fenced);
    assert!(!c.is_fenced(1));
}

#[test]
fn a_broker_that_wants_to_stay_fenced_stays_fenced() {
    let mut c = Cluster::new(config(1), 1);
    c.register(0, registration(1, 0, None)).unwrap();
    let request = BrokerHeartbeatRequest {
        want_fence: true,
        ..c.request(1)
    };
    assert!(c.heartbeat_with(10, request).unwrap().is_fenced);
    c.heartbeat(20, 1);
    let request = BrokerHeartbeatRequest {
        want_fence: true,
        ..c.request(1)
    };
    let reply = c.heartbeat_with(30, request).unwrap();
    assert!(
        reply.is_fenced && c.is_fenced(1),
        "an unfenced broker may ask to be fenced"
    );
}

#[test]
fn a_session_expires_one_millisecond_after_the_timeout() {
    let mut c = Cluster::new(config(1), 1);
    c.start_brokers(100, &[(1, None)]);
    assert_eq!(c.controller.next_deadline(), Some(100 + TIMEOUT_MS + 1));
    assert!(c.tick(100 + TIMEOUT_MS).is_empty());
    assert!(!c.is_fenced(1));
    let records = c.tick(100 + TIMEOUT_MS + 1);
    assert_eq!(
        records,
        vec![MetadataRecord::BrokerRegistrationChange {
            broker_id: BrokerId(1),
            broker_epoch: c.epoch(1),
            fenced: Some(true),
            in_controlled_shutdown: None,
        }]
    );
    assert!(c.is_fenced(1));
    assert_eq!(
        c.controller.next_deadline(),
        None,
        "fenced sessions do not expire"
    );
}

#[test]
fn a_fenced_leader_leaves_its_partitions_offline_until_it_returns() {
    let mut c = Cluster::new(config(1), 3);
    c.start_brokers(0, &[(1, None), (2, None)]);
    c.create("t", 4, 1).unwrap();
    let led_by_1: Vec<i32> = (0..4)
        .filter(|&p| c.partition("t", p).leader == BrokerId(1))
        .collect();
    assert_eq!(led_by_1.len(), 2);
    let before = c.partition("t", led_by_1[0]).clone();

    c.heartbeat(TIMEOUT_MS, 2);
    c.tick(TIMEOUT_MS + 1);
    assert!(c.is_fenced(1) && !c.is_fenced(2));
    for &p in &led_by_1 {
        let p = c.partition("t", p);
        assert_eq!(p.leader, BrokerId::NONE);
        assert_eq!(
            p.in_sync_replicas,
            ids(&[1]),
            "the last in-sync replica stays"
        );
        assert_eq!(p.leader_epoch, before.leader_epoch.next());
    }
    check_invariants(&c.image);

    let reply = c.heartbeat(TIMEOUT_MS + 500, 1);
    assert!(!reply.is_fenced);
    for &p in &led_by_1 {
        let p = c.partition("t", p);
        assert_eq!(p.leader, BrokerId(1));
        assert_eq!(p.leader_epoch, LeaderEpoch(before.leader_epoch.0 + 2));
        assert_eq!(p.partition_epoch.0, before.partition_epoch.0 + 2);
    }
}

#[test]
fn with_three_replicas_leadership_moves_to_the_next_in_sync_replica() {
    let mut c = Cluster::new(config(3), 5);
    c.start_brokers(0, &[(1, None), (2, None), (3, None)]);
    c.create("t", 3, 3).unwrap();
    let before = c.image.clone();
    let led_by_1 = (0..3)
        .find(|&p| c.partition("t", p).leader == BrokerId(1))
        .unwrap();

    c.heartbeat(TIMEOUT_MS, 2);
    c.heartbeat(TIMEOUT_MS, 3);
    c.tick(TIMEOUT_MS + 1);
    check_invariants(&c.image);
    check_epochs(&before, &c.image);
    for p in 0..3 {
        let old = before.partition("t", p).unwrap();
        let new = c.partition("t", p);
        assert!(!new.in_sync_replicas.contains(&BrokerId(1)));
        let expected_leader = old
            .replicas
            .iter()
            .copied()
            .find(|&b| b != BrokerId(1))
            .unwrap();
        if p == led_by_1 {
            assert_eq!(new.leader, expected_leader, "next in replica order");
            assert_eq!(new.leader_epoch, old.leader_epoch.next());
        } else {
            assert_eq!(new.leader, old.leader);
            assert_eq!(
                new.leader_epoch, old.leader_epoch,
                "only the followers changed"
            );
        }
    }

    // Coming back does not put it back in sync: that is for the leader to ask
    // (AlterPartition), once it has caught up with the log.
    let after_fence = c.image.clone();
    c.heartbeat(TIMEOUT_MS + 10, 1);
    assert!(!c.is_fenced(1));
    for p in 0..3 {
        assert_eq!(c.partition("t", p), after_fence.partition("t", p).unwrap());
    }
}

#[test]
fn a_duplicate_registration_is_refused_while_the_old_session_lives() {
    let mut c = Cluster::new(config(1), 1);
    c.start_brokers(0, &[(1, None)]);
    c.create("t", 1, 1).unwrap();
    let old_epoch = c.epoch(1);

    let err = c
        .register(TIMEOUT_MS, registration(1, 1, None))
        .unwrap_err();
    assert_eq!(err.error, ResponseError::DuplicateBrokerRegistration);

    // Expired (even before a tick has fenced it): the new incarnation takes over, and the
    // partitions the old one led lose it.
    let epoch = c
        .register(TIMEOUT_MS + 1, registration(1, 1, None))
        .unwrap();
    assert!(epoch > old_epoch);
    assert!(c.is_fenced(1));
    assert_eq!(c.partition("t", 0).leader, BrokerId::NONE);
    check_invariants(&c.image);
    c.heartbeat(TIMEOUT_MS + 2, 1);
    assert_eq!(c.partition("t", 0).leader, BrokerId(1));
}

#[test]
fn a_restarted_node_that_names_its_previous_incarnation_replaces_it_at_once() {
    let mut c = Cluster::new(config(1), 1);
    c.start_brokers(0, &[(1, None)]);
    c.create("t", 1, 1).unwrap();
    // A different incarnation it does not name is another node with the same id.
    let mut stranger = registration(1, 2, None);
    stranger.previous_incarnation_id = Some(incarnation(1, 7));
    assert_eq!(
        c.register(1, stranger).unwrap_err().error,
        ResponseError::DuplicateBrokerRegistration
    );
    let mut successor = registration(1, 1, None);
    successor.previous_incarnation_id = Some(incarnation(1, 0));
    let old_epoch = c.epoch(1);
    let epoch = c.register(1, successor).unwrap();
    assert!(epoch > old_epoch);
    assert!(c.is_fenced(1));
    assert_eq!(c.partition("t", 0).leader, BrokerId::NONE);
    c.heartbeat(2, 1);
    assert_eq!(c.partition("t", 0).leader, BrokerId(1));
    check_invariants(&c.image);
}

#[test]
fn a_fenced_broker_may_be_replaced_at_once() {
    let mut c = Cluster::new(config(1), 1);
    c.register(0, registration(1, 0, None)).unwrap();
    assert!(c.register(1, registration(1, 1, None)).is_ok());
}

#[test]
fn a_retried_registration_gets_the_same_epoch_and_writes_nothing() {
    let mut c = Cluster::new(config(1), 1);
    let epoch = c.register(0, registration(1, 0, None)).unwrap();
    let (records, reply) = c
        .controller
        .register_broker(&c.image, 5, registration(1, 0, None))
        .unwrap();
    assert!(records.is_empty());
    assert_eq!(reply.broker_epoch, epoch);
}

#[test]
fn heartbeats_from_unknown_brokers_and_old_epochs_are_refused() {
    let mut c = Cluster::new(config(1), 1);
    c.start_brokers(0, &[(1, None)]);
    let unknown = BrokerHeartbeatRequest {
        broker_id: BrokerId(9),
        ..c.request(1)
    };
    let err = c.heartbeat_with(1, unknown).unwrap_err();
    assert_eq!(err.error, ResponseError::BrokerIdNotRegistered);
    let stale = BrokerHeartbeatRequest {
        broker_epoch: BrokerEpoch(c.epoch(1).0 - 1),
        ..c.request(1)
    };
    let err = c.heartbeat_with(1, stale).unwrap_err();
    assert_eq!(err.error, ResponseError::StaleBrokerEpoch);
}

#[test]
fn controlled_shutdown_moves_leadership_then_lets_the_broker_go() {
    let mut c = Cluster::new(config(3), 2);
    c.start_brokers(0, &[(1, None), (2, None), (3, None)]);
    c.create("t", 6, 3).unwrap();
    let shutdown = |c: &Cluster| BrokerHeartbeatRequest {
        want_shutdown: true,
        ..c.request(1)
    };

    let reply = c.heartbeat_with(10, shutdown(&c)).unwrap();
    assert!(!reply.should_shut_down && !reply.is_fenced);
    assert!(c.image.brokers[&BrokerId(1)].in_controlled_shutdown);
    assert!(!leads_any(&c, 1), "leadership moved at once");
    check_invariants(&c.image);

    // Not until the others have applied the move: they still send clients to broker 1.
    let reply = c.heartbeat_with(20, shutdown(&c)).unwrap();
    assert!(!reply.should_shut_down);
    c.heartbeat(30, 2);
    c.heartbeat(30, 3);
    let reply = c.heartbeat_with(40, shutdown(&c)).unwrap();
    assert!(reply.should_shut_down && reply.is_fenced);
    assert!(c.is_fenced(1));
    check_invariants(&c.image);
}

#[test]
fn the_last_broker_shuts_down_leaving_its_partitions_offline() {
    let mut c = Cluster::new(config(1), 2);
    c.start_brokers(0, &[(1, None)]);
    c.create("t", 2, 1).unwrap();
    let request = BrokerHeartbeatRequest {
        want_shutdown: true,
        ..c.request(1)
    };
    let reply = c.heartbeat_with(10, request).unwrap();
    assert!(reply.should_shut_down && reply.is_fenced);
    for p in 0..2 {
        assert_eq!(c.partition("t", p).leader, BrokerId::NONE);
        assert_eq!(c.partition("t", p).in_sync_replicas, ids(&[1]));
    }
    // Its next incarnation leads them again once it has caught up.
    c.register(20, registration(1, 1, None)).unwrap();
    c.heartbeat(30, 1);
    assert_eq!(c.partition("t", 0).leader, BrokerId(1));
}

#[test]
fn activation_gives_every_broker_a_fresh_session() {
    let mut c = Cluster::new(config(1), 1);
    c.start_brokers(0, &[(1, None), (2, None)]);
    c.controller = Controller::new(config(1), 2);
    c.controller.activate(&c.image, 5000);
    assert_eq!(c.controller.next_deadline(), Some(5000 + TIMEOUT_MS + 1));
    assert!(c.tick(TIMEOUT_MS + 1).is_empty());
    assert!(c.tick(5000 + TIMEOUT_MS).is_empty());
    c.tick(5000 + TIMEOUT_MS + 1);
    assert!(c.is_fenced(1) && c.is_fenced(2));
}

fn leads_any(c: &Cluster, id: i32) -> bool {
    strom_cluster::controller::leads_any(&c.image, BrokerId(id))
}
