//! `strom transaction list|describe|describe-producers|abort|find-hanging`: transactions from
//! the operator's side, like `kafka-transactions.sh`.
//!
//! Two views meet here. The transaction coordinators know transactional ids (ListTransactions,
//! DescribeTransactions); the partition leaders know which producers have a transaction open
//! on their partitions (DescribeProducers). A transaction is *hanging* when a partition still
//! holds it open but its coordinator no longer expects to finish it there: nothing will ever
//! write its marker, so the last stable offset stops and read_committed consumers stall.
//! `find-hanging` joins the two views with the pure [`hanging_transactions`]; `abort` writes
//! the missing ABORT marker at the partition leader.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::{Client, ProducerState, TopicPartition, TransactionDescription};

use crate::common::{ConnectArgs, out, print_json, runtime, usage};
use crate::table::{Table, or_dash};

/// Kafka's margin on top of the largest transaction timeout before an open transaction counts
/// as hanging: the coordinator aborts a transaction only after its timeout has passed *and*
/// its next periodic check has run, so a transaction a little over its timeout is still
/// normal.
const HANGING_MARGIN_MS: i64 = 5 * 60 * 1000;

/// Partitions per DescribeProducers round in `find-hanging`, so a large cluster is not asked
/// about everything in one giant request.
const PARTITIONS_PER_ROUND: usize = 500;

#[derive(Debug, Args)]
#[command(
    about = "List, describe and abort transactions; find hanging ones",
    long_about = "List and describe transactional ids at their coordinators, show the \
        producers with open transactions on a partition, find hanging transactions (open on a \
        partition but forgotten by their coordinator, which stalls read_committed consumers) \
        and abort them. These use the Kafka admin APIs of KIP-664, so they work against any \
        Kafka-protocol broker that serves them.",
    after_help = "Examples:\n  \
        strom transaction list\n  \
        strom transaction describe payments-1\n  \
        strom transaction describe-producers --topic orders --partition 0\n  \
        strom transaction find-hanging\n  \
        strom transaction abort --topic orders --partition 0 --start-offset 1042"
)]
pub struct TransactionArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: TransactionCommand,
}

