//! SCRAM user decisions: AlterUserScramCredentials (KIP-554).
//!
//! A request carries deletions and upsertions; each names a user and a mechanism. Every user
//! gets exactly one result. A user may be altered once per request: a second deletion or
//! upsertion of the same user (whatever the mechanism) fails that user with
//! DUPLICATE_RESOURCE and drops its other alteration too, as Kafka's `ScramControlManager`
//! does, so the outcome never depends on the order inside the request. The other users'
//! alterations are still applied. Deletions are looked at before upsertions, also as Kafka
//! does; a user whose first alteration was already refused keeps that first error.
//!
//! An upsertion carries the salted password, never the password; the record keeps only what
//! [`ScramCredential::from_salted_password`] derives from it.

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;
use crate::scram::{MAX_ITERATIONS, MIN_ITERATIONS, ScramCredential, ScramMechanism};

/// Removes one user's credential for one mechanism. The mechanism is the protocol's code, so
/// an unknown one can be refused with Kafka's error rather than at decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramDeletion {
    pub name: String,
    pub mechanism: i8,
}

/// Creates or replaces one user's credential for one mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramUpsertion {
    pub name: String,
    pub mechanism: i8,
    pub iterations: i32,
    pub salt: Vec<u8>,
    /// PBKDF2 of the password with `salt` and `iterations`, computed by the client.
    pub salted_password: Vec<u8>,
}

/// One user's outcome.
pub type UserResult = (String, Result<(), ApiError>);

/// What a user's alteration became while the request is read.
enum Alteration<'a> {
    Delete(&'a ScramDeletion, ScramMechanism),
    Upsert(&'a ScramUpsertion, ScramMechanism),
    Refused(ApiError),
}

/// Decides an AlterUserScramCredentials request: the records for every accepted alteration
/// and one result per user, in the order users first appear (deletions, then upsertions).
pub fn alter_user_scram_credentials(
    image: &MetadataImage,
    deletions: &[ScramDeletion],
    upsertions: &[ScramUpsertion],
) -> (Vec<MetadataRecord>, Vec<UserResult>) {
    let mut users: Vec<(&str, Alteration)> = Vec::new();
    for deletion in deletions {
        let alteration = validate_deletion(image, deletion)
            .map_or_else(Alteration::Refused, |m| Alteration::Delete(deletion, m));
        note(&mut users, &deletion.name, alteration);
    }
    for upsertion in upsertions {
        let alteration = validate_upsertion(upsertion)
            .map_or_else(Alteration::Refused, |m| Alteration::Upsert(upsertion, m));
        note(&mut users, &upsertion.name, alteration);
    }
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(users.len());
    for (name, alteration) in users {
        let result = match alteration {
            Alteration::Delete(d, mechanism) => {
                records.push(MetadataRecord::RemoveUserScramCredential {
                    name: d.name.clone(),
                    mechanism,
                });
                Ok(())
            }
            Alteration::Upsert(u, mechanism) => {
                records.push(upsertion_record(u, mechanism));
                Ok(())
            }
            Alteration::Refused(e) => Err(e),
        };
        results.push((name.to_string(), result));
    }
    (records, results)
}

/// Records a user's alteration: the first one stands unless another follows, which makes the
/// user a duplicate; a refused user stays refused with its first error.
fn note<'a>(users: &mut Vec<(&'a str, Alteration<'a>)>, name: &'a str, alteration: Alteration<'a>) {
    match users.iter_mut().find(|(n, _)| *n == name) {
        None => users.push((name, alteration)),
        Some((_, Alteration::Refused(_))) => {}
        Some((_, earlier)) => {
            *earlier = Alteration::Refused(ApiError::new(
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request",
            ));
        }
    }
}

fn validate_user_and_mechanism(name: &str, mechanism: i8) -> Result<ScramMechanism, ApiError> {
    if name.is_empty() {
        return Err(ApiError::new(
            ResponseError::UnacceptableCredential,
            "Username must not be empty",
        ));
    }
    ScramMechanism::from_code(mechanism).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism",
        )
    })
}

fn validate_deletion(
    image: &MetadataImage,
    deletion: &ScramDeletion,
) -> Result<ScramMechanism, ApiError> {
    let mechanism = validate_user_and_mechanism(&deletion.name, deletion.mechanism)?;
    if image.scram_credential(&deletion.name, mechanism).is_none() {
        return Err(ApiError::new(
            ResponseError::ResourceNotFound,
            "Attempt to delete a user credential that does not exist",
        ));
    }
    Ok(mechanism)
}

fn validate_upsertion(upsertion: &ScramUpsertion) -> Result<ScramMechanism, ApiError> {
    let mechanism = validate_user_and_mechanism(&upsertion.name, upsertion.mechanism)?;
    let refuse = |message| -> Result<ScramMechanism, ApiError> {
        Err(ApiError::new(
            ResponseError::UnacceptableCredential,
            message,
        ))
    };
    if upsertion.iterations < MIN_ITERATIONS {
        return refuse("Too few iterations");
    }
    if upsertion.iterations > MAX_ITERATIONS {
        return refuse("Too many iterations");
    }
    // An empty salt makes every user with the same password share a credential, and an empty
    // salted password is not the output of PBKDF2 at all: both are client bugs.
    if upsertion.salt.is_empty() {
        return refuse("Salt must not be empty");
    }
    if upsertion.salted_password.is_empty() {
        return refuse("Salted password must not be empty");
    }
    Ok(mechanism)
}

