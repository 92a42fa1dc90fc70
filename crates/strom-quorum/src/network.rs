//! openraft's network over the controller listener protocol ([`crate::rpc`]).
//!
//! One [`RpcClient`] per peer controller, shared by every replication stream to it. A peer
//! that cannot be connected to is `Unreachable` (openraft backs off); a call that fails on the
//! way is a `Network` error (openraft retries); a call that takes longer than openraft's
//! deadline is a `Timeout`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};

use crate::rpc::client::{RpcClient, RpcError};
use crate::rpc::{RpcRequest, RpcResponse};
use crate::types::{ControllerNode, NodeId, Snapshot, TypeConfig, Vote};

/// Creates (and caches) a client per peer.
#[derive(Clone, Default)]
pub struct Network {
    clients: Arc<Mutex<HashMap<String, Arc<RpcClient>>>>,
    /// When each peer last answered an AppendEntries (replication or heartbeat), in wall-clock
    /// milliseconds: DescribeQuorum's last fetch time of a voter.
    contacts: Arc<Mutex<HashMap<NodeId, i64>>>,
}

impl Network {
    /// The shared client of the controller listening at `address`.
    pub fn client(&self, address: &str) -> Arc<RpcClient> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            clients
                .entry(address.to_string())
                .or_insert_with(|| Arc::new(RpcClient::new(address))),
        )
    }
}

impl Network {
    /// When `node` last answered an AppendEntries from this node, if ever.
    pub fn last_contact_ms(&self, node: NodeId) -> Option<i64> {
        self.contacts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node)
            .copied()
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &ControllerNode) -> Peer {
        Peer {
            target,
            node: node.clone(),
            client: self.client(&node.address),
            contacts: Arc::clone(&self.contacts),
        }
    }
}

/// The connection to one peer, as openraft's replication and election use it.
pub struct Peer {
    target: NodeId,
    node: ControllerNode,
    client: Arc<RpcClient>,
    contacts: Arc<Mutex<HashMap<NodeId, i64>>>,
}

type RaftRpcError<E = openraft::error::Infallible> =
    RPCError<NodeId, ControllerNode, RaftError<NodeId, E>>;

impl Peer {
    fn transport_error<E: std::error::Error>(
        &self,
        e: RpcError,
    ) -> RPCError<NodeId, ControllerNode, E> {
        if e.is_unreachable() {
            RPCError::Unreachable(Unreachable::new(&e))
        } else {
            RPCError::Network(NetworkError::new(&e))
        }
    }

    fn unexpected<E: std::error::Error>(
        &self,
        response: RpcResponse,
    ) -> RPCError<NodeId, ControllerNode, E> {
        let e = std::io::Error::other(format!(
            "unexpected response from {}: {response:?}",
            self.node
        ));
        RPCError::Network(NetworkError::new(&e))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RaftRpcError> {
        let request = RpcRequest::AppendEntries(rpc);
        let (response, _) = self
            .client
            .call(&request, &[], option.hard_ttl())
            .await
            .map_err(|e| self.transport_error(e))?;
        match response {
            RpcResponse::AppendEntries(Ok(r)) => {
                self.contacts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(self.target, crate::wall_clock_ms());
                Ok(r)
            }
            RpcResponse::AppendEntries(Err(e)) => Err(RPCError::RemoteError(
                RemoteError::new_with_node(self.target, self.node.clone(), e),
            )),
            other => Err(self.unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RaftRpcError> {
        let request = RpcRequest::Vote(rpc);
        let (response, _) = self
            .client
            .call(&request, &[], option.hard_ttl())
            .await
            .map_err(|e| self.transport_error(e))?;
        match response {
            RpcResponse::Vote(Ok(r)) => Ok(r),
            RpcResponse::Vote(Err(e)) => Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))),
            other => Err(self.unexpected(other)),
        }
    }

    /// Sends the whole snapshot in one frame: metadata snapshots are small enough, and one
    /// message needs no reassembly on the receiving side.
    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let request = RpcRequest::InstallSnapshot {
            vote,
            meta: snapshot.meta.clone(),
        };
        let call = self
            .client
            .call(&request, &snapshot.snapshot, option.hard_ttl());
        let response = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            response = call => response,
        };
        let (response, _) = response.map_err(|e| {
            if e.is_unreachable() {
                StreamingError::Unreachable(Unreachable::new(&e))
            } else {
                StreamingError::Network(NetworkError::new(&e))
            }
        })?;
        match response {
            RpcResponse::InstallSnapshot(Ok(r)) => Ok(r),
            RpcResponse::InstallSnapshot(Err(e)) => Err(StreamingError::RemoteError(
                RemoteError::new_with_node(self.target, self.node.clone(), e),
            )),
            other => {
                let e = std::io::Error::other(format!(
                    "unexpected response from {}: {other:?}",
                    self.node
                ));
                Err(StreamingError::Network(NetworkError::new(&e)))
            }
        }
    }
}
