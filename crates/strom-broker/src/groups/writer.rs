//! One writer task per `__consumer_offsets` partition: appends the coordinator's writes in the
//! order they were issued and reports each outcome in that same order.
//!
//! Writes that queue up while an append is in progress are appended together (one batch per
//! write, one `pwrite` for all) and share one fsync, the group commit of offset commits.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use strom_group::WriteId;
use strom_log::TopicPartition;
use strom_log::batch::{BatchFields, build_batch, encode_record};
use tokio::sync::mpsc;

use super::WriteDone;
use crate::state::BrokerState;

/// Writes queued per partition before the coordinator waits.
const WRITE_QUEUE: usize = 256;
/// Writes appended together at most.
const WRITES_PER_APPEND: usize = 64;
/// How long a group write may wait to be committed (replicated to the in-sync replicas, and
/// fsynced when the leader is the only one) before it fails.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Write {
    id: WriteId,
    records: Vec<strom_group::Record>,
}

impl From<strom_group::Write> for Write {
    fn from(write: strom_group::Write) -> Self {
        Write {
            id: write.id,
            records: write.records,
        }
    }
}

pub fn spawn(
    state: Weak<BrokerState>,
    partition: i32,
    done: mpsc::UnboundedSender<WriteDone>,
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
                let report = WriteDone {
                    partition,
                    write_id: write.id,
                    outcome,
                };
                if done.send(report).is_err() {
                    return;
                }
            }
        }
    });
    sender
}

/// Appends the writes as consecutive batches in one append, then waits until they are durable
/// when acks=all implies fsync. All succeed or all fail.
async fn append(state: &Arc<BrokerState>, index: i32, writes: &[Write]) -> Result<(), i16> {
    let tp = TopicPartition {
        topic: strom_cluster::CONSUMER_OFFSETS_TOPIC.to_string(),
        partition: index,
    };
    let image = state.image();
    let partition =
        crate::errors::led_partition(state, &image, &tp.topic, index).map_err(|e| e.code())?;
    let now = crate::now_ms();
    let mut batches = BytesMut::new();
    for write in writes {
        batches.extend_from_slice(
            &encode(&write.records, now).map_err(|_| ResponseError::UnknownServerError.code())?,
        );
    }
    let batches = batches.freeze();
    let appended_bytes = batches.len();
    let appending = Arc::clone(&partition);
    // Group records are acks=all writes, as Kafka's coordinator makes them: a commit is
    // acknowledged once every in-sync replica has it.
    let appended =
        tokio::task::spawn_blocking(move || appending.append_as_leader(&batches, true, now))
            .await
            .map_err(|_| ResponseError::UnknownServerError.code())?
            .map_err(|e| {
                tracing::warn!(partition = %tp, error = %e.message, "cannot append group records");
                e.code()
            })?;
    let traffic = &partition.traffic;
    traffic
        .bytes_in
        .fetch_add(appended_bytes as u64, std::sync::atomic::Ordering::Relaxed);
    traffic.records_in.fetch_add(
        appended.info.record_count as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    partition
        .wait_committed(&appended, state.config.fsync_acks_all, COMMIT_TIMEOUT)
        .await
        .map_err(|e| {
            tracing::warn!(partition = %tp, error = %e.message, "group records were appended but not committed");
            e.code()
        })
}

/// One uncompressed batch holding a write's records, timestamped `now_ms`.
fn encode(
    records: &[strom_group::Record],
    now_ms: i64,
) -> Result<Bytes, strom_log::batch::BatchError> {
    let mut payload = Vec::new();
    for (i, record) in records.iter().enumerate() {
        encode_record(
            &mut payload,
            0,
            i as i32,
            Some(&record.key),
            record.value.as_deref(),
            &[0],
        );
    }
    let count = records.len() as i32;
    let fields = BatchFields {
        base_offset: 0,
        partition_leader_epoch: -1,
        attributes: 0,
        last_offset_delta: count - 1,
        base_timestamp: now_ms,
        max_timestamp: now_ms,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records_count: count,
    };
    build_batch(&fields, &payload).map(BytesMut::freeze)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_writes_are_valid_batches_with_keys_and_tombstones() {
        let records = vec![
            strom_group::Record {
                key: Bytes::from_static(b"k1"),
                value: Some(Bytes::from_static(b"v1")),
            },
            strom_group::Record {
                key: Bytes::from_static(b"k2"),
                value: None,
            },
        ];
        let batch = encode(&records, 1234).unwrap();
        let header =
            strom_log::batch::validate(&batch, strom_log::batch::Validation::Produce).unwrap();
        assert_eq!(header.records_count, 2);
        assert_eq!(header.max_timestamp, 1234);
        let payload = strom_log::batch::records_payload(&batch).unwrap();
        let decoded: Vec<_> = strom_log::batch::records(payload.as_slice(), 2)
            .map(Result::unwrap)
            .collect();
        assert_eq!(decoded[0].key, Some(&b"k1"[..]));
        assert_eq!(decoded[0].value, Some(&b"v1"[..]));
        assert_eq!(decoded[1].value, None);
        assert_eq!(decoded[1].offset_delta, 1);
    }
}
