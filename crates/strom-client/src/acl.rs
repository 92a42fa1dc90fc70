//! ACL administration: CreateAcls, DescribeAcls and DeleteAcls, with Kafka's protocol codes.
//!
//! Bindings and filters carry the protocol's codes; [`ACL_RESOURCE_TYPES`],
//! [`ACL_PATTERN_TYPES`], [`ACL_OPERATIONS`] and [`ACL_PERMISSION_TYPES`] map them to Kafka's
//! names (`TOPIC`, `PREFIXED`, `DESCRIBE_CONFIGS`, `ALLOW`), which tools print and parse.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::client::Client;
use crate::error::{Error, Result};

/// Resource type codes and names; 1 (ANY) only in filters.
pub const ACL_RESOURCE_TYPES: &[(i8, &str)] = &[
    (1, "ANY"),
    (2, "TOPIC"),
    (3, "GROUP"),
    (4, "CLUSTER"),
    (5, "TRANSACTIONAL_ID"),
    (6, "DELEGATION_TOKEN"),
    (7, "USER"),
];
/// Pattern type codes and names; ANY and MATCH only in filters.
pub const ACL_PATTERN_TYPES: &[(i8, &str)] =
    &[(1, "ANY"), (2, "MATCH"), (3, "LITERAL"), (4, "PREFIXED")];
/// Operation codes and names; ANY only in filters.
pub const ACL_OPERATIONS: &[(i8, &str)] = &[
    (1, "ANY"),
    (2, "ALL"),
    (3, "READ"),
    (4, "WRITE"),
    (5, "CREATE"),
    (6, "DELETE"),
    (7, "ALTER"),
    (8, "DESCRIBE"),
    (9, "CLUSTER_ACTION"),
    (10, "DESCRIBE_CONFIGS"),
    (11, "ALTER_CONFIGS"),
    (12, "IDEMPOTENT_WRITE"),
    (13, "CREATE_TOKENS"),
    (14, "DESCRIBE_TOKENS"),
    (15, "TWO_PHASE_COMMIT"),
];
/// Permission type codes and names; ANY only in filters.
pub const ACL_PERMISSION_TYPES: &[(i8, &str)] = &[(1, "ANY"), (2, "DENY"), (3, "ALLOW")];

/// The code of Kafka's `name` in `table`, in any case, with `-` or `_` between words.
pub fn acl_code(table: &[(i8, &str)], name: &str) -> Option<i8> {
    let wanted = name.replace('-', "_");
    table
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(&wanted))
        .map(|(c, _)| *c)
}

/// Kafka's name of `code` in `table`, or `UNKNOWN(code)`.
pub fn acl_name(table: &[(i8, &str)], code: i8) -> String {
    table
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| format!("UNKNOWN({code})"), |(_, n)| (*n).to_owned())
}

/// One ACL, with protocol codes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    /// `User:alice`, or `User:*` for every principal.
    pub principal: String,
    /// A client address, or `*` for any.
    pub host: String,
    pub operation: i8,
    pub permission_type: i8,
}

/// Selects ACLs: `None` names and code 1 (ANY) match anything; pattern type 2 (MATCH) selects
/// every ACL that applies to the named resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission_type: i8,
}