fn upsertion_record(upsertion: &ScramUpsertion, mechanism: ScramMechanism) -> MetadataRecord {
    MetadataRecord::UserScramCredential {
        name: upsertion.name.clone(),
        mechanism,
        credential: ScramCredential::from_salted_password(
            mechanism,
            upsertion.salt.clone(),
            &upsertion.salted_password,
            upsertion.iterations,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256: i8 = 1;
    const SHA512: i8 = 2;

    fn upsert(name: &str, mechanism: i8, iterations: i32) -> ScramUpsertion {
        ScramUpsertion {
            name: name.into(),
            mechanism,
            iterations,
            salt: b"salt".to_vec(),
            salted_password: vec![7; 32],
        }
    }

    fn delete(name: &str, mechanism: i8) -> ScramDeletion {
        ScramDeletion {
            name: name.into(),
            mechanism,
        }
    }

    fn codes(results: &[UserResult]) -> Vec<(&str, i16)> {
        results
            .iter()
            .map(|(n, r)| (n.as_str(), r.as_ref().map_or_else(ApiError::code, |()| 0)))
            .collect()
    }

    fn with_alice() -> MetadataImage {
        let mut image = MetadataImage::default();
        let (records, _) =
            alter_user_scram_credentials(&image, &[], &[upsert("alice", SHA256, 4096)]);
        for r in &records {
            image.replay(r);
        }
        image
    }

    #[test]
    fn an_upsertion_stores_derived_keys_never_the_salted_password() {
        let image = MetadataImage::default();
        let (records, results) =
            alter_user_scram_credentials(&image, &[], &[upsert("alice", SHA512, 8192)]);
        assert_eq!(codes(&results), [("alice", 0)]);
        let [
            MetadataRecord::UserScramCredential {
                name,
                mechanism,
                credential,
            },
        ] = &records[..]
        else {
            panic!("{records:?}");
        };
        assert_eq!(
            (name.as_str(), *mechanism),
            ("alice", ScramMechanism::Sha512)
        );
        assert_eq!(credential.iterations, 8192);
        assert_eq!(credential.salt, b"salt");
        let expected = ScramCredential::from_salted_password(
            ScramMechanism::Sha512,
            b"salt".to_vec(),
            &[7; 32],
            8192,
        );
        assert_eq!(*credential, expected);
        let json = serde_json::to_string(&records[0]).unwrap();
        assert!(!json.contains("salted"), "{json}");
    }

    #[test]
    fn a_deletion_removes_an_existing_credential() {
        let image = with_alice();
        let (records, results) =
            alter_user_scram_credentials(&image, &[delete("alice", SHA256)], &[]);
        assert_eq!(codes(&results), [("alice", 0)]);
        assert_eq!(
            records,
            [MetadataRecord::RemoveUserScramCredential {
                name: "alice".into(),
                mechanism: ScramMechanism::Sha256
            }]
        );
    }

    #[test]
    fn deleting_a_missing_credential_is_resource_not_found() {
        let image = with_alice();
        let (records, results) = alter_user_scram_credentials(
            &image,
            &[delete("alice", SHA512), delete("bob", SHA256)],
            &[],
        );
        assert!(records.is_empty());
        let not_found = ResponseError::ResourceNotFound.code();
        assert_eq!(codes(&results), [("alice", not_found), ("bob", not_found)]);
    }

    #[test]
    fn invalid_upsertions_are_refused_with_kafkas_codes() {
        let unacceptable = ResponseError::UnacceptableCredential.code();
        let mut empty_salt = upsert("c", SHA256, 4096);
        empty_salt.salt.clear();
        let mut empty_password = upsert("d", SHA256, 4096);
        empty_password.salted_password.clear();
        let (records, results) = alter_user_scram_credentials(
            &MetadataImage::default(),
            &[],
            &[
                upsert("", SHA256, 4096),
                upsert("a", 3, 4096),
                upsert("b", SHA256, MIN_ITERATIONS - 1),
                upsert("e", SHA256, MAX_ITERATIONS + 1),
                empty_salt,
                empty_password,
                upsert("ok", SHA256, MAX_ITERATIONS),
            ],
        );
        assert_eq!(records.len(), 1);
        assert_eq!(
            codes(&results),
            [
                ("", unacceptable),
                ("a", ResponseError::UnsupportedSaslMechanism.code()),
                ("b", unacceptable),
                ("e", unacceptable),
                ("c", unacceptable),
                ("d", unacceptable),
                ("ok", 0),
            ]
        );
    }

    #[test]
    fn a_user_altered_twice_is_a_duplicate_and_nothing_of_it_is_applied() {
        let image = with_alice();
        let duplicate = ResponseError::DuplicateResource.code();
        let (records, results) = alter_user_scram_credentials(
            &image,
            &[delete("alice", SHA256)],
            &[
                upsert("alice", SHA512, 4096),
                upsert("bob", SHA256, 4096),
                upsert("bob", SHA512, 4096),
                upsert("carol", SHA256, 4096),
            ],
        );
        assert_eq!(
            codes(&results),
            [("alice", duplicate), ("bob", duplicate), ("carol", 0)]
        );
        assert_eq!(records.len(), 1, "only carol: {records:?}");
    }

    #[test]
    fn a_refused_user_keeps_its_first_error() {
        let (_, results) = alter_user_scram_credentials(
            &MetadataImage::default(),
            &[delete("alice", SHA256)],
            &[upsert("alice", SHA256, 4096)],
        );
        assert_eq!(
            codes(&results),
            [("alice", ResponseError::ResourceNotFound.code())]
        );
    }
}
