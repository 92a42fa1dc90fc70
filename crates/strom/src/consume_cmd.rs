//! `strom consume TOPIC`: print records, like `kafka-console-consumer` and `kcat -C`.
//!
//! Without `--group` it reads the chosen partitions directly (Fetch at each leader), starting
//! at `--offset`, the beginning (`--from-beginning`) or the end (default). With `--group` it
//! joins the consumer group and reads what the group assigns; it commits the offsets of the
//! records it has *printed* (never past them, so `--max-messages` loses nothing for the next
//! member), about once a second and on exit, and leaves the group on exit.
//!
//! It stops at `--max-messages`, at the end of every partition with `--exit-at-end`, after
//! `--timeout-ms` without a record, on Ctrl-C or SIGTERM, or when stdout closes.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use strom_client::{
    AutoOffsetReset, Client, ConsumerRecord, Error as ClientError, FetchOptions,
    GroupConsumerConfig, OffsetSpec, TopicPartition,
};
use tokio::time::Instant;

use crate::common::{ConnectArgs, interrupted, runtime, usage, write_stdout};
use crate::record_format::{RecordFormat, render_json};

/// How often a group member commits what it has printed.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Args)]
#[command(
    about = "Print records from a topic",
    long_about = "Print records from a topic, one per line (the value) by default.\n\n\
        Without --group, reads the partitions directly from the end (default), the beginning \
        (--from-beginning) or an --offset. With --group, joins that consumer group: the group \
        assigns partitions, reading resumes at the group's committed offsets (or per \
        --from-beginning where it has none), and the offsets of printed records are committed \
        about every second and on exit; the member leaves the group on exit.\n\n\
        Stops after --max-messages records, at the end of the partitions with --exit-at-end, \
        after --timeout-ms without a record, on Ctrl-C/SIGTERM, or when stdout is closed.\n\n\
        --format placeholders (kcat's): %t topic, %p partition, %o offset, %T timestamp (ms), \
        %k key, %s value, %h headers (k=v,k2=v2), %K key length, %S value length (-1 if \
        null), %% a percent sign; escapes \\n \\r \\t \\\\. Nothing is added: end the format \
        with \\n. Null keys and values print as nothing.",
    after_help = "Examples:\n  \
        strom consume events --from-beginning\n  \
        strom consume events --from-beginning --max-messages 10 --format '%p:%o %k=%s\\n'\n  \
        strom consume events --partition 0 --offset 1000 --exit-at-end --json\n  \
        strom consume events --group audit --from-beginning\n  \
        strom consume events --offset=-5 --exit-at-end   # the last 5 records of each partition"
)]
pub struct ConsumeArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The topic to read.
    topic: String,
    /// Start at the beginning: of each partition, or where the group has no committed offset.
    #[arg(long, conflicts_with = "offset")]
    from_beginning: bool,
    /// Where to start: an offset, -N for N records before the end, earliest or latest.
    #[arg(
        short,
        long,
        value_name = "OFFSET",
        allow_hyphen_values = true,
        conflicts_with = "group"
    )]
    offset: Option<String>,
    /// Read only these partitions (repeatable; default: all).
    #[arg(short, long = "partition", value_name = "P", conflicts_with = "group")]
    partitions: Vec<i32>,
    /// Consume as a member of this consumer group.
    #[arg(short, long, value_name = "GROUP")]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(short = 'n', long, value_name = "N")]
    max_messages: Option<u64>,
    /// Stop when every partition has been read to its end (not with --group).
    #[arg(short = 'e', long, conflicts_with = "group")]
    exit_at_end: bool,
    /// Stop when no record arrives for this long.
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Output format with kcat's placeholders (see above).
    #[arg(short, long, value_name = "FORMAT", conflicts_with = "json")]
    format: Option<String>,
    /// Print each record as one line of JSON.
    #[arg(long)]
    json: bool,
}

/// Where a direct (group-less) read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Earliest,
    Latest,
    Offset(i64),
    /// N records before the end (never before the beginning).
    FromEnd(i64),
}

