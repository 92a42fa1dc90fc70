//! The transaction coordinator's IO shell: one task owns the pure [`strom_txn::Coordinator`]
//! and does its IO, in the shape of the group coordinator's shell (`crate::groups`).
//!
//! ```text
//! handlers ──submit(call)──▶ actor ──▶ Coordinator ──▶ Output { writes, responses, markers }
//!                              ▲  │                           │         │          │
//!     responses (oneshot) ◀────┼──┼───────────────────────────┼─────────┘          │
//!                              │  ├─▶ writer per __transaction_state partition ◀───┘
//!           WriteDone ◀────────┤  │     (append, wait until committed, report in order)
//!                              │  └─▶ marker task per decided transaction: WriteTxnMarkers
//!       MarkersWritten ◀───────┘        to every partition leader (locally when it is us),
//!                                        retried until each has the marker
//! ```
//!
//! - Which `__transaction_state` partitions are loaded follows leadership, as for groups:
//!   reconcile calls [`TxnCoordinator::sync_partitions`] with the partitions this broker leads
//!   and their leader epochs (the coordinator epoch markers carry).
//! - Timed-out transactions are aborted and idle ids forgotten on a timer,
//!   `transaction.abort.timed.out.transaction.cleanup.interval.ms`.

mod load;
mod markers;
pub mod verify;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use strom_txn::coordinator::Config;
use strom_txn::{Coordinator, Output, Producer, RequestId, Response, WriteId};
use tokio::sync::{mpsc, oneshot};

use crate::errors::KafkaError;
use crate::state::BrokerState;

pub use markers::write_markers_locally;

/// The compacted topic that holds every transactional id's state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Requests waiting for the actor; beyond this, submitters wait (backpressure).
const REQUEST_QUEUE: usize = 1024;

type Call = Box<dyn FnOnce(&mut Coordinator, i64, RequestId) -> Output + Send>;
type Inspect = Box<dyn FnOnce(&Coordinator) + Send>;

enum Command {
    Request {
        call: Call,
        reply: oneshot::Sender<Response>,
    },
    /// The `__transaction_state` partitions this broker leads, with their leader epochs.
    Sync {
        led: BTreeMap<i32, i32>,
        done: oneshot::Sender<()>,
    },
    Inspect(Inspect),
}

/// What the writers and marker tasks report back to the actor.
enum Event {
    WriteDone {
        write_id: WriteId,
        outcome: Result<(), i16>,
    },
    MarkersWritten {
        transactional_id: String,
        producer: Producer,
    },
}

/// The coordinator is not running (shutdown).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the transaction coordinator is not available")]
pub struct Unavailable;

/// A cheap, clonable handle to the coordinator task.
#[derive(Clone)]
pub struct TxnCoordinator {
    commands: mpsc::Sender<Command>,
    /// `transaction.state.log.num.partitions` as the coordinator was started with.
    pub num_partitions: i32,
    /// Connections to other brokers, for markers and produce-time verification.
    pub peers: Arc<verify::Peers>,
}

impl TxnCoordinator {
    /// Starts the coordinator task. `num_partitions` must be the partition count of
    /// `__transaction_state` (the existing topic's, or the configured count for a new one):
    /// it decides which partition every transactional id lives on.
    pub fn spawn(state: Weak<BrokerState>, num_partitions: i32, offsets_partitions: i32) -> Self {
        let (commands, receiver) = mpsc::channel(REQUEST_QUEUE);
        let (config, poll_interval) = match state.upgrade() {
            Some(s) => (
                Config {
                    num_partitions,
                    offsets_partitions,
                    max_timeout_ms: s.config.transaction_max_timeout_ms,
                    id_expiration_ms: s.config.transactional_id_expiration_ms,
                },
                Duration::from_millis(s.config.transaction_abort_cleanup_interval_ms.max(1) as u64),
            ),
            None => (Config::default(), Duration::from_secs(10)),
        };
        let (events_tx, events) = mpsc::unbounded_channel();
        let peers = Arc::new(verify::Peers::default());
        let actor = Actor {
            coordinator: Coordinator::new(config),
            state,
            pending: HashMap::new(),
            next_request_id: 0,
            writers: HashMap::new(),
            loaded: BTreeMap::new(),
            events_tx,
            peers: Arc::clone(&peers),
            last_now_ms: 0,
        };
        tokio::spawn(actor.run(receiver, events, poll_interval));
        TxnCoordinator {
            commands,
            num_partitions,
            peers,
        }
    }

    /// Hands a request to the coordinator; the receiver yields its response when the
    /// coordinator has it (after its `__transaction_state` write, for most requests).
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

    /// Reads the coordinator's state without changing it.
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

    /// Loads the led partitions not loaded yet (or loaded under another leader epoch) and
    /// unloads the others. Returns when done.
    pub async fn sync_partitions(&self, led: BTreeMap<i32, i32>) -> Result<(), Unavailable> {
        let (done, finished) = oneshot::channel();
        self.commands
            .send(Command::Sync { led, done })
            .await
            .map_err(|_| Unavailable)?;
        finished.await.map_err(|_| Unavailable)
    }
}

struct Actor {
    coordinator: Coordinator,
    state: Weak<BrokerState>,
    pending: HashMap<RequestId, oneshot::Sender<Response>>,
    next_request_id: u64,
    writers: HashMap<i32, mpsc::Sender<writer::Write>>,
    /// Loaded partitions and the coordinator epoch they were loaded at.
    loaded: BTreeMap<i32, i32>,
    events_tx: mpsc::UnboundedSender<Event>,
    peers: Arc<verify::Peers>,
    /// The coordinator needs a clock that never goes back.
    last_now_ms: i64,
}

