//! The state every request handler shares: configuration, the current metadata image, the
//! partitions this broker leads, the data directory's logs, and the producer id allocator.
//!
//! Handlers read the metadata image by cloning an `Arc` (never blocked by a writer) and look up
//! partitions in a map guarded by a lock held only for the lookup. Changes to metadata go
//! through [`BrokerState::commit`], which serializes the controller's decisions.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use strom_cluster::controller::ApiError;
use strom_cluster::{MetadataImage, MetadataRecord, MetadataStore, StoreError};
use strom_log::{LogManager, TopicPartition};
use tokio::sync::Mutex as AsyncMutex;

use crate::config::{BrokerConfig, Endpoint};
use crate::groups::GroupCoordinator;
use crate::metrics::BrokerMetrics;
use crate::partition::Partition;

/// Producer ids a broker reserves from the controller at a time (Kafka's block size).
const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// Why a metadata change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The controller refused the change.
    #[error(transparent)]
    Refused(#[from] ApiError),
    /// The change could not be made durable.
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error("metadata task failed: {0}")]
    Task(String),
}

#[derive(Debug, Default)]
struct ProducerIdBlock {
    next: i64,
    end: i64,
}

pub struct BrokerState {
    pub config: BrokerConfig,
    pub node_id: i32,
    pub cluster_id: String,
    pub advertised: Endpoint,
    pub logs: Arc<LogManager>,
    pub metrics: BrokerMetrics,
    image: RwLock<Arc<MetadataImage>>,
    /// Serializes controller decisions so each is made against the latest image.
    controller: AsyncMutex<()>,
    store: Arc<std::sync::Mutex<MetadataStore>>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    producer_ids: AsyncMutex<ProducerIdBlock>,
    /// Started once the state is shared (it refers back to it).
    groups: OnceLock<GroupCoordinator>,
    /// True between the end of start-up and the beginning of shutdown.
    serving: std::sync::atomic::AtomicBool,
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
        logs: Arc<LogManager>,
        image: MetadataImage,
        store: MetadataStore,
    ) -> Self {
        Self {
            node_id: config.node_id,
            config,
            cluster_id,
            advertised,
            logs,
            metrics: BrokerMetrics::default(),
            image: RwLock::new(Arc::new(image)),
            controller: AsyncMutex::new(()),
            store: Arc::new(std::sync::Mutex::new(store)),
            partitions: RwLock::new(HashMap::new()),
            producer_ids: AsyncMutex::new(ProducerIdBlock::default()),
            groups: OnceLock::new(),
            serving: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the broker has started and is not stopping: what `/ready` reports.
    pub fn is_serving(&self) -> bool {
        self.serving.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn set_serving(&self, serving: bool) {
        self.serving
            .store(serving, std::sync::atomic::Ordering::Release);
    }

    /// The group coordinator, once started.
    pub fn groups(&self) -> Option<&GroupCoordinator> {
        self.groups.get()
    }

    pub(crate) fn set_groups(&self, groups: GroupCoordinator) {
        let _ = self.groups.set(groups);
    }

    /// The current metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.read().unwrap_or_else(|e| e.into_inner()))
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

    /// Makes a controller decision against the latest image and, if it produces records,
    /// makes them durable, publishes the new image and brings local partitions in line.
    /// Returns the decision's value with the image that includes it.
    pub async fn commit<T>(
        &self,
        decide: impl FnOnce(&MetadataImage) -> Result<(Vec<MetadataRecord>, T), ApiError>,
    ) -> Result<(T, Arc<MetadataImage>), CommitError> {
        let _controller = self.controller.lock().await;
        let before = self.image();
        let (records, value) = decide(&before)?;
        if records.is_empty() {
            return Ok((value, before));
        }
        let store = Arc::clone(&self.store);
        let to_write = records.clone();
        tokio::task::spawn_blocking(move || {
            store
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .append(&to_write)
        })
        .await
        .map_err(|e| CommitError::Task(e.to_string()))??;
        let mut after = (*before).clone();
        for record in &records {
            after.replay(record);
        }
        let after = Arc::new(after);
        *self.image.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&after);
        crate::reconcile::reconcile(self, &after).await;
        Ok((value, after))
    }

    /// Hands out a producer id, reserving a new block from the controller when the current
    /// block is used up, so ids are never reused across restarts.
    pub async fn next_producer_id(&self) -> Result<i64, CommitError> {
        let mut block = self.producer_ids.lock().await;
        if block.next >= block.end {
            let node_id = self.node_id;
            let (first, _) = self
                .commit(|image| {
                    let (first, record) = strom_cluster::controller::allocate_producer_ids(
                        image,
                        node_id,
                        PRODUCER_ID_BLOCK_SIZE,
                    );
                    Ok((vec![record], first))
                })
                .await?;
            *block = ProducerIdBlock {
                next: first,
                end: first + PRODUCER_ID_BLOCK_SIZE,
            };
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}
