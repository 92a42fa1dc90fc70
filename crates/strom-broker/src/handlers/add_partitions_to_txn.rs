//! AddPartitionsToTxn: a transactional producer adds partitions to its open transaction
//! before writing to them, so the coordinator knows where to send the markers.
//!
//! Versions 0-3 are the client's form (one transaction). Version 4+ is KIP-890's batched form
//! that partition leaders send: several transactions, each either adding or, with
//! `verify_only`, asking whether its partitions are already in the open transaction.
//!
//! Partitions of topics that do not exist get UNKNOWN_TOPIC_OR_PARTITION and the others
//! OPERATION_NOT_ATTEMPTED, as in Kafka: nothing is added when any partition is unknown.
//!
//! Authorization, as Kafka: WRITE on the transactional id (else every partition gets
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and on each topic (TOPIC_AUTHORIZATION_FAILED, the
//! others OPERATION_NOT_ATTEMPTED); the batched form also needs CLUSTER_ACTION on the cluster.

use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_txn::Producer;

use super::{Reply, RequestContext};
use crate::security::Authz;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// The first version with a list of transactions.
const BATCHED_VERSION: i16 = 4;

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: AddPartitionsToTxnRequest,
) -> Reply<AddPartitionsToTxnResponse> {
    let authz = ctx.authz(state);
    if ctx.api_version < BATCHED_VERSION {
        let producer = Producer {
            id: request.v3_and_below_producer_id.0,
            epoch: request.v3_and_below_producer_epoch,
        };
        let results = add(
            state,
            &authz,
            request.v3_and_below_transactional_id.to_string(),
            producer,
            request.v3_and_below_topics,
            false,
        )
        .await;
        return Reply::Later(Box::pin(async move {
            AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results.await)
        }));
    }
    if !authz.allows_cluster(AclOperation::ClusterAction) {
        return Reply::Now(
            AddPartitionsToTxnResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
        );
    }
    let mut pending = Vec::with_capacity(request.transactions.len());
    for txn in request.transactions {
        let producer = Producer {
            id: txn.producer_id.0,
            epoch: txn.producer_epoch,
        };
        let id = txn.transactional_id.clone();
        let results = add(
            state,
            &authz,
            txn.transactional_id.to_string(),
            producer,
            txn.topics,
            txn.verify_only,
        )
        .await;
        pending.push((id, results));
    }
    Reply::Later(Box::pin(async move {
        let mut by_transaction = Vec::with_capacity(pending.len());
        for (id, results) in pending {
            by_transaction.push(
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(id)
                    .with_topic_results(results.await),
            );
        }
        AddPartitionsToTxnResponse::default().with_results_by_transaction(by_transaction)
    }))
}

type Results = BoxFuture<'static, Vec<AddPartitionsToTxnTopicResult>>;

/// Submits one transaction's partitions (the ordered part) and returns the wait for its
/// per-partition results.
async fn add(
    state: &Arc<BrokerState>,
    authz: &Authz,
    transactional_id: String,
    producer: Producer,
    topics: Vec<AddPartitionsToTxnTopic>,
    verify_only: bool,
) -> Results {
    let partitions: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|&p| (t.name.0.to_string(), p)))
        .collect();
    if !authz.allows_transactional_id(AclOperation::Write, &transactional_id) {
        let code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return ready(same_code(&partitions, code));
    }
    let image = state.image();
    let failures: Vec<Option<ResponseError>> = partitions
        .iter()
        .map(|(topic, index)| {
            if !authz.allows_topic(AclOperation::Write, topic) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if image.partition(topic, *index).is_none() {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                None
            }
        })
        .collect();
    if failures.iter().any(Option::is_some) {
        let codes = failures
            .iter()
            .map(|f| f.unwrap_or(ResponseError::OperationNotAttempted).code())
            .collect();
        return ready(topic_results(&partitions, codes));
    }
    let Some(transactions) = state.transactions() else {
        return ready(same_code(&partitions, unavailable()));
    };
    if verify_only {
        let txn_id = transactional_id.clone();
        let asked = partitions.clone();
        let verified = transactions
            .inspect(move |c| c.verify_partitions(&txn_id, producer, &asked))
            .await;
        let codes = match verified {
            Ok(list) => list.into_iter().map(|(_, code)| code).collect(),
            Err(_) => vec![unavailable(); partitions.len()],
        };
        return ready(topic_results(&partitions, codes));
    }
    let asked = partitions.clone();
    let submitted = transactions
        .submit(move |c, now, rid| c.add_partitions(now, rid, &transactional_id, producer, &asked))
        .await;
    match submitted {
        Ok(receiver) => Box::pin(async move {
            let code = match receiver.await {
                Ok(strom_txn::Response::AddPartitions { error }) => error,
                _ => unavailable(),
            };
            same_code(&partitions, code)
        }),
        Err(_) => ready(same_code(&partitions, unavailable())),
    }
}

fn unavailable() -> i16 {
    ResponseError::CoordinatorNotAvailable.code()
}

fn ready(results: Vec<AddPartitionsToTxnTopicResult>) -> Results {
    Box::pin(std::future::ready(results))
}

fn same_code(partitions: &[(String, i32)], code: i16) -> Vec<AddPartitionsToTxnTopicResult> {
    topic_results(partitions, vec![code; partitions.len()])
}

/// Per-topic results in the request's order, one code per partition.
fn topic_results(
    partitions: &[(String, i32)],
    codes: Vec<i16>,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut results: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, index), code) in partitions.iter().zip(codes) {
        let partition = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(*index)
            .with_partition_error_code(code);
        match results.iter_mut().find(|r| r.name.0.as_str() == topic) {
            Some(result) => result.results_by_partition.push(partition),
            None => results.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(
                        topic.clone(),
                    )))
                    .with_results_by_partition(vec![partition]),
            ),
        }
    }
    results
}
