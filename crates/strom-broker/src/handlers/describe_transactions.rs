//! DescribeTransactions (KIP-664): the state, producer, timeout, start time and partitions of
//! transactional ids this broker coordinates.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::{Reply, RequestContext};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DescribeTransactionsRequest,
) -> Reply<DescribeTransactionsResponse> {
    // Kafka: DESCRIBE on each transactional id (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
    // and only the transaction's topics the principal may DESCRIBE.
    let authz = ctx.authz(state);
    let (ids, denied): (Vec<String>, Vec<String>) = request
        .transactional_ids
        .iter()
        .map(|id| id.to_string())
        .partition(|id| authz.allows_transactional_id(AclOperation::Describe, id));
    let denied = denied.into_iter().map(|id| {
        TransactionState::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_transaction_start_time_ms(-1)
    });
    let asked = ids.clone();
    let described = match state.transactions() {
        Some(t) => t.inspect(move |c| c.describe(&asked)).await.ok(),
        None => None,
    };
    let states: Vec<TransactionState> = match described {
        Some(list) => list
            .into_iter()
            .map(entry)
            .map(|mut state| {
                state
                    .topics
                    .retain(|t| authz.allows_topic(AclOperation::Describe, &t.topic));
                state
            })
            .collect(),
        None => ids
            .into_iter()
            .map(|id| {
                TransactionState::default()
                    .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
                    .with_error_code(ResponseError::CoordinatorNotAvailable.code())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .with_transaction_start_time_ms(-1)
            })
            .collect(),
    };
    let states = states.into_iter().chain(denied).collect();
    Reply::Now(DescribeTransactionsResponse::default().with_transaction_states(states))
}

fn entry(d: strom_txn::coordinator::Described) -> TransactionState {
    let mut topics: Vec<TopicData> = Vec::new();
    for (topic, index) in d.partitions {
        match topics.iter_mut().find(|t| t.topic.0.as_str() == topic) {
            Some(t) => t.partitions.push(index),
            None => topics.push(
                TopicData::default()
                    .with_topic(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(vec![index]),
            ),
        }
    }
    TransactionState::default()
        .with_error_code(d.error)
        .with_transactional_id(TransactionalId(StrBytes::from_string(d.transactional_id)))
        .with_transaction_state(StrBytes::from_static_str(d.state.map_or("", |s| s.name())))
        .with_transaction_timeout_ms(d.timeout_ms)
        .with_transaction_start_time_ms(d.start_ms)
        .with_producer_id(ProducerId(d.producer_id))
        .with_producer_epoch(d.producer_epoch)
        .with_topics(topics)
}
