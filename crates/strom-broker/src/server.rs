//! Starting and stopping a node: a broker, a controller, or both (Kafka's combined mode).
//!
//! Start: create and lock the data directory; read `meta.properties` (node id, cluster id);
//! start this node's part in the metadata quorum (on a controller: the Raft log under
//! `metadata/raft` and the controller listener; a single-node metadata file of an earlier
//! Strom is migrated into it); wait until the quorum has a cluster id. A broker then opens its
//! data directory's log manager, starts the group coordinator and the replica manager (which
//! opens the logs of the partitions this broker hosts, recovering them after an unclean stop),
//! registers with the active controller and waits to be unfenced, and accepts connections (at
//! most `max.connections` at a time).
//!
//! Stop: a broker first asks the controller to move leadership away (controlled shutdown),
//! then stops accepting, lets every connection finish the responses it owes, stops its
//! heartbeats and the quorum member, and finally flushes every log and writes the checkpoints
//! and the clean-shutdown marker, so the next start skips recovery.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use strom_cluster::controller::ControllerConfig;
use strom_cluster::{BrokerId, MetadataRecord};
use strom_log::LogManager;
use strom_quorum::{QuorumConfig, QuorumNode};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::config::{BrokerConfig, ClientListener, Endpoint};
use crate::security::ListenerSecurity;
use crate::security::limits::ConnectionsPerIp;
use crate::state::BrokerState;

