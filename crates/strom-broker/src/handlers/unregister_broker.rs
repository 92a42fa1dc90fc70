//! UnregisterBroker (KIP-631): a broker leaves the cluster for good (`kafka-cluster.sh
//! unregister`, `strom cluster remove-broker`).
//!
//! The active controller removes the broker's registration, so it leaves DescribeCluster and
//! can never be given replicas again. Unlike Kafka it refuses (INVALID_REQUEST) while the
//! broker is still a replica of any partition: reassign its replicas first.
//! BROKER_ID_NOT_REGISTERED for an id that is not registered. A broker still running when it
//! is unregistered registers again at its next heartbeat; stop it first.

use std::sync::Arc;

use kafka_protocol::messages::{UnregisterBrokerRequest, UnregisterBrokerResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::BrokerId;
use strom_quorum::{ControllerReply, ControllerRequest};

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: UnregisterBrokerRequest,
) -> Reply<UnregisterBrokerResponse> {
    // Kafka: ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authz(state).allows_cluster(AclOperation::Alter) {
        let e = crate::security::authz::cluster_denied();
        return Reply::Now(
            UnregisterBrokerResponse::default()
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(e.message))),
        );
    }
    let broker_id = BrokerId(request.broker_id.0);
    let outcome = match state
        .controller_call(ControllerRequest::UnregisterBroker { broker_id })
        .await
    {
        Ok(response) => {
            state.wait_for_replicas(response.offset).await;
            match response.reply {
                ControllerReply::UnregisterBroker(result) => {
                    result.map_err(|e| KafkaError::new(e.error, e.message))
                }
                other => Err(crate::state::unexpected_reply(&other)),
            }
        }
        Err(e) => Err(e),
    };
    Reply::Now(match outcome {
        Ok(()) => {
            tracing::info!(%broker_id, "unregistered broker");
            UnregisterBrokerResponse::default()
        }
        Err(e) => UnregisterBrokerResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(StrBytes::from_string(e.message))),
    })
}
