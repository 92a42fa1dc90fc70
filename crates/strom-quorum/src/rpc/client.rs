//! A client of one peer's controller listener: connects lazily, multiplexes concurrent calls
//! over one connection by correlation id, and reconnects after any connection error.
//!
//! Every call is bounded by its timeout. A call whose connection breaks fails at once (the
//! reader task fails every pending call), so a caller never waits on a dead socket.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex, oneshot};

use super::frame::{Frame, FrameError, read_frame, write_frame};
use super::{RpcRequest, RpcResponse};

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("{address}: {source}")]
    Frame { address: String, source: FrameError },
    #[error("{address} closed the connection")]
    Closed { address: String },
    #[error("{address} did not answer within {timeout:?}")]
    Timeout { address: String, timeout: Duration },
}

impl RpcError {
    /// The peer could not be reached at all (as opposed to a call that failed on the way).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RpcError::Connect { .. })
    }
}

type Pending = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Frame>>>>;

struct Connection {
    writer: Mutex<OwnedWriteHalf>,
    pending: Pending,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A client of one peer, cheap to share (`Arc`).
pub struct RpcClient {
    address: String,
    next_id: AtomicU64,
    connection: Mutex<Option<Arc<Connection>>>,
    /// Whether the last connection attempt succeeded: a peer that goes down or comes back is
    /// logged once, not at every retry.
    reachable: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("address", &self.address)
            .finish()
    }
}

impl RpcClient {
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            next_id: AtomicU64::new(1),
            connection: Mutex::new(None),
            reachable: std::sync::atomic::AtomicBool::new(true),
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `request` (with `body`, usually empty) and waits for its response.
    pub async fn call(
        &self,
        request: &RpcRequest,
        body: &[u8],
        timeout: Duration,
    ) -> Result<(RpcResponse, Bytes), RpcError> {
        let address = self.address.clone();
        let work = async {
            let connection = self.connection().await?;
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let frame = Frame::encode(id, request, body).map_err(|source| RpcError::Frame {
                address: address.clone(),
                source,
            })?;
            let (tx, rx) = oneshot::channel();
            lock(&connection.pending).insert(id, tx);
            // Removes the entry however the call ends (answered, failed or timed out).
            let _registered = Registered {
                pending: &connection.pending,
                id,
            };
            let written = {
                let mut writer = connection.writer.lock().await;
                write_frame(&mut *writer, &frame).await
            };
            if let Err(e) = written {
                self.drop_connection(&connection).await;
                return Err(RpcError::Frame {
                    address: address.clone(),
                    source: e.into(),
                });
            }
            let Ok(frame) = rx.await else {
                self.drop_connection(&connection).await;
                return Err(RpcError::Closed {
                    address: address.clone(),
                });
            };
            let response = frame
                .message::<RpcResponse>()
                .map_err(|source| RpcError::Frame {
                    address: address.clone(),
                    source,
                })?;
            Ok((response, frame.body))
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(RpcError::Timeout { address, timeout }),
        }
    }

    async fn connection(&self) -> Result<Arc<Connection>, RpcError> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.reader.is_finished()
        {
            return Ok(Arc::clone(c));
        }
        let stream = match TcpStream::connect(&self.address).await {
            Ok(stream) => {
                if !self.reachable.swap(true, Ordering::Relaxed) {
                    tracing::info!(peer = %self.address, "controller listener reachable again");
                }
                stream
            }
            Err(source) => {
                if self.reachable.swap(false, Ordering::Relaxed) {
                    tracing::warn!(peer = %self.address, error = %source, "cannot reach a controller listener; retrying");
                }
                return Err(RpcError::Connect {
                    address: self.address.clone(),
                    source,
                });
            }
        };
        let _ = stream.set_nodelay(true);
        let (mut read_half, write_half) = stream.into_split();
        let pending: Pending = Arc::default();
        let reader_pending = Arc::clone(&pending);
        let reader = tokio::spawn(async move {
            while let Ok(Some(frame)) = read_frame(&mut read_half).await {
                if let Some(tx) = lock(&reader_pending).remove(&frame.correlation_id) {
                    let _ = tx.send(frame);
                }
            }
            // The connection is gone: dropping the senders fails every pending call.
            lock(&reader_pending).clear();
        });
        let connection = Arc::new(Connection {
            writer: Mutex::new(write_half),
            pending,
            reader,
        });
        *slot = Some(Arc::clone(&connection));
        Ok(connection)
    }

    async fn drop_connection(&self, broken: &Arc<Connection>) {
        let mut slot = self.connection.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, broken)) {
            *slot = None;
        }
    }
}

struct Registered<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.id);
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