/// How long shutdown waits for connections to finish the responses they owe.
const CONNECTION_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often start-up says what it is waiting for while the quorum forms.
const WAIT_LOG_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    MetaProperties(String),
    #[error(transparent)]
    Legacy(#[from] strom_cluster::legacy::LegacyError),
    #[error(transparent)]
    Quorum(#[from] strom_quorum::QuorumError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] strom_log::Error),
    #[error("group coordinator: {0}")]
    Groups(#[from] strom_group::Error),
    #[error("startup task failed: {0}")]
    Task(String),
    #[error("{0}")]
    Security(String),
}

/// Listeners a caller bound itself (tests bind port 0 before they know the quorum).
#[derive(Debug, Default)]
pub struct NodeListeners {
    pub broker: Option<TcpListener>,
    pub controller: Option<TcpListener>,
}

/// The broker half of a running node.
struct Serving {
    state: Arc<BrokerState>,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    /// Each client listener's name and the address it bound.
    bound: Vec<(String, SocketAddr)>,
    accept_loops: Vec<JoinHandle<()>>,
    connections: TaskTracker,
    heartbeats: JoinHandle<()>,
    replica_manager: JoinHandle<()>,
    isr_task: JoinHandle<()>,
}

/// A running node: a broker, a controller, or both.
pub struct Broker {
    serving: Option<Serving>,
    quorum: Arc<QuorumNode>,
    _data_dir_lock: std::fs::File,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("local_addr", &self.serving.as_ref().map(|s| s.local_addr))
            .finish()
    }
}

impl Broker {
    pub async fn start(config: BrokerConfig) -> Result<Broker, StartError> {
        Self::start_with(config, NodeListeners::default()).await
    }

    /// Starts a node on listeners the caller may have bound already.
    pub async fn start_with(
        config: BrokerConfig,
        listeners: NodeListeners,
    ) -> Result<Broker, StartError> {
        let data_dir = config.data_dir.clone();
        let io = |source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        };
        std::fs::create_dir_all(&data_dir).map_err(io)?;
        let lock = lock_data_dir(&data_dir)?;
        let stored_cluster_id = meta_properties(&data_dir, config.node_id)?;
        let node_id = BrokerId(config.node_id);

        let metadata_dir = data_dir.join("metadata");
        let raft_dir = metadata_dir.join("raft");
        let legacy = if raft_dir.exists() {
            None
        } else {
            let dir = metadata_dir.clone();
            blocking(move || strom_cluster::legacy::read(&dir)).await??
        };

        let controller_listener = if config.roles.controller {
            Some(match listeners.controller {
                Some(l) => l,
                None => bind(&controller_address(&config)).await?,
            })
        } else {
            None
        };
        let voters = voters(&config, controller_listener.as_ref())?;
        if legacy.is_some() && voters.keys().ne([&node_id]) {
            return Err(StartError::MetaProperties(format!(
                "{} holds the metadata of a single-node Strom (metadata/metadata.log); it is migrated \
                 when this node starts as a single-node cluster (without controller.quorum.voters), \
                 and cannot join a multi-node quorum",
                data_dir.display()
            )));
        }
        let broker_listeners = if config.roles.broker {
            Some(bind_client_listeners(&config, listeners.broker).await?)
        } else {
            None
        };

        let quorum = Arc::new(
            QuorumNode::start(
                quorum_config(
                    &config,
                    raft_dir,
                    voters,
                    legacy
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .chain(config.bootstrap_records.iter().cloned())
                        .collect(),
                ),
                controller_listener,
            )
            .await?,
        );
        let cluster_id = wait_for_cluster_id(&quorum).await;
        warn_unused_bootstrap(&config, &quorum.image());
        check_cluster_id(&data_dir, config.node_id, stored_cluster_id, &cluster_id)?;
        if legacy.is_some() {
            finish_migration(&metadata_dir).await?;
        }
        let serving = match broker_listeners {
            Some(listeners) => {
                Some(Self::start_broker(config, cluster_id, listeners, Arc::clone(&quorum)).await?)
            }
            None => {
                tracing::info!(node_id = %node_id, cluster_id = %cluster_id, "controller started");
                None
            }
        };
        Ok(Broker {
            serving,
            quorum,
            _data_dir_lock: lock,
        })
    }

    async fn start_broker(
        config: BrokerConfig,
        cluster_id: String,
        listeners: Vec<BoundListener>,
        quorum: Arc<QuorumNode>,
    ) -> Result<Serving, StartError> {
        let local_addr = listeners[0].local_addr;
        let advertised = config.advertised_endpoint(local_addr);
        let advertised_listeners = listeners
            .iter()
            .map(|l| {
                let endpoint = l.config.advertised.clone().unwrap_or_else(|| Endpoint {
                    host: l.config.endpoint.host.clone(),
                    port: l.local_addr.port(),
                });
                (l.config.name.clone(), endpoint)
            })
            .collect();
        let manager_config = config.manager.clone();
        let dir = config.data_dir.clone();
        let logs = Arc::new(blocking(move || LogManager::open(&dir, manager_config)).await??);
        let (replicas_applied_tx, replicas_applied) = watch::channel(0u64);
        let state = Arc::new(BrokerState::new(
            config,
            cluster_id,
            advertised,
            advertised_listeners,
            Arc::clone(&logs),
            Arc::clone(&quorum),
            replicas_applied,
        ));
        // The coordinator's partition count is the topic's when it exists: it decides which
        // partition every group lives on, so it must never change under existing groups.
        let image = quorum.image();
        let offsets_partitions = image
            .topic(strom_cluster::CONSUMER_OFFSETS_TOPIC)
            .map_or(state.config.offsets_topic_num_partitions, |t| {
                t.partitions.len() as i32
            });
        let groups = crate::groups::GroupCoordinator::spawn(
            Arc::downgrade(&state),
            &state.config,
            offsets_partitions,
        )?;
        state.set_groups(groups);
        // Likewise the transaction coordinator: a transactional id's partition must never
        // change under it.
        let transaction_partitions = image
            .topic(crate::txn::TRANSACTION_STATE_TOPIC)
            .map_or(state.config.transaction_state_log_num_partitions, |t| {
                t.partitions.len() as i32
            });
        state.set_transactions(crate::txn::TxnCoordinator::spawn(
            Arc::downgrade(&state),
            transaction_partitions,
            offsets_partitions,
        ));
        let (isr_changes, isr_task) = crate::replication::isr::spawn(Arc::downgrade(&state));
        state.set_isr_changes(isr_changes);
        let replica_manager = crate::replica_manager::spawn(
            Arc::downgrade(&state),
            quorum.images(),
            replicas_applied_tx,
        );
        logs.start_background_work();

        let (shutdown, shutdown_rx) = watch::channel(false);
        let heartbeats = crate::lifecycle::start(&state, shutdown_rx.clone()).await;
        let connections = TaskTracker::new();
        state.set_serving(true);
        let limit = Arc::new(Semaphore::new(
            state.config.max_connections.min(Semaphore::MAX_PERMITS),
        ));
        let per_ip = ConnectionsPerIp::new(
            state.config.max_connections_per_ip,
            state.config.max_connections_per_ip_overrides.clone(),
        );
        let bound = listeners
            .iter()
            .map(|l| (l.config.name.clone(), l.local_addr))
            .collect();
        let mut accept_loops = Vec::new();
        for l in listeners {
            if l.security.tls.is_some() {
                accept_loops.push(tokio::spawn(reload_tls(
                    Arc::clone(&l.security),
                    shutdown_rx.clone(),
                )));
            }
            tracing::info!(listener = %l.config.name, protocol = l.config.protocol.name(), address = %l.local_addr, "listening");
            accept_loops.push(tokio::spawn(accept(
                Arc::clone(&state),
                l,
                Arc::clone(&limit),
                Arc::clone(&per_ip),
                shutdown_rx.clone(),
                connections.clone(),
            )));
        }
        tracing::info!(
            listen = %local_addr,
            advertised = %state.advertised,
            node_id = %state.node_id,
            cluster_id = %state.cluster_id,
            broker_epoch = %state.broker_epoch(),
            data_dir = %state.config.data_dir.display(),
            "broker started"
        );
        Ok(Serving {
            state,
            local_addr,
            bound,
            shutdown,
            accept_loops,
            connections,
            heartbeats,
            replica_manager,
            isr_task,
        })
    }

    /// The address the broker listener bound (useful with port 0); `0.0.0.0:0` on a
    /// controller-only node.
    pub fn local_addr(&self) -> SocketAddr {
        self.serving
            .as_ref()
            .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |s| s.local_addr)
    }

    /// The address a client listener bound, by its name (`SASL_SSL`).
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.serving
            .as_ref()?
            .bound
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, addr)| *addr)
    }

    /// The broker's shared state; `None` on a controller-only node.
    pub fn state(&self) -> Option<&Arc<BrokerState>> {
        self.serving.as_ref().map(|s| &s.state)
    }

    /// This node's part in the metadata quorum.
    pub fn quorum(&self) -> &Arc<QuorumNode> {
        &self.quorum
    }

    /// Controlled shutdown, then stops accepting, drains connections, stops the quorum member,
    /// and flushes and checkpoints every log.
    pub async fn shutdown(self) -> Result<(), strom_log::Error> {
        let mut result = Ok(());
        if let Some(serving) = self.serving {
            crate::lifecycle::controlled_shutdown(&serving.state).await;
            serving.state.set_serving(false);
            let _ = serving.shutdown.send(true);
            for accept_loop in serving.accept_loops {
                let _ = accept_loop.await;
            }
            serving.connections.close();
            if tokio::time::timeout(CONNECTION_DRAIN_TIMEOUT, serving.connections.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    "connections did not finish within {CONNECTION_DRAIN_TIMEOUT:?}; shutting down anyway"
                );
            }
            let _ = serving.heartbeats.await;
            self.quorum.shutdown().await;
            serving.replica_manager.abort();
            serving.isr_task.abort();
            serving.state.fetchers.shutdown();
            result = close_logs(&serving.state.logs).await;
        } else {
            self.quorum.shutdown().await;
        }
        tracing::info!("node stopped");
        result
    }
}

