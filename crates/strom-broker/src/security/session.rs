//! One connection's security state: who it is, and where it stands in SASL authentication.
//!
//! ```text
//!  PLAINTEXT / SSL ──────────────────────────────────────────────▶ Open (principal fixed)
//!  SASL_* ─▶ AwaitingHandshake ─SaslHandshake─▶ Handshaken ─SaslAuthenticate*─▶ Authenticated
//!                                                   │ failure: answer, then close   │
//!                                                   ◀──── SaslHandshake (KIP-368) ──┘
//! ```
//!
//! Until a SASL connection has authenticated, only ApiVersions, SaslHandshake and
//! SaslAuthenticate are served, and frames are limited to `sasl.server.max.receive.size`;
//! anything else closes the connection, as Kafka does. A session with a lifetime
//! (`connections.max.reauth.ms`) that has run out is closed at its next request unless the
//! client re-authenticates (the same principal, on the same connection).

use std::sync::{Arc, Mutex};

use kafka_protocol::messages::ApiKey;
use strom_cluster::MetadataImage;
use strom_cluster::scram::{ScramCredential, ScramMechanism};
use strom_security::KafkaPrincipal;
use strom_security::sasl::{
    AuthenticationFailed, Credentials, SaslMechanism, SaslServer, SaslStep,
};
use tokio::time::Instant;

use super::listener::ListenerSecurity;

pub struct Session {
    pub listener: Arc<ListenerSecurity>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("listener", &self.listener.name)
            .field("principal", &self.principal().to_string())
            .finish_non_exhaustive()
    }
}

struct State {
    principal: KafkaPrincipal,
    auth: Auth,
    /// The connection closes once the response owed is written (a failed authentication).
    close: bool,
    /// When the SASL session ends (`connections.max.reauth.ms`).
    expires_at: Option<Instant>,
    /// SaslHandshake v0: the tokens follow as bare size-prefixed frames, not SaslAuthenticate.
    raw_tokens: bool,
}

enum Auth {
    /// No SASL on this listener.
    Open,
    AwaitingHandshake,
    Handshaken(SaslServer),
    Authenticated,
    /// Authenticated, and a re-authentication is under way.
    Reauthenticating(SaslServer),
}

/// Why a request may not be served: the connection closes.
#[derive(Debug)]
pub struct Refused(pub String);

/// The outcome of a SaslHandshake.
pub enum Handshake {
    Accepted,
    UnsupportedMechanism,
    IllegalState,
}

/// The outcome of a SaslAuthenticate.
pub enum Authenticate {
    /// More to exchange: send these bytes.
    Challenge(Vec<u8>),
    /// Done: send these bytes, with the session lifetime in milliseconds (0: unlimited).
    Complete {
        bytes: Vec<u8>,
        lifetime_ms: i64,
    },
    Failed(String),
    IllegalState,
}

