//! SCRAM credentials (RFC 5802, Kafka's KIP-84 and KIP-554): what the metadata log keeps for
//! a SCRAM user, and the derivations both the broker's SASL exchange and the tools need.
//!
//! The metadata log never holds a password. A client (`strom user create`, Kafka's
//! `kafka-configs --alter --add-config SCRAM-SHA-256=[...]`) sends AlterUserScramCredentials
//! with a salt, an iteration count and the *salted password* (PBKDF2 of the password); the
//! controller keeps only the stored key `H(HMAC(salted, "Client Key"))` and the server key
//! `HMAC(salted, "Server Key")`. Those let the broker verify a client's proof and prove itself
//! to the client, but not log in as the user.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

/// Kafka's bounds on a SCRAM iteration count (`ScramMechanism.minIterations` and the
/// controller's upper limit): fewer is too cheap to brute-force, more is a denial of service.
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

/// A SCRAM hash function, with Kafka's type codes (`ScramMechanism` in the protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The code AlterUserScramCredentials and DescribeUserScramCredentials carry.
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    /// PBKDF2-HMAC of the password: the salted password of RFC 5802 (`Hi()`).
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

    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
                    .expect("HMAC takes a key of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key)
                    .expect("HMAC takes a key of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

impl std::fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the metadata log keeps for one user and mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub stored_key: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl ScramCredential {
    /// The credential for a salted password, as the controller derives it from an
    /// AlterUserScramCredentials upsertion.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: i32,
    ) -> Self {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        Self {
            salt,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// The credential for a password: salts and hashes it (tests and `--add-scram` at start).
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        salt: Vec<u8>,
        iterations: i32,
    ) -> Self {
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations as u32);
        Self::from_salted_password(mechanism, salt, &salted, iterations)
    }
}

/// Byte strings as standard base64 in the JSON metadata log, so the log stays readable.
mod base64_bytes {
    use super::{Engine, STANDARD};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn derives_the_rfc_7677_test_vector() {
        // RFC 7677 section 3: user "user", password "pencil", salt and 4096 iterations; the
        // server signature in its exchange follows from this server key.
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential =
            ScramCredential::from_password(ScramMechanism::Sha256, "pencil", salt, 4096);
        let salted = ScramMechanism::Sha256.salted_password(
            b"pencil",
            &credential.salt,
            credential.iterations as u32,
        );
        assert_eq!(
            hex(&salted),
            "c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d"
        );
        assert_eq!(credential.stored_key.len(), 32);
        assert_eq!(credential.server_key.len(), 32);
    }

    #[test]
    fn sha_512_keys_are_64_bytes_and_differ_from_sha_256() {
        let a =
            ScramCredential::from_password(ScramMechanism::Sha512, "pw", b"salt".to_vec(), 4096);
        let b =
            ScramCredential::from_password(ScramMechanism::Sha256, "pw", b"salt".to_vec(), 4096);
        assert_eq!(a.stored_key.len(), 64);
        assert_ne!(a.stored_key[..32], b.stored_key[..]);
    }

    #[test]
    fn names_and_codes_round_trip() {
        for m in ScramMechanism::ALL {
            assert_eq!(ScramMechanism::from_name(m.name()), Some(m));
            assert_eq!(ScramMechanism::from_code(m.code()), Some(m));
        }
        assert_eq!(ScramMechanism::from_code(0), None);
        assert_eq!(ScramMechanism::from_name("PLAIN"), None);
    }

    #[test]
    fn credentials_are_base64_in_json() {
        let c = ScramCredential::from_password(ScramMechanism::Sha256, "pw", vec![1, 2, 3], 4096);
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"salt\":\"AQID\""), "{json}");
        assert_eq!(serde_json::from_str::<ScramCredential>(&json).unwrap(), c);
    }
}
