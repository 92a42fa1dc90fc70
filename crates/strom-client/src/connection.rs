//! One TCP connection to one broker, pipelined.
//!
//! A [`Connection`] owns two tasks: a *writer* that drains a bounded queue of encoded frames
//! into the socket (coalescing whatever is queued into one flush), and a *reader* that reads
//! length-prefixed response frames and hands each to the caller waiting for its correlation id.
//! Callers encode their own request and decode their own response, so the tasks know nothing
//! about APIs and the decoding work happens on the caller's task.
//!
//! ```text
//!  send(req) ─ encode ─ register(correlation id -> oneshot) ─► [frame queue] ─► writer ─► socket
//!      ▲                                                                                  │
//!      └──── decode ◄── oneshot ◄── reader (looks up correlation id) ◄────────────────────┘
//! ```
//!
//! On connect the client sends ApiVersions (v3, falling back per KIP-511 when the broker answers
//! `UNSUPPORTED_VERSION`) and remembers the broker's version ranges; [`Connection::send`] then
//! picks the highest version both sides support. Everything is bounded: requests in flight (a
//! semaphore), queued frames, response frame size, and each request's wait (the request
//! timeout). When the socket closes or fails, every pending request fails with
//! [`Error::ConnectionClosed`] carrying the reason, and so does every later send.
//!
//! With [`ConnectionConfig::security`] the socket is wrapped in TLS (rustls) before anything
//! is sent, and after ApiVersions the client authenticates with SaslHandshake v1 and
//! SaslAuthenticate (PLAIN in one round trip, SCRAM in two, checking the server's signature);
//! a refusal is [`Error::Authentication`] with the broker's message.
//!
//! [`RawConnection`] is the opposite: no pipelining, no handshake, just bytes, for tests that
//! feed malformed input to a broker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes, VersionRange};
use strom_security::{SaslMechanism, ScramClient};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::error::{Error, Result};
use crate::security::{ClientSecurity, SaslCredentials, host_of};

/// The version of ApiVersions tried first. v3 is the first flexible version (KIP-511), which
/// carries the client software name and version; every broker since Kafka 2.4 supports it.
const API_VERSIONS_FIRST_TRY: i16 = 3;

/// Kafka's `UNSUPPORTED_VERSION` error code.
const UNSUPPORTED_VERSION: i16 = 35;

/// Settings for one connection. [`crate::ClientConfig`] derives these for every connection a
/// [`crate::Client`] opens.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// The `client.id` sent in every request header.
    pub client_id: Option<String>,
    /// How long a request may wait for its response (`request.timeout.ms`).
    pub request_timeout: Duration,
    /// How long opening the TCP connection may take.
    pub connect_timeout: Duration,
    /// The most requests in flight on this connection at once; further sends wait.
    pub max_in_flight: usize,
    /// Response frames larger than this close the connection as a protocol violation.
    pub max_response_bytes: usize,
    /// TLS and SASL (`None`: PLAINTEXT).
    pub security: Option<Arc<ClientSecurity>>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: Some("strom-client".to_owned()),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_in_flight: 64,
            max_response_bytes: 100 * 1024 * 1024,
            security: None,
        }
    }
}

/// The API version ranges a broker advertised in its ApiVersions response.
#[derive(Debug, Clone, Default)]
pub struct ApiVersions {
    ranges: HashMap<i16, VersionRange>,
    /// The ApiVersions version the handshake succeeded with.
    handshake_version: i16,
}

impl ApiVersions {
    /// The broker's supported range for `api`, or `None` if it does not support the API.
    pub fn get(&self, api: ApiKey) -> Option<VersionRange> {
        self.ranges.get(&(api as i16)).copied()
    }

    /// Every `(api key, range)` the broker advertised, sorted by API key.
    pub fn all(&self) -> Vec<(i16, VersionRange)> {
        let mut all: Vec<_> = self.ranges.iter().map(|(k, v)| (*k, *v)).collect();
        all.sort_by_key(|(k, _)| *k);
        all
    }

    /// The ApiVersions request version the handshake used (3, or lower after a KIP-511
    /// fallback).
    pub fn handshake_version(&self) -> i16 {
        self.handshake_version
    }

    fn from_response(response: &ApiVersionsResponse, handshake_version: i16) -> ApiVersions {
        ApiVersions {
            ranges: response
                .api_keys
                .iter()
                .map(|k| {
                    (
                        k.api_key,
                        VersionRange {
                            min: k.min_version,
                            max: k.max_version,
                        },
                    )
                })
                .collect(),
            handshake_version,
        }
    }
}

/// Pending requests and the closed flag, under one lock so that a request can never register
/// after the connection failed everything pending (it would wait forever).
#[derive(Default)]
struct State {
    pending: HashMap<i32, oneshot::Sender<Bytes>>,
    closed: Option<String>,
}

impl State {
    /// Marks the connection closed and drops every pending sender, which wakes each waiter with
    /// a receive error; waiters then read `closed` for the reason.
    fn close(&mut self, reason: String) {
        if self.closed.is_none() {
            self.closed = Some(reason);
        }
        self.pending.clear();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding this lock cannot leave the map inconsistent (every operation on it
    // is a single insert/remove/clear), so a poisoned lock is still safe to use.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Shared {
    addr: String,
    client_id: Option<StrBytes>,
    request_timeout: Duration,
    versions: OnceLock<ApiVersions>,
    frames: mpsc::Sender<Bytes>,
    state: Arc<Mutex<State>>,
    next_correlation_id: AtomicI32,
    in_flight: Arc<Semaphore>,
    reader: AbortHandle,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The writer stops by itself once `frames` is dropped (after writing what is queued,
        // so an acks=0 produce handed to it is not lost); the reader would otherwise wait on
        // the socket forever.
        self.reader.abort();
    }
}

/// A pipelined connection to one broker. Cheap to clone; all clones share the socket. The
/// connection closes when the last clone is dropped.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.shared.addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Removes a pending entry if the waiting future is dropped or times out before its response
/// arrives, so an abandoned request does not stay in the map until the connection closes.
struct PendingGuard<'a> {
    state: &'a Mutex<State>,
    correlation_id: i32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(self.state).pending.remove(&self.correlation_id);
    }
}

