//! CreateAcls: store ACLs in the metadata log (`kafka-acls --add`, `strom acl create`).
//!
//! Each creation is checked here against Kafka's rules for a new ACL
//! (`AclBinding::from_codes`: a specific resource type, LITERAL or PREFIXED, a specific
//! operation, ALLOW or DENY, a resource name, a `Type:name` principal, `kafka-cluster` as the
//! cluster's name); the valid ones go to the active controller in one request. One result per
//! creation, in order. ACLs are stored whatever the authorizer settings: enforcing them is
//! the connection edge's business.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::ApiError;
use strom_cluster::acl::AclBinding;
use strom_quorum::{ControllerReply, ControllerRequest};

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

/// Kafka 4 serves v1 to v3 (v0 was removed with KIP-896); v1 added PREFIXED patterns.
pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: CreateAclsRequest,
) -> Reply<CreateAclsResponse> {
    // Kafka: SECURITY_DISABLED without an authorizer, else ALTER on the cluster.
    if let Err(e) = ctx.authz(state).check_acl_api(AclOperation::Alter) {
        let result = AclCreationResult::default()
            .with_error_code(e.code())
            .with_error_message(Some(StrBytes::from_string(e.message)));
        let results = vec![result; request.creations.len()];
        return Reply::Now(CreateAclsResponse::default().with_results(results));
    }
    let checked: Vec<Result<AclBinding, ApiError>> = request
        .creations
        .iter()
        .map(|c| {
            AclBinding::from_codes(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
            .map_err(|message| ApiError::new(ResponseError::InvalidRequest, message))
        })
        .collect();
    let valid: Vec<AclBinding> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok().cloned())
        .collect();
    let mut decided = match create(state, valid.clone()).await {
        Ok(results) => results,
        Err(e) => vec![Err(ApiError::new(e.error, e.message)); valid.len()],
    }
    .into_iter();
    let results = checked
        .into_iter()
        .map(|c| {
            let outcome = match c {
                Ok(binding) => {
                    let outcome = decided.next().unwrap_or(Ok(()));
                    if outcome.is_ok() {
                        tracing::info!(acl = %binding, "created ACL");
                    }
                    outcome
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => AclCreationResult::default(),
                Err(e) => AclCreationResult::default()
                    .with_error_code(e.code())
                    .with_error_message(Some(StrBytes::from_string(e.message))),
            }
        })
        .collect();
    Reply::Now(CreateAclsResponse::default().with_results(results))
}

async fn create(
    state: &BrokerState,
    bindings: Vec<AclBinding>,
) -> Result<Vec<Result<(), ApiError>>, KafkaError> {
    if bindings.is_empty() {
        return Ok(Vec::new());
    }
    let response = state
        .controller_call(ControllerRequest::CreateAcls { bindings })
        .await?;
    state.wait_for_replicas(response.offset).await;
    match response.reply {
        ControllerReply::CreateAcls(results) => Ok(results),
        other => Err(crate::state::unexpected_reply(&other)),
    }
}
