//! Reading an internal topic's partition (`__consumer_offsets`, `__transaction_state`) from
//! its log start offset to its log end offset, as the coordinators do when they load it:
//! keyed records with their offsets and, for transactional batches, their producer; and the
//! COMMIT/ABORT markers that end those transactions.

use bytes::Bytes;
use strom_log::batch::{Validation, batches, records, records_payload};
use strom_log::control::parse_marker;

/// Bytes read from the log per step.
const READ_BYTES: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Storage(#[from] strom_log::Error),
    #[error("corrupt batch in the log: {0}")]
    Batch(#[from] strom_log::batch::BatchError),
}

/// What a load reads from the log, in log order.
pub enum Entry {
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

/// Every entry of the log. Blocking file IO: for the blocking pool.
pub fn read_all(log: &strom_log::Log) -> Result<Vec<Entry>, ReadError> {
    let mut entries = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let read = log.read(offset, READ_BYTES, end, true)?;
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