impl Connection {
    /// Opens a TCP connection to `addr` (`host:port`), wraps it in TLS if the config asks for
    /// it, performs the ApiVersions handshake and then authenticates with SASL if configured.
    pub async fn connect(addr: &str, config: &ConnectionConfig) -> Result<Connection> {
        let connect_error = |source: std::io::Error| Error::Connect {
            addr: addr.to_owned(),
            source: Arc::new(source),
        };
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                connect_error(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {:?}", config.connect_timeout),
                ))
            })?
            .map_err(connect_error)?;
        // Requests are small and latency matters more than packet count; the writer already
        // coalesces queued frames into one write.
        stream.set_nodelay(true).map_err(connect_error)?;
        let security = config.security.as_deref();
        match security.and_then(|s| s.tls.clone()) {
            None => {
                let (read_half, write_half) = stream.into_split();
                Connection::start(addr, config, read_half, write_half).await
            }
            Some(tls) => {
                let name = strom_security::tls::server_name(host_of(addr)).map_err(|e| {
                    connect_error(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
                })?;
                let connector = tokio_rustls::TlsConnector::from(tls);
                let stream =
                    tokio::time::timeout(config.connect_timeout, connector.connect(name, stream))
                        .await
                        .map_err(|_| {
                            connect_error(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                format!("no TLS handshake within {:?}", config.connect_timeout),
                            ))
                        })?
                        .map_err(|e| {
                            connect_error(std::io::Error::new(
                                e.kind(),
                                format!("TLS handshake failed: {e}"),
                            ))
                        })?;
                let (read_half, write_half) = tokio::io::split(stream);
                Connection::start(addr, config, read_half, write_half).await
            }
        }
    }

    /// Starts the reader and writer tasks on an open transport, then does the handshakes.
    async fn start<R, W>(
        addr: &str,
        config: &ConnectionConfig,
        read_half: R,
        write_half: W,
    ) -> Result<Connection>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let max_in_flight = config.max_in_flight.max(1);
        let state = Arc::new(Mutex::new(State::default()));
        let (frames, frame_queue) = mpsc::channel(max_in_flight);
        tokio::spawn(write_loop(
            frame_queue,
            write_half,
            Arc::clone(&state),
            addr.to_owned(),
        ));
        let reader = tokio::spawn(read_loop(
            read_half,
            Arc::clone(&state),
            config.max_response_bytes,
            addr.to_owned(),
        ))
        .abort_handle();

        let connection = Connection {
            shared: Arc::new(Shared {
                addr: addr.to_owned(),
                client_id: config.client_id.clone().map(StrBytes::from_string),
                request_timeout: config.request_timeout,
                versions: OnceLock::new(),
                frames,
                state,
                next_correlation_id: AtomicI32::new(1),
                in_flight: Arc::new(Semaphore::new(max_in_flight)),
                reader,
            }),
        };
        let versions = connection.handshake().await?;
        // Only this function sets the versions, exactly once, before anyone else can see the
        // connection; a failure here would be a bug, not a broker problem.
        let _ = connection.shared.versions.set(versions);
        if let Some(sasl) = config.security.as_ref().and_then(|s| s.sasl.as_ref()) {
            connection.authenticate(sasl).await?;
        }
        Ok(connection)
    }

    /// SaslHandshake v1, then SaslAuthenticate round trips for the mechanism (KIP-152).
    async fn authenticate(&self, sasl: &SaslCredentials) -> Result<()> {
        let mechanism = sasl.mechanism.name();
        let refused = |why: String| {
            Error::Authentication(format!(
                "{mechanism} as {} to {}: {why}",
                sasl.username, self.shared.addr
            ))
        };
        let version = self.negotiated_version::<SaslHandshakeRequest>()?;
        if version < 1 {
            return Err(refused(
                "the broker only speaks SaslHandshake v0 (no framed SASL tokens)".into(),
            ));
        }
        let mut handshake = SaslHandshakeRequest::default();
        handshake.mechanism = StrBytes::from_static_str(mechanism);
        let response = self.send(handshake).await?;
        if response.error_code != 0 {
            let enabled: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(refused(format!(
                "{} (the listener enables {})",
                crate::error::error_name(response.error_code),
                if enabled.is_empty() {
                    "no mechanism".to_owned()
                } else {
                    enabled.join(", ")
                }
            )));
        }
        match sasl.mechanism {
            SaslMechanism::Plain => {
                let token = format!("\0{}\0{}", sasl.username, sasl.password);
                self.sasl_authenticate(token.into_bytes(), &refused).await?;
            }
            SaslMechanism::Scram(scram) => {
                let mut client = ScramClient::new(scram, &sasl.username, &sasl.password);
                let server_first = self
                    .sasl_authenticate(client.first_message(), &refused)
                    .await?;
                let client_final = client.final_message(&server_first).map_err(&refused)?;
                let server_final = self.sasl_authenticate(client_final, &refused).await?;
                client.verify(&server_final).map_err(&refused)?;
            }
        }
        tracing::debug!(addr = %self.shared.addr, mechanism, user = %sasl.username, "authenticated");
        Ok(())
    }

    /// One SaslAuthenticate round trip: sends `token`, returns the server's bytes.
    async fn sasl_authenticate(
        &self,
        token: Vec<u8>,
        refused: &(dyn Fn(String) -> Error + Sync),
    ) -> Result<Vec<u8>> {
        let mut request = SaslAuthenticateRequest::default();
        request.auth_bytes = Bytes::from(token);
        let response = self.send(request).await?;
        if response.error_code != 0 {
            let name = crate::error::error_name(response.error_code);
            return Err(refused(match response.error_message {
                Some(message) if !message.is_empty() => format!("{name}: {}", message.as_str()),
                _ => name,
            }));
        }
        Ok(response.auth_bytes.to_vec())
    }

    /// The `host:port` this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// True once the socket closed or failed; every send then fails.
    pub fn is_closed(&self) -> bool {
        lock(&self.shared.state).closed.is_some()
    }

    /// The version ranges the broker advertised.
    pub fn api_versions(&self) -> &ApiVersions {
        static EMPTY: OnceLock<ApiVersions> = OnceLock::new();
        self.shared
            .versions
            .get()
            .unwrap_or_else(|| EMPTY.get_or_init(ApiVersions::default))
    }

    /// The version [`Connection::send`] would use for `R`: the highest version both this client
    /// (kafka-protocol's schema for `R`) and the broker support.
    pub fn negotiated_version<R: Request>(&self) -> Result<i16> {
        self.negotiate(api_key_of::<R>()?, R::VERSIONS)
    }

    /// The highest version of `api` within `client` that the broker also supports.
    pub fn negotiate(&self, api: ApiKey, client: VersionRange) -> Result<i16> {
        let Some(broker) = self.api_versions().get(api) else {
            return Err(Error::UnsupportedVersion {
                api: format!("{api:?}"),
                addr: self.shared.addr.clone(),
                detail: format!("client {client}, broker does not support the API"),
            });
        };
        let common = client.intersect(&broker);
        if common.is_empty() {
            return Err(Error::UnsupportedVersion {
                api: format!("{api:?}"),
                addr: self.shared.addr.clone(),
                detail: format!("client {client}, broker {broker}"),
            });
        }
        Ok(common.max)
    }

    /// Sends `request` with the highest mutually supported version and waits for its response.
    pub async fn send<R: Request>(&self, request: R) -> Result<R::Response> {
        let version = self.negotiated_version::<R>()?;
        self.send_with_timeout(request, version, self.shared.request_timeout)
            .await
    }

    /// Sends `request` with exactly `version`, whether or not the broker advertised it (for
    /// testing how a broker answers versions it does not support).
    pub async fn send_version<R: Request>(&self, request: R, version: i16) -> Result<R::Response> {
        self.send_with_timeout(request, version, self.shared.request_timeout)
            .await
    }

    /// Sends `request` with `version`, waiting at most `timeout` for the response. Used for
    /// requests the broker may legitimately hold longer than the request timeout (JoinGroup
    /// waits for the rebalance, Fetch for `max_wait`).
    pub async fn send_with_timeout<R: Request>(
        &self,
        request: R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let api = api_key_of::<R>()?;
        let mut body = self.round_trip(api, version, &request, timeout).await?;
        decode_body::<R::Response>(&mut body, api, version, &self.shared.addr)
    }

    /// Sends a request the broker does not answer (a Produce with acks=0). Resolves once the
    /// frame is queued for the socket; frames are written in queue order.
    pub async fn send_without_response<R: Request>(&self, request: R, version: i16) -> Result<()> {
        let api = api_key_of::<R>()?;
        let timeout = self.shared.request_timeout;
        let what = format!("{api:?}");
        tokio::time::timeout(timeout, async {
            let _permit = self.acquire_permit().await?;
            let correlation_id = self.next_correlation_id();
            let frame = self.encode_frame(api, version, correlation_id, &request)?;
            self.check_open()?;
            self.queue_frame(frame).await
        })
        .await
        .map_err(|_| self.timed_out(what, timeout))?
    }

    /// Sends an arbitrary frame body (request header + body, without the 4-byte length prefix)
    /// and returns the raw response frame body (response header + body). The correlation id is
    /// read from bytes 4..8 of `frame_body`, so the body must be at least 8 bytes. For tests that
    /// send requests this client would never produce.
    pub async fn send_raw(&self, frame_body: Bytes) -> Result<Bytes> {
        if frame_body.len() < 8 {
            return Err(Error::InvalidArgument(format!(
                "a raw frame needs at least 8 bytes (api key, version, correlation id), got {}",
                frame_body.len()
            )));
        }
        let correlation_id =
            i32::from_be_bytes([frame_body[4], frame_body[5], frame_body[6], frame_body[7]]);
        let mut frame = BytesMut::with_capacity(frame_body.len() + 4);
        let length = i32::try_from(frame_body.len())
            .map_err(|_| Error::InvalidArgument("raw frame longer than i32::MAX".into()))?;
        frame.put_i32(length);
        frame.put_slice(&frame_body);
        let timeout = self.shared.request_timeout;
        tokio::time::timeout(timeout, async {
            let _permit = self.acquire_permit().await?;
            let (receiver, _guard) = self.register(Some(correlation_id))?;
            self.queue_frame(frame.freeze()).await?;
            self.receive(receiver).await
        })
        .await
        .map_err(|_| self.timed_out("raw request".to_owned(), timeout))?
    }

    async fn handshake(&self) -> Result<ApiVersions> {
        let response = self.api_versions_round_trip(API_VERSIONS_FIRST_TRY).await?;
        if response.error_code != UNSUPPORTED_VERSION {
            Error::check(response.error_code, None)?;
            return Ok(ApiVersions::from_response(
                &response,
                API_VERSIONS_FIRST_TRY,
            ));
        }
        // KIP-511: the broker answered in v0 with UNSUPPORTED_VERSION and, if it could, listed
        // its own ApiVersions range; retry with the highest version it supports.
        let fallback = response
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::ApiVersions as i16)
            .map(|k| k.max_version.min(API_VERSIONS_FIRST_TRY))
            .filter(|v| *v >= 0)
            .unwrap_or(0);
        tracing::debug!(addr = %self.shared.addr, fallback, "ApiVersions v3 unsupported, retrying");
        let response = self.api_versions_round_trip(fallback).await?;
        Error::check(response.error_code, None)?;
        Ok(ApiVersions::from_response(&response, fallback))
    }

    async fn api_versions_round_trip(&self, version: i16) -> Result<ApiVersionsResponse> {
        let mut request = ApiVersionsRequest::default();
        if version >= 3 {
            request.client_software_name = StrBytes::from_static_str("strom-client");
            request.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        }
        let mut body = self
            .round_trip(
                ApiKey::ApiVersions,
                version,
                &request,
                self.shared.request_timeout,
            )
            .await?;
        // A broker that does not support the requested version answers with a v0 body (KIP-511);
        // the error code is the first field in every version, so peek at it to pick the layout.
        let answered_version =
            if body.len() >= 2 && i16::from_be_bytes([body[0], body[1]]) == UNSUPPORTED_VERSION {
                0
            } else {
                version
            };
        decode_body::<ApiVersionsResponse>(
            &mut body,
            ApiKey::ApiVersions,
            answered_version,
            &self.shared.addr,
        )
    }

    /// Encodes, sends and awaits one request; returns the response body after its header.
    async fn round_trip<Req: Encodable>(
        &self,
        api: ApiKey,
        version: i16,
        request: &Req,
        timeout: Duration,
    ) -> Result<Bytes> {
        let what = format!("{api:?}");
        let mut frame = tokio::time::timeout(timeout, async {
            let _permit = self.acquire_permit().await?;
            let (receiver, guard) = self.register(None)?;
            let frame = self.encode_frame(api, version, guard.correlation_id, request)?;
            self.queue_frame(frame).await?;
            self.receive(receiver).await
        })
        .await
        .map_err(|_| self.timed_out(what, timeout))??;
        ResponseHeader::decode(&mut frame, api.response_header_version(version)).map_err(|e| {
            Error::decode(
                format!(
                    "{api:?} v{version} response header from {}",
                    self.shared.addr
                ),
                e,
            )
        })?;
        Ok(frame)
    }

    fn timed_out(&self, api: String, timeout: Duration) -> Error {
        Error::RequestTimedOut {
            api,
            addr: self.shared.addr.clone(),
            timeout,
        }
    }

    async fn acquire_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        // The semaphore is never closed, but map the error rather than assume it.
        self.shared
            .in_flight
            .acquire()
            .await
            .map_err(|_| self.closed_error())
    }

    fn next_correlation_id(&self) -> i32 {
        // Kafka correlation ids are non-negative by convention; wrap before overflow.
        self.shared
            .next_correlation_id
            .fetch_add(1, Ordering::Relaxed)
            & i32::MAX
    }

    /// Registers a waiter for a response. With `Some(id)` that exact id is used (raw frames);
    /// otherwise the next free id from the counter.
    fn register(
        &self,
        requested: Option<i32>,
    ) -> Result<(oneshot::Receiver<Bytes>, PendingGuard<'_>)> {
        let (sender, receiver) = oneshot::channel();
        let mut state = lock(&self.shared.state);
        if let Some(reason) = &state.closed {
            return Err(Error::ConnectionClosed {
                addr: self.shared.addr.clone(),
                reason: reason.clone(),
            });
        }
        let correlation_id = match requested {
            Some(id) if state.pending.contains_key(&id) => {
                return Err(Error::InvalidArgument(format!(
                    "correlation id {id} is already in flight on this connection"
                )));
            }
            Some(id) => id,
            None => {
                // A raw frame may have claimed an id the counter reaches; skip over it.
                let mut id = self.next_correlation_id();
                while state.pending.contains_key(&id) {
                    id = self.next_correlation_id();
                }
                id
            }
        };
        state.pending.insert(correlation_id, sender);
        Ok((
            receiver,
            PendingGuard {
                state: &self.shared.state,
                correlation_id,
            },
        ))
    }

    fn encode_frame<Req: Encodable>(
        &self,
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        request: &Req,
    ) -> Result<Bytes> {
        encode_frame(
            api,
            version,
            correlation_id,
            self.shared.client_id.clone(),
            request,
            true,
        )
    }

    async fn queue_frame(&self, frame: Bytes) -> Result<()> {
        self.shared
            .frames
            .send(frame)
            .await
            .map_err(|_| self.closed_error())
    }

    async fn receive(&self, receiver: oneshot::Receiver<Bytes>) -> Result<Bytes> {
        receiver.await.map_err(|_| self.closed_error())
    }

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(self.closed_error())
        } else {
            Ok(())
        }
    }

    fn closed_error(&self) -> Error {
        let reason = lock(&self.shared.state)
            .closed
            .clone()
            .unwrap_or_else(|| "connection closed".to_owned());
        Error::ConnectionClosed {
            addr: self.shared.addr.clone(),
            reason,
        }
    }
}

