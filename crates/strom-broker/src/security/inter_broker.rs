//! How this broker secures its own connections to other brokers (replica fetchers,
//! transaction verification): as a client of the inter-broker listener, with Kafka's
//! conventions for the listener's properties.
//!
//! - TLS when the listener's protocol uses it, from the listener's `ssl.truststore.*` and
//!   `ssl.keystore.*`: the broker's own key store doubles as its client certificate.
//! - SASL when the protocol uses it, with `sasl.mechanism.inter.broker.protocol` and the
//!   `username`/`password` of the first JAAS line found among
//!   `listener.name.<listener>.<mechanism>.sasl.jaas.config`,
//!   `listener.name.<listener>.sasl.jaas.config` and `sasl.jaas.config`.

use std::sync::Arc;

use strom_client::{ClientSecurity, SaslCredentials};
use strom_security::SaslMechanism;
use strom_security::tls::SslProperties;

use crate::config::SecurityProtocol;

/// Why the inter-broker client security cannot be built, naming the property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterBrokerError {
    pub property: String,
    pub message: String,
}

impl std::fmt::Display for InterBrokerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.property, self.message)
    }
}

/// The client security for connecting to `listener` of another broker. `get` resolves a
/// property as the listener sees it (`listener.name.<listener>.<name>`, then `<name>`, then
/// its default). `None` for PLAINTEXT.
pub fn client_security(
    listener: &str,
    protocol: SecurityProtocol,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Arc<ClientSecurity>>, InterBrokerError> {
    if protocol == SecurityProtocol::Plaintext {
        return Ok(None);
    }
    let tls = if protocol.uses_tls() {
        let loaded = SslProperties::new(get)
            .client_config()
            .map_err(|e| InterBrokerError {
                property: e.property,
                message: format!("inter-broker listener {listener}: {}", e.message),
            })?;
        Some(loaded.config)
    } else {
        None
    };
    let sasl = if protocol.uses_sasl() {
        Some(sasl_credentials(listener, get)?)
    } else {
        None
    };
    Ok(Some(Arc::new(ClientSecurity { tls, sasl })))
}

fn sasl_credentials(
    listener: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<SaslCredentials, InterBrokerError> {
    const MECHANISM: &str = "sasl.mechanism.inter.broker.protocol";
    let name = get(MECHANISM).unwrap_or_else(|| "GSSAPI".to_owned());
    let mechanism = SaslMechanism::from_name(name.trim()).ok_or_else(|| InterBrokerError {
        property: MECHANISM.to_owned(),
        message: format!(
            "inter-broker listener {listener} uses SASL and brokers authenticate to each \
                 other with {name}, which Strom does not speak: set PLAIN, SCRAM-SHA-256 or \
                 SCRAM-SHA-512"
        ),
    })?;
    let specific = format!("{}.sasl.jaas.config", mechanism.name().to_ascii_lowercase());
    let listener_prefix = format!("listener.name.{}", listener.to_ascii_lowercase());
    // `get` falls back from the listener's prefixed name to the plain one, so the
    // mechanism-specific line is looked up with the prefix only (there is no global
    // `<mechanism>.sasl.jaas.config`).
    let line = get(&specific)
        .or_else(|| get("sasl.jaas.config"))
        .filter(|l| !l.trim().is_empty())
        .ok_or_else(|| InterBrokerError {
            property: format!("{listener_prefix}.{specific}"),
            message: format!(
                "the broker authenticates to other brokers' {listener} listener with the \
                 username and password of a JAAS line ({listener_prefix}.{specific}, \
                 {listener_prefix}.sasl.jaas.config or sasl.jaas.config); none is set"
            ),
        })?;
    SaslCredentials::from_jaas(mechanism, &line).map_err(|e| InterBrokerError {
        property: format!("{listener_prefix}.{specific}"),
        message: format!("inter-broker credentials: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn lookup(listener: &str, pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let set: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
        move |name: &str| {
            set.get(&format!("{prefix}{name}"))
                .or_else(|| set.get(name))
                .cloned()
        }
    }

    const JAAS: &str = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="b-secret";"#;

    #[test]
    fn plaintext_needs_nothing() {
        let get = lookup("INTERNAL", &[]);
        assert!(
            client_security("INTERNAL", SecurityProtocol::Plaintext, &get)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_mechanism_specific_line_wins_then_the_listener_then_the_global_one() {
        let other = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="other" password="o";"#;
        let get = lookup(
            "INTERNAL",
            &[
                ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512"),
                (
                    "listener.name.internal.scram-sha-512.sasl.jaas.config",
                    JAAS,
                ),
                ("listener.name.internal.sasl.jaas.config", other),
                ("sasl.jaas.config", other),
            ],
        );
        let security = client_security("INTERNAL", SecurityProtocol::SaslPlaintext, &get)
            .unwrap()
            .unwrap();
        assert!(security.tls.is_none());
        let sasl = security.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanism.name(), "SCRAM-SHA-512");
        assert_eq!(
            (sasl.username.as_str(), sasl.password.as_str()),
            ("broker", "b-secret")
        );

        let get = lookup(
            "INTERNAL",
            &[
                ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
                ("sasl.jaas.config", JAAS),
            ],
        );
        let security = client_security("INTERNAL", SecurityProtocol::SaslPlaintext, &get)
            .unwrap()
            .unwrap();
        assert_eq!(security.sasl.as_ref().unwrap().username, "broker");
    }

    #[test]
    fn mistakes_name_the_property() {
        let get = lookup("INTERNAL", &[("sasl.jaas.config", JAAS)]);
        let e = client_security("INTERNAL", SecurityProtocol::SaslPlaintext, &get).unwrap_err();
        assert_eq!(e.property, "sasl.mechanism.inter.broker.protocol", "{e}");
        let get = lookup(
            "INTERNAL",
            &[("sasl.mechanism.inter.broker.protocol", "PLAIN")],
        );
        let e = client_security("INTERNAL", SecurityProtocol::SaslPlaintext, &get).unwrap_err();
        assert_eq!(
            e.property, "listener.name.internal.plain.sasl.jaas.config",
            "{e}"
        );
        let get = lookup(
            "INTERNAL",
            &[("ssl.truststore.location", "/nonexistent/ca.pem")],
        );
        let e = client_security("INTERNAL", SecurityProtocol::Ssl, &get).unwrap_err();
        assert_eq!(e.property, "ssl.truststore.location", "{e}");
    }
}
