use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

const LAG_MS: i64 = 10_000;

fn b(ids: &[i32]) -> Vec<BrokerId> {
    ids.iter().map(|&i| BrokerId(i)).collect()
}

fn assignment(replicas: &[i32], isr: &[i32], partition_epoch: i32) -> PartitionAssignment {
    PartitionAssignment {
        replicas: b(replicas),
        in_sync_replicas: b(isr),
        leader_epoch: LeaderEpoch(3),
        partition_epoch: PartitionEpoch(partition_epoch),
    }
}

fn config(min_isr: usize) -> ReplicaConfig {
    ReplicaConfig {
        replica_lag_time_max_ms: LAG_MS,
        min_insync_replicas: min_isr,
    }
}

/// Leader 1 of replicas 1,2,3, all in sync, log ending at `end`.
fn leader(end: i64, min_isr: usize) -> LeaderReplicas {
    LeaderReplicas::become_leader(
        BrokerId(1),
        assignment(&[1, 2, 3], &[1, 2, 3], 0),
        config(min_isr),
        end,
        0,
        0,
    )
}

#[test]
fn high_watermark_is_the_smallest_log_end_offset_of_the_isr() {
    let mut l = leader(100, 1);
    assert_eq!(l.high_watermark(), 0, "no follower has fetched yet");
    l.on_follower_fetch(BrokerId(2), 100, 100, 1);
    assert_eq!(l.high_watermark(), 0, "follower 3 is in sync and unknown");
    l.on_follower_fetch(BrokerId(3), 60, 100, 1);
    assert_eq!(l.high_watermark(), 60);
    l.on_follower_fetch(BrokerId(3), 100, 100, 2);
    assert_eq!(l.high_watermark(), 100);
    l.on_local_append(150);
    assert_eq!(
        l.high_watermark(),
        100,
        "followers have not fetched the new records"
    );
    l.on_follower_fetch(BrokerId(2), 150, 150, 3);
    l.on_follower_fetch(BrokerId(3), 120, 150, 3);
    assert_eq!(l.high_watermark(), 120);
}

#[test]
fn the_high_watermark_never_goes_back() {
    let mut l = leader(100, 1);
    l.on_follower_fetch(BrokerId(2), 100, 100, 1);
    l.on_follower_fetch(BrokerId(3), 100, 100, 1);
    assert_eq!(l.high_watermark(), 100);
    // A follower that truncated and refetches from lower does not pull it back.
    l.on_follower_fetch(BrokerId(3), 80, 100, 2);
    assert_eq!(l.high_watermark(), 100);
}

#[test]
fn a_follower_is_removed_after_the_lag_time_not_before() {
    let mut l = leader(100, 1);
    l.on_follower_fetch(BrokerId(2), 100, 100, 0);
    l.on_follower_fetch(BrokerId(3), 100, 100, 0);
    l.on_local_append(200);
    // Follower 2 keeps up; follower 3 stops fetching.
    l.on_follower_fetch(BrokerId(2), 200, 200, 5_000);
    assert_eq!(
        l.poll(200, LAG_MS),
        None,
        "exactly the lag time is still in sync"
    );
    l.on_follower_fetch(BrokerId(2), 200, 200, LAG_MS);
    let proposal = l.poll(200, LAG_MS + 1).expect("follower 3 out of sync");
    assert_eq!(proposal.new_in_sync_replicas, b(&[1, 2]));
    assert_eq!(proposal.partition_epoch, PartitionEpoch(0));
    assert_eq!(l.poll(200, LAG_MS + 2), None, "one proposal at a time");
    // Until the shrink is committed, follower 3 still holds the high watermark back.
    assert_eq!(l.high_watermark(), 100);
    l.update(assignment(&[1, 2, 3], &[1, 2], 1), 200, LAG_MS + 3);
    assert_eq!(l.pending(), None);
    assert_eq!(l.high_watermark(), 200);
}

