//! The crate's error type.
//!
//! These are errors in how the shell drives the coordinator (calling `replay` on a partition
//! that is not loading, completing writes out of order) or in the bytes it replays. A Kafka
//! error code for a client is never an [`Error`]: it travels inside the response structs.

/// Everything that can go wrong when driving the coordinator or decoding its records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The configuration is inconsistent (for example a minimum above its maximum).
    #[error("invalid coordinator configuration: {0}")]
    InvalidConfig(String),

    /// The partition number is outside `0..offsets.topic.num.partitions`.
    #[error("__consumer_offsets partition {partition} is outside 0..{partitions}")]
    InvalidPartition { partition: i32, partitions: i32 },

    /// `load_partition` was called for a partition that is already loading or loaded.
    #[error("__consumer_offsets partition {0} is already owned by this coordinator")]
    PartitionAlreadyOwned(i32),

    /// `replay` or `finish_load` was called for a partition that is not loading.
    #[error("__consumer_offsets partition {0} is not loading")]
    PartitionNotLoading(i32),

    /// A write was reported complete or failed while an older write of the same partition is
    /// still pending. Writes of one partition must be resolved in the order they were issued.
    #[error(
        "write {write} on __consumer_offsets partition {partition} resolved out of order: \
         write {oldest} is older and still pending"
    )]
    WriteOutOfOrder {
        write: u64,
        oldest: u64,
        partition: i32,
    },

    /// A record key or value could not be decoded.
    #[error("corrupt {what}: {reason}")]
    CorruptRecord { what: &'static str, reason: String },

    /// A record key or value carries a version this crate does not know.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion { what: &'static str, version: i16 },

    /// The record type is one of Kafka's newer group records (consumer or share groups,
    /// KIP-848/KIP-932) that Strom does not implement. The shell may skip such records.
    #[error("unsupported __consumer_offsets record type {0}")]
    UnsupportedRecordType(i16),

    /// A record names a group that hashes to a different `__consumer_offsets` partition than
    /// the one being replayed; the offsets topic was probably created with another
    /// partition count.
    #[error(
        "record for group {group_id:?} replayed on partition {replayed}, but the group belongs to partition {expected}"
    )]
    WrongPartition {
        group_id: String,
        replayed: i32,
        expected: i32,
    },

    /// A record decodes but describes an impossible group (for example members without a
    /// protocol, or two members with one group instance id).
    #[error("invalid group metadata record for group {group_id:?}: {reason}")]
    InvalidGroupRecord { group_id: String, reason: String },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
