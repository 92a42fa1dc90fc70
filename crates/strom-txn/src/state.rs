//! The states of a transaction at its coordinator, and which transitions are legal.
//!
//! ```text
//!            AddPartitions / AddOffsets
//!   Empty ─────────────────────────────► Ongoing ◄──┐ (more partitions)
//!     ▲  ▲                                │  │  └───┘
//!     │  │                      EndTxn    │  │  EndTxn(abort), timeout
//!     │  │                    (commit)    ▼  ▼
//!     │  │                 PrepareCommit  PrepareAbort ◄── PrepareEpochFence ◄── Ongoing
//!     │  │                       │           │               (InitProducerId while a
//!     │  │      markers written  ▼           ▼                transaction is open)
//!     │  └──────────────── CompleteCommit  CompleteAbort
//!     └────────────────────────────┴───────────┘  (InitProducerId; Dead on expiry)
//! ```
//!
//! With transaction version 2 (KIP-890 part 2) a client that is unsure of the server's state
//! may send an abort from Empty, CompleteCommit or CompleteAbort, so those may also move to
//! PrepareAbort. The ids are the status byte Kafka stores in `__transaction_state`, and the
//! names are what DescribeTransactions and ListTransactions report.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransactionState {
    /// No transaction open; the producer id and epoch are assigned.
    Empty,
    /// Partitions (or the group's offsets) were added; records may be written.
    Ongoing,
    /// The commit is decided and durable; markers are being written.
    PrepareCommit,
    /// The abort is decided and durable; markers are being written.
    PrepareAbort,
    /// Every partition has its COMMIT marker.
    CompleteCommit,
    /// Every partition has its ABORT marker.
    CompleteAbort,
    /// The transactional id expired and is being removed.
    Dead,
    /// A new producer instance arrived while a transaction was open: the epoch is bumped to
    /// fence the old instance, then the transaction is aborted.
    PrepareEpochFence,
}

impl TransactionState {
    pub const ALL: [TransactionState; 8] = [
        TransactionState::Empty,
        TransactionState::Ongoing,
        TransactionState::PrepareCommit,
        TransactionState::PrepareAbort,
        TransactionState::CompleteCommit,
        TransactionState::CompleteAbort,
        TransactionState::Dead,
        TransactionState::PrepareEpochFence,
    ];

    /// The status byte stored in a `__transaction_state` value.
    pub fn id(self) -> u8 {
        match self {
            TransactionState::Empty => 0,
            TransactionState::Ongoing => 1,
            TransactionState::PrepareCommit => 2,
            TransactionState::PrepareAbort => 3,
            TransactionState::CompleteCommit => 4,
            TransactionState::CompleteAbort => 5,
            TransactionState::Dead => 6,
            TransactionState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: u8) -> Option<TransactionState> {
        TransactionState::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The name DescribeTransactions and ListTransactions report (and ListTransactions
    /// filters by).
    pub fn name(self) -> &'static str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::Dead => "Dead",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TransactionState> {
        TransactionState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether a transition from `from` into `self` is legal.
    pub fn can_follow(self, from: TransactionState) -> bool {
        use TransactionState::*;
        match self {
            Empty => matches!(from, Empty | CompleteCommit | CompleteAbort),
            Ongoing => matches!(from, Ongoing | Empty | CompleteCommit | CompleteAbort),
            PrepareCommit => from == Ongoing,
            // Empty and the Complete states only with transaction version 2; the caller
            // checks the version, the table allows what any version allows.
            PrepareAbort => matches!(
                from,
                Ongoing | PrepareEpochFence | Empty | CompleteCommit | CompleteAbort
            ),
            CompleteCommit => from == PrepareCommit,
            CompleteAbort => from == PrepareAbort,
            Dead => matches!(from, Empty | CompleteCommit | CompleteAbort),
            PrepareEpochFence => from == Ongoing,
        }
    }

    /// No transaction is open: the id may expire (`transactional.id.expiration.ms`) and a new
    /// transaction may start.
    pub fn is_idle(self) -> bool {
        matches!(
            self,
            TransactionState::Empty
                | TransactionState::CompleteCommit
                | TransactionState::CompleteAbort
        )
    }

    /// The decision is made and markers are (or must be) on their way: requests other than a
    /// retry of the same EndTxn get CONCURRENT_TRANSACTIONS until they are written.
    pub fn is_preparing(self) -> bool {
        matches!(
            self,
            TransactionState::PrepareCommit
                | TransactionState::PrepareAbort
                | TransactionState::PrepareEpochFence
        )
    }
}

impl fmt::Display for TransactionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::TransactionState::{self, *};

    #[test]
    fn ids_and_names_round_trip_and_match_kafkas() {
        let expected = [
            (Empty, 0, "Empty"),
            (Ongoing, 1, "Ongoing"),
            (PrepareCommit, 2, "PrepareCommit"),
            (PrepareAbort, 3, "PrepareAbort"),
            (CompleteCommit, 4, "CompleteCommit"),
            (CompleteAbort, 5, "CompleteAbort"),
            (Dead, 6, "Dead"),
            (PrepareEpochFence, 7, "PrepareEpochFence"),
        ];
        for (state, id, name) in expected {
            assert_eq!(state.id(), id);
            assert_eq!(state.name(), name);
            assert_eq!(TransactionState::from_id(id), Some(state));
            assert_eq!(TransactionState::from_name(name), Some(state));
        }
        assert_eq!(TransactionState::from_id(8), None);
        assert_eq!(TransactionState::from_name("ongoing"), None);
    }

    #[test]
    fn the_transition_table_is_kafkas() {
        let legal: &[(TransactionState, &[TransactionState])] = &[
            (Empty, &[Empty, CompleteCommit, CompleteAbort]),
            (Ongoing, &[Ongoing, Empty, CompleteCommit, CompleteAbort]),
            (PrepareCommit, &[Ongoing]),
            (
                PrepareAbort,
                &[
                    Ongoing,
                    PrepareEpochFence,
                    Empty,
                    CompleteCommit,
                    CompleteAbort,
                ],
            ),
            (CompleteCommit, &[PrepareCommit]),
            (CompleteAbort, &[PrepareAbort]),
            (Dead, &[Empty, CompleteCommit, CompleteAbort]),
            (PrepareEpochFence, &[Ongoing]),
        ];
        for (to, froms) in legal {
            for from in TransactionState::ALL {
                assert_eq!(to.can_follow(from), froms.contains(&from), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn nothing_leaves_dead_and_prepared_states_only_complete() {
        for to in TransactionState::ALL {
            assert!(!to.can_follow(Dead), "Dead -> {to}");
        }
        let after_prepare_commit: Vec<_> = TransactionState::ALL
            .into_iter()
            .filter(|to| to.can_follow(PrepareCommit))
            .collect();
        assert_eq!(after_prepare_commit, vec![CompleteCommit]);
    }
}