impl AclBindingFilter {
    /// The filter that selects every ACL.
    pub fn any() -> Self {
        AclBindingFilter {
            resource_type: 1,
            resource_name: None,
            pattern_type: 1,
            principal: None,
            host: None,
            operation: 1,
            permission_type: 1,
        }
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl Client {
    /// Creates ACLs (an existing one is left as it is); one result per binding, in order.
    pub async fn create_acls(&self, bindings: &[AclBinding]) -> Result<Vec<Result<()>>> {
        let creations: Vec<AclCreation> = bindings
            .iter()
            .map(|b| {
                AclCreation::default()
                    .with_resource_type(b.resource_type)
                    .with_resource_name(str_bytes(&b.resource_name))
                    .with_resource_pattern_type(b.pattern_type)
                    .with_principal(str_bytes(&b.principal))
                    .with_host(str_bytes(&b.host))
                    .with_operation(b.operation)
                    .with_permission_type(b.permission_type)
            })
            .collect();
        let request = CreateAclsRequest::default().with_creations(creations);
        let response = self
            .retry(|_| async {
                let connection = self.any_connection().await?;
                let version = connection.negotiated_version::<CreateAclsRequest>()?;
                connection
                    .send_with_timeout(request.clone(), version, self.config().request_timeout)
                    .await
            })
            .await?;
        Ok(response
            .results
            .iter()
            .map(|r| Error::check(r.error_code, r.error_message.as_deref()))
            .collect())
    }

    /// The ACLs `filter` selects.
    pub async fn describe_acls(&self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(filter.resource_type)
            .with_resource_name_filter(filter.resource_name.as_deref().map(str_bytes))
            .with_pattern_type_filter(filter.pattern_type)
            .with_principal_filter(filter.principal.as_deref().map(str_bytes))
            .with_host_filter(filter.host.as_deref().map(str_bytes))
            .with_operation(filter.operation)
            .with_permission_type(filter.permission_type);
        let response = self
            .retry(|_| async {
                let connection = self.any_connection().await?;
                let version = connection.negotiated_version::<DescribeAclsRequest>()?;
                let response = connection
                    .send_with_timeout(request.clone(), version, self.config().request_timeout)
                    .await?;
                Error::check(response.error_code, response.error_message.as_deref())?;
                Ok(response)
            })
            .await?;
        let mut acls = Vec::new();
        for resource in &response.resources {
            for acl in &resource.acls {
                acls.push(AclBinding {
                    resource_type: resource.resource_type,
                    resource_name: resource.resource_name.to_string(),
                    pattern_type: resource.pattern_type,
                    principal: acl.principal.to_string(),
                    host: acl.host.to_string(),
                    operation: acl.operation,
                    permission_type: acl.permission_type,
                });
            }
        }
        Ok(acls)
    }

    /// Deletes every ACL the filters select; per filter, the ACLs it removed.
    pub async fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<Result<Vec<AclBinding>>>> {
        let request = DeleteAclsRequest::default().with_filters(
            filters
                .iter()
                .map(|f| {
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(f.resource_type)
                        .with_resource_name_filter(f.resource_name.as_deref().map(str_bytes))
                        .with_pattern_type_filter(f.pattern_type)
                        .with_principal_filter(f.principal.as_deref().map(str_bytes))
                        .with_host_filter(f.host.as_deref().map(str_bytes))
                        .with_operation(f.operation)
                        .with_permission_type(f.permission_type)
                })
                .collect(),
        );
        let response = self
            .retry(|_| async {
                let connection = self.any_connection().await?;
                let version = connection.negotiated_version::<DeleteAclsRequest>()?;
                connection
                    .send_with_timeout(request.clone(), version, self.config().request_timeout)
                    .await
            })
            .await?;
        Ok(response
            .filter_results
            .iter()
            .map(|r| {
                Error::check(r.error_code, r.error_message.as_deref())?;
                Ok(r.matching_acls
                    .iter()
                    .map(|m| AclBinding {
                        resource_type: m.resource_type,
                        resource_name: m.resource_name.to_string(),
                        pattern_type: m.pattern_type,
                        principal: m.principal.to_string(),
                        host: m.host.to_string(),
                        operation: m.operation,
                        permission_type: m.permission_type,
                    })
                    .collect())
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_map_both_ways() {
        assert_eq!(acl_code(ACL_OPERATIONS, "describe-configs"), Some(10));
        assert_eq!(acl_code(ACL_OPERATIONS, "Read"), Some(3));
        assert_eq!(acl_code(ACL_RESOURCE_TYPES, "transactional_id"), Some(5));
        assert_eq!(acl_code(ACL_PATTERN_TYPES, "nope"), None);
        assert_eq!(acl_name(ACL_PERMISSION_TYPES, 3), "ALLOW");
        assert_eq!(acl_name(ACL_PERMISSION_TYPES, 9), "UNKNOWN(9)");
    }
}
