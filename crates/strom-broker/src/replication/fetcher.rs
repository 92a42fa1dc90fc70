//! Replica fetchers: one task per source broker fetches every partition this broker follows on
//! it, in one Fetch request per round (Kafka's `ReplicaFetcherThread`).
//!
//! ```text
//!  replica manager ─follow(tp, leader, epoch)─▶ FetcherManager ─▶ fetcher for `leader`
//!                                                                    │
//!   new epoch ─▶ OffsetForLeaderEpoch ─▶ truncate (replication::truncation) ─▶ fetching
//!   fetching  ─▶ Fetch (replica id, long poll) ─▶ append_as_follower ─▶ next round
//! ```
//!
//! A partition starts every leadership (a new leader or leader epoch) by truncating: whatever
//! it has beyond where the leader's log diverges goes (KIP-101/279), never by high watermark
//! alone. Then each round appends the records the leader returned and records the leader's
//! high watermark; the next fetch's offset is what tells the leader this replica has them.
//! Like Kafka's followers, it does not fsync on this path: in-sync replicas lean on each other
//! (the log's own flush policy, `flush.messages` / `flush.ms`, still applies). File IO runs on
//! the blocking pool.
//!
//! Errors a partition gets from the leader pause it (a fenced or unknown epoch waits for the
//! metadata that changes it; the replica manager then follows anew); a lost connection is
//! retried with a short backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId as WireBrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_client::{Connection, ConnectionConfig};
use strom_cluster::BrokerId;
use strom_log::TopicPartition;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::truncation::{self, LeaderEpochEnd, Truncation};
use crate::partition::Partition;
use crate::state::BrokerState;

/// The Fetch version followers use: replica id in the request body (v4-14) and topics by
/// name; every Strom broker serves it.
const FETCH_VERSION: i16 = 12;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;
/// Kafka's `replica.fetch.wait.max.ms`, `replica.fetch.min.bytes`, `replica.fetch.max.bytes`,
/// `replica.fetch.response.max.bytes`.
const FETCH_WAIT_MS: i32 = 500;
const FETCH_MIN_BYTES: i32 = 1;
const PARTITION_MAX_BYTES: i32 = 1024 * 1024;
const RESPONSE_MAX_BYTES: i32 = 10 * 1024 * 1024;
/// Pause after a connection failure, and for a partition the leader refused.
const BACKOFF: Duration = Duration::from_millis(200);

/// Where one followed partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Must ask the leader where its log diverges before fetching.
    Truncating,
    Fetching,
    /// The leader refused it; wait (for new metadata, or a moment), then truncate again:
    /// whatever the refusal was, asking where the logs diverge is always safe.
    Paused(tokio::time::Instant),
}

struct Followed {
    partition: Arc<Partition>,
    leader_epoch: i32,
    phase: Phase,
}

type Partitions = Arc<Mutex<HashMap<TopicPartition, Followed>>>;

struct Fetcher {
    partitions: Partitions,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

/// Every fetcher of this broker, by source broker.
#[derive(Default)]
pub struct FetcherManager {
    fetchers: Mutex<HashMap<BrokerId, Fetcher>>,
}

impl FetcherManager {
    /// Follows `partition` on `leader` at `leader_epoch`, starting with truncation. Removes it
    /// from any other fetcher.
    pub fn follow(
        &self,
        state: &Arc<BrokerState>,
        partition: Arc<Partition>,
        leader: BrokerId,
        leader_epoch: i32,
    ) {
        let tp = partition.topic_partition.clone();
        let mut fetchers = lock(&self.fetchers);
        for (source, fetcher) in fetchers.iter() {
            if *source != leader {
                lock(&fetcher.partitions).remove(&tp);
            }
        }
        let fetcher = fetchers
            .entry(leader)
            .or_insert_with(|| spawn(Arc::downgrade(state), leader));
        lock(&fetcher.partitions).insert(
            tp,
            Followed {
                partition,
                leader_epoch,
                phase: Phase::Truncating,
            },
        );
        fetcher.wake.notify_one();
    }

