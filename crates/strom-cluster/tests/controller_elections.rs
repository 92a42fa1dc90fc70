//! ElectLeaders (preferred and unclean) and the automatic preferred leader rebalance, with the
//! clock passed in.

mod support;

use kafka_protocol::error::ResponseError;
use strom_cluster::BrokerId;
use strom_cluster::controller::{ElectionResult, ElectionType};
use support::*;
use uuid::Uuid;

/// Brokers 1-3 up, topic "t" with one partition on [1, 2, 3]; broker 1 was fenced and came
/// back, so 2 leads and 1 is out of sync.
fn leadership_moved_away(config: strom_cluster::controller::ControllerConfig) -> Cluster {
    let mut c = Cluster::new(config, 3);
    c.start_brokers(0, &[(1, None), (2, None), (3, None)]);
    c.create_assigned("t", &[&[1, 2, 3]]).unwrap();
    c.fence(1, 1);
    c.heartbeat(2, 1);
    let p = c.partition("t", 0);
    assert_eq!(
        (p.leader, p.in_sync_replicas.clone()),
        (BrokerId(2), ids(&[2, 3]))
    );
    c
}

fn error_of(result: &ElectionResult) -> Option<ResponseError> {
    result.result.as_ref().err().map(|e| e.error)
}

#[test]
fn a_preferred_election_waits_for_the_preferred_replica_to_be_in_sync() {
    let mut c = leadership_moved_away(config(3));
    let t = c.topic_id("t");
    let results = c.elect(ElectionType::Preferred, Some(vec![(t, 0)]));
    assert_eq!(
        error_of(&results[0]),
        Some(ResponseError::PreferredLeaderNotAvailable)
    );
    assert_eq!(c.partition("t", 0).leader, BrokerId(2));

    c.alter_partition("t", 0, &[2, 3, 1]).unwrap();
    let before = c.partition("t", 0).leader_epoch;
    let results = c.elect(ElectionType::Preferred, Some(vec![(t, 0)]));
    assert_eq!(error_of(&results[0]), None);
    assert_eq!(c.partition("t", 0).leader, BrokerId(1));
    assert_eq!(c.partition("t", 0).leader_epoch, before.next());

    let results = c.elect(ElectionType::Preferred, Some(vec![(t, 0), (t, 7)]));
    assert_eq!(
        error_of(&results[0]),
        Some(ResponseError::ElectionNotNeeded)
    );
    assert_eq!(
        error_of(&results[1]),
        Some(ResponseError::UnknownTopicOrPartition)
    );
    check_invariants(&c.image);
}

#[test]
fn electing_all_partitions_reports_only_those_that_needed_it() {
    let mut c = leadership_moved_away(config(3));
    c.create_assigned("u", &[&[2, 3], &[3, 2]]).unwrap();
    c.alter_partition("t", 0, &[2, 3, 1]).unwrap();
    let results = c.elect(ElectionType::Preferred, None);
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].topic_id, c.topic_id("t"));
    assert_eq!(error_of(&results[0]), None);
}

#[test]
fn an_unclean_election_is_only_for_partitions_without_a_leader() {
    let mut c = leadership_moved_away(config(3));
    let t = c.topic_id("t");
    let results = c.elect(ElectionType::Unclean, Some(vec![(t, 0)]));
    assert_eq!(
        error_of(&results[0]),
        Some(ResponseError::ElectionNotNeeded)
    );

    // Only 2 is in sync; it stops, and 3 with it: nobody at all is available.
    c.alter_partition("t", 0, &[2]).unwrap();
    c.fence(3, 3);
    c.fence(3, 2);
    c.fence(3, 1);
    assert_eq!(c.partition("t", 0).leader, BrokerId::NONE);
    let results = c.elect(ElectionType::Unclean, Some(vec![(t, 0)]));
    assert_eq!(
        error_of(&results[0]),
        Some(ResponseError::EligibleLeadersNotAvailable)
    );

    // 3 comes back; it is neither in sync nor eligible, and the topic does not allow unclean
    // elections, but the operator asks for one.
    c.heartbeat(4, 3);
    assert_eq!(c.partition("t", 0).leader, BrokerId::NONE);
    let results = c.elect(ElectionType::Unclean, Some(vec![(t, 0)]));
    assert_eq!(error_of(&results[0]), None);
    let p = c.partition("t", 0);
    assert_eq!(
        (p.leader, p.in_sync_replicas.clone()),
        (BrokerId(3), ids(&[3]))
    );
    check_invariants(&c.image);
}

