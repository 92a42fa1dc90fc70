//! `strom topic create|list|describe|alter|delete|add-partitions|reassign|reassignments`:
//! topic administration over the Kafka admin APIs (CreateTopics, Metadata, ListOffsets,
//! DescribeConfigs, IncrementalAlterConfigs, DeleteTopics, CreatePartitions,
//! AlterPartitionReassignments, ListPartitionReassignments), so it works against any broker.
//!
//! `describe` flags each partition's health the way `kafka-topics.sh --describe` judges it:
//! under-replicated when it has fewer in-sync replicas than its replication factor (during a
//! reassignment: its replicas before the reassignment), under min ISR when it has no leader or
//! fewer in-sync replicas than the topic's `min.insync.replicas`.

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::{
    AlterConfigOp, Client, ConfigEntry, ConfigResource, NewTopic, OngoingReassignment,
    PartitionDescription, TopicDescription,
};

use crate::common::{ConnectArgs, out, outln, parse_key_value, print_json, runtime};
use crate::table::{Table, id_list, or_dash};

#[derive(Debug, Args)]
#[command(
    about = "Create, list, describe, alter and delete topics",
    long_about = "Create, list, describe, alter and delete topics.\n\n\
        Every subcommand talks to the cluster with the Kafka admin APIs, so it works against \
        Strom and against any Kafka-protocol broker.",
    after_help = "Examples:\n  \
        strom topic create events --partitions 6 --replication-factor 1 --config retention.ms=86400000\n  \
        strom topic list\n  \
        strom topic describe events\n  \
        strom topic alter events --config cleanup.policy=compact --delete-config retention.ms\n  \
        strom topic add-partitions events --partitions 12\n  \
        strom topic reassign --topic events --partition 0 --replicas 2,3\n  \
        strom topic reassignments\n  \
        strom topic delete events"
)]
pub struct TopicArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    /// Create a topic.
    #[command(
        long_about = "Create a topic.\n\n\
            Without --partitions or --replication-factor the broker's defaults apply \
            (num.partitions, default.replication.factor). --config sets per-topic overrides \
            with Kafka's names (retention.ms, cleanup.policy, segment.bytes, ...).",
        after_help = "Examples:\n  \
            strom topic create events\n  \
            strom topic create events --partitions 6 --replication-factor 3\n  \
            strom topic create changelog --config cleanup.policy=compact --config min.compaction.lag.ms=60000"
    )]
    Create(CreateArgs),
    /// List topics.
    #[command(
        long_about = "List topics with their partition counts, sorted by name. Internal topics \
            (__consumer_offsets, ...) only with --internal. --under-replicated keeps only \
            topics with a partition that has fewer in-sync replicas than replicas, and names \
            those partitions.",
        after_help = "Examples:\n  strom topic list\n  strom topic list --under-replicated\n  strom topic list --json | jq -r '.[].name'"
    )]
    List(ListArgs),
    /// Describe a topic: partitions, leaders, replicas, ISR, offsets and configs.
    #[command(
        long_about = "Describe a topic: per partition its leader, leader epoch, replicas, \
            in-sync replicas (ISR), offline replicas, earliest and latest offsets and flags: \
            under-replicated (fewer in-sync replicas than the replication factor), \
            under-min-isr (no leader, or fewer in-sync replicas than min.insync.replicas), \
            no-leader, reassigning; then every config with its value and where the value \
            comes from (DYNAMIC_TOPIC_CONFIG for an override, STATIC_BROKER_CONFIG, \
            DEFAULT_CONFIG, ...).",
        after_help = "Examples:\n  strom topic describe events\n  strom topic describe events --overrides\n  strom topic describe events --json"
    )]
    Describe(DescribeArgs),
    /// Change a topic's configs (set or delete overrides).
    #[command(
        long_about = "Change a topic's configs with IncrementalAlterConfigs: --config sets an \
            override, --delete-config removes one so the broker default applies again. Other \
            overrides are left as they are.",
        after_help = "Examples:\n  \
            strom topic alter events --config retention.ms=3600000\n  \
            strom topic alter events --delete-config retention.ms"
    )]
    Alter(AlterArgs),
    /// Delete a topic and its data.
    #[command(
        long_about = "Delete a topic and all its data. There is no undo.",
        after_help = "Examples:\n  strom topic delete events\n  strom topic delete events --if-exists"
    )]
    Delete(DeleteArgs),
    /// Raise a topic's partition count.
    #[command(
        long_about = "Raise a topic's partition count to the given total (it can never shrink). \
            Keys are hashed over the partition count, so records with a key written after this \
            may land on a different partition than earlier ones.",
        after_help = "Examples:\n  strom topic add-partitions events --partitions 12"
    )]
    AddPartitions(AddPartitionsArgs),
    /// Move partitions to other replicas, or cancel a move in progress.
    #[command(
        long_about = "Start moving partitions to the given replicas with \
            AlterPartitionReassignments (the first one becomes the preferred leader): the new \
            replicas copy the log from the leader, and the old ones are dropped once every new \
            one is in sync. The command returns once the move has started; `strom topic \
            reassignments` shows it until it completes. --cancel stops a move in progress and \
            returns the partition to its replicas before it.",
        after_help = "Examples:\n  \
            strom topic reassign --topic events --partition 0 --replicas 2,3\n  \
            strom topic reassign --topic events --partition 1 --partition 2 --replicas 3,1\n  \
            strom topic reassign --topic events --partition 0 --cancel"
    )]
    Reassign(ReassignArgs),
    /// List the partition reassignments in progress.
    #[command(
        long_about = "List the partition reassignments in progress \
            (ListPartitionReassignments): each partition's replicas now, its target replicas, \
            and the replicas being added and removed.",
        after_help = "Examples:\n  \
            strom topic reassignments\n  \
            strom topic reassignments --topic events --json"
    )]
    Reassignments(ReassignmentsArgs),
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The topic name.
    name: String,
    /// Number of partitions (default: the broker's num.partitions).
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    partitions: Option<i32>,
    /// Replicas per partition (default: the broker's default.replication.factor).
    #[arg(short, long, value_name = "R", value_parser = clap::value_parser!(i16).range(1..))]
    replication_factor: Option<i16>,
    /// A topic config override, Kafka's name (repeatable).
    #[arg(short, long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    configs: Vec<(String, String)>,
    /// Succeed without doing anything if the topic already exists.
    #[arg(long)]
    if_not_exists: bool,
    /// Only ask the broker to validate the request; create nothing.
    #[arg(long)]
    validate_only: bool,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Include internal topics.
    #[arg(long)]
    internal: bool,
    /// Only topics with under-replicated partitions, and which ones.
    #[arg(long)]
    under_replicated: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DescribeArgs {
    /// The topic name.
    name: String,
    /// Show only configs overridden for this topic.
    #[arg(long)]
    overrides: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct AlterArgs {
    /// The topic name.
    name: String,
    #[command(flatten)]
    changes: ConfigChanges,
}

/// Config changes shared by `topic alter` and `config alter`.
#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub struct ConfigChanges {
    /// Set a config, Kafka's name (repeatable).
    #[arg(long = "config", alias = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
    /// Remove an override so the next source's value applies (repeatable).
    #[arg(long = "delete-config", alias = "delete", value_name = "KEY")]
    pub delete: Vec<String>,
}

