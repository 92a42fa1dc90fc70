//! Tests of whole logs and the manager: appends, reads, restarts, recovery from damaged files,
//! injected IO faults, concurrency, retention and compaction against models.

mod aborted;
mod append_read;
mod compacted_transactions;
mod compaction;
mod faults;
mod follower;
mod manager;
mod model;
mod recovery;
mod transactions;

use std::path::Path;

use crate::batch::{self, BatchHeader, Validation};
use crate::testing::{Rec, batch_with};
use crate::{Log, LogConfig, OpenOptions, TopicPartition};

pub(crate) const NOW: i64 = 1_700_000_000_000;

pub(crate) fn tp() -> TopicPartition {
    TopicPartition {
        topic: "orders".to_owned(),
        partition: 0,
    }
}

/// A config with tiny segments and indexes so that tests roll often.
pub(crate) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        segment_index_bytes: 4096,
        message_timestamp_after_max_ms: i64::MAX,
        ..LogConfig::default()
    }
}

pub(crate) fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(
        dir.join("orders-0"),
        tp(),
        config,
        OpenOptions {
            now_ms: NOW,
            ..OpenOptions::default()
        },
    )
    .expect("log opens")
}

/// Reopens after a crash (no close): recovery from `recovery_point`.
pub(crate) fn reopen_unclean(dir: &Path, config: LogConfig, recovery_point: i64) -> Log {
    Log::open(
        dir.join("orders-0"),
        tp(),
        config,
        OpenOptions {
            recovery_point,
            log_start_offset: 0,
            high_watermark: i64::MAX,
            had_clean_shutdown: false,
            now_ms: NOW,
        },
    )
    .expect("log reopens")
}

/// A batch of `count` records with values of `size` bytes and timestamps from `timestamp`.
pub(crate) fn records(count: usize, size: usize, timestamp: i64) -> Vec<u8> {
    let value = vec![b'v'; size];
    let recs: Vec<Rec> = (0..count)
        .map(|i| Rec::kv(format!("k{i}").as_bytes(), &value, timestamp + i as i64))
        .collect();
    batch_with(&recs, |_| {})
}

/// Every batch of the log, read through `Log::read` one fetch at a time.
pub(crate) fn read_all(log: &Log) -> Vec<(BatchHeader, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let read = log.read(offset, 1000, end, true).expect("read");
        assert!(!read.records.is_empty(), "no progress at offset {offset}");
        for b in batch::batches(&read.records, Validation::Stored) {
            let b = b.expect("whole batch");
            let header = batch::validate(b.bytes, Validation::Stored).expect("valid batch");
            offset = header.next_offset();
            out.push((header, b.bytes.to_vec()));
        }
    }
    out
}

/// The (offset, key, value) of every record, in order.
pub(crate) type Kv = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

pub(crate) fn all_records(log: &Log) -> Vec<Kv> {
    let mut out = Vec::new();
    for (header, bytes) in read_all(log) {
        let payload = batch::records_payload(&bytes).expect("payload");
        for record in batch::records(payload.as_slice(), header.records_count) {
            let record = record.expect("record");
            out.push((
                header.base_offset + i64::from(record.offset_delta),
                record.key.map(<[u8]>::to_vec),
                record.value.map(<[u8]>::to_vec),
            ));
        }
    }
    out
}
