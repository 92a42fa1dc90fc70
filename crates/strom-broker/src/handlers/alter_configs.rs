//! AlterConfigs (legacy): replaces a resource's whole set of config overrides.
//! IncrementalAlterConfigs is the API clients should prefer; both share [`alter`].

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::ConfigResource;
use strom_cluster::controller::AlterOp;
use strom_quorum::{ControllerReply, ControllerRequest};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: AlterConfigsRequest,
) -> Reply<AlterConfigsResponse> {
    let authz = ctx.authz(state);
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        // Kafka: ALTER_CONFIGS on the topic, or on the cluster for a broker.
        let authorized = authz.check_config_resource(
            AclOperation::AlterConfigs,
            resource.resource_type,
            resource.resource_name.as_str(),
        );
        let changes: Vec<(String, AlterOp)> = resource
            .configs
            .iter()
            .filter_map(|c| {
                Some((
                    c.name.to_string(),
                    AlterOp::Set(c.value.as_ref()?.to_string()),
                ))
            })
            .collect();
        let outcome = match authorized {
            Ok(()) => {
                alter(
                    state,
                    resource.resource_type,
                    resource.resource_name.as_str(),
                    changes,
                    false,
                    request.validate_only,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let mut response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        if let Err(e) = outcome {
            response.error_code = e.code();
            response.error_message = Some(StrBytes::from_string(e.message));
        }
        responses.push(response);
    }
    Reply::Now(AlterConfigsResponse::default().with_responses(responses))
}

/// Decides and (unless `validate_only`) applies config changes to one resource.
pub async fn alter(
    state: &BrokerState,
    resource_type: i8,
    resource_name: &str,
    changes: Vec<(String, AlterOp)>,
    incremental: bool,
    validate_only: bool,
) -> Result<(), KafkaError> {
    let resource = match resource_type {
        RESOURCE_TOPIC => ConfigResource::Topic(resource_name.to_string()),
        RESOURCE_BROKER => ConfigResource::Broker(resource_name.to_string()),
        other => {
            return Err(KafkaError::new(
                ResponseError::InvalidRequest,
                format!("Config resource type {other} is not supported"),
            ));
        }
    };
    let response = state
        .controller_call(ControllerRequest::AlterConfigs {
            resource: resource.clone(),
            changes,
            incremental,
            validate_only,
        })
        .await?;
    state.wait_for_replicas(response.offset).await;
    match response.reply {
        ControllerReply::AlterConfigs(Ok(())) => {
            if !validate_only {
                tracing::info!(resource = ?resource, "altered configs");
            }
            Ok(())
        }
        ControllerReply::AlterConfigs(Err(e)) => Err(KafkaError::new(e.error, e.message)),
        other => Err(crate::state::unexpected_reply(&other)),
    }
}