/// The API key for a request type.
pub(crate) fn api_key_of<R: Request>() -> Result<ApiKey> {
    ApiKey::try_from(R::KEY)
        .map_err(|_| Error::InvalidArgument(format!("unknown API key {}", R::KEY)))
}

/// Encodes a request frame: with `length_prefix`, the 4-byte size first (what goes on the
/// wire); without it, the frame body alone (what [`Connection::send_raw`] takes).
fn encode_frame<Req: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<StrBytes>,
    request: &Req,
    length_prefix: bool,
) -> Result<Bytes> {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = client_id;
    let header_version = api.request_header_version(version);
    let what = || format!("{api:?} v{version} request");
    let size = header
        .compute_size(header_version)
        .and_then(|h| request.compute_size(version).map(|b| h + b))
        .map_err(|e| Error::encode(what(), e))?;
    let size_i32 = i32::try_from(size)
        .map_err(|_| Error::encode(what(), format!("{size} bytes do not fit a frame")))?;
    let mut frame = BytesMut::with_capacity(size + 4);
    if length_prefix {
        frame.put_i32(size_i32);
    }
    header
        .encode(&mut frame, header_version)
        .map_err(|e| Error::encode(what(), e))?;
    request
        .encode(&mut frame, version)
        .map_err(|e| Error::encode(what(), e))?;
    Ok(frame.freeze())
}