impl ConfigChanges {
    /// The changes as incremental alter operations, sets first.
    pub fn ops(&self) -> Vec<AlterConfigOp> {
        self.set
            .iter()
            .map(|(k, v)| AlterConfigOp::set(k, v))
            .chain(self.delete.iter().map(AlterConfigOp::delete))
            .collect()
    }

    /// "set a=1, deleted b" for the confirmation line.
    pub fn summary(&self) -> String {
        self.set
            .iter()
            .map(|(k, v)| format!("set {k}={v}"))
            .chain(self.delete.iter().map(|k| format!("deleted {k}")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Args)]
struct DeleteArgs {
    /// The topic name.
    name: String,
    /// Succeed without doing anything if the topic does not exist.
    #[arg(long)]
    if_exists: bool,
}

#[derive(Debug, Args)]
struct AddPartitionsArgs {
    /// The topic name.
    name: String,
    /// The new total number of partitions.
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
}

#[derive(Debug, Args)]
struct ReassignArgs {
    /// The topic.
    #[arg(short, long, value_name = "TOPIC")]
    topic: String,
    /// The partition to move (repeatable).
    #[arg(short, long, value_name = "P", required = true, value_parser = clap::value_parser!(i32).range(0..))]
    partition: Vec<i32>,
    /// The target replicas, preferred leader first.
    #[arg(
        long,
        value_name = "ID,ID,...",
        value_delimiter = ',',
        required_unless_present = "cancel",
        conflicts_with = "cancel"
    )]
    replicas: Vec<i32>,
    /// Cancel the partitions' reassignments in progress.
    #[arg(long)]
    cancel: bool,
}

