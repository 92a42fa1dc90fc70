//! Transactions from the admin side (KIP-664): which transactional ids exist and in what state,
//! what producer state each partition leader keeps, and aborting a hanging transaction.
//!
//! Two kinds of broker hold the answers. A transaction *coordinator* (found with
//! FindCoordinator, key type 1) owns transactional ids: ListTransactions goes to every broker,
//! because each lists only the ids it coordinates, and DescribeTransactions goes to each id's
//! coordinator. A partition *leader* owns the partition's producer state: DescribeProducers
//! reads it, and an operator's abort writes the ABORT marker there directly with
//! WriteTxnMarkers, bypassing a coordinator that has forgotten the transaction (which is what
//! makes it hang).

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_producers_response::ProducerState as RawProducerState;
use kafka_protocol::messages::describe_transactions_response::TransactionState as RawDescription;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, FindCoordinatorRequest,
    ListTransactionsRequest, ProducerId, TopicName, TransactionalId, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::{Client, Lane, Route};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::metadata::TopicPartition;

/// FindCoordinator's key type for transactional ids (0 is consumer groups).
const TRANSACTION_KEY_TYPE: i8 = 1;

/// A transactional id as [`Client::list_transactions`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// The transactional id (the producer's `transactional.id`).
    pub transactional_id: String,
    /// The producer id the coordinator gave it.
    pub producer_id: i64,
    /// State: `Empty`, `Ongoing`, `PrepareCommit`, `PrepareAbort`, `CompleteCommit`,
    /// `CompleteAbort`, `Dead` or `PrepareEpochFence`.
    pub state: String,
    /// The broker that coordinates it.
    pub coordinator_id: i32,
}

/// A transactional id as [`Client::describe_transactions`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The broker that coordinates it.
    pub coordinator_id: i32,
    /// The transactional id.
    pub transactional_id: String,
    /// State, as in [`TransactionListing::state`].
    pub state: String,
    /// The current producer id.
    pub producer_id: i64,
    /// The current producer epoch.
    pub producer_epoch: i16,
    /// The producer's `transaction.timeout.ms`.
    pub transaction_timeout_ms: i32,
    /// When the current transaction started (ms since the epoch), `None` when there is none.
    pub transaction_start_time_ms: Option<i64>,
    /// The partitions in the current transaction, sorted.
    pub partitions: Vec<TopicPartition>,
}

/// One producer's state at a partition leader, as [`Client::describe_producers`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerState {
    /// The producer id.
    pub producer_id: i64,
    /// The producer epoch of its last batch.
    pub producer_epoch: i32,
    /// The sequence number of its last batch's last record, -1 if unknown.
    pub last_sequence: i32,
    /// The timestamp of its last batch (ms since the epoch), `None` if unknown.
    pub last_timestamp_ms: Option<i64>,
    /// The coordinator epoch of the last marker written for it, `None` before any marker.
    pub coordinator_epoch: Option<i32>,
    /// The offset of the first batch of its open transaction, `None` when none is open.
    pub current_transaction_start_offset: Option<i64>,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Errors after which a request to a transaction coordinator is retried, with the
/// coordinator found again: it moved, is still loading, or could not be reached.
fn coordinator_retriable(error: &Error) -> bool {
    error.is(ResponseError::NotCoordinator)
        || error.is(ResponseError::CoordinatorNotAvailable)
        || error.is(ResponseError::CoordinatorLoadInProgress)
        || matches!(
            error,
            Error::Connect { .. } | Error::ConnectionClosed { .. } | Error::NoBrokerAvailable(_)
        )
}