/// Decodes a response body and insists every byte was consumed: leftover bytes mean the two
/// sides disagree about the layout, which would otherwise go unnoticed.
fn decode_body<T: Decodable>(body: &mut Bytes, api: ApiKey, version: i16, addr: &str) -> Result<T> {
    let what = || format!("{api:?} v{version} response from {addr}");
    let decoded = T::decode(body, version).map_err(|e| Error::decode(what(), e))?;
    if body.has_remaining() {
        return Err(Error::decode(
            what(),
            format!("{} bytes left over after the response", body.remaining()),
        ));
    }
    Ok(decoded)
}

/// Encodes a complete request frame body (header + request, no length prefix), for building
/// raw frames in tests: e.g. a valid header followed by a truncated body.
pub fn encode_request_frame<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
) -> Result<Bytes> {
    encode_frame(
        api_key_of::<R>()?,
        version,
        correlation_id,
        client_id.map(|c| StrBytes::from_string(c.to_owned())),
        request,
        false,
    )
}

/// Decodes a raw response frame body (as returned by [`Connection::send_raw`] or
/// [`RawConnection::read_frame`]) for request type `R` at `version`.
pub fn decode_response_frame<R: Request>(
    mut frame: Bytes,
    version: i16,
) -> Result<(ResponseHeader, R::Response)> {
    let api = api_key_of::<R>()?;
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))
        .map_err(|e| Error::decode(format!("{api:?} v{version} response header"), e))?;
    let response = decode_body::<R::Response>(&mut frame, api, version, "raw frame")?;
    Ok((header, response))
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut frames: mpsc::Receiver<Bytes>,
    socket: W,
    state: Arc<Mutex<State>>,
    addr: String,
) {
    let mut socket = BufWriter::with_capacity(64 * 1024, socket);
    while let Some(frame) = frames.recv().await {
        let mut result = socket.write_all(&frame).await;
        // Coalesce whatever else is already queued into the same flush.
        while result.is_ok() {
            match frames.try_recv() {
                Ok(frame) => result = socket.write_all(&frame).await,
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = socket.flush().await;
        }
        if let Err(e) = result {
            tracing::debug!(%addr, error = %e, "write failed, closing connection");
            lock(&state).close(format!("write failed: {e}"));
            return;
        }
    }
    // Every handle is gone: close our side politely.
    let _ = socket.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    socket: R,
    state: Arc<Mutex<State>>,
    max_response_bytes: usize,
    addr: String,
) {
    let mut socket = BufReader::with_capacity(64 * 1024, socket);
    let reason = loop {
        let length = match socket.read_i32().await {
            Ok(length) => length,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break "closed by the broker".to_owned();
            }
            Err(e) => break format!("read failed: {e}"),
        };
        // Every response starts with a 4-byte correlation id.
        let Some(length) = usize::try_from(length)
            .ok()
            .filter(|l| (4..=max_response_bytes).contains(l))
        else {
            break format!(
                "protocol violation: response frame length {length} outside 4..={max_response_bytes}"
            );
        };
        let frame = match read_body(&mut socket, length).await {
            Ok(frame) => frame.freeze(),
            Err(e) => break format!("read failed mid-frame: {e}"),
        };
        let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let waiter = lock(&state).pending.remove(&correlation_id);
        match waiter {
            // The waiter may have given up (timeout, cancelled); nothing else to do then.
            Some(waiter) => drop(waiter.send(frame)),
            None => {
                tracing::debug!(%addr, correlation_id, "dropping response nobody waits for");
            }
        }
    };
    tracing::debug!(%addr, %reason, "connection closed");
    lock(&state).close(reason);
}