#[derive(Debug, Args)]
struct ReassignmentsArgs {
    /// Only this topic's reassignments.
    #[arg(short, long, value_name = "TOPIC")]
    topic: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: TopicArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            TopicCommand::Create(a) => create(&client, a).await,
            TopicCommand::List(a) => list(&client, a).await,
            TopicCommand::Describe(a) => describe(&client, a).await,
            TopicCommand::Alter(a) => alter(&client, a).await,
            TopicCommand::Delete(a) => delete(&client, a).await,
            TopicCommand::AddPartitions(a) => add_partitions(&client, a).await,
            TopicCommand::Reassign(a) => reassign(&client, a).await,
            TopicCommand::Reassignments(a) => reassignments(&client, a).await,
        }
    })
}

async fn create(client: &Client, args: CreateArgs) -> anyhow::Result<()> {
    let mut topic = NewTopic::new(
        &args.name,
        args.partitions.unwrap_or(-1),
        args.replication_factor.unwrap_or(-1),
    );
    topic.configs = args.configs;
    let (_, result) = client
        .create_topics(&[topic], args.validate_only)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            anyhow::anyhow!("the broker returned no result for topic '{}'", args.name)
        })?;
    match result {
        Ok(()) if args.validate_only => outln!("Topic '{}' would be created.", args.name),
        Ok(()) => outln!("Created topic '{}'.", args.name),
        Err(e)
            if args.if_not_exists
                && e.is(strom_client::kafka_protocol::ResponseError::TopicAlreadyExists) =>
        {
            outln!("Topic '{}' already exists.", args.name);
        }
        Err(e) => return Err(anyhow::anyhow!("cannot create topic '{}': {e}", args.name)),
    }
    Ok(())
}

async fn list(client: &Client, args: ListArgs) -> anyhow::Result<()> {
    let mut topics = client.list_topics(args.internal).await?;
    let under_replicated = if args.under_replicated {
        let found = under_replicated_partitions(client).await?;
        topics.retain(|t| found.contains_key(&t.name));
        found
    } else {
        Default::default()
    };
    if args.json {
        return print_json(&json!(
            topics
                .iter()
                .map(|t| {
                    let mut topic = json!({
                        "name": t.name,
                        "topic_id": t.topic_id.map(|id| id.to_string()),
                        "internal": t.is_internal,
                        "partitions": t.partition_count,
                    });
                    if args.under_replicated {
                        topic["under_replicated_partitions"] =
                            json!(under_replicated.get(&t.name).cloned().unwrap_or_default());
                    }
                    topic
                })
                .collect::<Vec<_>>()
        ));
    }
    if args.under_replicated && topics.is_empty() {
        outln!("No topic has an under-replicated partition.");
        return Ok(());
    }
    let mut header = vec!["TOPIC", "PARTITIONS"];
    if args.under_replicated {
        header.push("UNDER-REPLICATED");
    }
    let mut table = Table::new(&header);
    for topic in &topics {
        let name = if topic.is_internal {
            format!("{} (internal)", topic.name)
        } else {
            topic.name.clone()
        };
        let mut row = vec![name, topic.partition_count.to_string()];
        if let Some(partitions) = under_replicated.get(&topic.name) {
            row.push(id_list(partitions));
        }
        table.row(row);
    }
    out!("{}", table.render());
    Ok(())
}

