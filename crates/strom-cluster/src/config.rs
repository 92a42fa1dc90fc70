//! Configuration definitions: every topic and broker property Strom knows, with Kafka's names,
//! types, defaults and documentation, and the rules that resolve a topic's effective value.
//!
//! One table serves the controller (validating CreateTopics/AlterConfigs), the broker (parsing
//! `server.properties`, `--set`, `STROM_*`), and DescribeConfigs (types, sources, synonyms).
//!
//! Resolution of a topic config follows Kafka: the topic's own override, else the first broker
//! synonym that is set (dynamic per-broker, then dynamic cluster default, then static), in the
//! synonym order listed (e.g. `log.retention.ms`, `log.retention.minutes`, `log.retention.hours`),
//! else the built-in default.

use std::collections::BTreeMap;

/// Kafka's `ConfigType` codes used by DescribeConfigs v3+.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

/// Kafka's `ConfigSource` codes used by DescribeConfigs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
}

/// How a value is checked beyond its type.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    None,
    /// Inclusive range for numeric types.
    Range(f64, f64),
    /// One of these strings (case-sensitive, as Kafka does for these configs).
    OneOf(&'static [&'static str]),
    /// A non-empty comma-separated list of these values.
    ListOf(&'static [&'static str]),
}

/// A broker synonym of a topic config and the factor that converts its unit to the topic's.
#[derive(Debug, Clone, Copy)]
pub struct Synonym {
    pub name: &'static str,
    pub to_topic_unit: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    /// The default when neither the topic nor any broker synonym sets it.
    pub default: &'static str,
    pub check: Check,
    pub synonyms: &'static [Synonym],
    /// Accepted values beyond what the engine implements are refused with this reason.
    pub restriction: Option<(&'static str, &'static str)>,
    pub doc: &'static str,
}

/// What a broker property does in Strom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Read and used by Strom.
    Used,
    /// A Kafka property that has no meaning for Strom's design; accepted so that existing
    /// `server.properties` files work, and ignored with a log line naming it.
    Ignored(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct BrokerConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    /// `None`: no default (unset unless given).
    pub default: Option<&'static str>,
    pub check: Check,
    /// Changeable with AlterConfigs without a restart.
    pub dynamic: bool,
    pub effect: Effect,
    pub doc: &'static str,
}

const DAY_MS: &str = "86400000";
const fn syn(name: &'static str) -> Synonym {
    Synonym {
        name,
        to_topic_unit: 1,
    }
}
const fn syn_scaled(name: &'static str, to_topic_unit: i64) -> Synonym {
    Synonym {
        name,
        to_topic_unit,
    }
}
const NON_NEGATIVE: Check = Check::Range(0.0, i64::MAX as f64);
const POSITIVE: Check = Check::Range(1.0, i64::MAX as f64);
const INT_NON_NEGATIVE: Check = Check::Range(0.0, i32::MAX as f64);

macro_rules! topic_config {
    ($name:literal, $kind:ident, $default:expr, $check:expr, [$($syn:expr),*], $doc:literal) => {
        TopicConfigDef {
            name: $name,
            kind: ConfigType::$kind,
            default: $default,
            check: $check,
            synonyms: &[$($syn),*],
            restriction: None,
            doc: $doc,
        }
    };
}

