//! Produce: append record batches to partition logs, through each partition's one append path
//! ([`Partition::append_as_leader`]).
//!
//! The batches stay the bytes the client sent; the log validates them (framing, CRC32C, size,
//! timestamps, idempotent sequences), assigns offsets and writes them. A transactional batch
//! that would start a producer's transaction on a partition is first verified with the
//! transaction coordinator (KIP-890, [`crate::txn::verify`]). Every partition of the
//! request is appended in one blocking task (or inline when small), in request order. Then, by
//! `acks`: 0: no response; 1: answer now; -1 (all): answer once the records are committed:
//! every in-sync replica has them (`min.insync.replicas` of them at least) and, when the leader
//! is the only in-sync replica, with `strom.fsync.acks.all` (the default), they are fsynced
//! ([`Partition::wait_committed`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::{Reply, RequestContext};
use crate::errors::{KafkaError, led_partition};
use crate::metrics::GaugeGuard;
use crate::partition::{Appended, Partition};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 3, max: 13 };

/// One partition's records, waiting to be appended.
struct Append {
    topic: usize,
    slot: usize,
    partition: Arc<Partition>,
    records: Bytes,
}

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: ProduceRequest,
) -> Reply<ProduceResponse> {
    let by_id = ctx.api_version >= 13;
    let acks = request.acks;
    let acks_error = (![-1, 0, 1].contains(&acks)).then(|| {
        KafkaError::new(
            ResponseError::InvalidRequiredAcks,
            format!("acks={acks} is not -1, 0 or 1"),
        )
    });

    // An empty transactional id is none (the codec's default).
    let transactional_id = request
        .transactional_id
        .as_ref()
        .filter(|t| !t.is_empty())
        .map(|t| t.to_string());
    let authz = ctx.authz(state);
    // Kafka: a transactional produce needs WRITE on its transactional id, else the whole
    // request fails.
    let txn_denied = transactional_id
        .as_deref()
        .filter(|id| !authz.allows_transactional_id(AclOperation::Write, id))
        .map(|id| {
            KafkaError::new(
                ResponseError::TransactionalIdAuthorizationFailed,
                format!("not authorized to write transactional id {id}"),
            )
        });
    let acks_error = acks_error.or(txn_denied);
    let mut image = state.image();
    let mut responses: Vec<TopicProduceResponse> = Vec::with_capacity(request.topic_data.len());
    let mut appends: Vec<Append> = Vec::new();
    for (topic_slot, topic) in request.topic_data.into_iter().enumerate() {
        let mut name = if by_id {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.name.to_string())
        };
        let mut topic_error = None;
        match &name {
            None => {
                topic_error = Some(KafkaError::new(
                    ResponseError::UnknownTopicId,
                    "This server does not host this topic ID.",
                ));
            }
            Some(n) if !authz.allows_topic(AclOperation::Write, n) => {
                topic_error = Some(crate::security::authz::topic_denied(n));
            }
            Some(n) if image.topic(n).is_none() => {
                let created = match strom_cluster::controller::validate_topic_name(n) {
                    Err(e) => Err(KafkaError::new(e.error, e.message)),
                    Ok(()) => crate::topics::auto_create(state, n).await,
                };
                match created {
                    Ok(()) => image = state.image(),
                    Err(e) => topic_error = Some(e),
                }
            }
            Some(_) => {}
        }
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        for (slot, data) in topic.partition_data.into_iter().enumerate() {
            let response = response_placeholder(data.index);
            let target = match (&acks_error, &topic_error, &name) {
                (Some(e), _, _) | (None, Some(e), _) => Err(e.clone()),
                (None, None, Some(n)) => led_partition(state, &image, n, data.index),
                (None, None, None) => Err(KafkaError::new(
                    ResponseError::UnknownTopicId,
                    "unknown topic",
                )),
            };
            match target {
                Ok(partition) => {
                    appends.push(Append {
                        topic: topic_slot,
                        slot,
                        partition,
                        records: data.records.unwrap_or_default(),
                    });
                    partition_responses.push(response);
                }
                Err(e) => partition_responses.push(with_error(response, &e)),
            }
        }
        let mut topic_response =
            TopicProduceResponse::default().with_partition_responses(partition_responses);
        if by_id {
            topic_response.topic_id = topic.topic_id;
        } else {
            topic_response.name = TopicName(StrBytes::from_string(name.take().unwrap_or_default()));
        }
        responses.push(topic_response);
    }

    let targets: Vec<_> = appends
        .iter()
        .map(|a| (&a.partition, a.records.as_ref()))
        .collect();
    let checks =
        crate::txn::verify::check_produce(state, transactional_id.as_deref(), &targets).await;
    let mut verified = Vec::with_capacity(appends.len());
    for (append, check) in appends.into_iter().zip(checks) {
        match check {
            None => verified.push(append),
            Some(e) => {
                let response = &mut responses[append.topic].partition_responses[append.slot];
                *response = with_error(std::mem::take(response), &e);
            }
        }
    }
    let appends = verified;

    let outcomes = append_all(&appends, acks == -1).await;
    let mut commit_waits = Vec::new();
    for (append, outcome) in appends.iter().zip(outcomes) {
        let response = &mut responses[append.topic].partition_responses[append.slot];
        match outcome {
            Ok(Some(appended)) => {
                let info = &appended.info;
                if !info.duplicate {
                    let traffic = &append.partition.traffic;
                    traffic
                        .bytes_in
                        .fetch_add(append.records.len() as u64, Ordering::Relaxed);
                    traffic
                        .records_in
                        .fetch_add(info.record_count as u64, Ordering::Relaxed);
                }
                response.base_offset = info.first_offset;
                response.log_append_time_ms = info.log_append_time_ms;
                response.log_start_offset = info.log_start_offset;
                commit_waits.push((
                    append.topic,
                    append.slot,
                    Arc::clone(&append.partition),
                    appended,
                ));
            }
            // Nothing to append: Kafka answers an empty record set with success and no offset.
            Ok(None) => response.log_start_offset = append.partition.log.log_start_offset(),
            Err(e) => *response = with_error(std::mem::take(response), &e),
        }
    }

    let response = ProduceResponse::default().with_responses(responses);
    match acks {
        0 => Reply::Nothing,
        -1 if !commit_waits.is_empty() => {
            let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
            let state = Arc::clone(state);
            Reply::Later(Box::pin(async move {
                let _waiting = GaugeGuard::new(&state.metrics.produce_waits);
                let fsync = state.config.fsync_acks_all;
                wait_committed(response, commit_waits, fsync, timeout).await
            }))
        }
        _ => Reply::Now(response),
    }
}

