//! Security at the edge of the broker, as pieces the connection code drives: who a
//! connection is ([`principal`]), TLS configs from Kafka's `ssl.*` properties ([`tls`]), the
//! JAAS lines that configure SASL ([`jaas`]), and the SASL exchanges ([`sasl`]). Nothing here
//! owns a socket; `strom-broker` and `strom-client` do.

pub mod bootstrap;
pub mod jaas;
pub mod principal;
pub mod sasl;
pub mod tls;

pub use principal::{KafkaPrincipal, PrincipalMapper};
pub use sasl::{
    AuthenticationFailed, Credentials, SaslMechanism, SaslServer, SaslStep, ScramClient,
};
