//! One transactional id's state at its coordinator, and the pure transitions the transaction
//! APIs make on it.
//!
//! Every change goes through two steps, as in Kafka: a `prepare_*` call checks the request
//! against the current state and returns the [`TxnTransition`] to persist (the whole new
//! state, which is exactly what one `__transaction_state` record holds), keeping it as the
//! pending transition; when the record is durable the shell calls
//! [`TransactionMetadata::complete`], which makes it the current state, or
//! [`TransactionMetadata::fail`] when the write failed, which drops it. While a transition is
//! pending every other request gets CONCURRENT_TRANSACTIONS, so at most one write per id is in
//! flight and the log and the memory never disagree about what was decided.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::record::TransactionLogValue;
use crate::state::TransactionState;

/// Kafka's "no producer id" / "no epoch" sentinels.
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// A topic partition taking part in a transaction.
pub type TopicPartition = (String, i32);

/// Why a request cannot proceed; each maps to one Kafka error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnError {
    /// A transition is pending or markers are being written; the client retries.
    ConcurrentTransactions,
    /// The request's epoch is older than the current one: a newer instance took over.
    ProducerFenced,
    /// The producer id does not belong to this transactional id.
    InvalidProducerIdMapping,
    /// The request makes no sense in the current state (commit with nothing open, ...).
    InvalidTxnState,
}

impl TxnError {
    /// The Kafka error code.
    pub fn code(self) -> i16 {
        match self {
            TxnError::ConcurrentTransactions => 51,
            TxnError::ProducerFenced => 90,
            TxnError::InvalidProducerIdMapping => 49,
            TxnError::InvalidTxnState => 48,
        }
    }
}

/// The whole state of a transactional id after a transition: what one `__transaction_state`
/// value records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnTransition {
    pub producer_id: i64,
    /// The producer id before an epoch exhaustion rolled it over (transaction version 2 keeps
    /// it so a retried EndTxn is recognised), or -1.
    pub previous_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, so a client retrying the InitProducerId or EndTxn that
    /// bumped it gets the same answer, or -1.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TransactionState,
    pub partitions: BTreeSet<TopicPartition>,
    /// When the open transaction started (its first partition was added), or -1.
    pub start_ms: i64,
    pub last_update_ms: i64,
    /// 0 or 1: the classic protocol; 2: KIP-890 part 2 (an epoch bump on every EndTxn).
    pub client_transaction_version: i16,
}

impl TxnTransition {
    /// The `__transaction_state` value that records this state.
    pub fn to_record(&self) -> TransactionLogValue {
        // The set is ordered by topic, so each topic's partitions are adjacent.
        let mut partitions: Vec<(String, Vec<i32>)> = Vec::new();
        for (topic, partition) in &self.partitions {
            match partitions.last_mut() {
                Some((last, ids)) if last == topic => ids.push(*partition),
                _ => partitions.push((topic.clone(), vec![*partition])),
            }
        }
        TransactionLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.previous_producer_id,
            // Strom rolls an exhausted id over at InitProducerId, never ahead of time.
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: self.producer_epoch,
            transaction_timeout_ms: self.timeout_ms,
            state: self.state.id(),
            partitions,
            last_update_timestamp_ms: self.last_update_ms,
            start_timestamp_ms: self.start_ms,
            client_transaction_version: self.client_transaction_version,
        }
    }

    /// The state a loaded `__transaction_state` value records. The last epoch is not stored
    /// (Kafka does not store it either): after a reload a retry of the request that bumped the
    /// epoch is fenced, as it would be by Kafka.
    pub fn from_record(value: &TransactionLogValue) -> Result<TxnTransition> {
        let state = TransactionState::from_id(value.state)
            .ok_or_else(|| Error::Corrupt(format!("unknown transaction state {}", value.state)))?;
        Ok(TxnTransition {
            producer_id: value.producer_id,
            previous_producer_id: value.previous_producer_id,
            producer_epoch: value.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms: value.transaction_timeout_ms,
            state,
            partitions: value
                .partitions
                .iter()
                .flat_map(|(topic, ids)| ids.iter().map(move |id| (topic.clone(), *id)))
                .collect(),
            start_ms: value.start_timestamp_ms,
            last_update_ms: value.last_update_timestamp_ms,
            client_transaction_version: value.client_transaction_version,
        })
    }
}

/// What [`TransactionMetadata::prepare_init_producer_id`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Init {
    /// Persist this (state Empty, a new epoch); then answer with its producer id and epoch.
    Ready(TxnTransition),
    /// A transaction was open: persist this abort under a bumped epoch, which fences the old
    /// instance, and answer CONCURRENT_TRANSACTIONS now; the client retries once the abort's
    /// markers are written.
    FenceAndAbort(TxnTransition),
}

