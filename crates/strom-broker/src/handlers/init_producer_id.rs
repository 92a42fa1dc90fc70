//! InitProducerId: a producer id and epoch for an idempotent producer.
//!
//! Ids come from blocks reserved through the metadata log, so they are never reused, even
//! after a restart. Transactional producers need a transaction coordinator, which Strom does
//! not have yet: such requests are refused with a message saying so.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;

use super::{Reply, RequestContext};
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: InitProducerIdRequest,
) -> Reply<InitProducerIdResponse> {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    // An empty transactional id is no transactional id (the codec's default is an empty string).
    if let Some(txn) = request.transactional_id.as_ref().filter(|t| !t.is_empty()) {
        tracing::info!(client = ?ctx.client_id, transactional_id = %txn.as_str(), "refusing a transactional producer: transactions are not supported yet");
        // Without a transaction coordinator no transactional id can be served; this code makes
        // clients fail init_transactions with a clear, non-retriable error.
        return Reply::Now(
            response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()),
        );
    }
    // An idempotent producer, new or bumping its epoch after an error (KIP-360): both get a fresh
    // producer id with epoch 0, which no stale state in any log can conflict with.
    match state.next_producer_id().await {
        Ok(id) => Reply::Now(
            response
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0),
        ),
        Err(e) => {
            // Retriable for the client: the controller may be moving; the producer tries again.
            tracing::warn!(error = %e.message, "cannot allocate producer ids");
            Reply::Now(response.with_error_code(ResponseError::CoordinatorNotAvailable.code()))
        }
    }
}
