//! CreatePartitions: grow a topic's partition count.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::controller;

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 3 };

pub async fn handle(
    state: &Arc<BrokerState>,
    _ctx: RequestContext,
    request: CreatePartitionsRequest,
) -> Reply<CreatePartitionsResponse> {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.to_string();
        // An empty list means "no manual assignment", like null.
        let assignments: Option<Vec<Vec<i32>>> = topic
            .assignments
            .as_ref()
            .filter(|list| !list.is_empty())
            .map(|list| list.iter().map(|a| a.broker_ids.iter().map(|b| b.0).collect()).collect());
        let decide = |image: &strom_cluster::MetadataImage| {
            controller::create_partitions(image, &name, topic.count, assignments.as_deref(), 0)
        };
        let outcome = if request.validate_only {
            decide(&state.image()).map(|_| ()).map_err(|e| KafkaError::new(e.error, e.message))
        } else {
            state
                .commit(|image| decide(image).map(|r| (r, ())))
                .await
                .map(|_| tracing::info!(topic = %name, partitions = topic.count, "added partitions"))
                .map_err(|e| KafkaError::from(&e))
        };
        let mut result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        if let Err(e) = outcome {
            result.error_code = e.code();
            result.error_message = Some(StrBytes::from_string(e.message));
        }
        results.push(result);
    }
    Reply::Now(CreatePartitionsResponse::default().with_results(results))
}