#[test]
fn a_follower_that_fetches_slowly_but_reaches_the_previous_end_stays_in_sync() {
    let mut l = leader(100, 1);
    // Every fetch reaches the leader's end as of the previous fetch (Kafka's rule).
    let mut end = 100;
    for t in 0..20 {
        let now = t * (LAG_MS / 4);
        let previous_end = end;
        end += 10;
        l.on_local_append(end);
        l.on_follower_fetch(BrokerId(2), end, end, now);
        l.on_follower_fetch(BrokerId(3), previous_end, end, now);
        assert_eq!(l.poll(end, now), None, "at t={now}");
    }
}

#[test]
fn a_caught_up_follower_is_proposed_for_the_isr() {
    let mut l = LeaderReplicas::become_leader(
        BrokerId(1),
        assignment(&[1, 2, 3], &[1, 2], 4),
        config(1),
        100,
        90,
        0,
    );
    l.on_follower_fetch(BrokerId(2), 100, 100, 1);
    assert_eq!(l.high_watermark(), 100);
    assert_eq!(
        l.on_follower_fetch(BrokerId(3), 50, 100, 2),
        None,
        "below the high watermark"
    );
    let proposal = l
        .on_follower_fetch(BrokerId(3), 100, 100, 3)
        .expect("caught up");
    assert_eq!(proposal.new_in_sync_replicas, b(&[1, 2, 3]));
    // While being added it counts for the high watermark (maximal ISR).
    l.on_local_append(120);
    l.on_follower_fetch(BrokerId(2), 120, 120, 4);
    assert_eq!(l.high_watermark(), 100);
    l.on_follower_fetch(BrokerId(3), 120, 120, 5);
    assert_eq!(l.high_watermark(), 120);
}

#[test]
fn a_follower_joins_only_past_the_start_of_the_leader_epoch() {
    // Became leader with its log at 100 and high watermark 40.
    let mut l = LeaderReplicas::become_leader(
        BrokerId(1),
        assignment(&[1, 2], &[1], 0),
        config(1),
        100,
        40,
        0,
    );
    assert_eq!(
        l.on_follower_fetch(BrokerId(2), 60, 100, 1),
        None,
        "past the high watermark, before the epoch start"
    );
    assert!(l.on_follower_fetch(BrokerId(2), 100, 100, 2).is_some());
}

#[test]
fn a_refused_proposal_is_made_again_later() {
    let mut l = leader(100, 1);
    l.on_follower_fetch(BrokerId(2), 100, 100, 0);
    l.on_follower_fetch(BrokerId(3), 100, 100, 0);
    l.on_follower_fetch(BrokerId(2), 100, 100, LAG_MS + 5);
    l.on_local_append(101);
    assert!(l.poll(101, LAG_MS + 10).is_some());
    l.isr_change_failed(LAG_MS + 10);
    assert!(
        l.poll(101, LAG_MS + 11).is_none(),
        "backs off after a refusal"
    );
    let later = LAG_MS + 10 + ISR_RETRY_BACKOFF_MS;
    assert!(l.poll(101, later).is_some());
}

#[test]
fn a_refused_expansion_is_not_proposed_on_every_fetch() {
    let mut l = leader(100, 1);
    l.on_follower_fetch(BrokerId(2), 100, 100, 0);
    l.on_follower_fetch(BrokerId(3), 100, 100, 0);
    l.on_follower_fetch(BrokerId(2), 100, 100, LAG_MS + 5);
    l.on_local_append(101);
    assert!(l.poll(101, LAG_MS + 10).is_some(), "3 is shrunk out");
    let mut a = l.assignment().clone();
    a.in_sync_replicas.retain(|r| *r != BrokerId(3));
    a.partition_epoch = PartitionEpoch(a.partition_epoch.0 + 1);
    l.update(a, 101, LAG_MS + 10);
    let now = LAG_MS + 20;
    assert!(l.on_follower_fetch(BrokerId(3), 101, 101, now).is_some());
    l.isr_change_failed(now);
    assert!(
        l.on_follower_fetch(BrokerId(3), 101, 101, now + 1)
            .is_none()
    );
    let later = now + ISR_RETRY_BACKOFF_MS;
    assert!(l.on_follower_fetch(BrokerId(3), 101, 101, later).is_some());
}