#[derive(Debug, Subcommand)]
enum TransactionCommand {
    /// List transactional ids.
    #[command(
        long_about = "List the transactional ids every broker coordinates, with their \
            producer id and state (Empty, Ongoing, PrepareCommit, PrepareAbort, \
            CompleteCommit, CompleteAbort, Dead, PrepareEpochFence).",
        after_help = "Examples:\n  \
            strom transaction list\n  \
            strom transaction list --state Ongoing --min-duration-ms 60000\n  \
            strom transaction list --producer-id 4001 --json"
    )]
    List(ListArgs),
    /// Describe transactional ids: state, producer, timeout, age and partitions.
    #[command(
        long_about = "Describe transactional ids at their coordinators: the state, the \
            producer id and epoch, the transaction timeout, when the current transaction \
            started and how long ago, and the partitions it has written to. An id no \
            coordinator knows fails with TRANSACTIONAL_ID_NOT_FOUND (exit code 1).",
        after_help = "Examples:\n  \
            strom transaction describe payments-1\n  \
            strom transaction describe payments-1 payments-2 --json"
    )]
    Describe(DescribeArgs),
    /// Show the producers a partition leader tracks, with their open transactions.
    #[command(
        long_about = "Show the active producers of one partition as its leader tracks them: \
            producer id and epoch, the coordinator epoch of the last marker, the last sequence \
            number and timestamp, and the offset where the producer's open transaction starts \
            ('-' when none is open).",
        after_help = "Examples:\n  \
            strom transaction describe-producers --topic orders --partition 0\n  \
            strom transaction describe-producers --topic orders --partition 0 --json"
    )]
    DescribeProducers(DescribeProducersArgs),
    /// Abort an open transaction on one partition by writing its ABORT marker.
    #[command(
        long_about = "Abort a producer's open transaction on one partition by writing an \
            ABORT marker at the partition leader. Meant for hanging transactions (see \
            find-hanging): a live producer's transaction is better ended by the producer or \
            its coordinator. Name the transaction by the offset it starts at (--start-offset, \
            looked up with describe-producers), or give the producer id and epoch; the \
            coordinator epoch then defaults to 0, which any leader accepts for a producer \
            that never had a marker written.",
        after_help = "Examples:\n  \
            strom transaction abort --topic orders --partition 0 --start-offset 1042\n  \
            strom transaction abort --topic orders --partition 0 --producer-id 4001 --producer-epoch 0"
    )]
    Abort(AbortArgs),
    /// Find transactions open on a partition that their coordinator has forgotten.
    #[command(
        long_about = "Find hanging transactions: look at every partition (or those of \
            --topic) for producers whose open transaction has seen no write for longer than \
            the largest transaction timeout plus 5 minutes, then ask the coordinators: a \
            transaction is hanging when no coordinator knows its producer, or its coordinator \
            does not list the partition in its current transaction. Abort one with \
            `strom transaction abort --start-offset`.",
        after_help = "Examples:\n  \
            strom transaction find-hanging\n  \
            strom transaction find-hanging --topic orders --max-transaction-timeout-ms 60000 --json"
    )]
    FindHanging(FindHangingArgs),
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only transactions in this state (repeatable): Empty, Ongoing, PrepareCommit, ...
    #[arg(long = "state", value_name = "STATE")]
    states: Vec<String>,
    /// Only this producer id (repeatable).
    #[arg(long = "producer-id", value_name = "N")]
    producer_ids: Vec<i64>,
    /// Only transactions whose current transaction has run longer than this.
    #[arg(long, value_name = "N")]
    min_duration_ms: Option<i64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DescribeArgs {
    /// The transactional ids.
    #[arg(required = true, value_name = "TRANSACTIONAL-ID")]
    transactional_ids: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DescribeProducersArgs {
    /// The topic.
    #[arg(long)]
    topic: String,
    /// The partition.
    #[arg(long)]
    partition: i32,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("transaction").required(true)
    .args(["start_offset", "producer_id"])))]
struct AbortArgs {
    /// The topic.
    #[arg(long)]
    topic: String,
    /// The partition.
    #[arg(long)]
    partition: i32,
    /// The offset the open transaction starts at.
    #[arg(long, value_name = "OFFSET")]
    start_offset: Option<i64>,
    /// The producer whose transaction to abort (with --producer-epoch).
    #[arg(long, value_name = "N", requires = "producer_epoch")]
    producer_id: Option<i64>,
    /// The producer's epoch.
    #[arg(long, value_name = "N", requires = "producer_id")]
    producer_epoch: Option<i16>,
    /// The coordinator epoch of the marker (default 0).
    #[arg(long, value_name = "N", requires = "producer_id")]
    coordinator_epoch: Option<i32>,
}

#[derive(Debug, Args)]
struct FindHangingArgs {
    /// Only partitions of this topic (repeatable; default: every topic).
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// The largest transaction.timeout.ms any producer uses (Kafka's broker limit by default).
    #[arg(long, value_name = "N", default_value_t = 900_000)]
    max_transaction_timeout_ms: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: TransactionArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            TransactionCommand::List(a) => list(&client, a).await,
            TransactionCommand::Describe(a) => describe(&client, a).await,
            TransactionCommand::DescribeProducers(a) => describe_producers(&client, a).await,
            TransactionCommand::Abort(a) => abort(&client, a).await,
            TransactionCommand::FindHanging(a) => find_hanging(&client, a).await,
        }
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A timestamp in milliseconds since the epoch as RFC 3339 UTC, `-` when unknown.
fn time_text(ms: Option<i64>) -> String {
    match ms.and_then(|ms| u64::try_from(ms).ok()) {
        Some(ms) => {
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        }
        None => "-".to_owned(),
    }
}

