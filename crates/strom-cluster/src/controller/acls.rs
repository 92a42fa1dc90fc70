//! ACL decisions: CreateAcls and DeleteAcls, as Kafka's `AclControlManager` makes them.
//!
//! Creating an ACL that already exists (or twice in one request) succeeds and writes one
//! record, so creation is safe to repeat. Deleting by filters removes every ACL any filter
//! matches; each filter reports what it matched, and an ACL two filters match is removed once.
//! One request writes at most [`MAX_ACL_RECORDS_PER_REQUEST`] records, Kafka's bound on a
//! single user operation: a larger change would be one huge entry of the metadata log.

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::{ApiError, Controller};
use crate::acl::{AclBinding, AclFilter, Acls};
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Kafka's `MAX_RECORDS_PER_USER_OP`.
pub const MAX_ACL_RECORDS_PER_REQUEST: usize = 10_000;

impl Controller {
    /// CreateAcls: one result per binding, in order. Invalid bindings get INVALID_REQUEST;
    /// too many new ACLs fail every binding with POLICY_VIOLATION and write nothing.
    pub fn create_acls(
        &mut self,
        image: &MetadataImage,
        bindings: &[AclBinding],
    ) -> (Vec<MetadataRecord>, Vec<Result<(), ApiError>>) {
        let mut acls = image.acls.clone();
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(bindings.len());
        for binding in bindings {
            if let Err(message) = binding.validate() {
                results.push(Err(ApiError::new(ResponseError::InvalidRequest, message)));
                continue;
            }
            if acls.find(binding).is_none() {
                let id = self.new_acl_id(&acls);
                acls.insert(id, binding.clone());
                records.push(MetadataRecord::Acl {
                    id,
                    binding: binding.clone(),
                });
            }
            results.push(Ok(()));
        }
        if records.len() > MAX_ACL_RECORDS_PER_REQUEST {
            let refusal = ApiError::new(
                ResponseError::PolicyViolation,
                format!(
                    "Cannot create more than {MAX_ACL_RECORDS_PER_REQUEST} ACLs in a single request"
                ),
            );
            return (Vec::new(), vec![Err(refusal); bindings.len()]);
        }
        (records, results)
    }

    /// A random id from the seeded generator that no ACL uses yet.
    fn new_acl_id(&mut self, acls: &Acls) -> Uuid {
        loop {
            let id = self.random_uuid();
            if acls.get(&id).is_none() {
                return id;
            }
        }
    }
}

/// DeleteAcls: for each filter, the ACLs it matched (and removes). A filter whose matches
/// would take the request past [`MAX_ACL_RECORDS_PER_REQUEST`] fails with POLICY_VIOLATION
/// and removes nothing; the filters before it still apply.
pub fn delete_acls(
    image: &MetadataImage,
    filters: &[AclFilter],
) -> (Vec<MetadataRecord>, Vec<Result<Vec<AclBinding>, ApiError>>) {
    let mut removed: Vec<Uuid> = Vec::new();
    let mut results = Vec::with_capacity(filters.len());
    for filter in filters {
        let matched: Vec<(&Uuid, &AclBinding)> = image
            .acls
            .iter()
            .filter(|(_, acl)| filter.matches(acl))
            .collect();
        let new: Vec<Uuid> = matched
            .iter()
            .map(|(id, _)| **id)
            .filter(|id| !removed.contains(id))
            .collect();
        if removed.len() + new.len() > MAX_ACL_RECORDS_PER_REQUEST {
            results.push(Err(ApiError::new(
                ResponseError::PolicyViolation,
                format!(
                    "Cannot remove more than {MAX_ACL_RECORDS_PER_REQUEST} ACLs in a single request"
                ),
            )));
            continue;
        }
        removed.extend(new);
        results.push(Ok(matched
            .into_iter()
            .map(|(_, acl)| acl.clone())
            .collect()));
    }
    let records = removed
        .into_iter()
        .map(|id| MetadataRecord::RemoveAcl { id })
        .collect();
    (records, results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{AclOperation, AclPermissionType, PatternType, ResourceType};
    use crate::controller::ControllerConfig;

    fn binding(name: &str, principal: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: PatternType::Literal,
            principal: principal.into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission_type: AclPermissionType::Allow,
        }
    }

    fn apply(image: &mut MetadataImage, records: &[MetadataRecord]) {
        for r in records {
            image.replay(r);
        }
    }

    #[test]
    fn creation_validates_and_writes_each_new_acl_once() {
        let mut controller = Controller::new(ControllerConfig::default(), 3);
        let mut image = MetadataImage::default();
        let a = binding("t", "User:alice");
        let (records, results) = controller.create_acls(
            &image,
            &[
                a.clone(),
                a.clone(),
                binding("", "User:bob"),
                binding("t", "bob"),
            ],
        );
        assert_eq!(records.len(), 1);
        let codes: Vec<i16> = results
            .iter()
            .map(|r| r.as_ref().map_or_else(ApiError::code, |()| 0))
            .collect();
        let invalid = ResponseError::InvalidRequest.code();
        assert_eq!(codes, [0, 0, invalid, invalid]);
        apply(&mut image, &records);
        let (records, results) = controller.create_acls(&image, &[a]);
        assert!(records.is_empty(), "it exists already");
        assert!(results[0].is_ok());
    }

    #[test]
    fn ids_follow_the_seed() {
        let image = MetadataImage::default();
        let ids = |seed| {
            let mut controller = Controller::new(ControllerConfig::default(), seed);
            let (records, _) = controller.create_acls(&image, &[binding("t", "User:a")]);
            records
        };
        assert_eq!(ids(5), ids(5));
        assert_ne!(ids(5), ids(6));
    }

    #[test]
    fn deletion_reports_matches_per_filter_and_removes_each_acl_once() {
        let mut controller = Controller::new(ControllerConfig::default(), 3);
        let mut image = MetadataImage::default();
        let (records, _) = controller.create_acls(
            &image,
            &[
                binding("t", "User:alice"),
                binding("t", "User:bob"),
                binding("u", "User:bob"),
            ],
        );
        apply(&mut image, &records);
        let bobs = AclFilter {
            principal: Some("User:bob".into()),
            ..AclFilter::any()
        };
        let topic_t = AclFilter {
            resource_name: Some("t".into()),
            ..AclFilter::any()
        };
        let (records, results) = delete_acls(&image, &[bobs, topic_t]);
        let counts: Vec<usize> = results
            .iter()
            .map(|r| r.as_ref().map_or(0, Vec::len))
            .collect();
        assert_eq!(counts, [2, 2]);
        assert_eq!(records.len(), 3, "bob's t ACL is removed once");
        apply(&mut image, &records);
        assert!(image.acls.is_empty());
        let (records, results) = delete_acls(&image, &[AclFilter::any()]);
        assert!(records.is_empty());
        assert_eq!(results, [Ok(vec![])]);
    }
}
