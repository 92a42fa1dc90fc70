//! Fetch: read record batches, as stored, from partition logs, with long polling.
//!
//! Each partition is read from its fetch offset up to the high watermark (read_uncommitted
//! consumers), the last stable offset (read_committed consumers, KIP-98) or the log end offset
//! (replicas), within the partition's `partition_max_bytes` and the request's `max_bytes`,
//! except that the first batch of the first partition with data is returned whole even when
//! larger (KIP-74), so a consumer always makes progress.
//!
//! Every consumer answer reports the last stable offset (LSO); a read_committed one also lists
//! the aborted transactions (producer id, first offset) whose records the returned range may
//! hold, from the segments' aborted-transaction indexes, so the consumer can drop them. A
//! read_committed wait wakes when the LSO moves: the marker that moves it is an append, and an
//! append or a high watermark change wakes every wait.
//!
//! If fewer than `min_bytes` are available, the answer waits (without holding up the
//! connection) until an append to one of the partitions brings enough, or `max_wait_ms`
//! passes: it returns as soon as the data is there, it does not sleep out the wait.
//!
//! Fetch sessions (KIP-227): this broker answers sessionless. A request with session id 0 gets
//! a full response with session id 0, which tells the client that no session was created, so it
//! keeps sending full requests; a request naming a session gets FETCH_SESSION_ID_NOT_FOUND,
//! after which clients fall back to a full request.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use tokio::time::Instant;

use super::{Reply, RequestContext};
use crate::errors::{KafkaError, led_partition};
use crate::metrics::GaugeGuard;
use crate::partition::Partition;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 4, max: 17 };

/// The isolation level that reads only committed transactions.
const READ_COMMITTED: i8 = 1;

/// One partition to read, and where its answer goes in the response.
#[derive(Clone)]
struct Target {
    topic: usize,
    slot: usize,
    partition: Arc<Partition>,
    fetch_offset: i64,
    partition_max_bytes: usize,
    /// Replicas read up to the log end offset; consumers up to the high watermark.
    to_log_end: bool,
}