fn parse_start(offset: Option<&str>, from_beginning: bool) -> Result<Start, String> {
    let Some(text) = offset else {
        return Ok(if from_beginning {
            Start::Earliest
        } else {
            Start::Latest
        });
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "earliest" | "beginning" => Ok(Start::Earliest),
        "latest" | "end" => Ok(Start::Latest),
        number => match number.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Start::Offset(n)),
            Ok(n) => Ok(Start::FromEnd(n.saturating_neg())),
            Err(_) => Err(format!(
                "--offset {text}: expected a number, -N, earliest or latest"
            )),
        },
    }
}

/// How records are printed.
enum Output {
    Format(RecordFormat),
    Json,
}

impl Output {
    fn render(&self, record: &ConsumerRecord, out: &mut Vec<u8>) -> anyhow::Result<()> {
        match self {
            Output::Format(format) => format.render(record, out),
            Output::Json => render_json(record, out)?,
        }
        Ok(())
    }
}

/// Why consuming stopped, for the summary line.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    MaxMessages,
    EndOfPartitions,
    Timeout,
    Interrupted,
    StdoutClosed,
}

pub fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let output = if args.json {
        Output::Json
    } else {
        let format = args.format.as_deref().unwrap_or("%s\\n");
        match RecordFormat::parse(format) {
            Ok(format) => Output::Format(format),
            Err(reason) => usage!("{reason}"),
        }
    };
    let start = match parse_start(args.offset.as_deref(), args.from_beginning) {
        Ok(start) => start,
        Err(reason) => usage!("{reason}"),
    };
    if args.max_messages == Some(0) {
        usage!("--max-messages must be at least 1");
    }
    runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        let topic = client.topic_metadata(&args.topic, false).await?;
        let (consumed, stop) = match &args.group {
            Some(group) => consume_group(&client, &args, group, &output).await?,
            None => {
                let partitions: Vec<i32> = if args.partitions.is_empty() {
                    topic.partitions.iter().map(|p| p.partition).collect()
                } else {
                    for p in &args.partitions {
                        if !(0..topic.partition_count()).contains(p) {
                            usage!(
                                "--partition {p}: topic '{}' has {} partitions (0..{})",
                                args.topic,
                                topic.partition_count(),
                                topic.partition_count() - 1
                            );
                        }
                    }
                    let mut unique = args.partitions.clone();
                    unique.sort_unstable();
                    unique.dedup();
                    unique
                };
                consume_direct(&client, &args, &partitions, start, &output).await?
            }
        };
        let why = match stop {
            Stop::MaxMessages => "reached --max-messages",
            Stop::EndOfPartitions => "reached the end of the partitions",
            Stop::Timeout => "no record within --timeout-ms",
            Stop::Interrupted => "interrupted",
            Stop::StdoutClosed => "stdout closed",
        };
        eprintln!("Consumed {consumed} records ({why}).");
        Ok(())
    })
}

fn fetch_options(args: &ConsumeArgs) -> FetchOptions {
    let mut options = FetchOptions::default();
    if let Some(ms) = args.timeout_ms {
        options.max_wait = options.max_wait.min(Duration::from_millis(ms.max(1)));
    }
    options
}

/// Tracks the stop conditions shared by both modes.
struct Limits {
    remaining: Option<u64>,
    idle_timeout: Option<Duration>,
    last_record: Instant,
    consumed: u64,
}

impl Limits {
    fn new(args: &ConsumeArgs) -> Limits {
        Limits {
            remaining: args.max_messages,
            idle_timeout: args.timeout_ms.map(Duration::from_millis),
            last_record: Instant::now(),
            consumed: 0,
        }
    }

    /// Takes as many of `count` new records as the limit allows.
    fn take(&mut self, count: usize) -> usize {
        if count > 0 {
            self.last_record = Instant::now();
        }
        let count = u64::try_from(count).unwrap_or(u64::MAX);
        let taken = match &mut self.remaining {
            Some(remaining) => {
                let taken = count.min(*remaining);
                *remaining -= taken;
                taken
            }
            None => count,
        };
        self.consumed += taken;
        usize::try_from(taken).unwrap_or(usize::MAX)
    }

