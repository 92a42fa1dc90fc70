//! DescribeTransactions and ListTransactions.

use super::*;

/// One transactional id, as DescribeTransactions reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub transactional_id: String,
    pub error: i16,
    pub state: Option<TransactionState>,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub start_ms: i64,
    pub partitions: Vec<TopicPartition>,
}

impl Coordinator {
    /// DescribeTransactions.
    pub fn describe(&self, ids: &[String]) -> Vec<Described> {
        ids.iter()
            .map(|id| {
                let mut d = Described {
                    transactional_id: id.clone(),
                    error: codes::NONE,
                    state: None,
                    producer_id: -1,
                    producer_epoch: -1,
                    timeout_ms: 0,
                    start_ms: -1,
                    partitions: Vec::new(),
                };
                match (self.check_owner(id), self.transactions.get(id)) {
                    (Err(code), _) => d.error = code,
                    (Ok(_), None) => d.error = codes::TRANSACTIONAL_ID_NOT_FOUND,
                    (Ok(_), Some(txn)) => {
                        let c = txn.current();
                        d.state = Some(c.state);
                        d.producer_id = c.producer_id;
                        d.producer_epoch = c.producer_epoch;
                        d.timeout_ms = c.timeout_ms;
                        d.start_ms = c.start_ms;
                        d.partitions = c.partitions.iter().cloned().collect();
                    }
                }
                d
            })
            .collect()
    }

    /// ListTransactions: (id, producer id, state) of every id this broker coordinates,
    /// filtered by state and producer id when the filters are not empty, sorted by id.
    pub fn list(
        &self,
        states: &[TransactionState],
        producer_ids: &[i64],
    ) -> Vec<(String, i64, TransactionState)> {
        let mut listed: Vec<_> = self
            .transactions
            .iter()
            .filter(|(id, _)| self.check_owner(id).is_ok())
            .map(|(id, txn)| (id.clone(), txn.current().producer_id, txn.state()))
            .filter(|(_, pid, state)| {
                (states.is_empty() || states.contains(state))
                    && (producer_ids.is_empty() || producer_ids.contains(pid))
            })
            .collect();
        listed.sort();
        listed
    }
}