/// A plain, unpipelined TCP connection for feeding a broker arbitrary bytes and watching what
/// comes back, including whether the broker closes the connection.
pub struct RawConnection {
    addr: String,
    stream: TcpStream,
}

impl RawConnection {
    /// Connects without any handshake.
    pub async fn connect(addr: &str) -> Result<RawConnection> {
        let stream = TcpStream::connect(addr).await.map_err(|e| Error::Connect {
            addr: addr.to_owned(),
            source: Arc::new(e),
        })?;
        stream.set_nodelay(true).map_err(|e| Error::Connect {
            addr: addr.to_owned(),
            source: Arc::new(e),
        })?;
        Ok(RawConnection {
            addr: addr.to_owned(),
            stream,
        })
    }

    /// Writes `bytes` exactly as given (add the length prefix yourself, or don't).
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let result = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        }
        .await;
        result.map_err(|e| Error::ConnectionClosed {
            addr: self.addr.clone(),
            reason: format!("write failed: {e}"),
        })
    }

    /// Writes `frame_body` with a correct 4-byte length prefix.
    pub async fn write_frame(&mut self, frame_body: &[u8]) -> Result<()> {
        let length = i32::try_from(frame_body.len())
            .map_err(|_| Error::InvalidArgument("frame longer than i32::MAX".into()))?;
        let mut frame = Vec::with_capacity(frame_body.len() + 4);
        frame.extend_from_slice(&length.to_be_bytes());
        frame.extend_from_slice(frame_body);
        self.write_all(&frame).await
    }

    /// Reads one length-prefixed frame and returns its body. `Ok(None)` means the broker closed
    /// the connection (cleanly, or with a reset) before a complete frame arrived;
    /// [`Error::Timeout`] means it neither answered nor closed within `timeout`. Frames over
    /// `max_bytes` are an error.
    pub async fn read_frame(
        &mut self,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Option<Bytes>> {
        let read = async {
            let mut length = [0u8; 4];
            if !read_exact_or_closed(&mut self.stream, &mut length).await? {
                return Ok(None);
            }
            let length = i32::from_be_bytes(length);
            let length = usize::try_from(length)
                .ok()
                .filter(|l| *l <= max_bytes)
                .ok_or_else(|| Error::Protocol {
                    addr: self.addr.clone(),
                    reason: format!("frame length {length} outside 0..={max_bytes}"),
                })?;
            let mut body = vec![0u8; length];
            if !read_exact_or_closed(&mut self.stream, &mut body).await? {
                return Ok(None);
            }
            Ok(Some(Bytes::from(body)))
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("a frame from {}", self.addr),
                timeout,
            })?
    }

    /// Reads everything until the broker closes the connection and returns it (at most
    /// [`RawConnection::READ_UNTIL_CLOSED_MAX_BYTES`]). A reset counts as closed.
    /// [`Error::Timeout`] if the connection is still open after `timeout`.
    pub async fn read_until_closed(&mut self, timeout: Duration) -> Result<Bytes> {
        let mut received = Vec::new();
        let read = async {
            let mut chunk = [0u8; 4096];
            loop {
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return Ok(()),
                    Ok(n) => received.extend_from_slice(&chunk[..n]),
                }
                if received.len() > Self::READ_UNTIL_CLOSED_MAX_BYTES {
                    return Err(Error::Protocol {
                        addr: self.addr.clone(),
                        reason: format!(
                            "more than {} bytes without closing",
                            Self::READ_UNTIL_CLOSED_MAX_BYTES
                        ),
                    });
                }
            }
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("{} to close the connection", self.addr),
                timeout,
            })??;
        Ok(Bytes::from(received))
    }

    /// The most [`RawConnection::read_until_closed`] collects.
    pub const READ_UNTIL_CLOSED_MAX_BYTES: usize = 64 * 1024 * 1024;
}