/// A DescribeTransactions entry as a typed description, or the entry's Kafka error.
fn description_from(coordinator_id: i32, raw: RawDescription) -> Result<TransactionDescription> {
    let transactional_id = raw.transactional_id.0.to_string();
    Error::check(raw.error_code, None)
        .map_err(|e| e.with_context(format!("transactional id '{transactional_id}'")))?;
    let mut partitions: Vec<TopicPartition> = raw
        .topics
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic.0.to_string();
            t.partitions
                .into_iter()
                .map(move |p| TopicPartition::new(topic.clone(), p))
        })
        .collect();
    partitions.sort();
    Ok(TransactionDescription {
        coordinator_id,
        transactional_id,
        state: raw.transaction_state.to_string(),
        producer_id: raw.producer_id.0,
        producer_epoch: raw.producer_epoch,
        transaction_timeout_ms: raw.transaction_timeout_ms,
        // -1 (Kafka's "no transaction") becomes None.
        transaction_start_time_ms: (raw.transaction_start_time_ms >= 0)
            .then_some(raw.transaction_start_time_ms),
        partitions,
    })
}

/// A DescribeProducers entry with Kafka's -1 sentinels turned into `None`.
fn producer_state_from(raw: &RawProducerState) -> ProducerState {
    ProducerState {
        producer_id: raw.producer_id.0,
        producer_epoch: raw.producer_epoch,
        last_sequence: raw.last_sequence,
        last_timestamp_ms: (raw.last_timestamp >= 0).then_some(raw.last_timestamp),
        coordinator_epoch: (raw.coordinator_epoch >= 0).then_some(raw.coordinator_epoch),
        current_transaction_start_offset: (raw.current_txn_start_offset >= 0)
            .then_some(raw.current_txn_start_offset),
    }
}

/// The ABORT marker request for one producer's transaction on one partition.
fn abort_marker_request(
    topic_partition: &TopicPartition,
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
) -> WriteTxnMarkersRequest {
    let mut topic = WritableTxnMarkerTopic::default();
    topic.name = TopicName(str_bytes(&topic_partition.topic));
    topic.partition_indexes = vec![topic_partition.partition];
    let mut marker = WritableTxnMarker::default();
    marker.producer_id = ProducerId(producer_id);
    marker.producer_epoch = producer_epoch;
    // false is ABORT: an operator never commits someone else's transaction.
    marker.transaction_result = false;
    marker.coordinator_epoch = coordinator_epoch;
    marker.topics = vec![topic];
    let mut request = WriteTxnMarkersRequest::default();
    request.markers = vec![marker];
    request
}

/// The error code a WriteTxnMarkers response gives for the one partition it was asked about.
fn marker_result(
    response: &WriteTxnMarkersResponse,
    topic_partition: &TopicPartition,
) -> Option<i16> {
    response
        .markers
        .iter()
        .flat_map(|m| &m.topics)
        .filter(|t| t.name.0.as_str() == topic_partition.topic)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == topic_partition.partition)
        .map(|p| p.error_code)
}

/// Transactional ids grouped by coordinator, and those whose coordinator was not found.
type Routed = (BTreeMap<i32, Vec<String>>, Vec<(String, Error)>);

fn route_by_coordinator(found: Vec<(String, Result<i32>)>) -> Routed {
    let mut routed: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut failed = Vec::new();
    for (id, coordinator) in found {
        match coordinator {
            Ok(c) => routed.entry(c).or_default().push(id),
            Err(e) => failed.push((id, e)),
        }
    }
    (routed, failed)
}

impl Client {
    /// Lists transactional ids on every broker, optionally only those in `states`, with
    /// `producer_ids`, or whose current transaction has run longer than `min_duration_ms`
    /// (ListTransactions v1+). Sorted by transactional id. A state the brokers do not know is
    /// an [`Error::InvalidArgument`].
    pub async fn list_transactions(
        &self,
        states: &[&str],
        producer_ids: &[i64],
        min_duration_ms: Option<i64>,
    ) -> Result<Vec<TransactionListing>> {
        let metadata = self.refresh_metadata(Some(&[])).await?;
        let brokers: Vec<i32> = metadata.brokers.keys().copied().collect();
        let requests = brokers.iter().map(|&broker| {
            self.retry_if(
                |e| e.is_retriable(),
                move |_| self.list_transactions_at(broker, states, producer_ids, min_duration_ms),
            )
        });
        let mut all = Vec::new();
        for listed in futures::future::join_all(requests).await {
            all.extend(listed?);
        }
        all.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(all)
    }

