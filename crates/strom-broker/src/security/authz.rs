//! The one question every handler asks before it touches a resource: may this request's
//! principal, from this host, do this operation on it? Answered from the ACLs in the metadata
//! image with Kafka's StandardAuthorizer rules (`strom_cluster::acl::authorize`), or always
//! yes when no authorizer is configured.

use std::sync::Arc;

use strom_cluster::MetadataImage;
use strom_cluster::acl::{AclOperation, ResourceType, authorize};

use crate::config::AuthorizerSettings;
use crate::handlers::RequestContext;
use crate::state::BrokerState;

/// The name ACLs give the cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// One request's authorizer: the image of the moment, so a request sees one set of ACLs.
pub struct Authz {
    image: Arc<MetadataImage>,
    principal: String,
    host: String,
    settings: Option<AuthorizerSettings>,
}

impl Authz {
    pub fn new(state: &BrokerState, ctx: &RequestContext) -> Self {
        Self {
            image: state.image(),
            principal: ctx.principal().to_string(),
            host: ctx.peer.ip().to_string(),
            settings: state.config.authorizer.clone(),
        }
    }

    /// Whether ACLs are enforced at all.
    pub fn enabled(&self) -> bool {
        self.settings.is_some()
    }

    pub fn allows(&self, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        let Some(settings) = &self.settings else {
            return true;
        };
        let allowed = authorize(
            &self.image.acls,
            &self.principal,
            &self.host,
            operation,
            resource_type,
            name,
            &settings.super_users,
            settings.allow_everyone_if_no_acl_found,
        );
        if !allowed {
            tracing::debug!(principal = %self.principal, host = %self.host, %operation, %resource_type, resource = name, "denied");
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
}