/// The under-replicated partitions of every topic that has any, by topic name.
async fn under_replicated_partitions(
    client: &Client,
) -> anyhow::Result<std::collections::BTreeMap<String, Vec<i32>>> {
    let metadata = client.refresh_metadata(None).await?;
    let ongoing = ongoing_reassignments(client, None).await;
    let mut found: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
    for topic in metadata.topics.values() {
        for p in &topic.partitions {
            let reassignment = ongoing
                .iter()
                .find(|r| r.topic == topic.name && r.partition == p.partition);
            let factor = replication_factor(p.replicas.len(), reassignment);
            if p.in_sync_replicas.len() < factor {
                found
                    .entry(topic.name.clone())
                    .or_default()
                    .push(p.partition);
            }
        }
    }
    Ok(found)
}

/// The reassignments in progress, of `topic` or of every topic; none when the cluster does
/// not report them (a broker without ListPartitionReassignments): they only refine the flags.
async fn ongoing_reassignments(client: &Client, topic: Option<&str>) -> Vec<OngoingReassignment> {
    match client.list_partition_reassignments(None).await {
        Ok(mut ongoing) => {
            ongoing.retain(|r| topic.is_none_or(|t| r.topic == t));
            ongoing
        }
        Err(e) => {
            tracing::debug!(error = %e, "cannot list partition reassignments");
            Vec::new()
        }
    }
}

/// Kafka's replication factor of a partition: during a reassignment, its replicas without the
/// ones being added (`TopicCommand.getReplicationFactor`).
fn replication_factor(replicas: usize, reassignment: Option<&OngoingReassignment>) -> usize {
    match reassignment {
        Some(r) => r.replicas.len().saturating_sub(r.adding_replicas.len()),
        None => replicas,
    }
}

/// What `describe` needs beyond the topic's description to judge its partitions.
#[derive(Debug, Clone, Default)]
struct Health {
    /// The topic's `min.insync.replicas`, when the configs report it.
    min_insync_replicas: Option<usize>,
    reassignments: Vec<OngoingReassignment>,
}

impl Health {
    /// A partition's flags, as `kafka-topics.sh --describe` judges them.
    fn flags(&self, p: &PartitionDescription) -> Vec<&'static str> {
        let reassignment = self
            .reassignments
            .iter()
            .find(|r| r.partition == p.partition);
        let in_sync = p.in_sync_replicas.len();
        let mut flags = Vec::new();
        if p.leader.is_none() {
            flags.push("no-leader");
        }
        if in_sync < replication_factor(p.replicas.len(), reassignment) {
            flags.push("under-replicated");
        }
        if p.leader.is_none() || self.min_insync_replicas.is_some_and(|min| in_sync < min) {
            flags.push("under-min-isr");
        }
        if reassignment.is_some() {
            flags.push("reassigning");
        }
        flags
    }
}

async fn describe(client: &Client, args: DescribeArgs) -> anyhow::Result<()> {
    let description = client.describe_topic(&args.name).await?;
    let mut configs = client
        .describe_configs(&ConfigResource::Topic(args.name.clone()), None)
        .await?;
    let health = Health {
        min_insync_replicas: configs
            .iter()
            .find(|c| c.name == "min.insync.replicas")
            .and_then(|c| c.value.as_deref()?.parse().ok()),
        reassignments: ongoing_reassignments(client, Some(&args.name)).await,
    };
    if args.overrides {
        configs.retain(|c| c.source == strom_client::ConfigSource::DynamicTopicConfig);
    }
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    if args.json {
        return print_json(&describe_json(&description, &health, &configs));
    }
    out!("{}", describe_text(&description, &health, &configs));
    Ok(())
}

