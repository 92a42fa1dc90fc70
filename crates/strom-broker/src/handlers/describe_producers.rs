//! DescribeProducers (KIP-664): the active producers of partitions this broker leads, from
//! each log's producer state: id, epoch, last sequence and timestamp, and the first offset of
//! the producer's open transaction. Operators use it (`kafka-transactions.sh
//! describe-producers`) to find the producer behind a transaction that holds back the last
//! stable offset.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::{Reply, RequestContext};
use crate::errors::led_partition;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DescribeProducersRequest,
) -> Reply<DescribeProducersResponse> {
    let image = state.image();
    let authz = ctx.authz(state);
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&index| {
                    let response = PartitionResponse::default().with_partition_index(index);
                    // Kafka: READ on the topic.
                    let found = if authz.allows_topic(AclOperation::Read, &topic.name) {
                        led_partition(state, &image, &topic.name, index)
                    } else {
                        Err(crate::security::authz::topic_denied(&topic.name))
                    };
                    match found {
                        Ok(partition) => {
                            response.with_active_producers(active_producers(&partition.log))
                        }
                        Err(e) => response
                            .with_error_code(e.code())
                            .with_error_message(Some(StrBytes::from_string(e.message))),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Reply::Now(DescribeProducersResponse::default().with_topics(topics))
}

fn active_producers(log: &strom_log::Log) -> Vec<ProducerState> {
    log.producer_state()
        .iter()
        .map(|(producer_id, entry)| {
            ProducerState::default()
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(i32::from(entry.epoch))
                .with_last_sequence(entry.last_sequence())
                .with_last_timestamp(entry.last_timestamp)
                // Markers carry the coordinator epoch; the producer state does not keep it.
                .with_coordinator_epoch(-1)
                .with_current_txn_start_offset(entry.current_txn_first_offset.unwrap_or(-1))
        })
        .collect()
}
