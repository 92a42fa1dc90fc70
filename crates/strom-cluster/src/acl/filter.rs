//! Filters over ACLs, for DescribeAcls and DeleteAcls (Kafka's `AclBindingFilter`).
//!
//! A field left open (`None`, or ANY) matches anything. A resource name matches exactly,
//! except with the MATCH pattern type: then the filter's name is a resource, and the filter
//! selects every ACL that would apply to it (the literal ACL of that name, the literal
//! wildcard `*`, and every prefixed ACL whose prefix the name starts with). Principals and
//! hosts match exactly: a filter for `User:alice` does not select `User:*`.

use serde::{Deserialize, Serialize};

use super::binding::{
    AclBinding, AclOperation, AclPermissionType, PatternType, ResourceType, WILDCARD,
};

/// How a filter treats the pattern type (Kafka's `PatternType` as a filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternTypeFilter {
    /// Any pattern type; the name (if given) matches exactly.
    Any,
    /// Every ACL that applies to the named resource.
    Match,
    /// Only this pattern type.
    Exactly(PatternType),
}

impl PatternTypeFilter {
    /// Kafka's codes: 1 ANY, 2 MATCH, 3 LITERAL, 4 PREFIXED.
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(PatternTypeFilter::Any),
            2 => Some(PatternTypeFilter::Match),
            other => PatternType::from_code(other).map(PatternTypeFilter::Exactly),
        }
    }

    pub fn code(self) -> i8 {
        match self {
            PatternTypeFilter::Any => 1,
            PatternTypeFilter::Match => 2,
            PatternTypeFilter::Exactly(p) => p.code(),
        }
    }
}

/// Selects ACLs; `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern_type: PatternTypeFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<AclOperation>,
    pub permission_type: Option<AclPermissionType>,
}

impl AclFilter {
    /// The filter that selects every ACL.
    pub fn any() -> AclFilter {
        AclFilter {
            resource_type: None,
            resource_name: None,
            pattern_type: PatternTypeFilter::Any,
            principal: None,
            host: None,
            operation: None,
            permission_type: None,
        }
    }

    /// A filter from the codes of DescribeAcls or DeleteAcls, where 1 is ANY. The error (an
    /// UNKNOWN or unknown code) is the message of an INVALID_REQUEST.
    #[allow(clippy::too_many_arguments)] // The seven fields of the protocol's filter.
    pub fn from_codes(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission_type: i8,
    ) -> Result<AclFilter, String> {
        /// ANY (1) is `None`; any other code must be known.
        fn any_or<T>(
            code: i8,
            what: &str,
            parse: fn(i8) -> Option<T>,
        ) -> Result<Option<T>, String> {
            if code == 1 {
                return Ok(None);
            }
            parse(code)
                .map(Some)
                .ok_or_else(|| format!("Unknown {what} code {code} in the filter"))
        }
        Ok(AclFilter {
            resource_type: any_or(resource_type, "resource type", ResourceType::from_code)?,
            resource_name: resource_name.map(str::to_owned),
            pattern_type: PatternTypeFilter::from_code(pattern_type)
                .ok_or_else(|| format!("Unknown pattern type code {pattern_type} in the filter"))?,
            principal: principal.map(str::to_owned),
            host: host.map(str::to_owned),
            operation: any_or(operation, "operation", AclOperation::from_code)?,
            permission_type: any_or(
                permission_type,
                "permission type",
                AclPermissionType::from_code,
            )?,
        })
    }

    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.matches_pattern(acl) && self.matches_entry(acl)
    }

    fn matches_pattern(&self, acl: &AclBinding) -> bool {
        if self.resource_type.is_some_and(|t| t != acl.resource_type) {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return match self.pattern_type {
                PatternTypeFilter::Exactly(p) => p == acl.pattern_type,
                PatternTypeFilter::Any | PatternTypeFilter::Match => true,
            };
        };
        match self.pattern_type {
            PatternTypeFilter::Any => *name == acl.resource_name,
            PatternTypeFilter::Exactly(p) => p == acl.pattern_type && *name == acl.resource_name,
            PatternTypeFilter::Match => match acl.pattern_type {
                PatternType::Literal => *name == acl.resource_name || acl.resource_name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&acl.resource_name),
            },
        }
    }

    fn matches_entry(&self, acl: &AclBinding) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && self.operation.is_none_or(|o| o == acl.operation)
            && self
                .permission_type
                .is_none_or(|p| p == acl.permission_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(resource_type: ResourceType, name: &str, pattern_type: PatternType) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.into(),
            pattern_type,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission_type: AclPermissionType::Allow,
        }
    }

    fn by_name(name: Option<&str>, pattern_type: PatternTypeFilter) -> AclFilter {
        AclFilter {
            resource_type: Some(ResourceType::Topic),
            resource_name: name.map(str::to_owned),
            pattern_type,
            ..AclFilter::any()
        }
    }

    #[test]
    fn any_matches_everything() {
        assert!(AclFilter::any().matches(&acl(ResourceType::Group, "g", PatternType::Prefixed)));
    }

    #[test]
    fn names_match_exactly_unless_the_pattern_type_is_match() {
        use PatternType::*;
        use PatternTypeFilter as F;
        let literal = acl(ResourceType::Topic, "orders", Literal);
        let prefixed = acl(ResourceType::Topic, "ord", Prefixed);
        let wildcard = acl(ResourceType::Topic, "*", Literal);
        let other_type = acl(ResourceType::Group, "orders", Literal);

        let any = by_name(Some("orders"), F::Any);
        assert!(any.matches(&literal) && !any.matches(&prefixed) && !any.matches(&wildcard));
        assert!(!any.matches(&other_type));

        let exact = by_name(Some("ord"), F::Exactly(Prefixed));
        assert!(exact.matches(&prefixed) && !exact.matches(&literal));

        let matching = by_name(Some("orders"), F::Match);
        assert!(matching.matches(&literal) && matching.matches(&prefixed));
        assert!(matching.matches(&wildcard) && !matching.matches(&other_type));
        assert!(!by_name(Some("other"), F::Match).matches(&prefixed));

        let all_prefixed = by_name(None, F::Exactly(Prefixed));
        assert!(all_prefixed.matches(&prefixed) && !all_prefixed.matches(&literal));
    }

    #[test]
    fn entry_fields_match_exactly() {
        let a = acl(ResourceType::Topic, "t", PatternType::Literal);
        let f = |principal: &str| AclFilter {
            principal: Some(principal.into()),
            ..AclFilter::any()
        };
        assert!(f("User:alice").matches(&a));
        assert!(!f("User:*").matches(&a));
        let write = AclFilter {
            operation: Some(AclOperation::Write),
            ..AclFilter::any()
        };
        assert!(!write.matches(&a));
    }

    #[test]
    fn unknown_codes_are_refused_and_any_is_open() {
        assert_eq!(
            AclFilter::from_codes(1, None, 1, None, None, 1, 1),
            Ok(AclFilter::any())
        );
        assert!(AclFilter::from_codes(0, None, 1, None, None, 1, 1).is_err());
        assert!(AclFilter::from_codes(1, None, 0, None, None, 1, 1).is_err());
        assert!(AclFilter::from_codes(1, None, 1, None, None, 0, 1).is_err());
        assert!(AclFilter::from_codes(1, None, 1, None, None, 1, 9).is_err());
    }
}
