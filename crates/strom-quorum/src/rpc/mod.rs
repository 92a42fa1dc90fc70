//! The controller listener's protocol: Raft between controllers, requests from brokers to the
//! active controller, and metadata fetches by broker-only nodes, multiplexed over one
//! connection per peer ([`frame`] has the byte layout).

pub mod client;
pub mod frame;
pub mod server;

use openraft::error::{Fatal, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::controller::messages::{ControllerError, ControllerRequest, ControllerResponse};
use crate::observer::{FetchRequest, FetchResponse};
use crate::types::{NodeId, SnapshotMeta, TypeConfig, Vote};

/// What a peer asks.
#[derive(Debug, Serialize, Deserialize)]
pub enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    /// A whole snapshot; its data is the frame's body.
    InstallSnapshot {
        vote: Vote,
        meta: SnapshotMeta,
    },
    Controller(ControllerRequest),
    /// A broker-only node reads the committed metadata log (KRaft's observers).
    FetchMetadata(FetchRequest),
}

/// The answer to an [`RpcRequest`], of the same kind.
#[derive(Debug, Serialize, Deserialize)]
pub enum RpcResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<SnapshotResponse<NodeId>, Fatal<NodeId>>),
    Controller(Result<ControllerResponse, ControllerError>),
    /// A snapshot's data, when the fetch returns one, is the frame's body.
    FetchMetadata(Result<FetchResponse, ControllerError>),
    /// The node cannot serve this kind of request (it is not a controller, or is stopping).
    Refused(String),
}
