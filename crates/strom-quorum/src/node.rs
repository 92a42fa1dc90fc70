//! One node's part in the metadata quorum, assembled: on a controller, the Raft instance with
//! its storage, the controller listener, the active-controller task and the snapshot policy;
//! on a broker-only node, the observer's fetch loop. Either way the rest of the node sees the
//! same two things: a stream of published images and a client of the active controller.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use openraft::error::{InitializeError, RaftError};
use openraft::{ServerState, SnapshotPolicy};
use strom_cluster::controller::ControllerConfig;
use strom_cluster::{BrokerId, MetadataImage, MetadataRecord};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::controller::client::ControllerClient;
use crate::controller::messages::ControllerError;
use crate::controller::{ControllerHandle, ControllerTask, ObserverProgress};
use crate::network::Network;
use crate::observer::{FetchService, Observer, serve_fetch};
use crate::rpc::server::{RpcHandler, serve};
use crate::rpc::{RpcRequest, RpcResponse};
use crate::storage::{ApplyStats, LogReader, LogStore, StateMachine};
use crate::types::{ControllerNode, Raft, Snapshot, broker_id, node_id};

/// How this node takes part, and the quorum's settings (Kafka's property names in comments).
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// `node.id`
    pub node_id: BrokerId,
    /// `process.roles` contains `controller`: this node votes and keeps the metadata log.
    pub is_controller: bool,
    /// `controller.quorum.voters`: id -> controller listener `host:port`.
    pub voters: BTreeMap<BrokerId, String>,
    /// Where a controller keeps the metadata log and snapshots.
    pub dir: PathBuf,
    /// `controller.quorum.election.timeout.ms`: the shortest election timeout; the longest is
    /// twice this.
    pub election_timeout_ms: u64,
    /// How often the leader sends heartbeats to the other voters.
    pub heartbeat_interval_ms: u64,
    /// `metadata.log.max.record.bytes.between.snapshots`
    pub snapshot_max_record_bytes: u64,
    /// `metadata.log.max.snapshot.interval.ms`
    pub snapshot_interval_ms: u64,
    /// `metadata.max.retention.bytes`: when the log kept behind the latest snapshot is larger,
    /// the entries the snapshot covers are deleted.
    pub retention_bytes: u64,
    pub controller: ControllerConfig,
    /// Records the first active controller writes to an empty metadata log (a migrated
    /// single-node metadata file); empty for a new cluster.
    pub bootstrap_records: Vec<MetadataRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("metadata storage: {0}")]
    Storage(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error("cannot listen for controllers on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
}

/// This node's view of the quorum, for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    /// `leader`, `follower`, `candidate`, `learner`, `shutdown` or `observer`.
    pub role: &'static str,
    pub leader: Option<BrokerId>,
    /// The Raft term (KRaft's leader epoch); unknown on observers.
    pub term: u64,
    /// Index of the last entry in this node's log (controllers).
    pub last_log_index: u64,
    /// Index of the last entry applied to the image.
    pub applied_index: u64,
    /// On the leader: how many entries each other voter is behind.
    pub voter_lag: Vec<(BrokerId, u64)>,
    pub snapshot_index: Option<u64>,
    /// The last entry deleted from this node's log (covered by a snapshot).
    pub purged_index: Option<u64>,
}

pub struct QuorumNode {
    node_id: BrokerId,
    raft: Option<Raft>,
    images: watch::Receiver<Arc<MetadataImage>>,
    client: ControllerClient,
    stats: Arc<ApplyStats>,
    controller_address: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for QuorumNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumNode")
            .field("node_id", &self.node_id)
            .finish()
    }
}

