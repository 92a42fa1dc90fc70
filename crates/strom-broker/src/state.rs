//! The state every request handler shares: configuration, the node's part in the metadata
//! quorum (published images and the controller client), the partitions this broker hosts,
//! the data directory's logs, and the producer id allocator.
//!
//! Handlers read the metadata image by cloning an `Arc` from the quorum's publisher (never
//! blocked by a writer) and look up partitions in a map guarded by a lock held only for the
//! lookup. Nothing here changes metadata: a change is a request to the active controller
//! ([`BrokerState::controller_call`]), which may run on another node; the handler then waits
//! until this node's replica manager has acted on the image that includes the change
//! ([`BrokerState::wait_for_replicas`]), so a client that creates a topic here can use it here
//! at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use strom_cluster::{BrokerEpoch, BrokerId, MetadataImage, MetadataOffset};
use strom_log::{LogManager, TopicPartition};
use strom_quorum::{
    ControllerError, ControllerReply, ControllerRequest, ControllerResponse, QuorumNode,
};
use tokio::sync::{Mutex as AsyncMutex, watch};

use crate::config::{BrokerConfig, Endpoint};
use crate::errors::KafkaError;
use crate::groups::GroupCoordinator;
use crate::metrics::BrokerMetrics;
use crate::partition::Partition;
use crate::replication::fetcher::FetcherManager;
use crate::replication::isr::IsrChanges;
use crate::txn::TxnCoordinator;

/// The client security for the inter-broker listener. A multi-node cluster's configuration
/// was checked when it was read; a single node never connects to a peer, so a listener whose
/// client side is incomplete only matters if that changes.
fn inter_broker_security(config: &BrokerConfig) -> Option<Arc<strom_client::ClientSecurity>> {
    let name = config.inter_broker_listener.as_deref()?;
    let listener = config.client_listeners.iter().find(|l| l.name == name)?;
    let get = |property: &str| config.listener_property(name, property);
    match crate::security::inter_broker::client_security(name, listener.protocol, &get) {
        Ok(security) => security,
        Err(e) => {
            tracing::debug!(error = %e, "no client security for the inter-broker listener");
            None
        }
    }
}

/// How long a handler waits for the controller: under clients' default `request.timeout.ms`
/// (30 s), so a client gets a retriable error instead of timing out itself.
pub const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
struct ProducerIdBlock {
    next: i64,
    end: i64,
}

pub struct BrokerState {
    pub config: BrokerConfig,
    pub node_id: BrokerId,
    pub cluster_id: String,
    pub advertised: Endpoint,
    /// Every client listener's name and advertised endpoint, as the broker registers them.
    pub advertised_listeners: Vec<(String, Endpoint)>,
    pub logs: Arc<LogManager>,
    pub metrics: BrokerMetrics,
    pub quorum: Arc<QuorumNode>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// The metadata log index the replica manager has acted on.
    replicas_applied: watch::Receiver<u64>,
    producer_ids: AsyncMutex<ProducerIdBlock>,
    /// This broker's registration: its epoch, and whether the controller has it fenced.
    broker_epoch: AtomicI64,
    fenced: AtomicBool,
    /// Turns true when the controller first unfences this broker, i.e. it has applied the
    /// metadata log up to its own registration. Until then its image may be stale (a restart
    /// replays only the local metadata log), so the replica manager does not act on it.
    caught_up: watch::Sender<bool>,
    /// Started once the state is shared (it refers back to it).
    groups: OnceLock<GroupCoordinator>,
    transactions: OnceLock<TxnCoordinator>,
    /// The replica fetchers of the partitions this broker follows.
    pub fetchers: FetcherManager,
    /// Where leaders send their in-sync replica proposals; set at start.
    isr: OnceLock<IsrChanges>,
    /// True between the end of start-up and the beginning of shutdown.
    serving: AtomicBool,
    /// TLS and SASL for this broker's connections to its peers' inter-broker listener.
    inter_broker_security: Option<Arc<strom_client::ClientSecurity>>,
}