async fn close_logs(logs: &Arc<LogManager>) -> Result<(), strom_log::Error> {
    let logs = Arc::clone(logs);
    let result = tokio::task::spawn_blocking(move || logs.shutdown())
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "log shutdown task failed");
            Ok(())
        });
    match result {
        // A log that went offline earlier cannot be closed cleanly; the log manager then
        // leaves out the clean-shutdown marker so the next start recovers it. That is the
        // right outcome of a requested shutdown, not a failure of it.
        Err(strom_log::Error::Offline(tp)) => {
            tracing::warn!(partition = %tp, "a log is offline after a storage error; the next start will recover the data directory");
            Ok(())
        }
        other => other,
    }
}

fn quorum_config(
    config: &BrokerConfig,
    dir: PathBuf,
    voters: BTreeMap<BrokerId, String>,
    bootstrap_records: Vec<MetadataRecord>,
) -> QuorumConfig {
    QuorumConfig {
        node_id: BrokerId(config.node_id),
        is_controller: config.roles.controller,
        voters,
        dir,
        election_timeout_ms: config.election_timeout_ms,
        heartbeat_interval_ms: (config.election_timeout_ms / 5).max(10),
        snapshot_max_record_bytes: config.snapshot_max_record_bytes,
        snapshot_interval_ms: config.snapshot_interval_ms,
        retention_bytes: config.metadata_retention_bytes,
        controller: controller_config(config),
        bootstrap_records,
    }
}

