//! Broker-only nodes (`process.roles=broker`) are observers of the metadata quorum, as in
//! KRaft: they do not vote and keep no metadata log of their own; they fetch the committed log
//! from a controller and replay it into their image.
//!
//! - [`serve_fetch`] runs on a controller: it answers with the committed entries after the
//!   observer's position, or with the current snapshot when those entries were purged, and
//!   long-polls when there is nothing new.
//! - [`Observer`] runs on the broker-only node: it fetches in a loop (from the leader when it
//!   knows it), applies what it gets and publishes each new image.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::EntryPayload;
use serde::{Deserialize, Serialize};
use strom_cluster::{BrokerId, MetadataImage};
use tokio::sync::watch;

use crate::controller::ObserverProgress;
use crate::controller::messages::{ControllerError, ReplicaProgress};
use crate::network::Network;
use crate::rpc::{RpcRequest, RpcResponse};
use crate::storage::{ApplyStats, LogReader, SharedSnapshot, decode_snapshot};
use crate::types::{Entry, LogId, Raft, SnapshotMeta, broker_id, metadata_offset};

/// Entries one fetch returns at most.
const MAX_ENTRIES_PER_FETCH: u64 = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchRequest {
    pub observer: BrokerId,
    /// The last entry the observer has applied.
    pub after: Option<LogId>,
    /// How long to wait for new entries when there are none.
    pub max_wait_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchResponse {
    /// The quorum leader as the answering controller knows it.
    pub leader: Option<BrokerId>,
    /// Set when the body holds a snapshot to install before `entries`.
    pub snapshot: Option<SnapshotMeta>,
    /// Committed entries that follow `after` (or the snapshot), in order.
    pub entries: Vec<Entry>,
}

/// What a controller needs to serve observers.
#[derive(Clone)]
pub struct FetchService {
    pub raft: Raft,
    pub log: LogReader,
    pub snapshot: SharedSnapshot,
    pub observers: ObserverProgress,
}

/// Answers one fetch.
pub async fn serve_fetch(
    service: &FetchService,
    request: FetchRequest,
) -> Result<(FetchResponse, Bytes), ControllerError> {
    let after_index = request.after.map(|l| l.index);
    let is_new = |applied: Option<LogId>| match (applied, after_index) {
        (Some(applied), Some(after)) => applied.index > after,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let mut metrics = service.raft.metrics();
    let wait = Duration::from_millis(request.max_wait_ms.min(10_000));
    let _ = tokio::time::timeout(wait, metrics.wait_for(|m| is_new(m.last_applied))).await;
    let (applied, leader) = {
        let m = metrics.borrow();
        (m.last_applied, m.current_leader.map(broker_id))
    };
    let next = after_index.map_or(0, |i| i + 1);
    let mut response = FetchResponse {
        leader,
        snapshot: None,
        entries: Vec::new(),
    };
    let mut body = Bytes::new();
    if let Some(applied) = applied.filter(|a| a.index >= next) {
        let purged = service.log.last_purged().map(|l| l.index);
        let mut from = next;
        if purged.is_some_and(|p| p >= next) {
            let Some((meta, bytes)) = service.snapshot.current() else {
                return Err(ControllerError::Unavailable(
                    "the metadata log was purged but no snapshot exists".into(),
                ));
            };
            from = meta.last_log_id.map_or(0, |l| l.index + 1);
            response.snapshot = Some(meta);
            body = Bytes::from(bytes.as_ref().clone());
        }
        let to = applied.index.min(from + MAX_ENTRIES_PER_FETCH - 1);
        if from <= to {
            response.entries = service.log.entries(from..to + 1);
        }
    }
    let position = response
        .entries
        .last()
        .map(|e| e.log_id)
        .or(response.snapshot.as_ref().and_then(|m| m.last_log_id))
        .or(request.after);
    record_progress(service, request.observer, position);
    Ok((response, body))
}

fn record_progress(service: &FetchService, observer: BrokerId, position: Option<LogId>) {
    let now = crate::wall_clock_ms();
    let log_end_offset = position.map_or(0, |l| l.index as i64 + 1);
    let mut observers = service.observers.lock().unwrap_or_else(|e| e.into_inner());
    observers.insert(
        observer,
        ReplicaProgress {
            replica_id: observer,
            log_end_offset,
            last_fetch_timestamp: now,
            last_caught_up_timestamp: now,
        },
    );
}

/// The fetch loop of a broker-only node.
pub struct Observer {
    pub node_id: BrokerId,
    pub voters: Vec<(BrokerId, String)>,
    pub network: Network,
    pub publisher: watch::Sender<Arc<MetadataImage>>,
    pub leader: watch::Sender<Option<BrokerId>>,
    pub max_wait: Duration,
    pub stats: Arc<ApplyStats>,
}

impl Observer {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut image = MetadataImage::default();
        let mut position: Option<LogId> = None;
        let mut next_voter = 0usize;
        loop {
            let target = self
                .leader
                .borrow()
                .and_then(|l| self.voters.iter().find(|(id, _)| *id == l).cloned())
                .unwrap_or_else(|| {
                    next_voter = (next_voter + 1) % self.voters.len().max(1);
                    self.voters[next_voter % self.voters.len().max(1)].clone()
                });
            let request = RpcRequest::FetchMetadata(FetchRequest {
                observer: self.node_id,
                after: position,
                max_wait_ms: self.max_wait.as_millis() as u64,
            });
            let client = self.network.client(&target.1);
            let call = client.call(&request, &[], self.max_wait + Duration::from_secs(5));
            let result = tokio::select! {
                result = call => result,
                _ = crate::stopped(&mut shutdown) => return,
            };
            match result {
                Ok((RpcResponse::FetchMetadata(Ok(response)), body)) => {
                    self.leader.send_replace(response.leader);
                    let started = std::time::Instant::now();
                    let (entries, records) = count(&response);
                    match apply(&mut image, &mut position, response, &body) {
                        Ok(true) => {
                            self.publisher.send_replace(Arc::new(image.clone()));
                            let micros = started.elapsed().as_micros() as u64;
                            self.stats.record(entries, records, 0, micros);
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::error!(controller = %target.0, error = %e, "cannot apply fetched metadata");
                            self.backoff(&mut shutdown).await;
                        }
                    }
                }
                Ok((
                    RpcResponse::FetchMetadata(Err(ControllerError::NotController { leader })),
                    _,
                )) => {
                    self.leader.send_replace(leader);
                    self.backoff(&mut shutdown).await;
                }
                Ok((other, _)) => {
                    tracing::debug!(controller = %target.0, response = ?other, "metadata fetch refused");
                    self.leader.send_replace(None);
                    self.backoff(&mut shutdown).await;
                }
                Err(e) => {
                    tracing::debug!(controller = %target.0, error = %e, "metadata fetch failed");
                    self.leader.send_replace(None);
                    self.backoff(&mut shutdown).await;
                }
            }
        }
    }

    async fn backoff(&self, shutdown: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = crate::stopped(shutdown) => {}
        }
    }
}

