//! OffsetDelete (KIP-496): remove a group's committed offsets for partitions it no longer
//! consumes.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_group::{OffsetDeleteTopic, Response};

use super::{COORDINATOR_NOT_AVAILABLE, Reply, RequestContext, group_call};
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    state: &Arc<BrokerState>,
    _ctx: RequestContext,
    request: OffsetDeleteRequest,
) -> Reply<OffsetDeleteResponse> {
    let core = strom_group::OffsetDeleteRequest {
        group_id: request.group_id.to_string(),
        topics: request
            .topics
            .into_iter()
            .map(|t| OffsetDeleteTopic {
                name: t.name.to_string(),
                partition_indexes: t.partitions.iter().map(|p| p.partition_index).collect(),
            })
            .collect(),
    };
    group_call(
        state,
        move |c, now, id| c.offset_delete(now, id, core),
        |response| match response {
            Some(Response::OffsetDelete(r)) => OffsetDeleteResponse::default()
                .with_error_code(r.error_code)
                .with_topics(
                    r.topics
                        .into_iter()
                        .map(|t| {
                            OffsetDeleteResponseTopic::default()
                                .with_name(TopicName(StrBytes::from_string(t.name)))
                                .with_partitions(
                                    t.partitions
                                        .into_iter()
                                        .map(|p| {
                                            OffsetDeleteResponsePartition::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(p.error_code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            _ => OffsetDeleteResponse::default().with_error_code(COORDINATOR_NOT_AVAILABLE),
        },
    )
    .await
}