    async fn list_transactions_at(
        &self,
        broker: i32,
        states: &[&str],
        producer_ids: &[i64],
        min_duration_ms: Option<i64>,
    ) -> Result<Vec<TransactionListing>> {
        let connection = self.broker_connection(broker).await?;
        let version = connection.negotiated_version::<ListTransactionsRequest>()?;
        let mut request = ListTransactionsRequest::default();
        request.state_filters = states.iter().map(|s| str_bytes(s)).collect();
        request.producer_id_filters = producer_ids.iter().map(|&p| ProducerId(p)).collect();
        if let Some(min_duration_ms) = min_duration_ms {
            if version < 1 {
                return Err(Error::UnsupportedVersion {
                    api: "ListTransactions".into(),
                    addr: connection.addr().to_owned(),
                    detail: "filtering by duration needs v1".into(),
                });
            }
            request.duration_filter = min_duration_ms;
        }
        let response = connection
            .send_with_timeout(request, version, self.config().request_timeout)
            .await?;
        Error::check(response.error_code, None)
            .map_err(|e| e.with_context(format!("broker {broker}")))?;
        if !response.unknown_state_filters.is_empty() {
            let unknown: Vec<String> = response
                .unknown_state_filters
                .iter()
                .map(|s| format!("'{s}'"))
                .collect();
            return Err(Error::InvalidArgument(format!(
                "unknown transaction state {}",
                unknown.join(", ")
            )));
        }
        Ok(response
            .transaction_states
            .into_iter()
            .map(|t| TransactionListing {
                transactional_id: t.transactional_id.0.to_string(),
                producer_id: t.producer_id.0,
                state: t.transaction_state.to_string(),
                coordinator_id: broker,
            })
            .collect())
    }

    /// The transaction coordinator of each id, with FindCoordinator key type 1: one batched
    /// request on v4+, one request per id before. One result per id, in order.
    pub async fn find_transaction_coordinators(
        &self,
        transactional_ids: &[&str],
    ) -> Result<Vec<(String, Result<i32>)>> {
        let connection = self.any_connection().await?;
        let version = connection.negotiated_version::<FindCoordinatorRequest>()?;
        if version < 1 {
            return Err(Error::UnsupportedVersion {
                api: "FindCoordinator".into(),
                addr: connection.addr().to_owned(),
                detail: "transaction coordinators need v1".into(),
            });
        }
        if version >= 4 {
            return self
                .find_coordinators_batched(&connection, version, transactional_ids)
                .await;
        }
        let mut found = Vec::with_capacity(transactional_ids.len());
        for id in transactional_ids {
            let mut request = FindCoordinatorRequest::default();
            request.key_type = TRANSACTION_KEY_TYPE;
            request.key = str_bytes(id);
            let response = connection
                .send_with_timeout(request, version, self.config().request_timeout)
                .await?;
            let result = Error::check(response.error_code, response.error_message.as_deref())
                .map(|()| response.node_id.0)
                .map_err(|e| e.with_context(format!("transactional id '{id}'")));
            found.push(((*id).to_owned(), result));
        }
        Ok(found)
    }

    async fn find_coordinators_batched(
        &self,
        connection: &Connection,
        version: i16,
        transactional_ids: &[&str],
    ) -> Result<Vec<(String, Result<i32>)>> {
        let mut request = FindCoordinatorRequest::default();
        request.key_type = TRANSACTION_KEY_TYPE;
        request.coordinator_keys = transactional_ids.iter().map(|id| str_bytes(id)).collect();
        let response = connection
            .send_with_timeout(request, version, self.config().request_timeout)
            .await?;
        let mut by_key: HashMap<String, Result<i32>> = HashMap::new();
        for c in response.coordinators {
            let result = Error::check(c.error_code, c.error_message.as_deref())
                .map(|()| c.node_id.0)
                .map_err(|e| e.with_context(format!("transactional id '{}'", c.key)));
            by_key.insert(c.key.to_string(), result);
        }
        Ok(transactional_ids
            .iter()
            .map(|id| {
                let result = by_key.remove(*id).unwrap_or_else(|| {
                    Err(Error::Protocol {
                        addr: connection.addr().to_owned(),
                        reason: format!("FindCoordinator response has no key '{id}'"),
                    })
                });
                ((*id).to_owned(), result)
            })
            .collect())
    }