/// `Ok(false)` when the peer closed (EOF or reset) before `buf` was filled.
/// Reads a `length`-byte frame body into fresh, uninitialised capacity. A zeroed buffer would
/// cost a page fault and a page clear for every 4 KiB of every large response: jemalloc serves
/// large zeroed allocations with freshly unmapped pages, and a replica fetcher reads answers of
/// megabytes all the time.
async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    length: usize,
) -> std::io::Result<BytesMut> {
    let mut body = BytesMut::with_capacity(length);
    while body.len() < length {
        let remaining = (length - body.len()) as u64;
        if (&mut *reader).take(remaining).read_buf(&mut body).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(body)
}

async fn read_exact_or_closed(stream: &mut TcpStream, buf: &mut [u8]) -> Result<bool> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(Error::ConnectionClosed {
            addr: "raw connection".to_owned(),
            reason: format!("read failed: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeBroker, FakeConnection, api_versions_response};
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};

    fn config() -> ConnectionConfig {
        ConnectionConfig {
            request_timeout: Duration::from_secs(10),
            ..ConnectionConfig::default()
        }
    }

    #[tokio::test]
    async fn a_frame_body_arrives_in_pieces_and_stops_at_its_length() {
        let (mut writer, mut reader) = tokio::io::duplex(7);
        let sent: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let feeder = {
            let sent = sent.clone();
            tokio::spawn(async move {
                // The body, then the start of the next frame, which must stay unread.
                writer.write_all(&sent).await.expect("write body");
                writer.write_all(b"next").await.expect("write next");
            })
        };
        let body = read_body(&mut reader, sent.len()).await.expect("body");
        assert_eq!(&body[..], &sent[..]);
        let mut next = [0u8; 4];
        reader.read_exact(&mut next).await.expect("next frame");
        assert_eq!(&next, b"next");
        feeder.await.expect("feeder");
    }

    #[tokio::test]
    async fn a_frame_body_cut_short_is_an_error() {
        let mut short: &[u8] = b"only nine";
        let error = read_body(&mut short, 20).await.expect_err("cut short");
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    fn metadata_response(cluster_id: &str) -> MetadataResponse {
        let mut response = MetadataResponse::default();
        response.cluster_id = Some(StrBytes::from_string(cluster_id.to_owned()));
        response
    }

    #[tokio::test]
    async fn handshake_records_ranges_and_send_uses_the_highest_common_version() {
        let broker = FakeBroker::start(|mut conn: FakeConnection| async move {
            let request = conn.read().await.expect("ApiVersions");
            assert_eq!(request.api_key, ApiKey::ApiVersions);
            assert_eq!(request.version, 3);
            let body: ApiVersionsRequest = request.decode();
            assert_eq!(body.client_software_name.as_str(), "strom-client");
            conn.respond(
                &request,
                &api_versions_response(&[(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 1, 9)]),
            )
            .await;
            let request = conn.read().await.expect("Metadata");
            assert_eq!(request.api_key, ApiKey::Metadata);
            assert_eq!(request.version, 9, "highest version both sides support");
            assert_eq!(request.client_id.as_deref(), Some("strom-client"));
            conn.respond(&request, &metadata_response("c1")).await;
        })
        .await;
        let connection = Connection::connect(&broker.addr, &config()).await.unwrap();
        assert_eq!(connection.api_versions().handshake_version(), 3);
        assert_eq!(
            connection.api_versions().get(ApiKey::Metadata),
            Some(VersionRange { min: 1, max: 9 })
        );
        assert_eq!(
            connection.negotiated_version::<MetadataRequest>().unwrap(),
            9
        );
        let response = connection.send(MetadataRequest::default()).await.unwrap();
        assert_eq!(response.cluster_id.as_deref(), Some("c1"));
    }

    /// KIP-511: a broker that does not know ApiVersions v3 answers with a v0 body carrying
    /// UNSUPPORTED_VERSION and its own range; the client retries with that range's maximum.
    #[tokio::test]
    async fn api_versions_falls_back_when_the_broker_answers_unsupported_version() {
        let broker = FakeBroker::start(|mut conn: FakeConnection| async move {
            let request = conn.read().await.expect("first ApiVersions");
            assert_eq!(request.version, 3);
            let mut refusal = api_versions_response(&[(ApiKey::ApiVersions, 0, 2)]);
            refusal.error_code = UNSUPPORTED_VERSION;
            conn.respond_as(&request, 0, &refusal).await;
            let retry = conn.read().await.expect("second ApiVersions");
            assert_eq!(retry.api_key, ApiKey::ApiVersions);
            assert_eq!(retry.version, 2);
            conn.respond(
                &retry,
                &api_versions_response(&[(ApiKey::ApiVersions, 0, 2), (ApiKey::Metadata, 0, 5)]),
            )
            .await;
            // Keep the connection open until the client is done.
            let _ = conn.read().await;
        })
        .await;
        let connection = Connection::connect(&broker.addr, &config()).await.unwrap();
        assert_eq!(connection.api_versions().handshake_version(), 2);
        assert_eq!(
            connection.negotiated_version::<MetadataRequest>().unwrap(),
            5
        );
    }

    #[tokio::test]
    async fn api_versions_falls_back_to_v0_when_the_broker_lists_nothing() {
        let broker = FakeBroker::start(|mut conn: FakeConnection| async move {
            let request = conn.read().await.expect("first ApiVersions");
            let mut refusal = ApiVersionsResponse::default();
            refusal.error_code = UNSUPPORTED_VERSION;
            conn.respond_as(&request, 0, &refusal).await;
            let retry = conn.read().await.expect("second ApiVersions");
            assert_eq!(retry.version, 0);
            conn.respond(&retry, &api_versions_response(&[(ApiKey::Metadata, 0, 1)]))
                .await;
            let _ = conn.read().await;
        })
        .await;
        let connection = Connection::connect(&broker.addr, &config()).await.unwrap();
        assert_eq!(connection.api_versions().handshake_version(), 0);
    }

    #[tokio::test]
    async fn no_common_version_is_an_error_without_sending() {
        let broker = FakeBroker::start(|mut conn: FakeConnection| async move {
            // kafka-protocol's Metadata schema stops at v13; the broker starts at v14.
            conn.handshake(&[(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 14, 20)])
                .await;
            assert!(conn.read().await.is_none(), "no request may be sent");
        })
        .await;
        let connection = Connection::connect(&broker.addr, &config()).await.unwrap();
        let err = connection
            .send(MetadataRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion { .. }), "{err}");
        let err = connection
            .send(kafka_protocol::messages::FetchRequest::default())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("does not support the API"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn pipelined_responses_are_matched_by_correlation_id_not_order() {
        let broker = FakeBroker::start(|mut conn: FakeConnection| async move {
            conn.handshake_all().await;
            let first = conn.read().await.expect("first");
            let second = conn.read().await.expect("second");
            let third = conn.read().await.expect("third");
            let ids = [
                first.correlation_id,
                second.correlation_id,
                third.correlation_id,
            ];
            assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
            // Answer in reverse order; each response names its request's topic.
            for request in [&third, &second, &first] {
                let body: MetadataRequest = request.decode();
                let name = body.topics.unwrap()[0].name.clone().unwrap().0;
                conn.respond(request, &metadata_response(&name)).await;
            }
            let _ = conn.read().await;
        })
        .await;
        let connection = Connection::connect(&broker.addr, &config()).await.unwrap();
        let ask = |name: &'static str| {
            let connection = connection.clone();
            async move {
                let mut request = MetadataRequest::default();
                let mut topic =
                    kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
                topic.name = Some(kafka_protocol::messages::TopicName(
                    StrBytes::from_static_str(name),
                ));
                request.topics = Some(vec![topic]);
                connection.send(request).await
            }
        };
        let (a, b, c) = tokio::join!(ask("a"), ask("b"), ask("c"));
        assert_eq!(a.unwrap().cluster_id.as_deref(), Some("a"));
        assert_eq!(b.unwrap().cluster_id.as_deref(), Some("b"));
        assert_eq!(c.unwrap().cluster_id.as_deref(), Some("c"));
    }

    #[tokio::test]
    async fn a_request_without_answer_times_out_and_the_connection_stays_usable() {
        let broker = FakeBroker::start(|mut conn: FakeConnection| async move {
            conn.handshake_all().await;
            let _ignored = conn.read().await.expect("first request");
            let answered = conn.read().await.expect("second request");
            conn.respond(&answered, &metadata_response("late but fine"))
                .await;
            let _ = conn.read().await;
        })
        .await;
        let connection = Connection::connect(
            &broker.addr,
            &ConnectionConfig {
                request_timeout: Duration::from_millis(200),
                ..ConnectionConfig::default()
            },
        )
        .await
        .unwrap();
        let err = connection
            .send(MetadataRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::RequestTimedOut { .. }), "{err}");
        assert!(err.to_string().contains("Metadata"), "{err}");
        let response = connection.send(MetadataRequest::default()).await.unwrap();
        assert_eq!(response.cluster_id.as_deref(), Some("late but fine"));
    }

    #[tokio::test]
    async fn connection_loss_fails_every_pending_request_and_later_sends() {
        let broker = FakeBroker::start(|mut conn: FakeConnection| async move {
            conn.handshake_all().await;
            let _ = conn.read().await.expect("first");
            let _ = conn.read().await.expect("second");
            // Drop the socket with both requests unanswered.
        })
        .await;
        let connection = Connection::connect(&broker.addr, &config()).await.unwrap();
        let (a, b) = tokio::join!(
            connection.send(MetadataRequest::default()),
            connection.send(MetadataRequest::default())
        );
        for err in [a.unwrap_err(), b.unwrap_err()] {
            assert!(matches!(err, Error::ConnectionClosed { .. }), "{err}");
            assert!(err.to_string().contains("closed by the broker"), "{err}");
        }
        assert!(connection.is_closed());
        let err = connection
            .send(MetadataRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ConnectionClosed { .. }), "{err}");
    }

    #[tokio::test]
    async fn an_oversized_response_frame_closes_the_connection() {
        let broker = FakeBroker::start(|mut conn: FakeConnection| async move {
            conn.handshake_all().await;
            let _ = conn.read().await.expect("request");
            conn.write_raw(&(64 * 1024 * 1024i32).to_be_bytes()).await;
            let _ = conn.read().await;
        })
        .await;
        let connection = Connection::connect(
            &broker.addr,
            &ConnectionConfig {
                max_response_bytes: 1024 * 1024,
                ..config()
            },
        )
        .await
        .unwrap();
        let err = connection
            .send(MetadataRequest::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("protocol violation"), "{err}");
    }

    #[tokio::test]
    async fn leftover_response_bytes_are_a_decode_error() {
        let broker = FakeBroker::start(|mut conn: FakeConnection| async move {
            conn.handshake_all().await;
            let request = conn.read().await.expect("request");
            // A v9 Metadata request answered with a v1 body leaves bytes the client cannot
            // account for... or fails outright; either way it must not pass silently.
            conn.respond_as(&request, 1, &metadata_response("x")).await;
            let _ = conn.read().await;
        })
        .await;
        let connection = Connection::connect(&broker.addr, &config()).await.unwrap();
        let err = connection
            .send_version(MetadataRequest::default(), 12)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{err}");
    }

    #[tokio::test]
    async fn send_raw_returns_the_raw_response_frame() {
        let broker = FakeBroker::start(|mut conn: FakeConnection| async move {
            conn.handshake_all().await;
            let request = conn.read().await.expect("raw request");
            assert_eq!(request.correlation_id, 4242);
            conn.respond(&request, &metadata_response("raw")).await;
            let _ = conn.read().await;
        })
        .await;
        let connection = Connection::connect(&broker.addr, &config()).await.unwrap();
        let frame =
            encode_request_frame(&MetadataRequest::default(), 12, 4242, Some("raw-test")).unwrap();
        let response = connection.send_raw(frame).await.unwrap();
        let (header, body) = decode_response_frame::<MetadataRequest>(response, 12).unwrap();
        assert_eq!(header.correlation_id, 4242);
        assert_eq!(body.cluster_id.as_deref(), Some("raw"));
        let err = connection
            .send_raw(Bytes::from_static(b"short"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }

    #[tokio::test]
    async fn raw_connection_reports_frames_and_closure() {
        let broker = FakeBroker::start(|mut conn: FakeConnection| async move {
            let request = conn.read().await.expect("a frame");
            conn.respond(&request, &api_versions_response(&[])).await;
            // Then garbage arrives and the broker hangs up.
            let _ = conn.read().await;
        })
        .await;
        let mut raw = RawConnection::connect(&broker.addr).await.unwrap();
        let frame = encode_request_frame(&ApiVersionsRequest::default(), 0, 7, None).unwrap();
        raw.write_frame(&frame).await.unwrap();
        let response = raw
            .read_frame(Duration::from_secs(10), 1 << 20)
            .await
            .unwrap()
            .expect("a response frame");
        let (header, _) = decode_response_frame::<ApiVersionsRequest>(response, 0).unwrap();
        assert_eq!(header.correlation_id, 7);
        // A length prefix claiming more than is sent, then nothing: the fake gives up reading
        // only when we close, so instead send an unknown API key the fake cannot parse.
        raw.write_all(&[0, 0, 0, 4, 0x7f, 0x7f, 0, 0])
            .await
            .unwrap();
        let rest = raw
            .read_until_closed(Duration::from_secs(10))
            .await
            .unwrap();
        assert!(rest.is_empty());
        assert!(
            raw.read_frame(Duration::from_secs(10), 1 << 20)
                .await
                .unwrap()
                .is_none()
        );
    }
}
