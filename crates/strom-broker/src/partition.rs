//! A partition this broker hosts: its log, its role (leader, follower, or neither), the one
//! high watermark, the wake-up for fetches waiting on new data, and the waits of acks=all
//! writes.
//!
//! - **One append path.** Every writer on the leader (produce, the group coordinator's
//!   writer) goes through [`Partition::append_as_leader`]: role and `min.insync.replicas`
//!   check, the log append, the leader's replica state learns the new log end offset, the
//!   high watermark may move, fetches waiting for data wake. [`Partition::wait_committed`] is
//!   acks=all: until every in-sync replica has the records (the high watermark passes them)
//!   and, with `strom.fsync.acks.all`, when the leader is the only in-sync replica (it has no
//!   replica to lean on), until it has fsynced them.
//! - **One high watermark**: the log's ([`strom_log::Log::high_watermark`], checkpointed by
//!   the log manager). On the leader it follows [`LeaderReplicas`]; on a follower, the leader's
//!   as reported in fetch responses, capped at the local log end.
//! - **Role changes** come from the replica manager. A leader that stops leading fails its
//!   pending acks=all waits with NOT_LEADER_OR_FOLLOWER: a write it could not get committed is
//!   never acknowledged by it. A leader that stays leader into a new epoch (a reassignment
//!   changed the replicas) keeps them, as Kafka's delayed produce does: its log is never
//!   truncated while it leads, so the records the waits are for are still where they were
//!   appended and commit once the new in-sync replicas have them. Failing them would tell
//!   the producer "not appended" about records that are in the log.
//!
//! Locks: `role` is a std mutex held for a few field updates, never across IO or an await.
//!
//! Group commit of fsyncs: a wait for durability starts a flusher if none runs; requests that
//! arrive during an fsync are covered by the next one, so one fsync serves every waiter.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use strom_cluster::BrokerId;
use strom_log::{AppendInfo, Log, Offset, TopicPartition};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::errors::KafkaError;
use crate::metrics::PartitionTraffic;
use crate::replication::leader::{IsrProposal, LeaderReplicas, PartitionAssignment, ReplicaConfig};

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

/// What acks=all waiters see: the high watermark and the leadership it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Commit {
    high_watermark: i64,
    /// Bumped whenever this broker's leadership of the partition starts or ends.
    generation: u64,
}

/// This broker's role for the partition.
#[derive(Debug)]
enum Role {
    Leader(LeaderReplicas),
    Follower {
        leader: BrokerId,
    },
    /// Not leading and not following (the partition has no leader, or is being stopped).
    None,
}

/// An append's result and the leadership it happened under (for [`Partition::wait_committed`]).
#[derive(Debug, Clone)]
pub struct Appended {
    pub info: AppendInfo,
    generation: u64,
    /// The leader was the only in-sync replica when it appended.
    alone: bool,
}

pub struct Partition {
    pub topic_partition: TopicPartition,
    pub topic_id: Uuid,
    pub log: Arc<Log>,
    /// Bytes and records in and out, for metrics.
    pub traffic: PartitionTraffic,
    local: BrokerId,
    role: Mutex<Role>,
    /// Held (on the blocking pool only) while a replica fetcher truncates or appends, and while
    /// this broker becomes leader: a fetch answer from a leader this replica no longer follows
    /// must never land after the role changed.
    replica_io: Mutex<()>,
    /// Readable without the lock on the fetch and produce paths.
    leader_epoch: AtomicI32,
    leader: AtomicBool,
    data_arrived: Notify,
    commit: watch::Sender<Commit>,
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
    /// A hosted replica with no role yet; the replica manager makes it leader or follower.
    pub fn new(
        topic_partition: TopicPartition,
        topic_id: Uuid,
        log: Arc<Log>,
        local: BrokerId,
    ) -> Arc<Self> {
        let flushed = log.flushed_offset();
        let high_watermark = log.high_watermark();
        Arc::new(Self {
            topic_partition,
            topic_id,
            log,
            traffic: PartitionTraffic::default(),
            local,
            role: Mutex::new(Role::None),
            replica_io: Mutex::new(()),
            leader_epoch: AtomicI32::new(-1),
            leader: AtomicBool::new(false),
            data_arrived: Notify::new(),
            commit: watch::Sender::new(Commit {
                high_watermark,
                generation: 0,
            }),
            flush_requested_below: AtomicI64::new(0),
            flusher_running: AtomicBool::new(false),
            durability: watch::Sender::new(Durability::FlushedBelow(flushed)),
        })
    }

