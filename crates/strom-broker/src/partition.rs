//! A partition this broker hosts: its log, high watermark, leader epoch, the wake-up for
//! fetches waiting on new data, and the group commit that makes acks=all durable.
//!
//! On a single node the in-sync replica set is this broker alone, so the high watermark
//! follows the log end offset after every append. The replication issue will replace that one
//! rule (`advance_high_watermark`) with the minimum log end offset of the in-sync replicas;
//! everything that reads the high watermark already goes through it.
//!
//! Group commit: a produce with acks=all waits until its last offset is below the log's
//! flushed offset. One flusher task per partition runs at a time; requests that arrive while an
//! fsync is in progress are covered by the next one, so one fsync serves every request waiting
//! for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::time::Duration;

use strom_log::{Log, Offset, TopicPartition};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::metrics::PartitionTraffic;

/// What waiters of the group commit see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Every offset below this is fsynced.
    FlushedBelow(i64),
    /// The fsync failed; the log is offline.
    Failed,
}

/// Why a wait for durability ended without success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurabilityError {
    TimedOut,
    StorageFailed,
}

pub struct Partition {
    pub topic_partition: TopicPartition,
    pub topic_id: Uuid,
    pub log: Arc<Log>,
    /// Bytes and records in and out, for metrics.
    pub traffic: PartitionTraffic,
    leader_epoch: AtomicI32,
    /// Whether this broker leads the partition (per the latest image the replica manager
    /// acted on). A replica that does not lead keeps its log.
    leader: AtomicBool,
    high_watermark: AtomicI64,
    data_arrived: Notify,
    flush_requested_below: AtomicI64,
    flusher_running: AtomicBool,
    durability: watch::Sender<Durability>,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("topic_partition", &self.topic_partition)
            .field("high_watermark", &self.high_watermark())
            .finish()
    }
}

impl Partition {
    pub fn new(
        topic_partition: TopicPartition,
        topic_id: Uuid,
        log: Arc<Log>,
        leader_epoch: i32,
    ) -> Arc<Self> {
        let flushed = log.flushed_offset();
        let partition = Arc::new(Self {
            topic_partition,
            topic_id,
            high_watermark: AtomicI64::new(log.high_watermark()),
            log,
            traffic: PartitionTraffic::default(),
            leader_epoch: AtomicI32::new(leader_epoch),
            leader: AtomicBool::new(true),
            data_arrived: Notify::new(),
            flush_requested_below: AtomicI64::new(0),
            flusher_running: AtomicBool::new(false),
            durability: watch::Sender::new(Durability::FlushedBelow(flushed)),
        });
        partition.advance_high_watermark();
        partition
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::Release);
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    pub fn set_leader(&self, leads: bool) {
        self.leader.store(leads, Ordering::Release);
    }

    /// The offset below which records are committed and visible to consumers.
    pub fn high_watermark(&self) -> Offset {
        Offset(self.high_watermark.load(Ordering::Acquire))
    }

    /// Single node: the in-sync replica set is this broker, so every appended record is
    /// committed. The high watermark only moves forward, whatever order concurrent appends
    /// finish in.
    pub fn advance_high_watermark(&self) {
        let log_end_offset = self.log.log_end_offset();
        let previous = self
            .high_watermark
            .fetch_max(log_end_offset, Ordering::AcqRel);
        if log_end_offset > previous {
            self.log.update_high_watermark(log_end_offset);
            self.data_arrived.notify_waiters();
        }
    }

    /// A future that completes at the next append. Create it (and `enable` it) before checking
    /// for data, so an append between the check and the wait is not missed.
    pub fn data_arrived(&self) -> tokio::sync::futures::Notified<'_> {
        self.data_arrived.notified()
    }

    /// Waits until every offset below `offset_exclusive` is fsynced, starting a flush if none
    /// is running.
    pub async fn wait_durable(
        self: &Arc<Self>,
        offset_exclusive: Offset,
        timeout: Duration,
    ) -> Result<(), DurabilityError> {
        let offset_exclusive = offset_exclusive.0;
        let mut durability = self.durability.subscribe();
        self.flush_requested_below
            .fetch_max(offset_exclusive, Ordering::AcqRel);
        self.start_flusher();
        let wait = async {
            loop {
                match *durability.borrow_and_update() {
                    Durability::Failed => return Err(DurabilityError::StorageFailed),
                    Durability::FlushedBelow(flushed) if flushed >= offset_exclusive => {
                        return Ok(());
                    }
                    Durability::FlushedBelow(_) => {}
                }
                if durability.changed().await.is_err() {
                    return Err(DurabilityError::StorageFailed);
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(DurabilityError::TimedOut))
    }

    fn start_flusher(self: &Arc<Self>) {
        if self.flusher_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let partition = Arc::clone(self);
        tokio::spawn(async move { partition.run_flusher().await });
    }

    async fn run_flusher(self: Arc<Self>) {
        loop {
            let flushed = match *self.durability.borrow() {
                Durability::FlushedBelow(f) => f,
                Durability::Failed => return,
            };
            if self.flush_requested_below.load(Ordering::Acquire) > flushed {
                let log = Arc::clone(&self.log);
                let result = tokio::task::spawn_blocking(move || log.flush()).await;
                match result {
                    Ok(Ok(flushed)) => {
                        self.durability
                            .send_replace(Durability::FlushedBelow(flushed));
                    }
                    Ok(Err(e)) => {
                        tracing::error!(partition = %self.topic_partition, error = %e, "fsync failed; the partition is offline");
                        self.durability.send_replace(Durability::Failed);
                        self.flusher_running.store(false, Ordering::Release);
                        return;
                    }
                    Err(join) => {
                        tracing::error!(partition = %self.topic_partition, error = %join, "flush task failed");
                        self.durability.send_replace(Durability::Failed);
                        self.flusher_running.store(false, Ordering::Release);
                        return;
                    }
                }
                continue;
            }
            // Nothing left to flush: stop, unless a request slipped in between the check above
            // and clearing the flag, in which case this task keeps the job.
            self.flusher_running.store(false, Ordering::Release);
            let flushed = match *self.durability.borrow() {
                Durability::FlushedBelow(f) => f,
                Durability::Failed => return,
            };
            if self.flush_requested_below.load(Ordering::Acquire) <= flushed
                || self.flusher_running.swap(true, Ordering::AcqRel)
            {
                return;
            }
        }
    }
}
