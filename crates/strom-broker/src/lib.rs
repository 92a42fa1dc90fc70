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

/// jemalloc is the global allocator of every process that links the broker. It was first
/// chosen as a guard as much as for speed: the kafka-protocol codec reserves
/// `Vec::with_capacity(n)` for a count read from the wire, and jemalloc's lazily mapped regions
/// made such a reservation cost address space only. `strom_protocol::body` now refuses those
/// counts before the codec sees them, under any overcommit setting (docs/architecture.md,
/// "Hostile bytes"; `tests/hostile_bytes.rs` checks it under an address-space cap).
#[global_allocator]
static GLOBAL_ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
pub use server::{Broker, NodeListeners, StartError};

/// Wall-clock milliseconds since the Unix epoch: Kafka's timestamp unit.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
