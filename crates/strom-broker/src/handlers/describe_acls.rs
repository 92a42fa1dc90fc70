//! DescribeAcls: the ACLs a filter selects (`kafka-acls --list`, `strom acl list`), answered
//! from this broker's metadata image, grouped by resource pattern as the protocol wants.
//! An UNKNOWN or unknown code in the filter is INVALID_REQUEST for the whole request.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::acl::{AclBinding, AclFilter, PatternType, ResourceType};

use super::{Reply, RequestContext};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

/// Kafka 4 serves v1 to v3 (v0 was removed with KIP-896).
pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DescribeAclsRequest,
) -> Reply<DescribeAclsResponse> {
    // Kafka: SECURITY_DISABLED without an authorizer, else DESCRIBE on the cluster.
    if let Err(e) = ctx.authz(state).check_acl_api(AclOperation::Describe) {
        return Reply::Now(
            DescribeAclsResponse::default()
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(e.message))),
        );
    }
    let filter = AclFilter::from_codes(
        request.resource_type_filter,
        request.resource_name_filter.as_deref(),
        request.pattern_type_filter,
        request.principal_filter.as_deref(),
        request.host_filter.as_deref(),
        request.operation,
        request.permission_type,
    );
    let filter = match filter {
        Ok(filter) => filter,
        Err(message) => {
            return Reply::Now(
                DescribeAclsResponse::default()
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            );
        }
    };
    let image = state.image();
    let matched = image
        .acls
        .iter()
        .map(|(_, acl)| acl)
        .filter(|acl| filter.matches(acl));
    Reply::Now(DescribeAclsResponse::default().with_resources(by_resource(matched)))
}

/// ACLs grouped by resource pattern, in (type, name, pattern type) order.
pub fn by_resource<'a>(acls: impl Iterator<Item = &'a AclBinding>) -> Vec<DescribeAclsResource> {
    let mut groups: BTreeMap<(ResourceType, &str, PatternType), Vec<AclDescription>> =
        BTreeMap::new();
    for acl in acls {
        groups
            .entry((acl.resource_type, &acl.resource_name, acl.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(acl.principal.clone()))
                    .with_host(StrBytes::from_string(acl.host.clone()))
                    .with_operation(acl.operation.code())
                    .with_permission_type(acl.permission_type.code()),
            );
    }
    groups
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type.code())
                .with_resource_name(StrBytes::from_string(name.to_owned()))
                .with_pattern_type(pattern_type.code())
                .with_acls(acls)
        })
        .collect()
}