/// The settings of the controller state machine, from this node's properties (the static
/// defaults of configs topics and the cluster may override).
fn controller_config(config: &BrokerConfig) -> ControllerConfig {
    let topic_default = |name: &str| {
        crate::config::resolve_topic_config(
            config,
            &strom_cluster::MetadataImage::default(),
            "",
            name,
        )
        .map(|(v, _)| v)
        .unwrap_or_default()
    };
    ControllerConfig {
        broker_session_timeout_ms: config.broker_session_timeout_ms,
        default_min_insync_replicas: topic_default("min.insync.replicas").parse().unwrap_or(1),
        default_unclean_leader_election: topic_default("unclean.leader.election.enable") == "true",
        auto_leader_rebalance_enable: config.auto_leader_rebalance_enable,
        leader_imbalance_check_interval_ms: config.leader_imbalance_check_interval_ms,
        ..ControllerConfig::default()
    }
}

/// The controller listener's address: the `CONTROLLER` listener, or an ephemeral port on
/// loopback for a single-node quorum (no other node needs to reach it).
fn controller_address(config: &BrokerConfig) -> String {
    match &config.controller_listen {
        Some(endpoint) => endpoint.to_string(),
        None => config
            .voters
            .get(&config.node_id)
            .cloned()
            .unwrap_or_else(|| "127.0.0.1:0".to_string()),
    }
}

/// `controller.quorum.voters`, or this node alone.
fn voters(
    config: &BrokerConfig,
    controller: Option<&TcpListener>,
) -> Result<BTreeMap<BrokerId, String>, StartError> {
    if !config.voters.is_empty() {
        return Ok(config
            .voters
            .iter()
            .map(|(id, a)| (BrokerId(*id), a.clone()))
            .collect());
    }
    let Some(listener) = controller else {
        return Err(StartError::MetaProperties(
            "a broker-only node (process.roles=broker) needs controller.quorum.voters".into(),
        ));
    };
    let address = listener.local_addr().map_err(|source| StartError::Listen {
        address: "controller listener".into(),
        source,
    })?;
    Ok(BTreeMap::from([(
        BrokerId(config.node_id),
        address.to_string(),
    )]))
}

async fn bind(address: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Listen {
            address: address.to_string(),
            source,
        })
}

/// Waits until the metadata log names the cluster, saying what it waits for meanwhile.
/// `--add-scram` only takes effect when it creates the cluster, as Kafka's format does: say
/// so when a user it names does not exist.
fn warn_unused_bootstrap(config: &BrokerConfig, image: &strom_cluster::MetadataImage) {
    for record in &config.bootstrap_records {
        if let MetadataRecord::UserScramCredential {
            name, mechanism, ..
        } = record
            && image.scram_credential(name, *mechanism).is_none()
        {
            tracing::warn!(user = %name, %mechanism, "--add-scram is ignored: the cluster already existed; create users with `strom user create`");
        }
    }
}

