//! KIP-890 part 1 on the produce path: before a partition leader appends the first
//! transactional batch of a producer's transaction, it asks the transaction coordinator
//! whether the partition is in that producer's open transaction (AddPartitionsToTxn with
//! `verify_only`). A batch the coordinator does not know about would start a transaction no
//! marker ever ends: a hanging transaction that holds every read_committed consumer of the
//! partition at its last stable offset.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use strom_client::{Connection, ConnectionConfig};
use strom_txn::Producer;
use tokio::sync::Mutex;

use strom_log::batch::{Validation, batches};

use super::TRANSACTION_STATE_TOPIC;
use crate::errors::KafkaError;
use crate::partition::Partition;
use crate::state::BrokerState;

/// AddPartitionsToTxn's first batched (broker-to-broker) version.
const BATCHED_VERSION: i16 = 4;

/// Connections to other brokers' transaction coordinators, kept for reuse.
#[derive(Default)]
pub struct Peers {
    connections: Mutex<HashMap<i32, Arc<Connection>>>,
}

/// One code per partition: NONE when the partition is in the producer's open transaction.
/// Coordinator trouble (moving, loading, unreachable) comes back as NOT_ENOUGH_REPLICAS, the
/// retriable produce error Kafka uses here so that every client retries the batch.
pub async fn verify(
    state: &Arc<BrokerState>,
    transactional_id: &str,
    producer: Producer,
    partitions: &[(String, i32)],
) -> Vec<i16> {
    let Some(transactions) = state.transactions() else {
        return vec![retriable(); partitions.len()];
    };
    let index = strom_group::partition_for_group(transactional_id, transactions.num_partitions);
    let leader = state
        .image()
        .partition(TRANSACTION_STATE_TOPIC, index)
        .map(|p| p.leader);
    let codes = match leader {
        Some(leader) if leader == state.node_id => {
            let (id, asked) = (transactional_id.to_string(), partitions.to_vec());
            match transactions
                .inspect(move |c| c.verify_partitions(&id, producer, &asked))
                .await
            {
                Ok(answer) => answer.into_iter().map(|(_, code)| code).collect(),
                Err(_) => vec![retriable(); partitions.len()],
            }
        }
        Some(leader) if leader != strom_cluster::BrokerId::NONE => {
            remote(
                state,
                &transactions.peers,
                leader.0,
                transactional_id,
                producer,
                partitions,
            )
            .await
        }
        _ => vec![retriable(); partitions.len()],
    };
    codes.into_iter().map(produce_error).collect()
}

/// The produce path's check of each partition's records (KIP-98, KIP-890 part 1): `None`
/// when the append may go ahead. Transactional batches need the request's transactional id
/// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED without one, as in Kafka), and the first batch of a
/// producer's transaction on a partition needs the coordinator's word that the partition is
/// in that transaction (unless `transaction.partition.verification.enable` is false, as Kafka
/// allows). Other batches pass untouched.
pub async fn check_produce(
    state: &Arc<BrokerState>,
    transactional_id: Option<&str>,
    targets: &[(&Arc<Partition>, &[u8])],
) -> Vec<Option<KafkaError>> {
    let mut checks: Vec<Option<KafkaError>> = vec![None; targets.len()];
    let mut unverified: Vec<usize> = Vec::new();
    let mut producer = None;
    for (i, (partition, records)) in targets.iter().enumerate() {
        let Some(Ok(first)) = batches(records, Validation::Produce).next() else {
            continue; // empty or malformed: the log's own validation answers
        };
        let header = first.header;
        if !header.is_transactional() || header.is_control() {
            continue;
        }
        if transactional_id.is_none() {
            checks[i] = Some(KafkaError::new(
                ResponseError::TransactionalIdAuthorizationFailed,
                "A transactional batch needs the request's transactional id.",
            ));
            continue;
        }
        if state.config.transaction_partition_verification_enable
            && !partition
                .log
                .has_open_transaction(header.producer_id, header.producer_epoch)
        {
            unverified.push(i);
            producer = Some(Producer {
                id: header.producer_id,
                epoch: header.producer_epoch,
            });
        }
    }
    let (Some(transactional_id), Some(producer)) = (transactional_id, producer) else {
        return checks;
    };
    let partitions: Vec<(String, i32)> = unverified
        .iter()
        .map(|&i| {
            let tp = &targets[i].0.topic_partition;
            (tp.topic.clone(), tp.partition)
        })
        .collect();
    let codes = verify(state, transactional_id, producer, &partitions).await;
    for (&i, code) in unverified.iter().zip(codes) {
        if code != 0 {
            checks[i] = Some(KafkaError::new(
                ResponseError::try_from_code(code).unwrap_or(ResponseError::InvalidTxnState),
                "The partition is not in the producer's open transaction.",
            ));
        }
    }
    checks
}