/// Requests up to this size (all partitions together) are appended on the connection's own
/// task when the log can take them without blocking (a page-cache write: no roll, no fsync, no
/// wait for the append lock; see [`Partition::try_append_inline`]): the trip through the
/// blocking pool wakes two threads, which on a busy 2-core machine cost milliseconds of
/// scheduling delay at the tail of the produce latency. Larger requests, and partitions whose
/// append would block, go to the pool.
const INLINE_APPEND_BYTES_MAX: usize = 64 * 1024;

type Outcome = Result<Option<Appended>, KafkaError>;

/// Appends every partition's records; `Ok(None)` for an empty record set.
async fn append_all(appends: &[Append], acks_all: bool) -> Vec<Outcome> {
    let now_ms = crate::now_ms();
    let bytes: usize = appends.iter().map(|a| a.records.len()).sum();
    let mut outcomes: Vec<Option<Outcome>> = appends
        .iter()
        .map(|a| {
            if a.records.is_empty() {
                return Some(Ok(None));
            }
            if bytes > INLINE_APPEND_BYTES_MAX {
                return None;
            }
            a.partition
                .try_append_inline(&a.records, acks_all, now_ms)
                .map(|r| r.map(Some))
        })
        .collect();
    // The blocking pool needs owned handles: the Arcs and Bytes are cheap to clone.
    let work: Vec<(usize, Arc<Partition>, Bytes)> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_none())
        .map(|(i, _)| {
            (
                i,
                Arc::clone(&appends[i].partition),
                appends[i].records.clone(),
            )
        })
        .collect();
    if !work.is_empty() {
        let count = work.len();
        let task = tokio::task::spawn_blocking(move || {
            work.into_iter()
                .map(|(i, partition, records)| {
                    (
                        i,
                        partition
                            .append_as_leader(&records, acks_all, now_ms)
                            .map(Some),
                    )
                })
                .collect::<Vec<_>>()
        });
        match task.await {
            Ok(done) => {
                for (i, outcome) in done {
                    outcomes[i] = Some(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, count, "append task failed");
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Err(KafkaError::new(
                    ResponseError::KafkaStorageError,
                    "append task failed",
                ))
            })
        })
        .collect()
}

/// acks=all: answers once every partition's records are committed (or failed).
async fn wait_committed(
    mut response: ProduceResponse,
    waits: Vec<(usize, usize, Arc<Partition>, Appended)>,
    fsync: bool,
    timeout: Duration,
) -> ProduceResponse {
    let results = futures::future::join_all(
        waits
            .iter()
            .map(|(_, _, partition, appended)| partition.wait_committed(appended, fsync, timeout)),
    )
    .await;
    for ((topic, slot, _, _), result) in waits.iter().zip(results) {
        if let Err(error) = result {
            let entry = &mut response.responses[*topic].partition_responses[*slot];
            *entry = with_error(std::mem::take(entry), &error);
        }
    }
    response
}

fn response_placeholder(index: i32) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
}

fn with_error(response: PartitionProduceResponse, error: &KafkaError) -> PartitionProduceResponse {
    response
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(error.message.clone())))
        .with_base_offset(-1)
}
