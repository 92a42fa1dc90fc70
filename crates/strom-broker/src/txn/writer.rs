//! One writer task per `__transaction_state` partition: appends the coordinator's records in
//! the order they were issued, waits until the in-sync replicas have them, and reports each
//! outcome in that same order (the coordinator applies a transition only once it is durable).
//!
//! Writes that queue up while an append is in progress go out together: one batch per write,
//! one append, one wait.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use strom_log::batch::{BatchFields, build_batch, encode_record};
use strom_txn::WriteId;
use tokio::sync::mpsc;

use super::{Event, TRANSACTION_STATE_TOPIC};
use crate::state::BrokerState;

const WRITE_QUEUE: usize = 256;
const WRITES_PER_APPEND: usize = 64;
/// How long a transaction state write may wait to be committed before it fails (the
/// coordinator then answers the client with the error, and the client retries).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Write {
    id: WriteId,
    key: Bytes,
    value: Option<Bytes>,
}

impl From<strom_txn::Write> for Write {
    fn from(write: strom_txn::Write) -> Self {
        Write {
            id: write.id,
            key: write.key,
            value: write.value,
        }
    }
}

pub fn spawn(
    state: Weak<BrokerState>,
    partition: i32,
    events: mpsc::UnboundedSender<Event>,
) -> mpsc::Sender<Write> {
    let (sender, mut receiver) = mpsc::channel::<Write>(WRITE_QUEUE);
    tokio::spawn(async move {
        let mut writes = Vec::with_capacity(WRITES_PER_APPEND);
        while receiver.recv_many(&mut writes, WRITES_PER_APPEND).await > 0 {
            let outcome = match state.upgrade() {
                Some(state) => append(&state, partition, &writes).await,
                None => Err(ResponseError::NotCoordinator.code()),
            };
            for write in writes.drain(..) {
                let report = Event::WriteDone {
                    write_id: write.id,
                    outcome,
                };
                if events.send(report).is_err() {
                    return;
                }
            }
        }
    });
    sender
}

/// Appends the writes, one batch each, in one append; then waits until they are committed.
/// All succeed or all fail. A failure the client can retry elsewhere is NOT_COORDINATOR.
async fn append(state: &Arc<BrokerState>, index: i32, writes: &[Write]) -> Result<(), i16> {
    let image = state.image();
    let partition = crate::errors::led_partition(state, &image, TRANSACTION_STATE_TOPIC, index)
        .map_err(|_| ResponseError::NotCoordinator.code())?;
    let now = crate::now_ms();
    let mut batches = BytesMut::new();
    for write in writes {
        let batch = encode(&write.key, write.value.as_deref(), now)
            .map_err(|_| ResponseError::UnknownServerError.code())?;
        batches.extend_from_slice(&batch);
    }
    let batches = batches.freeze();
    let appending = Arc::clone(&partition);
    let appended = tokio::task::spawn_blocking(move || {
        appending.append_as_leader(&batches, true, now)
    })
    .await
    .map_err(|_| ResponseError::UnknownServerError.code())?
    .map_err(|e| {
        tracing::warn!(partition = index, error = %e.message, "cannot append transaction state");
        coordinator_error(e.code())
    })?;
    partition
        .wait_committed(&appended, state.config.fsync_acks_all, COMMIT_TIMEOUT)
        .await
        .map_err(|e| {
            tracing::warn!(partition = index, error = %e.message, "transaction state appended but not committed");
            coordinator_error(e.code())
        })
}

/// Kafka's coordinator answers a failed state write with NOT_COORDINATOR when leadership
/// moved and COORDINATOR_NOT_AVAILABLE otherwise: both make the client look up the
/// coordinator again and retry.
fn coordinator_error(code: i16) -> i16 {
    if code == ResponseError::NotLeaderOrFollower.code() {
        ResponseError::NotCoordinator.code()
    } else {
        ResponseError::CoordinatorNotAvailable.code()
    }
}

/// One uncompressed batch with one record, timestamped `now_ms`.
fn encode(
    key: &[u8],
    value: Option<&[u8]>,
    now_ms: i64,
) -> Result<Bytes, strom_log::batch::BatchError> {
    let mut payload = Vec::new();
    encode_record(&mut payload, 0, 0, Some(key), value, &[0]);
    let fields = BatchFields {
        base_offset: 0,
        partition_leader_epoch: -1,
        attributes: 0,
        last_offset_delta: 0,
        base_timestamp: now_ms,
        max_timestamp: now_ms,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records_count: 1,
    };
    build_batch(&fields, &payload).map(BytesMut::freeze)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_one_valid_batch_with_its_key_and_value() {
        let batch = encode(b"txn-1", Some(b"state"), 99).unwrap();
        let header =
            strom_log::batch::validate(&batch, strom_log::batch::Validation::Produce).unwrap();
        assert_eq!(header.records_count, 1);
        let payload = strom_log::batch::records_payload(&batch).unwrap();
        let record = strom_log::batch::records(payload.as_slice(), 1)
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(record.key, Some(&b"txn-1"[..]));
        assert_eq!(record.value, Some(&b"state"[..]));
        let tombstone = encode(b"txn-1", None, 99).unwrap();
        let payload = strom_log::batch::records_payload(&tombstone).unwrap();
        let record = strom_log::batch::records(payload.as_slice(), 1)
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(record.value, None);
    }

    #[test]
    fn a_lost_leadership_tells_the_client_to_find_the_coordinator_again() {
        assert_eq!(
            coordinator_error(ResponseError::NotLeaderOrFollower.code()),
            ResponseError::NotCoordinator.code()
        );
        assert_eq!(
            coordinator_error(ResponseError::NotEnoughReplicas.code()),
            ResponseError::CoordinatorNotAvailable.code()
        );
    }
}