    /// Describes transactional ids, each at its coordinator. An id the coordinator does not
    /// know fails with `TRANSACTIONAL_ID_NOT_FOUND`. Ids whose coordinator moved or is loading
    /// are found again and retried. One result per id, in order.
    pub async fn describe_transactions(
        &self,
        transactional_ids: &[&str],
    ) -> Result<Vec<(String, Result<TransactionDescription>)>> {
        let mut done: HashMap<String, Result<TransactionDescription>> = HashMap::new();
        let mut pending: Vec<String> = transactional_ids.iter().map(|s| (*s).to_owned()).collect();
        let mut attempt = 0;
        while !pending.is_empty() {
            let last_attempt = attempt >= self.config().retries;
            let ids: Vec<&str> = pending.iter().map(String::as_str).collect();
            let (routed, failed) =
                route_by_coordinator(self.find_transaction_coordinators(&ids).await?);
            let mut retry = Vec::new();
            let mut settle = |id: String, result: Result<TransactionDescription>| match result {
                Err(e) if !last_attempt && coordinator_retriable(&e) => retry.push(id),
                other => {
                    done.insert(id, other);
                }
            };
            for (id, e) in failed {
                settle(id, Err(e));
            }
            let requests = routed.into_iter().map(|(coordinator, ids)| async move {
                let described = self.describe_transactions_at(coordinator, &ids).await;
                (ids, described)
            });
            for (ids, described) in futures::future::join_all(requests).await {
                match described {
                    Ok(results) => results.into_iter().for_each(|(id, r)| settle(id, r)),
                    Err(e) => ids.into_iter().for_each(|id| settle(id, Err(e.clone()))),
                }
            }
            if !retry.is_empty() {
                tokio::time::sleep(self.config().backoff(attempt)).await;
            }
            pending = retry;
            attempt += 1;
        }
        Ok(transactional_ids
            .iter()
            .map(|id| {
                let result = done
                    .remove(*id)
                    .unwrap_or_else(|| Err(missing("DescribeTransactions", id)));
                ((*id).to_owned(), result)
            })
            .collect())
    }

    async fn describe_transactions_at(
        &self,
        coordinator: i32,
        ids: &[String],
    ) -> Result<Vec<(String, Result<TransactionDescription>)>> {
        let connection = self.broker_connection(coordinator).await?;
        let version = connection.negotiated_version::<DescribeTransactionsRequest>()?;
        let mut request = DescribeTransactionsRequest::default();
        request.transactional_ids = ids
            .iter()
            .map(|id| TransactionalId(str_bytes(id)))
            .collect();
        let response = connection
            .send_with_timeout(request, version, self.config().request_timeout)
            .await?;
        let mut by_id: HashMap<String, Result<TransactionDescription>> = response
            .transaction_states
            .into_iter()
            .map(|raw| {
                let id = raw.transactional_id.0.to_string();
                (id, description_from(coordinator, raw))
            })
            .collect();
        Ok(ids
            .iter()
            .map(|id| {
                let result = by_id
                    .remove(id)
                    .unwrap_or_else(|| Err(missing("DescribeTransactions", id)));
                (id.clone(), result)
            })
            .collect())
    }

    /// The active producers of each partition, as its leader keeps them. One result per
    /// partition, in order.
    pub async fn describe_producers(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<Vec<ProducerState>>)>> {
        let items: Vec<(TopicPartition, ())> =
            partitions.iter().map(|tp| (tp.clone(), ())).collect();
        let rounds = self.config().retries + 1;
        let results = self
            .by_leader(
                &items,
                Route::Shared(Lane::Default),
                rounds,
                |_, connection, group| self.describe_producers_at(connection, group),
            )
            .await;
        Ok(partitions.iter().cloned().zip(results).collect())
    }

