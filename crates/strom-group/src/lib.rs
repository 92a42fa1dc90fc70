//! Strom's consumer group coordinator: Kafka's classic group protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup) and offset storage (OffsetCommit, OffsetFetch, OffsetDelete,
//! ListGroups, DescribeGroups, DeleteGroups) as a pure state machine.
//!
//! [`Coordinator`] owns the groups of the `__consumer_offsets` partitions this broker leads.
//! It does no IO and reads no clock: the broker's IO shell passes `now_ms` into every call,
//! appends the [`Write`]s it returns to `__consumer_offsets`, reports each write's outcome
//! back ([`Coordinator::write_completed`] / [`Coordinator::write_failed`]), sends the
//! responses in [`Output::responses`], and calls [`Coordinator::poll`] at
//! [`Coordinator::next_deadline`]. `docs/groups.md` describes the state machine, the
//! durability rule and how to drive it.
//!
//! Modules: [`api`] (requests, responses, [`Output`]), [`coordinator`] (the state machine),
//! [`group`] (one group's data), [`record`] (the `__consumer_offsets` byte format),
//! [`codes`] (Kafka error codes), [`partition`] (group to partition), [`config`].

pub mod api;
pub mod codes;
pub mod config;
pub mod coordinator;
pub mod error;
pub mod group;
mod ids;
pub mod offsets;
pub mod partition;
pub mod record;
mod timer;

pub use api::*;
pub use codes::ErrorCode;
pub use config::Config;
pub use coordinator::{Coordinator, GroupSummary, MemberSummary, PartitionStatus};
pub use error::{Error, Result};
pub use group::GroupState;
pub use offsets::OffsetAndMetadata;
pub use partition::partition_for_group;
