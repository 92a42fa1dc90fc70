//! `strom produce TOPIC`: one record per input line, like `kafka-console-producer` and
//! `kcat -P`.
//!
//! Lines come from stdin or `--file`; the line ending (`\n` or `\r\n`) is not part of the
//! record. With `--key-separator` the text before the first separator is the key. Records are
//! sent through the batching producer; at most [`IN_FLIGHT_RECORDS_MAX`] acknowledgements are
//! awaited at once, so memory stays bounded whatever the input size. The summary counts
//! records per partition with their offset range.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use strom_client::{Acks, Compression, Delivery, Header, ProducerConfig, ProducerRecord};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::common::{
    ConnectArgs, human_bytes, interrupted, out, outln, parse_key_value, runtime, usage,
};
use crate::table::{Table, or_dash};

/// Acknowledgements awaited at once; further input waits for the oldest.
const IN_FLIGHT_RECORDS_MAX: usize = 10_000;
/// A file at least this large gets a progress bar (on a terminal).
const PROGRESS_FILE_BYTES_MIN: u64 = 1024 * 1024;
/// Standard input gets a progress spinner (on a terminal) once this many lines were read.
const PROGRESS_LINES_MIN: u64 = 10_000;
/// The longest input line accepted (a record larger than this is surely a mistake).
const LINE_BYTES_MAX: usize = 64 * 1024 * 1024;

#[derive(Debug, Args)]
#[command(
    about = "Write records to a topic, one per input line",
    long_about = "Write records to a topic, one per line of standard input or of --file. \
        The line ending (\\n or \\r\\n) is not part of the record; an empty line is an empty \
        record. With --key-separator, the text before the first separator is the key and the \
        rest the value (a line without the separator is an error). --header adds the same \
        header to every record. The topic must exist (see `strom topic create`).\n\n\
        Prints a summary: records and bytes written, and per partition the offsets they got. \
        On a terminal, a large input shows a progress bar on stderr. Ctrl-C stops reading, \
        sends what was read and prints the summary.",
    after_help = "Examples:\n  \
        echo hello | strom produce events\n  \
        strom produce events --file records.txt --compression zstd\n  \
        printf 'user-1:login\\nuser-2:logout\\n' | strom produce events --key-separator :\n  \
        strom produce events --header source=cli --header env=dev --partition 0 --acks 1"
)]
pub struct ProduceArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The topic to write to.
    topic: String,
    /// Read lines from this file instead of standard input.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Split each line into key and value at the first occurrence of this text.
    #[arg(short = 'K', long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Add this header to every record (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    headers: Vec<(String, String)>,
    /// Write every record to this partition (default: by key hash, or sticky without a key).
    #[arg(short, long, value_name = "P")]
    partition: Option<i32>,
    /// Acknowledgements to wait for: 0, 1 or all.
    #[arg(long, value_name = "ACKS", default_value = "all", value_parser = parse_acks)]
    acks: Acks,
    /// Compression codec: none, gzip, snappy, lz4 or zstd.
    #[arg(long, value_name = "CODEC", default_value = "none", value_parser = parse_compression)]
    compression: Compression,
    /// How long a batch waits for more records (linger.ms).
    #[arg(long, value_name = "MS", default_value_t = 5)]
    linger_ms: u64,
    /// Largest batch in bytes before compression (batch.size).
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024)]
    batch_size: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Parses `--acks` (0, 1, all or -1).
pub fn parse_acks(text: &str) -> Result<Acks, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "0" => Ok(Acks::None),
        "1" => Ok(Acks::Leader),
        "all" | "-1" => Ok(Acks::All),
        _ => Err(format!("expected 0, 1 or all, got '{text}'")),
    }
}

/// Parses `--compression`.
pub fn parse_compression(text: &str) -> Result<Compression, String> {
    text.parse::<Compression>().map_err(|e| e.to_string())
}

/// Splits `line` at the first `separator` into key and value.
fn split_key<'a>(line: &'a [u8], separator: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    if separator.is_empty() || line.len() < separator.len() {
        return None;
    }
    line.windows(separator.len())
        .position(|w| w == separator)
        .map(|at| (&line[..at], &line[at + separator.len()..]))
}

