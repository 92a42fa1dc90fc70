//! Replica placement: which brokers hold the replicas of new partitions.
//!
//! Automatic placement is Kafka's `AdminUtils.assignReplicasToBrokers`, over the *available*
//! brokers only (unfenced, not in controlled shutdown), in broker id order:
//!
//! - Without racks, partition `p`'s first replica (its preferred leader) is broker
//!   `(start_index + p) mod n`, so one call spreads leadership evenly: each broker leads
//!   ⌊P/n⌋ or ⌈P/n⌉ of the P partitions. The followers sit at distinct offsets `1..n` from the
//!   leader, shifted by `replica_shift`, and the shift grows by one every `n` partitions so
//!   followers spread too.
//! - With racks, the same walk runs over a rack-alternating list (one broker of each rack in
//!   turn), and a follower is skipped while its rack already holds a replica and another rack
//!   holds none. Each partition's replicas span min(replication factor, racks) racks. Brokers
//!   without a rack count as one more rack, the way KRaft's placer treats a missing rack.
//!
//! `start_index` and `replica_shift` are random in Kafka; the controller draws them from its
//! seeded generator ([`Placement`]) so a seed replays the same placement.
//!
//! Manual assignments are checked here too: partitions numbered consecutively, every replica
//! list the same length and without repeats, and every broker registered. A fenced broker may
//! be named, as Kafka allows: an operator may place replicas on a broker that is restarting.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;

use super::{ApiError, Decision};
use crate::ids::BrokerId;
use crate::image::MetadataImage;

/// The default limit on the replication factor: none beyond what the wire format carries.
/// Placement still refuses more replicas than there are available brokers, as Kafka does;
/// a deployment may set a lower limit in [`super::ControllerConfig`].
pub const DEFAULT_MAX_REPLICATION_FACTOR: i16 = i16::MAX;

/// The inputs to automatic placement that are not in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Where the first partition's leader sits in the broker list (Kafka's `startIndex`);
    /// reduced modulo the number of brokers.
    pub start_index: usize,
    /// How far the followers are shifted from the leader (Kafka's `nextReplicaShift`).
    pub replica_shift: usize,
    /// The largest replication factor that may be created, manual assignments included.
    pub max_replication_factor: i16,
}

impl From<usize> for Placement {
    /// A fixed start, used as the shift too (Kafka's `fixedStartIndex`), and the default
    /// limit on the replication factor.
    fn from(start: usize) -> Self {
        Placement {
            start_index: start,
            replica_shift: start,
            max_replication_factor: DEFAULT_MAX_REPLICATION_FACTOR,
        }
    }
}

/// Places `count` partitions numbered from `first_partition`, with `replication_factor`
/// replicas each, on the available brokers.
pub fn assign_replicas(
    image: &MetadataImage,
    first_partition: i32,
    count: i32,
    replication_factor: i16,
    placement: &Placement,
) -> Decision<BTreeMap<i32, Vec<BrokerId>>> {
    let brokers: Vec<(BrokerId, Option<&str>)> = image
        .available_brokers()
        .map(|b| (b.broker_id, b.rack.as_deref()))
        .collect();
    if brokers.is_empty() {
        let message = if image.brokers.is_empty() {
            "No brokers are registered."
        } else {
            "All brokers are currently fenced or in controlled shutdown."
        };
        return Err(ApiError::new(ResponseError::BrokerNotAvailable, message));
    }
    if replication_factor < 1 {
        return Err(ApiError::new(
            ResponseError::InvalidReplicationFactor,
            format!("Replication factor must be larger than 0, got {replication_factor}."),
        ));
    }
    let rf = replication_factor as usize;
    if rf > brokers.len() {
        return Err(ApiError::new(
            ResponseError::InvalidReplicationFactor,
            format!(
                "Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only {} broker(s) are registered.",
                brokers.len()
            ),
        ));
    }
    check_replication_factor(replication_factor, placement.max_replication_factor)?;
    let partitions = first_partition..first_partition.saturating_add(count.max(0));
    Ok(if brokers.iter().any(|(_, rack)| rack.is_some()) {
        rack_aware(&brokers, partitions, rf, placement)
    } else {
        let ids: Vec<BrokerId> = brokers.iter().map(|(id, _)| *id).collect();
        rack_unaware(&ids, partitions, rf, placement)
    })
}

/// Refuses a replication factor above the configured limit.
pub fn check_replication_factor(replication_factor: i16, max: i16) -> Decision<()> {
    if replication_factor > max {
        return Err(ApiError::new(
            ResponseError::InvalidReplicationFactor,
            format!(
                "Unable to replicate the partition {replication_factor} time(s): this cluster allows a replication factor of at most {max}."
            ),
        ));
    }
    Ok(())
}

