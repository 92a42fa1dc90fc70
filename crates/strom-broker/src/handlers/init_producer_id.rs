//! InitProducerId: a producer id and epoch for an idempotent or transactional producer.
//!
//! Ids come from blocks reserved through the metadata log, so they are never reused, even
//! after a restart. A transactional producer's request goes to the transaction coordinator,
//! which keeps the id's producer id across instances, bumps the epoch (fencing the previous
//! instance) and aborts the transaction that instance left open.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;

use super::{Reply, RequestContext};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: InitProducerIdRequest,
) -> Reply<InitProducerIdResponse> {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    // Kafka: WRITE on the transactional id; without one, IDEMPOTENT_WRITE on the cluster or
    // WRITE on some topic.
    let authz = ctx.authz(state);
    let denied = match request.transactional_id.as_ref().filter(|t| !t.is_empty()) {
        Some(txn) if !authz.allows_transactional_id(AclOperation::Write, txn) => {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        }
        None if !authz.allows_cluster(AclOperation::IdempotentWrite)
            && !authz.allows_any_topic(AclOperation::Write) =>
        {
            Some(ResponseError::ClusterAuthorizationFailed)
        }
        _ => None,
    };
    if let Some(error) = denied {
        return Reply::Now(response.with_error_code(error.code()));
    }
    // A new producer id: taken by a new transactional id, one whose epoch is exhausted, and
    // every idempotent producer. Unused ones are simply skipped (ids are plentiful).
    let fresh = match state.next_producer_id().await {
        Ok(id) => id,
        Err(e) => {
            // Retriable for the client: the controller may be moving; the producer tries again.
            tracing::warn!(error = %e.message, "cannot allocate producer ids");
            return Reply::Now(
                response.with_error_code(ResponseError::CoordinatorNotAvailable.code()),
            );
        }
    };
    // An empty transactional id is no transactional id (the codec's default is an empty string).
    if let Some(txn) = request.transactional_id.as_ref().filter(|t| !t.is_empty()) {
        let transactional_id = txn.to_string();
        let timeout_ms = request.transaction_timeout_ms;
        return super::txn_call(
            state,
            move |coordinator, now, rid| {
                coordinator.init_producer_id(now, rid, &transactional_id, timeout_ms, fresh)
            },
            move |answer| match answer {
                Some(strom_txn::Response::InitProducerId {
                    error,
                    producer_id,
                    producer_epoch,
                }) => response
                    .with_error_code(error)
                    .with_producer_id(ProducerId(producer_id))
                    .with_producer_epoch(producer_epoch),
                _ => response.with_error_code(ResponseError::CoordinatorNotAvailable.code()),
            },
        )
        .await;
    }
    // An idempotent producer, new or bumping its epoch after an error (KIP-360): both get a fresh
    // producer id with epoch 0, which no stale state in any log can conflict with.
    Reply::Now(
        response
            .with_producer_id(ProducerId(fresh))
            .with_producer_epoch(0),
    )
}