impl std::fmt::Debug for BrokerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerState")
            .field("node_id", &self.node_id)
            .field("cluster_id", &self.cluster_id)
            .finish()
    }
}

impl BrokerState {
    pub(crate) fn new(
        config: BrokerConfig,
        cluster_id: String,
        advertised: Endpoint,
        advertised_listeners: Vec<(String, Endpoint)>,
        logs: Arc<LogManager>,
        quorum: Arc<QuorumNode>,
        replicas_applied: watch::Receiver<u64>,
    ) -> Self {
        let inter_broker_security = inter_broker_security(&config);
        Self {
            inter_broker_security,
            node_id: BrokerId(config.node_id),
            config,
            cluster_id,
            advertised,
            advertised_listeners,
            logs,
            metrics: BrokerMetrics::default(),
            quorum,
            partitions: RwLock::new(HashMap::new()),
            replicas_applied,
            producer_ids: AsyncMutex::new(ProducerIdBlock::default()),
            broker_epoch: AtomicI64::new(-1),
            fenced: AtomicBool::new(true),
            caught_up: watch::Sender::new(false),
            groups: OnceLock::new(),
            transactions: OnceLock::new(),
            fetchers: FetcherManager::default(),
            isr: OnceLock::new(),
            serving: AtomicBool::new(false),
        }
    }

