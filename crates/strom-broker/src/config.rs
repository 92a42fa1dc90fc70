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

/// Parses `host:port` or `[v6]:port`.
pub fn parse_host_port(text: &str) -> Result<Endpoint, String> {
    let text = text.trim();
    let (host, port) = text
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

/// One entry of `listeners` / `advertised.listeners`: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub endpoint: Endpoint,
}

/// How a listener's connections are secured (`listener.security.protocol.map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" => SecurityProtocol::SaslSsl,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// A listener that serves clients (and other brokers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientListener {
    pub name: String,
    /// Where it binds.
    pub endpoint: Endpoint,
    /// What Metadata tells clients that connected to it (`advertised.listeners`); `None`
    /// advertises the bound address.
    pub advertised: Option<Endpoint>,
    pub protocol: SecurityProtocol,
}

/// Parses a listener list such as `PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093`; an
/// entry without `NAME://` is a PLAINTEXT listener.
pub fn parse_listeners(text: &str) -> Result<Vec<Listener>, String> {
    let mut out: Vec<Listener> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, address) = match item.split_once("://") {
            Some((name, rest)) => (name.to_ascii_uppercase(), rest),
            None => ("PLAINTEXT".to_string(), item),
        };
        if out.iter().any(|l| l.name == name) {
            return Err(format!("listener name {name} appears twice"));
        }
        out.push(Listener {
            name,
            endpoint: parse_host_port(address)?,
        });
    }
    Ok(out)
}

/// What this node does (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub broker: bool,
    pub controller: bool,
}

/// Every setting the broker reads, resolved and typed once at start, so request paths never
/// look a property up by name. Dynamic topic-level defaults (`log.retention.ms`, ...) are not
/// here: they resolve per topic through [`BrokerConfig::layers`], because AlterConfigs can
/// change them at any time.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub node_id: i32,
    pub roles: Roles,
    /// `broker.rack`
    pub rack: Option<String>,
    /// The first client listener (the first listener that is not a controller listener).
    pub listen: Option<Listener>,
    /// What Metadata tells clients of the first listener; defaults to the bound address.
    pub advertise: Option<Endpoint>,
    /// Every client listener, the first one first; empty on a controller-only node.
    pub client_listeners: Vec<ClientListener>,
    /// The listener other brokers connect to (`inter.broker.listener.name`).
    pub inter_broker_listener: Option<String>,
    /// The controller listener, on a node with the controller role.
    pub controller_listen: Option<Endpoint>,
    /// `controller.quorum.voters`, id -> `host:port`; empty for a single-node quorum.
    pub voters: BTreeMap<i32, String>,
    pub data_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub fsync_acks_all: bool,
    pub max_connections: usize,
    /// `max.connections.per.ip` and its overrides by address.
    pub max_connections_per_ip: usize,
    pub max_connections_per_ip_overrides: std::collections::HashMap<std::net::IpAddr, usize>,
    pub socket_request_max_bytes: usize,
    pub queued_max_requests: usize,
    pub connections_max_idle_ms: u64,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: i64,
    pub transaction_partition_verification_enable: bool,
    pub transaction_state_log_num_partitions: i32,
    pub transaction_state_log_replication_factor: i16,
    pub transaction_state_log_min_isr: i32,
    pub transaction_state_log_segment_bytes: i64,
    pub transaction_max_timeout_ms: i32,
    pub transactional_id_expiration_ms: i64,
    pub transaction_abort_cleanup_interval_ms: i64,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: i64,
    pub offset_metadata_max_bytes: usize,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_initial_rebalance_delay_ms: i32,
    pub group_max_size: usize,
    pub producer_id_expiration_ms: i64,
    pub broker_heartbeat_interval_ms: u64,
    pub broker_session_timeout_ms: i64,
    pub controlled_shutdown_enable: bool,
    /// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the ISR.
    pub replica_lag_time_max_ms: i64,
    /// `replica.selector.class` names Kafka's rack-aware selector (KIP-392 follower fetching).
    pub rack_aware_replica_selection: bool,
    /// `auto.leader.rebalance.enable` and `leader.imbalance.check.interval.seconds` (in ms).
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_check_interval_ms: i64,
    pub election_timeout_ms: u64,
    pub snapshot_max_record_bytes: u64,
    pub snapshot_interval_ms: u64,
    pub metadata_retention_bytes: u64,
    pub manager: ManagerConfig,
    /// ACL enforcement (`authorizer.class.name`), `None` when every request is allowed.
    pub authorizer: Option<AuthorizerSettings>,
}

