//! The active controller: the IO shell around [`strom_cluster::controller::Controller`],
//! running on the node that leads the metadata quorum.
//!
//! ```text
//!  brokers ──ControllerRequest──▶ task ──decide──▶ Controller (pure, in memory)
//!                                   │                   │ records
//!                                   │◀──────────────────┘
//!                                   ├──raft.client_write(records)──▶ committed + applied
//!                                   └──reply (with the records' metadata log offset)
//! ```
//!
//! One task per controller node handles one request at a time, so every decision is made
//! against the image that includes all earlier decisions (openraft answers `client_write` only
//! after the entry is applied, and applying publishes the image). The task is active only while
//! this node leads the quorum *and* has applied everything committed before its term; a newly
//! active controller gives every registered broker a full session before fencing anyone. While
//! inactive it answers `NotController` with the leader it knows.
//!
//! The first active controller of a new metadata log writes the cluster's identity: the
//! bootstrap records (a migrated single-node metadata log) or a new cluster id.

pub mod client;
pub mod messages;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::ServerState;
use openraft::error::{ClientWriteError, RaftError};
use strom_cluster::controller::{Controller, ControllerConfig};
use strom_cluster::{BrokerId, MetadataImage, MetadataRecord};
use tokio::sync::{mpsc, oneshot, watch};

use crate::types::{MetadataBatch, Raft, broker_id, metadata_offset, node_id};
use messages::{
    ControllerError, ControllerReply, ControllerRequest, ControllerResponse, QuorumDescription,
    ReplicaProgress,
};

/// Requests waiting for the controller task; more wait for room (backpressure).
const QUEUE: usize = 1024;
/// An observer (broker-only node) that has not fetched for this long leaves DescribeQuorum.
const OBSERVER_IDLE_MS: i64 = 30_000;

/// Fetch progress of broker-only nodes (observers), as seen by this controller.
pub type ObserverProgress = Arc<Mutex<BTreeMap<BrokerId, ReplicaProgress>>>;

struct Call {
    request: ControllerRequest,
    reply: oneshot::Sender<Result<ControllerResponse, ControllerError>>,
}

/// A handle to this node's controller task.
#[derive(Clone, Debug)]
pub struct ControllerHandle {
    calls: mpsc::Sender<Call>,
}

impl ControllerHandle {
    pub async fn call(
        &self,
        request: ControllerRequest,
    ) -> Result<ControllerResponse, ControllerError> {
        let (reply, response) = oneshot::channel();
        let stopped = || ControllerError::Unavailable("the controller is stopping".into());
        self.calls
            .send(Call { request, reply })
            .await
            .map_err(|_| stopped())?;
        response.await.map_err(|_| stopped())?
    }
}

/// What the controller task needs.
pub struct ControllerTask {
    pub raft: Raft,
    pub node_id: BrokerId,
    pub images: watch::Receiver<Arc<MetadataImage>>,
    pub config: ControllerConfig,
    /// Written by the first active controller of an empty metadata log, before anything else.
    pub bootstrap_records: Vec<MetadataRecord>,
    pub observers: ObserverProgress,
    /// The Raft network, for when each voter last answered.
    pub network: crate::network::Network,
}

impl ControllerTask {
    pub fn spawn(
        self,
        shutdown: watch::Receiver<bool>,
    ) -> (ControllerHandle, tokio::task::JoinHandle<()>) {
        let (calls, receiver) = mpsc::channel(QUEUE);
        let task = tokio::spawn(
            Shell {
                task: self,
                active: None,
                epoch: Instant::now(),
                seed: seed(),
            }
            .run(receiver, shutdown),
        );
        (ControllerHandle { calls }, task)
    }
}

struct Shell {
    task: ControllerTask,
    /// The controller's memory while this node is the active controller.
    active: Option<Controller>,
    /// The origin of the controller's clock: sessions are measured on a monotonic clock.
    epoch: Instant,
    seed: u64,
}

