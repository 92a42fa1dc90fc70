//! `strom bench produce|consume`: load generators in the spirit of Kafka's
//! `kafka-producer-perf-test` and `kafka-consumer-perf-test`. They report numbers; they never
//! judge them.
//!
//! Produce: one payload of `--record-size` random bytes (seeded) is built once and shared by
//! every record (`Bytes` is reference counted), as is the topic name, so the send loop
//! allocates nothing per record; deliveries wait in a preallocated ring of at most
//! [`IN_FLIGHT_RECORDS_MAX`]. A record's latency runs from just before `send` to when its
//! batch's acknowledgement is seen. Acknowledgements are retired in send order, so a record
//! acknowledged behind a slower one is counted when that one completes: latencies can be
//! overstated by that, never understated. `--throughput` paces sends against the ideal
//! schedule `start + n / throughput` (catching up after a stall, like Kafka's throttler).
//!
//! Consume: fetches every partition from the beginning or the end at its leader until
//! `--num-records` were read, counting key and value bytes.
//!
//! Both print a progress line to stderr once per second and a summary to stdout (JSON with
//! `--json`). Latencies go into an HdrHistogram in microseconds.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use serde_json::json;
use strom_client::kafka_protocol::ResponseError;
use strom_client::{
    Acks, Client, Compression, Delivery, Error as ClientError, FetchOptions, OffsetSpec,
    ProducerConfig, ProducerRecord, TopicPartition,
};
use tokio::time::Instant;

use crate::common::{ConnectArgs, interrupted, outln, print_json, runtime, usage};
use crate::produce_cmd::{parse_acks, parse_compression};

/// Acknowledgements awaited at once; sending waits for the oldest beyond this.
const IN_FLIGHT_RECORDS_MAX: usize = 65_536;
/// How often a progress line is printed.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// The largest latency the histogram tells apart (one hour, in microseconds); larger ones
/// are recorded as this.
const LATENCY_MAX_MICROS: u64 = 3_600_000_000;
const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Args)]
#[command(
    about = "Load generators: produce and consume as fast as allowed, report throughput and latency",
    long_about = "Load generators in the spirit of Kafka's perf-test tools. They print a \
        progress line to stderr every second and a summary to stdout (--json for scripts): \
        records/s, MB/s (MB = 2^20 bytes) and, for produce, the latency from send to \
        acknowledgement as an HdrHistogram distribution (p50, p95, p99, p99.9, max). They \
        report numbers; they do not judge them.",
    after_help = "Examples:\n  \
        strom bench produce --topic bench --num-records 1000000 --record-size 100 --partitions 6\n  \
        strom bench produce --topic bench --num-records 100000 --record-size 1024 --throughput 10000 --acks 1\n  \
        strom bench consume --topic bench --num-records 1000000 --from-beginning"
)]
pub struct BenchArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Produce records of a fixed size and measure throughput and latency.
    #[command(
        long_about = "Produce --num-records records of --record-size bytes (one random payload, \
            seeded by --seed, reused for every record; no key) as fast as possible or at \
            --throughput records per second. The topic is created with --partitions if it does \
            not exist. Latency runs from just before the send to the acknowledgement; \
            acknowledgements are retired in send order, so a latency may be overstated (never \
            understated) when a later batch is acknowledged before an earlier one.",
        after_help = "Examples:\n  \
            strom bench produce --topic bench --num-records 1000000 --record-size 100\n  \
            strom bench produce --topic bench --num-records 200000 --record-size 512 --compression lz4 --linger-ms 10 --batch-size 65536\n  \
            strom bench produce --topic bench --num-records 60000 --record-size 100 --throughput 1000 --json"
    )]
    Produce(ProduceArgs),
    /// Read records as fast as possible and measure throughput.
    #[command(
        long_about = "Read --num-records records from every partition of the topic, from the \
            beginning with --from-beginning (else only records produced from now on), and \
            report records/s and MB/s of keys and values read. Gives up after --timeout-ms \
            without a record (exit code 1, after the summary).",
        after_help = "Examples:\n  strom bench consume --topic bench --num-records 1000000 --from-beginning"
    )]
    Consume(ConsumeArgs),
}