/// Every topic-level config, sorted by name.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    topic_config!(
        "cleanup.policy",
        List,
        "delete",
        Check::ListOf(&["compact", "delete"]),
        [syn("log.cleanup.policy")],
        "delete: old segments are removed by retention; compact: the latest record per key is kept."
    ),
    TopicConfigDef {
        name: "compression.type",
        kind: ConfigType::String,
        default: "producer",
        check: Check::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        synonyms: &[syn("compression.type")],
        restriction: Some((
            "producer",
            "Strom stores record batches exactly as the producer compressed them; only compression.type=producer is supported",
        )),
        doc: "The compression of stored batches; producer keeps the producer's codec.",
    },
    topic_config!(
        "delete.retention.ms",
        Long,
        DAY_MS,
        NON_NEGATIVE,
        [syn("log.cleaner.delete.retention.ms")],
        "How long tombstones are kept on a compacted topic."
    ),
    topic_config!(
        "file.delete.delay.ms",
        Long,
        "60000",
        NON_NEGATIVE,
        [syn("log.segment.delete.delay.ms")],
        "Time to wait before deleting a file from the filesystem."
    ),
    topic_config!(
        "flush.messages",
        Long,
        "9223372036854775807",
        POSITIVE,
        [syn("log.flush.interval.messages")],
        "Fsync the log after this many records."
    ),
    topic_config!(
        "flush.ms",
        Long,
        "9223372036854775807",
        NON_NEGATIVE,
        [syn("log.flush.interval.ms")],
        "Fsync the log when unflushed data is this old."
    ),
    topic_config!(
        "index.interval.bytes",
        Int,
        "4096",
        INT_NON_NEGATIVE,
        [syn("log.index.interval.bytes")],
        "Bytes of log between two offset index entries."
    ),
    topic_config!(
        "max.compaction.lag.ms",
        Long,
        "9223372036854775807",
        POSITIVE,
        [syn("log.cleaner.max.compaction.lag.ms")],
        "The longest time a record stays ineligible for compaction."
    ),
    topic_config!(
        "max.message.bytes",
        Int,
        "1048588",
        INT_NON_NEGATIVE,
        [syn("message.max.bytes")],
        "The largest record batch size allowed."
    ),
    topic_config!(
        "message.timestamp.after.max.ms",
        Long,
        "3600000",
        NON_NEGATIVE,
        [syn("log.message.timestamp.after.max.ms")],
        "How far a CreateTime timestamp may be ahead of the broker's clock."
    ),
    topic_config!(
        "message.timestamp.before.max.ms",
        Long,
        "9223372036854775807",
        NON_NEGATIVE,
        [syn("log.message.timestamp.before.max.ms")],
        "How far a CreateTime timestamp may be behind the broker's clock."
    ),
    topic_config!(
        "message.timestamp.type",
        String,
        "CreateTime",
        Check::OneOf(&["CreateTime", "LogAppendTime"]),
        [syn("log.message.timestamp.type")],
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's clock."
    ),
    topic_config!(
        "min.cleanable.dirty.ratio",
        Double,
        "0.5",
        Check::Range(0.0, 1.0),
        [syn("log.cleaner.min.cleanable.ratio")],
        "The share of uncompacted log that makes a log eligible for compaction."
    ),
    topic_config!(
        "min.compaction.lag.ms",
        Long,
        "0",
        NON_NEGATIVE,
        [syn("log.cleaner.min.compaction.lag.ms")],
        "The shortest time a record stays uncompacted."
    ),
    topic_config!(
        "min.insync.replicas",
        Int,
        "1",
        Check::Range(1.0, i32::MAX as f64),
        [syn("min.insync.replicas")],
        "The fewest in-sync replicas that must have a record for acks=all to succeed."
    ),
    topic_config!(
        "preallocate",
        Boolean,
        "false",
        Check::None,
        [syn("log.preallocate")],
        "Preallocate segment files."
    ),
    topic_config!(
        "retention.bytes",
        Long,
        "-1",
        Check::Range(-1.0, i64::MAX as f64),
        [syn("log.retention.bytes")],
        "The largest size a partition's log keeps before deleting old segments; -1: no limit."
    ),
    topic_config!(
        "retention.ms",
        Long,
        "604800000",
        Check::Range(-1.0, i64::MAX as f64),
        [
            syn("log.retention.ms"),
            syn_scaled("log.retention.minutes", 60_000),
            syn_scaled("log.retention.hours", 3_600_000)
        ],
        "How long records are kept before their segment is deleted; -1: forever."
    ),
    topic_config!(
        "segment.bytes",
        Int,
        "1073741824",
        Check::Range(1_048_576.0, i32::MAX as f64),
        [syn("log.segment.bytes")],
        "The size at which a new segment file is started."
    ),
    topic_config!(
        "segment.index.bytes",
        Int,
        "10485760",
        Check::Range(4.0, i32::MAX as f64),
        [syn("log.index.size.max.bytes")],
        "The preallocated size of each segment's offset and time index."
    ),
    topic_config!(
        "segment.jitter.ms",
        Long,
        "0",
        NON_NEGATIVE,
        [
            syn("log.roll.jitter.ms"),
            syn_scaled("log.roll.jitter.hours", 3_600_000)
        ],
        "Random jitter subtracted from segment.ms so segments do not all roll at once."
    ),
    topic_config!(
        "segment.ms",
        Long,
        "604800000",
        POSITIVE,
        [syn("log.roll.ms"), syn_scaled("log.roll.hours", 3_600_000)],
        "The age at which a new segment file is started even if the active one is not full."
    ),
    topic_config!(
        "unclean.leader.election.enable",
        Boolean,
        "false",
        Check::None,
        [syn("unclean.leader.election.enable")],
        "Allow a replica outside the in-sync set to become leader, at the cost of data loss."
    ),
];

macro_rules! broker_config {
    ($name:literal, $kind:ident, $default:expr, $check:expr, $dynamic:expr, $doc:literal) => {
        BrokerConfigDef {
            name: $name,
            kind: ConfigType::$kind,
            default: $default,
            check: $check,
            dynamic: $dynamic,
            effect: Effect::Used,
            doc: $doc,
        }
    };
}
macro_rules! ignored_config {
    ($name:literal, $kind:ident, $why:literal) => {
        BrokerConfigDef {
            name: $name,
            kind: ConfigType::$kind,
            default: None,
            check: Check::None,
            dynamic: false,
            effect: Effect::Ignored($why),
            doc: $why,
        }
    };
}

const NO_LIMIT_INT: Option<&str> = Some("2147483647");
const NO_LIMIT_LONG: Option<&str> = Some("9223372036854775807");