    fn role(&self) -> MutexGuard<'_, Role> {
        self.role.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Whether this broker leads the partition.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// Serializes a follower's log changes with role changes (see the field). Blocking: take
    /// it on the blocking pool only.
    pub fn replica_io(&self) -> MutexGuard<'_, ()> {
        self.replica_io.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this broker follows `leader` at `leader_epoch` right now.
    pub fn follows(&self, leader: BrokerId, leader_epoch: i32) -> bool {
        self.leader_epoch() == leader_epoch && self.followed_leader() == Some(leader)
    }

    /// The leader this broker follows, when it follows one.
    pub fn followed_leader(&self) -> Option<BrokerId> {
        match &*self.role() {
            Role::Follower { leader } => Some(*leader),
            _ => None,
        }
    }

    /// The in-sync replicas as the leader holds them; empty when not leading.
    pub fn in_sync_replicas(&self) -> Vec<BrokerId> {
        match &*self.role() {
            Role::Leader(replicas) => replicas.in_sync_replicas().to_vec(),
            _ => Vec::new(),
        }
    }

    /// The offset below which records are committed and visible to consumers.
    pub fn high_watermark(&self) -> Offset {
        Offset(self.log.high_watermark())
    }

    /// Becomes (or stays) leader at `assignment.leader_epoch`. A new epoch's start offset is
    /// recorded in the log's epoch cache (blocking file IO: the replica manager calls this on
    /// the pool). Pending acks=all waits carry over from a previous epoch this broker led
    /// without interruption (see the module docs).
    pub fn become_leader(
        &self,
        assignment: PartitionAssignment,
        config: ReplicaConfig,
        now_ms: i64,
    ) -> Result<(), strom_log::Error> {
        let epoch = assignment.leader_epoch;
        let mut role = self.role();
        if let Role::Leader(current) = &mut *role
            && current.leader_epoch() == epoch
        {
            current.set_config(config);
            current.update(assignment, self.log.log_end_offset(), now_ms);
            let high_watermark = current.high_watermark();
            drop(role);
            self.publish_high_watermark(high_watermark);
            return Ok(());
        }
        drop(role);
        // No fetch answer from the previous leader may land once this broker leads.
        let _io = self.replica_io();
        let mut role = self.role();
        let was_leader = matches!(*role, Role::Leader(_));
        self.log
            .assign_epoch_start_offset(epoch.0, self.log.log_end_offset())?;
        let replicas = LeaderReplicas::become_leader(
            self.local,
            assignment,
            config,
            self.log.log_end_offset(),
            self.log.high_watermark(),
            now_ms,
        );
        let high_watermark = replicas.high_watermark();
        *role = Role::Leader(replicas);
        self.leader_epoch.store(epoch.0, Ordering::Release);
        self.leader.store(true, Ordering::Release);
        drop(role);
        if !was_leader {
            self.new_generation();
        }
        self.publish_high_watermark(high_watermark);
        Ok(())
    }

    /// Follows `leader` at `leader_epoch` (or nobody, with [`BrokerId::NONE`]).
    pub fn become_follower(&self, leader: BrokerId, leader_epoch: i32) {
        let mut role = self.role();
        let was_leader = matches!(*role, Role::Leader(_));
        *role = if leader.is_none() {
            Role::None
        } else {
            Role::Follower { leader }
        };
        self.leader_epoch.store(leader_epoch, Ordering::Release);
        self.leader.store(false, Ordering::Release);
        drop(role);
        if was_leader {
            self.new_generation();
        }
    }