    async fn describe_producers_at(
        &self,
        connection: Connection,
        group: Vec<(TopicPartition, ())>,
    ) -> Result<Vec<Result<Vec<ProducerState>>>> {
        let version = connection.negotiated_version::<DescribeProducersRequest>()?;
        let mut topics: Vec<TopicRequest> = Vec::new();
        for (tp, ()) in &group {
            match topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
                Some(t) => t.partition_indexes.push(tp.partition),
                None => {
                    let mut t = TopicRequest::default();
                    t.name = TopicName(str_bytes(&tp.topic));
                    t.partition_indexes = vec![tp.partition];
                    topics.push(t);
                }
            }
        }
        let mut request = DescribeProducersRequest::default();
        request.topics = topics;
        let response = connection
            .send_with_timeout(request, version, self.config().request_timeout)
            .await?;
        let mut found: HashMap<(String, i32), Result<Vec<ProducerState>>> = HashMap::new();
        for t in response.topics {
            for p in t.partitions {
                let result = Error::check(p.error_code, p.error_message.as_deref())
                    .map(|()| p.active_producers.iter().map(producer_state_from).collect());
                found.insert((t.name.0.to_string(), p.partition_index), result);
            }
        }
        Ok(group
            .iter()
            .map(|(tp, ())| {
                found
                    .remove(&(tp.topic.clone(), tp.partition))
                    .unwrap_or_else(|| Err(missing("DescribeProducers", &tp.to_string())))
                    .map_err(|e| e.with_context(tp))
            })
            .collect())
    }

    /// Aborts producer `producer_id`'s open transaction on `topic`/`partition` by writing an
    /// ABORT marker at the partition leader (WriteTxnMarkers), as Kafka's admin client does
    /// for a hanging transaction. `coordinator_epoch` must be at least the epoch of the last
    /// marker written for the producer (0 when none was).
    pub async fn abort_transaction(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<()> {
        let tp = TopicPartition::new(topic, partition);
        self.retry(|_| async {
            let (_, connection) = self.leader_connection(topic, partition).await?;
            let version = connection.negotiated_version::<WriteTxnMarkersRequest>()?;
            let request = abort_marker_request(&tp, producer_id, producer_epoch, coordinator_epoch);
            let response = connection
                .send_with_timeout(request, version, self.config().request_timeout)
                .await?;
            let code = marker_result(&response, &tp)
                .ok_or_else(|| missing("WriteTxnMarkers", &tp.to_string()))?;
            Error::check(code, None).map_err(|e| e.with_context(&tp))
        })
        .await
    }
}

