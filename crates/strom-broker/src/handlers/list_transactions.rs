//! ListTransactions (KIP-664): the transactional ids this broker coordinates, filtered by
//! state, producer id and (v1+, KIP-994) how long the transaction has been running.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_transactions_response::TransactionState as Listed;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_txn::TransactionState;

use super::{Reply, RequestContext};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

/// Version 2 adds a regular-expression filter on the id, which Strom does not serve yet.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: ListTransactionsRequest,
) -> Reply<ListTransactionsResponse> {
    let mut states = Vec::new();
    let mut unknown = Vec::new();
    for name in &request.state_filters {
        match TransactionState::from_name(name.as_str()) {
            Some(s) => states.push(s),
            None => unknown.push(name.clone()),
        }
    }
    let response = ListTransactionsResponse::default().with_unknown_state_filters(unknown);
    // Kafka answers an empty list when every state asked for is unknown.
    if states.is_empty() && !request.state_filters.is_empty() {
        return Reply::Now(response);
    }
    let producer_ids: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let min_duration_ms = request.duration_filter;
    let now = crate::now_ms();
    let listed = match state.transactions() {
        Some(t) => t
            .inspect(move |c| {
                let mut listed = c.list(&states, &producer_ids);
                if min_duration_ms >= 0 {
                    let ids: Vec<String> = listed.iter().map(|(id, _, _)| id.clone()).collect();
                    let started: Vec<i64> = c.describe(&ids).iter().map(|d| d.start_ms).collect();
                    let mut started = started.into_iter();
                    listed.retain(|_| {
                        started
                            .next()
                            .is_some_and(|s| s >= 0 && now - s > min_duration_ms)
                    });
                }
                listed
            })
            .await
            .ok(),
        None => None,
    };
    let Some(listed) = listed else {
        return Reply::Now(response.with_error_code(ResponseError::CoordinatorNotAvailable.code()));
    };
    // Kafka: only the transactional ids the principal may DESCRIBE.
    let authz = ctx.authz(state);
    let entries = listed
        .into_iter()
        .filter(|(id, _, _)| authz.allows_transactional_id(AclOperation::Describe, id))
        .map(|(id, producer_id, s)| {
            Listed::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
                .with_producer_id(ProducerId(producer_id))
                .with_transaction_state(StrBytes::from_static_str(s.name()))
        })
        .collect();
    Reply::Now(response.with_transaction_states(entries))
}
