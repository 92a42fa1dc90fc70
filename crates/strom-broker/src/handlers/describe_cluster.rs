//! DescribeCluster: the cluster id, the controller and the brokers.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::metadata::cluster_operations;
use super::{Reply, RequestContext};
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// DescribeCluster v1+ endpoint types.
const ENDPOINT_BROKERS: i8 = 1;
const ENDPOINT_CONTROLLERS: i8 = 2;

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DescribeClusterRequest,
) -> Reply<DescribeClusterResponse> {
    let endpoint_type = if ctx.api_version >= 1 {
        request.endpoint_type
    } else {
        ENDPOINT_BROKERS
    };
    let mut response = DescribeClusterResponse::default()
        .with_endpoint_type(endpoint_type)
        .with_cluster_id(StrBytes::from_string(state.cluster_id.clone()))
        .with_controller_id(BrokerId(state.controller_id(&state.image()).0))
        // Kafka does not gate DescribeCluster; the bit set is 0 without DESCRIBE on the cluster.
        .with_cluster_authorized_operations(cluster_operations(
            &ctx.authz(state),
            request.include_cluster_authorized_operations,
        ));
    if endpoint_type != ENDPOINT_BROKERS && endpoint_type != ENDPOINT_CONTROLLERS {
        response.error_code = ResponseError::UnsupportedEndpointType.code();
        response.error_message = Some(StrBytes::from_string(format!(
            "Unsupported endpoint type {endpoint_type}"
        )));
        return Reply::Now(response);
    }
    if endpoint_type == ENDPOINT_CONTROLLERS {
        // The controllers are the quorum's voters, at their controller listeners.
        response.brokers = state
            .config
            .voters
            .iter()
            .filter_map(|(id, address)| {
                let endpoint = crate::config::parse_host_port(address).ok()?;
                Some(
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(*id))
                        .with_host(StrBytes::from_string(endpoint.host))
                        .with_port(endpoint.port as i32),
                )
            })
            .collect();
        return Reply::Now(response);
    }
    // Fenced brokers are listed only when asked for (v2), marked as such.
    let include_fenced = ctx.api_version >= 2 && request.include_fenced_brokers;
    response.brokers = state
        .image()
        .brokers
        .values()
        .filter(|b| include_fenced || !b.fenced)
        .map(|b| {
            let (host, port) = b.address_for(ctx.listener()).unwrap_or_default();
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.broker_id.0))
                .with_host(StrBytes::from_string(host))
                .with_port(port as i32)
                .with_rack(b.rack.clone().map(StrBytes::from_string))
                .with_is_fenced(b.fenced)
        })
        .collect();
    Reply::Now(response)
}
