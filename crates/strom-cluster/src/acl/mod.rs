//! Access control lists, as Kafka's `StandardAuthorizer` keeps and reads them (KIP-801).
//!
//! An [`AclBinding`] says that a principal (`User:alice`, or `User:*` for everyone) from a
//! host (`*` for any) is allowed or denied an operation on resources: those named exactly
//! (literal), those whose names start with a prefix (prefixed), or every resource of a type
//! (the literal name `*`). Bindings live in the metadata log (`Acl` and `RemoveAcl` records,
//! Kafka's AccessControlEntryRecord and RemoveAccessControlEntryRecord) and are replayed into
//! [`Acls`] in the image, which indexes them by resource pattern so that one authorization
//! looks at only the bindings that can apply.
//!
//! Submodules: `binding` (the types with Kafka's codes and names, and the checks a new binding
//! must pass), `filter` (DescribeAcls and DeleteAcls filters, with Kafka's ANY and MATCH
//! semantics), `store` ([`Acls`], the image's map by id and index by resource) and
//! `authorizer` (the decision: [`authorize`]).
//!
//! Nothing here enforces anything: the connection edge asks [`authorize`] before it lets a
//! request touch a resource.

mod authorizer;
mod binding;
mod filter;
mod store;

pub use authorizer::{WILDCARD_PRINCIPAL, authorize};
pub use binding::{
    AclBinding, AclOperation, AclPermissionType, CLUSTER_RESOURCE_NAME, PatternType, ResourceType,
    WILDCARD,
};
pub use filter::{AclFilter, PatternTypeFilter};
pub use store::Acls;