/// How long ago `since_ms` was, for people (`3m 12s`), `-` when unknown.
fn age_text(now_ms: i64, since_ms: Option<i64>) -> String {
    let Some(since_ms) = since_ms else {
        return "-".to_owned();
    };
    let elapsed_ms = u64::try_from(now_ms.saturating_sub(since_ms)).unwrap_or(0);
    if elapsed_ms < 1_000 {
        return format!("{elapsed_ms}ms");
    }
    humantime::format_duration(Duration::from_secs(elapsed_ms / 1_000)).to_string()
}

fn partitions_text(partitions: &[TopicPartition]) -> String {
    if partitions.is_empty() {
        return "-".to_owned();
    }
    let names: Vec<String> = partitions.iter().map(ToString::to_string).collect();
    names.join(",")
}

/// A state filter the brokers do not know is the caller's mistake (exit code 2).
fn client_error(e: strom_client::Error) -> anyhow::Error {
    match e {
        strom_client::Error::InvalidArgument(reason) => {
            anyhow::Error::new(crate::common::UsageError(reason))
        }
        other => other.into(),
    }
}

async fn list(client: &Client, args: ListArgs) -> anyhow::Result<()> {
    let states: Vec<&str> = args.states.iter().map(String::as_str).collect();
    let listed = client
        .list_transactions(&states, &args.producer_ids, args.min_duration_ms)
        .await
        .map_err(client_error)?;
    if args.json {
        return print_json(&json!(
            listed
                .iter()
                .map(|t| json!({
                    "transactional_id": t.transactional_id,
                    "coordinator": t.coordinator_id,
                    "producer_id": t.producer_id,
                    "state": t.state,
                }))
                .collect::<Vec<_>>()
        ));
    }
    let mut table = Table::new(&["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"]);
    for t in &listed {
        table.row(vec![
            t.transactional_id.clone(),
            t.coordinator_id.to_string(),
            t.producer_id.to_string(),
            t.state.clone(),
        ]);
    }
    out!("{}", table.render());
    Ok(())
}

