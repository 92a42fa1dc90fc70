//! Transaction markers: after a transaction is decided (its Prepare record is durable), a
//! COMMIT or ABORT marker goes to every partition in it. The coordinator's marker task sends
//! WriteTxnMarkers to each partition's leader (writing locally when that is this broker),
//! retries what failed until every partition has its marker, then reports back so the
//! coordinator writes the Complete record.
//!
//! A task stops without reporting when this broker stops coordinating the transactional id
//! at that coordinator epoch (the new coordinator resends the markers of every Prepare state
//! it loads) or when a leader refuses the marker as fenced (a newer producer epoch exists:
//! its coordinator is the one to finish).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use strom_log::TopicPartition;
use strom_log::control::Marker;
use strom_txn::{Markers, Producer};
use tokio::sync::mpsc;

use super::verify::Peers;
use super::{Event, TRANSACTION_STATE_TOPIC};
use crate::state::BrokerState;

const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a marker may wait to be committed on its partition.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// WriteTxnMarkers' only version.
const WRITE_TXN_MARKERS_VERSION: i16 = 1;

type Partitions = BTreeSet<(String, i32)>;

/// Starts the task that writes `markers` to every partition of the transaction.
pub fn spawn(
    state: Weak<BrokerState>,
    peers: Arc<Peers>,
    markers: Markers,
    events: mpsc::UnboundedSender<Event>,
) {
    tokio::spawn(async move {
        let producer = Producer {
            id: markers.producer_id,
            epoch: markers.producer_epoch,
        };
        let transactional_id = markers.transactional_id.clone();
        if send_all(state, &peers, markers).await {
            let _ = events.send(Event::MarkersWritten {
                transactional_id,
                producer,
            });
        }
    });
}

