//! IncrementalAlterConfigs: set, delete, append to or subtract from individual configs.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::controller::AlterOp;

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> Reply<IncrementalAlterConfigsResponse> {
    let authz = ctx.authz(state);
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        // Kafka: ALTER_CONFIGS on the topic, or on the cluster for a broker.
        let authorized = authz.check_config_resource(
            AclOperation::AlterConfigs,
            resource.resource_type,
            resource.resource_name.as_str(),
        );
        let changes: Result<Vec<(String, AlterOp)>, KafkaError> = resource
            .configs
            .iter()
            .map(|c| {
                let value = || c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
                let op = match c.config_operation {
                    0 => AlterOp::Set(value()),
                    1 => AlterOp::Delete,
                    2 => AlterOp::Append(value()),
                    3 => AlterOp::Subtract(value()),
                    other => {
                        return Err(KafkaError::new(
                            ResponseError::InvalidRequest,
                            format!("Unknown config operation {other} for {}", c.name.as_str()),
                        ));
                    }
                };
                Ok((c.name.to_string(), op))
            })
            .collect();
        let outcome = match authorized.and(changes) {
            Ok(changes) => {
                super::alter_configs::alter(
                    state,
                    resource.resource_type,
                    resource.resource_name.as_str(),
                    changes,
                    true,
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
    Reply::Now(IncrementalAlterConfigsResponse::default().with_responses(responses))
}
