//! One client connection: frames in, responses out, in request order.
//!
//! ```text
//! socket ──read──▶ buffer ──decode_frame──▶ header ──dispatch (awaited, in order)──▶ Reply
//!                                                                   │
//!        ◀──write── responses in order ◀── FuturesOrdered ◀─────────┘ (Now / Later)
//! ```
//!
//! The ordered part of each request runs before the next request is read, so one connection's
//! appends happen in the order it sent them (idempotent sequences depend on it). Waiting parts
//! (acks=all, fetch long polls) run concurrently, bounded by `queued.max.requests`; while the
//! pipeline is full the connection is not read, which pushes back on the client.
//!
//! Security comes first: on an SSL listener the TLS handshake (bounded in time) gives the
//! stream and, with a client certificate, the principal; on a SASL listener the
//! [`Session`] admits nothing but ApiVersions, SaslHandshake and SaslAuthenticate until the
//! client has authenticated, with frames limited to `sasl.server.max.receive.size`.
//!
//! Bad input closes the connection, as Kafka does, after the responses already owed are
//! written: a frame over `socket.request.max.bytes`, an unknown API key, an unsupported version
//! of any API but ApiVersions, a header or body the codec cannot decode. ApiVersions with an
//! unsupported version is answered at v0 with UNSUPPORTED_VERSION and our version table
//! (KIP-511), so clients newer than us can negotiate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use kafka_protocol::messages::ApiKey;
use strom_protocol::{FrameError, RequestHeaderPrefix, decode_frame, decode_request_header};
use strom_security::KafkaPrincipal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::handlers::{self, Reply, RequestContext};
use crate::security::{ListenerSecurity, Session};
use crate::state::BrokerState;

/// How long a client may take to finish the TLS handshake: a peer that connects and sends
/// nothing must not hold a connection slot for ever.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Initial read buffer; it grows to hold the largest frame in flight.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Why a connection ended, for the log line.
#[derive(Debug)]
enum Closed {
    ByClient,
    Idle,
    Shutdown,
    Io(std::io::Error),
    BadInput(String),
    /// Authentication failed, or a request came before it: answered if owed, then closed.
    Refused(String),
}

pub async fn serve(
    state: Arc<BrokerState>,
    listener: Arc<ListenerSecurity>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    state
        .metrics
        .connections_accepted
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let gauges = Arc::clone(&state);
    let _open = crate::metrics::GaugeGuard::new(&gauges.metrics.connections_open);
    let Some(tls) = &listener.tls else {
        let session = Arc::new(Session::new(
            Arc::clone(&listener),
            KafkaPrincipal::anonymous(),
        ));
        // Plain TCP splits into owned halves, with no lock between reader and writer.
        let (reader, writer) = stream.into_split();
        return serve_stream(state, session, reader, writer, peer, shutdown).await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::info!(%peer, listener = %listener.name, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, listener = %listener.name, "TLS handshake timed out");
            return;
        }
    };
    let principal = match certificate_principal(&listener, &stream) {
        Ok(principal) => principal,
        Err(why) => {
            tracing::info!(%peer, listener = %listener.name, "refusing a client certificate: {why}");
            return;
        }
    };
    let session = Arc::new(Session::new(Arc::clone(&listener), principal));
    let (reader, writer) = tokio::io::split(stream);
    serve_stream(state, session, reader, writer, peer, shutdown).await;
}

/// The principal of a TLS connection: mapped from the client certificate's subject on an SSL
/// listener, anonymous without a certificate. On SASL_SSL, SASL decides instead.
fn certificate_principal(
    listener: &ListenerSecurity,
    stream: &tokio_rustls::server::TlsStream<TcpStream>,
) -> Result<KafkaPrincipal, String> {
    if listener.protocol.uses_sasl() {
        return Ok(KafkaPrincipal::anonymous());
    }
    let Some(certificate) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    else {
        return Ok(KafkaPrincipal::anonymous());
    };
    let name =
        strom_security::tls::distinguished_name(certificate).ok_or("its subject cannot be read")?;
    let user = listener
        .mapper
        .map(&name)
        .ok_or_else(|| format!("no ssl.principal.mapping.rules rule matches {name}"))?;
    Ok(KafkaPrincipal::user(user))
}

async fn serve_stream<R, W>(
    state: Arc<BrokerState>,
    session: Arc<Session>,
    mut reader: R,
    writer: W,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    let mut buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
    let mut pending: FuturesOrdered<BoxFuture<'static, Option<Bytes>>> = FuturesOrdered::new();
    let request_max_bytes = state.config.socket_request_max_bytes;
    let max_in_flight = state.config.queued_max_requests;
    let idle = Duration::from_millis(state.config.connections_max_idle_ms);
    let mut closing: Option<Closed> = None;

    let reason = loop {
        if closing.is_some() && pending.is_empty() {
            break closing.take().unwrap_or(Closed::Shutdown);
        }
        let can_read = closing.is_none() && pending.len() < max_in_flight;
        tokio::select! {
            biased;
            Some(response) = pending.next(), if !pending.is_empty() => {
                if let Some(frame) = response {
                    if frame.is_empty() {
                        break Closed::BadInput("a response could not be encoded".into());
                    }
                    if let Err(e) = writer.write_all(&frame).await {
                        break Closed::Io(e);
                    }
                }
                if pending.is_empty() && let Err(e) = writer.flush().await {
                    break Closed::Io(e);
                }
            }
            read = tokio::time::timeout(idle, reader.read_buf(&mut buffer)), if can_read => {
                match read {
                    Err(_) if pending.is_empty() => break Closed::Idle,
                    Err(_) => {}
                    Ok(Ok(0)) => closing = Some(Closed::ByClient),
                    Ok(Ok(_)) => {
                        if let Err(bad) = handle_frames(&state, &session, &mut buffer, &mut pending, request_max_bytes, peer).await {
                            closing = Some(bad);
                        }
                        if pending.is_empty() && let Err(e) = writer.flush().await {
                            break Closed::Io(e);
                        }
                    }
                    Ok(Err(e)) => break Closed::Io(e),
                }
            }
            _ = shutdown.changed(), if closing.is_none() => closing = Some(Closed::Shutdown),
        }
    };
    let _ = writer.flush().await;
    match reason {
        Closed::BadInput(why) => tracing::warn!(%peer, "closing connection: {why}"),
        Closed::Refused(why) => tracing::info!(%peer, "closing connection: {why}"),
        Closed::Io(e) => tracing::debug!(%peer, error = %e, "connection failed"),
        other => tracing::debug!(%peer, reason = ?other, "connection closed"),
    }
}