impl Session {
    pub fn new(listener: Arc<ListenerSecurity>, principal: KafkaPrincipal) -> Self {
        let auth = if listener.sasl.is_some() {
            Auth::AwaitingHandshake
        } else {
            Auth::Open
        };
        Self {
            listener,
            state: Mutex::new(State {
                principal,
                auth,
                close: false,
                expires_at: None,
                raw_tokens: false,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn principal(&self) -> KafkaPrincipal {
        self.state().principal.clone()
    }

    /// The largest frame this connection may send now.
    pub fn max_frame_bytes(&self, authenticated_limit: usize) -> usize {
        let state = self.state();
        match (&state.auth, &self.listener.sasl) {
            (Auth::AwaitingHandshake | Auth::Handshaken(_), Some(sasl)) => {
                sasl.max_receive_size.min(authenticated_limit)
            }
            _ => authenticated_limit,
        }
    }

    /// Whether this request may be served now.
    pub fn admit(&self, api_key: ApiKey, now: Instant) -> Result<(), Refused> {
        if matches!(
            api_key,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        ) {
            return Ok(());
        }
        let state = self.state();
        match state.auth {
            Auth::Open => Ok(()),
            Auth::AwaitingHandshake | Auth::Handshaken(_) => Err(Refused(format!(
                "unexpected {api_key:?} request before SASL authentication"
            ))),
            Auth::Authenticated | Auth::Reauthenticating(_) => match state.expires_at {
                Some(at) if now >= at => Err(Refused(format!(
                    "the SASL session of {} expired (connections.max.reauth.ms) and the client did not re-authenticate",
                    state.principal
                ))),
                _ => Ok(()),
            },
        }
    }

    /// Whether the connection must close after the response just queued.
    pub fn must_close(&self) -> bool {
        self.state().close
    }

    /// Whether the next frame is a bare SASL token (after a v0 handshake).
    pub fn expects_raw_token(&self) -> bool {
        let state = self.state();
        state.raw_tokens && matches!(state.auth, Auth::Handshaken(_))
    }

    /// A SaslHandshake; `raw_tokens` for version 0, whose tokens come as bare frames.
    pub fn handshake(&self, mechanism: &str, raw_tokens: bool) -> Handshake {
        let Some(sasl) = &self.listener.sasl else {
            return Handshake::IllegalState;
        };
        let mut state = self.state();
        let Some(mechanism) =
            SaslMechanism::from_name(mechanism).filter(|m| sasl.mechanisms.contains(m))
        else {
            // Kafka closes the connection after telling the client what it could use.
            state.close = true;
            return Handshake::UnsupportedMechanism;
        };
        let server = SaslServer::new(mechanism);
        match std::mem::replace(&mut state.auth, Auth::Open) {
            Auth::AwaitingHandshake => {
                state.auth = Auth::Handshaken(server);
                state.raw_tokens = raw_tokens;
            }
            Auth::Authenticated if sasl.reauth_ms > 0 && !raw_tokens => {
                state.auth = Auth::Reauthenticating(server);
            }
            other => {
                state.auth = other;
                state.close = true;
                return Handshake::IllegalState;
            }
        }
        Handshake::Accepted
    }

    pub fn mechanisms(&self) -> Vec<&'static str> {
        self.listener
            .sasl
            .as_ref()
            .map(|s| s.mechanisms.iter().map(|m| m.name()).collect())
            .unwrap_or_default()
    }

    pub fn authenticate(
        &self,
        token: &[u8],
        image: Arc<MetadataImage>,
        now: Instant,
    ) -> Authenticate {
        let Some(sasl) = &self.listener.sasl else {
            return Authenticate::IllegalState;
        };
        let credentials = BrokerCredentials {
            plain: &sasl.plain_users,
            image,
        };
        let mut state = self.state();
        let (mut server, reauthenticating) =
            match std::mem::replace(&mut state.auth, Auth::AwaitingHandshake) {
                Auth::Handshaken(server) => (server, false),
                Auth::Reauthenticating(server) => (server, true),
                other => {
                    state.auth = other;
                    state.close = true;
                    return Authenticate::IllegalState;
                }
            };
        match server.step(token, &credentials) {
            Ok(SaslStep::Challenge(bytes)) => {
                state.auth = if reauthenticating {
                    Auth::Reauthenticating(server)
                } else {
                    Auth::Handshaken(server)
                };
                Authenticate::Challenge(bytes)
            }
            Ok(SaslStep::Complete {
                response,
                principal,
            }) => {
                if reauthenticating && principal != state.principal {
                    state.close = true;
                    return Authenticate::Failed(format!(
                        "Cannot change principals during re-authentication from {}: {principal}",
                        state.principal
                    ));
                }
                state.principal = principal;
                state.auth = Auth::Authenticated;
                let lifetime_ms = sasl.reauth_ms;
                state.expires_at = (lifetime_ms > 0)
                    .then(|| now + std::time::Duration::from_millis(lifetime_ms as u64));
                Authenticate::Complete {
                    bytes: response,
                    lifetime_ms,
                }
            }
            // The connection closes after the answer; until then it serves nothing else.
            Err(AuthenticationFailed(message)) => {
                state.close = true;
                Authenticate::Failed(message)
            }
        }
    }
}

struct BrokerCredentials<'a> {
    plain: &'a std::collections::BTreeMap<String, String>,
    image: Arc<MetadataImage>,
}

impl Credentials for BrokerCredentials<'_> {
    fn plain_password(&self, user: &str) -> Option<String> {
        self.plain.get(user).cloned()
    }

    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.image.scram_credential(user, mechanism).cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use strom_cluster::MetadataRecord;
    use strom_security::PrincipalMapper;

    use super::*;
    use crate::config::SecurityProtocol;
    use crate::security::listener::SaslSettings;

    fn sasl_listener(reauth_ms: i64) -> Arc<ListenerSecurity> {
        Arc::new(ListenerSecurity {
            name: "SASL_PLAINTEXT".into(),
            protocol: SecurityProtocol::SaslPlaintext,
            tls: None,
            sasl: Some(SaslSettings {
                mechanisms: vec![SaslMechanism::Plain],
                plain_users: BTreeMap::from([
                    ("alice".into(), "pw".into()),
                    ("bob".into(), "pw".into()),
                ]),
                max_receive_size: 1000,
                reauth_ms,
            }),
            mapper: PrincipalMapper::default(),
        })
    }

    fn image() -> Arc<MetadataImage> {
        let mut image = MetadataImage::default();
        image.replay(&MetadataRecord::Cluster {
            cluster_id: "c".into(),
        });
        Arc::new(image)
    }

    fn login(session: &Session, user: &str, now: Instant) -> Authenticate {
        assert!(matches!(
            session.handshake("PLAIN", false),
            Handshake::Accepted
        ));
        session.authenticate(format!("\0{user}\0pw").as_bytes(), image(), now)
    }

    #[test]
    fn nothing_but_the_sasl_apis_before_authentication() {
        let session = Session::new(sasl_listener(0), KafkaPrincipal::anonymous());
        let now = Instant::now();
        assert!(session.admit(ApiKey::ApiVersions, now).is_ok());
        assert!(session.admit(ApiKey::Metadata, now).is_err());
        assert_eq!(session.max_frame_bytes(1 << 20), 1000);
        assert!(matches!(
            login(&session, "alice", now),
            Authenticate::Complete { .. }
        ));
        assert!(session.admit(ApiKey::Metadata, now).is_ok());
        assert_eq!(session.max_frame_bytes(1 << 20), 1 << 20);
        assert_eq!(session.principal(), KafkaPrincipal::user("alice"));
        assert!(!session.must_close());
    }

    #[test]
    fn a_failed_login_or_an_unoffered_mechanism_closes_the_connection() {
        let session = Session::new(sasl_listener(0), KafkaPrincipal::anonymous());
        assert!(matches!(
            session.handshake("PLAIN", false),
            Handshake::Accepted
        ));
        let failed = session.authenticate(b"\0alice\0wrong", image(), Instant::now());
        assert!(matches!(failed, Authenticate::Failed(_)));
        assert!(session.must_close());
        assert!(session.admit(ApiKey::Metadata, Instant::now()).is_err());

        let session = Session::new(sasl_listener(0), KafkaPrincipal::anonymous());
        assert!(matches!(
            session.handshake("SCRAM-SHA-256", false),
            Handshake::UnsupportedMechanism
        ));
        assert!(session.must_close());
    }

    #[test]
    fn sessions_expire_and_re_authentication_keeps_the_principal() {
        let session = Session::new(sasl_listener(1000), KafkaPrincipal::anonymous());
        let start = Instant::now();
        assert!(matches!(
            login(&session, "alice", start),
            Authenticate::Complete {
                lifetime_ms: 1000,
                ..
            }
        ));
        let later = start + Duration::from_millis(1500);
        assert!(session.admit(ApiKey::Produce, later).is_err(), "expired");
        // Logging in again, as the same user, starts a new lifetime.
        assert!(matches!(
            login(&session, "alice", later),
            Authenticate::Complete { .. }
        ));
        assert!(session.admit(ApiKey::Produce, later).is_ok());
        // Another user may not take the connection over.
        assert!(matches!(
            login(&session, "bob", later),
            Authenticate::Failed(_)
        ));
        assert!(session.must_close());
    }

    #[test]
    fn without_reauthentication_a_second_handshake_is_illegal() {
        let session = Session::new(sasl_listener(0), KafkaPrincipal::anonymous());
        assert!(matches!(
            login(&session, "alice", Instant::now()),
            Authenticate::Complete { .. }
        ));
        assert!(matches!(
            session.handshake("PLAIN", false),
            Handshake::IllegalState
        ));
    }

    #[test]
    fn a_plaintext_listener_admits_everything_and_refuses_sasl() {
        let session = Session::new(
            Arc::new(ListenerSecurity::plaintext("PLAINTEXT")),
            KafkaPrincipal::anonymous(),
        );
        assert!(session.admit(ApiKey::Produce, Instant::now()).is_ok());
        assert!(matches!(
            session.handshake("PLAIN", false),
            Handshake::IllegalState
        ));
        assert!(!session.must_close());
    }
}
