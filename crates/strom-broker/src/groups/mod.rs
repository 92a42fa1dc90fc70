//! The group coordinator's IO shell: one task owns the pure [`strom_group::Coordinator`] and
//! does its IO.
//!
//! ```text
//! handlers ──submit(request)──▶ actor task ──▶ Coordinator ──▶ Output { writes, responses }
//!                                   ▲   │                              │          │
//!        responses (oneshot) ◀──────┼───┼──────────────────────────────┼──────────┘
//!                                   │   └─▶ writer task per __consumer_offsets partition:
//!                  WriteDone ◀──────┴────── append batch, wait until durable, report in order
//! ```
//!
//! - Handlers submit a request in their ordered phase and await the answer in the waiting
//!   phase, so a JoinGroup parked for a rebalance does not hold up the connection.
//! - Each `__consumer_offsets` partition has one writer task that appends writes in issue order
//!   and reports their outcomes in the same order, which the coordinator requires.
//! - Which partitions are loaded follows leadership: [`GroupCoordinator::sync_partitions`] is
//!   called by reconcile with the partitions this broker leads, loading new ones from their log
//!   and unloading lost ones. That is how a group's coordinator moves between brokers.
//! - Deadlines (sessions, rebalance timeouts, retention) wake the actor at
//!   `Coordinator::next_deadline`.
//! - Transactions: a TxnOffsetCommit's write is a transactional batch of the producer, in the
//!   same per-partition queue as every other write. When the WriteTxnMarkers handler has
//!   appended a COMMIT or ABORT marker to a `__consumer_offsets` partition it calls
//!   [`GroupCoordinator::complete_transaction`], which returns once the coordinator applied
//!   it. A load replays transactional batches as pending and markers as their outcome.

mod load;
mod writer;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use strom_group::{Config, Coordinator, Output, RequestId, Response, WriteId};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::BrokerConfig;
use crate::state::BrokerState;

/// Requests waiting for the actor; beyond this, submitters wait (backpressure).
const REQUEST_QUEUE: usize = 1024;

/// A coordinator call, run on the actor with the current time and a fresh request id.
type Call = Box<dyn FnOnce(&mut Coordinator, i64, RequestId) -> Output + Send>;

/// A read of the coordinator's state, run on the actor.
type Inspect = Box<dyn FnOnce(&Coordinator) + Send>;

enum Command {
    Request {
        call: Call,
        reply: oneshot::Sender<Response>,
    },
    Sync {
        led: BTreeSet<i32>,
        done: oneshot::Sender<()>,
    },
    Inspect(Inspect),
    /// A transaction marker is in a `__consumer_offsets` partition.
    CompleteTransaction {
        partition: i32,
        producer_id: i64,
        commit: bool,
        done: oneshot::Sender<()>,
    },
}

/// One group as the admin API and metrics see it.
#[derive(Debug, Clone)]
pub struct GroupSnapshot {
    pub summary: strom_group::GroupSummary,
    /// (topic, partition, committed offset and metadata)
    pub offsets: Vec<(String, i32, strom_group::OffsetAndMetadata)>,
}

/// A write's outcome, reported by a partition's writer: the log offset of its first record,
/// or the append error.
struct WriteDone {
    partition: i32,
    write_id: WriteId,
    outcome: Result<i64, i16>,
}

/// The coordinator is not running (shutdown, or it failed).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the group coordinator is not available")]
pub struct Unavailable;

/// A cheap, clonable handle to the coordinator task.
#[derive(Clone)]
pub struct GroupCoordinator {
    commands: mpsc::Sender<Command>,
    /// `offsets.topic.num.partitions` as the coordinator was started with.
    pub offsets_partitions: i32,
}

impl GroupCoordinator {
    /// Starts the coordinator task. `offsets_partitions` must be the partition count of
    /// `__consumer_offsets` (the existing topic's, or the configured count for a new one).
    pub fn spawn(
        state: Weak<BrokerState>,
        config: &BrokerConfig,
        offsets_partitions: i32,
    ) -> Result<Self, strom_group::Error> {
        let coordinator = Coordinator::new(coordinator_config(config, offsets_partitions))?;
        let (commands, receiver) = mpsc::channel(REQUEST_QUEUE);
        let actor = Actor {
            coordinator,
            state,
            pending: HashMap::new(),
            next_request_id: 0,
            writers: HashMap::new(),
            done_tx: None,
            last_now_ms: 0,
        };
        tokio::spawn(actor.run(receiver));
        Ok(Self {
            commands,
            offsets_partitions,
        })
    }

    /// Hands a request to the coordinator (the ordered part); the returned receiver yields its
    /// response when the coordinator has it (which may be after a rebalance or a write).
    pub async fn submit(
        &self,
        call: impl FnOnce(&mut Coordinator, i64, RequestId) -> Output + Send + 'static,
    ) -> Result<oneshot::Receiver<Response>, Unavailable> {
        let (reply, response) = oneshot::channel();
        self.commands
            .send(Command::Request {
                call: Box::new(call),
                reply,
            })
            .await
            .map_err(|_| Unavailable)?;
        Ok(response)
    }