/// Kafka's `replicaIndex`: the broker `j`-th follower of a partition led by `first` sits on,
/// always at an offset of 1 to n-1 from the leader, so replicas are distinct.
fn replica_index(first: usize, shift: usize, j: usize, n: usize) -> usize {
    debug_assert!(n > 1, "followers need a second broker");
    (first + 1 + (shift + j) % (n - 1)) % n
}

/// The shift for the next partition: it grows every `n` partitions. Kept modulo n-1 (which
/// `replica_index` reduces by anyway) so it stays small however many partitions there are.
fn next_shift(shift: usize, partition: i32, n: usize) -> usize {
    if n > 1 && partition > 0 && (partition as usize).is_multiple_of(n) {
        (shift + 1) % (n - 1)
    } else {
        shift
    }
}

fn rack_unaware(
    brokers: &[BrokerId],
    partitions: std::ops::Range<i32>,
    rf: usize,
    placement: &Placement,
) -> BTreeMap<i32, Vec<BrokerId>> {
    let n = brokers.len();
    let start = placement.start_index % n;
    let mut shift = placement.replica_shift % n.saturating_sub(1).max(1);
    let mut out = BTreeMap::new();
    for p in partitions {
        shift = next_shift(shift, p, n);
        let first = (p as usize + start) % n;
        let mut replicas = Vec::with_capacity(rf);
        replicas.push(brokers[first]);
        replicas.extend((0..rf - 1).map(|j| brokers[replica_index(first, shift, j, n)]));
        out.insert(p, replicas);
    }
    out
}

fn rack_aware(
    brokers: &[(BrokerId, Option<&str>)],
    partitions: std::ops::Range<i32>,
    rf: usize,
    placement: &Placement,
) -> BTreeMap<i32, Vec<BrokerId>> {
    let (arranged, rack_count) = rack_alternated(brokers);
    let n = arranged.len();
    let start = placement.start_index % n;
    let mut shift = placement.replica_shift % n.saturating_sub(1).max(1);
    let mut out = BTreeMap::new();
    for p in partitions {
        shift = next_shift(shift, p, n);
        let first = (p as usize + start) % n;
        let mut replicas = vec![arranged[first].0];
        let mut racks = vec![arranged[first].1];
        // Each pass of n-1 candidates adds at least one replica (a broker of an unused rack,
        // or any unused broker once every rack is used), so rf passes always suffice.
        for k in 0..rf * n {
            if replicas.len() == rf {
                break;
            }
            let (broker, rack) = arranged[replica_index(first, shift * rack_count, k, n)];
            let rack_ok = !racks.contains(&rack) || racks.len() == rack_count;
            if rack_ok && !replicas.contains(&broker) {
                replicas.push(broker);
                if !racks.contains(&rack) {
                    racks.push(rack);
                }
            }
        }
        debug_assert_eq!(replicas.len(), rf);
        out.insert(p, replicas);
    }
    out
}

