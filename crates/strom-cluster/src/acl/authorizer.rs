//! The authorization decision, with Kafka's `StandardAuthorizer` semantics:
//!
//! 1. A super user (`super.users`, principals like `User:admin`) is always allowed.
//! 2. The ACLs that apply are those on the resource: literal ones of its name, the literal
//!    wildcard `*`, and prefixed ones whose prefix its name starts with.
//! 3. Of those, an ACL matches the request when its principal is the request's or `User:*`,
//!    its host is the client's address or `*`, and its operation is the requested one or ALL.
//!    An ALLOW ACL also matches operations it implies: READ, WRITE, DELETE and ALTER imply
//!    DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS. A DENY ACL denies only what it names
//!    (a DENY READ does not deny DESCRIBE).
//! 4. A matching DENY wins over any ALLOW. Otherwise a matching ALLOW allows.
//! 5. With no matching ACL: if no ACL applies to the resource at all (whatever its principal,
//!    host or operation), `allow.everyone.if.no.acl.found` decides; if some apply but none
//!    matches, the request is denied.

use super::binding::{AclBinding, AclOperation, AclPermissionType, ResourceType, WILDCARD};
use super::store::Acls;

/// The principal of an ACL that applies to every principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// Whether `principal` (`User:alice`), connecting from `host` (the client's IP address as
/// text, `127.0.0.1`), may perform `operation` on the resource `resource_name` of
/// `resource_type`. See the module docs for the rules.
#[allow(clippy::too_many_arguments)] // The signature the connection edge calls.
pub fn authorize(
    acls: &Acls,
    principal: &str,
    host: &str,
    operation: AclOperation,
    resource_type: ResourceType,
    resource_name: &str,
    super_users: &[String],
    allow_everyone_if_no_acl_found: bool,
) -> bool {
    if super_users.iter().any(|s| s == principal) {
        return true;
    }
    let mut resource_has_acls = false;
    let mut allowed = false;
    for acl in acls.applicable(resource_type, resource_name) {
        resource_has_acls = true;
        match decision(acl, principal, host, operation) {
            Some(AclPermissionType::Deny) => return false,
            Some(AclPermissionType::Allow) => allowed = true,
            None => {}
        }
    }
    allowed || (!resource_has_acls && allow_everyone_if_no_acl_found)
}

/// What `acl` (already known to cover the resource) says about the request: `None` when it
/// does not match the principal, the host or the operation.
fn decision(
    acl: &AclBinding,
    principal: &str,
    host: &str,
    operation: AclOperation,
) -> Option<AclPermissionType> {
    let principal_matches = acl.principal == principal || acl.principal == WILDCARD_PRINCIPAL;
    let host_matches = acl.host == WILDCARD || acl.host == host;
    let operation_matches = acl.operation == AclOperation::All
        || acl.operation == operation
        || (acl.permission_type == AclPermissionType::Allow && implies(acl.operation, operation));
    (principal_matches && host_matches && operation_matches).then_some(acl.permission_type)
}