/// True once every partition has the marker; false when the task must give up.
async fn send_all(state: Weak<BrokerState>, peers: &Peers, markers: Markers) -> bool {
    let mut remaining: Partitions = markers.partitions.iter().cloned().collect();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let Some(state) = state.upgrade() else {
            return false;
        };
        if !still_coordinator(&state, &markers) {
            tracing::info!(transactional_id = %markers.transactional_id, "no longer the coordinator; the new one resends the markers");
            return false;
        }
        let image = state.image();
        // A deleted topic's partition needs no marker (Kafka drops it too).
        remaining.retain(|(topic, _)| image.topic(topic).is_some());
        let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        for (topic, index) in &remaining {
            if let Some(p) = image.partition(topic, *index)
                && p.leader != strom_cluster::BrokerId::NONE
            {
                by_leader
                    .entry(p.leader.0)
                    .or_default()
                    .push((topic.to_string(), *index));
            }
        }
        for (leader, partitions) in by_leader {
            let results = if leader == state.node_id.0 {
                write_markers_locally(&state, &markers, &partitions).await
            } else {
                send_remote(&state, peers, leader, &markers, &partitions).await
            };
            for (tp, code) in results {
                if code == 0 {
                    remaining.remove(&tp);
                } else if is_fenced(code) {
                    tracing::warn!(transactional_id = %markers.transactional_id, partition = ?tp, code, "a partition leader refused the marker as fenced");
                    return false;
                } else {
                    tracing::debug!(transactional_id = %markers.transactional_id, partition = ?tp, code, "marker not written yet; retrying");
                }
            }
        }
        if remaining.is_empty() {
            return true;
        }
        drop(state);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn is_fenced(code: i16) -> bool {
    code == ResponseError::InvalidProducerEpoch.code()
        || code == ResponseError::ProducerFenced.code()
        || code == ResponseError::TransactionCoordinatorFenced.code()
}

/// Does this broker still lead the id's `__transaction_state` partition at the epoch the
/// markers were decided under?
fn still_coordinator(state: &BrokerState, markers: &Markers) -> bool {
    let Some(coordinator) = state.transactions() else {
        return false;
    };
    let index =
        strom_group::partition_for_group(&markers.transactional_id, coordinator.num_partitions);
    state
        .image()
        .partition(TRANSACTION_STATE_TOPIC, index)
        .is_some_and(|p| p.leader == state.node_id && p.leader_epoch.0 == markers.coordinator_epoch)
}

/// Writes the marker to each partition this broker leads, waiting until it is committed;
/// a marker into `__consumer_offsets` then settles the transaction's offset commits there.
/// The partitions are written and replicated concurrently, so a transaction over many
/// partitions waits for one replication round trip, not one per partition. Returns each
/// partition's error code, in the order asked.
pub async fn write_markers_locally(
    state: &Arc<BrokerState>,
    markers: &Markers,
    partitions: &[(String, i32)],
) -> Vec<((String, i32), i16)> {
    let writes = partitions.iter().map(|(topic, index)| async move {
        let code = write_one(state, markers, topic, *index)
            .await
            .err()
            .unwrap_or(0);
        ((topic.clone(), *index), code)
    });
    futures::future::join_all(writes).await
}

async fn write_one(
    state: &Arc<BrokerState>,
    markers: &Markers,
    topic: &str,
    index: i32,
) -> Result<(), i16> {
    let image = state.image();
    let partition =
        crate::errors::led_partition(state, &image, topic, index).map_err(|e| e.code())?;
    let marker = Marker {
        commit: markers.commit,
        coordinator_epoch: markers.coordinator_epoch,
    };
    let (producer_id, producer_epoch) = (markers.producer_id, markers.producer_epoch);
    let appending = Arc::clone(&partition);
    let now = crate::now_ms();
    let appended = tokio::task::spawn_blocking(move || {
        appending.append_marker(producer_id, producer_epoch, marker, now)
    })
    .await
    .map_err(|_| ResponseError::UnknownServerError.code())?
    .map_err(|e| e.code())?;
    partition
        .wait_committed(&appended, state.config.fsync_acks_all, COMMIT_TIMEOUT)
        .await
        .map_err(|e| e.code())?;
    if topic == strom_cluster::CONSUMER_OFFSETS_TOPIC {
        let groups = state
            .groups()
            .ok_or(ResponseError::CoordinatorNotAvailable.code())?;
        groups
            .complete_transaction(index, producer_id, markers.commit)
            .await
            .map_err(|_| ResponseError::CoordinatorNotAvailable.code())?;
    }
    tracing::debug!(partition = %TopicPartition { topic: topic.to_string(), partition: index }, producer_id, commit = markers.commit, "wrote transaction marker");
    Ok(())
}

/// WriteTxnMarkers to another broker; every partition gets the request's error when the
/// request itself fails.
async fn send_remote(
    state: &BrokerState,
    peers: &Peers,
    leader: i32,
    markers: &Markers,
    partitions: &[(String, i32)],
) -> Vec<((String, i32), i16)> {
    let failed = |code: i16| partitions.iter().map(|tp| (tp.clone(), code)).collect();
    let Some(connection) = peers.connect(state, leader).await else {
        return failed(ResponseError::NetworkException.code());
    };
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, index) in partitions {
        topics.entry(topic).or_default().push(*index);
    }
    let marker = WritableTxnMarker::default()
        .with_producer_id(ProducerId(markers.producer_id))
        .with_producer_epoch(markers.producer_epoch)
        .with_transaction_result(markers.commit)
        .with_coordinator_epoch(markers.coordinator_epoch)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, indexes)| {
                    WritableTxnMarkerTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.to_string())))
                        .with_partition_indexes(indexes)
                })
                .collect(),
        );
    let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
    let response = match connection
        .send_version(request, WRITE_TXN_MARKERS_VERSION)
        .await
    {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(leader, error = %e, "WriteTxnMarkers failed");
            peers.forget(leader).await;
            return failed(ResponseError::NetworkException.code());
        }
    };
    let mut results = Vec::with_capacity(partitions.len());
    for result in response.markers {
        for topic in result.topics {
            for p in topic.partitions {
                results.push(((topic.name.0.to_string(), p.partition_index), p.error_code));
            }
        }
    }
    results
}
