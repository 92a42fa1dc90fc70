//! TLS configs from Kafka's `ssl.*` properties, with rustls.
//!
//! Key and trust stores are PEM, as Kafka accepts them with `ssl.keystore.type=PEM` and
//! `ssl.truststore.type=PEM` (KIP-651): a key store is a file (`ssl.keystore.location`) holding
//! the private key and its certificate chain, or the two inline (`ssl.keystore.key`,
//! `ssl.keystore.certificate.chain`); a trust store is a file of CA certificates
//! (`ssl.truststore.location`) or inline (`ssl.truststore.certificates`). JKS and PKCS12 stores
//! are Java formats: convert them to PEM with `openssl` or `keytool`.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

#[derive(Debug, thiserror::Error)]
#[error("{property}: {message}")]
pub struct TlsConfigError {
    pub property: String,
    pub message: String,
}

fn error(property: &str, message: impl Into<String>) -> TlsConfigError {
    TlsConfigError {
        property: property.to_string(),
        message: message.into(),
    }
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// A TLS config and the files it was read from (for reloading when they change).
pub struct Loaded<T> {
    pub config: Arc<T>,
    pub files: Vec<PathBuf>,
}

/// Reads `ssl.*` properties; `get` resolves a name (the caller applies listener prefixes).
pub struct SslProperties<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> SslProperties<'a> {
    pub fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { get }
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    /// A rustls server config for a listener.
    pub fn server_config(&self) -> Result<Loaded<ServerConfig>, TlsConfigError> {
        let mut files = Vec::new();
        let (chain, key) = self.key_store(&mut files)?.ok_or_else(|| {
            error(
                "ssl.keystore.location",
                "an SSL listener needs a key store (ssl.keystore.location, or ssl.keystore.key and ssl.keystore.certificate.chain)",
            )
        })?;
        let provider = Arc::new(self.provider()?);
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&self.protocols()?)
            .map_err(|e| error("ssl.enabled.protocols", e.to_string()))?;
        let client_auth = self.client_auth()?;
        let builder = if client_auth == ClientAuth::None {
            builder.with_no_client_auth()
        } else {
            let roots = self.trust_store(&mut files)?.ok_or_else(|| {
                error(
                    "ssl.truststore.location",
                    "ssl.client.auth needs a trust store to check client certificates against",
                )
            })?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if client_auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| error("ssl.truststore.location", e.to_string()))?,
            )
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| error("ssl.keystore.location", e.to_string()))?;
        Ok(Loaded {
            config: Arc::new(config),
            files,
        })
    }

    /// A rustls client config (Strom's tools and broker-to-broker connections).
    pub fn client_config(&self) -> Result<Loaded<ClientConfig>, TlsConfigError> {
        let mut files = Vec::new();
        let roots = match self.trust_store(&mut files)? {
            Some(roots) => roots,
            None => system_roots(),
        };
        let provider = Arc::new(self.provider()?);
        let roots = Arc::new(roots);
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&self.protocols()?)
            .map_err(|e| error("ssl.enabled.protocols", e.to_string()))?
            .with_root_certificates(Arc::clone(&roots));
        let mut config = match self.key_store(&mut files)? {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| error("ssl.keystore.location", e.to_string()))?,
            None => builder.with_no_client_auth(),
        };
        // Kafka's clients check the host name unless the algorithm is set to empty.
        if (self.get)("ssl.endpoint.identification.algorithm").is_some_and(|v| v.trim().is_empty())
        {
            let inner =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| error("ssl.truststore.location", e.to_string()))?;
            config
                .dangerous()
                .set_certificate_verifier(Arc::new(no_hostname::Verifier::with(inner)));
        }
        Ok(Loaded {
            config: Arc::new(config),
            files,
        })
    }

    pub fn client_auth(&self) -> Result<ClientAuth, TlsConfigError> {
        match self.get("ssl.client.auth").as_deref().map(str::trim) {
            None | Some("none") => Ok(ClientAuth::None),
            Some("requested") => Ok(ClientAuth::Requested),
            Some("required") => Ok(ClientAuth::Required),
            Some(other) => Err(error(
                "ssl.client.auth",
                format!("{other}: expected none, requested or required"),
            )),
        }
    }

    fn protocols(&self) -> Result<Vec<&'static SupportedProtocolVersion>, TlsConfigError> {
        let text = self
            .get("ssl.enabled.protocols")
            .unwrap_or_else(|| "TLSv1.2,TLSv1.3".into());
        let mut out = Vec::new();
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "TLSv1.3" => out.push(&rustls::version::TLS13),
                "TLSv1.2" => out.push(&rustls::version::TLS12),
                other => {
                    return Err(error(
                        "ssl.enabled.protocols",
                        format!("{other} is not supported (TLSv1.2 and TLSv1.3 are)"),
                    ));
                }
            }
        }
        if out.is_empty() {
            return Err(error("ssl.enabled.protocols", "no protocol enabled"));
        }
        Ok(out)
    }

    /// The ring provider, its cipher suites narrowed to `ssl.cipher.suites` (IANA names, as
    /// Java names them) when set.
    fn provider(&self) -> Result<CryptoProvider, TlsConfigError> {
        // ring rather than aws-lc-rs: it builds with only a C compiler, which CI machines
        // have. rustls deprecates it for lacking post-quantum key exchange; the classical
        // suites it offers are the ones Kafka's own JVM brokers offer.
        #[allow(deprecated)]
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(list) = self.get("ssl.cipher.suites") {
            let wanted: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            for name in &wanted {
                if !provider
                    .cipher_suites
                    .iter()
                    .any(|s| suite_name(s).as_deref() == Some(*name))
                {
                    return Err(error(
                        "ssl.cipher.suites",
                        format!("{name} is not a supported cipher suite"),
                    ));
                }
            }
            provider
                .cipher_suites
                .retain(|s| suite_name(s).is_some_and(|n| wanted.contains(&n.as_str())));
        }
        Ok(provider)
    }

    fn check_type(&self, property: &str) -> Result<(), TlsConfigError> {
        match self.get(property).as_deref().map(str::trim) {
            None => Ok(()),
            Some(t) if t.eq_ignore_ascii_case("PEM") => Ok(()),
            Some(other) => Err(error(
                property,
                format!(
                    "{other} stores are not supported: use PEM (convert with openssl or keytool)"
                ),
            )),
        }
    }

    fn key_store(
        &self,
        files: &mut Vec<PathBuf>,
    ) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, TlsConfigError>
    {
        self.check_type("ssl.keystore.type")?;
        let (key_pem, chain_pem, property) = if let Some(path) = self.get("ssl.keystore.location") {
            let path = PathBuf::from(path.trim());
            let text = std::fs::read(&path)
                .map_err(|e| error("ssl.keystore.location", format!("{}: {e}", path.display())))?;
            files.push(path);
            (text.clone(), text, "ssl.keystore.location")
        } else {
            match (
                self.get("ssl.keystore.key"),
                self.get("ssl.keystore.certificate.chain"),
            ) {
                (Some(key), Some(chain)) => {
                    (key.into_bytes(), chain.into_bytes(), "ssl.keystore.key")
                }
                (None, None) => return Ok(None),
                _ => {
                    return Err(error(
                        "ssl.keystore.key",
                        "ssl.keystore.key and ssl.keystore.certificate.chain go together",
                    ));
                }
            }
        };
        let chain = read_certificates(&chain_pem).map_err(|m| error(property, m))?;
        if chain.is_empty() {
            return Err(error(property, "no certificate found in the key store"));
        }
        let key = self.read_key(&key_pem, property)?;
        Ok(Some((chain, key)))
    }

    fn read_key(
        &self,
        pem: &[u8],
        property: &str,
    ) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
        if String::from_utf8_lossy(pem).contains("ENCRYPTED PRIVATE KEY") {
            return Err(error(
                property,
                "encrypted private keys are not supported yet: decrypt the key (openssl pkcs8 -in key.pem -out plain.pem) and protect the file instead",
            ));
        }
        rustls_pemfile::private_key(&mut &pem[..])
            .map_err(|e| error(property, e.to_string()))?
            .ok_or_else(|| error(property, "no private key found in the key store"))
    }

    fn trust_store(
        &self,
        files: &mut Vec<PathBuf>,
    ) -> Result<Option<RootCertStore>, TlsConfigError> {
        self.check_type("ssl.truststore.type")?;
        let (pem, property) = if let Some(path) = self.get("ssl.truststore.location") {
            let path = PathBuf::from(path.trim());
            let text = std::fs::read(&path).map_err(|e| {
                error(
                    "ssl.truststore.location",
                    format!("{}: {e}", path.display()),
                )
            })?;
            files.push(path);
            (text, "ssl.truststore.location")
        } else if let Some(inline) = self.get("ssl.truststore.certificates") {
            (inline.into_bytes(), "ssl.truststore.certificates")
        } else {
            return Ok(None);
        };
        let mut roots = RootCertStore::empty();
        for cert in read_certificates(&pem).map_err(|m| error(property, m))? {
            roots
                .add(cert)
                .map_err(|e| error(property, format!("a certificate is not usable: {e}")))?;
        }
        if roots.is_empty() {
            return Err(error(property, "no certificate found in the trust store"));
        }
        Ok(Some(roots))
    }
}

