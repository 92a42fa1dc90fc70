//! One ACL: the resource pattern it covers and the entry (principal, host, operation,
//! permission), with Kafka's protocol codes and names.

use serde::{Deserialize, Serialize};

/// The resource name that stands for every resource of a type, in a literal pattern; and the
/// host that stands for every host.
pub const WILDCARD: &str = "*";

/// The only name a CLUSTER resource has (Kafka's `kafka-cluster`).
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

/// Defines an enum of Kafka protocol codes with their Java names, both ways.
macro_rules! kafka_codes {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL_VALUES: &'static [$name] = &[$($name::$variant),*];

            /// The protocol code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code),* }
            }

            /// The value of a protocol code; `None` for UNKNOWN (0), ANY (1) and codes this
            /// version does not know.
            pub fn from_code(code: i8) -> Option<Self> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// Kafka's name (`TOPIC`, `DESCRIBE_CONFIGS`).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// Parses Kafka's name in any case, with `-` or `_` between words
            /// (`describe-configs`, `DescribeConfigs` is not accepted: words need a separator
            /// unless the name is one word).
            pub fn from_name(name: &str) -> Option<Self> {
                let wanted = name.replace('-', "_");
                Self::ALL_VALUES.iter().copied().find(|v| v.name().eq_ignore_ascii_case(&wanted))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_codes! {
    /// What kind of resource an ACL is about (Kafka's `ResourceType`).
    ResourceType {
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
}

kafka_codes! {
    /// How an ACL's resource name is matched (Kafka's `PatternType`, without the filter-only
    /// ANY and MATCH).
    PatternType {
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
}

kafka_codes! {
    /// What an ACL allows or denies (Kafka's `AclOperation`; ALL covers every operation).
    AclOperation {
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
}

kafka_codes! {
    /// Whether an ACL allows or denies (Kafka's `AclPermissionType`).
    AclPermissionType {
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
}

/// One ACL (Kafka's `AclBinding` = `ResourcePattern` + `AccessControlEntry`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `Type:name`, e.g. `User:alice`; `User:*` is every principal.
    pub principal: String,
    /// A client address as the broker sees it (`127.0.0.1`), or `*` for any.
    pub host: String,
    pub operation: AclOperation,
    pub permission_type: AclPermissionType,
}

impl AclBinding {
    /// A binding from the codes of a CreateAcls creation, checked as Kafka's controller checks
    /// a new ACL. The error is the message of an INVALID_REQUEST.
    #[allow(clippy::too_many_arguments)] // The seven fields of the protocol's AclCreation.
    pub fn from_codes(
        resource_type: i8,
        resource_name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission_type: i8,
    ) -> Result<AclBinding, String> {
        let binding = AclBinding {
            resource_type: ResourceType::from_code(resource_type)
                .ok_or_else(|| format!("Invalid resource type code {resource_type}"))?,
            resource_name: resource_name.to_owned(),
            pattern_type: PatternType::from_code(pattern_type).ok_or_else(|| {
                format!("Invalid pattern type code {pattern_type}: an ACL is LITERAL or PREFIXED")
            })?,
            principal: principal.to_owned(),
            host: host.to_owned(),
            operation: AclOperation::from_code(operation)
                .ok_or_else(|| format!("Invalid operation code {operation}"))?,
            permission_type: AclPermissionType::from_code(permission_type).ok_or_else(|| {
                format!("Invalid permission type code {permission_type}: an ACL is ALLOW or DENY")
            })?,
        };
        binding.validate()?;
        Ok(binding)
    }

    /// The checks beyond the codes: a resource name, a parsable principal, and the cluster's
    /// only name.
    pub fn validate(&self) -> Result<(), String> {
        if self.resource_name.is_empty() {
            return Err("Resource name should not be empty".into());
        }
        if self.resource_type == ResourceType::Cluster
            && self.resource_name != CLUSTER_RESOURCE_NAME
        {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}"
            ));
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
            _ => Err(format!(
                "Could not parse principal from `{}` (expected TYPE:NAME, e.g. User:alice)",
                self.principal
            )),
        }
    }
}

impl std::fmt::Display for AclBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} from host {} on {}:{}:{} ({})",
            self.principal,
            self.permission_type,
            self.host,
            self.resource_type,
            self.pattern_type,
            self.resource_name,
            self.operation
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(
        resource_type: i8,
        name: &str,
        pattern: i8,
        principal: &str,
    ) -> Result<AclBinding, String> {
        AclBinding::from_codes(resource_type, name, pattern, principal, "*", 3, 3)
    }

    #[test]
    fn codes_and_names_round_trip() {
        for op in AclOperation::ALL_VALUES {
            assert_eq!(AclOperation::from_code(op.code()), Some(*op));
            assert_eq!(AclOperation::from_name(op.name()), Some(*op));
        }
        assert_eq!(
            AclOperation::from_name("describe-configs"),
            Some(AclOperation::DescribeConfigs)
        );
        assert_eq!(
            ResourceType::from_name("transactional_id"),
            Some(ResourceType::TransactionalId)
        );
        for unknown_or_any in [0, 1, 16, -1] {
            assert_eq!(AclOperation::from_code(unknown_or_any), None);
        }
        assert_eq!(
            ResourceType::from_code(1),
            None,
            "ANY is a filter, not a type"
        );
        assert_eq!(
            PatternType::from_code(2),
            None,
            "MATCH is a filter, not a type"
        );
    }

    #[test]
    fn a_new_binding_must_be_specific_and_well_formed() {
        assert!(codes(2, "t", 3, "User:alice").is_ok());
        assert!(
            codes(1, "t", 3, "User:alice")
                .unwrap_err()
                .contains("resource type")
        );
        assert!(
            codes(2, "t", 1, "User:alice")
                .unwrap_err()
                .contains("pattern type")
        );
        assert!(
            codes(2, "t", 2, "User:alice")
                .unwrap_err()
                .contains("pattern type")
        );
        assert!(codes(2, "", 3, "User:alice").unwrap_err().contains("empty"));
        assert!(codes(2, "t", 3, "alice").unwrap_err().contains("principal"));
        assert!(
            codes(4, "c", 3, "User:a")
                .unwrap_err()
                .contains("kafka-cluster")
        );
        assert!(codes(4, "kafka-cluster", 3, "User:a").is_ok());
        assert!(
            AclBinding::from_codes(2, "t", 3, "User:a", "*", 1, 3).is_err(),
            "ANY operation"
        );
        assert!(
            AclBinding::from_codes(2, "t", 3, "User:a", "*", 3, 1).is_err(),
            "ANY permission"
        );
    }
}
