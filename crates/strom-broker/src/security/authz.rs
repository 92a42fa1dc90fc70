//! The one question every handler asks before it touches a resource: may this request's
//! principal, from this host, do this operation on it? Answered from the ACLs in the metadata
//! image with Kafka's StandardAuthorizer rules (`strom_cluster::acl::authorize`), or always
//! yes when no authorizer is configured.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use strom_cluster::MetadataImage;
use strom_cluster::acl::{AclOperation, AclPermissionType, ResourceType, authorize};

use crate::config::AuthorizerSettings;
use crate::errors::KafkaError;
use crate::handlers::RequestContext;
use crate::state::BrokerState;

/// The name ACLs give the cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The operations Kafka reports in a topic's authorized-operations bit set (KIP-430).
pub const TOPIC_OPERATIONS: &[AclOperation] = &[
    AclOperation::Read,
    AclOperation::Write,
    AclOperation::Create,
    AclOperation::Describe,
    AclOperation::Delete,
    AclOperation::Alter,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
];

/// The operations Kafka reports for a group.
pub const GROUP_OPERATIONS: &[AclOperation] = &[
    AclOperation::Read,
    AclOperation::Describe,
    AclOperation::Delete,
];

/// The operations Kafka reports for the cluster.
pub const CLUSTER_OPERATIONS: &[AclOperation] = &[
    AclOperation::Create,
    AclOperation::ClusterAction,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
    AclOperation::IdempotentWrite,
    AclOperation::Alter,
    AclOperation::Describe,
];

/// Kafka's "not requested" value of an authorized-operations field.
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// TOPIC_AUTHORIZATION_FAILED for `topic`.
pub fn topic_denied(topic: &str) -> KafkaError {
    KafkaError::new(
        ResponseError::TopicAuthorizationFailed,
        format!("Not authorized to access topics: [{topic}]"),
    )
}

/// CLUSTER_AUTHORIZATION_FAILED.
pub fn cluster_denied() -> KafkaError {
    KafkaError::new(
        ResponseError::ClusterAuthorizationFailed,
        "Cluster authorization failed.",
    )
}

/// One request's authorizer: the image of the moment, so a request sees one set of ACLs.
/// Without an authorizer it holds nothing and allows everything, at no cost per request.
pub struct Authz {
    enforced: Option<Enforced>,
}

struct Enforced {
    image: Arc<MetadataImage>,
    principal: String,
    host: String,
    settings: AuthorizerSettings,
}

impl Authz {
    pub fn new(state: &BrokerState, ctx: &RequestContext) -> Self {
        Self {
            enforced: state.config.authorizer.clone().map(|settings| Enforced {
                image: state.image(),
                principal: ctx.principal().to_string(),
                host: ctx.peer.ip().to_string(),
                settings,
            }),
        }
    }

    /// Whether ACLs are enforced at all.
    pub fn enabled(&self) -> bool {
        self.enforced.is_some()
    }

    pub fn allows(&self, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        let Some(e) = &self.enforced else {
            return true;
        };
        let settings = &e.settings;
        let allowed = authorize(
            &e.image.acls,
            &e.principal,
            &e.host,
            operation,
            resource_type,
            name,
            &settings.super_users,
            settings.allow_everyone_if_no_acl_found,
        );
        if !allowed {
            tracing::debug!(principal = %e.principal, host = %e.host, %operation, %resource_type, resource = name, "denied");
        }
        allowed
    }

    pub fn allows_topic(&self, operation: AclOperation, topic: &str) -> bool {
        self.allows(operation, ResourceType::Topic, topic)
    }

    pub fn allows_group(&self, operation: AclOperation, group: &str) -> bool {
        self.allows(operation, ResourceType::Group, group)
    }

    pub fn allows_transactional_id(&self, operation: AclOperation, id: &str) -> bool {
        self.allows(operation, ResourceType::TransactionalId, id)
    }

    pub fn allows_cluster(&self, operation: AclOperation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Kafka's authorized-operations bit set (KIP-430) for a resource: bit `code` set for each
    /// of `operations` allowed.
    pub fn authorized_operations(
        &self,
        resource_type: ResourceType,
        name: &str,
        operations: &[AclOperation],
    ) -> i32 {
        operations
            .iter()
            .filter(|op| self.allows(**op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }

    /// Kafka's check of a config resource (DescribeConfigs, AlterConfigs): `operation` on the
    /// topic (TOPIC_AUTHORIZATION_FAILED) or, for a broker or broker logger, on the cluster
    /// (CLUSTER_AUTHORIZATION_FAILED).
    pub fn check_config_resource(
        &self,
        operation: AclOperation,
        resource_type: i8,
        name: &str,
    ) -> Result<(), KafkaError> {
        const TOPIC: i8 = 2;
        const BROKER: i8 = 4;
        const BROKER_LOGGER: i8 = 8;
        match resource_type {
            TOPIC if !self.allows_topic(operation, name) => Err(topic_denied(name)),
            BROKER | BROKER_LOGGER if !self.allows_cluster(operation) => Err(cluster_denied()),
            _ => Ok(()),
        }
    }

    /// Kafka's check of the ACL APIs: SECURITY_DISABLED without an authorizer, else
    /// `operation` on the cluster (CLUSTER_AUTHORIZATION_FAILED).
    pub fn check_acl_api(&self, operation: AclOperation) -> Result<(), KafkaError> {
        if !self.enabled() {
            return Err(KafkaError::new(
                ResponseError::SecurityDisabled,
                "No Authorizer is configured.",
            ));
        }
        if !self.allows_cluster(operation) {
            return Err(cluster_denied());
        }
        Ok(())
    }

    /// The KIP-430 bit set of a topic, or Kafka's "not requested" value.
    pub fn topic_operations(&self, topic: &str, requested: bool) -> i32 {
        if requested {
            self.authorized_operations(ResourceType::Topic, topic, TOPIC_OPERATIONS)
        } else {
            OPERATIONS_NOT_REQUESTED
        }
    }

    /// Whether `operation` is allowed on at least one topic (Kafka's `authorizeByResourceType`,
    /// which lets a producer with WRITE on some topic be idempotent without IDEMPOTENT_WRITE on
    /// the cluster): a super user, or an ALLOW ACL of this principal on some topic pattern that
    /// is not itself denied.
    pub fn allows_any_topic(&self, operation: AclOperation) -> bool {
        let Some(e) = &self.enforced else {
            return true;
        };
        if e.settings.super_users.iter().any(|u| u == &e.principal) {
            return true;
        }
        e.image.acls.iter().any(|(_, acl)| {
            acl.resource_type == ResourceType::Topic
                && acl.permission_type == AclPermissionType::Allow
                && (acl.operation == AclOperation::All || acl.operation == operation)
                && (acl.principal == e.principal || acl.principal == "User:*")
                && (acl.host == e.host || acl.host == "*")
                && self.allows_topic(operation, &acl.resource_name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_lists_have_distinct_bits() {
        for list in [TOPIC_OPERATIONS, GROUP_OPERATIONS, CLUSTER_OPERATIONS] {
            let bits = list.iter().fold(0i32, |b, op| b | (1 << op.code()));
            assert_eq!(bits.count_ones() as usize, list.len());
        }
        assert!(!TOPIC_OPERATIONS.contains(&AclOperation::All));
    }
}
