//! Simulation steps that act on partitions: a leader's AlterPartition, an operator's
//! reassignments, elections and replication configs, and unregistering a broker.

use kafka_protocol::error::ResponseError;
use strom_cluster::controller::{
    AlterOp, AlterPartitionReply, AlterPartitionRequest, ElectionType, PartitionReassignment,
    alter_configs,
};
use strom_cluster::{
    BrokerId, ConfigResource, LeaderRecoveryState, PartitionEpoch, PartitionImage,
};
use uuid::Uuid;

use crate::{BROKERS, STEADY, SimBroker};

/// A partition the step acts on.
struct Picked {
    topic: String,
    topic_id: Uuid,
    partition: i32,
    state: PartitionImage,
}

impl crate::Sim {
    fn pick_partition(&mut self, filter: impl Fn(&PartitionImage) -> bool) -> Option<Picked> {
        let candidates: Vec<Picked> = self
            .cluster
            .image
            .topic_partitions()
            .filter(|(_, _, p)| filter(p))
            .map(|(t, partition, p)| Picked {
                topic: t.name.clone(),
                topic_id: t.topic_id,
                partition,
                state: p.clone(),
            })
            .collect();
        let mut candidates = candidates;
        if candidates.is_empty() {
            return None;
        }
        let i = self.below(candidates.len() as u64) as usize;
        Some(candidates.swap_remove(i))
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> Option<T> {
        (!from.is_empty()).then(|| from[self.below(from.len() as u64) as usize])
    }

    /// A partition leader shrinks or expands its in-sync replicas (or, after an unclean
    /// election, reports its recovery), now and then against a stale partition epoch.
    pub(crate) fn alter_partition(&mut self) {
        // Partitions being reassigned first, half of the time, so reassignments complete.
        let reassigning = |p: &PartitionImage| p.has_leader() && p.is_reassigning();
        let picked = match self.chance(50) {
            true => self.pick_partition(reassigning),
            false => None,
        };
        let Some(picked) = picked.or_else(|| self.pick_partition(PartitionImage::has_leader))
        else {
            return;
        };
        let p = &picked.state;
        let mut isr = p.in_sync_replicas.clone();
        match self.below(3) {
            0 => {
                let followers: Vec<BrokerId> =
                    isr.iter().copied().filter(|&b| b != p.leader).collect();
                if let Some(b) = self.pick(&followers) {
                    isr.retain(|&x| x != b);
                }
            }
            1 => {
                // A reassignment's new replicas are the followers catching up most often.
                let adding = p.adding_replicas.iter().filter(|b| !isr.contains(b));
                let outside: Vec<BrokerId> = match self.chance(70) {
                    true if adding.clone().count() > 0 => adding.copied().collect(),
                    _ => p
                        .replicas
                        .iter()
                        .copied()
                        .filter(|b| !isr.contains(b))
                        .collect(),
                };
                isr.extend(self.pick(&outside));
            }
            _ => {}
        }
        let mut state = LeaderRecoveryState::Recovered;
        if !p.leader_recovery_state.is_recovered() && self.chance(50) {
            state = LeaderRecoveryState::Recovering;
            isr = vec![p.leader];
        }
        let stale = p.partition_epoch.0 > 0 && self.chance(10);
        let image = &self.cluster.image;
        let ineligible = isr
            .iter()
            .any(|b| !p.in_sync_replicas.contains(b) && !image.is_available(*b));
        let request = AlterPartitionRequest {
            broker_id: p.leader,
            broker_epoch: image.brokers[&p.leader].broker_epoch,
            topic_id: picked.topic_id,
            partition: picked.partition,
            leader_epoch: p.leader_epoch,
            partition_epoch: PartitionEpoch(p.partition_epoch.0 - i32::from(stale)),
            new_in_sync_replicas: isr.clone(),
            leader_recovery_state: state,
        };
        let now = self.now_ms;
        match self.cluster.controller.alter_partition(image, now, request) {
            Ok((records, reply)) => {
                assert!(
                    !stale && !ineligible,
                    "accepted {isr:?} for {:?}",
                    picked.state
                );
                let (topic_id, partition) = (picked.topic_id, picked.partition);
                self.commit_allowing(&records, &|t, q, leader| {
                    (t, q) == (topic_id, partition) && isr.contains(&leader)
                });
                let after = self.cluster.partition(&picked.topic, partition);
                assert_eq!(reply, AlterPartitionReply::from(after));
            }
            Err(e) if stale => assert_eq!(e.error, ResponseError::InvalidUpdateVersion),
            Err(e) if ineligible => assert_eq!(e.error, ResponseError::IneligibleReplica),
            Err(e) => panic!("AlterPartition {isr:?} for {:?} refused: {e}", picked.state),
        }
    }

    /// An operator starts, replaces or cancels a reassignment, sometimes naming a broker
    /// that does not exist.
    pub(crate) fn reassign(&mut self) {
        let Some(picked) = self.pick_partition(|_| true) else {
            return;
        };
        let target = (!self.chance(25)).then(|| {
            let size = 1 + self.below(3) as usize;
            let mut target = Vec::new();
            while target.len() < size {
                // One id past the simulated brokers: never registered.
                let b = BrokerId(1 + self.below(BROKERS as u64 + 1) as i32);
                if !target.contains(&b) {
                    target.push(b);
                }
            }
            target
        });
        let request = PartitionReassignment {
            topic: picked.topic.clone(),
            partition: picked.partition,
            replicas: target.clone(),
        };
        let (records, results) = self
            .cluster
            .controller
            .alter_partition_reassignments(&self.cluster.image, &[request]);
        match &results[0] {
            Ok(()) => self.commit(&records),
            Err(e) => {
                assert!(records.is_empty());
                match e.error {
                    ResponseError::NoReassignmentInProgress => {
                        assert!(target.is_none() && !picked.state.is_reassigning())
                    }
                    ResponseError::InvalidReplicaAssignment => {}
                    _ => panic!("reassignment of {:?} to {target:?}: {e}", picked.state),
                }
            }
        }
    }

    /// An operator asks for a preferred or unclean election of some partitions, or of all.
    pub(crate) fn elect(&mut self) {
        let election_type = if self.chance(50) {
            ElectionType::Preferred
        } else {
            ElectionType::Unclean
        };
        let partitions = (!self.chance(30)).then(|| {
            let count = 1 + self.below(3);
            (0..count)
                .filter_map(|_| self.pick_partition(|_| true))
                .map(|p| (p.topic_id, p.partition))
                .collect::<Vec<_>>()
        });
        let (records, results) = self.cluster.controller.elect_leaders(
            &self.cluster.image,
            election_type,
            partitions.clone(),
        );
        for r in &results {
            let Err(e) = &r.result else { continue };
            let expected = match election_type {
                ElectionType::Preferred => ResponseError::PreferredLeaderNotAvailable,
                ElectionType::Unclean => ResponseError::EligibleLeadersNotAvailable,
            };
            assert!(
                e.error == expected || e.error == ResponseError::ElectionNotNeeded,
                "{election_type:?} election: {e}"
            );
        }
        let unclean = election_type == ElectionType::Unclean;
        self.commit_allowing(&records, &|t, q, _| {
            unclean && partitions.as_ref().is_none_or(|ps| ps.contains(&(t, q)))
        });
    }

    /// An operator changes `min.insync.replicas` or `unclean.leader.election.enable` of a
    /// topic or of the whole cluster.
    pub(crate) fn change_replication_configs(&mut self) {
        let topics: Vec<String> = self.cluster.image.topics.keys().cloned().collect();
        let resource = match topics.is_empty() || self.chance(20) {
            true => ConfigResource::Broker(String::new()),
            false => {
                ConfigResource::Topic(topics[self.below(topics.len() as u64) as usize].clone())
            }
        };
        let (name, value) = if self.chance(60) {
            ("min.insync.replicas", (1 + self.below(3)).to_string())
        } else {
            (
                "unclean.leader.election.enable",
                self.chance(25).to_string(),
            )
        };
        let changes = [(name.to_string(), AlterOp::Set(value))];
        let records = alter_configs(&self.cluster.image, &resource, &changes, true)
            .unwrap_or_else(|e| panic!("{name} on {resource:?}: {e}"));
        self.commit(&records);
    }

    /// An operator unregisters broker `id`: refused while it holds replicas.
    pub(crate) fn unregister(&mut self, id: i32) {
        assert!(!STEADY.contains(&id));
        let image = &self.cluster.image;
        let registered = image.brokers.contains_key(&BrokerId(id));
        let hosts = image
            .partitions()
            .any(|(_, _, p)| p.replicas.contains(&BrokerId(id)));
        match self
            .cluster
            .controller
            .unregister_broker(image, BrokerId(id))
        {
            Ok(records) => {
                assert!(registered && !hosts);
                self.commit(&records);
                let b = self.brokers.get_mut(&id).unwrap();
                *b = SimBroker {
                    generation: b.generation,
                    ..SimBroker::default()
                };
            }
            Err(e) if !registered => assert_eq!(e.error, ResponseError::BrokerIdNotRegistered),
            Err(e) => {
                assert!(hosts, "unregistering {id}: {e}");
                assert_eq!(e.error, ResponseError::InvalidRequest);
            }
        }
    }
}
