//! Partition replication, Kafka's model: followers fetch from the leader with the Fetch API;
//! the leader tracks their progress, advances the high watermark to what every in-sync replica
//! has, and asks the controller to shrink or expand the in-sync replicas.
//!
//! - [`leader`]: the leader's replica state (pure: follower progress, high watermark, ISR
//!   proposals), tested with an injected clock.
//! - [`truncation`]: where a new follower truncates, by leader epoch (pure).
//! - [`fetcher`]: one fetcher task per source broker, batching the partitions this broker
//!   follows on it.
//! - [`isr`]: sends the leader's ISR proposals to the controller (AlterPartition).

pub mod fetcher;
pub mod isr;
pub mod leader;
pub mod truncation;
