//! TxnOffsetCommit (KIP-98): a transactional producer stores a consumer group's positions as
//! part of its transaction. Answered once the transactional batch is durable; the offsets
//! become visible to OffsetFetch when the transaction's COMMIT marker reaches the group's
//! `__consumer_offsets` partition.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TopicName, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_group::{Response, TxnOffsetCommitPartition, TxnOffsetCommitTopic};

use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, group_call};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

/// v5 (KIP-890 part 2) lets the group coordinator add the offsets to the transaction itself,
/// which needs the transaction coordinator's verification; not served yet.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// v2 added the committed leader epoch; v3 the consumer's group metadata (KIP-447); v4 the
/// PRODUCER_FENCED code.
const LEADER_EPOCH_VERSION: i16 = 2;
const GROUP_METADATA_VERSION: i16 = 3;
const PRODUCER_FENCED_VERSION: i16 = 4;

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: TxnOffsetCommitRequest,
) -> Reply<TxnOffsetCommitResponse> {
    let version = ctx.api_version;
    let shape: Vec<(String, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    // Kafka: WRITE on the transactional id and READ on the group (else every partition fails),
    // READ on each topic (else its partitions get TOPIC_AUTHORIZATION_FAILED, uncommitted).
    let authz = ctx.authz(state);
    let same_code = |shape: &[(String, Vec<i32>)], code: i16| -> Outcome {
        shape
            .iter()
            .map(|(name, partitions)| {
                (
                    name.clone(),
                    partitions.iter().map(|&p| (p, code)).collect(),
                )
            })
            .collect()
    };
    let refused = if !authz.allows_transactional_id(AclOperation::Write, &request.transactional_id)
    {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !authz.allows_group(AclOperation::Read, &request.group_id) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(error) = refused {
        return Reply::Now(encode(same_code(&shape, error.code()), version));
    }
    let (allowed, denied): (Vec<_>, Vec<_>) = shape
        .into_iter()
        .partition(|(name, _)| authz.allows_topic(AclOperation::Read, name));
    let denied = same_code(&denied, ResponseError::TopicAuthorizationFailed.code());
    let shape = allowed;
    let mut request = request;
    request
        .topics
        .retain(|t| authz.allows_topic(AclOperation::Read, &t.name));
    if request.topics.is_empty() && !denied.is_empty() {
        return Reply::Now(encode(denied, version));
    }
    let core = to_core(request, version);
    group_call(
        state,
        move |c, now, id| c.txn_offset_commit(now, id, core),
        move |response| match response {
            Some(Response::TxnOffsetCommit(r)) => encode(
                r.topics
                    .into_iter()
                    .map(|t| {
                        let partitions = t
                            .partitions
                            .into_iter()
                            .map(|p| (p.partition_index, p.error_code))
                            .collect();
                        (t.name, partitions)
                    })
                    .chain(denied)
                    .collect(),
                version,
            ),
            _ => encode(
                shape
                    .into_iter()
                    .map(|(name, partitions)| {
                        let partitions = partitions
                            .into_iter()
                            .map(|p| (p, COORDINATOR_NOT_AVAILABLE))
                            .collect();
                        (name, partitions)
                    })
                    .chain(denied)
                    .collect(),
                version,
            ),
        },
    )
    .await
}

/// The coordinator's request; fields the version does not carry get their schema defaults.
fn to_core(request: TxnOffsetCommitRequest, version: i16) -> strom_group::TxnOffsetCommitRequest {
    let group_metadata = version >= GROUP_METADATA_VERSION;
    strom_group::TxnOffsetCommitRequest {
        transactional_id: request.transactional_id.to_string(),
        group_id: request.group_id.to_string(),
        producer_id: request.producer_id.0,
        producer_epoch: request.producer_epoch,
        generation_id: if group_metadata {
            request.generation_id
        } else {
            -1
        },
        member_id: if group_metadata {
            request.member_id.to_string()
        } else {
            String::new()
        },
        group_instance_id: group_metadata
            .then(|| request.group_instance_id.map(|i| i.to_string()))
            .flatten(),
        topics: request
            .topics
            .into_iter()
            .map(|t| TxnOffsetCommitTopic {
                name: t.name.to_string(),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| TxnOffsetCommitPartition {
                        partition_index: p.partition_index,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: if version >= LEADER_EPOCH_VERSION {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        committed_metadata: p.committed_metadata.map(|m| m.to_string()),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A client older than v4 does not know PRODUCER_FENCED; it gets the code it knows for a
/// fenced producer, as Kafka does.
fn error_for_version(code: i16, version: i16) -> i16 {
    if version < PRODUCER_FENCED_VERSION && code == ResponseError::ProducerFenced.code() {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        code
    }
}

/// (topic, [(partition, error code)]) in request order.
type Outcome = Vec<(String, Vec<(i32, i16)>)>;

fn encode(topics: Outcome, version: i16) -> TxnOffsetCommitResponse {
    TxnOffsetCommitResponse::default().with_topics(
        topics
            .into_iter()
            .map(|(name, partitions)| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(index, code)| {
                                TxnOffsetCommitResponsePartition::default()
                                    .with_partition_index(index)
                                    .with_error_code(error_for_version(code, version))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_clients_get_invalid_producer_epoch_for_a_fenced_producer() {
        let fenced = ResponseError::ProducerFenced.code();
        assert_eq!(
            error_for_version(fenced, 3),
            ResponseError::InvalidProducerEpoch.code()
        );
        assert_eq!(error_for_version(fenced, 4), fenced);
        assert_eq!(error_for_version(0, 0), 0);
    }

    #[test]
    fn fields_a_version_lacks_get_their_defaults() {
        let request = TxnOffsetCommitRequest::default()
            .with_generation_id(5)
            .with_member_id(StrBytes::from_static_str("m"))
            .with_topics(vec![
                kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_partitions(vec![
                        kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                            .with_committed_leader_epoch(9),
                    ]),
            ]);
        let v1 = to_core(request.clone(), 1);
        assert_eq!((v1.generation_id, v1.member_id.as_str()), (-1, ""));
        assert_eq!(v1.topics[0].partitions[0].committed_leader_epoch, -1);
        let v3 = to_core(request, 3);
        assert_eq!((v3.generation_id, v3.member_id.as_str()), (5, "m"));
        assert_eq!(v3.topics[0].partitions[0].committed_leader_epoch, 9);
    }
}
