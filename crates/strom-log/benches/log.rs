//! Storage-engine throughput: appends of realistic ~16 KiB batches (100 B and 1 KiB records)
//! to one partition and to several, appends with an fsync each (acks=all on one node), and
//! fetch reads of 1 MiB. The log is kept below ~512 MiB by retention run outside the timed
//! sections, so the numbers are appends to the page cache, like a broker's.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strom_log::testing::sized_batch;
use strom_log::{Log, LogConfig, OpenOptions, TopicPartition};

const NOW: i64 = 1_700_000_000_000;
const BATCH_TARGET_BYTES: usize = 16 * 1024;
/// Retention bound between timed chunks, over all partitions of a benchmark.
const RETAINED_BYTES: i64 = 512 * 1024 * 1024;

fn config(retention_bytes: i64) -> LogConfig {
    LogConfig {
        segment_bytes: 32 * 1024 * 1024,
        retention_bytes,
        retention_ms: -1,
        message_timestamp_after_max_ms: i64::MAX,
        ..LogConfig::default()
    }
}

/// A log keeping about `RETAINED_BYTES / partitions`, so that runs with more partitions keep
/// the same amount of data (and dirty page cache) in total.
fn open_log(dir: &std::path::Path, partition: i32, partitions: i32) -> Log {
    Log::open(
        dir.join(format!("bench-{partition}")),
        TopicPartition {
            topic: "bench".to_owned(),
            partition,
        },
        config(RETAINED_BYTES / i64::from(partitions)),
        OpenOptions {
            now_ms: NOW,
            ..OpenOptions::default()
        },
    )
    .expect("log opens")
}

/// A batch of about 16 KiB of `record_bytes`-byte values.
fn batch(record_bytes: usize) -> Vec<u8> {
    let count = (BATCH_TARGET_BYTES / (record_bytes + 12)).max(1);
    sized_batch(count, record_bytes, NOW)
}

fn trim(log: &Log) {
    log.update_high_watermark(log.log_end_offset());
    log.enforce_retention(NOW).expect("retention");
}

/// Times `iters` appends spread over `logs` round-robin, trimming outside the timer.
fn timed_appends(logs: &[Log], batch: &[u8], iters: u64, fsync: bool) -> Duration {
    let mut total = Duration::ZERO;
    let chunk = 4096u64;
    let mut done = 0;
    while done < iters {
        let n = chunk.min(iters - done);
        let start = Instant::now();
        for i in 0..n {
            let log = &logs[(done + i) as usize % logs.len()];
            black_box(log.append_as_leader(batch, 0, NOW).expect("append"));
            if fsync {
                log.flush().expect("flush");
            }
        }
        total += start.elapsed();
        done += n;
        for log in logs {
            trim(log);
        }
    }
    total
}

fn appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (name, record_bytes, partitions, fsync) in [
        ("100B_records_1_partition", 100, 1, false),
        ("1KiB_records_1_partition", 1024, 1, false),
        ("1KiB_records_8_partitions", 1024, 8, false),
        ("1KiB_records_1_partition_fsync_each", 1024, 1, true),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs: Vec<Log> = (0..partitions)
            .map(|p| open_log(dir.path(), p, partitions))
            .collect();
        let batch = batch(record_bytes);
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| timed_appends(&logs, &batch, iters, fsync));
        });
    }
    group.finish();
}

fn reads(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open_log(dir.path(), 0, 1);
    let batch = batch(1024);
    // About 256 MiB across four segments, all in the page cache.
    for _ in 0..(256 * 1024 * 1024 / batch.len()) {
        log.append_as_leader(&batch, 0, NOW).expect("append");
    }
    log.update_high_watermark(log.log_end_offset());
    let end = log.log_end_offset();
    let fetch_bytes = 1024 * 1024;
    group.throughput(Throughput::Bytes(fetch_bytes as u64));
    group.bench_function("1MiB_fetches_sequential", |b| {
        let mut offset = 0;
        b.iter(|| {
            let read = log.read(offset, fetch_bytes, end, true).expect("read");
            let header = strom_log::batch::batch_headers(&read.records)
                .last()
                .map(|(_, h)| h.next_offset());
            offset = match header {
                Some(next) if next < end => next,
                _ => 0,
            };
            black_box(read.records.len())
        });
    });
    group.bench_function("1MiB_fetches_random_offsets", |b| {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        b.iter(|| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let offset = (state % end as u64) as i64;
            black_box(
                log.read(offset, fetch_bytes, end, true)
                    .expect("read")
                    .records
                    .len(),
            )
        });
    });
    group.finish();
}

criterion_group!(benches, appends, reads);
criterion_main!(benches);