/// How requests are authorized when ACLs are enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerSettings {
    /// `super.users`: principals allowed everything.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_everyone_if_no_acl_found: bool,
}

/// The validated configuration of one broker: the properties as set (for DescribeConfigs and
/// topic config resolution) and the typed settings resolved from them.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Static broker properties, validated and normalised, as set (defaults are not stored).
    properties: BTreeMap<String, String>,
    pub settings: BrokerSettings,
    /// Records written with the cluster's first metadata, when this node creates the cluster
    /// (SCRAM users from `--add-scram`); ignored once the cluster exists.
    pub bootstrap_records: Vec<strom_cluster::MetadataRecord>,
}

impl std::ops::Deref for BrokerConfig {
    type Target = BrokerSettings;
    fn deref(&self) -> &BrokerSettings {
        &self.settings
    }
}

impl BrokerConfig {
    /// Validates every property and resolves the typed settings. Errors name the property.
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
        let settings = Resolver { set: &validated }.settings()?;
        Ok(Self {
            properties: validated,
            settings,
            bootstrap_records: Vec::new(),
        })
    }

    /// A property as one listener sees it: `listener.name.<listener>.<name>` (lower-case
    /// listener name, as Kafka writes it), then `<name>`, then its default.
    pub fn listener_property(&self, listener: &str, name: &str) -> Option<String> {
        let prefixed = format!("listener.name.{}.{name}", listener.to_ascii_lowercase());
        self.properties
            .get(&prefixed)
            .or_else(|| self.properties.get(name))
            .cloned()
            .or_else(|| defs::broker_config_def(name)?.default.map(str::to_string))
    }

    /// The static properties as set (for DescribeConfigs' STATIC_BROKER_CONFIG source).
    pub fn static_properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// Where clients should connect, given the address the listener actually bound.
    pub fn advertised_endpoint(&self, bound: SocketAddr) -> Endpoint {
        self.advertise.clone().unwrap_or_else(|| Endpoint {
            host: self
                .listen
                .as_ref()
                .map_or_else(|| "127.0.0.1".to_string(), |l| l.endpoint.host.clone()),
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
}

/// Reads typed values from the validated properties, falling back to the defaults.
struct Resolver<'a> {
    set: &'a BTreeMap<String, String>,
}

impl Resolver<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.set
            .get(name)
            .cloned()
            .or_else(|| defs::broker_config_def(name)?.default.map(String::from))
    }

    /// A numeric property. Validation already checked the type, so a failure here means the
    /// property has no default, which is a bug in the definitions table: reported, not panicked.
    fn long(&self, name: &str) -> Result<i64, InvalidConfig> {
        self.get(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| invalid(name, format!("{name}: no numeric value")))
    }

    fn bool(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v == "true")
    }

    fn settings(&self) -> Result<BrokerSettings, InvalidConfig> {
        let node_id = self
            .set
            .get("node.id")
            .or_else(|| self.set.get("broker.id"))
            .map_or(Ok(1), |v| v.parse::<i32>())
            .map_err(|e| invalid("node.id", format!("node.id: {e}")))?;
        let roles = self.roles()?;
        let (client_listeners, controller_listen) = self.listeners(roles)?;
        let listen = client_listeners.first().map(|l| Listener {
            name: l.name.clone(),
            endpoint: l.endpoint.clone(),
        });
        let advertise = client_listeners.first().and_then(|l| l.advertised.clone());
        let inter_broker_listener = self.inter_broker_listener(&client_listeners)?;
        let voters = self.voters()?;
        // Brokers connect to each other (replication, transaction markers) as clients of the
        // inter-broker listener: check now that its TLS and SASL client settings are complete,
        // rather than let replication fail at run time. A single node never connects to a
        // peer, so it needs none.
        if voters.len() > 1
            && let Some(name) = &inter_broker_listener
            && let Some(l) = client_listeners.iter().find(|l| &l.name == name)
        {
            let prefix = format!("listener.name.{}.", name.to_ascii_lowercase());
            let get = |property: &str| {
                self.set
                    .get(&format!("{prefix}{property}"))
                    .cloned()
                    .or_else(|| self.get(property))
            };
            crate::security::inter_broker::client_security(name, l.protocol, &get)
                .map_err(|e| invalid(&e.property, e.to_string()))?;
        }
        let data_dir = self
            .set
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
            .or_else(|| self.get("log.dir"))
            .unwrap_or_else(|| "./strom-data".to_string());
        Ok(BrokerSettings {
            node_id,
            roles,
            rack: self.get("broker.rack").filter(|r| !r.is_empty()),
            listen,
            advertise,
            client_listeners,
            inter_broker_listener,
            controller_listen,
            voters,
            data_dir: PathBuf::from(data_dir),
            num_partitions: self.long("num.partitions")? as i32,
            default_replication_factor: self.long("default.replication.factor")? as i16,
            auto_create_topics_enable: self.bool("auto.create.topics.enable"),
            delete_topic_enable: self.bool("delete.topic.enable"),
            fsync_acks_all: self.bool("strom.fsync.acks.all"),
            max_connections: self.long("max.connections")?.clamp(1, u32::MAX as i64) as usize,
            max_connections_per_ip: self.long("max.connections.per.ip")?.max(0) as usize,
            max_connections_per_ip_overrides:
                crate::security::limits::ConnectionsPerIp::parse_overrides(
                    &self
                        .get("max.connections.per.ip.overrides")
                        .unwrap_or_default(),
                )
                .map_err(|m| {
                    invalid(
                        "max.connections.per.ip.overrides",
                        format!("max.connections.per.ip.overrides: {m}"),
                    )
                })?,
            socket_request_max_bytes: self.long("socket.request.max.bytes")?.max(0) as usize,
            queued_max_requests: self.long("queued.max.requests")?.max(1) as usize,
            connections_max_idle_ms: self.long("connections.max.idle.ms")?.max(0) as u64,
            offsets_topic_num_partitions: self.long("offsets.topic.num.partitions")? as i32,
            offsets_topic_replication_factor: self.long("offsets.topic.replication.factor")? as i16,
            offsets_topic_segment_bytes: self.long("offsets.topic.segment.bytes")?,
            transaction_partition_verification_enable: self
                .bool("transaction.partition.verification.enable"),
            transaction_state_log_num_partitions: self
                .long("transaction.state.log.num.partitions")?
                as i32,
            transaction_state_log_replication_factor: self
                .long("transaction.state.log.replication.factor")?
                as i16,
            transaction_state_log_min_isr: self.long("transaction.state.log.min.isr")? as i32,
            transaction_state_log_segment_bytes: self
                .long("transaction.state.log.segment.bytes")?,
            transaction_max_timeout_ms: self.long("transaction.max.timeout.ms")? as i32,
            transactional_id_expiration_ms: self.long("transactional.id.expiration.ms")?,
            transaction_abort_cleanup_interval_ms: self
                .long("transaction.abort.timed.out.transaction.cleanup.interval.ms")?,
            offsets_retention_ms: self.long("offsets.retention.minutes")? * 60_000,
            offsets_retention_check_interval_ms: self
                .long("offsets.retention.check.interval.ms")?,
            offset_metadata_max_bytes: self.long("offset.metadata.max.bytes")?.max(0) as usize,
            group_min_session_timeout_ms: self.long("group.min.session.timeout.ms")? as i32,
            group_max_session_timeout_ms: self.long("group.max.session.timeout.ms")? as i32,
            group_initial_rebalance_delay_ms: self.long("group.initial.rebalance.delay.ms")? as i32,
            group_max_size: self.long("group.max.size")?.max(1) as usize,
            producer_id_expiration_ms: self.long("producer.id.expiration.ms")?,
            broker_heartbeat_interval_ms: self.long("broker.heartbeat.interval.ms")?.max(1) as u64,
            broker_session_timeout_ms: self.long("broker.session.timeout.ms")?,
            controlled_shutdown_enable: self.bool("controlled.shutdown.enable"),
            replica_lag_time_max_ms: self.long("replica.lag.time.max.ms")?,
            rack_aware_replica_selection: self
                .get("replica.selector.class")
                .is_some_and(|c| c.ends_with("RackAwareReplicaSelector")),
            auto_leader_rebalance_enable: self.bool("auto.leader.rebalance.enable"),
            leader_imbalance_check_interval_ms: self
                .long("leader.imbalance.check.interval.seconds")?
                * 1000,
            election_timeout_ms: self.long("controller.quorum.election.timeout.ms")?.max(10) as u64,
            snapshot_max_record_bytes: self
                .long("metadata.log.max.record.bytes.between.snapshots")?
                .max(1) as u64,
            snapshot_interval_ms: self.long("metadata.log.max.snapshot.interval.ms")?.max(1) as u64,
            metadata_retention_bytes: self.long("metadata.max.retention.bytes")?.max(0) as u64,
            authorizer: self.authorizer()?,
            manager: ManagerConfig {
                retention_check_interval_ms: self.long("log.retention.check.interval.ms")?,
                flush_scheduler_interval_ms: self.long("log.flush.scheduler.interval.ms")?,
                recovery_point_checkpoint_interval_ms: self
                    .long("log.flush.offset.checkpoint.interval.ms")?,
                log_start_offset_checkpoint_interval_ms: self
                    .long("log.flush.start.offset.checkpoint.interval.ms")?,
                high_watermark_checkpoint_interval_ms: self
                    .long("replica.high.watermark.checkpoint.interval.ms")?,
                cleaner_enable: self.bool("log.cleaner.enable"),
                cleaner_backoff_ms: self.long("log.cleaner.backoff.ms")?,
                cleaner_dedupe_buffer_size: self.long("log.cleaner.dedupe.buffer.size")? as u64,
            },
        })
    }

    fn roles(&self) -> Result<Roles, InvalidConfig> {
        let text = self.get("process.roles").unwrap_or_default();
        let roles = Roles {
            broker: text.split(',').any(|r| r.trim() == "broker"),
            controller: text.split(',').any(|r| r.trim() == "controller"),
        };
        if !roles.broker && !roles.controller {
            return Err(invalid(
                "process.roles",
                "process.roles: name broker, controller or both",
            ));
        }
        Ok(roles)
    }

    /// The client listeners and the controller listener, from `listeners`,
    /// `controller.listener.names`, `listener.security.protocol.map` and
    /// `advertised.listeners`.
    fn listeners(
        &self,
        roles: Roles,
    ) -> Result<(Vec<ClientListener>, Option<Endpoint>), InvalidConfig> {
        let text = self.get("listeners").unwrap_or_default();
        let listeners =
            parse_listeners(&text).map_err(|m| invalid("listeners", format!("listeners: {m}")))?;
        let controller_names: Vec<String> = self
            .get("controller.listener.names")
            .unwrap_or_default()
            .split(',')
            .map(|n| n.trim().to_ascii_uppercase())
            .filter(|n| !n.is_empty())
            .collect();
        let (controller, client): (Vec<Listener>, Vec<Listener>) = listeners
            .into_iter()
            .partition(|l| controller_names.contains(&l.name));
        let protocols = self.protocol_map()?;
        let advertised = match self.set.get("advertised.listeners") {
            Some(list) => parse_listeners(list).map_err(|m| {
                invalid("advertised.listeners", format!("advertised.listeners: {m}"))
            })?,
            None => Vec::new(),
        };
        let mut out = Vec::new();
        for l in client {
            let protocol = *protocols.get(&l.name).ok_or_else(|| {
                invalid(
                    "listener.security.protocol.map",
                    format!(
                        "listener.security.protocol.map: listener {} has no security protocol",
                        l.name
                    ),
                )
            })?;
            out.push(ClientListener {
                advertised: advertised
                    .iter()
                    .find(|a| a.name == l.name)
                    .map(|a| a.endpoint.clone()),
                name: l.name,
                endpoint: l.endpoint,
                protocol,
            });
        }
        if roles.broker && out.is_empty() {
            return Err(invalid("listeners", "listeners: no listener given"));
        }
        if !roles.broker {
            out.clear();
        }
        Ok((out, controller.into_iter().next().map(|l| l.endpoint)))
    }

    /// `authorizer.class.name`: Kafka's two ACL authorizers (KRaft's StandardAuthorizer and
    /// ZooKeeper's AclAuthorizer) have the same semantics; both names turn ACLs on.
    fn authorizer(&self) -> Result<Option<AuthorizerSettings>, InvalidConfig> {
        let class = self.get("authorizer.class.name").unwrap_or_default();
        match class.trim() {
            "" => Ok(None),
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            | "kafka.security.authorizer.AclAuthorizer" => Ok(Some(AuthorizerSettings {
                super_users: self
                    .get("super.users")
                    .unwrap_or_default()
                    .split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                allow_everyone_if_no_acl_found: self.bool("allow.everyone.if.no.acl.found"),
            })),
            other => Err(invalid(
                "authorizer.class.name",
                format!(
                    "authorizer.class.name: {other} is not an authorizer Strom has; use org.apache.kafka.metadata.authorizer.StandardAuthorizer"
                ),
            )),
        }
    }

    /// `listener.security.protocol.map`: listener name to protocol.
    fn protocol_map(&self) -> Result<BTreeMap<String, SecurityProtocol>, InvalidConfig> {
        let text = self
            .get("listener.security.protocol.map")
            .unwrap_or_default();
        let mut map = BTreeMap::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = |why: String| {
                invalid(
                    "listener.security.protocol.map",
                    format!("listener.security.protocol.map: {item}: {why}"),
                )
            };
            let (name, protocol) = item
                .split_once(':')
                .ok_or_else(|| bad("expected NAME:PROTOCOL".into()))?;
            let protocol = SecurityProtocol::parse(protocol.trim()).ok_or_else(|| {
                bad("the protocol is one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL".into())
            })?;
            map.insert(name.trim().to_ascii_uppercase(), protocol);
        }
        Ok(map)
    }

    /// `inter.broker.listener.name`, or the first listener using
    /// `security.inter.broker.protocol`, or the first listener.
    fn inter_broker_listener(
        &self,
        listeners: &[ClientListener],
    ) -> Result<Option<String>, InvalidConfig> {
        if listeners.is_empty() {
            return Ok(None);
        }
        if let Some(name) = self.get("inter.broker.listener.name") {
            let name = name.trim().to_ascii_uppercase();
            if !listeners.iter().any(|l| l.name == name) {
                return Err(invalid(
                    "inter.broker.listener.name",
                    format!("inter.broker.listener.name: {name} is not one of listeners"),
                ));
            }
            return Ok(Some(name));
        }
        let protocol = self
            .get("security.inter.broker.protocol")
            .and_then(|p| SecurityProtocol::parse(p.trim()));
        Ok(listeners
            .iter()
            .find(|l| Some(l.protocol) == protocol)
            .or(listeners.first())
            .map(|l| l.name.clone()))
    }

    fn voters(&self) -> Result<BTreeMap<i32, String>, InvalidConfig> {
        let mut voters = BTreeMap::new();
        let text = self.get("controller.quorum.voters").unwrap_or_default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = || {
                invalid(
                    "controller.quorum.voters",
                    format!("controller.quorum.voters: {item}: expected ID@HOST:PORT"),
                )
            };
            let (id, address) = item.split_once('@').ok_or_else(bad)?;
            let id = id.trim().parse::<i32>().map_err(|_| bad())?;
            parse_host_port(address).map_err(|_| bad())?;
            if voters.insert(id, address.trim().to_string()).is_some() {
                return Err(invalid(
                    "controller.quorum.voters",
                    format!("controller.quorum.voters: voter {id} is listed twice"),
                ));
            }
        }
        Ok(voters)
    }
}