/// The response so far: partitions that failed are filled in; targets are filled per read.
#[derive(Clone)]
struct Plan {
    skeleton: FetchResponse,
    targets: Vec<Target>,
    max_bytes: usize,
    read_committed: bool,
}

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: FetchRequest,
) -> Reply<FetchResponse> {
    if request.session_id != 0 {
        return Reply::Now(
            FetchResponse::default()
                .with_error_code(ResponseError::FetchSessionIdNotFound.code())
                .with_session_id(0),
        );
    }
    let by_id = ctx.api_version >= 13;
    let replica_id = if ctx.api_version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let image = state.image();
    let authz = ctx.authz(state);
    // Kafka: a follower needs CLUSTER_ACTION on the cluster, a consumer READ on each topic;
    // either way a refusal is TOPIC_AUTHORIZATION_FAILED per partition.
    let follower_allowed = replica_id < 0 || authz.allows_cluster(AclOperation::ClusterAction);
    let mut responses = Vec::with_capacity(request.topics.len());
    let mut targets = Vec::new();
    for (topic_slot, topic) in request.topics.iter().enumerate() {
        let name = if by_id {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.topic.to_string())
        };
        let allowed = name.as_deref().is_some_and(|n| {
            if replica_id >= 0 {
                follower_allowed
            } else {
                authz.allows_topic(AclOperation::Read, n)
            }
        });
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for (slot, p) in topic.partitions.iter().enumerate() {
            let data = PartitionData::default()
                .with_partition_index(p.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(BrokerId(-1));
            let lookup = match &name {
                None => Err(KafkaError::new(
                    ResponseError::UnknownTopicId,
                    "This server does not host this topic ID.",
                )),
                Some(n) if !allowed => Err(crate::security::authz::topic_denied(n)),
                Some(n) if replica_id >= 0 => led_partition(state, &image, n, p.partition)
                    .and_then(|partition| {
                        check_leader_epoch(&partition, p.current_leader_epoch)?;
                        Ok(partition)
                    }),
                Some(n) => readable_partition(state, &image, n, p.partition, ctx.api_version)
                    .and_then(|partition| {
                        check_leader_epoch(&partition, p.current_leader_epoch).map(|()| partition)
                    }),
            };
            let preferred = match (&lookup, &name) {
                (Ok(partition), Some(n))
                    if replica_id < 0 && ctx.api_version >= 11 && partition.is_leader() =>
                {
                    preferred_read_replica(state, &image, n, p.partition, request.rack_id.as_str())
                }
                _ => None,
            };
            if let Some(preferred) = preferred {
                // KIP-392: no data from here; the consumer fetches from the named replica.
                partitions.push(data.with_preferred_read_replica(BrokerId(preferred.0)));
                continue;
            }
            let lookup = match lookup {
                Ok(partition) if replica_id >= 0 => {
                    let last_fetched_epoch = if ctx.api_version >= 12 {
                        p.last_fetched_epoch
                    } else {
                        -1
                    };
                    if let Some((epoch, end_offset)) =
                        diverging(&partition, last_fetched_epoch, p.fetch_offset)
                    {
                        // The follower's log diverged from this one: no data, and its fetch
                        // offset is not a log end this leader can count on.
                        let mut diverged = data.with_high_watermark(partition.high_watermark().0);
                        diverged.diverging_epoch.epoch = epoch;
                        diverged.diverging_epoch.end_offset = end_offset;
                        partitions.push(diverged);
                        continue;
                    }
                    follower_fetched(state, &partition, BrokerId(replica_id), p.fetch_offset)
                        .map(|()| partition)
                }
                other => other,
            };
            match lookup {
                Ok(partition) => {
                    targets.push(Target {
                        topic: topic_slot,
                        slot,
                        partition,
                        fetch_offset: p.fetch_offset,
                        partition_max_bytes: p.partition_max_bytes.max(0) as usize,
                        to_log_end: replica_id >= 0,
                    });
                    partitions.push(data);
                }
                Err(e) => partitions.push(data.with_error_code(e.code())),
            }
        }
        let mut response = FetchableTopicResponse::default().with_partitions(partitions);
        if by_id {
            response.topic_id = topic.topic_id;
        } else {
            response.topic = TopicName(StrBytes::from_string(name.unwrap_or_default()));
        }
        responses.push(response);
    }

    let plan = Plan {
        skeleton: FetchResponse::default()
            .with_responses(responses)
            .with_session_id(0),
        targets,
        max_bytes: request.max_bytes.max(0) as usize,
        read_committed: request.isolation_level == READ_COMMITTED,
    };
    let min_bytes = request.min_bytes.max(0) as usize;
    let (response, bytes, complete) = read(plan.clone()).await;
    if complete || bytes >= min_bytes || request.max_wait_ms <= 0 || plan.targets.is_empty() {
        count_bytes_out(&plan, &response);
        return Reply::Now(response);
    }
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms as u64);
    let state = Arc::clone(state);
    Reply::Later(Box::pin(async move {
        let _waiting = GaugeGuard::new(&state.metrics.fetch_waits);
        let response = long_poll(plan.clone(), min_bytes, deadline).await;
        count_bytes_out(&plan, &response);
        response
    }))
}

/// The partition a consumer may read here: on its leader, or (KIP-392, Fetch v11+, where
/// clients handle a follower's answers) on an in-sync follower, up to the high watermark the
/// follower learned from its leader.
fn readable_partition(
    state: &BrokerState,
    image: &strom_cluster::MetadataImage,
    topic: &str,
    index: i32,
    version: i16,
) -> Result<Arc<Partition>, KafkaError> {
    let led = led_partition(state, image, topic, index);
    if led.is_ok() || version < 11 {
        return led;
    }
    let in_sync = image
        .partition(topic, index)
        .is_some_and(|p| p.in_sync_replicas.contains(&state.node_id));
    let tp = strom_log::TopicPartition {
        topic: topic.to_string(),
        partition: index,
    };
    match state.partition(&tp) {
        Some(partition)
            if in_sync && partition.followed_leader().is_some() && !partition.log.is_offline() =>
        {
            Ok(partition)
        }
        _ => led,
    }
}

