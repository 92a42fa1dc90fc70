//! WriteTxnMarkers: a transaction coordinator on another broker asks this partition leader
//! to write COMMIT or ABORT markers. Each marker is answered once it is committed (every
//! in-sync replica has it), so the coordinator records the transaction complete only when no
//! leader change can lose a marker.

use std::sync::Arc;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_txn::Markers;

use super::{Reply, RequestContext};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 1 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: WriteTxnMarkersRequest,
) -> Reply<WriteTxnMarkersResponse> {
    // Kafka: CLUSTER_ACTION on the cluster, else every partition gets
    // CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authz(state).allows_cluster(AclOperation::ClusterAction) {
        let code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        let results = request
            .markers
            .iter()
            .map(|marker| {
                let written = marker
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partition_indexes
                            .iter()
                            .map(|&p| ((t.name.0.to_string(), p), code))
                    })
                    .collect();
                WritableTxnMarkerResult::default()
                    .with_producer_id(marker.producer_id)
                    .with_topics(topic_results(written))
            })
            .collect();
        return Reply::Now(WriteTxnMarkersResponse::default().with_markers(results));
    }
    let state = Arc::clone(state);
    // The markers wait for replication: the waiting part, so the connection keeps reading.
    Reply::Later(Box::pin(async move {
        let mut results = Vec::with_capacity(request.markers.len());
        for marker in request.markers {
            let partitions: Vec<(String, i32)> = marker
                .topics
                .iter()
                .flat_map(|t| {
                    t.partition_indexes
                        .iter()
                        .map(|&p| (t.name.0.to_string(), p))
                })
                .collect();
            let markers = Markers {
                transactional_id: String::new(),
                producer_id: marker.producer_id.0,
                producer_epoch: marker.producer_epoch,
                commit: marker.transaction_result,
                coordinator_epoch: marker.coordinator_epoch,
                partitions: Vec::new(),
            };
            let written = crate::txn::write_markers_locally(&state, &markers, &partitions).await;
            results.push(
                WritableTxnMarkerResult::default()
                    .with_producer_id(marker.producer_id)
                    .with_topics(topic_results(written)),
            );
        }
        WriteTxnMarkersResponse::default().with_markers(results)
    }))
}

fn topic_results(written: Vec<((String, i32), i16)>) -> Vec<WritableTxnMarkerTopicResult> {
    let mut topics: Vec<WritableTxnMarkerTopicResult> = Vec::new();
    for ((topic, index), code) in written {
        let partition = WritableTxnMarkerPartitionResult::default()
            .with_partition_index(index)
            .with_error_code(code);
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    topics
}
