//! Loading a `__transaction_state` partition: replay every record of its log, from the log
//! start offset to the log end offset, into the coordinator.

use std::sync::Arc;

use strom_log::TopicPartition;
use strom_txn::Coordinator;

use super::TRANSACTION_STATE_TOPIC;
use crate::internal_log::{Entry, ReadError, read_all};
use crate::state::BrokerState;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the partition is not hosted here or its log is offline")]
    NoLog,
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("the coordinator refused a record: {0}")]
    Coordinator(#[from] strom_txn::Error),
    #[error("load task failed")]
    Task,
}

/// Replays partition `index` into `coordinator` (after `load_partition`); returns the number
/// of records replayed. The caller calls `finish_load`.
pub async fn load(
    coordinator: &mut Coordinator,
    state: &Arc<BrokerState>,
    index: i32,
) -> Result<usize, LoadError> {
    let tp = TopicPartition {
        topic: TRANSACTION_STATE_TOPIC.to_string(),
        partition: index,
    };
    let partition = state.partition(&tp).ok_or(LoadError::NoLog)?;
    let log = Arc::clone(&partition.log);
    // Read on a blocking thread; a compacted log of transaction states is small.
    let entries = tokio::task::spawn_blocking(move || read_all(&log))
        .await
        .map_err(|_| LoadError::Task)??;
    let mut count = 0;
    for entry in &entries {
        // The coordinator writes plain batches only: no markers, no transactional records.
        if let Entry::Record { key, value, .. } = entry {
            coordinator.replay(index, key, value.as_deref())?;
            count += 1;
        }
    }
    Ok(count)
}
