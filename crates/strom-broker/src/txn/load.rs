//! Loading a `__transaction_state` partition: replay every record of its log, from the log
//! start offset to the log end offset, into the coordinator.

use std::sync::Arc;

use bytes::Bytes;
use strom_log::TopicPartition;
use strom_log::batch::{Validation, batches, records, records_payload};
use strom_txn::Coordinator;

use super::TRANSACTION_STATE_TOPIC;
use crate::state::BrokerState;

/// Bytes read from the log per step of a load.
const LOAD_READ_BYTES: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the partition is not hosted here or its log is offline")]
    NoLog,
    #[error(transparent)]
    Storage(#[from] strom_log::Error),
    #[error("corrupt batch in the log: {0}")]
    Batch(#[from] strom_log::batch::BatchError),
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
    for (key, value) in &entries {
        coordinator.replay(index, key, value.as_deref())?;
    }
    Ok(entries.len())
}

type Entry = (Bytes, Option<Bytes>);

fn read_all(log: &strom_log::Log) -> Result<Vec<Entry>, LoadError> {
    let mut entries = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let read = log.read(offset, LOAD_READ_BYTES, end, true)?;
        if read.records.is_empty() {
            break;
        }
        for batch in batches(&read.records, Validation::Stored) {
            let batch = batch?;
            offset = batch.header.next_offset();
            let payload = records_payload(batch.bytes)?;
            for record in records(payload.as_slice(), batch.header.records_count) {
                let record = record?;
                let Some(key) = record.key else { continue };
                entries.push((
                    Bytes::copy_from_slice(key),
                    record.value.map(Bytes::copy_from_slice),
                ));
            }
        }
    }
    Ok(entries)
}