impl Shell {
    async fn run(mut self, mut calls: mpsc::Receiver<Call>, mut shutdown: watch::Receiver<bool>) {
        let mut metrics = self.task.raft.metrics();
        loop {
            self.follow_leadership().await;
            let deadline = self.active.as_ref().and_then(Controller::next_deadline);
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { return },
                call = calls.recv() => match call {
                    Some(call) => self.handle(call).await,
                    None => return,
                },
                _ = self.sleep_until(deadline) => self.tick().await,
                _ = crate::stopped(&mut shutdown) => return,
            }
        }
    }

    fn now_ms(&self) -> i64 {
        self.epoch.elapsed().as_millis() as i64
    }

    async fn sleep_until(&self, deadline_ms: Option<i64>) {
        match deadline_ms {
            Some(at) => {
                let wait = (at - self.now_ms()).max(0) as u64;
                // One millisecond past the deadline: expiry is strictly after the timeout.
                tokio::time::sleep(Duration::from_millis(wait + 1)).await;
            }
            None => std::future::pending().await,
        }
    }

    fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.task.images.borrow())
    }

    /// Becomes active when this node leads and has applied every entry before its term;
    /// becomes inactive as soon as it does not lead.
    async fn follow_leadership(&mut self) {
        let (leads, caught_up) = {
            let m = self.task.raft.metrics();
            let m = m.borrow();
            let leads = m.state == ServerState::Leader
                && m.current_leader == Some(node_id(self.task.node_id));
            let caught_up = m
                .last_applied
                .is_some_and(|applied| applied.leader_id.term == m.current_term);
            (leads, caught_up)
        };
        if !leads {
            if self.active.take().is_some() {
                tracing::info!(node_id = %self.task.node_id, "no longer the active controller");
            }
            return;
        }
        if self.active.is_some() || !caught_up {
            return;
        }
        let image = self.image();
        let mut controller = Controller::new(self.task.config.clone(), self.seed);
        controller.activate(&image, self.now_ms());
        self.active = Some(controller);
        tracing::info!(node_id = %self.task.node_id, brokers = image.brokers.len(), "became the active controller");
        if image.cluster_id.is_none() {
            // The bootstrap records (a migrated single-node log, `--add-scram` users) start
            // with the cluster's identity unless they carry one.
            let mut records = std::mem::take(&mut self.task.bootstrap_records);
            if !records
                .iter()
                .any(|r| matches!(r, MetadataRecord::Cluster { .. }))
            {
                records.insert(
                    0,
                    MetadataRecord::Cluster {
                        cluster_id: new_cluster_id(),
                    },
                );
            }
            if let Err(e) = self.write(records).await {
                tracing::warn!(error = %e, "cannot write the cluster's first records");
            }
        }
    }

    async fn tick(&mut self) {
        let image = self.image();
        let now = self.now_ms();
        let Some(controller) = self.active.as_mut() else {
            return;
        };
        let records = controller.tick(&image, now);
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.write(records).await {
            tracing::warn!(error = %e, "cannot write broker fencing");
        }
    }

    async fn handle(&mut self, call: Call) {
        let result = self.answer(call.request).await;
        let _ = call.reply.send(result);
    }

    async fn answer(
        &mut self,
        request: ControllerRequest,
    ) -> Result<ControllerResponse, ControllerError> {
        if let ControllerRequest::DescribeQuorum = request {
            return self.describe_quorum().map(|q| ControllerResponse {
                reply: ControllerReply::Quorum(q),
                offset: None,
            });
        }
        let image = self.image();
        let now = self.now_ms();
        let Some(controller) = self.active.as_mut() else {
            return Err(self.not_controller());
        };
        let (records, reply) = decide(controller, &image, now, request);
        if records.is_empty() {
            return Ok(ControllerResponse {
                reply,
                offset: None,
            });
        }
        let offset = self.write(records).await?;
        Ok(ControllerResponse {
            reply,
            offset: Some(offset),
        })
    }

    /// Appends one batch to the metadata log and waits until it is committed and applied, or
    /// until this node stops leading the term it wrote in. Then the outcome is unknown (the
    /// entry may still commit under the next leader, or be replaced), and openraft does not
    /// always answer such a write (a follower that installs a snapshot over it drops its
    /// responder): waiting on would stall this task, and with it the controller, for good.
    /// The caller retries against the new controller; every request is safe to retry.
    async fn write(
        &mut self,
        records: Vec<MetadataRecord>,
    ) -> Result<strom_cluster::MetadataOffset, ControllerError> {
        let mut metrics = self.task.raft.metrics();
        let term = metrics.borrow().current_term;
        let me = node_id(self.task.node_id);
        let deposed = async move {
            loop {
                {
                    let m = metrics.borrow_and_update();
                    if m.current_term != term
                        || m.state != ServerState::Leader
                        || m.current_leader != Some(me)
                    {
                        return;
                    }
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        };
        let written = tokio::select! {
            written = self.task.raft.client_write(MetadataBatch(records)) => written,
            () = deposed => {
                self.active = None;
                tracing::info!(node_id = %self.task.node_id, "lost the quorum's leadership during a write; its outcome is unknown");
                return Err(self.not_controller());
            }
        };
        match written {
            Ok(response) => Ok(metadata_offset(&response.log_id)),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                self.active = None;
                Err(ControllerError::NotController {
                    leader: forward.leader_id.map(broker_id),
                })
            }
            Err(e) => {
                self.active = None;
                Err(ControllerError::Unavailable(format!(
                    "cannot write to the metadata log: {e}"
                )))
            }
        }
    }

    fn not_controller(&self) -> ControllerError {
        let leader = self
            .task
            .raft
            .metrics()
            .borrow()
            .current_leader
            .map(broker_id);
        ControllerError::NotController {
            leader: leader.filter(|l| *l != self.task.node_id),
        }
    }

    fn describe_quorum(&self) -> Result<QuorumDescription, ControllerError> {
        if self.active.is_none() {
            return Err(self.not_controller());
        }
        let metrics = self.task.raft.metrics().borrow().clone();
        let now = crate::wall_clock_ms();
        let high_watermark = metrics.last_applied.map_or(0, |l| l.index as i64 + 1);
        let matched = metrics.replication.clone().unwrap_or_default();
        let membership = metrics.membership_config.membership().clone();
        let mut voters = Vec::new();
        let mut voter_addresses = Vec::new();
        for (id, node) in membership.nodes() {
            if !membership.voter_ids().any(|v| v == *id) {
                continue;
            }
            let log_end_offset = if *id == metrics.id {
                metrics.last_log_index.map_or(0, |i| i as i64 + 1)
            } else {
                matched
                    .get(id)
                    .copied()
                    .flatten()
                    .map_or(0, |l| l.index as i64 + 1)
            };
            // The leader itself is always current; a follower was last heard from at its last
            // answered AppendEntries, and counts as caught up then if it has every committed
            // entry now (openraft keeps no history of when a follower was caught up).
            let last_fetch = if *id == metrics.id {
                now
            } else {
                self.task.network.last_contact_ms(*id).unwrap_or(-1)
            };
            let caught_up = log_end_offset >= high_watermark;
            voters.push(ReplicaProgress {
                replica_id: broker_id(*id),
                log_end_offset,
                last_fetch_timestamp: last_fetch,
                last_caught_up_timestamp: if caught_up { last_fetch } else { -1 },
            });
            voter_addresses.push((broker_id(*id), node.address.clone()));
        }
        // An observer that stopped fetching (stopped, or removed from the cluster) is
        // forgotten after a while, as Kafka's leader forgets idle observers.
        let observers = {
            let mut observers = self
                .task
                .observers
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            observers.retain(|_, o| now - o.last_fetch_timestamp <= OBSERVER_IDLE_MS);
            observers.values().cloned().collect()
        };
        Ok(QuorumDescription {
            leader_id: self.task.node_id,
            leader_epoch: metrics.current_term as i32,
            high_watermark,
            voters,
            observers,
            voter_addresses,
        })
    }
}