/// Removes the line ending: `\n`, and a `\r` before it.
fn trim_line_end(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

/// Records written to one partition.
#[derive(Debug, Default, Clone, Copy)]
struct PartitionSummary {
    records: u64,
    first_offset: Option<i64>,
    last_offset: Option<i64>,
}

#[derive(Debug, Default)]
struct Summary {
    records: u64,
    bytes: u64,
    failed: u64,
    first_error: Option<String>,
    partitions: BTreeMap<i32, PartitionSummary>,
}

impl Summary {
    async fn settle(&mut self, delivery: Delivery) {
        match delivery.wait().await {
            Ok(metadata) => {
                self.records += 1;
                let p = self.partitions.entry(metadata.partition).or_default();
                p.records += 1;
                if metadata.offset >= 0 {
                    p.first_offset = Some(
                        p.first_offset
                            .map_or(metadata.offset, |o| o.min(metadata.offset)),
                    );
                    p.last_offset = Some(
                        p.last_offset
                            .map_or(metadata.offset, |o| o.max(metadata.offset)),
                    );
                }
            }
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

pub fn run(args: ProduceArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        usage!("--batch-size must be at least 1");
    }
    if args.key_separator.as_deref() == Some("") {
        usage!("--key-separator must not be empty");
    }
    runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        let topic = client.topic_metadata(&args.topic, false).await?;
        if let Some(p) = args.partition
            && !(0..topic.partition_count()).contains(&p)
        {
            usage!(
                "--partition {p}: topic '{}' has {} partitions",
                args.topic,
                topic.partition_count()
            );
        }
        let config = ProducerConfig {
            acks: args.acks,
            compression: args.compression,
            linger: Duration::from_millis(args.linger_ms),
            batch_size: args.batch_size,
            ..ProducerConfig::default()
        };
        let producer = client
            .producer(config)
            .await
            .context("cannot create the producer")?;
        let (input, file_bytes): (Box<dyn AsyncRead + Unpin + Send>, Option<u64>) = match &args.file
        {
            Some(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .with_context(|| format!("cannot open {}", path.display()))?;
                let size = file.metadata().await.ok().map(|m| m.len());
                (Box::new(file), size)
            }
            None => (Box::new(tokio::io::stdin()), None),
        };
        let started = Instant::now();
        let outcome = produce_lines(&args, &producer, input, file_bytes).await;
        // Whatever stopped the input, send what was accepted before reporting.
        let closed = producer.close().await;
        let (summary, read_error) = outcome;
        let elapsed = started.elapsed();
        print_summary(&args, &summary, elapsed)?;
        if let Some(error) = read_error {
            return Err(error);
        }
        closed.context("the producer failed while sending the last records")?;
        if summary.failed > 0 {
            anyhow::bail!(
                "{} of {} records were not written; first error: {}",
                summary.failed,
                summary.failed + summary.records,
                summary.first_error.as_deref().unwrap_or("unknown")
            );
        }
        Ok(())
    })
}

/// Reads lines and sends them until the input ends, a record fails, or a signal arrives.
/// Returns what was acknowledged and the error that stopped reading, if any.
async fn produce_lines(
    args: &ProduceArgs,
    producer: &strom_client::Producer,
    input: Box<dyn AsyncRead + Unpin + Send>,
    file_bytes: Option<u64>,
) -> (Summary, Option<anyhow::Error>) {
    let topic: Arc<str> = Arc::from(args.topic.as_str());
    let headers: Vec<Header> = args
        .headers
        .iter()
        .map(|(k, v)| Header::new(k.clone(), Some(Bytes::copy_from_slice(v.as_bytes()))))
        .collect();
    let separator = args.key_separator.as_deref().map(str::as_bytes);
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let mut line = Vec::with_capacity(4096);
    let mut pending: VecDeque<Delivery> = VecDeque::with_capacity(IN_FLIGHT_RECORDS_MAX);
    let mut summary = Summary::default();
    let mut line_number: u64 = 0;
    let mut bytes_read: u64 = 0;
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut progress: Option<ProgressBar> = None;
    if terminal && file_bytes.is_some_and(|b| b >= PROGRESS_FILE_BYTES_MIN) {
        let bar = ProgressBar::new(file_bytes.unwrap_or(0));
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {msg} ({bytes_per_sec}, {eta} left)",
        ) {
            bar.set_style(style);
        }
        progress = Some(bar);
    }
    // One listener for the whole run: a signal that arrives while no listener exists is lost.
    let mut stop_signal = std::pin::pin!(interrupted());
    let error = loop {
        line.clear();
        let read = tokio::select! {
            () = &mut stop_signal => break None,
            read = reader.read_until(b'\n', &mut line) => read,
        };
        match read {
            Ok(0) => break None,
            Ok(n) => bytes_read += n as u64,
            Err(e) => break Some(anyhow::Error::new(e).context("cannot read the input")),
        }
        line_number += 1;
        if line.len() > LINE_BYTES_MAX {
            break Some(anyhow::anyhow!(
                "line {line_number} is longer than {}",
                human_bytes(LINE_BYTES_MAX as u64)
            ));
        }
        trim_line_end(&mut line);
        let (key, value) = match separator {
            None => (None, line.as_slice()),
            Some(separator) => match split_key(&line, separator) {
                Some((key, value)) => (Some(Bytes::copy_from_slice(key)), value),
                None => {
                    break Some(anyhow::anyhow!(
                        "line {line_number} has no key separator '{}'",
                        String::from_utf8_lossy(separator)
                    ));
                }
            },
        };
        summary.bytes += (key.as_ref().map_or(0, Bytes::len) + value.len()) as u64;
        let record = ProducerRecord {
            topic: Arc::clone(&topic),
            partition: args.partition,
            key,
            value: Some(Bytes::copy_from_slice(value)),
            headers: headers.clone(),
            timestamp: None,
        };
        match producer.send(record).await {
            Ok(delivery) => pending.push_back(delivery),
            Err(e) => break Some(anyhow::anyhow!("cannot send line {line_number}: {e}")),
        }
        while pending.len() >= IN_FLIGHT_RECORDS_MAX
            || pending.front().is_some_and(Delivery::is_ready)
        {
            if let Some(delivery) = pending.pop_front() {
                summary.settle(delivery).await;
            }
        }
        if summary.failed > 0 {
            break None;
        }
        if terminal
            && progress.is_none()
            && file_bytes.is_none()
            && line_number >= PROGRESS_LINES_MIN
        {
            let spinner = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                spinner.set_style(style);
            }
            progress = Some(spinner);
        }
        if let Some(bar) = &progress
            && line_number.is_multiple_of(1024)
        {
            bar.set_position(bytes_read);
            bar.set_message(format!("{line_number} records"));
        }
    };
    if let Err(e) = producer.flush().await {
        summary.first_error.get_or_insert_with(|| e.to_string());
    }
    while let Some(delivery) = pending.pop_front() {
        summary.settle(delivery).await;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    (summary, error)
}

