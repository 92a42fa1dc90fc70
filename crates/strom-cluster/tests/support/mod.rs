//! A test shell around the controller: it plays the part of the metadata log, appending each
//! decision's records as one entry at the next index and replaying them into the image, and
//! it checks the metadata invariants the controller must keep.

#![allow(dead_code)]

use std::collections::BTreeMap;

use strom_cluster::controller::{
    AlterOp, AlterPartitionReply, AlterPartitionRequest, BrokerHeartbeatReply,
    BrokerHeartbeatRequest, BrokerRegistrationRequest, Controller, ControllerConfig,
    CreateDefaults, CreateTopic, CreatedTopic, Decision, ElectionResult, ElectionType,
    PartitionReassignment, alter_configs,
};
use strom_cluster::{
    BrokerEndpoint, BrokerEpoch, BrokerId, ConfigResource, LeaderEpoch, LeaderRecoveryState,
    MetadataImage, MetadataOffset, MetadataRecord, PartitionEpoch, PartitionImage,
};
use uuid::Uuid;

pub const TIMEOUT_MS: i64 = 9000;

pub const DEFAULTS: CreateDefaults = CreateDefaults {
    num_partitions: 1,
    replication_factor: 1,
};

/// The controller's settings for most tests: the automatic leader rebalance is off so that
/// timelines about sessions see only sessions ([`rebalancing_config`] turns it on).
pub fn config(max_replication_factor: i16) -> ControllerConfig {
    ControllerConfig {
        broker_session_timeout_ms: TIMEOUT_MS,
        max_replication_factor,
        auto_leader_rebalance_enable: false,
        ..ControllerConfig::default()
    }
}

pub const REBALANCE_INTERVAL_MS: i64 = 60_000;

pub fn rebalancing_config() -> ControllerConfig {
    ControllerConfig {
        auto_leader_rebalance_enable: true,
        leader_imbalance_check_interval_ms: REBALANCE_INTERVAL_MS,
        ..config(i16::MAX)
    }
}

pub fn ids(v: &[i32]) -> Vec<BrokerId> {
    v.iter().copied().map(BrokerId).collect()
}

pub fn incarnation(id: i32, generation: u32) -> Uuid {
    Uuid::from_u128(((id as u128) << 32) | generation as u128)
}

pub fn registration(id: i32, generation: u32, rack: Option<&str>) -> BrokerRegistrationRequest {
    BrokerRegistrationRequest {
        broker_id: BrokerId(id),
        incarnation_id: incarnation(id, generation),
        endpoints: vec![BrokerEndpoint {
            name: "PLAINTEXT".into(),
            host: format!("broker-{id}"),
            port: 9092,
        }],
        rack: rack.map(String::from),
        previous_incarnation_id: None,
    }
}

pub struct Cluster {
    pub controller: Controller,
    pub image: MetadataImage,
}

impl Cluster {
    pub fn new(config: ControllerConfig, seed: u64) -> Self {
        let mut controller = Controller::new(config, seed);
        let image = MetadataImage::default();
        controller.activate(&image, 0);
        Cluster { controller, image }
    }

    /// Appends `records` as one entry of the metadata log, as the Raft shell would.
    pub fn apply(&mut self, records: &[MetadataRecord]) {
        if records.is_empty() {
            return;
        }
        let index = self.image.applied_index() + 1;
        self.image.apply(MetadataOffset { term: 1, index }, records);
    }

    pub fn epoch(&self, id: i32) -> BrokerEpoch {
        self.image.brokers[&BrokerId(id)].broker_epoch
    }

    pub fn register(
        &mut self,
        now_ms: i64,
        request: BrokerRegistrationRequest,
    ) -> Decision<BrokerEpoch> {
        let (records, reply) = self
            .controller
            .register_broker(&self.image, now_ms, request)?;
        self.apply(&records);
        Ok(reply.broker_epoch)
    }

    pub fn heartbeat_with(
        &mut self,
        now_ms: i64,
        request: BrokerHeartbeatRequest,
    ) -> Decision<BrokerHeartbeatReply> {
        let (records, reply) = self.controller.heartbeat(&self.image, now_ms, request)?;
        self.apply(&records);
        Ok(reply)
    }

    /// A heartbeat from a broker that has applied the whole log.
    pub fn heartbeat(&mut self, now_ms: i64, id: i32) -> BrokerHeartbeatReply {
        let request = self.request(id);
        self.heartbeat_with(now_ms, request).unwrap()
    }

