//! SaslAuthenticate: one token of the SASL exchange the handshake chose (KIP-152), and the
//! session lifetime that asks the client to re-authenticate in time (v1, KIP-368).
//!
//! A failed authentication is answered with SASL_AUTHENTICATION_FAILED and a message that
//! does not say whether the user exists, then the connection closes, as in Kafka.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use tokio::time::Instant;

use super::{Reply, RequestContext};
use crate::security::session::Authenticate;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: SaslAuthenticateRequest,
) -> Reply<SaslAuthenticateResponse> {
    let session = &ctx.session;
    let response = SaslAuthenticateResponse::default();
    Reply::Now(
        match session.authenticate(&request.auth_bytes, state.image(), Instant::now()) {
            Authenticate::Challenge(bytes) => response.with_auth_bytes(Bytes::from(bytes)),
            Authenticate::Complete { bytes, lifetime_ms } => {
                tracing::debug!(peer = %ctx.peer, principal = %session.principal(), "authenticated");
                response
                    .with_auth_bytes(Bytes::from(bytes))
                    .with_session_lifetime_ms(lifetime_ms)
            }
            Authenticate::Failed(message) => {
                tracing::info!(peer = %ctx.peer, listener = %session.listener.name, "SASL authentication failed: {message}");
                response
                    .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                    .with_error_message(Some(StrBytes::from_string(message)))
            }
            Authenticate::IllegalState => response
                .with_error_code(ResponseError::IllegalSaslState.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "SaslAuthenticate is only valid after a SaslHandshake",
                ))),
        },
    )
}