fn invalid(name: &str, message: impl Into<String>) -> InvalidConfig {
    InvalidConfig {
        name: name.to_string(),
        message: message.into(),
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
    log.producer_id_expiration_ms = config.producer_id_expiration_ms;
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
            config.listen.as_ref().unwrap().endpoint,
            Endpoint {
                host: "127.0.0.1".into(),
                port: 9092
            }
        );
        assert_eq!(config.data_dir, PathBuf::from("./strom-data"));
        assert_eq!(config.node_id, 1);
        assert!(config.auto_create_topics_enable);
        assert_eq!(config.num_partitions, 1);
        assert_eq!(
            config.roles,
            Roles {
                broker: true,
                controller: true
            }
        );
        assert!(config.voters.is_empty(), "a single-node quorum by default");
        assert_eq!(config.broker_session_timeout_ms, 9000);
    }

    #[test]
    fn security_protocols_come_from_the_map_and_listeners_override_properties() {
        let config = BrokerConfig::from_properties(props(&[
            (
                "listeners",
                "INTERNAL://127.0.0.1:9094,EXTERNAL://0.0.0.0:9093,SASL_SSL://0.0.0.0:9095",
            ),
            (
                "listener.security.protocol.map",
                "INTERNAL:PLAINTEXT,EXTERNAL:SSL,SASL_SSL:SASL_SSL",
            ),
            ("advertised.listeners", "EXTERNAL://kafka.example.com:9093"),
            ("inter.broker.listener.name", "internal"),
            ("ssl.client.auth", "requested"),
            ("listener.name.external.ssl.client.auth", "required"),
            (
                "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config",
                "x.ScramLoginModule required;",
            ),
        ]))
        .unwrap();
        let protocols: Vec<_> = config
            .client_listeners
            .iter()
            .map(|l| (l.name.as_str(), l.protocol))
            .collect();
        assert_eq!(
            protocols,
            [
                ("INTERNAL", SecurityProtocol::Plaintext),
                ("EXTERNAL", SecurityProtocol::Ssl),
                ("SASL_SSL", SecurityProtocol::SaslSsl)
            ]
        );
        assert_eq!(
            config.client_listeners[1].advertised.as_ref().unwrap().host,
            "kafka.example.com"
        );
        assert_eq!(config.inter_broker_listener.as_deref(), Some("INTERNAL"));
        assert_eq!(
            config
                .listener_property("EXTERNAL", "ssl.client.auth")
                .as_deref(),
            Some("required")
        );
        assert_eq!(
            config
                .listener_property("SASL_SSL", "ssl.client.auth")
                .as_deref(),
            Some("requested")
        );
        assert_eq!(
            config
                .listener_property("INTERNAL", "ssl.enabled.protocols")
                .as_deref(),
            Some("TLSv1.2,TLSv1.3")
        );
    }

    #[test]
    fn listener_mistakes_are_named() {
        let err = |pairs: &[(&str, &str)]| BrokerConfig::from_properties(props(pairs)).unwrap_err();
        assert_eq!(
            err(&[("listeners", "CLIENT://127.0.0.1:9092")]).name,
            "listener.security.protocol.map"
        );
        assert_eq!(
            err(&[
                ("listeners", "SSL://127.0.0.1:9092"),
                ("inter.broker.listener.name", "OTHER")
            ])
            .name,
            "inter.broker.listener.name"
        );
        assert_eq!(
            err(&[("listener.name.x.log.retention.ms", "1")]).name,
            "listener.name.x.log.retention.ms"
        );
        // A multi-node cluster replicating over SASL needs the brokers' own credentials.
        let e = err(&[
            (
                "listeners",
                "SASL_PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
            ),
            ("process.roles", "broker,controller"),
            (
                "controller.quorum.voters",
                "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293",
            ),
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
        ]);
        assert_eq!(
            e.name, "listener.name.sasl_plaintext.plain.sasl.jaas.config",
            "{}",
            e.message
        );
    }

    #[test]
    fn cluster_listeners_roles_and_voters_are_read_like_kafka() {
        let config = BrokerConfig::from_properties(props(&[
            ("node.id", "2"),
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
            ),
            ("controller.quorum.voters", "1@h1:9093, 2@h2:9093,3@h3:9093"),
            ("broker.rack", "r1"),
        ]))
        .unwrap();
        assert_eq!(config.listen.as_ref().unwrap().endpoint.port, 9092);
        assert_eq!(config.controller_listen.as_ref().unwrap().port, 9093);
        assert_eq!(config.voters.len(), 3);
        assert_eq!(config.voters[&2], "h2:9093");
        assert_eq!(config.rack.as_deref(), Some("r1"));

        let controller_only = BrokerConfig::from_properties(props(&[
            ("process.roles", "controller"),
            ("listeners", "CONTROLLER://127.0.0.1:9093"),
            ("controller.quorum.voters", "1@127.0.0.1:9093"),
        ]))
        .unwrap();
        assert!(controller_only.listen.is_none());
        assert!(!controller_only.roles.broker);

        for (name, value) in [
            ("controller.quorum.voters", "1@h1"),
            ("controller.quorum.voters", "x@h1:1"),
            ("controller.quorum.voters", "1@h:1,1@h:2"),
            ("process.roles", "gateway"),
        ] {
            let err = BrokerConfig::from_properties(props(&[(name, value)])).unwrap_err();
            assert!(err.message.contains(name), "{}", err.message);
        }
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
        assert_eq!(config.listen.as_ref().unwrap().endpoint.port, 19092);
        assert_eq!(config.advertise.as_ref().unwrap().host, "broker1");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/a"));
        assert_eq!(config.node_id, 7);
    }

    #[test]
    fn unknown_and_invalid_properties_are_named() {
        let err = BrokerConfig::from_properties(props(&[("log.retention.mss", "1")])).unwrap_err();
        assert!(err.message.contains("log.retention.mss"), "{}", err.message);
        let err = BrokerConfig::from_properties(props(&[("num.partitions", "zero")])).unwrap_err();
        assert!(err.message.contains("num.partitions"), "{}", err.message);
        let err = BrokerConfig::from_properties(props(&[("listeners", "TLS://x:1")])).unwrap_err();
        assert!(err.message.contains("TLS"), "{}", err.message);
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