impl QuorumNode {
    /// Starts this node's part. A controller listens on `listener` (bound by the caller, so
    /// tests can use port 0) or, when `None`, on its own address in `voters`.
    pub async fn start(
        config: QuorumConfig,
        listener: Option<TcpListener>,
    ) -> Result<Self, QuorumError> {
        if config.voters.is_empty() {
            return Err(QuorumError::Config(
                "controller.quorum.voters lists no controller".into(),
            ));
        }
        if config.is_controller && !config.voters.contains_key(&config.node_id) {
            return Err(QuorumError::Config(format!(
                "node {} has the controller role but is not in controller.quorum.voters ({})",
                config.node_id,
                config
                    .voters
                    .keys()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )));
        }
        let (publisher, images) = watch::channel(Arc::new(MetadataImage::default()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let network = Network::default();
        let stats = Arc::new(ApplyStats::default());
        if !config.is_controller {
            return Ok(Self::start_observer(
                config, publisher, images, network, stats, shutdown,
            ));
        }
        let listener = match listener {
            Some(l) => l,
            None => {
                let address = config.voters[&config.node_id].clone();
                TcpListener::bind(&address)
                    .await
                    .map_err(|source| QuorumError::Listen { address, source })?
            }
        };
        let controller_address = listener.local_addr().ok();
        std::fs::create_dir_all(&config.dir).map_err(|e| QuorumError::Storage(e.to_string()))?;
        let mut log_store = LogStore::open(&config.dir)
            .await
            .map_err(|e| QuorumError::Storage(e.to_string()))?;
        let state_machine = StateMachine::open(&config.dir, publisher, Arc::clone(&stats))
            .await
            .map_err(|e| QuorumError::Storage(e.to_string()))?;
        let snapshot = state_machine.shared_snapshot();
        let log_reader = openraft::storage::RaftLogStorage::get_log_reader(&mut log_store).await;
        let raft = Raft::new(
            node_id(config.node_id),
            Arc::new(raft_config(&config)?),
            network.clone(),
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| QuorumError::Raft(e.to_string()))?;
        initialize(&raft, &config).await?;
        if config.voters.len() == 1 {
            // The only voter needs nobody's vote: elect now instead of after an election
            // timeout, so a restarted single node serves at once.
            let _ = raft.trigger().elect().await;
        }

        let observers = ObserverProgress::default();
        let (handle, controller_task) = ControllerTask {
            raft: raft.clone(),
            node_id: config.node_id,
            images: images.clone(),
            config: config.controller.clone(),
            bootstrap_records: config.bootstrap_records.clone(),
            observers: Arc::clone(&observers),
            network: network.clone(),
        }
        .spawn(shutdown_rx.clone());
        let log_for_policy = log_reader.clone();
        let handler = Arc::new(NodeHandler {
            raft: raft.clone(),
            controller: handle.clone(),
            fetch: FetchService {
                raft: raft.clone(),
                log: log_reader,
                snapshot,
                observers,
            },
        });
        let server = tokio::spawn(serve(listener, handler, shutdown_rx.clone()));
        let (leader_tx, leader_rx) = watch::channel(None);
        let leader_task = tokio::spawn(follow_leader(raft.clone(), leader_tx, shutdown_rx.clone()));
        let snapshots = tokio::spawn(snapshot_policy(
            raft.clone(),
            Arc::clone(&stats),
            log_for_policy,
            config.clone(),
            shutdown_rx,
        ));
        let client = ControllerClient::new(
            config.node_id,
            Some(handle),
            leader_rx,
            config.voters.clone(),
            network,
        );
        tracing::info!(
            node_id = %config.node_id,
            controller_listen = ?controller_address,
            voters = %voters_text(&config.voters),
            "metadata quorum member started"
        );
        Ok(Self {
            node_id: config.node_id,
            raft: Some(raft),
            images,
            client,
            stats,
            controller_address,
            shutdown,
            tasks: std::sync::Mutex::new(vec![controller_task, server, leader_task, snapshots]),
        })
    }

    fn start_observer(
        config: QuorumConfig,
        publisher: watch::Sender<Arc<MetadataImage>>,
        images: watch::Receiver<Arc<MetadataImage>>,
        network: Network,
        stats: Arc<ApplyStats>,
        shutdown: watch::Sender<bool>,
    ) -> Self {
        let (leader_tx, leader_rx) = watch::channel(None);
        let observer = Observer {
            node_id: config.node_id,
            voters: config.voters.iter().map(|(k, v)| (*k, v.clone())).collect(),
            network: network.clone(),
            publisher,
            leader: leader_tx,
            max_wait: Duration::from_millis(500),
            stats: Arc::clone(&stats),
        };
        let task = tokio::spawn(observer.run(shutdown.subscribe()));
        let client = ControllerClient::new(
            config.node_id,
            None,
            leader_rx,
            config.voters.clone(),
            network,
        );
        tracing::info!(node_id = %config.node_id, voters = %voters_text(&config.voters), "metadata observer started");
        Self {
            node_id: config.node_id,
            raft: None,
            images,
            client,
            stats,
            controller_address: None,
            shutdown,
            tasks: std::sync::Mutex::new(vec![task]),
        }
    }

    /// Every image this node publishes, newest first.
    pub fn images(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.clone()
    }

    /// The latest published image.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.images.borrow())
    }

    pub fn controller(&self) -> &ControllerClient {
        &self.client
    }

    /// The quorum leader (the active controller) as this node knows it.
    pub fn leader(&self) -> Option<BrokerId> {
        self.client.leader()
    }

    /// The bound controller listener, on a controller.
    pub fn controller_address(&self) -> Option<SocketAddr> {
        self.controller_address
    }

    pub fn apply_stats(&self) -> &ApplyStats {
        &self.stats
    }

    /// Waits until this node's image satisfies `done`, up to `timeout`.
    pub async fn wait_for_image(
        &self,
        timeout: Duration,
        done: impl Fn(&MetadataImage) -> bool,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        let mut images = self.images.clone();
        match tokio::time::timeout(timeout, images.wait_for(|i| done(i))).await {
            Ok(Ok(image)) => Ok(Arc::clone(&image)),
            _ => Err(ControllerError::Unavailable(
                "this node's metadata did not catch up in time".into(),
            )),
        }
    }

    pub fn status(&self) -> QuorumStatus {
        let applied_index = self.images.borrow().applied_index();
        let Some(raft) = &self.raft else {
            return QuorumStatus {
                role: "observer",
                leader: self.leader(),
                term: 0,
                last_log_index: applied_index,
                applied_index,
                voter_lag: vec![],
                snapshot_index: None,
                purged_index: None,
            };
        };
        let m = raft.metrics().borrow().clone();
        let last = m.last_log_index.unwrap_or(0);
        let voter_lag = m
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .filter(|(id, _)| **id != m.id)
                    .map(|(id, matched)| {
                        (
                            broker_id(*id),
                            last.saturating_sub(matched.map_or(0, |l| l.index)),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        QuorumStatus {
            role: match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            },
            leader: m.current_leader.map(broker_id),
            term: m.current_term,
            last_log_index: last,
            applied_index,
            voter_lag,
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
        }
    }

    /// Stops the quorum member: the listener, the controller, Raft. Calling it again does
    /// nothing.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        if let Some(raft) = &self.raft
            && let Err(e) = raft.shutdown().await
        {
            tracing::warn!(error = %e, "raft did not shut down cleanly");
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
    }
}

fn raft_config(config: &QuorumConfig) -> Result<openraft::Config, QuorumError> {
    openraft::Config {
        cluster_name: "strom-metadata".into(),
        election_timeout_min: config.election_timeout_ms,
        election_timeout_max: config.election_timeout_ms * 2,
        heartbeat_interval: config.heartbeat_interval_ms,
        install_snapshot_timeout: 30_000,
        // Snapshots and purges are triggered by `snapshot_policy` below, by Kafka's rules.
        snapshot_policy: SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: u64::MAX,
        ..Default::default()
    }
    .validate()
    .map_err(|e| QuorumError::Config(format!("metadata quorum settings: {e}")))
}

/// Writes the initial membership (every configured voter) to an empty log. Every voter does
/// this with the same membership, which openraft allows; a log that has one already must have
/// the same voters.
async fn initialize(raft: &Raft, config: &QuorumConfig) -> Result<(), QuorumError> {
    let nodes: BTreeMap<u64, ControllerNode> = config
        .voters
        .iter()
        .map(|(id, address)| {
            (
                node_id(*id),
                ControllerNode {
                    address: address.clone(),
                },
            )
        })
        .collect();
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| QuorumError::Raft(e.to_string()))?;
    let result = if initialized {
        Ok(())
    } else {
        raft.initialize(nodes.clone()).await
    };
    match result {
        Ok(()) if !initialized => {
            tracing::info!(voters = %voters_text(&config.voters), "initialized a new metadata log");
            Ok(())
        }
        Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
            let membership = raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .clone();
            let stored: BTreeMap<u64, ControllerNode> = membership
                .nodes()
                .map(|(id, node)| (*id, node.clone()))
                .collect();
            let stored_voters: Vec<u64> = membership.voter_ids().collect();
            let wanted: Vec<u64> = nodes.keys().copied().collect();
            if stored_voters != wanted {
                return Err(QuorumError::Config(format!(
                    "the metadata log in {} belongs to a quorum of voters {:?}, but controller.quorum.voters says {}; \
                     start with the same voters (changing the quorum is not supported)",
                    config.dir.display(),
                    stored_voters,
                    voters_text(&config.voters)
                )));
            }
            if stored != nodes {
                tracing::warn!(
                    "controller addresses differ from the metadata log's; peers are reached at the stored addresses"
                );
            }
            Ok(())
        }
        Err(e) => Err(QuorumError::Raft(e.to_string())),
    }
}

fn voters_text(voters: &BTreeMap<BrokerId, String>) -> String {
    voters
        .iter()
        .map(|(id, a)| format!("{id}@{a}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Mirrors Raft's view of the leader into a watch the controller client reads.
/// Logs the quorum's leader changes and a failed Raft core: openraft's own logs are off by
/// default (see the binary's logging setup).
async fn follow_leader(
    raft: Raft,
    leader: watch::Sender<Option<BrokerId>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut metrics = raft.metrics();
    let mut reported_failure = false;
    loop {
        let (current, term, failure) = {
            let m = metrics.borrow();
            (
                m.current_leader.map(broker_id),
                m.current_term,
                m.running_state.clone().err(),
            )
        };
        let changed = leader.send_if_modified(|l| {
            let changed = *l != current;
            *l = current;
            changed
        });
        if changed {
            match current {
                Some(id) => tracing::info!(leader = %id, term, "the metadata quorum has a leader"),
                None => tracing::warn!(
                    term,
                    "the metadata quorum has no leader; an election is due"
                ),
            }
        }
        // `Stopped` is a shutdown this node asked for, not a failure.
        if let Some(fatal) = failure
            && !matches!(fatal, openraft::error::Fatal::Stopped)
            && !std::mem::replace(&mut reported_failure, true)
        {
            tracing::error!(error = %fatal, "the metadata quorum member stopped");
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = crate::stopped(&mut shutdown) => return,
        }
    }
}

/// Kafka's snapshot rules: a snapshot after `metadata.log.max.record.bytes.between.snapshots`
/// bytes of new records, or after `metadata.log.max.snapshot.interval.ms` when anything new
/// was applied; after a snapshot, when the log is larger than `metadata.max.retention.bytes`,
/// the entries the snapshot covers are deleted.
async fn snapshot_policy(
    raft: Raft,
    stats: Arc<ApplyStats>,
    log: LogReader,
    config: QuorumConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    use std::sync::atomic::Ordering;
    let check = Duration::from_millis(200);
    let mut last_snapshot = tokio::time::Instant::now();
    let mut purged_upto = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(check) => {}
            _ = crate::stopped(&mut shutdown) => return,
        }
        let pending = stats.bytes_since_snapshot.load(Ordering::Relaxed);
        let due = pending >= config.snapshot_max_record_bytes
            || (pending > 0
                && last_snapshot.elapsed() >= Duration::from_millis(config.snapshot_interval_ms));
        if due {
            if raft.trigger().snapshot().await.is_err() {
                return;
            }
            last_snapshot = tokio::time::Instant::now();
        }
        let snapshot = raft.metrics().borrow().snapshot;
        let log_bytes = log.log_bytes();
        if let Some(snapshot) = snapshot
            && snapshot.index > purged_upto
            && log_bytes > config.retention_bytes
        {
            if raft.trigger().purge_log(snapshot.index).await.is_err() {
                return;
            }
            // A leader postpones the deletion while a replication stream still sends those
            // entries; the log store says when it happens.
            tracing::debug!(
                upto = snapshot.index,
                log_bytes,
                "asked to delete metadata log entries covered by the latest snapshot"
            );
            purged_upto = snapshot.index;
        }
    }
}

/// Serves the controller listener on a controller node.
struct NodeHandler {
    raft: Raft,
    controller: ControllerHandle,
    fetch: FetchService,
}

impl RpcHandler for NodeHandler {
    fn handle(&self, request: RpcRequest, body: Bytes) -> BoxFuture<'static, (RpcResponse, Bytes)> {
        let raft = self.raft.clone();
        let controller = self.controller.clone();
        let fetch = self.fetch.clone();
        Box::pin(async move {
            match request {
                RpcRequest::AppendEntries(r) => (
                    RpcResponse::AppendEntries(raft.append_entries(r).await),
                    Bytes::new(),
                ),
                RpcRequest::Vote(r) => (RpcResponse::Vote(raft.vote(r).await), Bytes::new()),
                RpcRequest::InstallSnapshot { vote, meta } => {
                    let snapshot = Snapshot {
                        meta,
                        snapshot: Box::new(body.to_vec()),
                    };
                    (
                        RpcResponse::InstallSnapshot(
                            raft.install_full_snapshot(vote, snapshot).await,
                        ),
                        Bytes::new(),
                    )
                }
                RpcRequest::Controller(r) => (
                    RpcResponse::Controller(controller.call(r).await),
                    Bytes::new(),
                ),
                RpcRequest::FetchMetadata(r) => match serve_fetch(&fetch, r).await {
                    Ok((response, body)) => (RpcResponse::FetchMetadata(Ok(response)), body),
                    Err(e) => (RpcResponse::FetchMetadata(Err(e)), Bytes::new()),
                },
            }
        })
    }
}