async fn describe(client: &Client, args: DescribeArgs) -> anyhow::Result<()> {
    let ids: Vec<&str> = args.transactional_ids.iter().map(String::as_str).collect();
    let results = client.describe_transactions(&ids).await?;
    let mut described = Vec::new();
    let mut first_error = None;
    for (_, result) in results {
        match result {
            Ok(d) => described.push(d),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let now = now_ms();
    // The ids that were found are printed even when another is not; the exit code says one
    // failed.
    if args.json {
        print_json(&json!(
            described
                .iter()
                .map(|d| description_json(d, now))
                .collect::<Vec<_>>()
        ))?;
    } else if !described.is_empty() {
        out!("{}", description_table(&described, now).render());
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn description_table(described: &[TransactionDescription], now: i64) -> Table {
    let mut table = Table::new(&[
        "TRANSACTIONAL-ID",
        "COORDINATOR",
        "PRODUCER-ID",
        "EPOCH",
        "STATE",
        "TIMEOUT-MS",
        "STARTED",
        "AGE",
        "PARTITIONS",
    ]);
    for d in described {
        table.row(vec![
            d.transactional_id.clone(),
            d.coordinator_id.to_string(),
            d.producer_id.to_string(),
            d.producer_epoch.to_string(),
            d.state.clone(),
            d.transaction_timeout_ms.to_string(),
            time_text(d.transaction_start_time_ms),
            age_text(now, d.transaction_start_time_ms),
            partitions_text(&d.partitions),
        ]);
    }
    table
}

fn description_json(d: &TransactionDescription, now: i64) -> serde_json::Value {
    json!({
        "transactional_id": d.transactional_id,
        "coordinator": d.coordinator_id,
        "producer_id": d.producer_id,
        "producer_epoch": d.producer_epoch,
        "state": d.state,
        "transaction_timeout_ms": d.transaction_timeout_ms,
        "transaction_start_time_ms": d.transaction_start_time_ms,
        "transaction_duration_ms": d.transaction_start_time_ms.map(|s| now - s),
        "partitions": d.partitions.iter().map(|tp| json!({
            "topic": tp.topic,
            "partition": tp.partition,
        })).collect::<Vec<_>>(),
    })
}

/// The producers of one partition, or the partition's error.
async fn producers_of(client: &Client, tp: &TopicPartition) -> anyhow::Result<Vec<ProducerState>> {
    let mut results = client.describe_producers(std::slice::from_ref(tp)).await?;
    match results.pop() {
        Some((_, result)) => Ok(result?),
        None => anyhow::bail!("DescribeProducers returned nothing for {tp}"),
    }
}

async fn describe_producers(client: &Client, args: DescribeProducersArgs) -> anyhow::Result<()> {
    let tp = TopicPartition::new(&args.topic, args.partition);
    let producers = producers_of(client, &tp).await?;
    if args.json {
        return print_json(&json!(
            producers.iter().map(producer_json).collect::<Vec<_>>()
        ));
    }
    let mut table = Table::new(&[
        "PRODUCER-ID",
        "EPOCH",
        "COORDINATOR-EPOCH",
        "LAST-SEQUENCE",
        "LAST-TIMESTAMP",
        "TXN-START-OFFSET",
    ]);
    for p in &producers {
        table.row(vec![
            p.producer_id.to_string(),
            p.producer_epoch.to_string(),
            or_dash(p.coordinator_epoch),
            p.last_sequence.to_string(),
            time_text(p.last_timestamp_ms),
            or_dash(p.current_transaction_start_offset),
        ]);
    }
    out!("{}", table.render());
    Ok(())
}

fn producer_json(p: &ProducerState) -> serde_json::Value {
    json!({
        "producer_id": p.producer_id,
        "producer_epoch": p.producer_epoch,
        "coordinator_epoch": p.coordinator_epoch,
        "last_sequence": p.last_sequence,
        "last_timestamp_ms": p.last_timestamp_ms,
        "current_transaction_start_offset": p.current_transaction_start_offset,
    })
}

/// What an abort writes: the producer, its epoch and the marker's coordinator epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AbortTarget {
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
}

/// The producer whose open transaction starts at `start_offset`. A producer that never had a
/// marker written reports no coordinator epoch; 0 is at most any epoch a leader has seen, so
/// the leader accepts it (Kafka's tool makes the same choice).
fn abort_target_at(producers: &[ProducerState], start_offset: i64) -> Option<AbortTarget> {
    let p = producers
        .iter()
        .find(|p| p.current_transaction_start_offset == Some(start_offset))?;
    Some(AbortTarget {
        producer_id: p.producer_id,
        producer_epoch: i16::try_from(p.producer_epoch).ok()?,
        coordinator_epoch: p.coordinator_epoch.unwrap_or(0),
    })
}

async fn abort(client: &Client, args: AbortArgs) -> anyhow::Result<()> {
    let tp = TopicPartition::new(&args.topic, args.partition);
    let target = match (args.start_offset, args.producer_id, args.producer_epoch) {
        (Some(start_offset), _, _) => {
            let producers = producers_of(client, &tp).await?;
            abort_target_at(&producers, start_offset).ok_or_else(|| {
                anyhow::anyhow!("no open transaction starts at offset {start_offset} on {tp}")
            })?
        }
        (None, Some(producer_id), Some(producer_epoch)) => AbortTarget {
            producer_id,
            producer_epoch,
            coordinator_epoch: args.coordinator_epoch.unwrap_or(0).max(0),
        },
        _ => usage!("give --start-offset, or --producer-id with --producer-epoch"),
    };
    client
        .abort_transaction(
            &tp.topic,
            tp.partition,
            target.producer_id,
            target.producer_epoch,
            target.coordinator_epoch,
        )
        .await?;
    out!(
        "Aborted the open transaction of producer {} (epoch {}) on {tp}.\n",
        target.producer_id,
        target.producer_epoch
    );
    Ok(())
}

/// A producer's open transaction on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OpenTransaction {
    topic_partition: TopicPartition,
    producer: ProducerState,
}

/// The open transactions that have seen no write for longer than `max_timeout_ms` plus
/// [`HANGING_MARGIN_MS`]: no live producer could keep one open that long, since its
/// coordinator would have aborted it. The producer's last write is the clock, as partition
/// leaders do not record when a transaction began.
fn open_too_long(
    producers: &[(TopicPartition, Vec<ProducerState>)],
    now_ms: i64,
    max_timeout_ms: i64,
) -> Vec<OpenTransaction> {
    let limit_ms = max_timeout_ms.saturating_add(HANGING_MARGIN_MS);
    producers
        .iter()
        .flat_map(|(tp, states)| states.iter().map(move |p| (tp, p)))
        .filter(|(_, p)| p.current_transaction_start_offset.is_some())
        .filter(|(_, p)| {
            p.last_timestamp_ms
                .is_some_and(|last| now_ms.saturating_sub(last) > limit_ms)
        })
        .map(|(tp, p)| OpenTransaction {
            topic_partition: tp.clone(),
            producer: p.clone(),
        })
        .collect()
}

/// The candidates no coordinator will finish. `transactional_ids` maps producer ids to the
/// ids coordinators listed for them; `descriptions` holds what the coordinators said about
/// those ids (`None`: not found). A coordinator that still lists the partition in the
/// producer's transaction will write its marker, so that one is not hanging.
fn hanging_transactions(
    candidates: Vec<OpenTransaction>,
    transactional_ids: &HashMap<i64, String>,
    descriptions: &HashMap<String, Option<TransactionDescription>>,
) -> Vec<OpenTransaction> {
    candidates
        .into_iter()
        .filter(|open| {
            let described = transactional_ids
                .get(&open.producer.producer_id)
                .and_then(|id| descriptions.get(id))
                .and_then(Option::as_ref);
            match described {
                None => true,
                Some(d) => {
                    d.producer_id != open.producer.producer_id
                        || !d.partitions.contains(&open.topic_partition)
                }
            }
        })
        .collect()
}

/// Every partition of `topics`, or of every topic (internal ones too: transactional offset
/// commits make `__consumer_offsets` transactional) when `topics` is empty.
async fn partitions_to_search(
    client: &Client,
    topics: &[String],
) -> anyhow::Result<Vec<TopicPartition>> {
    let mut partitions = Vec::new();
    if topics.is_empty() {
        let metadata = client.refresh_metadata(None).await?;
        for topic in metadata.topics.values() {
            for p in &topic.partitions {
                partitions.push(TopicPartition::new(&topic.name, p.partition));
            }
        }
    } else {
        for topic in topics {
            let described = client.describe_topic(topic).await?;
            for p in &described.partitions {
                partitions.push(TopicPartition::new(topic, p.partition));
            }
        }
    }
    partitions.sort();
    Ok(partitions)
}

async fn find_hanging(client: &Client, args: FindHangingArgs) -> anyhow::Result<()> {
    if args.max_transaction_timeout_ms < 0 {
        usage!("--max-transaction-timeout-ms must not be negative");
    }
    let partitions = partitions_to_search(client, &args.topics).await?;
    let mut producers = Vec::with_capacity(partitions.len());
    for round in partitions.chunks(PARTITIONS_PER_ROUND) {
        for (tp, result) in client.describe_producers(round).await? {
            producers.push((tp, result?));
        }
    }
    let now = now_ms();
    let candidates = open_too_long(&producers, now, args.max_transaction_timeout_ms);
    let hanging = if candidates.is_empty() {
        candidates
    } else {
        let producer_ids: BTreeSet<i64> =
            candidates.iter().map(|c| c.producer.producer_id).collect();
        let producer_ids: Vec<i64> = producer_ids.into_iter().collect();
        let transactional_ids: HashMap<i64, String> = client
            .list_transactions(&[], &producer_ids, None)
            .await?
            .into_iter()
            .map(|t| (t.producer_id, t.transactional_id))
            .collect();
        let descriptions = describe_for_hanging(client, &transactional_ids).await?;
        hanging_transactions(candidates, &transactional_ids, &descriptions)
    };
    if args.json {
        return print_json(&json!(
            hanging
                .iter()
                .map(|h| hanging_json(h, now))
                .collect::<Vec<_>>()
        ));
    }
    if hanging.is_empty() {
        out!("No hanging transactions.\n");
        return Ok(());
    }
    out!("{}", hanging_table(&hanging, now).render());
    Ok(())
}

/// Descriptions of the listed ids; an id that vanished in between is `None` (as good as
/// unknown), any other failure fails the search.
async fn describe_for_hanging(
    client: &Client,
    transactional_ids: &HashMap<i64, String>,
) -> anyhow::Result<HashMap<String, Option<TransactionDescription>>> {
    let ids: BTreeSet<&str> = transactional_ids.values().map(String::as_str).collect();
    let ids: Vec<&str> = ids.into_iter().collect();
    let mut descriptions = HashMap::new();
    for (id, result) in client.describe_transactions(&ids).await? {
        let description = match result {
            Ok(d) => Some(d),
            Err(e)
                if e.is(strom_client::kafka_protocol::ResponseError::TransactionalIdNotFound) =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        };
        descriptions.insert(id, description);
    }
    Ok(descriptions)
}

fn hanging_table(hanging: &[OpenTransaction], now: i64) -> Table {
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "PRODUCER-ID",
        "EPOCH",
        "COORDINATOR-EPOCH",
        "START-OFFSET",
        "LAST-TIMESTAMP",
        "IDLE",
    ]);
    for h in hanging {
        let p = &h.producer;
        table.row(vec![
            h.topic_partition.topic.clone(),
            h.topic_partition.partition.to_string(),
            p.producer_id.to_string(),
            p.producer_epoch.to_string(),
            or_dash(p.coordinator_epoch),
            or_dash(p.current_transaction_start_offset),
            time_text(p.last_timestamp_ms),
            age_text(now, p.last_timestamp_ms),
        ]);
    }
    table
}

