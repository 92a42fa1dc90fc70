//! FindCoordinator: which broker coordinates a group (the leader of the group's
//! `__consumer_offsets` partition) or a transactional id (the leader of its
//! `__transaction_state` partition). Creates the topic on first use, as Kafka does. v4+ answers
//! many keys at once.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
/// The first version that carries a list of keys.
const BATCHED_VERSION: i16 = 4;

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: FindCoordinatorRequest,
) -> Reply<FindCoordinatorResponse> {
    let keys: Vec<String> = if ctx.api_version >= BATCHED_VERSION {
        request
            .coordinator_keys
            .iter()
            .map(|k| k.to_string())
            .collect()
    } else {
        vec![request.key.to_string()]
    };
    let authz = ctx.authz(state);
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        // Kafka: DESCRIBE on the group or the transactional id.
        let found = match request.key_type {
            KEY_TYPE_GROUP if !authz.allows_group(AclOperation::Describe, &key) => {
                Err(KafkaError::new(
                    ResponseError::GroupAuthorizationFailed,
                    "Group authorization failed.",
                ))
            }
            KEY_TYPE_TRANSACTION
                if !authz.allows_transactional_id(AclOperation::Describe, &key) =>
            {
                Err(KafkaError::new(
                    ResponseError::TransactionalIdAuthorizationFailed,
                    "Transactional Id authorization failed.",
                ))
            }
            _ => find(state, ctx.listener(), request.key_type, &key).await,
        };
        let entry = match found {
            Ok((node_id, host, port)) => Coordinator::default()
                .with_key(StrBytes::from_string(key))
                .with_node_id(BrokerId(node_id))
                .with_host(StrBytes::from_string(host))
                .with_port(port),
            Err(e) => Coordinator::default()
                .with_key(StrBytes::from_string(key))
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(e.message))),
        };
        coordinators.push(entry);
    }
    let response = if ctx.api_version >= BATCHED_VERSION {
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    } else {
        let single = coordinators.remove(0);
        FindCoordinatorResponse::default()
            .with_error_code(single.error_code)
            .with_error_message(if ctx.api_version >= 1 {
                single.error_message
            } else {
                None
            })
            .with_node_id(single.node_id)
            .with_host(single.host)
            .with_port(single.port)
    };
    Reply::Now(response)
}

async fn find(
    state: &Arc<BrokerState>,
    listener: &str,
    key_type: i8,
    key: &str,
) -> Result<(i32, String, i32), KafkaError> {
    let not_running = |what: &str| {
        KafkaError::new(
            ResponseError::CoordinatorNotAvailable,
            format!("The {what} coordinator is not running."),
        )
    };
    let (topic, partition) = match key_type {
        KEY_TYPE_GROUP => {
            crate::groups::ensure_offsets_topic(state).await?;
            let groups = state.groups().ok_or_else(|| not_running("group"))?;
            let partition = strom_group::partition_for_group(key, groups.offsets_partitions);
            (strom_cluster::CONSUMER_OFFSETS_TOPIC, partition)
        }
        KEY_TYPE_TRANSACTION => {
            crate::txn::ensure_topic(state).await?;
            let transactions = state
                .transactions()
                .ok_or_else(|| not_running("transaction"))?;
            let partition = strom_group::partition_for_group(key, transactions.num_partitions);
            (crate::txn::TRANSACTION_STATE_TOPIC, partition)
        }
        other => {
            return Err(KafkaError::new(
                ResponseError::InvalidRequest,
                format!("Coordinator key type {other} is not supported."),
            ));
        }
    };
    let image = state.image();
    let leader = image
        .partition(topic, partition)
        .map(|p| p.leader)
        .and_then(|leader| image.brokers.get(&leader))
        .filter(|b| !b.fenced);
    match leader.and_then(|b| Some((b.broker_id.0, b.address_for(listener)?))) {
        Some((id, (host, port))) => Ok((id, host, port as i32)),
        None => Err(KafkaError::new(
            ResponseError::CoordinatorNotAvailable,
            "The coordinator's partition has no leader.",
        )),
    }
}