    /// Reads the coordinator's state (for metrics and the admin API) without changing it.
    pub async fn inspect<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Coordinator) -> T + Send + 'static,
    ) -> Result<T, Unavailable> {
        let (reply, value) = oneshot::channel();
        let read: Inspect = Box::new(move |coordinator| {
            let _ = reply.send(read(coordinator));
        });
        self.commands
            .send(Command::Inspect(read))
            .await
            .map_err(|_| Unavailable)?;
        value.await.map_err(|_| Unavailable)
    }

    /// Every group this coordinator holds, with its members and committed offsets.
    pub async fn snapshot(&self) -> Result<Vec<GroupSnapshot>, Unavailable> {
        self.inspect(|coordinator| {
            coordinator
                .group_ids()
                .into_iter()
                .filter_map(|id| {
                    let summary = coordinator.group_summary(&id)?;
                    let offsets = coordinator.committed_offsets(&id);
                    Some(GroupSnapshot { summary, offsets })
                })
                .collect()
        })
        .await
    }

    /// A COMMIT or ABORT marker for `producer_id` is in `__consumer_offsets` partition
    /// `partition`: its transactional offset commits there become committed or are dropped.
    /// Returns once the coordinator has applied it, so an OffsetFetch that follows sees the
    /// outcome. Call it after the marker is appended (the WriteTxnMarkers handler does).
    pub async fn complete_transaction(
        &self,
        partition: i32,
        producer_id: i64,
        commit: bool,
    ) -> Result<(), Unavailable> {
        let (done, applied) = oneshot::channel();
        self.commands
            .send(Command::CompleteTransaction {
                partition,
                producer_id,
                commit,
                done,
            })
            .await
            .map_err(|_| Unavailable)?;
        applied.await.map_err(|_| Unavailable)
    }

    /// Loads the `__consumer_offsets` partitions in `led` that are not loaded (replaying their
    /// logs) and unloads loaded ones not in `led`. Returns when done.
    pub async fn sync_partitions(&self, led: BTreeSet<i32>) -> Result<(), Unavailable> {
        let (done, finished) = oneshot::channel();
        self.commands
            .send(Command::Sync { led, done })
            .await
            .map_err(|_| Unavailable)?;
        finished.await.map_err(|_| Unavailable)
    }
}

fn coordinator_config(config: &BrokerConfig, offsets_partitions: i32) -> Config {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Config {
        offsets_topic_partitions: offsets_partitions,
        group_min_session_timeout_ms: config.group_min_session_timeout_ms,
        group_max_session_timeout_ms: config.group_max_session_timeout_ms,
        group_initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
        group_max_size: config.group_max_size,
        offset_metadata_max_bytes: config.offset_metadata_max_bytes,
        offsets_retention_ms: config.offsets_retention_ms,
        offsets_retention_check_interval_ms: config.offsets_retention_check_interval_ms,
        member_id_seed: seed,
        ..Config::default()
    }
}

struct Actor {
    coordinator: Coordinator,
    state: Weak<BrokerState>,
    pending: HashMap<RequestId, oneshot::Sender<Response>>,
    next_request_id: u64,
    writers: HashMap<i32, mpsc::Sender<writer::Write>>,
    /// Where writers report; created with the first writer.
    done_tx: Option<mpsc::UnboundedSender<WriteDone>>,
    /// The coordinator needs a clock that never goes back.
    last_now_ms: i64,
}

