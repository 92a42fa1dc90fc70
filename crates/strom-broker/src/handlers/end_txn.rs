//! EndTxn: the producer commits or aborts its transaction. The answer comes once the
//! coordinator's PrepareCommit/PrepareAbort record is durable; the markers follow in the
//! background, and the producer's next transaction waits for them (CONCURRENT_TRANSACTIONS).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;
use strom_txn::Producer;

use super::{Reply, RequestContext};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

/// Version 5 is transaction version 2 (KIP-890 part 2), which the broker does not advertise
/// as a finalized feature yet; clients use 0-4.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: EndTxnRequest,
) -> Reply<EndTxnResponse> {
    // Kafka: WRITE on the transactional id.
    if !ctx
        .authz(state)
        .allows_transactional_id(AclOperation::Write, &request.transactional_id)
    {
        return Reply::Now(
            EndTxnResponse::default()
                .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        );
    }
    let transactional_id = request.transactional_id.to_string();
    let producer = Producer {
        id: request.producer_id.0,
        epoch: request.producer_epoch,
    };
    let commit = request.committed;
    super::txn_call(
        state,
        move |c, now, rid| c.end_txn(now, rid, &transactional_id, producer, commit, false),
        |answer| match answer {
            Some(strom_txn::Response::EndTxn {
                error,
                producer_id,
                producer_epoch,
            }) => EndTxnResponse::default()
                .with_error_code(error)
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(producer_epoch),
            _ => EndTxnResponse::default()
                .with_error_code(ResponseError::CoordinatorNotAvailable.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        },
    )
    .await
}
