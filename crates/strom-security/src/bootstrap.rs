//! `--add-scram`: SCRAM users written into a new cluster's first metadata, in the form Kafka's
//! `kafka-storage format --add-scram` takes:
//! `SCRAM-SHA-256=[name=alice,password=alice-secret]`, with optional `iterations=N` and
//! `salt=BASE64`. It lets the first administrator log in to a cluster whose only listener
//! requires SASL.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use strom_cluster::MetadataRecord;
use strom_cluster::scram::{MAX_ITERATIONS, MIN_ITERATIONS, ScramCredential, ScramMechanism};

/// Parses one `--add-scram` value into the record that creates the credential.
pub fn parse_add_scram(text: &str) -> Result<MetadataRecord, String> {
    let bad = |why: &str| format!("--add-scram {text}: {why}");
    let (mechanism, rest) = text
        .split_once('=')
        .ok_or_else(|| bad("expected MECHANISM=[...]"))?;
    let mechanism = ScramMechanism::from_name(mechanism.trim())
        .ok_or_else(|| bad("the mechanism is SCRAM-SHA-256 or SCRAM-SHA-512"))?;
    let body = rest
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| bad("the fields go in brackets: [name=...,password=...]"))?;
    let (mut name, mut password, mut iterations, mut salt) = (None, None, MIN_ITERATIONS, None);
    for field in body.split(',') {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| bad("each field is key=value"))?;
        let value = value.trim().trim_matches('"').to_string();
        match key.trim() {
            "name" => name = Some(value),
            "password" => password = Some(value),
            "iterations" => {
                iterations = value
                    .parse()
                    .ok()
                    .filter(|i| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(i))
                    .ok_or_else(|| {
                        bad(&format!(
                            "iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}"
                        ))
                    })?;
            }
            "salt" => salt = Some(STANDARD.decode(&value).map_err(|_| bad("salt is base64"))?),
            other => return Err(bad(&format!("unknown field {other}"))),
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("name is required"))?;
    let password = password.ok_or_else(|| bad("password is required"))?;
    let salt = salt.unwrap_or_else(|| {
        let mut salt = vec![0u8; 32];
        rand::rng().fill_bytes(&mut salt);
        salt
    });
    Ok(MetadataRecord::UserScramCredential {
        name,
        mechanism,
        credential: ScramCredential::from_password(mechanism, &password, salt, iterations),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kafkas_add_scram_form() {
        let record =
            parse_add_scram("SCRAM-SHA-512=[name=alice,password=\"alice-secret\",iterations=8192]")
                .unwrap();
        let MetadataRecord::UserScramCredential {
            name,
            mechanism,
            credential,
        } = record
        else {
            panic!("not a credential record");
        };
        assert_eq!(name, "alice");
        assert_eq!(mechanism, ScramMechanism::Sha512);
        assert_eq!(credential.iterations, 8192);
        assert_eq!(credential.salt.len(), 32);
    }

    #[test]
    fn refuses_what_kafka_refuses() {
        for bad in [
            "SCRAM-SHA-256",
            "PLAIN=[name=a,password=b]",
            "SCRAM-SHA-256=name=a,password=b",
            "SCRAM-SHA-256=[password=b]",
            "SCRAM-SHA-256=[name=a]",
            "SCRAM-SHA-256=[name=a,password=b,iterations=10]",
            "SCRAM-SHA-256=[name=a,password=b,colour=red]",
        ] {
            assert!(parse_add_scram(bad).is_err(), "{bad}");
        }
    }
}