/// Kafka's `getRackAlternatedBrokerList`: racks in name order, each contributing its next
/// broker (in id order) in turn. Also returns the number of racks.
fn rack_alternated<'a>(
    brokers: &[(BrokerId, Option<&'a str>)],
) -> (Vec<(BrokerId, Option<&'a str>)>, usize) {
    let mut by_rack: BTreeMap<Option<&str>, Vec<BrokerId>> = BTreeMap::new();
    for &(id, rack) in brokers {
        by_rack.entry(rack).or_default().push(id);
    }
    let rack_count = by_rack.len();
    let mut queues: Vec<(Option<&str>, std::vec::IntoIter<BrokerId>)> = by_rack
        .into_iter()
        .map(|(rack, ids)| (rack, ids.into_iter()))
        .collect();
    let mut out = Vec::with_capacity(brokers.len());
    while out.len() < brokers.len() {
        for (rack, ids) in &mut queues {
            if let Some(id) = ids.next() {
                out.push((id, *rack));
            }
        }
    }
    (out, rack_count)
}

/// Checks a manual assignment of partitions numbered from `first_partition`. `expected_rf`
/// is the replication factor of the topic's existing partitions, when it has some.
pub fn validate_manual_assignment(
    image: &MetadataImage,
    assignments: &BTreeMap<i32, Vec<BrokerId>>,
    first_partition: i32,
    expected_rf: Option<usize>,
    max_replication_factor: i16,
) -> Decision<BTreeMap<i32, Vec<BrokerId>>> {
    let invalid = |message: String| {
        Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            message,
        ))
    };
    let expected: Vec<i32> =
        (first_partition..first_partition + assignments.len() as i32).collect();
    let got: Vec<i32> = assignments.keys().copied().collect();
    if got != expected {
        return invalid(format!(
            "Partitions must be numbered consecutively from {first_partition}; got {got:?}"
        ));
    }
    let rf = assignments.values().next().map_or(0, Vec::len);
    for (p, replicas) in assignments {
        if replicas.is_empty() || replicas.len() != rf {
            return invalid(format!(
                "All partitions must have the same non-zero number of replicas; partition {p} has {}",
                replicas.len()
            ));
        }
        let mut seen = replicas.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != replicas.len() {
            return invalid(format!("Partition {p} lists a broker twice: {replicas:?}"));
        }
        // Registered is enough: a fenced broker may be named, as Kafka allows. Such a
        // replica starts outside the in-sync replicas (see `election::initial_state`).
        if let Some(b) = replicas.iter().find(|b| !image.brokers.contains_key(b)) {
            return invalid(format!(
                "Partition {p} is assigned to broker {b}, which is not registered."
            ));
        }
    }
    if let Some(expected) = expected_rf
        && rf != expected
    {
        return invalid(format!(
            "The manual partition assignment includes a partition with {rf} replica(s), but this is not consistent with previous partitions, which have {expected} replica(s)."
        ));
    }
    check_replication_factor(rf.min(i16::MAX as usize) as i16, max_replication_factor)?;
    Ok(assignments.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::BrokerEpoch;
    use crate::records::MetadataRecord;

    fn image(brokers: &[(i32, Option<&str>)]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for &(id, rack) in brokers {
            image.replay(&MetadataRecord::RegisterBroker {
                broker_id: BrokerId(id),
                broker_epoch: BrokerEpoch(1),
                incarnation_id: uuid::Uuid::from_u128(id as u128),
                endpoints: vec![],
                rack: rack.map(String::from),
                fenced: false,
            });
        }
        image
    }

    fn placement(start: usize, max_rf: i16) -> Placement {
        Placement {
            start_index: start,
            replica_shift: start,
            max_replication_factor: max_rf,
        }
    }

    #[test]
    fn followers_follow_kafkas_replica_shift() {
        let image = image(&[(1, None), (2, None), (3, None)]);
        let a = assign_replicas(&image, 0, 3, 2, &placement(1, 3)).unwrap();
        let ids = |v: &[i32]| v.iter().copied().map(BrokerId).collect::<Vec<_>>();
        // Leaders start at index 1; followers at offset 1 + (1 mod 2) = 2 from the leader.
        assert_eq!(a[&0], ids(&[2, 1]));
        assert_eq!(a[&1], ids(&[3, 2]));
        assert_eq!(a[&2], ids(&[1, 3]));
    }

    #[test]
    fn racks_alternate_in_rack_order() {
        let brokers = [
            (BrokerId(1), Some("a")),
            (BrokerId(2), Some("a")),
            (BrokerId(3), Some("b")),
            (BrokerId(4), Some("c")),
        ];
        let (list, racks) = rack_alternated(&brokers);
        let ids: Vec<i32> = list.iter().map(|(id, _)| id.0).collect();
        assert_eq!(ids, vec![1, 3, 4, 2]);
        assert_eq!(racks, 3);
    }

    #[test]
    fn a_replication_factor_beyond_the_limit_is_refused_even_with_enough_brokers() {
        let image = image(&[(1, None), (2, None), (3, None)]);
        let err = assign_replicas(&image, 0, 1, 3, &placement(0, 1)).unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidReplicationFactor);
        assert!(err.message.contains("at most 1"), "{}", err.message);
    }

    #[test]
    fn manual_assignments_must_name_registered_brokers_consistently() {
        let image = image(&[(1, None), (2, None)]);
        let assign = |v: &[&[i32]]| -> BTreeMap<i32, Vec<BrokerId>> {
            v.iter()
                .enumerate()
                .map(|(p, r)| (p as i32, r.iter().copied().map(BrokerId).collect()))
                .collect()
        };
        let check = |a, rf| validate_manual_assignment(&image, &a, 0, rf, 3);
        assert!(check(assign(&[&[1, 2], &[2, 1]]), None).is_ok());
        for bad in [
            assign(&[&[1, 2], &[2]]),
            assign(&[&[1, 1]]),
            assign(&[&[7]]),
            assign(&[&[]]),
        ] {
            let err = check(bad, None).unwrap_err();
            assert_eq!(err.error, ResponseError::InvalidReplicaAssignment);
        }
        let err = check(assign(&[&[1]]), Some(2)).unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidReplicaAssignment);
        let err = validate_manual_assignment(&image, &assign(&[&[1, 2]]), 0, None, 1);
        assert_eq!(
            err.unwrap_err().error,
            ResponseError::InvalidReplicationFactor
        );
    }
}