fn read_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot read certificates: {e}"))
}

/// The machine's CA certificates, for a client given no trust store (Java's default too).
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for path in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ] {
        if let Ok(pem) = std::fs::read(path)
            && let Ok(certs) = read_certificates(&pem)
        {
            roots.add_parsable_certificates(certs);
            break;
        }
    }
    roots
}

fn suite_name(suite: &rustls::SupportedCipherSuite) -> Option<String> {
    suite.suite().as_str().map(str::to_string)
}

/// The host name a client checks the broker's certificate against.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))
}

/// The subject of a DER certificate as Java's `X500Principal.getName()` writes it (RFC 2253:
/// the most specific name first, `CN=client,OU=eng,O=Acme,C=US`), which is what
/// `ssl.principal.mapping.rules` match against.
pub fn distinguished_name(certificate: &[u8]) -> Option<String> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(certificate).ok()?;
    let mut parts = Vec::new();
    for rdn in cert.subject().iter().collect::<Vec<_>>().into_iter().rev() {
        let attributes: Vec<String> = rdn
            .iter()
            .map(|attribute| {
                let oid = attribute.attr_type();
                let value = attribute.as_str().map_or_else(
                    |_| format!("#{}", hex(attribute.attr_value().data)),
                    escape_rfc2253,
                );
                match short_name(&oid.to_id_string()) {
                    Some(name) => format!("{name}={value}"),
                    None => format!("{}={value}", oid.to_id_string()),
                }
            })
            .collect();
        parts.push(attributes.join("+"));
    }
    Some(parts.join(","))
}

/// The attribute keywords RFC 2253 (and Java) print by name.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn escape_rfc2253(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        let edge =
            (i == 0 && (c == ' ' || c == '#')) || (i + 1 == value.chars().count() && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `ssl.endpoint.identification.algorithm=` (empty): check the chain, not the host name, as
/// Kafka clients do with that setting.
mod no_hostname {
    use std::sync::Arc;

    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, Error, SignatureScheme};

    #[derive(Debug)]
    pub struct Verifier {
        inner: Arc<WebPkiServerVerifier>,
    }

    impl Verifier {
        pub fn with(inner: Arc<WebPkiServerVerifier>) -> Self {
            Self { inner }
        }
    }

    impl ServerCertVerifier for Verifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            match self
                .inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Err(Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
                | Err(Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            self.inner.verify_tls12_signature(message, cert, dss)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            self.inner.verify_tls13_signature(message, cert, dss)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.inner.supported_verify_schemes()
        }
    }
}