#[derive(Debug, Args)]
struct ProduceArgs {
    /// The topic to write to.
    #[arg(long, value_name = "NAME")]
    topic: String,
    /// How many records to send.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    num_records: u64,
    /// Bytes per record value.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(0..=100 * 1024 * 1024))]
    record_size: u64,
    /// Records per second to aim for; -1 for as fast as possible.
    #[arg(long, value_name = "N", default_value_t = -1, allow_hyphen_values = true)]
    throughput: i64,
    /// Acknowledgements to wait for: 0, 1 or all.
    #[arg(long, value_name = "ACKS", default_value = "all", value_parser = parse_acks)]
    acks: Acks,
    /// Compression codec: none, gzip, snappy, lz4 or zstd.
    #[arg(long, value_name = "CODEC", default_value = "none", value_parser = parse_compression)]
    compression: Compression,
    /// Largest batch in bytes before compression (batch.size).
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024)]
    batch_size: usize,
    /// How long a batch waits for more records (linger.ms).
    #[arg(long, value_name = "MS", default_value_t = 5)]
    linger_ms: u64,
    /// Partitions of the topic if it has to be created (default: the broker's num.partitions).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    partitions: Option<i32>,
    /// Replication factor if the topic has to be created (default: the broker's).
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(i16).range(1..))]
    replication_factor: Option<i16>,
    /// Seed of the random payload.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ConsumeArgs {
    /// The topic to read.
    #[arg(long, value_name = "NAME")]
    topic: String,
    /// How many records to read.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    num_records: u64,
    /// Start at the beginning of each partition instead of the end.
    #[arg(long)]
    from_beginning: bool,
    /// Give up after this long without a record.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout_ms: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            BenchCommand::Produce(a) => bench_produce(&client, a).await,
            BenchCommand::Consume(a) => bench_consume(&client, a).await,
        }
    })
}

/// Latency and volume counters for the current progress window and for the whole run.
struct Stats {
    window_started: Instant,
    window_records: u64,
    window_bytes: u64,
    window_latency_sum_micros: u64,
    window_latency_max_micros: u64,
    records: u64,
    bytes: u64,
    latencies: Histogram<u64>,
}

/// One progress window's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct WindowReport {
    records: u64,
    records_per_second: f64,
    mib_per_second: f64,
    latency_avg_ms: f64,
    latency_max_ms: f64,
}

impl Stats {
    fn new(now: Instant) -> anyhow::Result<Stats> {
        Ok(Stats {
            window_started: now,
            window_records: 0,
            window_bytes: 0,
            window_latency_sum_micros: 0,
            window_latency_max_micros: 0,
            records: 0,
            bytes: 0,
            latencies: Histogram::new_with_bounds(1, LATENCY_MAX_MICROS, 3)
                .context("cannot create the latency histogram")?,
        })
    }

    /// Counts one record of `bytes`, with its latency if it has one.
    fn record(&mut self, bytes: u64, latency: Option<Duration>) {
        self.window_records += 1;
        self.window_bytes += bytes;
        self.records += 1;
        self.bytes += bytes;
        if let Some(latency) = latency {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            self.window_latency_sum_micros = self.window_latency_sum_micros.saturating_add(micros);
            self.window_latency_max_micros = self.window_latency_max_micros.max(micros);
            self.latencies.saturating_record(micros.max(1));
        }
    }

    /// The numbers since the last window, which starts a new one at `now`.
    fn take_window(&mut self, now: Instant) -> WindowReport {
        let seconds = now
            .saturating_duration_since(self.window_started)
            .as_secs_f64();
        let report = WindowReport {
            records: self.window_records,
            records_per_second: per_second(self.window_records as f64, seconds),
            mib_per_second: per_second(self.window_bytes as f64 / MIB, seconds),
            latency_avg_ms: if self.window_records == 0 {
                0.0
            } else {
                self.window_latency_sum_micros as f64 / self.window_records as f64 / 1000.0
            },
            latency_max_ms: self.window_latency_max_micros as f64 / 1000.0,
        };
        self.window_started = now;
        self.window_records = 0;
        self.window_bytes = 0;
        self.window_latency_sum_micros = 0;
        self.window_latency_max_micros = 0;
        report
    }

    fn latency_ms_at(&self, quantile: f64) -> f64 {
        self.latencies.value_at_quantile(quantile) as f64 / 1000.0
    }
}

fn per_second(amount: f64, seconds: f64) -> f64 {
    if seconds > 0.0 { amount / seconds } else { 0.0 }
}

/// When record number `sent` (0-based) is due at `throughput` records per second.
fn send_due(start: Instant, sent: u64, throughput: i64) -> Option<Instant> {
    if throughput <= 0 {
        return None;
    }
    Some(start + Duration::from_secs_f64(sent as f64 / throughput as f64))
}

/// A payload of `size` random uppercase letters (like Kafka's perf test), from `seed`.
fn payload(size: usize, seed: u64) -> Bytes {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let bytes: Vec<u8> = (0..size).map(|_| rng.random_range(b'A'..=b'Z')).collect();
    Bytes::from(bytes)
}