/// Runs one request through the controller: the records to write and the reply to send once
/// they are committed.
fn decide(
    controller: &mut Controller,
    image: &MetadataImage,
    now_ms: i64,
    request: ControllerRequest,
) -> (Vec<MetadataRecord>, ControllerReply) {
    use ControllerReply as R;
    match request {
        ControllerRequest::RegisterBroker(r) => {
            match controller.register_broker(image, now_ms, r) {
                Ok((records, reply)) => (records, R::BrokerRegistration(Ok(reply))),
                Err(e) => (vec![], R::BrokerRegistration(Err(e))),
            }
        }
        ControllerRequest::BrokerHeartbeat(r) => match controller.heartbeat(image, now_ms, r) {
            Ok((records, reply)) => (records, R::BrokerHeartbeat(Ok(reply))),
            Err(e) => (vec![], R::BrokerHeartbeat(Err(e))),
        },
        ControllerRequest::CreateTopics {
            topics,
            defaults,
            validate_only,
        } => {
            let (records, results) =
                controller.create_topics(image, &topics, defaults, validate_only);
            (records, R::CreateTopics(results))
        }
        ControllerRequest::DeleteTopics { names } => {
            let (records, results) = controller.delete_topics(image, &names);
            (records, R::DeleteTopics(results))
        }
        ControllerRequest::CreatePartitions {
            topics,
            validate_only,
        } => {
            let mut records = Vec::new();
            let mut results = Vec::with_capacity(topics.len());
            let mut view = image.clone();
            for t in &topics {
                match controller.create_partitions(
                    &view,
                    &t.topic,
                    t.count,
                    t.assignments.as_deref(),
                ) {
                    Ok(r) => {
                        view.apply(view.offset.unwrap_or_default(), &r);
                        records.extend(r);
                        results.push(Ok(()));
                    }
                    Err(e) => results.push(Err(e)),
                }
            }
            if validate_only {
                records.clear();
            }
            (records, R::CreatePartitions(results))
        }
        ControllerRequest::AlterConfigs {
            resource,
            changes,
            incremental,
            validate_only,
        } => {
            match strom_cluster::controller::alter_configs(image, &resource, &changes, incremental)
            {
                Ok(_) if validate_only => (vec![], R::AlterConfigs(Ok(()))),
                Ok(records) => (records, R::AlterConfigs(Ok(()))),
                Err(e) => (vec![], R::AlterConfigs(Err(e))),
            }
        }
        ControllerRequest::AllocateProducerIds {
            broker_id,
            broker_epoch,
        } => match controller.allocate_producer_ids(image, broker_id, broker_epoch) {
            Ok((first, count, record)) => (vec![record], R::ProducerIds(Ok((first, count)))),
            Err(e) => (vec![], R::ProducerIds(Err(e))),
        },
        ControllerRequest::AlterPartition(r) => {
            match controller.alter_partition(image, now_ms, r) {
                Ok((records, reply)) => (records, R::AlterPartition(Ok(reply))),
                Err(e) => (vec![], R::AlterPartition(Err(e))),
            }
        }
        ControllerRequest::ElectLeaders {
            election_type,
            partitions,
        } => {
            let (records, results) = controller.elect_leaders(image, election_type, partitions);
            (records, R::ElectLeaders(results))
        }
        ControllerRequest::AlterPartitionReassignments { reassignments } => {
            let (records, results) =
                controller.alter_partition_reassignments(image, &reassignments);
            (records, R::AlterPartitionReassignments(results))
        }
        ControllerRequest::ListPartitionReassignments { topics } => {
            // Read-only: the committed image is the answer, so nothing is written.
            let ongoing =
                strom_cluster::controller::list_partition_reassignments(image, topics.as_deref());
            (vec![], R::ListPartitionReassignments(ongoing))
        }
        ControllerRequest::UnregisterBroker { broker_id } => {
            match controller.unregister_broker(image, broker_id) {
                Ok(records) => (records, R::UnregisterBroker(Ok(()))),
                Err(e) => (vec![], R::UnregisterBroker(Err(e))),
            }
        }
        ControllerRequest::AlterUserScramCredentials {
            deletions,
            upsertions,
        } => {
            let (records, results) = strom_cluster::controller::alter_user_scram_credentials(
                image,
                &deletions,
                &upsertions,
            );
            (records, R::AlterUserScramCredentials(results))
        }
        ControllerRequest::CreateAcls { bindings } => {
            let (records, results) = controller.create_acls(image, &bindings);
            (records, R::CreateAcls(results))
        }
        ControllerRequest::DeleteAcls { filters } => {
            let (records, results) = strom_cluster::controller::delete_acls(image, &filters);
            (records, R::DeleteAcls(results))
        }
        ControllerRequest::DescribeQuorum => unreachable!("answered before deciding"),
    }
}

