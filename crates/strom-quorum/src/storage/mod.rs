//! The metadata log's storage for openraft: the log store (entries, vote, committed and purged
//! log ids) and the state machine (the metadata image and its snapshots), both on local files
//! in one directory (`<data dir>/metadata/raft`).
//!
//! ```text
//!          openraft
//!     append/vote │            │ apply(committed entries)
//!                 ▼            ▼
//!            LogStore     StateMachine ──watch<Arc<MetadataImage>>──▶ the node
//!          (log_store)   (state_machine)
//!           │      │            │ build / install
//!  LogIndex ◀┘      └▶ writer    ▼
//!  (memory,          thread   SnapshotStore ──▶ `snapshot` + SharedSnapshot
//!   LogReader)        │
//!                     ▼
//!       entries.log, vote, committed, purged
//! ```
//!
//! Both follow openraft's `RaftLogStorage` / `RaftStateMachine` contracts (their "To ensure
//! correctness" sections) and pass its conformance suite (`tests/storage_suite.rs`). The
//! snapshot format helpers ([`encode_snapshot`], [`decode_snapshot`]) and the read handles
//! ([`LogReader`], [`SharedSnapshot`]) are public so the leader can serve the log to observers
//! and broker-only nodes can apply it without a Raft instance.
//!
//! Files in the directory: `entries.log`, `vote`, `committed`, `purged` (format on
//! [`LogStore`]) and `snapshot` (format on [`encode_snapshot`]).

mod frame;
mod log_index;
mod log_store;
mod snapshot;
mod state_machine;
mod writer;

pub use log_index::LogReader;
pub use log_store::LogStore;
pub use snapshot::{
    DecodedSnapshot, SharedSnapshot, SnapshotError, decode_snapshot, encode_snapshot,
};
pub use state_machine::{ApplyStats, SnapshotBuilder, StateMachine};