fn describe_json(
    topic: &TopicDescription,
    health: &Health,
    configs: &[ConfigEntry],
) -> serde_json::Value {
    json!({
        "name": topic.name,
        "topic_id": topic.topic_id.map(|id| id.to_string()),
        "internal": topic.is_internal,
        "min_insync_replicas": health.min_insync_replicas,
        "partitions": topic.partitions.iter().map(|p| json!({
            "partition": p.partition,
            "leader": p.leader,
            "leader_epoch": p.leader_epoch,
            "replicas": p.replicas,
            "in_sync_replicas": p.in_sync_replicas,
            "offline_replicas": p.offline_replicas,
            "earliest_offset": p.earliest_offset,
            "latest_offset": p.latest_offset,
            "flags": health.flags(p),
        })).collect::<Vec<_>>(),
        "configs": configs.iter().map(config_json).collect::<Vec<_>>(),
    })
}

/// One config entry as JSON (shared with `strom config describe`).
pub fn config_json(c: &ConfigEntry) -> serde_json::Value {
    json!({
        "name": c.name,
        "value": if c.sensitive { None } else { c.value.clone() },
        "source": c.source.name(),
        "read_only": c.read_only,
        "sensitive": c.sensitive,
    })
}

/// The configs table (shared with `strom config describe`).
pub fn config_table(configs: &[ConfigEntry]) -> Table {
    let mut table = Table::new(&["NAME", "VALUE", "SOURCE"]);
    for c in configs {
        let value = if c.sensitive {
            "(sensitive)".to_owned()
        } else {
            c.value.clone().unwrap_or_else(|| "(null)".to_owned())
        };
        let source = if c.read_only {
            format!("{} (read-only)", c.source.name())
        } else {
            c.source.name().to_owned()
        };
        table.row(vec![c.name.clone(), value, source]);
    }
    table
}

fn describe_text(topic: &TopicDescription, health: &Health, configs: &[ConfigEntry]) -> String {
    let mut out = format!(
        "Topic: {}\nTopic id: {}\nPartitions: {}\nInternal: {}\n\n",
        topic.name,
        or_dash(topic.topic_id),
        topic.partitions.len(),
        if topic.is_internal { "yes" } else { "no" },
    );
    let mut table = Table::new(&[
        "PARTITION",
        "LEADER",
        "EPOCH",
        "REPLICAS",
        "ISR",
        "OFFLINE",
        "EARLIEST",
        "LATEST",
        "FLAGS",
    ]);
    for p in &topic.partitions {
        let flags = health.flags(p);
        table.row(vec![
            p.partition.to_string(),
            p.leader
                .map_or_else(|| "none".to_owned(), |l| l.to_string()),
            or_dash(p.leader_epoch),
            id_list(&p.replicas),
            id_list(&p.in_sync_replicas),
            if p.offline_replicas.is_empty() {
                "-".to_owned()
            } else {
                id_list(&p.offline_replicas)
            },
            or_dash(p.earliest_offset),
            or_dash(p.latest_offset),
            if flags.is_empty() {
                "-".to_owned()
            } else {
                flags.join(",")
            },
        ]);
    }
    out.push_str(&table.render());
    out.push_str("\nConfigs:\n");
    if configs.is_empty() {
        out.push_str("(none)\n");
    } else {
        out.push_str(&config_table(configs).render());
    }
    out
}

async fn alter(client: &Client, args: AlterArgs) -> anyhow::Result<()> {
    // Check first, so a missing topic reads as UNKNOWN_TOPIC_OR_PARTITION whatever the
    // broker answers to IncrementalAlterConfigs for it.
    client.topic_metadata(&args.name, false).await?;
    client
        .incremental_alter_configs(
            &ConfigResource::Topic(args.name.clone()),
            &args.changes.ops(),
            false,
        )
        .await?;
    outln!("Altered topic '{}': {}.", args.name, args.changes.summary());
    Ok(())
}