async fn wait_for_cluster_id(quorum: &QuorumNode) -> String {
    loop {
        if let Ok(image) = quorum
            .wait_for_image(WAIT_LOG_INTERVAL, |i| i.cluster_id.is_some())
            .await
            && let Some(id) = &image.cluster_id
        {
            return id.clone();
        }
        let status = quorum.status();
        tracing::info!(
            role = status.role,
            leader = ?status.leader,
            term = status.term,
            "waiting for the metadata quorum (a majority of the controllers must be running)"
        );
    }
}

/// The single-node metadata file has been written into the Raft log: keep it under another
/// name, so the next start does not migrate again and an operator can still read it.
async fn finish_migration(metadata_dir: &Path) -> Result<(), StartError> {
    let from = metadata_dir.join(strom_cluster::legacy::FILE_NAME);
    let to = metadata_dir.join(format!("{}.migrated", strom_cluster::legacy::FILE_NAME));
    if from.exists() {
        std::fs::rename(&from, &to).map_err(|source| StartError::DataDir { path: from, source })?;
        tracing::info!(kept_as = %to.display(), "migrated the single-node metadata log into the Raft metadata log");
    }
    Ok(())
}

/// A client listener, bound, with what secures its connections.
struct BoundListener {
    config: ClientListener,
    security: Arc<ListenerSecurity>,
    socket: TcpListener,
    local_addr: SocketAddr,
}

/// Binds every client listener, the first on `first` when the caller bound it already. The
/// security settings are built first, so a bad key store stops the start with its reason.
async fn bind_client_listeners(
    config: &BrokerConfig,
    first: Option<TcpListener>,
) -> Result<Vec<BoundListener>, StartError> {
    let mut first = first;
    let mut out = Vec::new();
    for listener in &config.client_listeners {
        let security =
            Arc::new(ListenerSecurity::build(config, listener).map_err(StartError::Security)?);
        let socket = match first.take() {
            Some(socket) => socket,
            None => bind(&listener.endpoint.to_string()).await?,
        };
        let local_addr = socket.local_addr().map_err(|source| StartError::Listen {
            address: listener.name.clone(),
            source,
        })?;
        out.push(BoundListener {
            config: listener.clone(),
            security,
            socket,
            local_addr,
        });
    }
    if out.is_empty() {
        return Err(StartError::Security("listeners: no client listener".into()));
    }
    Ok(out)
}

/// How often TLS listeners look for changed key and trust store files.
const TLS_RELOAD_CHECK: Duration = Duration::from_secs(5);

/// Swaps a listener's TLS config when its files change: certificates are renewed without a
/// restart. New connections get the new config; open ones keep theirs.
async fn reload_tls(listener: Arc<ListenerSecurity>, mut shutdown: watch::Receiver<bool>) {
    let Some(tls) = &listener.tls else {
        return;
    };
    let mut tick = tokio::time::interval(TLS_RELOAD_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        match tls.reload_if_changed() {
            Ok(true) => {
                tracing::info!(listener = %listener.name, "reloaded the TLS key and trust stores")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(listener = %listener.name, "cannot reload TLS, keeping the previous certificates: {e}")
            }
        }
    }
}

