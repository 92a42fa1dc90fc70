//! DeleteAcls: remove every ACL a filter selects (`kafka-acls --remove`, `strom acl delete`).
//!
//! Filters with an UNKNOWN or unknown code fail alone with INVALID_REQUEST; the others go to
//! the active controller in one request, which answers, per filter, the ACLs it removed.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::ApiError;
use strom_cluster::acl::{AclBinding, AclFilter};
use strom_quorum::{ControllerReply, ControllerRequest};

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

/// Kafka 4 serves v1 to v3 (v0 was removed with KIP-896).
pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

type FilterOutcome = Result<Vec<AclBinding>, ApiError>;

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DeleteAclsRequest,
) -> Reply<DeleteAclsResponse> {
    // Kafka: SECURITY_DISABLED without an authorizer, else ALTER on the cluster.
    if let Err(e) = ctx.authz(state).check_acl_api(AclOperation::Alter) {
        let error = ApiError::new(e.error, e.message);
        let results = request
            .filters
            .iter()
            .map(|_| filter_result(Err(error.clone())))
            .collect();
        return Reply::Now(DeleteAclsResponse::default().with_filter_results(results));
    }
    let checked: Vec<Result<AclFilter, ApiError>> = request
        .filters
        .iter()
        .map(|f| {
            AclFilter::from_codes(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
            .map_err(|message| ApiError::new(ResponseError::InvalidRequest, message))
        })
        .collect();
    let valid: Vec<AclFilter> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok().cloned())
        .collect();
    let mut decided = match delete(state, valid.clone()).await {
        Ok(results) => results,
        Err(e) => vec![Err(ApiError::new(e.error, e.message)); valid.len()],
    }
    .into_iter();
    let results = checked
        .into_iter()
        .map(|c| {
            let outcome = c.and_then(|_| decided.next().unwrap_or(Ok(Vec::new())));
            filter_result(outcome)
        })
        .collect();
    Reply::Now(DeleteAclsResponse::default().with_filter_results(results))
}

async fn delete(
    state: &BrokerState,
    filters: Vec<AclFilter>,
) -> Result<Vec<FilterOutcome>, KafkaError> {
    if filters.is_empty() {
        return Ok(Vec::new());
    }
    let response = state
        .controller_call(ControllerRequest::DeleteAcls { filters })
        .await?;
    state.wait_for_replicas(response.offset).await;
    match response.reply {
        ControllerReply::DeleteAcls(results) => Ok(results),
        other => Err(crate::state::unexpected_reply(&other)),
    }
}

fn filter_result(outcome: FilterOutcome) -> DeleteAclsFilterResult {
    match outcome {
        Ok(removed) => {
            for acl in &removed {
                tracing::info!(acl = %acl, "deleted ACL");
            }
            DeleteAclsFilterResult::default()
                .with_matching_acls(removed.iter().map(matching_acl).collect())
        }
        Err(e) => DeleteAclsFilterResult::default()
            .with_error_code(e.code())
            .with_error_message(Some(StrBytes::from_string(e.message))),
    }
}

fn matching_acl(acl: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(acl.resource_type.code())
        .with_resource_name(StrBytes::from_string(acl.resource_name.clone()))
        .with_pattern_type(acl.pattern_type.code())
        .with_principal(StrBytes::from_string(acl.principal.clone()))
        .with_host(StrBytes::from_string(acl.host.clone()))
        .with_operation(acl.operation.code())
        .with_permission_type(acl.permission_type.code())
}