async fn delete(client: &Client, args: DeleteArgs) -> anyhow::Result<()> {
    let (_, result) = client
        .delete_topics(&[args.name.as_str()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            anyhow::anyhow!("the broker returned no result for topic '{}'", args.name)
        })?;
    match result {
        Ok(()) => outln!("Deleted topic '{}'.", args.name),
        Err(e)
            if args.if_exists
                && e.is(strom_client::kafka_protocol::ResponseError::UnknownTopicOrPartition) =>
        {
            outln!("Topic '{}' does not exist.", args.name);
        }
        Err(e) => return Err(anyhow::anyhow!("cannot delete topic '{}': {e}", args.name)),
    }
    Ok(())
}

async fn add_partitions(client: &Client, args: AddPartitionsArgs) -> anyhow::Result<()> {
    let before = client.topic_metadata(&args.name, false).await?;
    let (_, result) = client
        .create_partitions(&[(args.name.as_str(), args.partitions)], false)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            anyhow::anyhow!("the broker returned no result for topic '{}'", args.name)
        })?;
    result.map_err(|e| {
        anyhow::anyhow!(
            "cannot raise topic '{}' from {} to {} partitions: {e}",
            args.name,
            before.partition_count(),
            args.partitions
        )
    })?;
    outln!(
        "Topic '{}' now has {} partitions (was {}).",
        args.name,
        args.partitions,
        before.partition_count()
    );
    Ok(())
}

async fn reassign(client: &Client, args: ReassignArgs) -> anyhow::Result<()> {
    let target = (!args.cancel).then(|| args.replicas.clone());
    let requests: Vec<(String, i32, Option<Vec<i32>>)> = args
        .partition
        .iter()
        .map(|&p| (args.topic.clone(), p, target.clone()))
        .collect();
    let results = client.alter_partition_reassignments(&requests).await?;
    let mut failures = Vec::new();
    for (tp, result) in results {
        match (result, &target) {
            (Ok(()), Some(replicas)) => {
                outln!("Reassigning {tp} to replicas {}.", id_list(replicas))
            }
            (Ok(()), None) => outln!("Cancelled the reassignment of {tp}."),
            (Err(e), _) => failures.push(format!("{tp}: {e}")),
        }
    }
    if !failures.is_empty() {
        let what = if args.cancel { "cancel" } else { "start" };
        anyhow::bail!("cannot {what} the reassignment of {}", failures.join("; "));
    }
    if !args.cancel {
        outln!("`strom topic reassignments` shows the moves until they complete.");
    }
    Ok(())
}

async fn reassignments(client: &Client, args: ReassignmentsArgs) -> anyhow::Result<()> {
    let mut ongoing = client.list_partition_reassignments(None).await?;
    if let Some(topic) = &args.topic {
        ongoing.retain(|r| r.topic == *topic);
    }
    if args.json {
        return print_json(&json!(
            ongoing
                .iter()
                .map(|r| json!({
                    "topic": r.topic,
                    "partition": r.partition,
                    "replicas": r.replicas,
                    "target_replicas": r.target_replicas(),
                    "adding_replicas": r.adding_replicas,
                    "removing_replicas": r.removing_replicas,
                }))
                .collect::<Vec<_>>()
        ));
    }
    if ongoing.is_empty() {
        outln!("No partition reassignment is in progress.");
        return Ok(());
    }
    out!("{}", reassignments_table(&ongoing).render());
    Ok(())
}