    /// Stops fetching `tp` (the broker leads it now, or no longer hosts it).
    pub fn unfollow(&self, tp: &TopicPartition) {
        for fetcher in lock(&self.fetchers).values() {
            lock(&fetcher.partitions).remove(tp);
        }
    }

    /// Stops every fetcher.
    pub fn shutdown(&self) {
        for (_, fetcher) in lock(&self.fetchers).drain() {
            fetcher.task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn spawn(state: Weak<BrokerState>, source: BrokerId) -> Fetcher {
    let partitions: Partitions = Arc::default();
    let wake = Arc::new(Notify::new());
    let task = tokio::spawn(run(
        state,
        source,
        Arc::clone(&partitions),
        Arc::clone(&wake),
    ));
    Fetcher {
        partitions,
        wake,
        task,
    }
}

async fn run(
    state: Weak<BrokerState>,
    source: BrokerId,
    partitions: Partitions,
    wake: Arc<Notify>,
) {
    let mut connection: Option<Connection> = None;
    loop {
        if lock(&partitions).is_empty() {
            wake.notified().await;
            continue;
        }
        let Some(state) = state.upgrade() else { return };
        let conn = match &connection {
            Some(c) if !c.is_closed() => c.clone(),
            _ => match connect(&state, source).await {
                Some(c) => {
                    connection = Some(c.clone());
                    c
                }
                None => {
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
            },
        };
        let ok = round(&state, source, &conn, &partitions).await;
        if !ok {
            connection = None;
            tokio::time::sleep(BACKOFF).await;
        }
    }
}

/// Connects to the source broker's client listener, as the metadata image names it.
async fn connect(state: &BrokerState, source: BrokerId) -> Option<Connection> {
    let image = state.image();
    let broker = image.brokers.get(&source)?;
    let address = state.inter_broker_address(broker)?;
    let config = ConnectionConfig {
        client_id: Some(format!("strom-replica-fetcher-{}", state.node_id)),
        security: state.inter_broker_security(),
        ..ConnectionConfig::default()
    };
    match Connection::connect(&address, &config).await {
        Ok(c) => Some(c),
        Err(e @ strom_client::Error::Authentication(_)) => {
            tracing::warn!(leader = %source, %address, error = %e, "replica fetcher cannot authenticate");
            None
        }
        Err(e) => {
            tracing::debug!(leader = %source, %address, error = %e, "replica fetcher cannot connect");
            None
        }
    }
}

/// A followed partition as one round sees it: what the fetcher asks and appends for.
#[derive(Clone)]
struct Target {
    tp: TopicPartition,
    partition: Arc<Partition>,
    /// The leader fetched from and its epoch: an answer is used only while the partition
    /// still follows that leader at that epoch.
    source: BrokerId,
    leader_epoch: i32,
    /// The fetch offset sent: an answer is appended only if the log still ends there.
    fetch_offset: i64,
}

impl Target {
    /// Whether the answer still applies. Checked under the partition's replica-IO lock, which
    /// role changes also take, so nothing from a leader this replica no longer follows lands.
    fn current(&self) -> bool {
        self.partition.follows(self.source, self.leader_epoch)
    }
}

/// The followed partitions in `phase`, as targets for this round.
fn targets(partitions: &Partitions, source: BrokerId, phase: Phase) -> Vec<Target> {
    let now = tokio::time::Instant::now();
    let mut followed = lock(partitions);
    let mut out = Vec::new();
    for (tp, f) in followed.iter_mut() {
        if let Phase::Paused(until) = f.phase
            && until <= now
        {
            f.phase = Phase::Truncating;
        }
        if f.phase == phase {
            out.push(Target {
                tp: tp.clone(),
                partition: Arc::clone(&f.partition),
                source,
                leader_epoch: f.leader_epoch,
                fetch_offset: f.partition.log.log_end_offset(),
            });
        }
    }
    out
}

/// Sets a partition's phase, if this fetcher still follows it at the target's epoch.
fn set_phase(partitions: &Partitions, target: &Target, phase: Phase) {
    if let Some(f) = lock(partitions).get_mut(&target.tp)
        && f.leader_epoch == target.leader_epoch
        && Arc::ptr_eq(&f.partition, &target.partition)
    {
        f.phase = phase;
    }
}

fn pause(partitions: &Partitions, target: &Target, error_code: i16) {
    let error = ResponseError::try_from_code(error_code);
    tracing::debug!(partition = %target.tp, ?error, "the leader refused a replica request; pausing");
    set_phase(
        partitions,
        target,
        Phase::Paused(tokio::time::Instant::now() + BACKOFF * 5),
    );
}

/// One round: truncation for partitions that need it, then one fetch. `false` when the
/// connection failed.
async fn round(
    state: &Arc<BrokerState>,
    source: BrokerId,
    conn: &Connection,
    partitions: &Partitions,
) -> bool {
    let truncating = targets(partitions, source, Phase::Truncating);
    if !truncating.is_empty() && !truncate(state, conn, partitions, truncating).await {
        return false;
    }
    fetch(state, source, conn, partitions).await
}

/// Asks the leader where each partition's latest local epoch ends and truncates there.
async fn truncate(
    state: &Arc<BrokerState>,
    conn: &Connection,
    partitions: &Partitions,
    work: Vec<Target>,
) -> bool {
    // Each round asks about one epoch per partition; KIP-279 may need another round.
    let mut asked: Vec<(Target, i32)> = Vec::new();
    let mut topics: HashMap<String, Vec<OffsetForLeaderPartition>> = HashMap::new();
    for target in work {
        let Some(latest) = target.partition.log.latest_epoch() else {
            // No epochs: an empty log; nothing can diverge.
            let hw = target.partition.high_watermark().0;
            if truncate_to(&target, hw, false).await {
                set_phase(partitions, &target, Phase::Fetching);
            }
            continue;
        };
        topics.entry(target.tp.topic.clone()).or_default().push(
            OffsetForLeaderPartition::default()
                .with_partition(target.tp.partition)
                .with_current_leader_epoch(target.leader_epoch)
                .with_leader_epoch(latest),
        );
        asked.push((target, latest));
    }
    if topics.is_empty() {
        return true;
    }
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(WireBrokerId(state.node_id.0))
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetForLeaderTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(name)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = match conn
        .send_with_timeout(
            request,
            OFFSET_FOR_LEADER_EPOCH_VERSION,
            Duration::from_secs(30),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(error = %e, "OffsetForLeaderEpoch to the leader failed");
            return false;
        }
    };
    for topic in response.topics {
        for p in topic.partitions {
            let Some((target, asked_epoch)) = asked
                .iter()
                .find(|(t, _)| t.tp.topic == topic.topic.as_str() && t.tp.partition == p.partition)
            else {
                continue;
            };
            if p.error_code != 0 {
                pause(partitions, target, p.error_code);
                continue;
            }
            let answer = LeaderEpochEnd {
                epoch: p.leader_epoch,
                end_offset: p.end_offset,
            };
            let log = Arc::clone(&target.partition.log);
            let decision = truncation::decide(
                *asked_epoch,
                answer,
                log.log_end_offset(),
                target.partition.high_watermark().0,
                |e| log.end_offset_for_epoch(e),
            );
            tracing::debug!(partition = %target.tp, asked_epoch, ?answer, ?decision, log_end_offset = log.log_end_offset(), "truncation decided");
            match decision {
                Truncation::To(offset) => {
                    if truncate_to(target, offset, false).await {
                        set_phase(partitions, target, Phase::Fetching);
                    }
                }
                // KIP-279's extra round: truncate to where the older local epoch ends, which
                // makes it the latest; the next round asks about it (still Truncating).
                Truncation::AskAbout(epoch) => {
                    let end = log.end_offset_for_epoch(epoch).map_or(0, |(_, end)| end);
                    truncate_to(target, end, false).await;
                }
            }
        }
    }
    true
}

/// Truncates the target's log to `offset` (or, with `start_over`, empties it and restarts it
/// there), if the partition still follows the target's leader. `false` if it did not.
async fn truncate_to(target: &Target, offset: i64, start_over: bool) -> bool {
    let target = target.clone();
    let task = tokio::task::spawn_blocking(move || {
        let _io = target.partition.replica_io();
        if !target.current() {
            return Ok(false);
        }
        let log = &target.partition.log;
        if start_over {
            tracing::info!(partition = %target.tp, offset, "the leader's log starts past this replica's end; starting over there");
            log.truncate_fully_and_start_at(offset, crate::now_ms())?;
        } else {
            if offset < log.log_end_offset() {
                tracing::info!(partition = %target.tp, from = log.log_end_offset(), to = offset, "truncating to the leader's log");
            }
            // Also at the log end: an epoch this replica led without writing must go.
            log.truncate_to(offset, crate::now_ms())?;
        }
        Ok::<bool, strom_log::Error>(true)
    });
    match task.await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot truncate a follower's log");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "truncate task failed");
            false
        }
    }
}

/// One Fetch for every partition in the fetching phase.
async fn fetch(
    state: &Arc<BrokerState>,
    source: BrokerId,
    conn: &Connection,
    partitions: &Partitions,
) -> bool {
    let targets = targets(partitions, source, Phase::Fetching);
    if targets.is_empty() {
        // Everything paused or truncating: come back shortly.
        tokio::time::sleep(BACKOFF).await;
        return true;
    }
    let request = fetch_request(state, &targets);
    let timeout = Duration::from_millis(FETCH_WAIT_MS as u64) + Duration::from_secs(30);
    let response = match conn
        .send_with_timeout(request, FETCH_VERSION, timeout)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(error = %e, "replica fetch failed");
            return false;
        }
    };
    if response.error_code != 0 {
        tracing::debug!(code = response.error_code, "replica fetch refused");
        tokio::time::sleep(BACKOFF).await;
        return true;
    }
    let mut appends: Vec<(Target, Bytes, i64, i64)> = Vec::new();
    for topic in response.responses {
        for p in topic.partitions {
            let Some(target) = targets.iter().find(|t| {
                t.tp.topic == topic.topic.as_str() && t.tp.partition == p.partition_index
            }) else {
                continue;
            };
            match ResponseError::try_from_code(p.error_code) {
                None if p.error_code == 0 => {
                    if p.diverging_epoch.epoch >= 0 {
                        // The leader says the log diverged after this epoch: truncate by epoch.
                        tracing::debug!(partition = %target.tp, diverging_epoch = p.diverging_epoch.epoch, end_offset = p.diverging_epoch.end_offset, "the leader says this log diverged");
                        set_phase(partitions, target, Phase::Truncating);
                        continue;
                    }
                    let records = p.records.unwrap_or_default();
                    appends.push((
                        target.clone(),
                        records,
                        p.high_watermark,
                        p.log_start_offset,
                    ));
                }
                Some(ResponseError::OffsetOutOfRange) => {
                    // Behind the leader's log start (retention, DeleteRecords): start over
                    // there. Otherwise ahead of its end: truncate by epoch.
                    if p.log_start_offset > target.fetch_offset {
                        truncate_to(target, p.log_start_offset, true).await;
                    } else {
                        set_phase(partitions, target, Phase::Truncating);
                    }
                }
                _ => pause(partitions, target, p.error_code),
            }
        }
    }
    for target in append(appends).await {
        set_phase(partitions, &target, Phase::Truncating);
    }
    true
}

