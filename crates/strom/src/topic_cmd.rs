//! `strom topic create|list|describe|alter|delete|add-partitions`: topic administration over
//! the Kafka admin APIs (CreateTopics, Metadata, ListOffsets, DescribeConfigs,
//! IncrementalAlterConfigs, DeleteTopics, CreatePartitions), so it works against any broker.

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::{
    AlterConfigOp, Client, ConfigEntry, ConfigResource, NewTopic, TopicDescription,
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
            (__consumer_offsets, ...) only with --internal.",
        after_help = "Examples:\n  strom topic list\n  strom topic list --json | jq -r '.[].name'"
    )]
    List(ListArgs),
    /// Describe a topic: partitions, leaders, replicas, ISR, offsets and configs.
    #[command(
        long_about = "Describe a topic: per partition its leader, replicas, in-sync replicas \
            (ISR), earliest and latest offsets; then every config with its value and where \
            the value comes from (DYNAMIC_TOPIC_CONFIG for an override, STATIC_BROKER_CONFIG, \
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
    let topics = client.list_topics(args.internal).await?;
    if args.json {
        return print_json(&json!(
            topics
                .iter()
                .map(|t| json!({
                    "name": t.name,
                    "topic_id": t.topic_id.map(|id| id.to_string()),
                    "internal": t.is_internal,
                    "partitions": t.partition_count,
                }))
                .collect::<Vec<_>>()
        ));
    }
    let mut table = Table::new(&["TOPIC", "PARTITIONS"]);
    for topic in &topics {
        let name = if topic.is_internal {
            format!("{} (internal)", topic.name)
        } else {
            topic.name.clone()
        };
        table.row(vec![name, topic.partition_count.to_string()]);
    }
    out!("{}", table.render());
    Ok(())
}

async fn describe(client: &Client, args: DescribeArgs) -> anyhow::Result<()> {
    let description = client.describe_topic(&args.name).await?;
    let mut configs = client
        .describe_configs(&ConfigResource::Topic(args.name.clone()), None)
        .await?;
    if args.overrides {
        configs.retain(|c| c.source == strom_client::ConfigSource::DynamicTopicConfig);
    }
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    if args.json {
        return print_json(&describe_json(&description, &configs));
    }
    out!("{}", describe_text(&description, &configs));
    Ok(())
}

fn describe_json(topic: &TopicDescription, configs: &[ConfigEntry]) -> serde_json::Value {
    json!({
        "name": topic.name,
        "topic_id": topic.topic_id.map(|id| id.to_string()),
        "internal": topic.is_internal,
        "partitions": topic.partitions.iter().map(|p| json!({
            "partition": p.partition,
            "leader": p.leader,
            "leader_epoch": p.leader_epoch,
            "replicas": p.replicas,
            "in_sync_replicas": p.in_sync_replicas,
            "offline_replicas": p.offline_replicas,
            "earliest_offset": p.earliest_offset,
            "latest_offset": p.latest_offset,
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

fn describe_text(topic: &TopicDescription, configs: &[ConfigEntry]) -> String {
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
    ]);
    for p in &topic.partitions {
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

#[cfg(test)]
mod tests {
    use super::*;
    use strom_client::{ConfigSource, PartitionDescription};

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
        let text = describe_text(&topic, &configs);
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
