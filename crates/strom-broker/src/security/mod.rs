//! The broker's security edge: each listener's TLS and SASL settings ([`listener`]) and each
//! connection's authentication state and principal ([`session`]). The pure pieces (SASL
//! exchanges, TLS configs from `ssl.*` properties, principal mapping) are in `strom-security`.

pub mod authz;
pub mod limits;
pub mod listener;
pub mod session;

pub use authz::Authz;
pub use listener::ListenerSecurity;
pub use session::Session;