fn hanging_json(h: &OpenTransaction, now: i64) -> serde_json::Value {
    let p = &h.producer;
    json!({
        "topic": h.topic_partition.topic,
        "partition": h.topic_partition.partition,
        "producer_id": p.producer_id,
        "producer_epoch": p.producer_epoch,
        "coordinator_epoch": p.coordinator_epoch,
        "start_offset": p.current_transaction_start_offset,
        "last_timestamp_ms": p.last_timestamp_ms,
        "idle_ms": p.last_timestamp_ms.map(|t| now - t),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_MS: i64 = 60_000;

    fn producer(id: i64, start_offset: Option<i64>, last_ms: i64) -> ProducerState {
        ProducerState {
            producer_id: id,
            producer_epoch: 2,
            last_sequence: 9,
            last_timestamp_ms: Some(last_ms),
            coordinator_epoch: None,
            current_transaction_start_offset: start_offset,
        }
    }

    fn description(producer_id: i64, partitions: Vec<TopicPartition>) -> TransactionDescription {
        TransactionDescription {
            coordinator_id: 0,
            transactional_id: format!("tx-{producer_id}"),
            state: "Ongoing".into(),
            producer_id,
            producer_epoch: 2,
            transaction_timeout_ms: 60_000,
            transaction_start_time_ms: Some(0),
            partitions,
        }
    }

    #[test]
    fn only_open_transactions_idle_past_the_timeout_and_margin_are_candidates() {
        let now = 100 * MINUTE_MS;
        let max_timeout = 15 * MINUTE_MS;
        let tp = TopicPartition::new("orders", 0);
        let producers = vec![(
            tp.clone(),
            vec![
                // Idle 21 minutes with a transaction open: over 15 + 5.
                producer(1, Some(10), now - 21 * MINUTE_MS),
                // Idle 19 minutes: within the margin, its coordinator may still abort it.
                producer(2, Some(20), now - 19 * MINUTE_MS),
                // Idle for an hour but no transaction open.
                producer(3, None, now - 60 * MINUTE_MS),
            ],
        )];
        let found = open_too_long(&producers, now, max_timeout);
        let ids: Vec<i64> = found.iter().map(|o| o.producer.producer_id).collect();
        assert_eq!(ids, [1]);
        assert_eq!(found[0].topic_partition, tp);
        assert!(open_too_long(&producers, now, 30 * MINUTE_MS).is_empty());
    }

    #[test]
    fn a_transaction_is_hanging_unless_its_coordinator_still_lists_the_partition() {
        let orders0 = TopicPartition::new("orders", 0);
        let orders1 = TopicPartition::new("orders", 1);
        let open = |id: i64, tp: &TopicPartition| OpenTransaction {
            topic_partition: tp.clone(),
            producer: producer(id, Some(5), 0),
        };
        let candidates = vec![
            open(1, &orders0), // coordinator still lists orders-0: it will write the marker
            open(1, &orders1), // coordinator moved on from orders-1: hanging
            open(2, &orders0), // no coordinator knows producer 2: hanging
            open(3, &orders0), // its id is listed but no longer found: hanging
            open(4, &orders0), // the id now belongs to a newer producer: hanging
        ];
        let transactional_ids: HashMap<i64, String> = [1, 3, 4]
            .into_iter()
            .map(|id| (id, format!("tx-{id}")))
            .collect();
        let descriptions: HashMap<String, Option<TransactionDescription>> = [
            (
                "tx-1".to_owned(),
                Some(description(1, vec![orders0.clone()])),
            ),
            ("tx-3".to_owned(), None),
            (
                "tx-4".to_owned(),
                Some(description(40, vec![orders0.clone()])),
            ),
        ]
        .into_iter()
        .collect();
        let hanging = hanging_transactions(candidates, &transactional_ids, &descriptions);
        let found: Vec<(i64, i32)> = hanging
            .iter()
            .map(|h| (h.producer.producer_id, h.topic_partition.partition))
            .collect();
        assert_eq!(found, [(1, 1), (2, 0), (3, 0), (4, 0)]);
    }

    #[test]
    fn an_abort_by_start_offset_finds_the_producer_and_defaults_the_coordinator_epoch() {
        let mut with_marker = producer(8, Some(30), 0);
        with_marker.coordinator_epoch = Some(4);
        let producers = vec![producer(7, Some(12), 0), with_marker, producer(9, None, 0)];
        assert_eq!(
            abort_target_at(&producers, 12),
            Some(AbortTarget {
                producer_id: 7,
                producer_epoch: 2,
                coordinator_epoch: 0
            })
        );
        assert_eq!(
            abort_target_at(&producers, 30).unwrap().coordinator_epoch,
            4
        );
        assert_eq!(abort_target_at(&producers, 13), None);
    }

    #[test]
    fn times_and_ages_read_for_people() {
        assert_eq!(time_text(None), "-");
        assert_eq!(time_text(Some(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(age_text(10_000, None), "-");
        assert_eq!(age_text(10_000, Some(9_500)), "500ms");
        assert_eq!(age_text(200_000, Some(7_000)), "3m 13s");
        assert_eq!(partitions_text(&[]), "-");
        assert_eq!(
            partitions_text(&[TopicPartition::new("a", 0), TopicPartition::new("b", 2)]),
            "a-0,b-2"
        );
    }
}