    pub fn request(&self, id: i32) -> BrokerHeartbeatRequest {
        BrokerHeartbeatRequest {
            broker_id: BrokerId(id),
            broker_epoch: self.epoch(id),
            metadata_offset: self.image.applied_index(),
            want_fence: false,
            want_shutdown: false,
        }
    }

    /// Registers and unfences brokers `ids` (with racks, if given) at `now_ms`.
    pub fn start_brokers(&mut self, now_ms: i64, brokers: &[(i32, Option<&str>)]) {
        for &(id, rack) in brokers {
            self.register(now_ms, registration(id, 0, rack)).unwrap();
        }
        for &(id, _) in brokers {
            assert!(!self.heartbeat(now_ms, id).is_fenced);
        }
    }

    pub fn tick(&mut self, now_ms: i64) -> Vec<MetadataRecord> {
        let records = self.controller.tick(&self.image, now_ms);
        self.apply(&records);
        records
    }

    pub fn create(&mut self, name: &str, partitions: i32, rf: i16) -> Decision<CreatedTopic> {
        let topic = CreateTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            ..Default::default()
        };
        let (records, mut results) =
            self.controller
                .create_topics(&self.image, &[topic], DEFAULTS, false);
        self.apply(&records);
        results.remove(0)
    }

    /// Creates `name` with the given replicas for partitions 0, 1, ...
    pub fn create_assigned(&mut self, name: &str, assignment: &[&[i32]]) -> Decision<CreatedTopic> {
        let topic = CreateTopic {
            name: name.into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: assignment
                .iter()
                .enumerate()
                .map(|(p, replicas)| (p as i32, ids(replicas)))
                .collect(),
            ..Default::default()
        };
        let (records, mut results) =
            self.controller
                .create_topics(&self.image, &[topic], DEFAULTS, false);
        self.apply(&records);
        results.remove(0)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> &PartitionImage {
        self.image.partition(topic, partition).unwrap()
    }

    pub fn is_fenced(&self, id: i32) -> bool {
        self.image.brokers[&BrokerId(id)].fenced
    }

    pub fn topic_id(&self, topic: &str) -> Uuid {
        self.image.topic(topic).unwrap().topic_id
    }

    /// The AlterPartition the current leader of `topic`-`partition` would send to change its
    /// in-sync replicas to `new_isr`, computed against the current state.
    pub fn alter_request(
        &self,
        topic: &str,
        partition: i32,
        new_isr: &[i32],
    ) -> AlterPartitionRequest {
        let p = self.partition(topic, partition);
        AlterPartitionRequest {
            broker_id: p.leader,
            broker_epoch: self.image.brokers[&p.leader].broker_epoch,
            topic_id: self.topic_id(topic),
            partition,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_in_sync_replicas: ids(new_isr),
            leader_recovery_state: LeaderRecoveryState::Recovered,
        }
    }

    pub fn alter_partition_with(
        &mut self,
        now_ms: i64,
        request: AlterPartitionRequest,
    ) -> Decision<AlterPartitionReply> {
        let (records, reply) = self
            .controller
            .alter_partition(&self.image, now_ms, request)?;
        self.apply(&records);
        Ok(reply)
    }

    /// The leader of `topic`-`partition` changes its in-sync replicas to `new_isr`.
    pub fn alter_partition(
        &mut self,
        topic: &str,
        partition: i32,
        new_isr: &[i32],
    ) -> Decision<AlterPartitionReply> {
        let request = self.alter_request(topic, partition, new_isr);
        self.alter_partition_with(0, request)
    }

    /// Broker `id` asks to be fenced (as a stopped process would be after its session).
    pub fn fence(&mut self, now_ms: i64, id: i32) {
        let request = BrokerHeartbeatRequest {
            want_fence: true,
            ..self.request(id)
        };
        assert!(self.heartbeat_with(now_ms, request).unwrap().is_fenced);
    }

    pub fn set_topic_config(&mut self, topic: &str, name: &str, value: &str) {
        let resource = ConfigResource::Topic(topic.into());
        let changes = [(name.to_string(), AlterOp::Set(value.into()))];
        let records = alter_configs(&self.image, &resource, &changes, true).unwrap();
        self.apply(&records);
    }

    pub fn reassign(
        &mut self,
        topic: &str,
        partition: i32,
        target: Option<&[i32]>,
    ) -> Decision<()> {
        let request = PartitionReassignment {
            topic: topic.into(),
            partition,
            replicas: target.map(ids),
        };
        let (records, mut results) = self
            .controller
            .alter_partition_reassignments(&self.image, &[request]);
        self.apply(&records);
        results.remove(0)
    }

    pub fn elect(
        &mut self,
        election_type: ElectionType,
        partitions: Option<Vec<(Uuid, i32)>>,
    ) -> Vec<ElectionResult> {
        let (records, results) =
            self.controller
                .elect_leaders(&self.image, election_type, partitions);
        self.apply(&records);
        results
    }
}

