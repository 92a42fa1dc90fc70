//! The metadata quorum: the Raft-replicated metadata log (on `openraft`), the active
//! controller that writes to it, and the publisher that hands each committed image to the rest
//! of the node.
//!
//! ```text
//!  broker handlers ──ControllerRequest──▶ active controller (on the Raft leader)
//!                                             │ decide (strom_cluster::controller, pure)
//!                                             ▼
//!                                    raft.client_write(records)
//!                                             │ replicated to a majority, committed
//!                                             ▼
//!        every voter: state machine applies ──▶ publisher: watch<Arc<MetadataImage>>
//!                                                     │
//!                                                     ▼
//!                                          replica manager, handlers, metrics
//! ```

pub mod controller;
pub mod network;
pub mod node;
pub mod observer;
pub mod rpc;
pub mod storage;
pub mod types;

pub use controller::client::ControllerClient;
pub use controller::messages::{
    ControllerError, ControllerReply, ControllerRequest, ControllerResponse,
};
pub use node::{QuorumConfig, QuorumError, QuorumNode, QuorumStatus};
pub use types::TypeConfig;

/// Completes when `shutdown` turns true (or its sender is gone). Returns nothing, so the
/// watch's borrow never lives across an await.
pub async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Wall-clock milliseconds since the Unix epoch: what DescribeQuorum's timestamps are in.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
