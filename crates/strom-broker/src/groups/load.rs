//! Loading a `__consumer_offsets` partition: replay every record of its log into the
//! coordinator, from the log start offset to the log end offset, in log order.
//!
//! Records of transactional batches (TxnOffsetCommit) are replayed as pending for the batch's
//! producer, and control batches end those transactions, so the coordinator rebuilds which
//! transactional offsets are committed, dropped or still open.

use std::sync::Arc;

use strom_group::Coordinator;
use strom_log::TopicPartition;

use crate::internal_log::{Entry, ReadError, read_all};
use crate::state::BrokerState;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the partition is not hosted here or its log is offline")]
    NoLog,
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("the coordinator refused a record: {0}")]
    Coordinator(#[from] strom_group::Error),
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
        topic: strom_cluster::CONSUMER_OFFSETS_TOPIC.to_string(),
        partition: index,
    };
    let partition = state.partition(&tp).ok_or(LoadError::NoLog)?;
    coordinator.load_partition(index)?;
    let log = Arc::clone(&partition.log);
    // Read on a blocking thread; the records are small (a compacted log of group state).
    let entries = tokio::task::spawn_blocking(move || read_all(&log))
        .await
        .map_err(|_| LoadError::Task)??;
    let count = entries.len();
    for entry in entries {
        let replayed = match entry {
            Entry::Record {
                offset,
                producer_id: None,
                key,
                value,
            } => coordinator.replay(index, offset, &key, value.as_deref()),
            Entry::Record {
                offset,
                producer_id: Some(producer_id),
                key,
                value,
            } => {
                coordinator.replay_transactional(index, offset, producer_id, &key, value.as_deref())
            }
            Entry::Marker {
                producer_id,
                commit,
            } => coordinator.replay_marker(index, producer_id, commit),
        };
        match replayed {
            Ok(()) => {}
            // Records of features Strom does not implement (transactions, KIP-848 groups) are
            // skipped, as the coordinator documents.
            Err(strom_group::Error::UnsupportedRecordType(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(count)
}