fn print_summary(args: &ProduceArgs, summary: &Summary, elapsed: Duration) -> anyhow::Result<()> {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        summary.records as f64 / seconds
    } else {
        0.0
    };
    if args.json {
        return crate::common::print_json(&json!({
            "topic": args.topic,
            "records": summary.records,
            "failed": summary.failed,
            "bytes": summary.bytes,
            "seconds": seconds,
            "records_per_second": rate,
            "partitions": summary.partitions.iter().map(|(p, s)| json!({
                "partition": p,
                "records": s.records,
                "first_offset": s.first_offset,
                "last_offset": s.last_offset,
            })).collect::<Vec<_>>(),
        }));
    }
    outln!(
        "Produced {} records ({}) to '{}' in {:.2} s ({:.0} records/s).",
        summary.records,
        human_bytes(summary.bytes),
        args.topic,
        seconds,
        rate
    );
    if !summary.partitions.is_empty() {
        let mut table = Table::new(&["PARTITION", "RECORDS", "FIRST-OFFSET", "LAST-OFFSET"]);
        for (partition, s) in &summary.partitions {
            table.row(vec![
                partition.to_string(),
                s.records.to_string(),
                or_dash(s.first_offset),
                or_dash(s.last_offset),
            ]);
        }
        out!("{}", table.render());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_split_at_the_first_separator_only() {
        assert_eq!(split_key(b"k:v:w", b":"), Some((&b"k"[..], &b"v:w"[..])));
        assert_eq!(split_key(b"::v", b"::"), Some((&b""[..], &b"v"[..])));
        assert_eq!(split_key(b"k=>", b"=>"), Some((&b"k"[..], &b""[..])));
        assert_eq!(split_key(b"no separator", b":"), None);
        assert_eq!(split_key(b"", b":"), None);
    }

    #[test]
    fn line_endings_are_removed_but_inner_carriage_returns_kept() {
        let mut line = b"a\rb\r\n".to_vec();
        trim_line_end(&mut line);
        assert_eq!(line, b"a\rb");
        let mut line = b"last line without newline".to_vec();
        trim_line_end(&mut line);
        assert_eq!(line, b"last line without newline");
        let mut line = b"\n".to_vec();
        trim_line_end(&mut line);
        assert!(line.is_empty());
    }

    #[test]
    fn acks_and_compression_use_kafkas_spellings() {
        assert_eq!(parse_acks("0"), Ok(Acks::None));
        assert_eq!(parse_acks("1"), Ok(Acks::Leader));
        assert_eq!(parse_acks("all"), Ok(Acks::All));
        assert_eq!(parse_acks("-1"), Ok(Acks::All));
        assert!(parse_acks("2").is_err());
        assert_eq!(parse_compression("zstd"), Ok(Compression::Zstd));
        assert!(parse_compression("brotli").is_err());
    }
}
