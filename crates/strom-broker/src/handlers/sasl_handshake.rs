//! SaslHandshake: the client names the SASL mechanism it will authenticate with (KIP-152).
//!
//! After v1 the tokens travel in SaslAuthenticate requests; after v0 they come as bare
//! size-prefixed frames outside the Kafka protocol (the connection handles those). librdkafka
//! 2.0 checks that v0 is served before it uses v1. An unsupported mechanism gets the list of
//! enabled ones, then the connection closes, as in Kafka.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::{Reply, RequestContext};
use crate::security::session::Handshake;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub async fn handle(
    _state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: SaslHandshakeRequest,
) -> Reply<SaslHandshakeResponse> {
    let session = &ctx.session;
    let error_code = match session.handshake(request.mechanism.as_str(), ctx.api_version == 0) {
        Handshake::Accepted => 0,
        Handshake::UnsupportedMechanism => {
            tracing::info!(peer = %ctx.peer, listener = %session.listener.name, mechanism = %request.mechanism, "refusing a SASL mechanism the listener does not offer");
            ResponseError::UnsupportedSaslMechanism.code()
        }
        Handshake::IllegalState => ResponseError::IllegalSaslState.code(),
    };
    let mechanisms = session
        .mechanisms()
        .into_iter()
        .map(StrBytes::from_static_str)
        .collect();
    Reply::Now(
        SaslHandshakeResponse::default()
            .with_error_code(error_code)
            .with_mechanisms(mechanisms),
    )
}