    /// Stops the replica (it is being deleted): like losing leadership.
    pub fn stop(&self) {
        self.become_follower(BrokerId::NONE, self.leader_epoch());
    }

    fn new_generation(&self) {
        self.commit.send_modify(|c| c.generation += 1);
        self.data_arrived.notify_waiters();
    }

    fn publish_high_watermark(&self, high_watermark: i64) {
        let previous = self.log.high_watermark();
        if high_watermark > previous {
            self.log.update_high_watermark(high_watermark);
            self.commit
                .send_modify(|c| c.high_watermark = high_watermark);
            // Consumers wait for the high watermark, not for the append itself.
            self.data_arrived.notify_waiters();
        }
    }

    /// The one append path of a leader: checks this broker leads (NOT_LEADER_OR_FOLLOWER) and,
    /// for acks=all, that the in-sync replicas number at least `min.insync.replicas`
    /// (NOT_ENOUGH_REPLICAS); appends; moves the high watermark if it can; wakes fetches.
    /// Blocking file IO: runs on the blocking pool (see [`Partition::try_append_inline`]).
    pub fn append_as_leader(
        &self,
        records: &[u8],
        acks_all: bool,
        now_ms: i64,
    ) -> Result<Appended, KafkaError> {
        let attempt = self.append_with(acks_all, |epoch| {
            self.log.append_as_leader(records, epoch, now_ms).map(Some)
        });
        attempt.and_then(|appended| appended.ok_or_else(not_leader))
    }

    /// The group coordinator's transactional offset commits (TxnOffsetCommit): batches with a
    /// producer id and no sequence numbers, appended without the client's sequence checks, as
    /// Kafka's coordinator-origin appends. Always acks=all. Blocking file IO.
    pub fn append_as_coordinator(
        &self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<Appended, KafkaError> {
        let attempt = self.append_with(true, |epoch| {
            self.log
                .append_as_coordinator(records, epoch, now_ms)
                .map(Some)
        });
        attempt.and_then(|appended| appended.ok_or_else(not_leader))
    }

    /// WriteTxnMarkers on this leader: appends the COMMIT or ABORT marker that ends
    /// `producer_id`'s transaction here. Always acks=all (the coordinator completes the
    /// transaction only once every marker is committed). Blocking file IO.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: strom_log::control::Marker,
        now_ms: i64,
    ) -> Result<Appended, KafkaError> {
        let attempt = self.append_with(true, |epoch| {
            self.log
                .append_marker_as_leader(producer_id, producer_epoch, marker, epoch, now_ms)
                .map(|(info, _)| Some(info))
        });
        attempt.and_then(|appended| appended.ok_or_else(not_leader))
    }

    /// The last stable offset: the first offset of the oldest open transaction, or the high
    /// watermark when none is open below it. A read_committed consumer reads up to here.
    pub fn last_stable_offset(&self) -> i64 {
        self.log.last_stable_offset()
    }

    /// [`Partition::append_as_leader`] for a caller on an async worker: `None` when the append
    /// would block on more than a page-cache write (a contended lock, a segment roll, a new
    /// epoch to persist, a `flush.messages` fsync), and nothing changed; the caller then uses
    /// the blocking pool.
    pub fn try_append_inline(
        &self,
        records: &[u8],
        acks_all: bool,
        now_ms: i64,
    ) -> Option<Result<Appended, KafkaError>> {
        let attempt = self.append_with(acks_all, |epoch| {
            self.log.try_append_as_leader_inline(records, epoch, now_ms)
        });
        match attempt {
            Ok(None) => None,
            Ok(Some(appended)) => Some(Ok(appended)),
            Err(e) => Some(Err(e)),
        }
    }