/// Runs every complete frame in the buffer; returns why the connection must close, if it must.
async fn handle_frames(
    state: &Arc<BrokerState>,
    session: &Arc<Session>,
    buffer: &mut BytesMut,
    pending: &mut FuturesOrdered<BoxFuture<'static, Option<Bytes>>>,
    request_max_bytes: usize,
    peer: SocketAddr,
) -> Result<(), Closed> {
    loop {
        let max_frame_bytes = session.max_frame_bytes(request_max_bytes);
        let frame = match decode_frame(buffer, max_frame_bytes) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(e @ FrameError::TooLarge { .. }) => return Err(Closed::BadInput(format!("{e}"))),
            Err(e @ FrameError::NegativeSize(_)) => {
                return Err(Closed::BadInput(format!("{e}")));
            }
        };
        let arrived = Instant::now();
        let (api_key, reply) = handle_request(state, session, frame, peer).await?;
        // The latency of a request runs from its arrival to its response being ready.
        let timed = Arc::clone(state);
        let record = move || timed.metrics.record_request(api_key, arrived.elapsed());
        match reply {
            Reply::Now(bytes) => {
                record();
                pending.push_back(Box::pin(async move { Some(bytes) }));
            }
            Reply::Later(future) => pending.push_back(Box::pin(async move {
                let bytes = future.await;
                record();
                Some(bytes)
            })),
            Reply::Nothing => {
                record();
                pending.push_back(Box::pin(async { None }));
            }
        }
        if session.must_close() {
            return Err(Closed::Refused(format!(
                "{api_key:?} ended the connection's authentication"
            )));
        }
    }
}

/// A bare SASL token after a SaslHandshake v0: the answer is a bare size-prefixed token, and
/// a failure closes the connection without one, as Kafka does.
fn raw_token(state: &Arc<BrokerState>, session: &Session, token: &[u8]) -> Reply<Bytes> {
    use crate::security::session::Authenticate;
    let bytes = match session.authenticate(token, state.image(), Instant::now()) {
        Authenticate::Challenge(bytes) | Authenticate::Complete { bytes, .. } => bytes,
        Authenticate::Failed(message) => {
            tracing::info!(listener = %session.listener.name, "SASL authentication failed: {message}");
            return Reply::Nothing;
        }
        Authenticate::IllegalState => return Reply::Nothing,
    };
    let mut frame = BytesMut::with_capacity(4 + bytes.len());
    frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    frame.extend_from_slice(&bytes);
    Reply::Now(frame.freeze())
}

async fn handle_request(
    state: &Arc<BrokerState>,
    session: &Arc<Session>,
    mut frame: Bytes,
    peer: SocketAddr,
) -> Result<(ApiKey, Reply<Bytes>), Closed> {
    if session.expects_raw_token() {
        return Ok((ApiKey::SaslAuthenticate, raw_token(state, session, &frame)));
    }
    let prefix = RequestHeaderPrefix::peek(&frame).map_err(|e| Closed::BadInput(e.to_string()))?;
    let api_key = ApiKey::try_from(prefix.api_key).map_err(|_| {
        Closed::BadInput(format!(
            "unknown API key {} (correlation id {})",
            prefix.api_key, prefix.correlation_id
        ))
    })?;
    session
        .admit(api_key, Instant::now())
        .map_err(|refused| Closed::Refused(refused.0))?;
    let supported = handlers::supported_versions(api_key);
    let version_ok =
        supported.is_some_and(|v| prefix.api_version >= v.min && prefix.api_version <= v.max);
    if !version_ok {
        if api_key == ApiKey::ApiVersions {
            let answer =
                handlers::api_versions::unsupported_version_response(prefix.correlation_id);
            return Ok((api_key, Reply::Now(answer)));
        }
        return Err(Closed::BadInput(match supported {
            Some(v) => format!(
                "{api_key:?} v{} is not supported (supported: {v})",
                prefix.api_version
            ),
            None => format!("{api_key:?} is not supported"),
        }));
    }
    let header = decode_request_header(&mut frame, api_key, prefix.api_version)
        .map_err(|e| Closed::BadInput(e.to_string()))?;
    let ctx = RequestContext {
        api_key,
        api_version: prefix.api_version,
        correlation_id: prefix.correlation_id,
        client_id: header.client_id.map(|c| c.to_string()),
        peer,
        session: Arc::clone(session),
    };
    let reply = handlers::dispatch(state, ctx, frame)
        .await
        .map_err(|e| Closed::BadInput(e.to_string()))?;
    Ok((api_key, reply))
}
