//! How a connection secures itself: TLS (rustls) and SASL credentials, read from Kafka client
//! properties (`security.protocol`, `sasl.mechanism`, `sasl.jaas.config`, `ssl.*`), the same
//! file Kafka's tools take with `--command-config`.
//!
//! ```text
//! security.protocol=SASL_SSL
//! sasl.mechanism=SCRAM-SHA-512
//! sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
//!     username="alice" password="alice-secret";
//! ssl.truststore.type=PEM
//! ssl.truststore.location=/etc/strom/ca.pem
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use strom_security::SaslMechanism;
use strom_security::jaas::JaasConfig;
use strom_security::tls::SslProperties;

use crate::error::{Error, Result};

/// Kafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// Parses Kafka's spelling (case-insensitive).
    pub fn from_name(name: &str) -> Option<SecurityProtocol> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    /// True for `SSL` and `SASL_SSL`.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// True for `SASL_PLAINTEXT` and `SASL_SSL`.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// Who the client authenticates as with SASL.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password: configs end up in logs.
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism.name())
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl SaslCredentials {
    /// Credentials for `mechanism` from a JAAS line's `username` and `password` options.
    pub fn from_jaas(mechanism: SaslMechanism, jaas: &str) -> Result<SaslCredentials> {
        let jaas = JaasConfig::parse(jaas).map_err(|e| Error::Config(e.to_string()))?;
        let (Some(username), Some(password)) = (jaas.username(), jaas.password()) else {
            return Err(Error::Config(
                "sasl.jaas.config: the login module needs username=\"...\" and password=\"...\""
                    .into(),
            ));
        };
        Ok(SaslCredentials {
            mechanism,
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }
}

/// TLS and SASL settings for every connection a client opens. `None` in a
/// [`crate::ConnectionConfig`] (or both fields `None`) is PLAINTEXT.
#[derive(Debug, Clone, Default)]
pub struct ClientSecurity {
    /// Wrap the socket in TLS with this config (SSL, SASL_SSL).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Authenticate with SASL after the ApiVersions exchange (SASL_PLAINTEXT, SASL_SSL).
    pub sasl: Option<SaslCredentials>,
}

impl ClientSecurity {
    /// Reads Kafka client properties. `security.protocol` defaults to PLAINTEXT and
    /// `sasl.mechanism` to GSSAPI in Kafka; Strom has no Kerberos, so SASL needs
    /// `sasl.mechanism` set to PLAIN or SCRAM-SHA-256/512. Credentials come from
    /// `sasl.jaas.config`, or librdkafka's `sasl.username`/`sasl.password`.
    pub fn from_properties(properties: &BTreeMap<String, String>) -> Result<ClientSecurity> {
        let get = |name: &str| properties.get(name).cloned();
        let protocol = match get("security.protocol") {
            None => SecurityProtocol::Plaintext,
            Some(name) => SecurityProtocol::from_name(&name).ok_or_else(|| {
                Error::Config(format!(
                    "security.protocol: {name} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
                ))
            })?,
        };
        let sasl = if protocol.uses_sasl() {
            let mechanism = sasl_mechanism(get("sasl.mechanism").as_deref())?;
            let credentials = match (
                get("sasl.jaas.config").filter(|j| !j.trim().is_empty()),
                get("sasl.username"),
                get("sasl.password"),
            ) {
                (Some(jaas), _, _) => SaslCredentials::from_jaas(mechanism, &jaas)?,
                (None, Some(username), Some(password)) => SaslCredentials {
                    mechanism,
                    username,
                    password,
                },
                _ => {
                    return Err(Error::Config(format!(
                        "security.protocol={}: set sasl.jaas.config (or sasl.username and sasl.password)",
                        get("security.protocol").unwrap_or_default()
                    )));
                }
            };
            Some(credentials)
        } else {
            None
        };
        ClientSecurity::new(protocol, &get, sasl)
    }

    /// Security for `protocol`: TLS from the `ssl.*` properties `ssl` resolves (when the
    /// protocol uses TLS) and `sasl` (required when it uses SASL, ignored otherwise).
    pub fn new(
        protocol: SecurityProtocol,
        ssl: &dyn Fn(&str) -> Option<String>,
        sasl: Option<SaslCredentials>,
    ) -> Result<ClientSecurity> {
        let tls = if protocol.uses_tls() {
            let loaded = SslProperties::new(ssl)
                .client_config()
                .map_err(|e| Error::Config(e.to_string()))?;
            Some(loaded.config)
        } else {
            None
        };
        let sasl = if protocol.uses_sasl() {
            Some(sasl.ok_or_else(|| Error::Config(format!("{protocol:?} needs SASL credentials")))?)
        } else {
            None
        };
        Ok(ClientSecurity { tls, sasl })
    }

    /// True when neither TLS nor SASL is configured.
    pub fn is_plaintext(&self) -> bool {
        self.tls.is_none() && self.sasl.is_none()
    }
}

/// `sasl.mechanism`, which must be one Strom's client speaks.
pub fn sasl_mechanism(name: Option<&str>) -> Result<SaslMechanism> {
    let name = name.map(str::trim).unwrap_or("GSSAPI");
    SaslMechanism::from_name(&name.to_ascii_uppercase()).ok_or_else(|| {
        Error::Config(format!(
            "sasl.mechanism: {name} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
        ))
    })
}

/// The host part of `host:port` (without IPv6 brackets), for TLS server name checks.
pub(crate) fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_properties_is_plaintext() {
        let security = ClientSecurity::from_properties(&BTreeMap::new()).unwrap();
        assert!(security.is_plaintext());
        let security =
            ClientSecurity::from_properties(&props(&[("security.protocol", "plaintext")])).unwrap();
        assert!(security.is_plaintext());
    }

    #[test]
    fn sasl_plaintext_reads_the_jaas_line() {
        let security = ClientSecurity::from_properties(&props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="p w;\"x";"#,
            ),
        ]))
        .unwrap();
        assert!(security.tls.is_none());
        let sasl = security.sasl.unwrap();
        assert_eq!(sasl.mechanism.name(), "SCRAM-SHA-512");
        assert_eq!(sasl.username, "alice");
        assert_eq!(sasl.password, "p w;\"x");
        assert!(!format!("{sasl:?}").contains("p w"), "no password in Debug");
    }

    #[test]
    fn librdkafka_style_username_and_password_work_too() {
        let security = ClientSecurity::from_properties(&props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "bob"),
            ("sasl.password", "secret"),
        ]))
        .unwrap();
        let sasl = security.sasl.unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::Plain);
        assert_eq!(
            (sasl.username.as_str(), sasl.password.as_str()),
            ("bob", "secret")
        );
    }

    #[test]
    fn mistakes_are_named() {
        let error = |pairs: &[(&str, &str)]| {
            ClientSecurity::from_properties(&props(pairs))
                .unwrap_err()
                .to_string()
        };
        assert!(error(&[("security.protocol", "TLS")]).contains("security.protocol"));
        let missing = error(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
        ]);
        assert!(missing.contains("sasl.jaas.config"), "{missing}");
        let gssapi = error(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.username", "a"),
            ("sasl.password", "b"),
        ]);
        assert!(gssapi.contains("GSSAPI is not supported"), "{gssapi}");
        let jaas = error(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"a\";",
            ),
        ]);
        assert!(jaas.contains("password"), "{jaas}");
        let no_trust_file = error(&[
            ("security.protocol", "SSL"),
            ("ssl.truststore.location", "/nonexistent/ca.pem"),
        ]);
        assert!(
            no_trust_file.contains("ssl.truststore.location"),
            "{no_trust_file}"
        );
    }

    #[test]
    fn ssl_without_a_trust_store_uses_the_system_roots() {
        let security =
            ClientSecurity::from_properties(&props(&[("security.protocol", "SSL")])).unwrap();
        assert!(security.tls.is_some());
        assert!(security.sasl.is_none());
    }

    #[test]
    fn host_of_strips_port_and_brackets() {
        assert_eq!(host_of("broker-1.example:9093"), "broker-1.example");
        assert_eq!(host_of("[::1]:9093"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
    }
}