/// Sets a flag on Ctrl-C/SIGTERM, so the send loop checks a bool instead of a signal future.
fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = Arc::clone(&flag);
    tokio::spawn(async move {
        interrupted().await;
        set.store(true, Ordering::Relaxed);
    });
    flag
}

async fn ensure_topic(client: &Client, args: &ProduceArgs) -> anyhow::Result<()> {
    match client.topic_metadata(&args.topic, false).await {
        Ok(topic) => {
            if let Some(wanted) = args.partitions
                && wanted != topic.partition_count()
            {
                eprintln!(
                    "note: topic '{}' exists with {} partitions; --partitions {wanted} is ignored",
                    args.topic,
                    topic.partition_count()
                );
            }
            Ok(())
        }
        Err(e) if e.is(ResponseError::UnknownTopicOrPartition) => {
            client
                .create_topic(
                    &args.topic,
                    args.partitions.unwrap_or(-1),
                    args.replication_factor.unwrap_or(-1),
                )
                .await
                .with_context(|| format!("cannot create topic '{}'", args.topic))?;
            eprintln!("Created topic '{}'.", args.topic);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

async fn bench_produce(client: &Client, args: ProduceArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        usage!("--batch-size must be at least 1");
    }
    if args.throughput == 0 || args.throughput < -1 {
        usage!("--throughput must be a positive number of records per second, or -1");
    }
    ensure_topic(client, &args).await?;
    let record_size = usize::try_from(args.record_size).unwrap_or(usize::MAX);
    let config = ProducerConfig {
        acks: args.acks,
        compression: args.compression,
        batch_size: args.batch_size,
        linger: Duration::from_millis(args.linger_ms),
        // Room for a batch of the largest records even when they exceed the default 1 MiB.
        max_request_bytes: (record_size + 1024).max(ProducerConfig::default().max_request_bytes),
        buffer_memory: (record_size + 1024)
            .saturating_mul(4)
            .max(ProducerConfig::default().buffer_memory),
        ..ProducerConfig::default()
    };
    let producer = client
        .producer(config)
        .await
        .context("cannot create the producer")?;
    let topic: Arc<str> = Arc::from(args.topic.as_str());
    let value = payload(record_size, args.seed);
    let record_bytes = args.record_size;
    let stop = stop_flag();
    let mut in_flight: VecDeque<(Instant, Delivery)> =
        VecDeque::with_capacity(IN_FLIGHT_RECORDS_MAX);
    let start = Instant::now();
    let mut stats = Stats::new(start)?;
    let mut next_report = start + REPORT_INTERVAL;
    let mut sent: u64 = 0;
    let mut failed: u64 = 0;
    let mut first_error: Option<ClientError> = None;
    loop {
        let now = Instant::now();
        // Retire acknowledged records in send order.
        while let Some((sent_at, delivery)) = in_flight.front() {
            if !delivery.is_ready() {
                break;
            }
            let sent_at = *sent_at;
            if let Some((_, delivery)) = in_flight.pop_front() {
                match delivery.wait().await {
                    Ok(_) => {
                        stats.record(record_bytes, Some(now.saturating_duration_since(sent_at)))
                    }
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        if now >= next_report {
            print_progress(&stats.take_window(now));
            next_report = now + REPORT_INTERVAL;
        }
        let finished_sending =
            sent >= args.num_records || failed > 0 || stop.load(Ordering::Relaxed);
        if finished_sending && in_flight.is_empty() {
            break;
        }
        let due = send_due(start, sent, args.throughput);
        let must_wait = finished_sending
            || in_flight.len() >= IN_FLIGHT_RECORDS_MAX
            || due.is_some_and(|due| now < due);
        if must_wait {
            // The last batch goes out when its linger expires; no flush needed.
            let wake_at = match due {
                Some(due) if !finished_sending => due.min(next_report),
                _ => next_report,
            };
            match in_flight.front_mut() {
                Some((_, delivery)) => {
                    tokio::select! {
                        () = delivery.ready() => {}
                        () = tokio::time::sleep_until(wake_at) => {}
                    }
                }
                None => tokio::time::sleep_until(wake_at).await,
            }
            continue;
        }
        let record = ProducerRecord {
            topic: Arc::clone(&topic),
            partition: None,
            key: None,
            value: Some(value.clone()),
            headers: Vec::new(),
            timestamp: None,
        };
        let sent_at = Instant::now();
        match producer.send(record).await {
            Ok(delivery) => in_flight.push_back((sent_at, delivery)),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
        sent += 1;
    }
    let elapsed = start.elapsed();
    producer.close().await.ok();
    let tail = stats.take_window(Instant::now());
    if tail.records > 0 {
        print_progress(&tail);
    }
    print_produce_summary(&args, &stats, elapsed, failed)?;
    if let Some(error) = first_error {
        anyhow::bail!("{failed} record(s) failed; first error: {error}");
    }
    if stats.records < args.num_records {
        anyhow::bail!(
            "interrupted after {} of {} records",
            stats.records,
            args.num_records
        );
    }
    Ok(())
}

fn print_progress(report: &WindowReport) {
    eprintln!(
        "{} records sent, {:.1} records/s ({:.2} MB/s), {:.2} ms avg latency, {:.2} ms max latency",
        report.records,
        report.records_per_second,
        report.mib_per_second,
        report.latency_avg_ms,
        report.latency_max_ms
    );
}

fn print_produce_summary(
    args: &ProduceArgs,
    stats: &Stats,
    elapsed: Duration,
    failed: u64,
) -> anyhow::Result<()> {
    let seconds = elapsed.as_secs_f64();
    let records_per_second = per_second(stats.records as f64, seconds);
    let mib_per_second = per_second(stats.bytes as f64 / MIB, seconds);
    let h = &stats.latencies;
    let avg_ms = h.mean() / 1000.0;
    let max_ms = h.max() as f64 / 1000.0;
    if args.json {
        return print_json(&json!({
            "topic": args.topic,
            "records": stats.records,
            "failed": failed,
            "record_size": args.record_size,
            "bytes": stats.bytes,
            "seconds": seconds,
            "records_per_second": records_per_second,
            "mb_per_second": mib_per_second,
            "acks": args.acks.value(),
            "compression": args.compression.name(),
            "batch_size": args.batch_size,
            "linger_ms": args.linger_ms,
            "latency_ms": {
                "avg": avg_ms,
                "p50": stats.latency_ms_at(0.50),
                "p95": stats.latency_ms_at(0.95),
                "p99": stats.latency_ms_at(0.99),
                "p99_9": stats.latency_ms_at(0.999),
                "max": max_ms,
            },
        }));
    }
    outln!(
        "{} records sent, {:.1} records/s ({:.2} MB/s), {:.2} ms avg latency, {:.2} ms max latency.",
        stats.records,
        records_per_second,
        mib_per_second,
        avg_ms,
        max_ms
    );
    outln!(
        "Latency percentiles: {:.2} ms p50, {:.2} ms p95, {:.2} ms p99, {:.2} ms p99.9, {:.2} ms max.",
        stats.latency_ms_at(0.50),
        stats.latency_ms_at(0.95),
        stats.latency_ms_at(0.99),
        stats.latency_ms_at(0.999),
        max_ms
    );
    if failed > 0 {
        outln!("{failed} record(s) failed.");
    }
    Ok(())
}

async fn bench_consume(client: &Client, args: ConsumeArgs) -> anyhow::Result<()> {
    let topic = client.topic_metadata(&args.topic, false).await?;
    let spec = if args.from_beginning {
        OffsetSpec::Earliest
    } else {
        OffsetSpec::Latest
    };
    let mut positions: Vec<(TopicPartition, i64)> = Vec::with_capacity(topic.partitions.len());
    for p in &topic.partitions {
        let tp = TopicPartition::new(&args.topic, p.partition);
        let offset = client.resolve_offset(&tp, spec).await?;
        positions.push((tp, offset));
    }
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let options = FetchOptions {
        max_wait: FetchOptions::default().max_wait.min(timeout),
        ..FetchOptions::default()
    };
    let mut stop_signal = std::pin::pin!(interrupted());
    let start = Instant::now();
    let mut stats = Stats::new(start)?;
    let mut next_report = start + REPORT_INTERVAL;
    let mut last_record = start;
    let mut fetches: u64 = 0;
    let mut timed_out = false;
    let mut interrupted_early = false;
    while stats.records < args.num_records {
        let fetched = tokio::select! {
            () = &mut stop_signal => { interrupted_early = true; break; }
            fetched = client.fetch(&positions, &options) => fetched?,
        };
        fetches += 1;
        let now = Instant::now();
        for (i, (tp, result)) in fetched.into_iter().enumerate() {
            match result {
                Ok(partition) => {
                    if !partition.records.is_empty() {
                        last_record = now;
                    }
                    for record in &partition.records {
                        if stats.records >= args.num_records {
                            break;
                        }
                        let bytes = record.key.as_ref().map_or(0, Bytes::len)
                            + record.value.as_ref().map_or(0, Bytes::len);
                        stats.record(bytes as u64, None);
                    }
                    positions[i].1 = partition.next_offset;
                }
                Err(e) if e.is_retriable() || e.invalidates_metadata() => {}
                Err(e) => return Err(anyhow::anyhow!("cannot read {tp}: {e}")),
            }
        }
        if now >= next_report {
            let report = stats.take_window(now);
            eprintln!(
                "{} records read, {:.1} records/s ({:.2} MB/s)",
                report.records, report.records_per_second, report.mib_per_second
            );
            next_report = now + REPORT_INTERVAL;
        }
        if now.saturating_duration_since(last_record) >= timeout {
            timed_out = true;
            break;
        }
    }
    let elapsed = start.elapsed();
    let seconds = elapsed.as_secs_f64();
    let records_per_second = per_second(stats.records as f64, seconds);
    let mib_per_second = per_second(stats.bytes as f64 / MIB, seconds);
    if args.json {
        print_json(&json!({
            "topic": args.topic,
            "records": stats.records,
            "bytes": stats.bytes,
            "seconds": seconds,
            "records_per_second": records_per_second,
            "mb_per_second": mib_per_second,
            "fetches": fetches,
        }))?;
    } else {
        outln!(
            "{} records read ({:.2} MB) in {:.2} s: {:.1} records/s, {:.2} MB/s, {} fetches.",
            stats.records,
            stats.bytes as f64 / MIB,
            seconds,
            records_per_second,
            mib_per_second,
            fetches
        );
    }
    if timed_out {
        anyhow::bail!(
            "read {} of {} records: nothing arrived for {} ms",
            stats.records,
            args.num_records,
            args.timeout_ms
        );
    }
    if interrupted_early {
        anyhow::bail!(
            "interrupted after {} of {} records",
            stats.records,
            args.num_records
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_report_rates_and_reset_while_totals_accumulate() {
        let start = Instant::now();
        let mut stats = Stats::new(start).unwrap();
        stats.record(1024 * 1024, Some(Duration::from_millis(2)));
        stats.record(1024 * 1024, Some(Duration::from_millis(4)));
        let report = stats.take_window(start + Duration::from_secs(2));
        assert_eq!(report.records, 2);
        assert!((report.records_per_second - 1.0).abs() < 1e-9);
        assert!((report.mib_per_second - 1.0).abs() < 1e-9);
        assert!((report.latency_avg_ms - 3.0).abs() < 1e-9);
        assert!((report.latency_max_ms - 4.0).abs() < 1e-9);
        let empty = stats.take_window(start + Duration::from_secs(3));
        assert_eq!(empty.records, 0);
        assert_eq!(empty.latency_avg_ms, 0.0);
        assert_eq!(stats.records, 2);
        assert_eq!(stats.bytes, 2 * 1024 * 1024);
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut stats = Stats::new(Instant::now()).unwrap();
        for ms in 1..=1000 {
            stats.record(1, Some(Duration::from_millis(ms)));
        }
        // Three significant digits: within 0.1%.
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(
            close(stats.latency_ms_at(0.5), 500.0),
            "{}",
            stats.latency_ms_at(0.5)
        );
        assert!(
            close(stats.latency_ms_at(0.99), 990.0),
            "{}",
            stats.latency_ms_at(0.99)
        );
        assert!(
            close(stats.latency_ms_at(0.999), 999.0),
            "{}",
            stats.latency_ms_at(0.999)
        );
        assert!(close(stats.latencies.max() as f64 / 1000.0, 1000.0));
    }

    #[test]
    fn latencies_beyond_the_histogram_are_saturated_not_lost() {
        let mut stats = Stats::new(Instant::now()).unwrap();
        stats.record(1, Some(Duration::from_secs(10 * 3600)));
        stats.record(1, Some(Duration::ZERO));
        assert_eq!(stats.latencies.len(), 2);
    }

    #[test]
    fn sends_are_due_on_an_even_schedule() {
        let start = Instant::now();
        assert_eq!(send_due(start, 5, -1), None);
        assert_eq!(send_due(start, 0, 100), Some(start));
        assert_eq!(
            send_due(start, 150, 100),
            Some(start + Duration::from_millis(1500))
        );
    }

    #[test]
    fn payload_is_seeded_uppercase_letters() {
        let a = payload(64, 7);
        assert_eq!(a.len(), 64);
        assert!(a.iter().all(u8::is_ascii_uppercase));
        assert_eq!(a, payload(64, 7));
        assert_ne!(a, payload(64, 8));
        assert!(payload(0, 1).is_empty());
    }
}
