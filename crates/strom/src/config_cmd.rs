//! `strom config describe|alter`: broker, cluster-wide broker default and topic configs, with
//! where each value comes from (DescribeConfigs) and incremental changes
//! (IncrementalAlterConfigs), like `kafka-configs`.

use clap::{Args, Subcommand};
use strom_client::{ConfigResource, ConfigSource};

use crate::common::{ConnectArgs, out, outln, print_json, runtime};
use crate::topic_cmd::{ConfigChanges, config_json, config_table};

#[derive(Debug, Args)]
#[command(
    about = "Describe and alter broker and topic configs",
    long_about = "Describe and alter configs of one broker (--broker ID), of every broker at \
        once (--broker-defaults: the cluster-wide dynamic defaults) or of a topic (--topic \
        NAME), with Kafka's config names. describe shows each value's source: \
        DYNAMIC_TOPIC_CONFIG, DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, \
        STATIC_BROKER_CONFIG (the broker's config file or flags) or DEFAULT_CONFIG.",
    after_help = "Examples:\n  \
        strom config describe --broker 1\n  \
        strom config describe --topic events --overrides\n  \
        strom config alter --topic events --config retention.ms=3600000\n  \
        strom config alter --broker-defaults --config log.retention.ms=604800000\n  \
        strom config alter --broker 1 --delete-config log.cleaner.threads"
)]
pub struct ConfigArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Show configs with their values and sources.
    #[command(
        long_about = "Show a resource's configs with their values and where each value comes \
            from. Sensitive values are never shown.",
        after_help = "Examples:\n  \
            strom config describe --broker 1\n  \
            strom config describe --topic events --name retention.ms --name cleanup.policy\n  \
            strom config describe --broker-defaults --json"
    )]
    Describe(DescribeArgs),
    /// Set or delete config overrides.
    #[command(
        long_about = "Set (--config) or delete (--delete-config) config overrides of a \
            resource with IncrementalAlterConfigs. Other overrides are kept. Deleting an \
            override makes the next source's value apply again.",
        after_help = "Examples:\n  \
            strom config alter --topic events --config retention.ms=3600000 --config segment.bytes=104857600\n  \
            strom config alter --topic events --delete-config retention.ms\n  \
            strom config alter --broker-defaults --config log.retention.ms=604800000"
    )]
    Alter(AlterArgs),
}

/// Which resource a config command is about.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct ResourceArgs {
    /// One broker, by id.
    #[arg(long, value_name = "ID")]
    broker: Option<i32>,
    /// The cluster-wide dynamic broker defaults.
    #[arg(long)]
    broker_defaults: bool,
    /// A topic.
    #[arg(long, value_name = "NAME")]
    topic: Option<String>,
}

impl ResourceArgs {
    fn resource(&self) -> ConfigResource {
        match (&self.topic, self.broker) {
            (Some(topic), _) => ConfigResource::Topic(topic.clone()),
            (None, Some(id)) => ConfigResource::Broker(id),
            (None, None) => ConfigResource::BrokerDefaults,
        }
    }
}

#[derive(Debug, Args)]
struct DescribeArgs {
    #[command(flatten)]
    resource: ResourceArgs,
    /// Only these configs (repeatable).
    #[arg(long = "name", value_name = "KEY")]
    names: Vec<String>,
    /// Only values set dynamically (overrides), not static or default ones.
    #[arg(long)]
    overrides: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct AlterArgs {
    #[command(flatten)]
    resource: ResourceArgs,
    #[command(flatten)]
    changes: ConfigChanges,
}

fn is_override(source: ConfigSource) -> bool {
    matches!(
        source,
        ConfigSource::DynamicTopicConfig
            | ConfigSource::DynamicBrokerConfig
            | ConfigSource::DynamicDefaultBrokerConfig
            | ConfigSource::DynamicBrokerLoggerConfig
            | ConfigSource::GroupConfig
    )
}

pub fn run(args: ConfigArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            ConfigCommand::Describe(a) => {
                let resource = a.resource.resource();
                if let ConfigResource::Topic(topic) = &resource {
                    client.topic_metadata(topic, false).await?;
                }
                let names: Vec<&str> = a.names.iter().map(String::as_str).collect();
                let mut configs = client
                    .describe_configs(&resource, (!names.is_empty()).then_some(&names[..]))
                    .await?;
                if a.overrides {
                    configs.retain(|c| is_override(c.source));
                }
                configs.sort_by(|x, y| x.name.cmp(&y.name));
                if a.json {
                    return print_json(&serde_json::json!({
                        "resource": resource.to_string(),
                        "configs": configs.iter().map(config_json).collect::<Vec<_>>(),
                    }));
                }
                outln!("Configs of {resource}:");
                if configs.is_empty() {
                    outln!("(none)");
                } else {
                    out!("{}", config_table(&configs).render());
                }
                Ok(())
            }
            ConfigCommand::Alter(a) => {
                let resource = a.resource.resource();
                if let ConfigResource::Topic(topic) = &resource {
                    client.topic_metadata(topic, false).await?;
                }
                client
                    .incremental_alter_configs(&resource, &a.changes.ops(), false)
                    .await?;
                outln!("Altered {resource}: {}.", a.changes.summary());
                Ok(())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dynamic_sources_count_as_overrides() {
        assert!(is_override(ConfigSource::DynamicTopicConfig));
        assert!(is_override(ConfigSource::DynamicDefaultBrokerConfig));
        assert!(!is_override(ConfigSource::StaticBrokerConfig));
        assert!(!is_override(ConfigSource::DefaultConfig));
    }
}
