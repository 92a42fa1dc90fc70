//! The Strom broker: the IO shell around the storage engine, the metadata model and the group
//! coordinator.
//!
//! - [`server`]: start (data directory, metadata, listener, logs) and clean shutdown.
//! - [`connection`]: frames in, ordered responses out, per client connection.
//! - [`handlers`]: one module per Kafka API, registered with its versions.
//! - [`state`]: what handlers share; metadata changes are requests to the active controller
//!   ([`state::BrokerState::controller_call`]), through the node's part in the metadata quorum
//!   (`strom-quorum`).
//! - [`replica_manager`]: follows published metadata images and owns the hosted partitions:
//!   become leader, keep a replica it does not lead, stop and delete a replica that moved away.
//! - [`lifecycle`]: registration with the controller, heartbeats, fencing, controlled shutdown.
//! - [`partition`]: a hosted partition's high watermark, fetch wake-ups and acks=all group commit.
//! - [`config`]: validated broker properties and per-topic log configuration.
//! - [`errors`]: the one place domain errors become Kafka error codes.

pub mod config;
pub mod config_entries;
pub mod connection;
pub mod errors;
pub mod groups;
pub mod handlers;
pub mod internal_log;
pub mod lifecycle;
pub mod metrics;
pub mod partition;
pub mod replica_manager;
pub mod replication;
pub mod security;
pub mod server;
pub mod state;
pub mod topics;
pub mod txn;

pub use config::BrokerConfig;

/// jemalloc is the global allocator of every process that links the broker, for a safety
/// reason as much as for speed. The kafka-protocol codec sizes arrays with
/// `Vec::with_capacity(n)` from the length a client sent, before decoding one element; a frame
/// of a dozen bytes can declare billions of elements. The system allocator cannot map that
/// much and aborts the process. jemalloc maps large regions with MAP_NORESERVE where the kernel
/// overcommits (Linux's default, `vm.overcommit_memory` 0 or 1), so the request costs address
/// space only; the decode then fails on the missing bytes, the connection is closed and the
/// mapping released. `tests/protocol.rs` sends such frames. Upstream tracks the codec fix
/// (kafka-protocol-rs pull requests 152, 161 and 200).
#[global_allocator]
static GLOBAL_ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
pub use server::{Broker, NodeListeners, StartError};

/// Wall-clock milliseconds since the Unix epoch: Kafka's timestamp unit.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
