//! Strom's transaction coordinator (KIP-98, with KIP-890's fixes), as a pure state machine in
//! the style of `strom-group`: no IO, no clock; the broker's shell passes `now_ms` in, appends
//! what the coordinator asks to `__transaction_state`, and sends the markers it asks for.
//!
//! The pieces:
//! - [`state`]: the transaction states and which transitions Kafka allows between them;
//! - [`metadata`]: one transactional id's metadata and the pure transitions the APIs make on it
//!   (InitProducerId's epoch bump and fencing, AddPartitionsToTxn, EndTxn, marker completion,
//!   timeout abort), each prepared first and applied only once its record is durable;
//! - [`record`]: the `__transaction_state` record format, Kafka's own;
//! - [`coordinator`]: every id of the partitions this broker leads: routing, loading and
//!   unloading partitions, held responses, markers to send, timeouts, expiry, describe/list.
//!
//! The broker's shell (`strom-broker/src/txn`) does the IO; `docs/transactions.md` has the
//! design and its status.

pub mod coordinator;
pub mod error;
pub mod metadata;
pub mod record;
pub mod state;

pub use coordinator::{
    Coordinator, Markers, Output, Producer, RequestId, Response, Write, WriteId,
};
pub use error::{Error, Result};
pub use metadata::{TransactionMetadata, TxnTransition};
pub use state::TransactionState;