/// Every broker-level property, sorted by name. Topic-config synonyms are dynamic like in
/// Kafka: changing them changes the default of every topic without an override.
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    broker_config!(
        "advertised.listeners",
        List,
        None,
        Check::None,
        false,
        "The address clients are told to use, as PLAINTEXT://host:port (default: listeners)."
    ),
    broker_config!(
        "auto.create.topics.enable",
        Boolean,
        Some("true"),
        Check::None,
        false,
        "Create a topic when a client asks for its metadata or produces to it."
    ),
    broker_config!(
        "auto.leader.rebalance.enable",
        Boolean,
        Some("true"),
        Check::None,
        false,
        "Move leadership back to each partition's preferred replica when it is in sync."
    ),
    broker_config!(
        "broker.heartbeat.interval.ms",
        Int,
        Some("2000"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "How often a broker heartbeats to the active controller."
    ),
    broker_config!(
        "broker.id",
        Int,
        None,
        Check::Range(0.0, i32::MAX as f64),
        false,
        "Synonym of node.id."
    ),
    broker_config!(
        "broker.rack",
        String,
        None,
        Check::None,
        false,
        "The broker's rack: replicas of a partition are spread over racks."
    ),
    broker_config!(
        "broker.session.timeout.ms",
        Int,
        Some("9000"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "A broker that has not heartbeated for this long is fenced: it leaves Metadata and leads nothing."
    ),
    broker_config!(
        "compression.type",
        String,
        Some("producer"),
        Check::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        true,
        "Default compression.type of topics (only producer is supported)."
    ),
    broker_config!(
        "controlled.shutdown.enable",
        Boolean,
        Some("true"),
        Check::None,
        false,
        "On SIGTERM, ask the controller to move leadership away before stopping."
    ),
    broker_config!(
        "controller.listener.names",
        List,
        Some("CONTROLLER"),
        Check::None,
        false,
        "The listener names (in listeners) that serve the controller quorum."
    ),
    broker_config!(
        "controller.quorum.election.timeout.ms",
        Int,
        Some("1000"),
        Check::Range(10.0, i32::MAX as f64),
        false,
        "How long a voter waits without hearing from the leader before it starts an election (the longest wait is twice this)."
    ),
    broker_config!(
        "controller.quorum.voters",
        List,
        None,
        Check::None,
        false,
        "The quorum's voters as id@host:port (controller listeners); empty: a single-node quorum of this node."
    ),
    broker_config!(
        "connections.max.idle.ms",
        Long,
        Some("600000"),
        POSITIVE,
        false,
        "Close connections idle for longer than this."
    ),
    broker_config!(
        "default.replication.factor",
        Short,
        Some("1"),
        Check::Range(1.0, 32767.0),
        false,
        "Replication factor of automatically created topics."
    ),
    broker_config!(
        "delete.topic.enable",
        Boolean,
        Some("true"),
        Check::None,
        false,
        "Allow DeleteTopics."
    ),
    broker_config!(
        "fetch.max.bytes",
        Int,
        Some("57671680"),
        Check::Range(1024.0, i32::MAX as f64),
        false,
        "The most bytes a fetch response may hold."
    ),
    broker_config!(
        "group.initial.rebalance.delay.ms",
        Int,
        Some("3000"),
        INT_NON_NEGATIVE,
        false,
        "How long a new group waits for more members before its first rebalance."
    ),
    broker_config!(
        "group.max.session.timeout.ms",
        Int,
        Some("1800000"),
        INT_NON_NEGATIVE,
        false,
        "The largest session timeout a group member may ask for."
    ),
    broker_config!(
        "group.max.size",
        Int,
        NO_LIMIT_INT,
        Check::Range(1.0, i32::MAX as f64),
        false,
        "The most members a consumer group may have."
    ),
    broker_config!(
        "group.min.session.timeout.ms",
        Int,
        Some("6000"),
        INT_NON_NEGATIVE,
        false,
        "The smallest session timeout a group member may ask for."
    ),
    broker_config!(
        "leader.imbalance.check.interval.seconds",
        Long,
        Some("300"),
        POSITIVE,
        false,
        "How often the controller moves leadership back to preferred replicas."
    ),
    broker_config!(
        "listeners",
        List,
        Some("PLAINTEXT://127.0.0.1:9092"),
        Check::None,
        false,
        "The address to listen on, as PLAINTEXT://host:port."
    ),
    broker_config!(
        "log.cleaner.backoff.ms",
        Long,
        Some("15000"),
        NON_NEGATIVE,
        false,
        "How long the log cleaner sleeps when there is nothing to compact."
    ),
    broker_config!(
        "log.cleaner.dedupe.buffer.size",
        Long,
        Some("134217728"),
        POSITIVE,
        false,
        "Memory for the log cleaner's key map."
    ),
    broker_config!(
        "log.cleaner.delete.retention.ms",
        Long,
        Some(DAY_MS),
        NON_NEGATIVE,
        true,
        "Default delete.retention.ms."
    ),
    broker_config!(
        "log.cleaner.enable",
        Boolean,
        Some("true"),
        Check::None,
        false,
        "Run the log cleaner for compacted topics."
    ),
    broker_config!(
        "log.cleaner.max.compaction.lag.ms",
        Long,
        NO_LIMIT_LONG,
        POSITIVE,
        true,
        "Default max.compaction.lag.ms."
    ),
    broker_config!(
        "log.cleaner.min.cleanable.ratio",
        Double,
        Some("0.5"),
        Check::Range(0.0, 1.0),
        true,
        "Default min.cleanable.dirty.ratio."
    ),
    broker_config!(
        "log.cleaner.min.compaction.lag.ms",
        Long,
        Some("0"),
        NON_NEGATIVE,
        true,
        "Default min.compaction.lag.ms."
    ),
    broker_config!(
        "log.cleanup.policy",
        List,
        Some("delete"),
        Check::ListOf(&["compact", "delete"]),
        true,
        "Default cleanup.policy."
    ),
    broker_config!(
        "log.dir",
        String,
        Some("./strom-data"),
        Check::None,
        false,
        "The data directory (log.dirs takes precedence)."
    ),
    broker_config!(
        "log.dirs",
        List,
        None,
        Check::None,
        false,
        "The data directory; Strom uses a single directory."
    ),
    broker_config!(
        "log.flush.interval.messages",
        Long,
        NO_LIMIT_LONG,
        POSITIVE,
        true,
        "Default flush.messages."
    ),
    broker_config!(
        "log.flush.interval.ms",
        Long,
        None,
        NON_NEGATIVE,
        true,
        "Default flush.ms."
    ),
    broker_config!(
        "log.flush.offset.checkpoint.interval.ms",
        Int,
        Some("60000"),
        INT_NON_NEGATIVE,
        false,
        "How often the recovery point of each log is checkpointed."
    ),
    broker_config!(
        "log.flush.scheduler.interval.ms",
        Long,
        Some("1000"),
        POSITIVE,
        false,
        "How often logs are checked against flush.ms."
    ),
    broker_config!(
        "log.flush.start.offset.checkpoint.interval.ms",
        Int,
        Some("60000"),
        INT_NON_NEGATIVE,
        false,
        "How often log start offsets are checkpointed."
    ),
    broker_config!(
        "log.index.interval.bytes",
        Int,
        Some("4096"),
        INT_NON_NEGATIVE,
        true,
        "Default index.interval.bytes."
    ),
    broker_config!(
        "log.index.size.max.bytes",
        Int,
        Some("10485760"),
        Check::Range(4.0, i32::MAX as f64),
        true,
        "Default segment.index.bytes."
    ),
    broker_config!(
        "log.message.timestamp.after.max.ms",
        Long,
        Some("3600000"),
        NON_NEGATIVE,
        true,
        "Default message.timestamp.after.max.ms."
    ),
    broker_config!(
        "log.message.timestamp.before.max.ms",
        Long,
        NO_LIMIT_LONG,
        NON_NEGATIVE,
        true,
        "Default message.timestamp.before.max.ms."
    ),
    broker_config!(
        "log.message.timestamp.type",
        String,
        Some("CreateTime"),
        Check::OneOf(&["CreateTime", "LogAppendTime"]),
        true,
        "Default message.timestamp.type."
    ),
    broker_config!(
        "log.preallocate",
        Boolean,
        Some("false"),
        Check::None,
        true,
        "Default preallocate."
    ),
    broker_config!(
        "log.retention.bytes",
        Long,
        Some("-1"),
        Check::Range(-1.0, i64::MAX as f64),
        true,
        "Default retention.bytes."
    ),
    broker_config!(
        "log.retention.check.interval.ms",
        Long,
        Some("300000"),
        POSITIVE,
        false,
        "How often logs are checked for segments to delete by retention."
    ),
    broker_config!(
        "log.retention.hours",
        Int,
        Some("168"),
        Check::Range(-1.0, i32::MAX as f64),
        true,
        "Default retention.ms, in hours (used when log.retention.ms and .minutes are unset)."
    ),
    broker_config!(
        "log.retention.minutes",
        Int,
        None,
        Check::Range(-1.0, i32::MAX as f64),
        true,
        "Default retention.ms, in minutes (used when log.retention.ms is unset)."
    ),
    broker_config!(
        "log.retention.ms",
        Long,
        None,
        Check::Range(-1.0, i64::MAX as f64),
        true,
        "Default retention.ms."
    ),
    broker_config!(
        "log.roll.hours",
        Int,
        Some("168"),
        Check::Range(1.0, i32::MAX as f64),
        true,
        "Default segment.ms, in hours."
    ),
    broker_config!(
        "log.roll.jitter.hours",
        Int,
        Some("0"),
        INT_NON_NEGATIVE,
        true,
        "Default segment.jitter.ms, in hours."
    ),
    broker_config!(
        "log.roll.jitter.ms",
        Long,
        None,
        NON_NEGATIVE,
        true,
        "Default segment.jitter.ms."
    ),
    broker_config!(
        "log.roll.ms",
        Long,
        None,
        POSITIVE,
        true,
        "Default segment.ms."
    ),
    broker_config!(
        "log.segment.bytes",
        Int,
        Some("1073741824"),
        Check::Range(1_048_576.0, i32::MAX as f64),
        true,
        "Default segment.bytes."
    ),
    broker_config!(
        "log.segment.delete.delay.ms",
        Long,
        Some("60000"),
        NON_NEGATIVE,
        true,
        "Default file.delete.delay.ms."
    ),
    broker_config!(
        "max.connections",
        Int,
        NO_LIMIT_INT,
        Check::Range(1.0, i32::MAX as f64),
        false,
        "The most client connections the broker accepts at once."
    ),
    broker_config!(
        "max.connections.per.ip",
        Int,
        NO_LIMIT_INT,
        Check::Range(0.0, i32::MAX as f64),
        false,
        "The most connections one client address may hold at once."
    ),
    broker_config!(
        "max.connections.per.ip.overrides",
        String,
        Some(""),
        Check::None,
        false,
        "Per-address exceptions to max.connections.per.ip, as ADDRESS:COUNT pairs (IP addresses, not host names)."
    ),
    broker_config!(
        "message.max.bytes",
        Int,
        Some("1048588"),
        INT_NON_NEGATIVE,
        true,
        "Default max.message.bytes: the largest record batch."
    ),
    broker_config!(
        "metadata.log.max.record.bytes.between.snapshots",
        Long,
        Some("20971520"),
        POSITIVE,
        false,
        "Take a metadata snapshot after this many bytes of new records."
    ),
    broker_config!(
        "metadata.log.max.snapshot.interval.ms",
        Long,
        Some("3600000"),
        POSITIVE,
        false,
        "Take a metadata snapshot this often when anything changed."
    ),
    broker_config!(
        "metadata.max.retention.bytes",
        Long,
        Some("104857600"),
        Check::Range(0.0, i64::MAX as f64),
        false,
        "When the metadata log kept behind the latest snapshot is larger than this, the entries the snapshot covers are deleted."
    ),
    broker_config!(
        "min.insync.replicas",
        Int,
        Some("1"),
        Check::Range(1.0, i32::MAX as f64),
        true,
        "Default min.insync.replicas."
    ),
    broker_config!(
        "node.id",
        Int,
        Some("1"),
        Check::Range(0.0, i32::MAX as f64),
        false,
        "This broker's id."
    ),
    broker_config!(
        "num.partitions",
        Int,
        Some("1"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "Partitions of automatically created topics."
    ),
    broker_config!(
        "offset.metadata.max.bytes",
        Int,
        Some("4096"),
        INT_NON_NEGATIVE,
        false,
        "The largest metadata string an offset commit may carry."
    ),
    broker_config!(
        "offsets.retention.check.interval.ms",
        Long,
        Some("600000"),
        POSITIVE,
        false,
        "How often the group coordinator looks for expired offsets and empty groups."
    ),
    broker_config!(
        "offsets.retention.minutes",
        Int,
        Some("10080"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "How long committed offsets of an empty group are kept."
    ),
    broker_config!(
        "offsets.topic.num.partitions",
        Int,
        Some("50"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "Partitions of the __consumer_offsets topic (fixed once the topic exists)."
    ),
    broker_config!(
        "offsets.topic.replication.factor",
        Short,
        Some("3"),
        Check::Range(1.0, 32767.0),
        false,
        "Replication factor of __consumer_offsets (capped at the number of brokers)."
    ),
    broker_config!(
        "transaction.partition.verification.enable",
        Boolean,
        Some("true"),
        Check::None,
        false,
        "Verify with the transaction coordinator that a partition is in the producer's transaction before appending its first transactional batch (KIP-890)."
    ),
    broker_config!(
        "transaction.state.log.num.partitions",
        Int,
        Some("50"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "Partitions of the __transaction_state topic (fixed once the topic exists)."
    ),
    broker_config!(
        "transaction.state.log.replication.factor",
        Short,
        Some("3"),
        Check::Range(1.0, 32767.0),
        false,
        "Replication factor of __transaction_state (capped at the number of brokers)."
    ),
    broker_config!(
        "transaction.state.log.min.isr",
        Int,
        Some("2"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "min.insync.replicas of __transaction_state (capped at its replication factor)."
    ),
    broker_config!(
        "transaction.state.log.segment.bytes",
        Int,
        Some("104857600"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "segment.bytes of __transaction_state."
    ),
    broker_config!(
        "transaction.max.timeout.ms",
        Int,
        Some("900000"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "The largest transaction.timeout.ms a producer may ask for."
    ),
    broker_config!(
        "transactional.id.expiration.ms",
        Int,
        Some("604800000"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "How long the coordinator keeps a transactional id it has heard nothing from."
    ),
    broker_config!(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Int,
        Some("10000"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "How often the coordinator aborts transactions past their timeout and forgets expired ids."
    ),
    broker_config!(
        "offsets.topic.segment.bytes",
        Int,
        Some("104857600"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "segment.bytes of __consumer_offsets."
    ),
    broker_config!(
        "process.roles",
        List,
        Some("broker,controller"),
        Check::ListOf(&["broker", "controller"]),
        false,
        "broker, controller, or both (the default): what this node does."
    ),
    broker_config!(
        "producer.id.expiration.ms",
        Int,
        Some("86400000"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "How long the broker remembers an idle idempotent producer's sequence state."
    ),
    broker_config!(
        "queued.max.requests",
        Int,
        Some("500"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "The most requests one connection may have in flight before the broker stops reading it."
    ),
    broker_config!(
        "replica.high.watermark.checkpoint.interval.ms",
        Long,
        Some("5000"),
        POSITIVE,
        false,
        "How often high watermarks are checkpointed."
    ),
    broker_config!(
        "replica.lag.time.max.ms",
        Long,
        Some("30000"),
        POSITIVE,
        false,
        "A follower that has not caught up with the leader for this long leaves the in-sync replicas."
    ),
    broker_config!(
        "replica.selector.class",
        String,
        Some("org.apache.kafka.common.replica.RackAwareReplicaSelector"),
        Check::OneOf(&[
            "",
            "org.apache.kafka.common.replica.RackAwareReplicaSelector"
        ]),
        false,
        "KIP-392: with Kafka's RackAwareReplicaSelector (the default here; empty turns it off), a consumer whose client.rack matches an in-sync replica's broker.rack reads from that replica."
    ),
    broker_config!(
        "socket.request.max.bytes",
        Int,
        Some("104857600"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "The largest request frame the broker accepts; larger ones close the connection."
    ),
    broker_config!(
        "strom.fsync.acks.all",
        Boolean,
        Some("true"),
        Check::None,
        false,
        "Strom: with acks=all, when the leader is the only in-sync replica, answer only after the records are fsynced (a lone replica has nothing to lean on; several in-sync replicas lean on each other, as in Kafka)."
    ),
    broker_config!(
        "unclean.leader.election.enable",
        Boolean,
        Some("false"),
        Check::None,
        true,
        "Default unclean.leader.election.enable."
    ),
    // Security: listeners and their protocols, TLS (rustls) and SASL. The ssl.* and sasl.*
    // properties and connections.max.reauth.ms may also be set per listener as
    // listener.name.<listener>.<property> (and the JAAS line per mechanism as
    // listener.name.<listener>.<mechanism>.sasl.jaas.config), as in Kafka.
    broker_config!(
        "authorizer.class.name",
        String,
        Some(""),
        Check::None,
        false,
        "Set to org.apache.kafka.metadata.authorizer.StandardAuthorizer (or kafka.security.authorizer.AclAuthorizer) to enforce ACLs; empty allows everything."
    ),
    broker_config!(
        "super.users",
        String,
        Some(""),
        Check::None,
        false,
        "Principals allowed everything whatever the ACLs, separated by semicolons: User:admin;User:broker."
    ),
    broker_config!(
        "allow.everyone.if.no.acl.found",
        Boolean,
        Some("false"),
        Check::None,
        false,
        "With ACLs enforced, allow a request on a resource that has no ACL at all."
    ),
    broker_config!(
        "listener.security.protocol.map",
        List,
        Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
        Check::None,
        false,
        "The security protocol of each listener name, as NAME:PROTOCOL pairs."
    ),
    broker_config!(
        "inter.broker.listener.name",
        String,
        None,
        Check::None,
        false,
        "The listener other brokers connect to (default: the one using security.inter.broker.protocol)."
    ),
    broker_config!(
        "security.inter.broker.protocol",
        String,
        Some("PLAINTEXT"),
        Check::OneOf(&["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]),
        false,
        "The security protocol brokers use to talk to each other, when inter.broker.listener.name is not set."
    ),
    broker_config!(
        "sasl.enabled.mechanisms",
        List,
        Some("GSSAPI"),
        Check::None,
        false,
        "The SASL mechanisms SASL listeners offer: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (GSSAPI and OAUTHBEARER are not served)."
    ),
    broker_config!(
        "sasl.mechanism.inter.broker.protocol",
        String,
        Some("GSSAPI"),
        Check::None,
        false,
        "The SASL mechanism brokers authenticate to each other with."
    ),
    broker_config!(
        "sasl.jaas.config",
        Password,
        None,
        Check::None,
        false,
        "A JAAS login module line: PLAIN users as user_NAME=\"password\", and username/password for connections to other brokers."
    ),
    broker_config!(
        "sasl.server.max.receive.size",
        Int,
        Some("524288"),
        Check::Range(1.0, i32::MAX as f64),
        false,
        "The largest request accepted before a SASL client has authenticated."
    ),
    broker_config!(
        "connections.max.reauth.ms",
        Long,
        Some("0"),
        Check::Range(0.0, i64::MAX as f64),
        false,
        "A SASL session lasts at most this long; the client must re-authenticate on the same connection (KIP-368). 0: forever."
    ),
    broker_config!(
        "ssl.keystore.type",
        String,
        Some("PEM"),
        Check::None,
        false,
        "The key store format: PEM (JKS and PKCS12 are Java formats; convert them to PEM)."
    ),
    broker_config!(
        "ssl.keystore.location",
        String,
        None,
        Check::None,
        false,
        "A PEM file holding the private key and its certificate chain."
    ),
    broker_config!(
        "ssl.keystore.password",
        Password,
        None,
        Check::None,
        false,
        "Not needed for PEM key stores (accepted for Kafka compatibility)."
    ),
    broker_config!(
        "ssl.keystore.key",
        Password,
        None,
        Check::None,
        false,
        "The private key, inline in PEM (with ssl.keystore.certificate.chain)."
    ),
    broker_config!(
        "ssl.keystore.certificate.chain",
        String,
        None,
        Check::None,
        false,
        "The certificate chain, inline in PEM (with ssl.keystore.key)."
    ),
    broker_config!(
        "ssl.key.password",
        Password,
        None,
        Check::None,
        false,
        "The password of an encrypted private key (encrypted keys are not supported yet)."
    ),
    broker_config!(
        "ssl.truststore.type",
        String,
        Some("PEM"),
        Check::None,
        false,
        "The trust store format: PEM."
    ),
    broker_config!(
        "ssl.truststore.location",
        String,
        None,
        Check::None,
        false,
        "A PEM file of the CA certificates client certificates are checked against."
    ),
    broker_config!(
        "ssl.truststore.password",
        Password,
        None,
        Check::None,
        false,
        "Not needed for PEM trust stores (accepted for Kafka compatibility)."
    ),
    broker_config!(
        "ssl.truststore.certificates",
        String,
        None,
        Check::None,
        false,
        "The trusted CA certificates, inline in PEM."
    ),
    broker_config!(
        "ssl.client.auth",
        String,
        Some("none"),
        Check::OneOf(&["none", "requested", "required"]),
        false,
        "Whether SSL listeners ask clients for a certificate; its subject becomes the principal."
    ),
    broker_config!(
        "ssl.enabled.protocols",
        List,
        Some("TLSv1.2,TLSv1.3"),
        Check::None,
        false,
        "The TLS versions SSL listeners accept."
    ),
    broker_config!(
        "ssl.protocol",
        String,
        Some("TLSv1.3"),
        Check::None,
        false,
        "Kept for Kafka compatibility: the versions come from ssl.enabled.protocols."
    ),
    broker_config!(
        "ssl.cipher.suites",
        List,
        None,
        Check::None,
        false,
        "The cipher suites SSL listeners accept, by IANA name (default: all that rustls offers)."
    ),
    broker_config!(
        "ssl.principal.mapping.rules",
        String,
        Some("DEFAULT"),
        Check::None,
        false,
        "Rules that turn a client certificate's distinguished name into a user name: RULE:pattern/replacement/[LU], DEFAULT."
    ),
    broker_config!(
        "ssl.endpoint.identification.algorithm",
        String,
        Some("https"),
        Check::None,
        false,
        "How a broker connecting to another checks its certificate: https checks the host name, empty does not."
    ),
    ignored_config!(
        "controller.quorum.bootstrap.servers",
        List,
        "Strom's metadata quorum is configured by Strom's own cluster settings."
    ),
    ignored_config!(
        "group.coordinator.rebalance.protocols",
        List,
        "Strom implements the classic group protocol."
    ),
    ignored_config!(
        "log.retention.check.interval.hours",
        Int,
        "Use log.retention.check.interval.ms."
    ),
    ignored_config!(
        "num.io.threads",
        Int,
        "Strom sizes its runtime to the machine's cores."
    ),
    ignored_config!(
        "num.network.threads",
        Int,
        "Strom sizes its runtime to the machine's cores."
    ),
    ignored_config!(
        "num.recovery.threads.per.data.dir",
        Int,
        "Strom recovers logs with its own thread pool."
    ),
    ignored_config!(
        "share.coordinator.state.topic.min.isr",
        Short,
        "Share groups are not implemented."
    ),
    ignored_config!(
        "share.coordinator.state.topic.replication.factor",
        Short,
        "Share groups are not implemented."
    ),
    ignored_config!(
        "socket.receive.buffer.bytes",
        Int,
        "Strom uses the operating system's socket buffer sizes."
    ),
    ignored_config!(
        "socket.send.buffer.bytes",
        Int,
        "Strom uses the operating system's socket buffer sizes."
    ),
];

pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

pub fn broker_config_def(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}

/// A config value that failed validation; the message names the property, as users need.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidConfig {
    pub name: String,
    pub message: String,
}

fn invalid(name: &str, message: impl Into<String>) -> InvalidConfig {
    InvalidConfig {
        name: name.to_string(),
        message: message.into(),
    }
}

/// Checks one value against a type and a check; returns it normalised (trimmed).
pub fn validate_value(
    name: &str,
    kind: ConfigType,
    check: Check,
    value: &str,
) -> Result<String, InvalidConfig> {
    let value = value.trim();
    let number = match kind {
        ConfigType::Boolean => {
            if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") {
                return Err(invalid(
                    name,
                    format!(
                        "Invalid value {value} for configuration {name}: Expected value to be either true or false"
                    ),
                ));
            }
            return Ok(value.to_ascii_lowercase());
        }
        ConfigType::Int | ConfigType::Short | ConfigType::Long => {
            let parsed: i64 = value.parse().map_err(|_| {
                invalid(
                    name,
                    format!(
                        "Invalid value {value} for configuration {name}: Not a number of type {}",
                        type_name(kind)
                    ),
                )
            })?;
            let (lo, hi) = match kind {
                ConfigType::Short => (i16::MIN as i64, i16::MAX as i64),
                ConfigType::Int => (i32::MIN as i64, i32::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            if parsed < lo || parsed > hi {
                return Err(invalid(
                    name,
                    format!(
                        "Invalid value {value} for configuration {name}: Not a number of type {}",
                        type_name(kind)
                    ),
                ));
            }
            Some(parsed as f64)
        }
        ConfigType::Double => Some(value.parse::<f64>().map_err(|_| {
            invalid(
                name,
                format!(
                    "Invalid value {value} for configuration {name}: Not a number of type DOUBLE"
                ),
            )
        })?),
        _ => None,
    };
    match check {
        Check::None => {}
        Check::Range(lo, hi) => {
            if let Some(n) = number
                && (n < lo || n > hi)
            {
                let bound = if n < lo {
                    format!("Value must be at least {}", fmt_bound(lo))
                } else {
                    format!("Value must be no more than {}", fmt_bound(hi))
                };
                return Err(invalid(
                    name,
                    format!("Invalid value {value} for configuration {name}: {bound}"),
                ));
            }
        }
        Check::OneOf(allowed) => {
            if !allowed.contains(&value) {
                return Err(invalid(
                    name,
                    format!(
                        "Invalid value {value} for configuration {name}: String must be one of: {}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Check::ListOf(allowed) => {
            let items: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if items.is_empty() {
                return Err(invalid(
                    name,
                    format!(
                        "Invalid value {value} for configuration {name}: the list must not be empty"
                    ),
                ));
            }
            if let Some(bad) = items.iter().find(|i| !allowed.contains(i)) {
                return Err(invalid(
                    name,
                    format!(
                        "Invalid value {bad} for configuration {name}: must be one of {}",
                        allowed.join(", ")
                    ),
                ));
            }
            return Ok(items.join(","));
        }
    }
    Ok(value.to_string())
}

fn fmt_bound(b: f64) -> String {
    if b.fract() == 0.0 && b.abs() < 9.0e18 {
        format!("{}", b as i64)
    } else if b >= i64::MAX as f64 {
        i64::MAX.to_string()
    } else {
        b.to_string()
    }
}

fn type_name(kind: ConfigType) -> &'static str {
    match kind {
        ConfigType::Boolean => "BOOLEAN",
        ConfigType::String => "STRING",
        ConfigType::Int => "INT",
        ConfigType::Short => "SHORT",
        ConfigType::Long => "LONG",
        ConfigType::Double => "DOUBLE",
        ConfigType::List => "LIST",
        ConfigType::Class => "CLASS",
        ConfigType::Password => "PASSWORD",
    }
}

/// Validates a topic-level config name and value.
pub fn validate_topic_config(name: &str, value: &str) -> Result<String, InvalidConfig> {
    let def = topic_config_def(name)
        .ok_or_else(|| invalid(name, format!("Unknown topic config name: {name}")))?;
    let value = validate_value(name, def.kind, def.check, value)?;
    if let Some((only, reason)) = def.restriction
        && value != only
    {
        return Err(invalid(
            name,
            format!("Invalid value {value} for configuration {name}: {reason}"),
        ));
    }
    Ok(value)
}

/// Validates a broker-level property name and value.
pub fn validate_broker_config(name: &str, value: &str) -> Result<String, InvalidConfig> {
    let def = broker_config_def(name)
        .or_else(|| listener_override_base(name).and_then(broker_config_def))
        .ok_or_else(|| invalid(name, format!("Unknown broker property: {name}")))?;
    let value = validate_value(name, def.kind, def.check, value)?;
    if name == "compression.type" && value != "producer" {
        return Err(invalid(
            name,
            format!(
                "Invalid value {value} for configuration {name}: Strom stores record batches exactly as the producer compressed them; only producer is supported"
            ),
        ));
    }
    Ok(value)
}

/// For `listener.name.<listener>.<property>` (and `listener.name.<listener>.<mechanism>.
/// sasl.jaas.config`): the property a listener may override, or `None`.
pub fn listener_override_base(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("listener.name.")?;
    let (_listener, property) = rest.split_once('.')?;
    let property = ["plain.", "scram-sha-256.", "scram-sha-512."]
        .iter()
        .find_map(|m| {
            property
                .strip_prefix(m)
                .filter(|p| *p == "sasl.jaas.config")
        })
        .unwrap_or(property);
    let overridable = property.starts_with("ssl.")
        || property.starts_with("sasl.")
        || property == "connections.max.reauth.ms";
    overridable.then_some(property)
}

/// The broker-level values a topic config can come from, in precedence order.
#[derive(Debug, Clone, Default)]
pub struct BrokerLayers<'a> {
    /// Dynamic configs for this broker (AlterConfigs on the broker's id).
    pub dynamic_broker: Option<&'a BTreeMap<String, String>>,
    /// Dynamic cluster-wide defaults (AlterConfigs on the empty broker name).
    pub dynamic_default: Option<&'a BTreeMap<String, String>>,
    /// Static properties (file, environment, --set).
    pub static_broker: Option<&'a BTreeMap<String, String>>,
}

/// One resolved value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedValue {
    pub value: String,
    pub source: ConfigSource,
    /// The property that supplied it (the topic config name, or a broker synonym).
    pub from: String,
}

impl BrokerLayers<'_> {
    /// The value of a broker property from the highest-precedence layer that sets it.
    pub fn broker_value(&self, name: &str) -> Option<(String, ConfigSource)> {
        let layers = [
            (self.dynamic_broker, ConfigSource::DynamicBroker),
            (self.dynamic_default, ConfigSource::DynamicDefaultBroker),
            (self.static_broker, ConfigSource::StaticBroker),
        ];
        layers
            .into_iter()
            .find_map(|(layer, source)| layer?.get(name).map(|v| (v.clone(), source)))
    }

    /// Every source that supplies a value for `def`, highest precedence first: the candidates
    /// DescribeConfigs lists as synonyms. The topic override is not included.
    pub fn synonyms_of(&self, def: &TopicConfigDef) -> Vec<ResolvedValue> {
        let mut out = Vec::new();
        for (layer, source) in [
            (self.dynamic_broker, ConfigSource::DynamicBroker),
            (self.dynamic_default, ConfigSource::DynamicDefaultBroker),
            (self.static_broker, ConfigSource::StaticBroker),
        ] {
            let Some(layer) = layer else { continue };
            for syn in def.synonyms {
                if let Some(v) = layer.get(syn.name) {
                    out.push(ResolvedValue {
                        value: scale(v, syn.to_topic_unit),
                        source,
                        from: syn.name.to_string(),
                    });
                }
            }
        }
        // The built-in default, expressed through the first synonym that has a default.
        out.push(ResolvedValue {
            value: def.default.to_string(),
            source: ConfigSource::Default,
            from: def
                .synonyms
                .first()
                .map_or(def.name, |s| s.name)
                .to_string(),
        });
        out
    }

    /// The effective value of a topic config: the override, else the synonyms, else default.
    pub fn resolve(
        &self,
        def: &TopicConfigDef,
        topic: Option<&BTreeMap<String, String>>,
    ) -> ResolvedValue {
        if let Some(v) = topic.and_then(|t| t.get(def.name)) {
            return ResolvedValue {
                value: v.clone(),
                source: ConfigSource::DynamicTopic,
                from: def.name.to_string(),
            };
        }
        let mut candidates = self.synonyms_of(def);
        candidates.swap_remove(0)
    }
}

/// Converts a broker synonym's value into the topic config's unit (hours -> ms, ...).
fn scale(value: &str, factor: i64) -> String {
    if factor == 1 {
        return value.to_string();
    }
    match value.trim().parse::<i64>() {
        // -1 means "forever" in every unit.
        Ok(-1) => "-1".to_string(),
        Ok(n) => n.saturating_mul(factor).to_string(),
        Err(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tables_are_sorted_and_unique() {
        for pair in TOPIC_CONFIGS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} then {}",
                pair[0].name,
                pair[1].name
            );
        }
        let mut names: Vec<_> = BROKER_CONFIGS.iter().map(|d| d.name).collect();
        let len = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), len, "duplicate broker config");
    }

    #[test]
    fn every_topic_default_passes_its_own_check() {
        for def in TOPIC_CONFIGS {
            validate_topic_config(def.name, def.default)
                .unwrap_or_else(|e| panic!("{}: {e}", def.name));
        }
    }

    #[test]
    fn every_broker_default_passes_its_own_check() {
        for def in BROKER_CONFIGS {
            if let Some(d) = def.default {
                validate_broker_config(def.name, d).unwrap_or_else(|e| panic!("{}: {e}", def.name));
            }
        }
    }

    #[test]
    fn every_topic_synonym_is_a_broker_property() {
        for def in TOPIC_CONFIGS {
            for syn in def.synonyms {
                assert!(
                    broker_config_def(syn.name).is_some(),
                    "{} -> {}",
                    def.name,
                    syn.name
                );
            }
        }
    }

    #[test]
    fn retention_resolves_through_hours_minutes_and_ms() {
        let def = topic_config_def("retention.ms").unwrap();
        let empty = BrokerLayers::default();
        assert_eq!(empty.resolve(def, None).value, "604800000");

        let hours = layer(&[("log.retention.hours", "2")]);
        let layers = BrokerLayers {
            static_broker: Some(&hours),
            ..Default::default()
        };
        let resolved = layers.resolve(def, None);
        assert_eq!(resolved.value, "7200000");
        assert_eq!(resolved.source, ConfigSource::StaticBroker);
        assert_eq!(resolved.from, "log.retention.hours");

        let both = layer(&[("log.retention.hours", "2"), ("log.retention.ms", "1000")]);
        let layers = BrokerLayers {
            static_broker: Some(&both),
            ..Default::default()
        };
        assert_eq!(layers.resolve(def, None).value, "1000");

        let topic = layer(&[("retention.ms", "5")]);
        let resolved = layers.resolve(def, Some(&topic));
        assert_eq!(resolved.value, "5");
        assert_eq!(resolved.source, ConfigSource::DynamicTopic);
    }

    #[test]
    fn dynamic_broker_layers_win_over_static() {
        let def = topic_config_def("segment.bytes").unwrap();
        let st = layer(&[("log.segment.bytes", "2000000")]);
        let dd = layer(&[("log.segment.bytes", "3000000")]);
        let layers = BrokerLayers {
            static_broker: Some(&st),
            dynamic_default: Some(&dd),
            dynamic_broker: None,
        };
        let r = layers.resolve(def, None);
        assert_eq!(
            (r.value.as_str(), r.source),
            ("3000000", ConfigSource::DynamicDefaultBroker)
        );
    }

    #[test]
    fn invalid_values_name_the_property() {
        let err = validate_topic_config("retention.ms", "soon").unwrap_err();
        assert!(err.message.contains("retention.ms"), "{}", err.message);
        let err = validate_topic_config("cleanup.policy", "compact,shred").unwrap_err();
        assert!(err.message.contains("shred"));
        assert!(validate_topic_config("no.such.config", "1").is_err());
        assert!(
            validate_topic_config("segment.bytes", "100").is_err(),
            "below Kafka 4's 1 MiB minimum"
        );
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_topic_config("compression.type", "gzip").is_err());
        assert!(validate_broker_config("auto.create.topics.enable", "yes").is_err());
        assert!(validate_broker_config("num.partitions", "99999999999").is_err());
    }

    #[test]
    fn lists_and_booleans_are_normalised() {
        assert_eq!(
            validate_topic_config("cleanup.policy", " compact , delete ").unwrap(),
            "compact,delete"
        );
        assert_eq!(
            validate_topic_config("preallocate", "TRUE").unwrap(),
            "true"
        );
    }
}