    fn append_with(
        &self,
        acks_all: bool,
        append: impl FnOnce(i32) -> Result<Option<AppendInfo>, strom_log::AppendError>,
    ) -> Result<Option<Appended>, KafkaError> {
        let (epoch, generation, alone) = {
            let role = self.role();
            let Role::Leader(replicas) = &*role else {
                return Err(not_leader());
            };
            if acks_all && !replicas.has_min_isr() {
                return Err(KafkaError::new(
                    ResponseError::NotEnoughReplicas,
                    format!(
                        "{} in-sync replica(s), fewer than min.insync.replicas",
                        replicas.in_sync_replicas().len()
                    ),
                ));
            }
            (
                replicas.leader_epoch(),
                self.commit.borrow().generation,
                replicas.in_sync_replicas().len() <= 1,
            )
        };
        let info = append(epoch.0).map_err(|e| {
            let error = KafkaError::from(&e);
            if error.error == ResponseError::KafkaStorageError {
                tracing::error!(partition = %self.topic_partition, error = %e, "append failed");
            }
            error
        })?;
        let Some(info) = info else {
            return Ok(None);
        };
        self.after_local_append();
        Ok(Some(Appended {
            info,
            generation,
            alone,
        }))
    }

    fn after_local_append(&self) {
        let high_watermark = {
            let mut role = self.role();
            match &mut *role {
                Role::Leader(replicas) => {
                    replicas.on_local_append(self.log.log_end_offset());
                    replicas.high_watermark()
                }
                _ => return,
            }
        };
        self.publish_high_watermark(high_watermark);
        self.data_arrived.notify_waiters();
    }

    /// acks=all: waits until the in-sync replicas have every record of `appended` (the high
    /// watermark passes them) and, with `fsync_alone`, when the leader is the only in-sync
    /// replica (at the append or once replicated), until it has fsynced them: a lone replica
    /// has nothing else to lean on, while several in-sync replicas lean on each other, as in
    /// Kafka. Then checks the in-sync replicas still number `min.insync.replicas`
    /// (NOT_ENOUGH_REPLICAS_AFTER_APPEND). Fails with NOT_LEADER_OR_FOLLOWER if this broker
    /// stops leading meanwhile, and REQUEST_TIMED_OUT after `timeout`.
    pub async fn wait_committed(
        self: &Arc<Self>,
        appended: &Appended,
        fsync_alone: bool,
        timeout: Duration,
    ) -> Result<(), KafkaError> {
        let end = appended.info.last_offset + 1;
        let storage_failed = || {
            KafkaError::new(
                ResponseError::KafkaStorageError,
                "The records could not be fsynced; the partition is offline.",
            )
        };
        let committed = async {
            let replicated = self.wait_high_watermark(end, appended.generation);
            let durable = async {
                if fsync_alone && appended.alone {
                    self.wait_durable(Offset(end)).await
                } else {
                    Ok(())
                }
            };
            let (replicated, durable) = tokio::join!(replicated, durable);
            replicated?;
            durable.map_err(|_| storage_failed())?;
            // The ISR shrank to the leader while the records were replicated: it alone holds
            // them now, so they must be on its disk.
            if fsync_alone && !appended.alone && self.in_sync_replicas().len() <= 1 {
                self.wait_durable(Offset(end))
                    .await
                    .map_err(|_| storage_failed())?;
            }
            Ok::<(), KafkaError>(())
        };
        tokio::time::timeout(timeout, committed)
            .await
            .unwrap_or_else(|_| Err(timed_out()))?;
        match &*self.role() {
            Role::Leader(replicas) if !replicas.has_min_isr() => Err(KafkaError::new(
                ResponseError::NotEnoughReplicasAfterAppend,
                "The records were written, but the in-sync replicas fell below min.insync.replicas.",
            )),
            _ => Ok(()),
        }
    }