fn missing(api: &str, item: &str) -> Error {
    Error::Protocol {
        addr: api.to_owned(),
        reason: format!("response has no result for '{item}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_transactions_response::TopicData;
    use kafka_protocol::messages::write_txn_markers_response::{
        WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    };

    fn raw_description(error_code: i16, start_ms: i64) -> RawDescription {
        let mut topic_b = TopicData::default();
        topic_b.topic = TopicName(str_bytes("b"));
        topic_b.partitions = vec![1, 0];
        let mut topic_a = TopicData::default();
        topic_a.topic = TopicName(str_bytes("a"));
        topic_a.partitions = vec![2];
        let mut raw = RawDescription::default();
        raw.error_code = error_code;
        raw.transactional_id = TransactionalId(str_bytes("payments"));
        raw.transaction_state = str_bytes("Ongoing");
        raw.transaction_timeout_ms = 60_000;
        raw.transaction_start_time_ms = start_ms;
        raw.producer_id = ProducerId(7);
        raw.producer_epoch = 3;
        raw.topics = vec![topic_b, topic_a];
        raw
    }

    #[test]
    fn a_description_lists_its_partitions_sorted_and_maps_no_start_time_to_none() {
        let described = description_from(2, raw_description(0, 1_000)).unwrap();
        assert_eq!(described.coordinator_id, 2);
        assert_eq!(described.state, "Ongoing");
        assert_eq!((described.producer_id, described.producer_epoch), (7, 3));
        assert_eq!(described.transaction_start_time_ms, Some(1_000));
        assert_eq!(
            described.partitions,
            [
                TopicPartition::new("a", 2),
                TopicPartition::new("b", 0),
                TopicPartition::new("b", 1)
            ]
        );
        let idle = description_from(2, raw_description(0, -1)).unwrap();
        assert_eq!(idle.transaction_start_time_ms, None);
    }

    #[test]
    fn an_unknown_transactional_id_is_a_kafka_error_naming_it() {
        let code = ResponseError::TransactionalIdNotFound.code();
        let err = description_from(0, raw_description(code, -1)).unwrap_err();
        assert!(err.is(ResponseError::TransactionalIdNotFound), "{err}");
        assert!(
            err.to_string().contains("transactional id 'payments'"),
            "{err}"
        );
    }

    #[test]
    fn producer_state_sentinels_become_none() {
        let mut raw = RawProducerState::default();
        raw.producer_id = ProducerId(9);
        raw.producer_epoch = 1;
        raw.last_sequence = 4;
        raw.last_timestamp = -1;
        raw.coordinator_epoch = -1;
        raw.current_txn_start_offset = -1;
        let state = producer_state_from(&raw);
        assert_eq!(state.last_timestamp_ms, None);
        assert_eq!(state.coordinator_epoch, None);
        assert_eq!(state.current_transaction_start_offset, None);
        raw.current_txn_start_offset = 42;
        raw.coordinator_epoch = 0;
        let open = producer_state_from(&raw);
        assert_eq!(open.current_transaction_start_offset, Some(42));
        assert_eq!(open.coordinator_epoch, Some(0));
    }

    #[test]
    fn the_abort_marker_names_one_partition_and_aborts() {
        let tp = TopicPartition::new("orders", 3);
        let request = abort_marker_request(&tp, 11, 2, 5);
        let [marker] = &request.markers[..] else {
            panic!("one marker expected: {request:?}");
        };
        assert!(!marker.transaction_result, "an abort, never a commit");
        assert_eq!(marker.producer_id.0, 11);
        assert_eq!((marker.producer_epoch, marker.coordinator_epoch), (2, 5));
        assert_eq!(marker.topics.len(), 1);
        assert_eq!(marker.topics[0].name.0.as_str(), "orders");
        assert_eq!(marker.topics[0].partition_indexes, [3]);
    }

    #[test]
    fn the_marker_result_is_found_by_topic_and_partition() {
        let mut p0 = WritableTxnMarkerPartitionResult::default();
        p0.partition_index = 0;
        let mut p3 = WritableTxnMarkerPartitionResult::default();
        p3.partition_index = 3;
        p3.error_code = ResponseError::InvalidProducerEpoch.code();
        let mut topic = WritableTxnMarkerTopicResult::default();
        topic.name = TopicName(str_bytes("orders"));
        topic.partitions = vec![p0, p3];
        let mut marker = WritableTxnMarkerResult::default();
        marker.topics = vec![topic];
        let mut response = WriteTxnMarkersResponse::default();
        response.markers = vec![marker];
        let orders = |p| TopicPartition::new("orders", p);
        assert_eq!(marker_result(&response, &orders(0)), Some(0));
        assert_eq!(
            marker_result(&response, &orders(3)),
            Some(ResponseError::InvalidProducerEpoch.code())
        );
        assert_eq!(marker_result(&response, &orders(1)), None);
        assert_eq!(
            marker_result(&response, &TopicPartition::new("other", 0)),
            None
        );
    }

    #[test]
    fn ids_are_grouped_by_coordinator_and_failures_kept_apart() {
        let not_available = Error::kafka(ResponseError::CoordinatorNotAvailable.code(), None);
        let (routed, failed) = route_by_coordinator(vec![
            ("a".into(), Ok(1)),
            ("b".into(), Ok(0)),
            ("c".into(), Err(not_available)),
            ("d".into(), Ok(1)),
        ]);
        assert_eq!(routed[&0], ["b"]);
        assert_eq!(routed[&1], ["a", "d"]);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, "c");
        assert!(coordinator_retriable(&failed[0].1));
    }
}