/// Moves this replica's log start offset up to the leader's, never past its own high
/// watermark (what it knows to be committed).
fn follow_log_start(
    partition: &Partition,
    leader_log_start: i64,
) -> Result<(), strom_log::AppendError> {
    let log = &partition.log;
    let target = leader_log_start.min(log.high_watermark());
    if target > log.log_start_offset() {
        log.delete_records_before(target)
            .map_err(strom_log::AppendError::Storage)?;
    }
    Ok(())
}

fn fetch_request(state: &BrokerState, targets: &[Target]) -> FetchRequest {
    let mut topics: HashMap<&str, Vec<FetchPartition>> = HashMap::new();
    for target in targets {
        let log = &target.partition.log;
        topics.entry(target.tp.topic.as_str()).or_default().push(
            FetchPartition::default()
                .with_partition(target.tp.partition)
                .with_current_leader_epoch(target.leader_epoch)
                .with_fetch_offset(target.fetch_offset)
                .with_last_fetched_epoch(log.latest_epoch().unwrap_or(-1))
                .with_log_start_offset(log.log_start_offset())
                .with_partition_max_bytes(PARTITION_MAX_BYTES),
        );
    }
    FetchRequest::default()
        .with_replica_id(WireBrokerId(state.node_id.0))
        .with_max_wait_ms(FETCH_WAIT_MS)
        .with_min_bytes(FETCH_MIN_BYTES)
        .with_max_bytes(RESPONSE_MAX_BYTES)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(name.to_string())))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// What appending one partition's answer did.
