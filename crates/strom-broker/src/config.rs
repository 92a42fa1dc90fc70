//! The broker's static configuration, and the resolution of each topic's log configuration.
//!
//! Properties arrive as Kafka-named key/value pairs (from `server.properties`, `STROM_*`
//! environment variables and `--set`, merged by the binary). Every one is validated against
//! `strom_cluster::config` at start: an unknown or invalid property stops the broker with a
//! message naming it. Kafka properties that mean nothing to Strom are accepted and logged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use strom_cluster::config::{self as defs, BrokerLayers, ConfigSource, Effect, InvalidConfig};
use strom_cluster::{ConfigResource, MetadataImage};
use strom_log::{CleanupPolicy, LogConfig, ManagerConfig, TimestampType};

/// A host and port clients connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Parses `host:port`, `[v6]:port`, or a listener URL such as `PLAINTEXT://host:port`.
pub fn parse_endpoint(text: &str) -> Result<Endpoint, String> {
    let text = text.trim();
    let address = match text.split_once("://") {
        Some((protocol, rest)) => {
            if !protocol.eq_ignore_ascii_case("PLAINTEXT") {
                return Err(format!(
                    "listener {text}: only PLAINTEXT listeners are supported"
                ));
            }
            rest
        }
        None => text,
    };
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("{text}: expected HOST:PORT"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{text}: {port} is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(Endpoint {
        host: host.to_string(),
        port,
    })
}

/// The validated static configuration of one broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Static broker properties, validated and normalised, as set (defaults are not stored).
    properties: BTreeMap<String, String>,
    pub node_id: i32,
    pub listen: Endpoint,
    /// What Metadata and FindCoordinator tell clients; defaults to the bound listen address.
    pub advertise: Option<Endpoint>,
    pub data_dir: PathBuf,
}

impl BrokerConfig {
    /// Validates every property. Errors name the offending property.
    pub fn from_properties(properties: BTreeMap<String, String>) -> Result<Self, InvalidConfig> {
        let mut validated = BTreeMap::new();
        for (name, value) in properties {
            let value = defs::validate_broker_config(&name, &value)?;
            if let Some(def) = defs::broker_config_def(&name)
                && let Effect::Ignored(why) = def.effect
            {
                tracing::info!(property = %name, "ignoring Kafka property: {why}");
            }
            validated.insert(name, value);
        }
        let invalid = |name: &str, message: String| InvalidConfig {
            name: name.to_string(),
            message,
        };
        let lookup = |name: &str| -> Option<String> {
            validated
                .get(name)
                .cloned()
                .or_else(|| defs::broker_config_def(name)?.default.map(String::from))
        };
        let node_id = validated
            .get("node.id")
            .or_else(|| validated.get("broker.id"))
            .map_or(Ok(1), |v| v.parse::<i32>())
            .map_err(|e| invalid("node.id", format!("node.id: {e}")))?;
        let first_listener = |name: &str| -> Result<Option<Endpoint>, InvalidConfig> {
            let Some(list) = validated
                .get(name)
                .cloned()
                .or_else(|| (name == "listeners").then(|| lookup("listeners")).flatten())
            else {
                return Ok(None);
            };
            let first = list.split(',').next().unwrap_or_default();
            parse_endpoint(first)
                .map(Some)
                .map_err(|m| invalid(name, format!("{name}: {m}")))
        };
        let listen = first_listener("listeners")?
            .ok_or_else(|| invalid("listeners", "listeners: no listener given".into()))?;
        let advertise = first_listener("advertised.listeners")?;
        let data_dir = validated
            .get("log.dirs")
            .map(|dirs| {
                let mut dirs = dirs.split(',');
                let first = dirs.next().unwrap_or_default().to_string();
                if dirs.next().is_some() {
                    tracing::warn!(
                        "log.dirs lists several directories; Strom uses only the first, {first}"
                    );
                }
                first
            })
            .or_else(|| lookup("log.dir"))
            .unwrap_or_else(|| "./strom-data".to_string());
        Ok(Self {
            properties: validated,
            node_id,
            listen,
            advertise,
            data_dir: PathBuf::from(data_dir),
        })
    }

