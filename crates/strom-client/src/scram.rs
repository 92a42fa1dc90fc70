//! SCRAM user administration (KIP-554): AlterUserScramCredentials and
//! DescribeUserScramCredentials, as Kafka's admin client does them.
//!
//! The password never leaves this process: like Kafka's `KafkaAdminClient`, the client draws
//! a random salt and sends PBKDF2 of the password (the RFC 5802 salted password), from which
//! the controller derives the keys it stores.

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use rand::RngCore;
use sha2::{Sha256, Sha512};

use crate::client::Client;
use crate::error::{Error, Result};

/// Kafka's default iteration count for a new credential (`kafka-configs`' `iterations`
/// default), and the smallest the broker accepts.
pub const DEFAULT_SCRAM_ITERATIONS: i32 = 4096;

/// Length of the random salt, as Kafka's admin client draws it.
const SALT_BYTES: usize = 32;

/// A SCRAM mechanism with Kafka's protocol codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Parses `SCRAM-SHA-256` or `SCRAM-SHA-512`, in any case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    /// PBKDF2-HMAC of the password: RFC 5802's salted password.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut out = vec![0; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            ScramMechanism::Sha512 => {
                let mut out = vec![0; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

impl std::fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One change to a user's SCRAM credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserScramAlteration {
    /// Create or replace the user's credential for `mechanism`.
    Upsert {
        user: String,
        mechanism: ScramMechanism,
        iterations: i32,
        password: String,
    },
    /// Delete the user's credential for `mechanism`.
    Delete {
        user: String,
        mechanism: ScramMechanism,
    },
}

impl UserScramAlteration {
    pub fn user(&self) -> &str {
        match self {
            UserScramAlteration::Upsert { user, .. } | UserScramAlteration::Delete { user, .. } => {
                user
            }
        }
    }
}

/// One credential of a user as DescribeUserScramCredentials shows it: never a key or salt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// `None` for a mechanism code this client does not know.
    pub mechanism: Option<ScramMechanism>,
    pub mechanism_code: i8,
    pub iterations: i32,
}

impl Client {
    /// Applies SCRAM credential changes; one result per user, in the order the broker
    /// answers. A user may appear once per request (Kafka answers DUPLICATE_RESOURCE
    /// otherwise).
    pub async fn alter_user_scram_credentials(
        &self,
        alterations: &[UserScramAlteration],
    ) -> Result<Vec<(String, Result<()>)>> {
        let mut request = AlterUserScramCredentialsRequest::default();
        for alteration in alterations {
            match alteration {
                UserScramAlteration::Upsert {
                    user,
                    mechanism,
                    iterations,
                    password,
                } => request
                    .upsertions
                    .push(upsertion(user, *mechanism, *iterations, password)),
                UserScramAlteration::Delete { user, mechanism } => request.deletions.push(
                    ScramCredentialDeletion::default()
                        .with_name(StrBytes::from_string(user.clone()))
                        .with_mechanism(mechanism.code()),
                ),
            }
        }
        let response = self
            .retry(|_| async {
                let connection = self.any_connection().await?;
                let version =
                    connection.negotiated_version::<AlterUserScramCredentialsRequest>()?;
                connection
                    .send_with_timeout(request.clone(), version, self.config().request_timeout)
                    .await
            })
            .await?;
        Ok(response
            .results
            .into_iter()
            .map(|r| {
                let user = r.user.to_string();
                let result = Error::check(r.error_code, r.error_message.as_deref())
                    .map_err(|e| e.with_context(format!("user {user}")));
                (user, result)
            })
            .collect())
    }

    /// The SCRAM credentials of `users`, or of every user with `None` (or an empty list); one
    /// result per user. A named user without credentials is RESOURCE_NOT_FOUND.
    pub async fn describe_user_scram_credentials(
        &self,
        users: Option<&[&str]>,
    ) -> Result<Vec<(String, Result<Vec<ScramCredentialInfo>>)>> {
        let request = DescribeUserScramCredentialsRequest::default().with_users(users.map(|u| {
            u.iter()
                .map(|name| UserName::default().with_name(StrBytes::from_string(name.to_string())))
                .collect()
        }));
        let response = self
            .retry(|_| async {
                let connection = self.any_connection().await?;
                let version =
                    connection.negotiated_version::<DescribeUserScramCredentialsRequest>()?;
                let response = connection
                    .send_with_timeout(request.clone(), version, self.config().request_timeout)
                    .await?;
                Error::check(response.error_code, response.error_message.as_deref())?;
                Ok(response)
            })
            .await?;
        Ok(response
            .results
            .into_iter()
            .map(|r| {
                let user = r.user.to_string();
                let infos = r
                    .credential_infos
                    .iter()
                    .map(|c| ScramCredentialInfo {
                        mechanism: ScramMechanism::from_code(c.mechanism),
                        mechanism_code: c.mechanism,
                        iterations: c.iterations,
                    })
                    .collect();
                let result = Error::check(r.error_code, r.error_message.as_deref()).map(|()| infos);
                (user, result)
            })
            .collect())
    }
}

/// The upsertion for a password: a fresh random salt and the salted password. An iteration
/// count below 1 cannot be computed; it is sent as it is so the broker refuses it with
/// Kafka's error.
fn upsertion(
    user: &str,
    mechanism: ScramMechanism,
    iterations: i32,
    password: &str,
) -> ScramCredentialUpsertion {
    let mut salt = vec![0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt);
    let salted = match u32::try_from(iterations) {
        Ok(n) if n > 0 => mechanism.salted_password(password.as_bytes(), &salt, n),
        _ => Vec::new(),
    };
    ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(user.to_string()))
        .with_mechanism(mechanism.code())
        .with_iterations(iterations)
        .with_salt(salt.into())
        .with_salted_password(salted.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_parse_by_name_in_any_case_and_by_code() {
        assert_eq!(
            ScramMechanism::from_name("scram-sha-512"),
            Some(ScramMechanism::Sha512)
        );
        assert_eq!(ScramMechanism::from_name("PLAIN"), None);
        for m in ScramMechanism::ALL {
            assert_eq!(ScramMechanism::from_code(m.code()), Some(m));
        }
    }

    #[test]
    fn salted_passwords_are_deterministic_and_sized_per_mechanism() {
        let a = ScramMechanism::Sha256.salted_password(b"pencil", b"salt", 4096);
        let b = ScramMechanism::Sha256.salted_password(b"pencil", b"salt", 4096);
        assert_eq!((a.len(), a == b), (32, true));
        let c = ScramMechanism::Sha512.salted_password(b"pencil", b"salt", 4096);
        assert_eq!(c.len(), 64);
    }

    #[test]
    fn every_upsertion_gets_a_fresh_salt() {
        let a = upsertion("u", ScramMechanism::Sha256, 4096, "pw");
        let b = upsertion("u", ScramMechanism::Sha256, 4096, "pw");
        assert_eq!(a.salt.len(), SALT_BYTES);
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.salted_password, b.salted_password);
        assert!(
            upsertion("u", ScramMechanism::Sha256, 0, "pw")
                .salted_password
                .is_empty()
        );
    }
}
