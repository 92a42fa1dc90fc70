use super::*;
use crate::ids::{BrokerEpoch, LeaderEpoch, PartitionEpoch};
use crate::records::{ConfigResource, MetadataRecord};

fn ids(v: &[i32]) -> Vec<BrokerId> {
    v.iter().copied().map(BrokerId).collect()
}

/// An image with brokers 1-4 registered; `down` are fenced. The topic "t" has
/// `min.insync.replicas` = `min_isr` and unclean election as given.
fn image(down: &[i32], min_isr: i32, unclean: bool) -> MetadataImage {
    let mut image = MetadataImage::default();
    for id in 1..=4 {
        image.replay(&MetadataRecord::RegisterBroker {
            broker_id: BrokerId(id),
            broker_epoch: BrokerEpoch(1),
            incarnation_id: uuid::Uuid::from_u128(id as u128),
            endpoints: vec![],
            rack: None,
            fenced: down.contains(&id),
        });
    }
    let topic = ConfigResource::Topic("t".into());
    for (name, value) in [
        ("min.insync.replicas", min_isr.to_string()),
        ("unclean.leader.election.enable", unclean.to_string()),
    ] {
        image.replay(&MetadataRecord::Config {
            resource: topic.clone(),
            name: name.into(),
            value: Some(value),
        });
    }
    image
}

fn partition(replicas: &[i32], in_sync: &[i32], leader: i32) -> PartitionImage {
    PartitionImage {
        leader_epoch: LeaderEpoch(3),
        partition_epoch: PartitionEpoch(7),
        ..PartitionImage::new(ids(replicas), ids(in_sync), BrokerId(leader))
    }
}

fn change<'a>(image: &'a MetadataImage, p: &'a PartitionImage) -> PartitionChange<'a> {
    PartitionChange::new(image, &ControllerConfig::default(), "t", p)
}

#[test]
fn losing_the_leader_moves_leadership_and_shrinks_the_in_sync_replicas() {
    let image = image(&[1], 1, false);
    let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
    let next = change(&image, &p).without(BrokerId(1)).build().unwrap();
    assert_eq!(next.leader, BrokerId(2));
    assert_eq!(next.in_sync_replicas, ids(&[2, 3]));
    assert_eq!(next.leader_epoch, LeaderEpoch(4));
    assert_eq!(next.partition_epoch, PartitionEpoch(8));
    assert!(
        next.eligible_leader_replicas.is_empty(),
        "min ISR 1: no ELR"
    );
}

#[test]
fn losing_a_follower_keeps_the_leader_epoch() {
    let image = image(&[3], 1, false);
    let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
    let next = change(&image, &p).without(BrokerId(3)).build().unwrap();
    assert_eq!(
        (next.leader, next.leader_epoch),
        (BrokerId(1), LeaderEpoch(3))
    );
    assert_eq!(next.in_sync_replicas, ids(&[1, 2]));
    assert_eq!(next.partition_epoch, PartitionEpoch(8));
}

#[test]
fn the_last_in_sync_replica_stays_and_the_partition_goes_offline() {
    let image = image(&[1], 1, false);
    let p = partition(&[1], &[1], 1);
    let next = change(&image, &p).without(BrokerId(1)).build().unwrap();
    assert_eq!(next.leader, BrokerId::NONE);
    assert_eq!(next.in_sync_replicas, ids(&[1]));
    assert_eq!(next.leader_epoch, LeaderEpoch(4));
    // Already offline and still the last member: nothing to change.
    assert_eq!(change(&image, &next).without(BrokerId(1)).build(), None);
}

#[test]
fn leaving_below_min_insync_replicas_makes_a_replica_eligible() {
    let image = image(&[], 2, false);
    let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
    // Down to 2 = min: nobody is eligible, the high watermark may still advance.
    let two = change(&image, &p)
        .in_sync_replicas(ids(&[1, 2]))
        .build()
        .unwrap();
    assert!(two.eligible_leader_replicas.is_empty());
    // Below it: the leaver keeps every committed record from here on.
    let one = change(&image, &two)
        .in_sync_replicas(ids(&[1]))
        .build()
        .unwrap();
    assert_eq!(one.eligible_leader_replicas, ids(&[2]));
    // Rejoining leaves the eligible set; reaching the minimum clears it.
    let back = change(&image, &one)
        .in_sync_replicas(ids(&[1, 3]))
        .build()
        .unwrap();
    assert!(back.eligible_leader_replicas.is_empty());
    assert_eq!(
        back.leader_epoch, p.leader_epoch,
        "only the partition epoch moves"
    );
}

