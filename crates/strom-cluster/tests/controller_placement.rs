//! Automatic replica placement through the controller: leadership spreads evenly, replicas
//! are distinct available brokers, racks are spread, and the seed decides everything.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use strom_cluster::controller::{BrokerHeartbeatRequest, CreateTopic, Decision};
use strom_cluster::{BrokerId, MetadataRecord};
use support::*;

/// The replicas of each partition of a topic the controller would create (not applied).
fn place(
    c: &mut Cluster,
    partitions: i32,
    rf: i16,
) -> Decision<BTreeMap<i32, (BrokerId, Vec<BrokerId>)>> {
    let topic = CreateTopic {
        name: "t".into(),
        num_partitions: partitions,
        replication_factor: rf,
        ..Default::default()
    };
    let (records, mut results) = c
        .controller
        .create_topics(&c.image, &[topic], DEFAULTS, false);
    results.remove(0)?;
    Ok(records
        .into_iter()
        .filter_map(|r| match r {
            MetadataRecord::Partition {
                partition,
                replicas,
                leader,
                ..
            } => Some((partition, (leader, replicas))),
            _ => None,
        })
        .collect())
}

#[test]
fn six_partitions_on_three_brokers_give_each_two_leaders() {
    for seed in 0..20 {
        let mut c = Cluster::new(config(3), seed);
        c.start_brokers(0, &[(1, None), (2, None), (3, None)]);
        c.create("t", 6, 1).unwrap();
        let counts = leader_counts(&c.image, "t");
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    }
}

#[test]
fn placement_is_balanced_distinct_and_uses_only_available_brokers() {
    for seed in 0..4 {
        for brokers in 1..=8 {
            let mut c = Cluster::new(config(3), seed * 100 + brokers as u64);
            let available: Vec<(i32, Option<&str>)> = (1..=brokers).map(|id| (id, None)).collect();
            c.start_brokers(0, &available);
            // A fenced broker and one in controlled shutdown must receive nothing.
            c.register(1, registration(100, 0, None)).unwrap();
            c.start_brokers(1, &[(101, None)]);
            let leaving = BrokerHeartbeatRequest {
                want_shutdown: true,
                ..c.request(101)
            };
            c.heartbeat_with(2, leaving).unwrap();
            assert!(c.image.brokers[&BrokerId(101)].in_controlled_shutdown);

            for partitions in 1..=50 {
                for rf in 1..=brokers.min(3) as i16 {
                    let placed = place(&mut c, partitions, rf).unwrap();
                    assert_eq!(placed.len(), partitions as usize);
                    let mut leaders: BTreeMap<BrokerId, usize> =
                        ids(&(1..=brokers).collect::<Vec<_>>())
                            .into_iter()
                            .map(|b| (b, 0))
                            .collect();
                    for (leader, replicas) in placed.values() {
                        assert_eq!(replicas.len(), rf as usize);
                        assert_eq!(leader, &replicas[0], "the preferred replica leads");
                        let distinct: BTreeSet<_> = replicas.iter().collect();
                        assert_eq!(distinct.len(), replicas.len(), "{replicas:?}");
                        for b in replicas {
                            assert!(c.image.is_available(*b), "placed on {b}");
                        }
                        *leaders.get_mut(leader).unwrap() += 1;
                    }
                    let most = leaders.values().max().unwrap();
                    let least = leaders.values().min().unwrap();
                    assert!(
                        most - least <= 1,
                        "seed {seed}, {brokers} brokers, {partitions} partitions, rf {rf}: {leaders:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn replicas_span_as_many_racks_as_they_can() {
    let racks = [
        (1, Some("a")),
        (2, Some("a")),
        (3, Some("b")),
        (4, Some("b")),
        (5, Some("c")),
        (6, Some("c")),
    ];
    for seed in 0..20 {
        let mut c = Cluster::new(config(3), seed);
        c.start_brokers(0, &racks);
        let rack_of = |b: &BrokerId| racks.iter().find(|(id, _)| *id == b.0).unwrap().1;
        for rf in 1..=3 {
            let placed = place(&mut c, 12, rf).unwrap();
            let mut leaders = BTreeMap::new();
            for (leader, replicas) in placed.values() {
                let spanned: BTreeSet<_> = replicas.iter().map(rack_of).collect();
                assert_eq!(spanned.len(), rf as usize, "seed {seed}: {replicas:?}");
                *leaders.entry(*leader).or_insert(0) += 1;
            }
            assert!(leaders.values().all(|&n| n == 2), "{leaders:?}");
        }
    }
}

#[test]
fn brokers_without_a_rack_count_as_one_more_rack() {
    let mut c = Cluster::new(config(3), 9);
    c.start_brokers(0, &[(1, Some("a")), (2, Some("b")), (3, None), (4, None)]);
    for (_, replicas) in place(&mut c, 8, 3).unwrap().values() {
        let without_rack = replicas.iter().filter(|b| b.0 >= 3).count();
        assert_eq!(without_rack, 1, "{replicas:?}");
    }
}

#[test]
fn the_same_seed_gives_the_same_placement() {
    let run = |seed| {
        let mut c = Cluster::new(config(3), seed);
        c.start_brokers(0, &[(1, None), (2, None), (3, None), (4, None), (5, None)]);
        place(&mut c, 10, 3).unwrap()
    };
    assert_eq!(run(42), run(42));
    assert!((0..10).any(|seed| run(seed) != run(42)), "the seed matters");
}

#[test]
fn replication_beyond_the_configured_limit_is_refused() {
    let mut c = Cluster::new(config(1), 1);
    c.start_brokers(0, &[(1, None), (2, None), (3, None)]);
    let err = place(&mut c, 1, 3).unwrap_err();
    assert_eq!(err.error, ResponseError::InvalidReplicationFactor);
    assert!(err.message.contains("at most 1"), "{}", err.message);

    let mut c = Cluster::new(config(3), 1);
    c.start_brokers(0, &[(1, None), (2, None)]);
    let err = place(&mut c, 1, 3).unwrap_err();
    assert_eq!(err.error, ResponseError::InvalidReplicationFactor);
    assert!(err.message.contains("only 2 broker(s) are registered"));
}

#[test]
fn by_default_the_replication_factor_is_bounded_only_by_the_brokers() {
    let mut c = Cluster::new(strom_cluster::controller::ControllerConfig::default(), 1);
    c.start_brokers(0, &[(1, None), (2, None), (3, None)]);
    let placed = place(&mut c, 3, 3).unwrap();
    assert!(placed.values().all(|(_, replicas)| replicas.len() == 3));
}

#[test]
fn without_an_available_broker_nothing_is_placed() {
    let mut c = Cluster::new(config(1), 1);
    let err = place(&mut c, 1, 1).unwrap_err();
    assert_eq!(err.error, ResponseError::BrokerNotAvailable);
    c.register(0, registration(1, 0, None)).unwrap();
    let err = place(&mut c, 1, 1).unwrap_err();
    assert_eq!(err.error, ResponseError::BrokerNotAvailable);
}