/// Kafka's cluster id format: a random UUID in URL-safe base64 without padding (22 chars).
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..chunk.len() + 1 {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(id, new_cluster_id());
    }

    #[test]
    fn reassignment_and_election_requests_travel_as_json() {
        use strom_cluster::controller::{ElectionType, PartitionReassignment};
        let requests = [
            ControllerRequest::ElectLeaders {
                election_type: ElectionType::Unclean,
                partitions: Some(vec![(uuid::Uuid::new_v4(), 3)]),
            },
            ControllerRequest::AlterPartitionReassignments {
                reassignments: vec![PartitionReassignment {
                    topic: "t".into(),
                    partition: 0,
                    replicas: None,
                }],
            },
            ControllerRequest::ListPartitionReassignments {
                topics: Some(vec![("t".into(), vec![0, 1])]),
            },
            ControllerRequest::UnregisterBroker {
                broker_id: BrokerId(4),
            },
        ];
        for request in requests {
            let json = serde_json::to_string(&request).unwrap();
            let back: ControllerRequest = serde_json::from_str(&json).unwrap();
            assert_eq!(back, request, "{json}");
        }
    }

    #[test]
    fn listing_reassignments_and_refused_unregistrations_write_nothing() {
        let image = MetadataImage::default();
        let mut controller = Controller::new(ControllerConfig::default(), 1);
        let (records, reply) = decide(
            &mut controller,
            &image,
            0,
            ControllerRequest::ListPartitionReassignments { topics: None },
        );
        assert!(records.is_empty());
        assert_eq!(reply, ControllerReply::ListPartitionReassignments(vec![]));
        let (records, reply) = decide(
            &mut controller,
            &image,
            0,
            ControllerRequest::UnregisterBroker {
                broker_id: BrokerId(9),
            },
        );
        assert!(records.is_empty());
        let ControllerReply::UnregisterBroker(Err(e)) = reply else {
            panic!("{reply:?}");
        };
        // BROKER_ID_NOT_REGISTERED (this crate does not depend on kafka-protocol).
        assert_eq!(e.code(), 102, "{e}");
    }
}