enum Appended {
    /// Appended (the record count), or nothing to append.
    Done(i64),
    /// The answer no longer applies (the role changed, or the log moved): dropped.
    Stale,
    /// The records do not continue this log: it must truncate by epoch again.
    Diverged,
}

/// Appends what the leader returned, on the blocking pool, and follows the leader's log start
/// offset (retention, DeleteRecords) as far as this replica's high watermark; then records the
/// leader's high watermark on each partition. Returns the targets that must truncate again.
async fn append(appends: Vec<(Target, Bytes, i64, i64)>) -> Vec<Target> {
    if appends.is_empty() {
        return Vec::new();
    }
    let work = appends.clone();
    let result = tokio::task::spawn_blocking(move || {
        let now = crate::now_ms();
        work.iter()
            .map(|(target, records, _, leader_log_start)| {
                append_one(target, records, *leader_log_start, now)
            })
            .collect::<Vec<Result<Appended, strom_log::AppendError>>>()
    })
    .await;
    let Ok(results) = result else {
        tracing::error!("replica append task failed");
        return Vec::new();
    };
    let mut diverged = Vec::new();
    for ((target, records, leader_high_watermark, _), result) in appends.into_iter().zip(results) {
        match result {
            Ok(Appended::Done(count)) => {
                if count > 0 {
                    target
                        .partition
                        .traffic
                        .replicated_bytes_in
                        .fetch_add(records.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                target.partition.on_follower_append(leader_high_watermark);
            }
            Ok(Appended::Stale) => {}
            Ok(Appended::Diverged) => diverged.push(target),
            Err(e) => {
                tracing::warn!(partition = %target.tp, error = %e, "cannot append fetched records");
            }
        }
    }
    diverged
}

/// Appends one partition's records under its replica-IO lock, if they still apply.
fn append_one(
    target: &Target,
    records: &Bytes,
    leader_log_start: i64,
    now: i64,
) -> Result<Appended, strom_log::AppendError> {
    let partition = &target.partition;
    let _io = partition.replica_io();
    let log = &partition.log;
    if !target.current() || log.log_end_offset() != target.fetch_offset {
        tracing::debug!(partition = %target.tp, current = target.current(), fetch_offset = target.fetch_offset, log_end_offset = log.log_end_offset(), "dropping a stale fetch answer");
        return Ok(Appended::Stale);
    }
    follow_log_start(partition, leader_log_start)?;
    if records.is_empty() {
        return Ok(Appended::Done(0));
    }
    let info = match log.append_as_follower(records, now) {
        // The leader's log starts inside a batch this empty log cannot continue (its start
        // moved into the batch): restart at the batch.
        Err(strom_log::AppendError::OffsetMismatch { expected, got })
            if got < expected && log.log_start_offset() == expected =>
        {
            log.truncate_fully_and_start_at(got, now)?;
            log.append_as_follower(records, now)?
        }
        Err(strom_log::AppendError::OffsetMismatch { expected, got }) => {
            tracing::debug!(partition = %target.tp, expected, got, "fetched records do not continue this log");
            return Ok(Appended::Diverged);
        }
        other => other?,
    };
    Ok(Appended::Done(info.record_count))
}
