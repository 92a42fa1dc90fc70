//! Starting and stopping a broker.
//!
//! Start: create the data directory; read or write `meta.properties` (cluster id, node id);
//! replay the metadata log; bind the listener; register this broker's address; open the logs of
//! the partitions it leads (recovering them after an unclean stop); start the logs' background
//! work; accept connections, at most `max.connections` at a time.
//!
//! Stop: stop accepting, let every connection finish the responses it owes, then flush every
//! log and write the checkpoints and the clean-shutdown marker, so the next start skips
//! recovery.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use strom_cluster::{MetadataRecord, MetadataStore};
use strom_log::LogManager;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::config::BrokerConfig;
use crate::state::BrokerState;

/// How long shutdown waits for connections to finish the responses they owe.
const CONNECTION_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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
    Metadata(#[from] strom_cluster::StoreError),
    #[error(transparent)]
    Commit(#[from] crate::state::CommitError),
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
}

/// A running broker.
pub struct Broker {
    state: Arc<BrokerState>,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept_loop: JoinHandle<()>,
    connections: TaskTracker,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl Broker {
    pub async fn start(config: BrokerConfig) -> Result<Broker, StartError> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let cluster_id = meta_properties(&data_dir, config.node_id)?;

        let metadata_dir = data_dir.join("metadata");
        let (mut store, mut image) = blocking(move || MetadataStore::open(&metadata_dir)).await??;
        let mut bootstrap = Vec::new();
        match &image.cluster_id {
            None => bootstrap.push(MetadataRecord::Cluster {
                cluster_id: cluster_id.clone(),
            }),
            Some(existing) if *existing != cluster_id => {
                return Err(StartError::MetaProperties(format!(
                    "meta.properties says cluster {cluster_id} but the metadata log belongs to cluster {existing}"
                )));
            }
            Some(_) => {}
        }

        let address = config.listen_addr();
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| StartError::Listen {
                address: address.clone(),
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartError::Listen { address, source })?;
        let advertised = config.advertised_endpoint(local_addr);

        let registration = MetadataRecord::RegisterBroker {
            broker_id: config.node_id,
            host: advertised.host.clone(),
            port: advertised.port,
            rack: None,
        };
        let registered = image
            .brokers
            .get(&config.node_id)
            .is_some_and(|b| b.host == advertised.host && b.port == advertised.port);
        if !registered {
            bootstrap.push(registration);
        }
        if !bootstrap.is_empty() {
            let records = bootstrap.clone();
            store = blocking(move || store.append(&records).map(|()| store)).await??;
            for record in &bootstrap {
                image.replay(record);
            }
        }

        let manager_config = config.manager_config();
        let dir = data_dir.clone();
        let logs = Arc::new(blocking(move || LogManager::open(&dir, manager_config)).await??);
        let state = Arc::new(BrokerState::new(
            config,
            cluster_id,
            advertised,
            Arc::clone(&logs),
            image.clone(),
            store,
        ));
        crate::reconcile::delete_stray_logs(&state, &image).await;
        crate::reconcile::reconcile(&state, &image).await;
        // The coordinator's partition count is the topic's when it exists: it decides which
        // partition every group lives on, so it must never change under existing groups.
        let offsets_partitions = image
            .topic(strom_cluster::CONSUMER_OFFSETS_TOPIC)
            .map_or(state.config.get_i32("offsets.topic.num.partitions"), |t| {
                t.partitions.len() as i32
            });
        let groups = crate::groups::GroupCoordinator::spawn(
            Arc::downgrade(&state),
            &state.config,
            offsets_partitions,
        )?;
        state.set_groups(groups.clone());
        let led = crate::groups::led_offsets_partitions(&state, &image);
        if groups.sync_partitions(led).await.is_err() {
            return Err(StartError::Task(
                "the group coordinator did not start".into(),
            ));
        }
        logs.start_background_work();

        let (shutdown, shutdown_rx) = watch::channel(false);
        let connections = TaskTracker::new();
        state.set_serving(true);
        let accept_loop = tokio::spawn(accept(
            Arc::clone(&state),
            listener,
            shutdown_rx,
            connections.clone(),
        ));
        tracing::info!(
            listen = %local_addr,
            advertised = %state.advertised,
            node_id = state.node_id,
            cluster_id = %state.cluster_id,
            data_dir = %data_dir.display(),
            "broker started"
        );
        Ok(Broker {
            state,
            local_addr,
            shutdown,
            accept_loop,
            connections,
        })
    }

    /// The address the listener bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> &Arc<BrokerState> {
        &self.state
    }

    /// Stops accepting, drains connections, flushes and checkpoints every log.
    pub async fn shutdown(self) -> Result<(), strom_log::Error> {
        self.state.set_serving(false);
        let _ = self.shutdown.send(true);
        let _ = self.accept_loop.await;
        self.connections.close();
        if tokio::time::timeout(CONNECTION_DRAIN_TIMEOUT, self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "connections did not finish within {CONNECTION_DRAIN_TIMEOUT:?}; shutting down anyway"
            );
        }
        let logs = Arc::clone(&self.state.logs);
        let result = tokio::task::spawn_blocking(move || logs.shutdown())
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "log shutdown task failed");
                Ok(())
            });
        let result = match result {
            // A log that went offline earlier cannot be closed cleanly; the log manager then
            // leaves out the clean-shutdown marker so the next start recovers it. That is the
            // right outcome of a requested shutdown, not a failure of it.
            Err(strom_log::Error::Offline(tp)) => {
                tracing::warn!(partition = %tp, "a log is offline after a storage error; the next start will recover the data directory");
                Ok(())
            }
            other => other,
        };
        tracing::info!("broker stopped");
        result
    }
}

async fn accept(
    state: Arc<BrokerState>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    connections: TaskTracker,
) {
    let limit = Arc::new(Semaphore::new(
        state
            .config
            .get_i64("max.connections")
            .clamp(1, Semaphore::MAX_PERMITS as i64) as usize,
    ));
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
        let state = Arc::clone(&state);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            crate::connection::serve(state, stream, peer, shutdown).await;
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

/// Reads `meta.properties` (Kafka's identity file for a data directory) or creates it with a
/// new cluster id. Returns the cluster id.
fn meta_properties(data_dir: &Path, node_id: i32) -> Result<String, StartError> {
    let path = data_dir.join("meta.properties");
    let io = |source| StartError::DataDir {
        path: path.clone(),
        source,
    };
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(io)?;
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
                "{} belongs to node {stored}, but this broker is node.id={node_id}",
                data_dir.display()
            )));
        }
        return props
            .get("cluster.id")
            .map(|s| s.to_string())
            .ok_or_else(|| {
                StartError::MetaProperties(format!("{} has no cluster.id", path.display()))
            });
    }
    let cluster_id = new_cluster_id();
    let text = format!(
        "# Written by strom at first start; identifies this data directory.\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\n"
    );
    let tmp = data_dir.join("meta.properties.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(cluster_id)
}

/// Kafka's cluster id format: a random UUID in URL-safe base64 without padding (22 chars).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
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
    fn meta_properties_keeps_the_cluster_id_and_checks_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let first = meta_properties(dir.path(), 1).unwrap();
        assert_eq!(meta_properties(dir.path(), 1).unwrap(), first);
        assert!(matches!(
            meta_properties(dir.path(), 2),
            Err(StartError::MetaProperties(_))
        ));
    }
}