impl Actor {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut events: mpsc::UnboundedReceiver<Event>,
        poll_interval: Duration,
    ) {
        let mut ticker = tokio::time::interval(poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
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
                    None => return,
                },
                Some(event) = events.recv() => {
                    let output = match event {
                        Event::WriteDone { write_id, outcome: Ok(()) } => {
                            self.coordinator.write_completed(write_id)
                        }
                        Event::WriteDone { write_id, outcome: Err(code) } => {
                            self.coordinator.write_failed(write_id, code)
                        }
                        Event::MarkersWritten { transactional_id, producer } => {
                            let now = self.now();
                            self.coordinator.markers_written(now, &transactional_id, producer)
                        }
                    };
                    self.process(output).await;
                }
                _ = ticker.tick() => {
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

    /// Sends ready responses, hands writes to their partitions' writers, starts marker tasks.
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
                tracing::error!(partition, "transaction state writer stopped");
            }
        }
        for markers in output.markers {
            markers::spawn(
                self.state.clone(),
                Arc::clone(&self.peers),
                markers,
                self.events_tx.clone(),
            );
        }
    }

    fn writer(&mut self, partition: i32) -> mpsc::Sender<writer::Write> {
        if let Some(sender) = self.writers.get(&partition) {
            return sender.clone();
        }
        let sender = writer::spawn(self.state.clone(), partition, self.events_tx.clone());
        self.writers.insert(partition, sender.clone());
        sender
    }

    async fn sync(&mut self, led: BTreeMap<i32, i32>) {
        let stale: Vec<i32> = self
            .loaded
            .iter()
            .filter(|(p, epoch)| led.get(p) != Some(epoch))
            .map(|(&p, _)| p)
            .collect();
        for partition in stale {
            self.loaded.remove(&partition);
            let output = self.coordinator.unload_partition(partition);
            self.process(output).await;
            // A new writer starts if the partition comes back; the old one drains and stops.
            self.writers.remove(&partition);
            tracing::info!(partition, "unloaded transaction coordinator partition");
        }
        for (&partition, &epoch) in &led {
            if self.loaded.contains_key(&partition) {
                continue;
            }
            let Some(state) = self.state.upgrade() else {
                return;
            };
            self.coordinator.load_partition(partition, epoch);
            match load::load(&mut self.coordinator, &state, partition).await {
                Ok(records) => {
                    self.loaded.insert(partition, epoch);
                    let output = self.coordinator.finish_load(partition);
                    tracing::info!(
                        partition,
                        records,
                        coordinator_epoch = epoch,
                        "loaded transaction coordinator partition"
                    );
                    self.process(output).await;
                }
                Err(e) => {
                    tracing::error!(partition, error = %e, "cannot load transaction coordinator partition");
                    let output = self.coordinator.unload_partition(partition);
                    self.process(output).await;
                }
            }
        }
    }
}

/// The partitions of `__transaction_state` this broker leads, with their leader epochs.
pub fn led_partitions(
    state: &BrokerState,
    image: &strom_cluster::MetadataImage,
) -> BTreeMap<i32, i32> {
    image
        .topic(TRANSACTION_STATE_TOPIC)
        .map(|t| {
            t.partitions
                .iter()
                .filter(|(_, p)| p.leader == state.node_id)
                .map(|(&i, p)| (i, p.leader_epoch.0))
                .collect()
        })
        .unwrap_or_default()
}

/// Creates `__transaction_state` if it does not exist yet (Kafka creates it on the first
/// FindCoordinator for a transactional id): compacted, `transaction.state.log.num.partitions`
/// partitions, `transaction.state.log.replication.factor` replicas (or the broker count when
/// smaller) and `transaction.state.log.min.isr` (capped at the replication factor, so a
/// single node can run transactions).
pub async fn ensure_topic(state: &Arc<BrokerState>) -> Result<(), KafkaError> {
    if state.image().topic(TRANSACTION_STATE_TOPIC).is_some() {
        return Ok(());
    }
    let config = &state.config;
    let image = state.image();
    let registered = image.brokers.len().max(1) as i16;
    let replication = config
        .transaction_state_log_replication_factor
        .min(registered);
    let available = image.available_brokers().count() as i16;
    if available < replication {
        return Err(KafkaError::new(
            kafka_protocol::error::ResponseError::CoordinatorNotAvailable,
            format!(
                "{TRANSACTION_STATE_TOPIC} needs {replication} available brokers for its replicas; {available} are available"
            ),
        ));
    }
    let min_isr = config
        .transaction_state_log_min_isr
        .min(i32::from(replication));
    let request = strom_cluster::controller::CreateTopic {
        name: TRANSACTION_STATE_TOPIC.to_string(),
        num_partitions: state
            .transactions()
            .map_or(config.transaction_state_log_num_partitions, |t| {
                t.num_partitions
            }),
        replication_factor: replication,
        assignments: Default::default(),
        configs: vec![
            ("cleanup.policy".into(), Some("compact".into())),
            ("min.insync.replicas".into(), Some(min_isr.to_string())),
            (
                "segment.bytes".into(),
                Some(
                    config
                        .transaction_state_log_segment_bytes
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
        Some(Err(e)) if e.error != kafka_protocol::error::ResponseError::TopicAlreadyExists => {
            Err(e)
        }
        _ => Ok(()),
    }
}
