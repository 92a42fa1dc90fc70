//! The controller listener: accepts peers, reads request frames and answers each through an
//! [`RpcHandler`], concurrently, matching responses to requests by correlation id.
//!
//! A malformed frame closes the connection (the peer is broken or not a Strom node); a
//! request whose header does not decode gets [`RpcResponse::Refused`].

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Semaphore, watch};
use tokio::task::JoinSet;

use super::frame::{Frame, read_frame, write_frame};
use super::{RpcRequest, RpcResponse};

/// Requests one connection may have in progress; more wait (backpressure on the peer).
const IN_FLIGHT_PER_CONNECTION: usize = 64;

/// What serves requests: the node's Raft instance and its controller.
pub trait RpcHandler: Send + Sync + 'static {
    fn handle(&self, request: RpcRequest, body: Bytes) -> BoxFuture<'static, (RpcResponse, Bytes)>;
}

/// Serves `listener` until `shutdown` turns true; then closes every connection.
pub async fn serve(
    listener: TcpListener,
    handler: Arc<dyn RpcHandler>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "controller connection accepted");
                    connections.spawn(serve_connection(stream, Arc::clone(&handler)));
                }
                Err(e) => tracing::warn!(error = %e, "controller listener accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = crate::stopped(&mut shutdown) => break,
        }
    }
    connections.shutdown().await;
}

async fn serve_connection(stream: TcpStream, handler: Arc<dyn RpcHandler>) {
    let _ = stream.set_nodelay(true);
    let (mut reader, writer) = stream.into_split();
    let writer = Arc::new(Mutex::new(writer));
    let limit = Arc::new(Semaphore::new(IN_FLIGHT_PER_CONNECTION));
    let mut requests = JoinSet::new();
    loop {
        let frame = match read_frame(&mut reader).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "closing controller connection");
                break;
            }
        };
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            break;
        };
        let handler = Arc::clone(&handler);
        let writer = Arc::clone(&writer);
        requests.spawn(async move {
            let (response, body) = match frame.message::<RpcRequest>() {
                Ok(request) => handler.handle(request, frame.body).await,
                Err(e) => (
                    RpcResponse::Refused(format!("cannot decode request: {e}")),
                    Bytes::new(),
                ),
            };
            match Frame::encode(frame.correlation_id, &response, &body) {
                Ok(bytes) => {
                    let mut writer = writer.lock().await;
                    if let Err(e) = write_frame(&mut *writer, &bytes).await {
                        tracing::debug!(error = %e, "cannot write controller response");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot encode controller response"),
            }
            drop(permit);
        });
        while requests.try_join_next().is_some() {}
    }
    requests.shutdown().await;
}