    async fn wait_high_watermark(&self, end: i64, generation: u64) -> Result<(), KafkaError> {
        let mut commit = self.commit.subscribe();
        loop {
            let current = *commit.borrow_and_update();
            if current.generation != generation {
                return Err(not_leader());
            }
            if current.high_watermark >= end {
                return Ok(());
            }
            if commit.changed().await.is_err() {
                return Err(not_leader());
            }
        }
    }

    /// A follower fetched from `fetch_offset`: updates its progress (perhaps the high
    /// watermark) and returns an ISR expansion to propose. `Err` when this broker does not
    /// lead or `follower` is not a replica.
    pub fn on_follower_fetch(
        &self,
        follower: BrokerId,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Result<Option<IsrProposal>, KafkaError> {
        let (proposal, high_watermark) = {
            let mut role = self.role();
            let Role::Leader(replicas) = &mut *role else {
                return Err(not_leader());
            };
            if !replicas.is_replica(follower) {
                return Err(KafkaError::new(
                    ResponseError::NotLeaderOrFollower,
                    format!(
                        "Broker {follower} is not a replica of {}.",
                        self.topic_partition
                    ),
                ));
            }
            let proposal = replicas.on_follower_fetch(
                follower,
                fetch_offset,
                self.log.log_end_offset(),
                now_ms,
            );
            (proposal, replicas.high_watermark())
        };
        self.publish_high_watermark(high_watermark);
        Ok(proposal)
    }

    /// Checks for lagging in-sync followers (the ISR task calls this): an ISR shrink to
    /// propose, and when to check again.
    pub fn poll_isr(&self, now_ms: i64) -> (Option<IsrProposal>, Option<i64>) {
        let mut role = self.role();
        match &mut *role {
            Role::Leader(replicas) => {
                let proposal = replicas.poll(self.log.log_end_offset(), now_ms);
                (proposal, replicas.next_deadline())
            }
            _ => (None, None),
        }
    }

    /// The controller refused (or did not answer) this leader's ISR proposal.
    pub fn isr_change_failed(&self) {
        if let Role::Leader(replicas) = &mut *self.role() {
            replicas.isr_change_failed(crate::now_ms());
        }
    }

    /// A follower appended what it fetched; the leader said its high watermark is
    /// `leader_high_watermark`.
    pub fn on_follower_append(&self, leader_high_watermark: i64) {
        let high_watermark = leader_high_watermark.min(self.log.log_end_offset());
        self.publish_high_watermark(high_watermark);
        self.data_arrived.notify_waiters();
    }

    /// A future that completes at the next append or high watermark change. Create it (and
    /// `enable` it) before checking for data, so a change between the check and the wait is
    /// not missed.
    pub fn data_arrived(&self) -> tokio::sync::futures::Notified<'_> {
        self.data_arrived.notified()
    }

    /// Waits until every offset below `offset_exclusive` is fsynced, starting a flush if none
    /// is running. Unbounded: callers bound it.
    pub async fn wait_durable(
        self: &Arc<Self>,
        offset_exclusive: Offset,
    ) -> Result<(), DurabilityError> {
        let offset_exclusive = offset_exclusive.0;
        let mut durability = self.durability.subscribe();
        self.flush_requested_below
            .fetch_max(offset_exclusive, Ordering::AcqRel);
        self.start_flusher();
        loop {
            match *durability.borrow_and_update() {
                Durability::Failed => return Err(DurabilityError::StorageFailed),
                Durability::FlushedBelow(flushed) if flushed >= offset_exclusive => return Ok(()),
                Durability::FlushedBelow(_) => {}
            }
            if durability.changed().await.is_err() {
                return Err(DurabilityError::StorageFailed);
            }
        }
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

fn not_leader() -> KafkaError {
    KafkaError::new(
        ResponseError::NotLeaderOrFollower,
        "This server is not the leader for that topic-partition.",
    )
}

fn timed_out() -> KafkaError {
    KafkaError::new(
        ResponseError::RequestTimedOut,
        "The records were appended but not committed within the request timeout.",
    )
}

#[cfg(test)]
mod tests;