impl Actor {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        // Completions come back on an unbounded channel so a writer never waits on the actor
        // while the actor waits on that writer's bounded queue. Their number is bounded by the
        // writers' queues.
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        self.done_tx = Some(done_tx);
        loop {
            let deadline = self.coordinator.next_deadline().map(|d| {
                let wait = d.saturating_sub(crate::now_ms()).max(0) as u64;
                Instant::now() + Duration::from_millis(wait)
            });
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Request { call, reply }) => {
                        let id = RequestId(self.next_request_id);
                        self.next_request_id += 1;
                        self.pending.insert(id, reply);
                        let now = self.now();
                        let output = call(&mut self.coordinator, now, id);
                        self.process(output).await;
                    }
                    Some(Command::Sync { led, done }) => {
                        self.sync(led).await;
                        let _ = done.send(());
                    }
                    Some(Command::Inspect(read)) => read(&self.coordinator),
                    Some(Command::CompleteTransaction { partition, producer_id, commit, done }) => {
                        let now = self.now();
                        let output = self
                            .coordinator
                            .complete_transaction(now, partition, producer_id, commit);
                        self.process(output).await;
                        let _ = done.send(());
                    }
                    None => return,
                },
                Some(done) = done_rx.recv() => {
                    let now = self.now();
                    let result = match done.outcome {
                        Ok(offset) => self.coordinator.write_completed(now, done.write_id, offset),
                        Err(code) => self.coordinator.write_failed(now, done.write_id, code),
                    };
                    match result {
                        Ok(output) => self.process(output).await,
                        Err(e) => tracing::error!(partition = done.partition, error = %e, "group coordinator refused a write outcome"),
                    }
                }
                _ = sleep_until(deadline) => {
                    let now = self.now();
                    let output = self.coordinator.poll(now);
                    self.process(output).await;
                }
            }
        }
    }

    fn now(&mut self) -> i64 {
        self.last_now_ms = self.last_now_ms.max(crate::now_ms());
        self.last_now_ms
    }

    /// Sends ready responses and hands writes to their partitions' writers.
    async fn process(&mut self, output: Output) {
        for (id, response) in output.responses {
            if let Some(reply) = self.pending.remove(&id) {
                // The client may have gone away; its response has nowhere to go.
                let _ = reply.send(response);
            }
        }
        for write in output.writes {
            let partition = write.partition;
            let sender = self.writer(partition);
            if sender.send(writer::Write::from(write)).await.is_err() {
                tracing::error!(partition, "group record writer stopped");
            }
        }
    }

    fn writer(&mut self, partition: i32) -> mpsc::Sender<writer::Write> {
        if let Some(sender) = self.writers.get(&partition) {
            return sender.clone();
        }
        let done_tx = self.done_tx.clone().expect("set before the loop starts");
        let sender = writer::spawn(self.state.clone(), partition, done_tx);
        self.writers.insert(partition, sender.clone());
        sender
    }

    async fn sync(&mut self, led: BTreeSet<i32>) {
        let loaded: BTreeSet<i32> = self
            .coordinator
            .partitions()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        for &partition in loaded.difference(&led) {
            let now = self.now();
            let output = self.coordinator.unload_partition(now, partition);
            self.process(output).await;
            // A new writer starts if the partition comes back; the old one drains and stops.
            self.writers.remove(&partition);
            tracing::info!(partition, "unloaded group coordinator partition");
        }
        for &partition in led.difference(&loaded) {
            let Some(state) = self.state.upgrade() else {
                return;
            };
            match load::load(&mut self.coordinator, &state, partition).await {
                Ok(records) => {
                    let now = self.now();
                    match self.coordinator.finish_load(now, partition) {
                        Ok(output) => {
                            tracing::info!(
                                partition,
                                records,
                                "loaded group coordinator partition"
                            );
                            self.process(output).await;
                        }
                        Err(e) => {
                            tracing::error!(partition, error = %e, "cannot finish loading group partition")
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(partition, error = %e, "cannot load group coordinator partition");
                    let now = self.now();
                    let output = self.coordinator.unload_partition(now, partition);
                    self.process(output).await;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The partitions of `__consumer_offsets` this broker leads, per the metadata image.
pub fn led_offsets_partitions(
    state: &BrokerState,
    image: &strom_cluster::MetadataImage,
) -> BTreeSet<i32> {
    image
        .topic(strom_cluster::CONSUMER_OFFSETS_TOPIC)
        .map(|t| {
            t.partitions
                .iter()
                .filter(|(_, p)| p.leader == state.node_id)
                .map(|(&i, _)| i)
                .collect()
        })
        .unwrap_or_default()
}

/// Creates `__consumer_offsets` if it does not exist yet (Kafka creates it on the first
/// FindCoordinator), compacted, with `offsets.topic.num.partitions` partitions.
pub async fn ensure_offsets_topic(
    state: &Arc<BrokerState>,
) -> Result<(), crate::errors::KafkaError> {
    if state
        .image()
        .topic(strom_cluster::CONSUMER_OFFSETS_TOPIC)
        .is_some()
    {
        return Ok(());
    }
    // offsets.topic.replication.factor, or the number of registered brokers when smaller (a
    // single node gets one replica). Until that many brokers are available, Kafka refuses to
    // create the topic: COORDINATOR_NOT_AVAILABLE, which clients retry.
    let image = state.image();
    let registered = image.brokers.len().max(1) as i16;
    let replication = state
        .config
        .offsets_topic_replication_factor
        .min(registered);
    let available = image.available_brokers().count() as i16;
    if available < replication {
        return Err(crate::errors::KafkaError::new(
            kafka_protocol::error::ResponseError::CoordinatorNotAvailable,
            format!(
                "__consumer_offsets needs {replication} available brokers for its replicas; {available} are available"
            ),
        ));
    }
    let request = strom_cluster::controller::CreateTopic {
        name: strom_cluster::CONSUMER_OFFSETS_TOPIC.to_string(),
        num_partitions: state.groups().map_or(50, |g| g.offsets_partitions),
        replication_factor: replication,
        assignments: Default::default(),
        configs: vec![
            ("cleanup.policy".into(), Some("compact".into())),
            (
                "segment.bytes".into(),
                Some(
                    state
                        .config
                        .offsets_topic_segment_bytes
                        .max(1_048_576)
                        .to_string(),
                ),
            ),
        ],
    };
    let result = crate::topics::create_topics(state, vec![request], false)
        .await
        .into_iter()
        .next();
    match result {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) if e.error == kafka_protocol::error::ResponseError::TopicAlreadyExists => {
            Ok(())
        }
        Some(Err(e)) => Err(e),
        None => Ok(()),
    }
}
