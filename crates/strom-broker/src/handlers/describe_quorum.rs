//! DescribeQuorum (KIP-595): the metadata quorum as its leader sees it, for
//! `kafka-metadata-quorum.sh describe --status` and `strom cluster describe`.
//!
//! Kafka sends this to a controller; a broker forwards it. Strom's brokers ask the active
//! controller through the controller client, so any broker answers. The metadata log is
//! Kafka's `__cluster_metadata` partition 0; offsets are metadata log indexes plus one.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_quorum::controller::messages::{QuorumDescription, ReplicaProgress};
use strom_quorum::{ControllerReply, ControllerRequest};

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// The metadata log's name in Kafka's KRaft.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DescribeQuorumRequest,
) -> Reply<DescribeQuorumResponse> {
    // Kafka: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authz(state).allows_cluster(AclOperation::Describe) {
        let e = crate::security::authz::cluster_denied();
        return Reply::Now(
            DescribeQuorumResponse::default()
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(e.message))),
        );
    }
    let asks_metadata_log = request.topics.iter().any(|t| {
        t.topic_name.as_str() == METADATA_TOPIC
            && t.partitions.iter().any(|p| p.partition_index == 0)
    });
    if !asks_metadata_log {
        return Reply::Now(
            DescribeQuorumResponse::default()
                .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "Only __cluster_metadata-0 is a quorum.",
                ))),
        );
    }
    let outcome = match state
        .controller_call(ControllerRequest::DescribeQuorum)
        .await
    {
        Ok(response) => match response.reply {
            ControllerReply::Quorum(quorum) => Ok(quorum),
            other => Err(crate::state::unexpected_reply(&other)),
        },
        Err(e) => Err(e),
    };
    Reply::Now(match outcome {
        Ok(quorum) => describe(&quorum, ctx.api_version),
        Err(e) => partition_error(e),
    })
}

fn describe(quorum: &QuorumDescription, version: i16) -> DescribeQuorumResponse {
    let replica = |r: &ReplicaProgress| {
        let state = ReplicaState::default()
            .with_replica_id(BrokerId(r.replica_id.0))
            .with_log_end_offset(r.log_end_offset);
        if version >= 1 {
            state
                .with_last_fetch_timestamp(r.last_fetch_timestamp)
                .with_last_caught_up_timestamp(r.last_caught_up_timestamp)
        } else {
            state
        }
    };
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(quorum.leader_id.0))
        .with_leader_epoch(quorum.leader_epoch)
        .with_high_watermark(quorum.high_watermark)
        .with_current_voters(quorum.voters.iter().map(replica).collect())
        .with_observers(quorum.observers.iter().map(replica).collect());
    let mut response = DescribeQuorumResponse::default().with_topics(vec![
        TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
            .with_partitions(vec![partition]),
    ]);
    if version >= 2 {
        response.nodes = quorum
            .voter_addresses
            .iter()
            .filter_map(|(id, address)| {
                let endpoint = crate::config::parse_host_port(address).ok()?;
                Some(
                    Node::default()
                        .with_node_id(BrokerId(id.0))
                        .with_listeners(vec![
                            Listener::default()
                                .with_name(StrBytes::from_static_str("CONTROLLER"))
                                .with_host(StrBytes::from_string(endpoint.host))
                                .with_port(endpoint.port),
                        ]),
                )
            })
            .collect();
    }
    response
}

/// The error goes on the partition, as Kafka reports a quorum it cannot describe.
fn partition_error(e: KafkaError) -> DescribeQuorumResponse {
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_error_code(e.code())
        .with_leader_id(BrokerId(-1))
        .with_leader_epoch(-1)
        .with_high_watermark(-1);
    DescribeQuorumResponse::default().with_topics(vec![
        TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
            .with_partitions(vec![partition]),
    ])
}