    /// The static properties as set (for DescribeConfigs' STATIC_BROKER_CONFIG source).
    pub fn static_properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// A property's value: as set, else its default.
    pub fn get(&self, name: &str) -> Option<String> {
        self.properties
            .get(name)
            .cloned()
            .or_else(|| defs::broker_config_def(name)?.default.map(String::from))
    }

    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("broker property {name} has no numeric default"))
    }

    pub fn get_i32(&self, name: &str) -> i32 {
        self.get_i64(name) as i32
    }

    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v == "true")
    }

    pub fn listen_addr(&self) -> String {
        format!("{}:{}", self.listen.host, self.listen.port)
    }

    /// Where clients should connect, given the address the listener actually bound.
    pub fn advertised_endpoint(&self, bound: SocketAddr) -> Endpoint {
        self.advertise.clone().unwrap_or_else(|| Endpoint {
            host: self.listen.host.clone(),
            port: bound.port(),
        })
    }

    /// The layers a topic config resolves through, given the current metadata image.
    pub fn layers<'a>(&'a self, image: &'a MetadataImage) -> BrokerLayers<'a> {
        BrokerLayers {
            dynamic_broker: image.configs_of(&ConfigResource::Broker(self.node_id.to_string())),
            dynamic_default: image.configs_of(&ConfigResource::Broker(String::new())),
            static_broker: Some(&self.properties),
        }
    }

    /// The settings of the data directory's background work.
    pub fn manager_config(&self) -> ManagerConfig {
        ManagerConfig {
            retention_check_interval_ms: self.get_i64("log.retention.check.interval.ms"),
            flush_scheduler_interval_ms: self.get_i64("log.flush.scheduler.interval.ms"),
            recovery_point_checkpoint_interval_ms: self
                .get_i64("log.flush.offset.checkpoint.interval.ms"),
            log_start_offset_checkpoint_interval_ms: self
                .get_i64("log.flush.start.offset.checkpoint.interval.ms"),
            high_watermark_checkpoint_interval_ms: self
                .get_i64("replica.high.watermark.checkpoint.interval.ms"),
            cleaner_enable: self.get_bool("log.cleaner.enable"),
            cleaner_backoff_ms: self.get_i64("log.cleaner.backoff.ms"),
            cleaner_dedupe_buffer_size: self.get_i64("log.cleaner.dedupe.buffer.size") as u64,
        }
    }
}

/// Whether `name` is a broker property Strom knows (used or accepted-and-ignored).
pub fn is_known_property(name: &str) -> bool {
    defs::broker_config_def(name).is_some()
}

/// One resolved topic config and where it came from.
pub fn resolve_topic_config(
    config: &BrokerConfig,
    image: &MetadataImage,
    topic: &str,
    name: &str,
) -> Option<(String, ConfigSource)> {
    let def = defs::topic_config_def(name)?;
    let resolved = config
        .layers(image)
        .resolve(def, image.topic_configs(topic));
    Some((resolved.value, resolved.source))
}