/// Entries and records in a fetch answer.
fn count(response: &FetchResponse) -> (u64, u64) {
    let records = response
        .entries
        .iter()
        .map(|e| match &e.payload {
            EntryPayload::Normal(batch) => batch.0.len() as u64,
            _ => 0,
        })
        .sum();
    (response.entries.len() as u64, records)
}

/// Applies a fetch answer; returns whether the image changed.
fn apply(
    image: &mut MetadataImage,
    position: &mut Option<LogId>,
    response: FetchResponse,
    body: &[u8],
) -> Result<bool, String> {
    let mut changed = false;
    if let Some(meta) = response.snapshot {
        let decoded = decode_snapshot(body).map_err(|e| e.to_string())?;
        let mut fresh = MetadataImage::default();
        if let Some(last) = meta.last_log_id {
            fresh.apply(metadata_offset(&last), &decoded.records);
        }
        *image = fresh;
        *position = meta.last_log_id;
        changed = true;
    }
    for entry in response.entries {
        let expected = position.map_or(0, |p| p.index + 1);
        if entry.log_id.index != expected {
            return Err(format!(
                "expected metadata log entry {expected}, got {}",
                entry.log_id.index
            ));
        }
        let offset = metadata_offset(&entry.log_id);
        match &entry.payload {
            EntryPayload::Normal(batch) => image.apply(offset, &batch.0),
            EntryPayload::Blank | EntryPayload::Membership(_) => image.apply(offset, &[]),
        }
        *position = Some(entry.log_id);
        changed = true;
    }
    Ok(changed)
}