/// KIP-392 with Kafka's `RackAwareReplicaSelector`: a consumer in rack `rack` is sent to an
/// in-sync replica in its rack when the leader is elsewhere. `None`: read from the leader.
fn preferred_read_replica(
    state: &BrokerState,
    image: &strom_cluster::MetadataImage,
    topic: &str,
    index: i32,
    rack: &str,
) -> Option<strom_cluster::BrokerId> {
    if rack.is_empty() || !state.config.rack_aware_replica_selection {
        return None;
    }
    let rack_of = |b: &strom_cluster::BrokerId| {
        image
            .brokers
            .get(b)
            .filter(|r| !r.fenced)
            .and_then(|r| r.rack.as_deref())
    };
    if rack_of(&state.node_id) == Some(rack) {
        return None;
    }
    let p = image.partition(topic, index)?;
    p.in_sync_replicas
        .iter()
        .copied()
        .find(|b| rack_of(b) == Some(rack))
}

/// Fetch v12+ (KIP-595's divergence check, which Kafka's followers use): the epoch of the
/// follower's last batch must end, in this leader's log, at or after the follower's fetch
/// offset; otherwise the follower has records this leader does not, and gets the epoch and end
/// offset to truncate to.
fn diverging(
    partition: &Partition,
    last_fetched_epoch: i32,
    fetch_offset: i64,
) -> Option<(i32, i64)> {
    if last_fetched_epoch < 0 {
        return None;
    }
    let (epoch, end_offset) = partition.log.end_offset_for_epoch(last_fetched_epoch)?;
    (epoch != last_fetched_epoch || end_offset < fetch_offset).then_some((epoch, end_offset))
}

/// A follower's fetch offset is its log end offset: the leader learns its progress from it,
/// which may move the high watermark or make the follower in sync again.
fn follower_fetched(
    state: &Arc<BrokerState>,
    partition: &Arc<Partition>,
    follower: BrokerId,
    fetch_offset: i64,
) -> Result<(), KafkaError> {
    let follower = strom_cluster::BrokerId(follower.0);
    if let Some(proposal) = partition.on_follower_fetch(follower, fetch_offset, crate::now_ms())? {
        state.propose_isr_change(Arc::clone(partition), proposal);
    }
    Ok(())
}