/// The effective `LogConfig` of a topic: its overrides over the broker's layers over defaults.
pub fn log_config_for(config: &BrokerConfig, image: &MetadataImage, topic: &str) -> LogConfig {
    let layers = config.layers(image);
    let overrides = image.topic_configs(topic);
    // A value that does not parse here passed validation against the same type, so a failure
    // can only mean an inconsistent table; the default keeps the broker serving.
    let value = |name: &str| -> String {
        let def =
            defs::topic_config_def(name).unwrap_or_else(|| panic!("unknown topic config {name}"));
        layers.resolve(def, overrides).value
    };
    let long = |name: &str, default: i64| value(name).parse::<i64>().unwrap_or(default);
    let mut log = LogConfig::default();
    log.segment_bytes = long("segment.bytes", log.segment_bytes as i64) as u64;
    log.segment_ms = long("segment.ms", log.segment_ms);
    log.segment_jitter_ms = long("segment.jitter.ms", log.segment_jitter_ms);
    log.segment_index_bytes = long("segment.index.bytes", log.segment_index_bytes as i64) as u64;
    log.index_interval_bytes = long("index.interval.bytes", log.index_interval_bytes as i64) as u64;
    log.retention_ms = long("retention.ms", log.retention_ms);
    log.retention_bytes = long("retention.bytes", log.retention_bytes);
    let policy = value("cleanup.policy");
    log.cleanup_policy = CleanupPolicy {
        delete: policy.split(',').any(|p| p == "delete"),
        compact: policy.split(',').any(|p| p == "compact"),
    };
    log.delete_retention_ms = long("delete.retention.ms", log.delete_retention_ms);
    log.min_cleanable_dirty_ratio = value("min.cleanable.dirty.ratio")
        .parse()
        .unwrap_or(log.min_cleanable_dirty_ratio);
    log.min_compaction_lag_ms = long("min.compaction.lag.ms", log.min_compaction_lag_ms);
    log.max_compaction_lag_ms = long("max.compaction.lag.ms", log.max_compaction_lag_ms);
    log.flush_messages = long("flush.messages", log.flush_messages);
    log.flush_ms = long("flush.ms", log.flush_ms);
    log.max_message_bytes = long("max.message.bytes", log.max_message_bytes as i64) as i32;
    log.message_timestamp_type = if value("message.timestamp.type") == "LogAppendTime" {
        TimestampType::LogAppendTime
    } else {
        TimestampType::CreateTime
    };
    log.message_timestamp_before_max_ms = long(
        "message.timestamp.before.max.ms",
        log.message_timestamp_before_max_ms,
    );
    log.message_timestamp_after_max_ms = long(
        "message.timestamp.after.max.ms",
        log.message_timestamp_after_max_ms,
    );
    log.file_delete_delay_ms = long("file.delete.delay.ms", log.file_delete_delay_ms);
    log.preallocate = value("preallocate") == "true";
    log.producer_id_expiration_ms = config.get_i64("producer.id.expiration.ms");
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_listen_on_localhost_9092_with_data_in_strom_data() {
        let config = BrokerConfig::from_properties(BTreeMap::new()).unwrap();
        assert_eq!(
            config.listen,
            Endpoint {
                host: "127.0.0.1".into(),
                port: 9092
            }
        );
        assert_eq!(config.data_dir, PathBuf::from("./strom-data"));
        assert_eq!(config.node_id, 1);
        assert!(config.get_bool("auto.create.topics.enable"));
        assert_eq!(config.get_i32("num.partitions"), 1);
    }

    #[test]
    fn listeners_and_log_dirs_are_read_like_kafka() {
        let config = BrokerConfig::from_properties(props(&[
            ("listeners", "PLAINTEXT://0.0.0.0:19092"),
            ("advertised.listeners", "PLAINTEXT://broker1:19092"),
            ("log.dirs", "/tmp/a"),
            ("node.id", "7"),
        ]))
        .unwrap();
        assert_eq!(config.listen.port, 19092);
        assert_eq!(config.advertise.unwrap().host, "broker1");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/a"));
        assert_eq!(config.node_id, 7);
    }

    #[test]
    fn unknown_and_invalid_properties_are_named() {
        let err = BrokerConfig::from_properties(props(&[("log.retention.mss", "1")])).unwrap_err();
        assert!(err.message.contains("log.retention.mss"), "{}", err.message);
        let err = BrokerConfig::from_properties(props(&[("num.partitions", "zero")])).unwrap_err();
        assert!(err.message.contains("num.partitions"), "{}", err.message);
        let err = BrokerConfig::from_properties(props(&[("listeners", "SSL://x:1")])).unwrap_err();
        assert!(err.message.contains("PLAINTEXT"), "{}", err.message);
    }

    #[test]
    fn ignored_kafka_properties_are_accepted() {
        BrokerConfig::from_properties(props(&[
            ("num.network.threads", "3"),
            ("process.roles", "broker,controller"),
        ]))
        .unwrap();
    }

    #[test]
    fn topic_log_config_layers_override_broker_defaults() {
        let config = BrokerConfig::from_properties(props(&[
            ("log.retention.hours", "1"),
            ("log.segment.bytes", "2000000"),
        ]))
        .unwrap();
        let mut image = MetadataImage::default();
        image.replay(&strom_cluster::MetadataRecord::Config {
            resource: ConfigResource::Topic("t".into()),
            name: "segment.bytes".into(),
            value: Some("3000000".into()),
        });
        let log = log_config_for(&config, &image, "t");
        assert_eq!(log.retention_ms, 3_600_000);
        assert_eq!(log.segment_bytes, 3_000_000);
        let other = log_config_for(&config, &image, "u");
        assert_eq!(other.segment_bytes, 2_000_000);
        assert!(other.cleanup_policy.delete && !other.cleanup_policy.compact);
    }
}
