//! AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction, so the
//! offsets the producer then commits with TxnOffsetCommit get the transaction's marker.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use kafka_protocol::protocol::VersionRange;
use strom_txn::Producer;

use super::{Reply, RequestContext};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: AddOffsetsToTxnRequest,
) -> Reply<AddOffsetsToTxnResponse> {
    // Kafka: WRITE on the transactional id, then READ on the group.
    let authz = ctx.authz(state);
    let denied = if !authz.allows_transactional_id(AclOperation::Write, &request.transactional_id) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !authz.allows_group(AclOperation::Read, &request.group_id) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(error) = denied {
        return Reply::Now(AddOffsetsToTxnResponse::default().with_error_code(error.code()));
    }
    // The group's partition must exist to be written to; Kafka creates the offsets topic the
    // same way when the producer later looks up the group coordinator.
    if let Err(e) = crate::groups::ensure_offsets_topic(state).await {
        return Reply::Now(AddOffsetsToTxnResponse::default().with_error_code(e.code()));
    }
    let transactional_id = request.transactional_id.to_string();
    let group_id = request.group_id.to_string();
    let producer = Producer {
        id: request.producer_id.0,
        epoch: request.producer_epoch,
    };
    super::txn_call(
        state,
        move |c, now, rid| c.add_offsets(now, rid, &transactional_id, producer, &group_id),
        |answer| {
            let code = match answer {
                Some(strom_txn::Response::AddOffsets { error }) => error,
                _ => ResponseError::CoordinatorNotAvailable.code(),
            };
            AddOffsetsToTxnResponse::default().with_error_code(code)
        },
    )
    .await
}
