//! [`Acls`]: the ACLs of the metadata image, by id, with an index by resource pattern.
//!
//! Kafka's `StandardAuthorizerData` keeps its ACLs sorted by resource type and reversed name
//! and walks the prefixes of a resource name in that order. The same question is answered
//! here with a map keyed by (resource type, pattern type, name): the ACLs that can apply to a
//! resource are those under its literal name, under the literal `*`, and under each prefix of
//! its name as a prefixed pattern; that is one lookup per prefix, never a scan of unrelated
//! ACLs.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::binding::{AclBinding, PatternType, ResourceType, WILDCARD};

type ResourceKey = (ResourceType, PatternType, String);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acls {
    by_id: BTreeMap<Uuid, AclBinding>,
    by_resource: BTreeMap<ResourceKey, BTreeSet<Uuid>>,
}

fn key_of(acl: &AclBinding) -> ResourceKey {
    (
        acl.resource_type,
        acl.pattern_type,
        acl.resource_name.clone(),
    )
}

impl Acls {
    /// Adds (or replaces) the ACL with this id.
    pub fn insert(&mut self, id: Uuid, acl: AclBinding) {
        self.remove(&id);
        self.by_resource.entry(key_of(&acl)).or_default().insert(id);
        self.by_id.insert(id, acl);
    }

    pub fn remove(&mut self, id: &Uuid) -> Option<AclBinding> {
        let acl = self.by_id.remove(id)?;
        let key = key_of(&acl);
        if let Some(ids) = self.by_resource.get_mut(&key) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_resource.remove(&key);
            }
        }
        Some(acl)
    }

    pub fn get(&self, id: &Uuid) -> Option<&AclBinding> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every ACL with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&Uuid, &AclBinding)> {
        self.by_id.iter()
    }

    /// The id of an ACL equal to `acl`, if one exists: creating it again changes nothing.
    pub fn find(&self, acl: &AclBinding) -> Option<Uuid> {
        self.by_resource
            .get(&key_of(acl))?
            .iter()
            .copied()
            .find(|id| self.by_id.get(id) == Some(acl))
    }

    /// The ACLs whose resource pattern covers the resource `name` of `resource_type`: literal
    /// ones of that name, the literal wildcard, and prefixed ones whose prefix `name` starts
    /// with.
    pub fn applicable<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AclBinding> + 'a {
        let prefixes = name
            .char_indices()
            .map(|(i, c)| &name[..i + c.len_utf8()])
            .map(|prefix| (PatternType::Prefixed, prefix));
        let literal = [(PatternType::Literal, name)];
        let wildcard = (name != WILDCARD).then_some((PatternType::Literal, WILDCARD));
        literal
            .into_iter()
            .chain(wildcard)
            .chain(prefixes)
            .filter_map(move |(pattern_type, n)| {
                self.by_resource
                    .get(&(resource_type, pattern_type, n.to_owned()))
            })
            .flatten()
            .filter_map(|id| self.by_id.get(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{AclOperation, AclPermissionType};

    fn acl(name: &str, pattern_type: PatternType) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission_type: AclPermissionType::Allow,
        }
    }

    #[test]
    fn applicable_acls_are_the_literal_the_wildcard_and_the_prefixes() {
        let mut acls = Acls::default();
        let names = [
            ("orders", PatternType::Literal),
            ("*", PatternType::Literal),
            ("ord", PatternType::Prefixed),
            ("orders", PatternType::Prefixed),
            ("ordersx", PatternType::Prefixed),
            ("ord", PatternType::Literal),
            ("x", PatternType::Prefixed),
        ];
        for (i, (name, pattern)) in names.iter().enumerate() {
            acls.insert(Uuid::from_u128(i as u128), acl(name, *pattern));
        }
        let mut found: Vec<(String, PatternType)> = acls
            .applicable(ResourceType::Topic, "orders")
            .map(|a| (a.resource_name.clone(), a.pattern_type))
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                ("*".into(), PatternType::Literal),
                ("ord".into(), PatternType::Prefixed),
                ("orders".into(), PatternType::Literal),
                ("orders".into(), PatternType::Prefixed),
            ]
        );
        assert_eq!(acls.applicable(ResourceType::Group, "orders").count(), 0);
        assert_eq!(
            acls.applicable(ResourceType::Topic, "é").count(),
            1,
            "only the wildcard"
        );
    }

    #[test]
    fn removal_unindexes_and_find_sees_equal_bindings() {
        let mut acls = Acls::default();
        let id = Uuid::from_u128(1);
        acls.insert(id, acl("t", PatternType::Literal));
        assert_eq!(acls.find(&acl("t", PatternType::Literal)), Some(id));
        assert_eq!(acls.find(&acl("t", PatternType::Prefixed)), None);
        assert!(acls.remove(&id).is_some());
        assert!(acls.is_empty());
        assert_eq!(acls, Acls::default(), "the index is empty too");
    }
}