/// Whether an ALLOW for `granted` also allows `requested` (Kafka's implied operations).
fn implies(granted: AclOperation, requested: AclOperation) -> bool {
    use AclOperation::*;
    match requested {
        Describe => matches!(granted, Read | Write | Delete | Alter),
        DescribeConfigs => granted == AlterConfigs,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::PatternType;
    use AclOperation::*;
    use AclPermissionType::*;
    use PatternType::*;
    use ResourceType::*;
    use uuid::Uuid;

    fn acl(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        host: &str,
        operation: AclOperation,
        permission_type: AclPermissionType,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.into(),
            pattern_type,
            principal: principal.into(),
            host: host.into(),
            operation,
            permission_type,
        }
    }

    fn store(bindings: &[AclBinding]) -> Acls {
        let mut acls = Acls::default();
        for (i, b) in bindings.iter().enumerate() {
            acls.insert(Uuid::from_u128(i as u128 + 1), b.clone());
        }
        acls
    }

    fn allow(name: &str, pattern: PatternType, principal: &str, op: AclOperation) -> AclBinding {
        acl(Topic, name, pattern, principal, "*", op, Allow)
    }

    fn deny(name: &str, pattern: PatternType, principal: &str, op: AclOperation) -> AclBinding {
        acl(Topic, name, pattern, principal, "*", op, Deny)
    }

    /// alice reading topic `name` from 10.0.0.1, no super users, allow-if-none off.
    fn alice_reads(acls: &Acls, name: &str, op: AclOperation) -> bool {
        authorize(acls, "User:alice", "10.0.0.1", op, Topic, name, &[], false)
    }

    #[test]
    fn literal_prefixed_and_wildcard_names_apply() {
        let acls = store(&[allow("orders", Literal, "User:alice", Read)]);
        assert!(alice_reads(&acls, "orders", Read));
        assert!(!alice_reads(&acls, "orders2", Read), "literal is exact");
        let acls = store(&[allow("ord", Prefixed, "User:alice", Read)]);
        assert!(alice_reads(&acls, "orders", Read));
        assert!(alice_reads(&acls, "ord", Read), "a name is its own prefix");
        assert!(!alice_reads(&acls, "or", Read));
        let acls = store(&[allow("*", Literal, "User:alice", Read)]);
        assert!(alice_reads(&acls, "anything", Read));
        let acls = store(&[allow("*", Prefixed, "User:alice", Read)]);
        assert!(
            !alice_reads(&acls, "anything", Read),
            "a prefixed * is a literal prefix"
        );
        assert!(alice_reads(&acls, "*x", Read));
    }

    #[test]
    fn deny_beats_allow_wherever_it_comes_from() {
        for denial in [
            deny("orders", Literal, "User:alice", Read),
            deny("o", Prefixed, "User:alice", Read),
            deny("*", Literal, "User:*", Read),
            deny("orders", Literal, "User:alice", All),
        ] {
            let acls = store(&[allow("orders", Literal, "User:alice", All), denial.clone()]);
            assert!(!alice_reads(&acls, "orders", Read), "{denial}");
        }
    }

    #[test]
    fn principals_hosts_and_wildcards_match() {
        let acls = store(&[allow("t", Literal, "User:*", Read)]);
        assert!(alice_reads(&acls, "t", Read));
        let acls = store(&[allow("t", Literal, "User:bob", Read)]);
        assert!(!alice_reads(&acls, "t", Read));
        let at = |host: &str| store(&[acl(Topic, "t", Literal, "User:alice", host, Read, Allow)]);
        assert!(alice_reads(&at("10.0.0.1"), "t", Read));
        assert!(!alice_reads(&at("10.0.0.2"), "t", Read));
        assert!(alice_reads(&at("*"), "t", Read));
    }

    #[test]
    fn implied_operations_come_only_from_allow() {
        for granted in [Read, Write, Delete, Alter] {
            let acls = store(&[allow("t", Literal, "User:alice", granted)]);
            assert!(
                alice_reads(&acls, "t", Describe),
                "{granted} implies DESCRIBE"
            );
        }
        for granted in [
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
        ] {
            let acls = store(&[allow("t", Literal, "User:alice", granted)]);
            assert!(
                !alice_reads(&acls, "t", Describe),
                "{granted} does not imply DESCRIBE"
            );
        }
        let acls = store(&[allow("t", Literal, "User:alice", AlterConfigs)]);
        assert!(alice_reads(&acls, "t", DescribeConfigs));
        assert!(!alice_reads(&acls, "t", Read), "no other implication");
        let acls = store(&[
            allow("t", Literal, "User:alice", Describe),
            deny("t", Literal, "User:alice", Read),
        ]);
        assert!(
            alice_reads(&acls, "t", Describe),
            "DENY READ does not deny DESCRIBE"
        );
        let acls = store(&[allow("t", Literal, "User:alice", All)]);
        assert!(
            alice_reads(&acls, "t", TwoPhaseCommit),
            "ALL is every operation"
        );
    }

    #[test]
    fn no_acl_on_the_resource_falls_back_to_allow_everyone() {
        let elsewhere = store(&[allow("other", Literal, "User:alice", Read)]);
        for acls in [Acls::default(), elsewhere] {
            assert!(!alice_reads(&acls, "t", Read));
            assert!(authorize(
                &acls,
                "User:alice",
                "h",
                Read,
                Topic,
                "t",
                &[],
                true
            ));
        }
        // An ACL on the resource for someone else counts: then nobody else is allowed.
        let bobs = store(&[allow("t", Literal, "User:bob", Read)]);
        assert!(!authorize(
            &bobs,
            "User:alice",
            "h",
            Read,
            Topic,
            "t",
            &[],
            true
        ));
        // Other resource types do not count.
        let group = store(&[acl(Group, "t", Literal, "User:bob", "*", Read, Allow)]);
        assert!(authorize(
            &group,
            "User:alice",
            "h",
            Read,
            Topic,
            "t",
            &[],
            true
        ));
    }

    #[test]
    fn super_users_are_always_allowed() {
        let acls = store(&[deny("t", Literal, "User:*", All)]);
        let supers = ["User:admin".to_owned()];
        assert!(authorize(
            &acls,
            "User:admin",
            "h",
            Write,
            Topic,
            "t",
            &supers,
            false
        ));
        assert!(!authorize(
            &acls,
            "User:alice",
            "h",
            Write,
            Topic,
            "t",
            &supers,
            false
        ));
    }

    mod reference_model {
        //! The decision computed the slow, obvious way over every ACL, compared with
        //! [`authorize`] on random ACL sets and requests.
        use super::*;
        use proptest::prelude::*;

        const NAMES: [&str; 6] = ["a", "ab", "abc", "b", "*", "é"];
        const PRINCIPALS: [&str; 3] = ["User:alice", "User:bob", "User:*"];
        const HOSTS: [&str; 3] = ["1.1.1.1", "2.2.2.2", "*"];

        fn covers(acl: &AclBinding, resource_type: ResourceType, name: &str) -> bool {
            acl.resource_type == resource_type
                && match acl.pattern_type {
                    Literal => acl.resource_name == name || acl.resource_name == "*",
                    Prefixed => name.starts_with(&acl.resource_name),
                }
        }

        fn allows(acl: &AclBinding, op: AclOperation) -> bool {
            acl.operation == All
                || acl.operation == op
                || (acl.permission_type == Allow
                    && match op {
                        Describe => [Read, Write, Delete, Alter, Describe].contains(&acl.operation),
                        DescribeConfigs => [AlterConfigs, DescribeConfigs].contains(&acl.operation),
                        _ => false,
                    })
        }

        fn model(acls: &[AclBinding], request: &Request, allow_if_none: bool) -> bool {
            let on_resource: Vec<&AclBinding> = acls
                .iter()
                .filter(|a| covers(a, request.resource_type, request.name))
                .collect();
            let matching: Vec<&&AclBinding> = on_resource
                .iter()
                .filter(|a| a.principal == request.principal || a.principal == "User:*")
                .filter(|a| a.host == "*" || a.host == request.host)
                .filter(|a| allows(a, request.operation))
                .collect();
            if matching.iter().any(|a| a.permission_type == Deny) {
                return false;
            }
            if matching.iter().any(|a| a.permission_type == Allow) {
                return true;
            }
            on_resource.is_empty() && allow_if_none
        }

        #[derive(Debug, Clone)]
        struct Request {
            principal: &'static str,
            host: &'static str,
            operation: AclOperation,
            resource_type: ResourceType,
            name: &'static str,
        }

        fn operation() -> impl Strategy<Value = AclOperation> {
            prop::sample::select(AclOperation::ALL_VALUES)
        }

        fn resource_type() -> impl Strategy<Value = ResourceType> {
            prop::sample::select(vec![Topic, Group])
        }

        fn binding() -> impl Strategy<Value = AclBinding> {
            (
                resource_type(),
                prop::sample::select(&NAMES[..]),
                prop::sample::select(vec![Literal, Prefixed]),
                prop::sample::select(&PRINCIPALS[..]),
                prop::sample::select(&HOSTS[..]),
                operation(),
                prop::sample::select(vec![Allow, Deny]),
            )
                .prop_map(|(t, n, p, principal, host, op, perm)| {
                    acl(t, n, p, principal, host, op, perm)
                })
        }

        fn request() -> impl Strategy<Value = Request> {
            (
                prop::sample::select(&PRINCIPALS[..2]),
                prop::sample::select(&HOSTS[..2]),
                operation(),
                resource_type(),
                prop::sample::select(&["a", "ab", "abc", "abd", "b", "*", "éa", "x"][..]),
            )
                .prop_map(|(principal, host, operation, resource_type, name)| {
                    Request {
                        principal,
                        host,
                        operation,
                        resource_type,
                        name,
                    }
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn authorize_agrees_with_the_reference_model(
                bindings in prop::collection::vec(binding(), 0..8),
                request in request(),
                allow_if_none in any::<bool>(),
            ) {
                let acls = store(&bindings);
                let decided = authorize(
                    &acls,
                    request.principal,
                    request.host,
                    request.operation,
                    request.resource_type,
                    request.name,
                    &[],
                    allow_if_none,
                );
                prop_assert_eq!(decided, model(&bindings, &request, allow_if_none));
            }
        }
    }
}