    fn done(&self) -> Option<Stop> {
        if self.remaining == Some(0) {
            return Some(Stop::MaxMessages);
        }
        if let Some(timeout) = self.idle_timeout
            && self.last_record.elapsed() >= timeout
        {
            return Some(Stop::Timeout);
        }
        None
    }
}

async fn resolve(client: &Client, tp: &TopicPartition, start: Start) -> anyhow::Result<i64> {
    Ok(match start {
        Start::Earliest => client.resolve_offset(tp, OffsetSpec::Earliest).await?,
        Start::Latest => client.resolve_offset(tp, OffsetSpec::Latest).await?,
        Start::Offset(offset) => offset,
        Start::FromEnd(n) => {
            let earliest = client.resolve_offset(tp, OffsetSpec::Earliest).await?;
            let latest = client.resolve_offset(tp, OffsetSpec::Latest).await?;
            latest.saturating_sub(n).max(earliest)
        }
    })
}

async fn consume_direct(
    client: &Client,
    args: &ConsumeArgs,
    partitions: &[i32],
    start: Start,
    output: &Output,
) -> anyhow::Result<(u64, Stop)> {
    let mut positions = Vec::with_capacity(partitions.len());
    for p in partitions {
        let tp = TopicPartition::new(&args.topic, *p);
        let offset = resolve(client, &tp, start).await?;
        positions.push((tp, offset));
    }
    let options = fetch_options(args);
    let mut limits = Limits::new(args);
    let mut high_watermarks: Vec<Option<i64>> = vec![None; positions.len()];
    let mut stdout = tokio::io::stdout();
    let mut out = Vec::with_capacity(64 * 1024);
    let mut failed_rounds = 0;
    // One listener for the whole run: a signal that arrives while no listener exists is lost.
    let mut stop_signal = std::pin::pin!(interrupted());
    loop {
        if let Some(stop) = limits.done() {
            return Ok((limits.consumed, stop));
        }
        if args.exit_at_end
            && positions
                .iter()
                .zip(&high_watermarks)
                .all(|((_, position), hw)| hw.is_some_and(|hw| *position >= hw))
        {
            return Ok((limits.consumed, Stop::EndOfPartitions));
        }
        let fetched = tokio::select! {
            () = &mut stop_signal => return Ok((limits.consumed, Stop::Interrupted)),
            fetched = client.fetch(&positions, &options) => fetched?,
        };
        let mut failures = 0;
        out.clear();
        for (i, (tp, result)) in fetched.into_iter().enumerate() {
            match result {
                Ok(partition) => {
                    high_watermarks[i] = Some(partition.high_watermark);
                    let take = limits.take(partition.records.len());
                    for record in &partition.records[..take] {
                        output.render(record, &mut out)?;
                    }
                    positions[i].1 = match partition.records.get(take) {
                        // Stopped inside this batch: the next record is where we are.
                        Some(next) => next.offset,
                        None => partition.next_offset,
                    };
                }
                Err(ClientError::OffsetOutOfRange { offset, .. }) => {
                    // Like a Kafka consumer's auto.offset.reset: before the log start means
                    // the records were deleted, so read from the start; past the end means
                    // wait at the end.
                    let earliest = client.resolve_offset(&tp, OffsetSpec::Earliest).await?;
                    let latest = client.resolve_offset(&tp, OffsetSpec::Latest).await?;
                    let resume = if offset < earliest { earliest } else { latest };
                    eprintln!(
                        "warning: offset {offset} is out of range for {tp} ({earliest}..{latest}); reading from {resume}"
                    );
                    positions[i].1 = resume;
                }
                Err(e) if e.is_retriable() || e.invalidates_metadata() => failures += 1,
                Err(e) => return Err(anyhow::anyhow!("cannot read {tp}: {e}")),
            }
        }
        if !out.is_empty() && !write_stdout(&mut stdout, &out).await? {
            return Ok((limits.consumed, Stop::StdoutClosed));
        }
        if failures == positions.len() {
            failed_rounds += 1;
            if failed_rounds > client.config().retries {
                anyhow::bail!("cannot read topic '{}': every fetch failed", args.topic);
            }
            tokio::time::sleep(client.config().backoff(failed_rounds)).await;
        } else {
            failed_rounds = 0;
        }
    }
}