fn retriable() -> i16 {
    ResponseError::NotEnoughReplicas.code()
}

/// The produce error for a verification answer (Kafka's mapping: coordinator trouble is
/// retriable, INVALID_TXN_STATE and fencing are the client's problem).
fn produce_error(code: i16) -> i16 {
    let retriable_codes = [
        ResponseError::CoordinatorNotAvailable.code(),
        ResponseError::NotCoordinator.code(),
        ResponseError::CoordinatorLoadInProgress.code(),
        ResponseError::ConcurrentTransactions.code(),
        ResponseError::NetworkException.code(),
        ResponseError::RequestTimedOut.code(),
    ];
    if retriable_codes.contains(&code) {
        retriable()
    } else {
        code
    }
}

async fn remote(
    state: &BrokerState,
    peers: &Peers,
    coordinator: i32,
    transactional_id: &str,
    producer: Producer,
    partitions: &[(String, i32)],
) -> Vec<i16> {
    let failed = || vec![retriable(); partitions.len()];
    let Some(connection) = peers.connect(state, coordinator).await else {
        return failed();
    };
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (topic, index) in partitions {
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(*index),
            None => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![*index]),
            ),
        }
    }
    let transaction = AddPartitionsToTxnTransaction::default()
        .with_transactional_id(TransactionalId(StrBytes::from_string(
            transactional_id.to_string(),
        )))
        .with_producer_id(ProducerId(producer.id))
        .with_producer_epoch(producer.epoch)
        .with_verify_only(true)
        .with_topics(topics);
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![transaction]);
    let response = match connection.send_version(request, BATCHED_VERSION).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(coordinator, error = %e, "transaction verification failed");
            peers.forget(coordinator).await;
            return failed();
        }
    };
    if response.error_code != 0 {
        return vec![response.error_code; partitions.len()];
    }
    partitions
        .iter()
        .map(|(topic, index)| {
            response
                .results_by_transaction
                .iter()
                .flat_map(|r| &r.topic_results)
                .filter(|t| t.name.0.as_str() == topic)
                .flat_map(|t| &t.results_by_partition)
                .find(|p| p.partition_index == *index)
                .map_or(retriable(), |p| p.partition_error_code)
        })
        .collect()
}

impl Peers {
    /// A live connection to broker `id`, opened if needed.
    /// The lock is not held while connecting: a peer that is slow to answer must not hold up
    /// the others.
    pub async fn connect(&self, state: &BrokerState, id: i32) -> Option<Arc<Connection>> {
        if let Some(c) = self
            .connections
            .lock()
            .await
            .get(&id)
            .filter(|c| !c.is_closed())
        {
            return Some(Arc::clone(c));
        }
        let image = state.image();
        let broker = image.brokers.get(&strom_cluster::BrokerId(id))?;
        let address = state.inter_broker_address(broker)?;
        let config = ConnectionConfig {
            client_id: Some(format!("strom-txn-{}", state.node_id)),
            security: state.inter_broker_security(),
            ..ConnectionConfig::default()
        };
        match Connection::connect(&address, &config).await {
            Ok(c) => {
                let c = Arc::new(c);
                self.connections.lock().await.insert(id, Arc::clone(&c));
                Some(c)
            }
            Err(e) => {
                tracing::debug!(broker = id, error = %e, "cannot connect to a transaction peer");
                None
            }
        }
    }

    /// Drops the connection to `id` after a failure, so the next use reconnects.
    pub async fn forget(&self, id: i32) {
        self.connections.lock().await.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinator_trouble_is_retriable_for_the_producer() {
        for code in [
            ResponseError::CoordinatorNotAvailable,
            ResponseError::NotCoordinator,
            ResponseError::CoordinatorLoadInProgress,
            ResponseError::ConcurrentTransactions,
        ] {
            assert_eq!(produce_error(code.code()), retriable());
        }
        for code in [
            ResponseError::InvalidTxnState,
            ResponseError::ProducerFenced,
            ResponseError::InvalidProducerIdMapping,
        ] {
            assert_eq!(produce_error(code.code()), code.code());
        }
        assert_eq!(produce_error(0), 0);
    }
}