/// Leaders per broker over the partitions of `topic`.
pub fn leader_counts(image: &MetadataImage, topic: &str) -> BTreeMap<BrokerId, usize> {
    let mut counts = BTreeMap::new();
    for p in image.topic(topic).unwrap().partitions.values() {
        *counts.entry(p.leader).or_insert(0) += 1;
    }
    counts
}

/// The invariants every image the controller produces must keep: the leader is an available
/// in-sync replica or NONE (and NONE only when no in-sync or eligible leader replica is
/// available); the in-sync replicas are a non-empty subset of the distinct replicas; the
/// eligible leader replicas are replicas outside the in-sync set; the reassignment's adding
/// and removing replicas are disjoint replicas; a recovering leader is alone in sync.
pub fn check_invariants(image: &MetadataImage) {
    for (topic_id, partition, p) in image.partitions() {
        let at = format!("{topic_id}-{partition}: {p:?}");
        let subset = |list: &[BrokerId]| list.iter().all(|b| p.replicas.contains(b));
        assert!(
            !p.in_sync_replicas.is_empty(),
            "empty in-sync replicas {at}"
        );
        assert!(
            subset(&p.in_sync_replicas),
            "in-sync replicas outside the replicas {at}"
        );
        assert!(distinct(&p.replicas), "repeated replica {at}");
        assert!(
            distinct(&p.in_sync_replicas),
            "repeated in-sync replica {at}"
        );
        assert!(
            subset(&p.eligible_leader_replicas),
            "eligible non-replica {at}"
        );
        assert!(
            distinct(&p.eligible_leader_replicas),
            "repeated eligible replica {at}"
        );
        assert!(
            !p.eligible_leader_replicas
                .iter()
                .any(|b| p.in_sync_replicas.contains(b)),
            "eligible and in sync {at}"
        );
        assert!(
            subset(&p.last_known_elr),
            "last known eligible non-replica {at}"
        );
        assert!(
            subset(&p.adding_replicas) && subset(&p.removing_replicas),
            "reassignment outside the replicas {at}"
        );
        assert!(
            !p.adding_replicas
                .iter()
                .any(|b| p.removing_replicas.contains(b)),
            "adding and removing {at}"
        );
        if p.leader_recovery_state == LeaderRecoveryState::Recovering {
            assert_eq!(
                p.in_sync_replicas.len(),
                1,
                "recovering with followers {at}"
            );
        }
        if p.leader.is_none() {
            assert!(
                !p.in_sync_replicas.iter().any(|&b| image.is_available(b)),
                "offline although an in-sync replica is available {at}"
            );
            assert!(
                !p.eligible_leader_replicas
                    .iter()
                    .any(|&b| image.is_available(b)),
                "offline although an eligible leader replica is available {at}"
            );
        } else {
            assert!(
                p.in_sync_replicas.contains(&p.leader),
                "leader not in sync {at}"
            );
            assert!(image.is_available(p.leader), "leader not available {at}");
        }
    }
    for b in image.brokers.values().filter(|b| b.fenced) {
        assert!(
            !image.partitions().any(|(_, _, p)| p.leader == b.broker_id),
            "fenced broker {} leads",
            b.broker_id
        );
    }
}

fn distinct(list: &[BrokerId]) -> bool {
    let mut sorted = list.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.len() == list.len()
}

/// Epochs never decrease, and a leader change always bumps the leader epoch.
pub fn check_epochs(before: &MetadataImage, after: &MetadataImage) {
    for (topic_id, partition, old) in before.partitions() {
        let Some(new) = after
            .topic_by_id(&topic_id)
            .and_then(|t| t.partitions.get(&partition))
        else {
            continue;
        };
        let at = format!("{topic_id}-{partition}: {old:?} -> {new:?}");
        assert!(
            new.leader_epoch >= old.leader_epoch,
            "leader epoch fell {at}"
        );
        assert!(
            new.partition_epoch >= old.partition_epoch,
            "partition epoch fell {at}"
        );
        if new.leader != old.leader {
            assert!(
                new.leader_epoch > old.leader_epoch,
                "leader epoch kept {at}"
            );
        }
        if new != old {
            assert!(
                new.partition_epoch > old.partition_epoch,
                "partition epoch kept {at}"
            );
        }
    }
}

pub fn epochs(p: &PartitionImage) -> (LeaderEpoch, PartitionEpoch) {
    (p.leader_epoch, p.partition_epoch)
}