async fn consume_group(
    client: &Client,
    args: &ConsumeArgs,
    group: &str,
    output: &Output,
) -> anyhow::Result<(u64, Stop)> {
    let mut config = GroupConsumerConfig::new(group, vec![args.topic.clone()]);
    config.auto_offset_reset = if args.from_beginning {
        AutoOffsetReset::Earliest
    } else {
        AutoOffsetReset::Latest
    };
    // Commits are done here, for printed records only.
    config.auto_commit_interval = None;
    config.fetch = fetch_options(args);
    // One listener for the whole run: a signal that arrives while no listener exists is lost.
    let mut stop_signal = std::pin::pin!(interrupted());
    let mut consumer = tokio::select! {
        () = &mut stop_signal => return Ok((0, Stop::Interrupted)),
        consumer = client.group_consumer(config) => consumer?,
    };
    let mut limits = Limits::new(args);
    let mut printed: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    let mut committed: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    let mut last_commit = Instant::now();
    let mut stdout = tokio::io::stdout();
    let mut out = Vec::with_capacity(64 * 1024);
    let result: anyhow::Result<Stop> = async {
        loop {
            if let Some(stop) = limits.done() {
                return Ok(stop);
            }
            let records = tokio::select! {
                () = &mut stop_signal => return Ok(Stop::Interrupted),
                records = consumer.poll() => records?,
            };
            let take = limits.take(records.len());
            out.clear();
            for record in &records[..take] {
                output.render(record, &mut out)?;
                printed.insert(
                    TopicPartition::new(&*record.topic, record.partition),
                    record.offset + 1,
                );
            }
            if !out.is_empty() && !write_stdout(&mut stdout, &out).await? {
                return Ok(Stop::StdoutClosed);
            }
            if last_commit.elapsed() >= COMMIT_INTERVAL {
                commit_printed(&mut consumer, &printed, &mut committed).await;
                last_commit = Instant::now();
            }
        }
    }
    .await;
    commit_printed(&mut consumer, &printed, &mut committed).await;
    if let Err(e) = consumer.close().await {
        eprintln!("warning: could not leave group '{group}': {e}");
    }
    result.map(|stop| (limits.consumed, stop))
}

/// Commits the offsets after the printed records that were not committed yet. A failure (the
/// group rebalanced and this member lost the partition) is a warning: the records were
/// printed, and the partition's new owner starts from the last successful commit.
async fn commit_printed(
    consumer: &mut strom_client::GroupConsumer,
    printed: &BTreeMap<TopicPartition, i64>,
    committed: &mut BTreeMap<TopicPartition, i64>,
) {
    let pending: Vec<(TopicPartition, i64)> = printed
        .iter()
        .filter(|(tp, offset)| committed.get(*tp) != Some(offset))
        .map(|(tp, offset)| (tp.clone(), *offset))
        .collect();
    if pending.is_empty() {
        return;
    }
    match consumer.commit_offsets(&pending).await {
        Ok(()) => committed.extend(pending),
        Err(e) => eprintln!("warning: could not commit offsets: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_offsets_accept_numbers_relative_ends_and_names() {
        assert_eq!(parse_start(None, false), Ok(Start::Latest));
        assert_eq!(parse_start(None, true), Ok(Start::Earliest));
        assert_eq!(parse_start(Some("17"), false), Ok(Start::Offset(17)));
        assert_eq!(parse_start(Some("-5"), false), Ok(Start::FromEnd(5)));
        assert_eq!(parse_start(Some("beginning"), false), Ok(Start::Earliest));
        assert_eq!(parse_start(Some("END"), false), Ok(Start::Latest));
        assert!(parse_start(Some("soon"), false).is_err());
    }
}