#[test]
fn elections_for_unknown_topics_are_refused_per_partition() {
    let mut c = leadership_moved_away(config(3));
    let results = c.elect(ElectionType::Unclean, Some(vec![(Uuid::from_u128(5), 0)]));
    assert_eq!(
        error_of(&results[0]),
        Some(ResponseError::UnknownTopicOrPartition)
    );
}

#[test]
fn the_automatic_rebalance_restores_preferred_leaders_every_interval() {
    let mut c = leadership_moved_away(rebalancing_config());
    c.controller.activate(&c.image, 0);
    c.alter_partition("t", 0, &[2, 3, 1]).unwrap();
    assert_eq!(
        c.controller.next_deadline(),
        Some(TIMEOUT_MS + 1),
        "sessions expire before the first check"
    );
    let mut now = 0;
    while now < REBALANCE_INTERVAL_MS - 1 {
        now += 1000;
        for id in 1..=3 {
            c.heartbeat(now.min(REBALANCE_INTERVAL_MS - 1), id);
        }
        assert!(c.tick(now.min(REBALANCE_INTERVAL_MS - 1)).is_empty());
    }
    assert_eq!(c.partition("t", 0).leader, BrokerId(2));
    assert_eq!(c.controller.next_deadline(), Some(REBALANCE_INTERVAL_MS));

    let records = c.tick(REBALANCE_INTERVAL_MS);
    assert_eq!(records.len(), 1);
    assert_eq!(c.partition("t", 0).leader, BrokerId(1));
    // The next check is one interval later (after the sessions, which renew on heartbeats).
    for id in 1..=3 {
        c.heartbeat(2 * REBALANCE_INTERVAL_MS - 1, id);
    }
    assert_eq!(
        c.controller.next_deadline(),
        Some(2 * REBALANCE_INTERVAL_MS)
    );
    check_invariants(&c.image);
}

#[test]
fn without_the_automatic_rebalance_leadership_stays_where_it_is() {
    let mut c = leadership_moved_away(config(3));
    c.alter_partition("t", 0, &[2, 3, 1]).unwrap();
    for id in 1..=3 {
        c.heartbeat(REBALANCE_INTERVAL_MS, id);
    }
    assert!(c.tick(REBALANCE_INTERVAL_MS).is_empty());
    assert_eq!(c.partition("t", 0).leader, BrokerId(2));
    assert_eq!(
        c.controller.next_deadline(),
        Some(REBALANCE_INTERVAL_MS + TIMEOUT_MS + 1),
        "only sessions"
    );
}

#[test]
fn the_leadership_check_elects_offline_partitions_once_unclean_election_is_allowed() {
    let mut c = Cluster::new(rebalancing_config(), 3);
    c.start_brokers(0, &[(1, None), (2, None)]);
    c.create_assigned("t", &[&[1, 2]]).unwrap();
    c.alter_partition("t", 0, &[1]).unwrap();
    c.fence(1, 1);
    assert_eq!(c.partition("t", 0).leader, BrokerId::NONE);
    c.set_topic_config("t", "unclean.leader.election.enable", "true");
    assert_eq!(
        c.partition("t", 0).leader,
        BrokerId::NONE,
        "not until the check"
    );
    c.heartbeat(REBALANCE_INTERVAL_MS - 1, 2);
    c.tick(REBALANCE_INTERVAL_MS);
    assert_eq!(c.partition("t", 0).leader, BrokerId(2));
    check_invariants(&c.image);
}
