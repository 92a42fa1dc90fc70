//! What can go wrong inside the transaction coordinator's pure core.

use crate::state::TransactionState;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    #[error("corrupt __transaction_state record: {0}")]
    Corrupt(String),
    /// A transition the state table forbids; a bug in the caller, or a log that does not
    /// follow Kafka's rules. The metadata is left as it was.
    #[error("illegal transaction state transition from {from} to {to}")]
    IllegalTransition {
        from: TransactionState,
        to: TransactionState,
    },
    /// A transition was prepared while another is still waiting for its write.
    #[error("a transition to {pending} is still waiting for its write")]
    TransitionPending { pending: TransactionState },
    /// A write completed that does not match the pending transition.
    #[error("the completed write does not match the pending transition")]
    UnexpectedCompletion,
}

pub type Result<T> = std::result::Result<T, Error>;