/// Counts the record bytes a response carries against each partition's traffic.
fn count_bytes_out(plan: &Plan, response: &FetchResponse) {
    for target in &plan.targets {
        let sent = response.responses[target.topic].partitions[target.slot]
            .records
            .as_ref()
            .map_or(0, |r| r.len());
        target
            .partition
            .traffic
            .bytes_out
            .fetch_add(sent as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Fencing (KIP-320): a client that knows a newer epoch than ours is ahead of our metadata; one
/// that knows an older epoch must refresh before reading.
fn check_leader_epoch(partition: &Partition, client_epoch: i32) -> Result<(), KafkaError> {
    let ours = partition.leader_epoch();
    if client_epoch < 0 || client_epoch == ours {
        Ok(())
    } else if client_epoch > ours {
        Err(KafkaError::new(
            ResponseError::UnknownLeaderEpoch,
            "The leader epoch in the request is newer than the broker's.",
        ))
    } else {
        Err(KafkaError::new(
            ResponseError::FencedLeaderEpoch,
            "The leader epoch in the request is older than the broker's.",
        ))
    }
}

async fn long_poll(plan: Plan, min_bytes: usize, deadline: Instant) -> FetchResponse {
    loop {
        // Arm every wake-up before reading, so an append that lands during the read still wakes
        // this wait.
        let mut wakeups: Vec<_> = plan
            .targets
            .iter()
            .map(|t| Box::pin(t.partition.data_arrived()))
            .collect();
        for w in &mut wakeups {
            w.as_mut().enable();
        }
        let (response, bytes, complete) = read(plan.clone()).await;
        if complete || bytes >= min_bytes {
            return response;
        }
        tokio::select! {
            _ = futures::future::select_all(wakeups) => {}
            _ = tokio::time::sleep_until(deadline) => return response,
        }
    }
}

/// Reads of at most this many offsets (all partitions together) run on the connection's own
/// task: a consumer at the tail reads a few batches that are in the page cache, and the trip
/// through the blocking pool (two thread wake-ups) cost more than the read, in milliseconds of
/// scheduling delay on a busy 2-core machine. Catch-up reads, which may copy megabytes or wait
/// for the disk, go to the pool.
const INLINE_READ_OFFSETS_MAX: i64 = 256;

fn is_tail_read(plan: &Plan) -> bool {
    let mut offsets = 0i64;
    for target in &plan.targets {
        let log = &target.partition.log;
        let upper = if target.to_log_end {
            log.log_end_offset()
        } else {
            target.partition.high_watermark().0
        };
        offsets = offsets.saturating_add(upper.saturating_sub(target.fetch_offset).max(0));
        if offsets > INLINE_READ_OFFSETS_MAX {
            return false;
        }
    }
    true
}

/// Reads every target (on a blocking thread unless it is a tail read). Returns the response,
/// the record bytes in it, and whether it must be sent now regardless of `min_bytes` (a
/// partition failed).
async fn read(plan: Plan) -> (FetchResponse, usize, bool) {
    if is_tail_read(&plan) {
        return read_blocking(plan);
    }
    let skeleton = plan.skeleton.clone();
    let result = tokio::task::spawn_blocking(move || read_blocking(plan)).await;
    match result {
        Ok(out) => out,
        Err(e) => {
            tracing::error!(error = %e, "fetch read task failed");
            (
                skeleton.with_error_code(ResponseError::UnknownServerError.code()),
                0,
                true,
            )
        }
    }
}

fn read_blocking(plan: Plan) -> (FetchResponse, usize, bool) {
    let Plan {
        mut skeleton,
        targets,
        max_bytes,
        read_committed,
    } = plan;
    let mut total = 0usize;
    let mut failed = false;
    for target in &targets {
        let partition = &target.partition;
        let log = &partition.log;
        // The LSO first: it is at most the high watermark read after it, which only grows.
        let last_stable_offset = log.last_stable_offset();
        let high_watermark = partition.high_watermark().0;
        // Replicas copy the log whatever the isolation level they send.
        let read_committed = read_committed && !target.to_log_end;
        let upper_bound = if target.to_log_end {
            log.log_end_offset()
        } else if read_committed {
            last_stable_offset
        } else {
            high_watermark
        };
        let budget = target
            .partition_max_bytes
            .min(max_bytes.saturating_sub(total));
        let data = &mut skeleton.responses[target.topic].partitions[target.slot];
        data.high_watermark = high_watermark;
        data.last_stable_offset = last_stable_offset;
        data.log_start_offset = log.log_start_offset();
        data.aborted_transactions = read_committed.then(Vec::new);
        if budget == 0 && total > 0 {
            data.records = Some(Bytes::new());
            continue;
        }
        match log.read(target.fetch_offset, budget, upper_bound, total == 0) {
            Ok(info) => {
                total += info.records.len();
                data.log_start_offset = info.log_start_offset;
                if read_committed {
                    data.aborted_transactions = Some(aborted_transactions(
                        log,
                        target.fetch_offset,
                        &info.records,
                    ));
                }
                data.records = Some(info.records);
            }
            Err(e) => {
                let error = KafkaError::from(&e);
                if error.error == ResponseError::KafkaStorageError {
                    tracing::error!(partition = %partition.topic_partition, error = %e, "fetch read failed");
                }
                data.error_code = error.code();
                data.records = Some(Bytes::new());
                failed = true;
            }
        }
    }
    (skeleton, total, failed)
}

/// The aborted transactions a read_committed consumer needs to filter `records`, read from
/// `fetch_offset`: those overlapping the offsets the records cover (Kafka bounds the lookup by
/// the fetched data too, not by the LSO).
fn aborted_transactions(
    log: &strom_log::Log,
    fetch_offset: i64,
    records: &[u8],
) -> Vec<AbortedTransaction> {
    let Some(end) = strom_log::batch::batch_headers(records)
        .last()
        .map(|(_, header)| header.next_offset())
    else {
        return Vec::new();
    };
    log.aborted_transactions(fetch_offset, end)
        .into_iter()
        .map(|aborted| {
            AbortedTransaction::default()
                .with_producer_id(ProducerId(aborted.producer_id))
                .with_first_offset(aborted.first_offset)
        })
        .collect()
}