async fn accept(
    state: Arc<BrokerState>,
    bound: BoundListener,
    limit: Arc<Semaphore>,
    per_ip: Arc<ConnectionsPerIp>,
    mut shutdown: watch::Receiver<bool>,
    connections: TaskTracker,
) {
    let BoundListener {
        security,
        socket: listener,
        ..
    } = bound;
    loop {
        // Waiting for a permit before accepting leaves excess clients in the kernel's backlog
        // instead of holding sockets we will not serve.
        let permit = tokio::select! {
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Some(ip_slot) = per_ip.acquire(peer.ip()) else {
            tracing::debug!(%peer, "closing a connection over max.connections.per.ip");
            drop(stream);
            continue;
        };
        let state = Arc::clone(&state);
        let shutdown = shutdown.clone();
        let security = Arc::clone(&security);
        connections.spawn(async move {
            crate::connection::serve(state, security, stream, peer, shutdown).await;
            drop(ip_slot);
            drop(permit);
        });
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StartError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StartError::Task(e.to_string()))
}

/// Takes Kafka's `.lock` on the data directory, so two processes never share one (and a new
/// incarnation of a node knows the previous one is gone).
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, StartError> {
    use fs4::fs_std::FileExt;
    let path = data_dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StartError::DataDir {
            path: path.clone(),
            source,
        })?;
    match file.try_lock_exclusive() {
        Ok(true) => Ok(file),
        Ok(false) => Err(StartError::MetaProperties(format!(
            "{} is in use by another process (it holds {})",
            data_dir.display(),
            path.display()
        ))),
        Err(source) => Err(StartError::DataDir { path, source }),
    }
}

/// Reads `meta.properties` (Kafka's identity file for a data directory), checking the node id.
/// Returns the cluster id it names, if any (a new directory learns it from the quorum).
fn meta_properties(data_dir: &Path, node_id: i32) -> Result<Option<String>, StartError> {
    let path = data_dir.join("meta.properties");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|source| StartError::DataDir {
        path: path.clone(),
        source,
    })?;
    let props: BTreeMap<&str, &str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    if let Some(stored) = props.get("node.id")
        && *stored != node_id.to_string()
    {
        return Err(StartError::MetaProperties(format!(
            "{} belongs to node {stored}, but this node is node.id={node_id}",
            data_dir.display()
        )));
    }
    Ok(props.get("cluster.id").map(|s| s.to_string()))
}

/// Checks that the data directory belongs to the cluster the quorum names, and records the
/// cluster id in `meta.properties` the first time.
fn check_cluster_id(
    data_dir: &Path,
    node_id: i32,
    stored: Option<String>,
    cluster_id: &str,
) -> Result<(), StartError> {
    match stored {
        Some(stored) if stored == cluster_id => Ok(()),
        Some(stored) => Err(StartError::MetaProperties(format!(
            "{} belongs to cluster {stored}, but the metadata quorum is cluster {cluster_id}",
            data_dir.display()
        ))),
        None => write_meta_properties(data_dir, node_id, cluster_id),
    }
}

fn write_meta_properties(
    data_dir: &Path,
    node_id: i32,
    cluster_id: &str,
) -> Result<(), StartError> {
    let path = data_dir.join("meta.properties");
    let io = |source| StartError::DataDir {
        path: path.clone(),
        source,
    };
    let text = format!(
        "# Written by strom at first start; identifies this data directory.\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\n"
    );
    let tmp = data_dir.join("meta.properties.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(data_dir)
        .and_then(|f| f.sync_all())
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_properties_keeps_the_cluster_id_and_checks_the_node() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(meta_properties(dir.path(), 1).unwrap(), None);
        check_cluster_id(dir.path(), 1, None, "abc").unwrap();
        assert_eq!(
            meta_properties(dir.path(), 1).unwrap().as_deref(),
            Some("abc")
        );
        assert!(matches!(
            meta_properties(dir.path(), 2),
            Err(StartError::MetaProperties(_))
        ));
        assert!(matches!(
            check_cluster_id(dir.path(), 1, Some("abc".into()), "other"),
            Err(StartError::MetaProperties(_))
        ));
    }

    #[test]
    fn a_data_directory_is_locked_by_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_data_dir(dir.path()).unwrap();
        assert!(matches!(
            lock_data_dir(dir.path()),
            Err(StartError::MetaProperties(_))
        ));
        drop(held);
        lock_data_dir(dir.path()).unwrap();
    }
}
