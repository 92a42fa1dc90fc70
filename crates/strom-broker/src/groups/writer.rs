//! One writer task per `__consumer_offsets` partition: appends the coordinator's writes in the
//! order they were issued and reports each outcome, with the log offset of the write's first
//! record, in that same order.
//!
//! Writes that queue up while an append is in progress are appended together (one batch per
//! write, one `pwrite` for all) and share one fsync, the group commit of offset commits. A
//! transactional write (TxnOffsetCommit) is a batch of its producer and goes through the
//! coordinator append path on its own; the ordinary writes before and after it form separate
//! appends, so the queue stays in issue order.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use strom_group::{ProducerIdAndEpoch, WriteId};
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
    /// Set for a transactional write.
    producer: Option<ProducerIdAndEpoch>,
}

impl From<strom_group::Write> for Write {
    fn from(write: strom_group::Write) -> Self {
        Write {
            id: write.id,
            records: write.records,
            producer: write.producer,
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
            for run in appends(&writes, |write| write.producer.is_some()) {
                let outcomes = match state.upgrade() {
                    Some(state) => append_run(&state, partition, run).await,
                    None => vec![Err(ResponseError::NotCoordinator.code()); run.len()],
                };
                for (write, outcome) in run.iter().zip(outcomes) {
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
            writes.clear();
        }
    });
    sender
}

/// Splits queued writes into appends, in order: each `alone` write (a transactional one) by
/// itself, the writes between them together.
fn appends<T>(writes: &[T], alone: impl Fn(&T) -> bool) -> Vec<&[T]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for (i, write) in writes.iter().enumerate() {
        if alone(write) {
            if start < i {
                runs.push(&writes[start..i]);
            }
            runs.push(&writes[i..=i]);
            start = i + 1;
        }
    }
    if start < writes.len() {
        runs.push(&writes[start..]);
    }
    runs
}

/// One append of consecutive writes; each write's outcome is the log offset of its first
/// record. All succeed or all fail.
async fn append_run(state: &Arc<BrokerState>, index: i32, run: &[Write]) -> Vec<Result<i64, i16>> {
    match append(state, index, run).await {
        Ok(first_offset) => {
            // One batch per write, at consecutive offsets.
            let mut offset = first_offset;
            run.iter()
                .map(|write| {
                    let base = offset;
                    offset += write.records.len() as i64;
                    Ok(base)
                })
                .collect()
        }
        Err(code) => vec![Err(code); run.len()],
    }
}

/// Appends the writes as consecutive batches in one append, then waits until they are durable
/// when acks=all implies fsync. Returns the log offset of the first record. A transactional
/// write comes alone (see [`appends`]).
async fn append(state: &Arc<BrokerState>, index: i32, writes: &[Write]) -> Result<i64, i16> {
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
            &encode(&write.records, write.producer, now)
                .map_err(|_| ResponseError::UnknownServerError.code())?,
        );
    }
    let batches = batches.freeze();
    let appended_bytes = batches.len();
    let appending = Arc::clone(&partition);
    let transactional = writes.iter().any(|write| write.producer.is_some());
    // Group records are acks=all writes, as Kafka's coordinator makes them: a commit is
    // acknowledged once every in-sync replica has it. A transactional batch carries no
    // sequence numbers, so it skips the idempotent producer's sequence checks.
    let appended = tokio::task::spawn_blocking(move || {
        if transactional {
            appending.append_as_coordinator(&batches, now)
        } else {
            appending.append_as_leader(&batches, true, now)
        }
    })
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
        })?;
    Ok(appended.info.first_offset)
}

/// Attribute bit 4 of a record batch: the batch belongs to a transaction.
const TRANSACTIONAL_ATTRIBUTE: i16 = 0x10;

/// One uncompressed batch holding a write's records, timestamped `now_ms`. With a producer it
/// is a transactional batch of that producer; its base sequence stays -1, as in Kafka's
/// coordinator-written batches, since no client retries it.
fn encode(
    records: &[strom_group::Record],
    producer: Option<ProducerIdAndEpoch>,
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
        attributes: if producer.is_some() {
            TRANSACTIONAL_ATTRIBUTE
        } else {
            0
        },
        last_offset_delta: count - 1,
        base_timestamp: now_ms,
        max_timestamp: now_ms,
        producer_id: producer.map_or(-1, |p| p.producer_id),
        producer_epoch: producer.map_or(-1, |p| p.producer_epoch),
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
        let batch = encode(&records, None, 1234).unwrap();
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
        assert!(!header.is_transactional());
        assert_eq!(header.producer_id, -1);
    }

    #[test]
    fn a_transactional_write_is_a_batch_of_its_producer_without_sequence() {
        let records = vec![strom_group::Record {
            key: Bytes::from_static(b"k1"),
            value: Some(Bytes::from_static(b"v1")),
        }];
        let producer = ProducerIdAndEpoch {
            producer_id: 4_000,
            producer_epoch: 7,
        };
        let batch = encode(&records, Some(producer), 1234).unwrap();
        let header =
            strom_log::batch::validate(&batch, strom_log::batch::Validation::Produce).unwrap();
        assert!(header.is_transactional());
        assert!(!header.is_control());
        assert_eq!(header.attributes, TRANSACTIONAL_ATTRIBUTE);
        assert_eq!(header.producer_id, 4_000);
        assert_eq!(header.producer_epoch, 7);
        assert_eq!(header.base_sequence, -1);
        assert_eq!(header.records_count, 1);
    }

    #[test]
    fn transactional_writes_are_appended_alone_and_in_order() {
        // (write id, transactional)
        let writes = [(1, false), (2, false), (3, true), (4, true), (5, false)];
        let runs: Vec<Vec<u64>> = appends(&writes, |w| w.1)
            .into_iter()
            .map(|run| run.iter().map(|w| w.0).collect())
            .collect();
        assert_eq!(runs, vec![vec![1, 2], vec![3], vec![4], vec![5]]);
    }
}
