//! A randomized schedule of broker lives and topic operations against the controller over a
//! simulated clock, checking the metadata invariants after every step.
//!
//! Each run is decided by its seed, printed on stderr; `STROM_TEST_SEED=<seed>` replays one.
//! Brokers 1 and 2 are steady: they heartbeat every timeout/3 and must never be fenced. The
//! others register, fall silent, come back as new incarnations, lag behind the log, shut
//! down in a controlled way and are unregistered, at random. Partition leaders shrink and
//! expand their in-sync replicas, an operator reassigns partitions, asks for elections and
//! changes `min.insync.replicas` and `unclean.leader.election.enable`
//! (`simulation/replication.rs`); the automatic leader rebalance runs on its timer. What is
//! checked after every step is in `simulation/checks.rs`.

mod simulation;
mod support;

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use strom_cluster::controller::{BrokerHeartbeatRequest, Controller, ControllerConfig};
use strom_cluster::{BrokerEpoch, BrokerId, MetadataImage, MetadataRecord};
use support::*;
use uuid::Uuid;

const BROKERS: i32 = 6;
const STEADY: [i32; 2] = [1, 2];
const STEPS: usize = 400;

/// Rebalancing every 20 s of simulated time, so that a run sees a few dozen checks.
fn sim_config() -> ControllerConfig {
    ControllerConfig {
        max_replication_factor: 3,
        leader_imbalance_check_interval_ms: 20_000,
        ..rebalancing_config()
    }
}

#[derive(Default)]
struct SimBroker {
    generation: u32,
    epoch: Option<BrokerEpoch>,
    /// Heartbeating; a broker that is not is a crashed or stopped process.
    alive: bool,
    shutting_down: bool,
    next_heartbeat_ms: i64,
    /// When the controller last heard from it (or was activated): the earliest it may be
    /// fenced for silence is a session timeout later.
    last_contact_ms: i64,
}

struct Sim {
    rng: ChaCha8Rng,
    cluster: Cluster,
    now_ms: i64,
    brokers: BTreeMap<i32, SimBroker>,
    topics: usize,
    /// The steady brokers have registered and been unfenced.
    started: bool,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut sim = Sim {
            rng: ChaCha8Rng::seed_from_u64(seed),
            cluster: Cluster::new(sim_config(), seed),
            now_ms: 0,
            brokers: (1..=BROKERS).map(|id| (id, SimBroker::default())).collect(),
            topics: 0,
            started: false,
        };
        for id in STEADY {
            sim.restart(id);
            sim.heartbeat(id);
            assert!(!sim.cluster.is_fenced(id));
        }
        sim.started = true;
        sim
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Applies a decision's records and checks what must hold after every step.
    fn commit(&mut self, records: &[MetadataRecord]) {
        self.commit_allowing(records, &|_, _, _| false);
    }

    /// [`Sim::commit`], where `allowed(topic, partition, leader)` says which new leaders
    /// outside the in-sync and eligible leader replicas the step may legitimately produce
    /// (those an AlterPartition put in sync, or an operator's unclean election).
    fn commit_allowing(
        &mut self,
        records: &[MetadataRecord],
        allowed: &dyn Fn(Uuid, i32, BrokerId) -> bool,
    ) {
        let before = self.cluster.image.clone();
        self.cluster.apply(records);
        let after = &self.cluster.image;
        check_invariants(after);
        check_epochs(&before, after);
        simulation::checks::check_replication(&before, after, &sim_config(), allowed);
        for id in STEADY.into_iter().filter(|_| self.started) {
            assert!(
                !after.brokers[&BrokerId(id)].fenced,
                "steady broker {id} fenced"
            );
        }
    }

    /// A broker a tick fences has really been silent for longer than the timeout.
    fn check_fencing_was_earned(&self, before: &MetadataImage, records: &[MetadataRecord]) {
        for record in records {
            if let MetadataRecord::BrokerRegistrationChange {
                broker_id,
                fenced: Some(true),
                ..
            } = record
                && !before.brokers[broker_id].fenced
            {
                let broker = &self.brokers[&broker_id.0];
                let silent_ms = self.now_ms - broker.last_contact_ms;
                assert!(
                    silent_ms > TIMEOUT_MS,
                    "broker {broker_id} fenced after {silent_ms} ms"
                );
            }
        }
    }

    /// A new incarnation of `id` registers; refused while the previous one is unfenced and
    /// its session lives.
    fn restart(&mut self, id: i32) {
        let now = self.now_ms;
        let generation = self.brokers[&id].generation + 1;
        let request = registration(id, generation, None);
        match self
            .cluster
            .controller
            .register_broker(&self.cluster.image, now, request)
        {
            Ok((records, reply)) => {
                let previous = self.brokers[&id].epoch;
                assert!(previous.is_none_or(|e| reply.broker_epoch > e));
                self.commit(&records);
                let b = self.brokers.get_mut(&id).unwrap();
                *b = SimBroker {
                    generation,
                    epoch: Some(reply.broker_epoch),
                    alive: true,
                    shutting_down: false,
                    next_heartbeat_ms: now,
                    last_contact_ms: now,
                };
                assert!(self.cluster.is_fenced(id));
            }
            Err(e) => {
                assert_eq!(e.error, ResponseError::DuplicateBrokerRegistration);
                assert!(
                    !self.cluster.is_fenced(id),
                    "a fenced broker is replaceable"
                );
            }
        }
    }

