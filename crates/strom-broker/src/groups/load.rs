//! Loading a `__consumer_offsets` partition: replay every record of its log into the
//! coordinator, from the log start offset to the log end offset, in log order.
//!
//! Records of transactional batches (TxnOffsetCommit) are replayed as pending for the batch's
//! producer, and control batches end those transactions, so the coordinator rebuilds which
//! transactional offsets are committed, dropped or still open.

use std::sync::Arc;

use bytes::Bytes;
use strom_group::Coordinator;
use strom_log::TopicPartition;
use strom_log::batch::{Validation, batches, records, records_payload};
use strom_log::control::parse_marker;

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

/// What the load reads from the log.
enum Entry {
    /// A keyed record at log offset `offset`; `producer_id` is set when its batch is
    /// transactional.
    Record {
        offset: i64,
        producer_id: Option<i64>,
        key: Bytes,
        value: Option<Bytes>,
    },
    /// A COMMIT or ABORT marker of a producer.
    Marker { producer_id: i64, commit: bool },
}

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
            if batch.header.is_control() {
                // Control records other than markers carry nothing for the coordinator.
                if let Some(marker) = parse_marker(batch.bytes, &batch.header)? {
                    entries.push(Entry::Marker {
                        producer_id: batch.header.producer_id,
                        commit: marker.commit,
                    });
                }
                continue;
            }
            let producer_id = batch
                .header
                .is_transactional()
                .then_some(batch.header.producer_id);
            let payload = records_payload(batch.bytes)?;
            for record in records(payload.as_slice(), batch.header.records_count) {
                let record = record?;
                let Some(key) = record.key else { continue };
                entries.push(Entry::Record {
                    offset: batch.header.base_offset + i64::from(record.offset_delta),
                    producer_id,
                    key: Bytes::copy_from_slice(key),
                    value: record.value.map(Bytes::copy_from_slice),
                });
            }
        }
    }
    Ok(entries)
}