fn reassignments_table(ongoing: &[OngoingReassignment]) -> Table {
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "REPLICAS",
        "TARGET",
        "ADDING",
        "REMOVING",
    ]);
    for r in ongoing {
        table.row(vec![
            r.topic.clone(),
            r.partition.to_string(),
            id_list(&r.replicas),
            id_list(&r.target_replicas()),
            id_list(&r.adding_replicas),
            id_list(&r.removing_replicas),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_client::ConfigSource;

    fn entry(name: &str, value: &str, source: ConfigSource) -> ConfigEntry {
        ConfigEntry {
            name: name.into(),
            value: Some(value.into()),
            source,
            read_only: false,
            sensitive: false,
            synonyms: Vec::new(),
            config_type: 0,
            documentation: None,
        }
    }

    #[test]
    fn describe_text_shows_partitions_offsets_and_config_sources() {
        let topic = TopicDescription {
            name: "events".into(),
            topic_id: None,
            is_internal: false,
            partitions: vec![PartitionDescription {
                partition: 0,
                leader: Some(1),
                leader_epoch: Some(0),
                replicas: vec![1],
                in_sync_replicas: vec![1],
                offline_replicas: vec![],
                earliest_offset: Some(0),
                latest_offset: Some(42),
            }],
        };
        let configs = [entry(
            "retention.ms",
            "1000",
            ConfigSource::DynamicTopicConfig,
        )];
        let text = describe_text(&topic, &Health::default(), &configs);
        assert!(text.contains("Topic: events\n"), "{text}");
        assert!(
            text.contains("0          1       0      1         1    -        0         42"),
            "{text}"
        );
        assert!(
            text.contains("retention.ms  1000   DYNAMIC_TOPIC_CONFIG"),
            "{text}"
        );
    }

    fn partition(replicas: &[i32], in_sync: &[i32], leader: Option<i32>) -> PartitionDescription {
        PartitionDescription {
            partition: 0,
            leader,
            leader_epoch: Some(3),
            replicas: replicas.to_vec(),
            in_sync_replicas: in_sync.to_vec(),
            offline_replicas: vec![],
            earliest_offset: None,
            latest_offset: None,
        }
    }

    #[test]
    fn partitions_are_flagged_as_kafka_topics_judges_them() {
        let health = Health {
            min_insync_replicas: Some(2),
            reassignments: vec![],
        };
        assert!(
            health
                .flags(&partition(&[1, 2], &[1, 2], Some(1)))
                .is_empty()
        );
        assert_eq!(
            health.flags(&partition(&[1, 2, 3], &[1, 2], Some(1))),
            ["under-replicated"]
        );
        assert_eq!(
            health.flags(&partition(&[1, 2], &[1], Some(1))),
            ["under-replicated", "under-min-isr"]
        );
        assert_eq!(
            health.flags(&partition(&[1, 2], &[1, 2], None)),
            ["no-leader", "under-min-isr"],
            "a partition without a leader is under its min ISR whatever its ISR"
        );
        let unknown_min = Health::default();
        assert_eq!(
            unknown_min.flags(&partition(&[1, 2], &[1], Some(1))),
            ["under-replicated"]
        );
    }

    #[test]
    fn a_reassignment_counts_only_the_replicas_it_started_with() {
        // Moving from [1,2] to [4,2]: replicas [4,2,1] with 4 still copying is not
        // under-replicated, only reassigning.
        let health = Health {
            min_insync_replicas: Some(1),
            reassignments: vec![OngoingReassignment {
                topic: "t".into(),
                partition: 0,
                replicas: vec![4, 2, 1],
                adding_replicas: vec![4],
                removing_replicas: vec![1],
            }],
        };
        assert_eq!(
            health.flags(&partition(&[4, 2, 1], &[2, 1], Some(2))),
            ["reassigning"]
        );
        assert_eq!(
            health.flags(&partition(&[4, 2, 1], &[2], Some(2))),
            ["under-replicated", "reassigning"]
        );
        let table = reassignments_table(&health.reassignments).render();
        assert!(
            table.contains("t      0          4,2,1     4,2     4       1"),
            "{table}"
        );
    }

    #[test]
    fn sensitive_values_are_never_printed() {
        let mut secret = entry(
            "ssl.key.password",
            "hunter2",
            ConfigSource::StaticBrokerConfig,
        );
        secret.sensitive = true;
        let text = config_table(std::slice::from_ref(&secret)).render();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(config_json(&secret)["value"].is_null());
    }

    #[test]
    fn config_changes_list_sets_before_deletes() {
        let changes = ConfigChanges {
            set: vec![("a".into(), "1".into())],
            delete: vec!["b".into()],
        };
        let ops = changes.ops();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].name, "a");
        assert_eq!(ops[1].name, "b");
        assert_eq!(changes.summary(), "set a=1, deleted b");
    }
}