    fn heartbeat(&mut self, id: i32) {
        let Some(epoch) = self.brokers[&id].epoch else {
            return;
        };
        let steady = STEADY.contains(&id);
        let lagging = !steady && self.chance(15);
        let want_fence = !steady && self.chance(3);
        let b = &self.brokers[&id];
        let request = BrokerHeartbeatRequest {
            broker_id: BrokerId(id),
            broker_epoch: epoch,
            metadata_offset: if lagging {
                0
            } else {
                self.cluster.image.applied_index()
            },
            want_fence,
            want_shutdown: b.shutting_down,
        };
        let now = self.now_ms;
        let (records, reply) = self
            .cluster
            .controller
            .heartbeat(&self.cluster.image, now, request)
            .unwrap_or_else(|e| panic!("heartbeat of broker {id}: {e}"));
        self.commit(&records);
        assert_eq!(reply.is_fenced, self.cluster.is_fenced(id));
        let b = self.brokers.get_mut(&id).unwrap();
        b.last_contact_ms = now;
        b.next_heartbeat_ms = now + TIMEOUT_MS / 3;
        if reply.should_shut_down {
            assert!(b.shutting_down);
            assert!(reply.is_fenced);
            b.alive = false;
        }
    }

    fn tick(&mut self) {
        let records = self
            .cluster
            .controller
            .tick(&self.cluster.image, self.now_ms);
        self.check_fencing_was_earned(&self.cluster.image, &records);
        self.commit(&records);
        if let Some(deadline) = self.cluster.controller.next_deadline() {
            assert!(
                deadline > self.now_ms,
                "tick left an expired session behind"
            );
        }
    }

    fn create_topic(&mut self) {
        self.topics += 1;
        let name = format!("topic-{}", self.topics);
        let partitions = 1 + self.below(8) as i32;
        let rf = 1 + self.below(3) as i16;
        match self.cluster.create(&name, partitions, rf) {
            Ok(created) => assert_eq!(created.num_partitions, partitions),
            Err(e) => assert!(
                e.error == ResponseError::InvalidReplicationFactor
                    || e.error == ResponseError::BrokerNotAvailable,
                "{e}"
            ),
        }
        check_invariants(&self.cluster.image);
    }

    fn grow_or_delete_a_topic(&mut self) {
        let names: Vec<String> = self.cluster.image.topics.keys().cloned().collect();
        if names.is_empty() {
            return;
        }
        let name = names[self.below(names.len() as u64) as usize].clone();
        if self.chance(30) {
            let (records, results) = self
                .cluster
                .controller
                .delete_topics(&self.cluster.image, std::slice::from_ref(&name));
            assert!(results[0].is_ok());
            self.commit(&records);
            return;
        }
        let total = self.cluster.image.topic(&name).unwrap().partitions.len() as i32 + 2;
        let decision =
            self.cluster
                .controller
                .create_partitions(&self.cluster.image, &name, total, None);
        match decision {
            Ok(records) => self.commit(&records),
            Err(e) => assert!(
                e.error == ResponseError::InvalidReplicationFactor
                    || e.error == ResponseError::BrokerNotAvailable,
                "{e}"
            ),
        }
    }

    fn fail_over(&mut self) {
        let seed = self.rng.next_u64();
        self.cluster.controller = Controller::new(sim_config(), seed);
        self.cluster
            .controller
            .activate(&self.cluster.image, self.now_ms);
        for b in self.brokers.values_mut() {
            b.last_contact_ms = self.now_ms;
        }
    }

    /// Moves the clock forward, never past a steady broker's next heartbeat.
    fn advance(&mut self) {
        let step = 1 + self.below((TIMEOUT_MS / 4) as u64) as i64;
        let steady_due = STEADY
            .iter()
            .map(|id| self.brokers[id].next_heartbeat_ms)
            .min()
            .unwrap_or(i64::MAX);
        self.now_ms = (self.now_ms + step).min(steady_due.max(self.now_ms));
    }

    fn step(&mut self) {
        self.advance();
        for id in STEADY {
            if self.brokers[&id].next_heartbeat_ms <= self.now_ms {
                self.heartbeat(id);
            }
        }
        if self
            .cluster
            .controller
            .next_deadline()
            .is_some_and(|d| d <= self.now_ms)
        {
            self.tick();
        }
        let id = 3 + self.below((BROKERS - 2) as u64) as i32;
        match self.below(100) {
            0..=24 => {
                if self.brokers[&id].alive {
                    self.heartbeat(id);
                }
            }
            25..=31 => {
                if !self.brokers[&id].alive || self.chance(30) {
                    self.restart(id);
                }
            }
            32..=35 => self.brokers.get_mut(&id).unwrap().alive = false,
            36..=38 => {
                let b = self.brokers.get_mut(&id).unwrap();
                b.shutting_down = b.alive;
            }
            39..=48 => self.create_topic(),
            49..=54 => self.grow_or_delete_a_topic(),
            55..=70 => self.alter_partition(),
            71..=76 => self.reassign(),
            77..=80 => self.elect(),
            81..=84 => self.change_replication_configs(),
            85..=86 => self.unregister(id),
            87..=98 => self.tick(),
            _ => self.fail_over(),
        }
    }
}

fn run(seed: u64) {
    eprintln!("controller simulation seed {seed} (replay with STROM_TEST_SEED={seed})");
    let mut sim = Sim::new(seed);
    for _ in 0..STEPS {
        sim.step();
    }
}

#[test]
fn random_schedules_keep_the_metadata_invariants() {
    if let Some(seed) = std::env::var("STROM_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return run(seed);
    }
    let fresh = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    for seed in (0..16).chain([fresh]) {
        run(seed);
    }
}