    /// Whether the broker has started and is not stopping: what `/ready` reports.
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    pub(crate) fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Release);
    }

    /// The group coordinator, once started.
    pub fn groups(&self) -> Option<&GroupCoordinator> {
        self.groups.get()
    }

    /// The transaction coordinator, once started.
    pub fn transactions(&self) -> Option<&TxnCoordinator> {
        self.transactions.get()
    }

    pub(crate) fn set_transactions(&self, transactions: TxnCoordinator) {
        let _ = self.transactions.set(transactions);
    }

    pub(crate) fn set_groups(&self, groups: GroupCoordinator) {
        let _ = self.groups.set(groups);
    }

    pub(crate) fn set_isr_changes(&self, isr: IsrChanges) {
        let _ = self.isr.set(isr);
    }

    /// Sends a leader's in-sync replica proposal to the controller.
    pub fn propose_isr_change(
        &self,
        partition: Arc<Partition>,
        proposal: crate::replication::leader::IsrProposal,
    ) {
        if let Some(isr) = self.isr.get() {
            isr.propose(partition, proposal);
        }
    }

    /// The current metadata image.
    /// Where this broker connects to another: its `inter.broker.listener.name` endpoint.
    pub fn inter_broker_address(
        &self,
        broker: &strom_cluster::BrokerRegistration,
    ) -> Option<String> {
        let listener = self
            .config
            .inter_broker_listener
            .as_deref()
            .unwrap_or("PLAINTEXT");
        let (host, port) = broker.address_for(listener)?;
        Some(format!("{host}:{port}"))
    }

    /// How connections to other brokers' inter-broker listener are secured (`None`:
    /// PLAINTEXT), for every [`strom_client::ConnectionConfig`] the broker opens to a peer.
    pub fn inter_broker_security(&self) -> Option<Arc<strom_client::ClientSecurity>> {
        self.inter_broker_security.clone()
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// The active controller's id as clients should see it: the quorum leader when it is a
    /// broker they can reach, else any unfenced broker (which forwards admin requests), as
    /// KRaft brokers answer.
    pub fn controller_id(&self, image: &MetadataImage) -> BrokerId {
        match self.quorum.leader() {
            Some(leader) if image.is_unfenced(leader) => leader,
            _ => image
                .unfenced_brokers()
                .map(|b| b.broker_id)
                .find(|b| *b == self.node_id)
                .or_else(|| image.unfenced_brokers().map(|b| b.broker_id).next())
                .unwrap_or(BrokerId::NONE),
        }
    }

    pub fn broker_epoch(&self) -> BrokerEpoch {
        BrokerEpoch(self.broker_epoch.load(Ordering::Acquire))
    }

    pub(crate) fn set_registration(&self, epoch: BrokerEpoch, fenced: bool) {
        self.broker_epoch.store(epoch.0, Ordering::Release);
        self.fenced.store(fenced, Ordering::Release);
    }

    /// Whether the controller has this broker fenced (it is then not in Metadata responses).
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    /// The controller has unfenced this broker once: its metadata image is caught up.
    pub(crate) fn mark_caught_up(&self) {
        self.caught_up.send_replace(true);
    }

    /// Turns true at [`BrokerState::mark_caught_up`].
    pub(crate) fn caught_up(&self) -> watch::Receiver<bool> {
        self.caught_up.subscribe()
    }

    pub fn partition(&self, topic_partition: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic_partition)
            .cloned()
    }

    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub(crate) fn insert_partition(&self, partition: Arc<Partition>) {
        self.partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(partition.topic_partition.clone(), partition);
    }

    pub(crate) fn remove_partition(
        &self,
        topic_partition: &TopicPartition,
    ) -> Option<Arc<Partition>> {
        self.partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(topic_partition)
    }

    /// Sends a request to the active controller, wherever it runs.
    pub async fn controller_call(
        &self,
        request: ControllerRequest,
    ) -> Result<ControllerResponse, KafkaError> {
        self.quorum
            .controller()
            .call(request, CONTROLLER_TIMEOUT)
            .await
            .map_err(|e| controller_error(&e))
    }

    /// Waits until this broker's partitions reflect the metadata log up to `offset` (the
    /// offset a controller write landed at), so the change is usable here. Bounded: a broker
    /// that lags is still correct, only slower to show the change.
    pub async fn wait_for_replicas(&self, offset: Option<MetadataOffset>) {
        let Some(offset) = offset else {
            return;
        };
        let mut applied = self.replicas_applied.clone();
        let _ = tokio::time::timeout(CONTROLLER_TIMEOUT, applied.wait_for(|i| *i >= offset.index))
            .await;
    }

    /// Hands out a producer id, reserving a new block from the controller when the current
    /// block is used up; blocks come from the metadata log, so ids are unique in the cluster
    /// and never reused across restarts.
    pub async fn next_producer_id(&self) -> Result<i64, KafkaError> {
        let mut block = self.producer_ids.lock().await;
        if block.next >= block.end {
            let response = self
                .controller_call(ControllerRequest::AllocateProducerIds {
                    broker_id: self.node_id,
                    broker_epoch: self.broker_epoch(),
                })
                .await?;
            let (first, count) = match response.reply {
                ControllerReply::ProducerIds(Ok(block)) => block,
                ControllerReply::ProducerIds(Err(e)) => {
                    return Err(KafkaError::new(e.error, e.message));
                }
                other => return Err(unexpected_reply(&other)),
            };
            *block = ProducerIdBlock {
                next: first,
                end: first + count,
            };
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}

/// The Kafka error a client sees when the controller cannot be reached. Both are retriable:
/// clients try again, and the next attempt may find the new controller.
pub fn controller_error(e: &ControllerError) -> KafkaError {
    match e {
        ControllerError::NotController { .. } => {
            KafkaError::new(ResponseError::NotController, e.to_string())
        }
        ControllerError::Unavailable(_) => {
            KafkaError::new(ResponseError::RequestTimedOut, e.to_string())
        }
    }
}

/// A reply of the wrong kind: a bug in the controller, reported as such.
pub fn unexpected_reply(reply: &ControllerReply) -> KafkaError {
    tracing::error!(
        ?reply,
        "the controller answered with the wrong kind of reply"
    );
    KafkaError::new(
        ResponseError::UnknownServerError,
        "unexpected controller reply",
    )
}
