//! The broker's security edge: each listener's TLS and SASL settings ([`listener`]) and each
//! connection's authentication state and principal ([`session`]), and how the broker connects
//! to its peers' inter-broker listener ([`inter_broker`]). The pure pieces (SASL
//! exchanges, TLS configs from `ssl.*` properties, principal mapping) are in `strom-security`.

pub mod authz;
pub mod inter_broker;
pub mod limits;
pub mod listener;
pub mod session;

pub use authz::Authz;
pub use listener::ListenerSecurity;
pub use session::Session;