#[test]
fn an_eligible_replica_leads_when_no_in_sync_replica_is_available() {
    let mut image = image(&[1, 2, 3], 2, false);
    let p = PartitionImage {
        eligible_leader_replicas: ids(&[2, 3]),
        leader: BrokerId::NONE,
        ..partition(&[1, 2, 3], &[1], -1)
    };
    assert_eq!(change(&image, &p).build(), None, "nobody available");
    image.replay(&MetadataRecord::BrokerRegistrationChange {
        broker_id: BrokerId(3),
        broker_epoch: BrokerEpoch(1),
        fenced: Some(false),
        in_controlled_shutdown: None,
    });
    let next = change(&image, &p).build().unwrap();
    assert_eq!(next.leader, BrokerId(3));
    assert_eq!(next.in_sync_replicas, ids(&[3]));
    assert_eq!(
        next.eligible_leader_replicas,
        ids(&[1, 2]),
        "the old leader had every committed record too"
    );
    assert!(next.leader_recovery_state.is_recovered());
}

#[test]
fn an_unclean_election_takes_any_available_replica_and_starts_recovering() {
    let image = image(&[1], 2, true);
    let p = partition(&[1, 2, 3], &[1], -1);
    let next = change(&image, &p).build().unwrap();
    assert_eq!(next.leader, BrokerId(2));
    assert_eq!(next.in_sync_replicas, ids(&[2]));
    assert!(next.eligible_leader_replicas.is_empty());
    assert_eq!(next.leader_recovery_state, LeaderRecoveryState::Recovering);
    // Without unclean election the partition waits.
    let strict = super::tests::image(&[1], 2, false);
    assert_eq!(change(&strict, &p).build(), None);
}

#[test]
fn a_preferred_election_moves_leadership_to_the_first_replica() {
    let image = image(&[], 1, false);
    let p = partition(&[1, 2, 3], &[1, 2, 3], 2);
    assert_eq!(
        change(&image, &p).build(),
        None,
        "an online election keeps the leader"
    );
    let next = change(&image, &p)
        .election(Election::Preferred)
        .build()
        .unwrap();
    assert_eq!(
        (next.leader, next.leader_epoch),
        (BrokerId(1), LeaderEpoch(4))
    );
    let out_of_sync = partition(&[1, 2, 3], &[2, 3], 2);
    let kept = change(&image, &out_of_sync)
        .election(Election::Preferred)
        .build();
    assert_eq!(kept, None);
}

#[test]
fn a_reassignment_completes_when_the_added_replica_is_in_sync() {
    let image = image(&[], 1, false);
    let p = PartitionImage {
        adding_replicas: ids(&[4]),
        removing_replicas: ids(&[1]),
        ..partition(&[4, 2, 3, 1], &[1, 2, 3], 1)
    };
    let next = change(&image, &p)
        .in_sync_replicas(ids(&[1, 2, 3, 4]))
        .build()
        .unwrap();
    assert_eq!(next.replicas, ids(&[4, 2, 3]));
    assert_eq!(next.in_sync_replicas, ids(&[2, 3, 4]));
    assert!(!next.is_reassigning());
    assert_eq!(
        next.leader,
        BrokerId(4),
        "the removed leader hands over in target order"
    );
    assert_eq!(next.leader_epoch, LeaderEpoch(4));
}

#[test]
fn removing_a_follower_bumps_the_leader_epoch_to_fence_it() {
    let image = image(&[], 1, false);
    let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
    let next = change(&image, &p)
        .reassignment(ids(&[1, 2, 3]), vec![], ids(&[3]))
        .build()
        .unwrap();
    assert_eq!(next.replicas, ids(&[1, 2]));
    assert_eq!(next.leader, BrokerId(1));
    assert_eq!(next.leader_epoch, LeaderEpoch(4));
}

#[test]
fn the_last_eligible_replicas_are_remembered_when_lost_without_a_leader() {
    let image = image(&[1, 2, 3, 4], 2, false);
    let p = PartitionImage {
        eligible_leader_replicas: ids(&[4]),
        adding_replicas: ids(&[4]),
        ..partition(&[4, 1, 2, 3], &[1], -1)
    };
    // Reverting the reassignment drops replica 4, the last eligible one.
    let next = change(&image, &p)
        .reassignment(ids(&[1, 2, 3]), vec![], vec![])
        .build()
        .unwrap();
    assert!(next.eligible_leader_replicas.is_empty());
    assert!(next.last_known_elr.is_empty(), "no longer a replica");
    let p = PartitionImage {
        eligible_leader_replicas: ids(&[2, 3]),
        ..partition(&[1, 2, 3], &[1], -1)
    };
    // The minimum drops to 1 (one replica is enough): the eligible set is cleared.
    let lowered = super::tests::image(&[1, 2, 3, 4], 1, false);
    let next = change(&lowered, &p).build().unwrap();
    assert!(next.eligible_leader_replicas.is_empty());
    assert_eq!(next.last_known_elr, ids(&[2, 3]));
}

#[test]
fn an_unclean_election_prefers_original_replicas_to_ones_being_added() {
    let image = image(&[1], 1, true);
    let p = PartitionImage {
        adding_replicas: ids(&[4]),
        removing_replicas: ids(&[1]),
        ..partition(&[4, 2, 1], &[1], -1)
    };
    let next = change(&image, &p).build().unwrap();
    assert_eq!(next.leader, BrokerId(2));
}