/// What [`TransactionMetadata::prepare_end`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Persist this prepare record, then answer and write the markers.
    Write(TxnTransition),
    /// A retry of an EndTxn that already completed: answer success, nothing to do.
    AlreadyDone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub transactional_id: String,
    current: TxnTransition,
    pending: Option<TxnTransition>,
}

impl TransactionMetadata {
    /// A transactional id seen for the first time: a fresh producer id with no epoch yet (the
    /// first InitProducerId makes it 0).
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TransactionMetadata {
            transactional_id: transactional_id.to_string(),
            current: TxnTransition {
                producer_id,
                previous_producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                last_producer_epoch: NO_PRODUCER_EPOCH,
                timeout_ms,
                state: TransactionState::Empty,
                partitions: BTreeSet::new(),
                start_ms: -1,
                last_update_ms: now_ms,
                client_transaction_version: 0,
            },
            pending: None,
        }
    }

    /// The metadata a loaded `__transaction_state` record describes.
    pub fn loaded(transactional_id: &str, state: TxnTransition) -> Self {
        TransactionMetadata {
            transactional_id: transactional_id.to_string(),
            current: state,
            pending: None,
        }
    }

    pub fn current(&self) -> &TxnTransition {
        &self.current
    }

    pub fn state(&self) -> TransactionState {
        self.current.state
    }

    pub fn pending(&self) -> Option<&TxnTransition> {
        self.pending.as_ref()
    }

    /// An open transaction whose timeout has passed, with nothing pending: the coordinator
    /// aborts it ([`Self::prepare_timeout_abort`]).
    pub fn has_timed_out(&self, now_ms: i64) -> bool {
        self.pending.is_none()
            && self.current.state == TransactionState::Ongoing
            && self.current.start_ms + i64::from(self.current.timeout_ms) < now_ms
    }

    /// InitProducerId with this transactional id: a new epoch for the new producer instance.
    /// `next_producer_id` is called only when the epoch is exhausted and the id rolls over.
    pub fn prepare_init_producer_id(
        &mut self,
        now_ms: i64,
        timeout_ms: i32,
        next_producer_id: impl FnOnce() -> i64,
    ) -> std::result::Result<Init, TxnError> {
        if self.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        let state = self.current.state;
        if state.is_idle() {
            let mut next = self.base(now_ms);
            next.timeout_ms = timeout_ms;
            next.state = TransactionState::Empty;
            next.partitions.clear();
            next.start_ms = -1;
            next.last_producer_epoch = self.current.producer_epoch;
            if epoch_exhausted(self.current.producer_epoch) {
                next.previous_producer_id = self.current.producer_id;
                next.producer_id = next_producer_id();
                next.producer_epoch = 0;
                next.last_producer_epoch = NO_PRODUCER_EPOCH;
            } else {
                next.producer_epoch = self.current.producer_epoch + 1;
            }
            return Ok(Init::Ready(self.hold(next)));
        }
        match state {
            TransactionState::Ongoing => {
                let mut next = self.bumped(now_ms);
                next.state = TransactionState::PrepareAbort;
                Ok(Init::FenceAndAbort(self.hold(next)))
            }
            // Markers are being written (or the id is going away): retry shortly.
            _ => Err(TxnError::ConcurrentTransactions),
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's `__consumer_offsets`
    /// partition). `Ok(None)`: every partition is already in the transaction, nothing to write.
    pub fn prepare_add_partitions(
        &mut self,
        now_ms: i64,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> std::result::Result<Option<TxnTransition>, TxnError> {
        self.check_producer(producer_id, producer_epoch)?;
        let state = self.current.state;
        if state.is_preparing() || state == TransactionState::Dead {
            return Err(TxnError::ConcurrentTransactions);
        }
        if state == TransactionState::Ongoing
            && partitions
                .iter()
                .all(|p| self.current.partitions.contains(p))
        {
            return Ok(None);
        }
        let mut next = self.base(now_ms);
        if state != TransactionState::Ongoing {
            next.partitions.clear();
            next.start_ms = now_ms;
        }
        next.state = TransactionState::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        Ok(Some(self.hold(next)))
    }

    /// EndTxn: decide commit or abort. With transaction version 2 the decision also bumps the
    /// epoch (KIP-890 part 2), and an abort is accepted when nothing is open.
    pub fn prepare_end(
        &mut self,
        now_ms: i64,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        transaction_version_2: bool,
    ) -> std::result::Result<End, TxnError> {
        if self.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        if producer_id != self.current.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        let state = self.current.state;
        let retry_of_bumped = transaction_version_2
            && producer_epoch == self.current.last_producer_epoch
            && producer_epoch >= 0;
        if producer_epoch != self.current.producer_epoch && !retry_of_bumped {
            return Err(TxnError::ProducerFenced);
        }
        let done = if commit {
            TransactionState::CompleteCommit
        } else {
            TransactionState::CompleteAbort
        };
        let preparing = if commit {
            TransactionState::PrepareCommit
        } else {
            TransactionState::PrepareAbort
        };
        match state {
            s if s == done => return Ok(End::AlreadyDone),
            s if s == preparing => return Err(TxnError::ConcurrentTransactions),
            TransactionState::Ongoing if !retry_of_bumped => {}
            TransactionState::Empty
            | TransactionState::CompleteCommit
            | TransactionState::CompleteAbort
                if transaction_version_2 && !commit && !retry_of_bumped => {}
            _ => return Err(TxnError::InvalidTxnState),
        }
        let mut next = if transaction_version_2 {
            self.bumped(now_ms)
        } else {
            self.base(now_ms)
        };
        next.state = preparing;
        next.client_transaction_version = if transaction_version_2 { 2 } else { 0 };
        Ok(End::Write(self.hold(next)))
    }

    /// The open transaction passed its timeout: abort it under a bumped epoch, so the
    /// producer that abandoned it is fenced.
    pub fn prepare_timeout_abort(&mut self, now_ms: i64) -> Result<TxnTransition> {
        if let Some(pending) = &self.pending {
            return Err(Error::TransitionPending {
                pending: pending.state,
            });
        }
        if self.current.state != TransactionState::Ongoing {
            return Err(Error::IllegalTransition {
                from: self.current.state,
                to: TransactionState::PrepareAbort,
            });
        }
        let mut next = self.bumped(now_ms);
        next.state = TransactionState::PrepareAbort;
        Ok(self.hold(next))
    }

    /// Every partition has its marker: PrepareCommit becomes CompleteCommit, PrepareAbort
    /// becomes CompleteAbort, and the partitions are forgotten.
    pub fn prepare_complete(&mut self, now_ms: i64) -> Result<TxnTransition> {
        if let Some(pending) = &self.pending {
            return Err(Error::TransitionPending {
                pending: pending.state,
            });
        }
        let done = match self.current.state {
            TransactionState::PrepareCommit => TransactionState::CompleteCommit,
            TransactionState::PrepareAbort => TransactionState::CompleteAbort,
            other => {
                return Err(Error::IllegalTransition {
                    from: other,
                    to: TransactionState::CompleteCommit,
                });
            }
        };
        let mut next = self.base(now_ms);
        next.state = done;
        next.partitions.clear();
        Ok(self.hold(next))
    }

    /// The pending transition's record is durable: it becomes the current state.
    pub fn complete(&mut self, written: &TxnTransition) -> Result<()> {
        match self.pending.take() {
            Some(pending) if &pending == written => {
                self.current = pending;
                Ok(())
            }
            other => {
                self.pending = other;
                Err(Error::UnexpectedCompletion)
            }
        }
    }

    /// The pending transition's write failed: nothing changed.
    pub fn fail(&mut self) {
        self.pending = None;
    }

    fn check_producer(
        &self,
        producer_id: i64,
        producer_epoch: i16,
    ) -> std::result::Result<(), TxnError> {
        if self.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        if producer_id != self.current.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if producer_epoch != self.current.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(())
    }

    /// The current state, stamped `now_ms`: the starting point of every transition.
    fn base(&self, now_ms: i64) -> TxnTransition {
        TxnTransition {
            last_update_ms: now_ms,
            ..self.current.clone()
        }
    }

    /// The current state under the next epoch. An exhausted epoch stays at its maximum: the
    /// next InitProducerId rolls the producer id over.
    fn bumped(&self, now_ms: i64) -> TxnTransition {
        let mut next = self.base(now_ms);
        next.last_producer_epoch = self.current.producer_epoch;
        next.producer_epoch = self.current.producer_epoch.saturating_add(1);
        next
    }

    fn hold(&mut self, next: TxnTransition) -> TxnTransition {
        debug_assert!(
            next.state.can_follow(self.current.state),
            "{} -> {}",
            self.current.state,
            next.state
        );
        self.pending = Some(next.clone());
        next
    }
}

/// Kafka rolls the producer id over one step before the maximum, so the bump that fences an
/// open transaction still has room.
fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

#[cfg(test)]
mod tests;