#[test]
fn the_high_watermark_stops_below_min_isr() {
    let mut l = LeaderReplicas::become_leader(
        BrokerId(1),
        assignment(&[1, 2, 3], &[1], 7),
        config(2),
        100,
        50,
        0,
    );
    l.on_local_append(150);
    assert_eq!(
        l.high_watermark(),
        50,
        "ISR {{1}} is below min.insync.replicas=2"
    );
    assert!(!l.has_min_isr());
    // Follower 2 catches up and is added: the high watermark moves once the ISR is committed.
    l.on_follower_fetch(BrokerId(2), 150, 150, 1)
        .expect("proposed");
    assert_eq!(l.high_watermark(), 50);
    l.update(assignment(&[1, 2, 3], &[1, 2], 8), 150, 2);
    assert_eq!(l.high_watermark(), 150);
    assert!(l.has_min_isr());
}

#[test]
fn min_isr_above_the_replica_count_does_not_stop_the_high_watermark() {
    let mut l =
        LeaderReplicas::become_leader(BrokerId(1), assignment(&[1], &[1], 0), config(2), 10, 0, 0);
    l.on_local_append(20);
    assert_eq!(l.high_watermark(), 20);
    assert!(!l.has_min_isr(), "acks=all still needs two replicas");
}

#[test]
fn a_stale_image_is_ignored_and_new_replicas_are_tracked() {
    let mut l = leader(100, 1);
    l.update(assignment(&[1, 2, 3, 4], &[1, 2, 3], 2), 100, 5);
    assert!(l.follower(BrokerId(4)).is_some());
    l.update(assignment(&[1, 2], &[1, 2], 1), 100, 6);
    assert!(
        l.follower(BrokerId(4)).is_some(),
        "an older partition epoch changes nothing"
    );
    l.update(assignment(&[1, 2], &[1, 2], 3), 100, 7);
    assert!(l.follower(BrokerId(3)).is_none());
}

/// Random schedules of fetches, appends, polls and committed ISR changes: the high watermark
/// never passes an in-sync replica's log end offset or the leader's, never goes back, and
/// proposals always keep the leader.
#[test]
fn randomized_schedules_keep_the_high_watermark_safe() {
    let seed: u64 = std::env::var("STROM_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("replica state seed: {seed} (replay with STROM_TEST_SEED={seed})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..200 {
        let min_isr = rng.random_range(1..=3);
        let mut l = leader(0, min_isr);
        let mut end = 0i64;
        let mut follower_end = [0i64; 4];
        let mut now = 0i64;
        let mut epoch = 0;
        let mut hw = l.high_watermark();
        for _ in 0..300 {
            now += rng.random_range(0..3_000);
            match rng.random_range(0..4) {
                0 => {
                    end += rng.random_range(1..50);
                    l.on_local_append(end);
                }
                1 => {
                    let f = rng.random_range(2..=3);
                    follower_end[f] = rng.random_range(follower_end[f]..=end);
                    if let Some(p) =
                        l.on_follower_fetch(BrokerId(f as i32), follower_end[f], end, now)
                    {
                        assert!(p.new_in_sync_replicas.contains(&BrokerId(1)));
                    }
                }
                2 => {
                    if let Some(p) = l.poll(end, now) {
                        assert!(p.new_in_sync_replicas.contains(&BrokerId(1)));
                    }
                }
                _ => {
                    // The controller commits (or refuses) the pending proposal.
                    if let Some(p) = l.pending().cloned() {
                        if rng.random_bool(0.7) {
                            epoch += 1;
                            let mut a = l.assignment().clone();
                            a.in_sync_replicas = p.new_in_sync_replicas;
                            a.partition_epoch = PartitionEpoch(epoch);
                            l.update(a, end, now);
                        } else {
                            l.isr_change_failed(now);
                        }
                    }
                }
            }
            let h = l.high_watermark();
            assert!(h >= hw, "seed {seed}: the high watermark went back");
            assert!(h <= end, "seed {seed}: past the leader's log end");
            if h > hw {
                for r in l.in_sync_replicas() {
                    if r.0 != 1 {
                        assert!(
                            follower_end[r.0 as usize] >= h,
                            "seed {seed}: past in-sync replica {r}"
                        );
                    }
                }
                assert!(
                    l.in_sync_replicas().len() >= l.effective_min_isr(),
                    "seed {seed}: advanced below min ISR"
                );
            }
            hw = h;
        }
    }
}
