//! Admin operations: topics, partitions, configs, cluster (and its KRaft quorum), offsets,
//! records, leader elections, partition reassignments and broker removal.
//!
//! Each operation builds its request with kafka-protocol for the version negotiated with the
//! broker it goes to, routes it (controller, partition leaders, a given broker, any broker),
//! retries when the cluster says the request went to the wrong place, and turns the response into
//! plain Rust types. Batched operations return one `Result` per item: one topic failing to be
//! created is data about that topic, not a failure of the call.

use std::collections::HashMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterPartitionReassignmentsRequest, ApiKey, BrokerId,
    CreatePartitionsRequest, CreateTopicsRequest, DeleteRecordsRequest, DeleteTopicsRequest,
    DescribeClusterRequest, DescribeConfigsRequest, DescribeQuorumRequest, ElectLeadersRequest,
    IncrementalAlterConfigsRequest, ListOffsetsRequest, ListPartitionReassignmentsRequest,
    TopicName, UnregisterBrokerRequest, alter_configs_request,
    alter_partition_reassignments_request, elect_leaders_request,
    incremental_alter_configs_request, list_partition_reassignments_request,
};
use kafka_protocol::messages::{describe_quorum_request, describe_quorum_response};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::client::{Client, Lane, Route};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::metadata::{BrokerMetadata, TopicPartition, ensure_unique};

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

fn timeout_ms(client: &Client) -> i32 {
    i32::try_from(client.config().request_timeout.as_millis()).unwrap_or(i32::MAX)
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Number of partitions; -1 for the broker's `num.partitions`.
    pub partitions: i32,
    /// Replication factor; -1 for the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs (`cleanup.policy`, `retention.ms`, ...).
    pub configs: Vec<(String, String)>,
    /// Explicit replica assignment, partition `i` on the brokers in `assignments[i]`. When not
    /// empty, `partitions` and `replication_factor` must be -1.
    pub assignments: Vec<Vec<i32>>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and `replication_factor` replicas, no configs.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: Vec::new(),
            assignments: Vec::new(),
        }
    }

    /// Adds a topic config.
    pub fn with_config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((name.into(), value.into()));
        self
    }
}

/// A topic as [`Client::list_topics`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    /// Topic name.
    pub name: String,
    /// Topic id, if the broker reports ids.
    pub topic_id: Option<Uuid>,
    /// Whether it is an internal topic.
    pub is_internal: bool,
    /// Number of partitions.
    pub partition_count: i32,
}

/// A topic as [`Client::describe_topic`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Topic id, if the broker reports ids.
    pub topic_id: Option<Uuid>,
    /// Whether it is an internal topic.
    pub is_internal: bool,
    /// Partitions sorted by index.
    pub partitions: Vec<PartitionDescription>,
}

/// One partition of a [`TopicDescription`], from Metadata (v5+ reports offline replicas).
///
/// Eligible leader replicas (KIP-966) are not here: only DescribeTopicPartitions (API 75)
/// reports them, and Strom does not serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id, `None` when there is no leader.
    pub leader: Option<i32>,
    /// Leader epoch, if reported.
    pub leader_epoch: Option<i32>,
    /// Assigned replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub in_sync_replicas: Vec<i32>,
    /// Offline replicas.
    pub offline_replicas: Vec<i32>,
    /// The log start offset, `None` if it could not be listed (no leader, ...).
    pub earliest_offset: Option<i64>,
    /// The log end offset (high watermark for consumers), `None` if it could not be listed.
    pub latest_offset: Option<i64>,
}

/// Which offset [`Client::list_offsets`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark (the offset the next record will get, as consumers see it).
    Latest,
    /// The offset of the record with the largest timestamp (ListOffsets v7+).
    MaxTimestamp,
    /// The first offset whose timestamp is at or after this time (ms since the epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

/// An offset found by [`Client::list_offsets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; `None` when no record matches (a timestamp after the last record).
    pub offset: Option<i64>,
    /// The timestamp of that record, when the lookup was by timestamp.
    pub timestamp: Option<i64>,
    /// The leader epoch of that record, if reported.
    pub leader_epoch: Option<i32>,
}

/// A resource whose configs can be described or altered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConfigResource {
    /// A topic's configs.
    Topic(String),
    /// One broker's configs.
    Broker(i32),
    /// The cluster-wide dynamic broker defaults (broker resource with an empty name).
    BrokerDefaults,
}

impl ConfigResource {
    fn resource_type(&self) -> i8 {
        match self {
            ConfigResource::Topic(_) => 2,
            ConfigResource::Broker(_) | ConfigResource::BrokerDefaults => 4,
        }
    }

    fn resource_name(&self) -> String {
        match self {
            ConfigResource::Topic(name) => name.clone(),
            ConfigResource::Broker(id) => id.to_string(),
            ConfigResource::BrokerDefaults => String::new(),
        }
    }
}

impl std::fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigResource::Topic(name) => write!(f, "topic '{name}'"),
            ConfigResource::Broker(id) => write!(f, "broker {id}"),
            ConfigResource::BrokerDefaults => f.write_str("cluster-wide broker defaults"),
        }
    }
}

/// Where a config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// A per-topic override.
    DynamicTopicConfig,
    /// A per-broker dynamic override.
    DynamicBrokerConfig,
    /// A cluster-wide dynamic broker default.
    DynamicDefaultBrokerConfig,
    /// The broker's static configuration file.
    StaticBrokerConfig,
    /// The built-in default.
    DefaultConfig,
    /// A dynamic broker logger level.
    DynamicBrokerLoggerConfig,
    /// A client-metrics subscription.
    ClientMetricsConfig,
    /// A per-group override.
    GroupConfig,
    /// Unknown, or a source this client does not know.
    Unknown(i8),
}

impl ConfigSource {
    /// The source for Kafka's numeric id.
    pub fn from_id(id: i8) -> ConfigSource {
        match id {
            1 => ConfigSource::DynamicTopicConfig,
            2 => ConfigSource::DynamicBrokerConfig,
            3 => ConfigSource::DynamicDefaultBrokerConfig,
            4 => ConfigSource::StaticBrokerConfig,
            5 => ConfigSource::DefaultConfig,
            6 => ConfigSource::DynamicBrokerLoggerConfig,
            7 => ConfigSource::ClientMetricsConfig,
            8 => ConfigSource::GroupConfig,
            other => ConfigSource::Unknown(other),
        }
    }

    /// Kafka's name, e.g. `DYNAMIC_TOPIC_CONFIG`.
    pub fn name(self) -> &'static str {
        match self {
            ConfigSource::DynamicTopicConfig => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBrokerConfig => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBrokerConfig => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBrokerConfig => "STATIC_BROKER_CONFIG",
            ConfigSource::DefaultConfig => "DEFAULT_CONFIG",
            ConfigSource::DynamicBrokerLoggerConfig => "DYNAMIC_BROKER_LOGGER_CONFIG",
            ConfigSource::ClientMetricsConfig => "CLIENT_METRICS_CONFIG",
            ConfigSource::GroupConfig => "GROUP_CONFIG",
            ConfigSource::Unknown(_) => "UNKNOWN",
        }
    }
}

/// One config of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name.
    pub name: String,
    /// Value; `None` when unset or sensitive.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether the config cannot be altered.
    pub read_only: bool,
    /// Whether the value is sensitive (and hidden).
    pub sensitive: bool,
    /// The values this config would take from other sources, highest precedence first.
    pub synonyms: Vec<ConfigSynonym>,
    /// Kafka's config type id (1 boolean, 2 string, 3 int, 4 short, 5 long, 6 double, 7 list,
    /// 8 class, 9 password), 0 when unknown.
    pub config_type: i8,
    /// Documentation, when the broker provides it.
    pub documentation: Option<String>,
}

/// A synonym of a [`ConfigEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The synonym's name (may differ, e.g. `log.retention.ms` for `retention.ms`).
    pub name: String,
    /// Its value.
    pub value: Option<String>,
    /// Where it comes from.
    pub source: ConfigSource,
}

/// What an incremental config change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterConfigOpType {
    /// Set the value.
    Set,
    /// Remove the override (revert to the next source).
    Delete,
    /// Append to a list config.
    Append,
    /// Remove from a list config.
    Subtract,
}

/// One incremental config change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigOp {
    /// Config name.
    pub name: String,
    /// The operation.
    pub op: AlterConfigOpType,
    /// The value (ignored for `Delete`).
    pub value: Option<String>,
}

impl AlterConfigOp {
    /// Sets `name` to `value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Set,
            value: Some(value.into()),
        }
    }

    /// Removes the override of `name`.
    pub fn delete(name: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Delete,
            value: None,
        }
    }
}

/// The cluster as [`Client::describe_cluster`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Controller id as reported (a random live broker in KRaft clusters).
    pub controller_id: Option<i32>,
    /// Brokers sorted by id, fenced ones included when [`Self::includes_fenced_brokers`].
    pub brokers: Vec<BrokerMetadata>,
    /// Whether `brokers` lists fenced brokers too. DescribeCluster v2 can ask for them
    /// (KIP-1073); older versions and Metadata list only unfenced brokers, so a fenced broker
    /// is then simply missing.
    pub includes_fenced_brokers: bool,
    /// Ids of the brokers in `brokers` that are fenced: registered, but not heartbeating, so
    /// the controller gives them no partition leadership.
    pub fenced_broker_ids: Vec<i32>,
}

impl ClusterDescription {
    /// Whether broker `id` is listed as fenced.
    pub fn is_fenced(&self, id: i32) -> bool {
        self.fenced_broker_ids.contains(&id)
    }
}

/// The KRaft metadata quorum as DescribeQuorum reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumDescription {
    /// The quorum leader (the active controller).
    pub leader_id: i32,
    /// The leader's epoch.
    pub leader_epoch: i32,
    /// The metadata log's high watermark.
    pub high_watermark: i64,
    /// The voters, sorted by id.
    pub voters: Vec<QuorumReplica>,
    /// Replicas that follow the metadata log without voting (brokers), sorted by id.
    pub observers: Vec<QuorumReplica>,
}

/// One replica of the metadata log in a [`QuorumDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplica {
    /// The node id.
    pub replica_id: i32,
    /// Its metadata log end offset, if known.
    pub log_end_offset: Option<i64>,
    /// When it last fetched from the leader (ms since the epoch, the leader's clock), if
    /// known. Kafka reports none for the leader itself.
    pub last_fetch_timestamp: Option<i64>,
    /// When it last caught up with the leader (ms since the epoch), if known.
    pub last_caught_up_timestamp: Option<i64>,
    /// Its controller listeners as `NAME://host:port` (DescribeQuorum v2 reports them for
    /// voters); empty when not reported.
    pub endpoints: Vec<String>,
}

/// Which replica [`Client::elect_leaders`] makes leader (Kafka's `ElectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// The partition's first replica, when it is in sync and available.
    Preferred,
    /// For a partition without a leader: any available replica, in sync or not (records the
    /// new leader lacks are lost).
    Unclean,
}

impl ElectionType {
    /// Kafka's wire value.
    pub fn code(self) -> i8 {
        match self {
            ElectionType::Preferred => 0,
            ElectionType::Unclean => 1,
        }
    }

    /// Kafka's name, as `kafka-leader-election.sh` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ElectionType::Preferred => "PREFERRED",
            ElectionType::Unclean => "UNCLEAN",
        }
    }
}

/// A partition reassignment in progress, as [`Client::list_partition_reassignments`] reports
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Every replica the partition has now: the target replicas, then those being removed.
    pub replicas: Vec<i32>,
    /// Replicas being added (copying the log), not yet all in sync.
    pub adding_replicas: Vec<i32>,
    /// Replicas that leave once every added one is in sync.
    pub removing_replicas: Vec<i32>,
}

impl OngoingReassignment {
    /// The replicas the partition will have when the reassignment completes, preferred
    /// leader first.
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|b| !self.removing_replicas.contains(b))
            .collect()
    }
}

/// The topic that holds the KRaft metadata log.
const METADATA_TOPIC: &str = "__cluster_metadata";

impl Client {
    /// Creates topics. One result per topic, in order; a topic that already exists fails with
    /// `TOPIC_ALREADY_EXISTS`. With `validate_only` the broker only checks the request.
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<Vec<(String, Result<()>)>> {
        let response = self
            .retry(|_| async {
                let (_, connection) = self.controller_connection().await?;
                let version = connection.negotiated_version::<CreateTopicsRequest>()?;
                let mut request = CreateTopicsRequest::default();
                request.timeout_ms = timeout_ms(self);
                request.validate_only = validate_only;
                request.topics = topics.iter().map(creatable_topic).collect();
                let response = connection
                    .send_with_timeout(request, version, self.config().request_timeout * 2)
                    .await?;
                // Kafka answers NOT_CONTROLLER per topic; retrying the whole request is right.
                if let Some(t) = response
                    .topics
                    .iter()
                    .find(|t| t.error_code == ResponseError::NotController.code())
                {
                    return Err(Error::kafka(t.error_code, None));
                }
                Ok(response)
            })
            .await?;
        let mut by_name: HashMap<String, Result<()>> = response
            .topics
            .into_iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let result = Error::check(t.error_code, t.error_message.as_deref());
                (name, result)
            })
            .collect();
        Ok(topics
            .iter()
            .map(|t| {
                let result = by_name
                    .remove(&t.name)
                    .unwrap_or_else(|| Err(missing("CreateTopics", &t.name)));
                (t.name.clone(), result)
            })
            .collect())
    }

    /// Creates one topic; `Ok` only if it was created.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<()> {
        let topic = NewTopic::new(name, partitions, replication_factor);
        single(self.create_topics(&[topic], false).await?)
    }

    /// Deletes topics by name. One result per topic, in order.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<Vec<(String, Result<()>)>> {
        let response = self
            .retry(|_| async {
                let (_, connection) = self.controller_connection().await?;
                let version = connection.negotiated_version::<DeleteTopicsRequest>()?;
                let mut request = DeleteTopicsRequest::default();
                request.timeout_ms = timeout_ms(self);
                if version >= 6 {
                    request.topics = names
                        .iter()
                        .map(|n| {
                            let mut state = DeleteTopicState::default();
                            state.name = Some(topic_name(n));
                            state
                        })
                        .collect();
                } else {
                    request.topic_names = names.iter().map(|n| topic_name(n)).collect();
                }
                let response = connection
                    .send_with_timeout(request, version, self.config().request_timeout * 2)
                    .await?;
                if let Some(t) = response
                    .responses
                    .iter()
                    .find(|t| t.error_code == ResponseError::NotController.code())
                {
                    return Err(Error::kafka(t.error_code, None));
                }
                Ok(response)
            })
            .await?;
        let mut by_name: HashMap<String, Result<()>> = response
            .responses
            .into_iter()
            .filter_map(|t| {
                let name = t.name?.0.to_string();
                Some((name, Error::check(t.error_code, t.error_message.as_deref())))
            })
            .collect();
        self.invalidate_metadata();
        Ok(names
            .iter()
            .map(|n| {
                let result = by_name
                    .remove(*n)
                    .unwrap_or_else(|| Err(missing("DeleteTopics", n)));
                ((*n).to_owned(), result)
            })
            .collect())
    }

    /// Raises topics' partition counts to the given totals. One result per topic, in order.
    pub async fn create_partitions(
        &self,
        new_totals: &[(&str, i32)],
        validate_only: bool,
    ) -> Result<Vec<(String, Result<()>)>> {
        let response = self
            .retry(|_| async {
                let (_, connection) = self.controller_connection().await?;
                let mut request = CreatePartitionsRequest::default();
                request.timeout_ms = timeout_ms(self);
                request.validate_only = validate_only;
                request.topics = new_totals
                    .iter()
                    .map(|(name, count)| {
                        let mut topic = CreatePartitionsTopic::default();
                        topic.name = topic_name(name);
                        topic.count = *count;
                        topic.assignments = None;
                        topic
                    })
                    .collect();
                let version = connection.negotiated_version::<CreatePartitionsRequest>()?;
                let response = connection
                    .send_with_timeout(request, version, self.config().request_timeout * 2)
                    .await?;
                if let Some(t) = response
                    .results
                    .iter()
                    .find(|t| t.error_code == ResponseError::NotController.code())
                {
                    return Err(Error::kafka(t.error_code, None));
                }
                Ok(response)
            })
            .await?;
        let mut by_name: HashMap<String, Result<()>> = response
            .results
            .into_iter()
            .map(|t| {
                let result = Error::check(t.error_code, t.error_message.as_deref());
                (t.name.0.to_string(), result)
            })
            .collect();
        self.invalidate_metadata();
        Ok(new_totals
            .iter()
            .map(|(n, _)| {
                let result = by_name
                    .remove(*n)
                    .unwrap_or_else(|| Err(missing("CreatePartitions", n)));
                ((*n).to_owned(), result)
            })
            .collect())
    }

    /// Lists topics, sorted by name; internal topics only with `include_internal`.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<TopicListing>> {
        let metadata = self.refresh_metadata(None).await?;
        Ok(metadata
            .topics
            .values()
            .filter(|t| t.error_code == 0 && (include_internal || !t.is_internal))
            .map(|t| TopicListing {
                name: t.name.clone(),
                topic_id: t.topic_id,
                is_internal: t.is_internal,
                partition_count: t.partition_count(),
            })
            .collect())
    }

    /// Describes a topic: partitions with leader, replicas, in-sync replicas, leader epoch, and
    /// earliest/latest offsets. Fails with `UNKNOWN_TOPIC_OR_PARTITION` if it does not exist.
    pub async fn describe_topic(&self, topic: &str) -> Result<TopicDescription> {
        let metadata = self.refresh_metadata(Some(&[topic])).await?;
        let topic_metadata = metadata.topic(topic).cloned().ok_or_else(|| {
            Error::kafka(
                ResponseError::UnknownTopicOrPartition.code(),
                Some(format!("topic '{topic}'")),
            )
        })?;
        topic_metadata.error()?;
        let partitions: Vec<TopicPartition> = topic_metadata
            .partitions
            .iter()
            .map(|p| TopicPartition::new(topic, p.partition))
            .collect();
        let (earliest, latest) = futures::future::join(
            self.list_offsets(&partitions, OffsetSpec::Earliest),
            self.list_offsets(&partitions, OffsetSpec::Latest),
        )
        .await;
        let offset_of = |listed: &Result<Vec<(TopicPartition, Result<ListedOffset>)>>, i: usize| {
            listed
                .as_ref()
                .ok()
                .and_then(|l| l.get(i))
                .and_then(|(_, r)| r.as_ref().ok())
                .and_then(|o| o.offset)
        };
        Ok(TopicDescription {
            name: topic_metadata.name.clone(),
            topic_id: topic_metadata.topic_id,
            is_internal: topic_metadata.is_internal,
            partitions: topic_metadata
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| PartitionDescription {
                    partition: p.partition,
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    in_sync_replicas: p.in_sync_replicas.clone(),
                    offline_replicas: p.offline_replicas.clone(),
                    earliest_offset: offset_of(&earliest, i),
                    latest_offset: offset_of(&latest, i),
                })
                .collect(),
        })
    }

    /// Looks up offsets for partitions, each at its leader. One result per partition, in order.
    pub async fn list_offsets(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<Vec<(TopicPartition, Result<ListedOffset>)>> {
        ensure_unique(partitions)?;
        let items: Vec<(TopicPartition, ())> =
            partitions.iter().map(|tp| (tp.clone(), ())).collect();
        let rounds = self.config().retries + 1;
        let results = self
            .by_leader(
                &items,
                Route::Shared(Lane::Default),
                rounds,
                |_, connection, group| self.list_offsets_at(connection, group, spec),
            )
            .await;
        Ok(partitions.iter().cloned().zip(results).collect())
    }

    async fn list_offsets_at(
        &self,
        connection: Connection,
        group: Vec<(TopicPartition, ())>,
        spec: OffsetSpec,
    ) -> Result<Vec<Result<ListedOffset>>> {
        let mut version = connection.negotiated_version::<ListOffsetsRequest>()?;
        if spec == OffsetSpec::MaxTimestamp && version < 7 {
            return Err(Error::UnsupportedVersion {
                api: "ListOffsets".into(),
                addr: connection.addr().to_owned(),
                detail: format!("MaxTimestamp needs v7, broker supports up to v{version}"),
            });
        }
        version = version.max(1);
        let mut request = ListOffsetsRequest::default();
        request.replica_id = BrokerId(-1);
        if version >= 10 {
            request.timeout_ms = timeout_ms(self);
        }
        let mut topics: Vec<ListOffsetsTopic> = Vec::new();
        for (tp, ()) in &group {
            let mut partition = ListOffsetsPartition::default();
            partition.partition_index = tp.partition;
            partition.timestamp = spec.timestamp();
            match topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
                Some(topic) => topic.partitions.push(partition),
                None => {
                    let mut topic = ListOffsetsTopic::default();
                    topic.name = topic_name(&tp.topic);
                    topic.partitions.push(partition);
                    topics.push(topic);
                }
            }
        }
        request.topics = topics;
        let response = connection
            .send_with_timeout(request, version, self.config().request_timeout)
            .await?;
        let mut found: HashMap<(String, i32), Result<ListedOffset>> = HashMap::new();
        for topic in response.topics {
            for p in topic.partitions {
                let result = Error::check(p.error_code, None).map(|()| ListedOffset {
                    offset: (p.offset >= 0).then_some(p.offset),
                    timestamp: (p.timestamp >= 0).then_some(p.timestamp),
                    leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                });
                found.insert((topic.name.0.to_string(), p.partition_index), result);
            }
        }
        Ok(group
            .iter()
            .map(|(tp, ())| {
                found
                    .remove(&(tp.topic.clone(), tp.partition))
                    .unwrap_or_else(|| Err(missing("ListOffsets", &tp.to_string())))
                    .map_err(|e| e.with_context(tp))
            })
            .collect())
    }

    /// Deletes records below the given offsets (-1: the high watermark), at each partition's
    /// leader. One result per partition with the new log start offset, in order.
    pub async fn delete_records(
        &self,
        before_offsets: &[(TopicPartition, i64)],
    ) -> Result<Vec<(TopicPartition, Result<i64>)>> {
        ensure_unique(before_offsets.iter().map(|(tp, _)| tp))?;
        let rounds = self.config().retries + 1;
        let results = self
            .by_leader(
                before_offsets,
                Route::Shared(Lane::Default),
                rounds,
                |_, connection, group| async move {
                    let version = connection.negotiated_version::<DeleteRecordsRequest>()?;
                    let mut request = DeleteRecordsRequest::default();
                    request.timeout_ms = timeout_ms(self);
                    let mut topics: Vec<DeleteRecordsTopic> = Vec::new();
                    for (tp, offset) in &group {
                        let mut partition = DeleteRecordsPartition::default();
                        partition.partition_index = tp.partition;
                        partition.offset = *offset;
                        match topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
                            Some(topic) => topic.partitions.push(partition),
                            None => {
                                let mut topic = DeleteRecordsTopic::default();
                                topic.name = topic_name(&tp.topic);
                                topic.partitions.push(partition);
                                topics.push(topic);
                            }
                        }
                    }
                    request.topics = topics;
                    let response = connection
                        .send_with_timeout(request, version, self.config().request_timeout * 2)
                        .await?;
                    let mut found: HashMap<(String, i32), Result<i64>> = HashMap::new();
                    for topic in response.topics {
                        for p in topic.partitions {
                            let result = Error::check(p.error_code, None).map(|()| p.low_watermark);
                            found.insert((topic.name.0.to_string(), p.partition_index), result);
                        }
                    }
                    Ok(group
                        .iter()
                        .map(|(tp, _)| {
                            found
                                .remove(&(tp.topic.clone(), tp.partition))
                                .unwrap_or_else(|| Err(missing("DeleteRecords", &tp.to_string())))
                                .map_err(|e| e.with_context(tp))
                        })
                        .collect())
                },
            )
            .await;
        Ok(before_offsets
            .iter()
            .map(|(tp, _)| tp.clone())
            .zip(results)
            .collect())
    }

    /// Describes a resource's configs, all of them or only `names`, with sources, synonyms and
    /// read-only/sensitive flags.
    pub async fn describe_configs(
        &self,
        resource: &ConfigResource,
        names: Option<&[&str]>,
    ) -> Result<Vec<ConfigEntry>> {
        let response = self
            .retry(|_| async {
                let connection = self.config_connection(resource).await?;
                let version = connection.negotiated_version::<DescribeConfigsRequest>()?;
                let mut request = DescribeConfigsRequest::default();
                let mut r = DescribeConfigsResource::default();
                r.resource_type = resource.resource_type();
                r.resource_name = StrBytes::from_string(resource.resource_name());
                r.configuration_keys = names.map(|n| n.iter().map(|s| str_bytes(s)).collect());
                request.resources = vec![r];
                request.include_synonyms = true;
                if version >= 3 {
                    request.include_documentation = true;
                }
                connection
                    .send_with_timeout(request, version, self.config().request_timeout)
                    .await
            })
            .await?;
        let result = response
            .results
            .into_iter()
            .next()
            .ok_or_else(|| Error::Protocol {
                addr: "DescribeConfigs".into(),
                reason: "response has no result".into(),
            })?;
        Error::check(result.error_code, result.error_message.as_deref())
            .map_err(|e| e.with_context(resource))?;
        Ok(result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: ConfigSource::from_id(c.config_source),
                read_only: c.read_only,
                sensitive: c.is_sensitive,
                synonyms: c
                    .synonyms
                    .into_iter()
                    .map(|s| ConfigSynonym {
                        name: s.name.to_string(),
                        value: s.value.map(|v| v.to_string()),
                        source: ConfigSource::from_id(s.source),
                    })
                    .collect(),
                config_type: c.config_type,
                documentation: c.documentation.map(|d| d.to_string()),
            })
            .collect())
    }

    /// Applies incremental config changes (set, delete, append, subtract) to a resource.
    pub async fn incremental_alter_configs(
        &self,
        resource: &ConfigResource,
        ops: &[AlterConfigOp],
        validate_only: bool,
    ) -> Result<()> {
        let response = self
            .retry(|_| async {
                let connection = self.config_connection(resource).await?;
                let version = connection.negotiated_version::<IncrementalAlterConfigsRequest>()?;
                let mut request = IncrementalAlterConfigsRequest::default();
                let mut r = incremental_alter_configs_request::AlterConfigsResource::default();
                r.resource_type = resource.resource_type();
                r.resource_name = StrBytes::from_string(resource.resource_name());
                r.configs = ops
                    .iter()
                    .map(|op| {
                        let mut c = incremental_alter_configs_request::AlterableConfig::default();
                        c.name = str_bytes(&op.name);
                        c.config_operation = match op.op {
                            AlterConfigOpType::Set => 0,
                            AlterConfigOpType::Delete => 1,
                            AlterConfigOpType::Append => 2,
                            AlterConfigOpType::Subtract => 3,
                        };
                        c.value = op.value.as_deref().map(str_bytes);
                        c
                    })
                    .collect();
                request.resources = vec![r];
                request.validate_only = validate_only;
                connection
                    .send_with_timeout(request, version, self.config().request_timeout)
                    .await
            })
            .await?;
        let result = response
            .responses
            .into_iter()
            .next()
            .ok_or_else(|| Error::Protocol {
                addr: "IncrementalAlterConfigs".into(),
                reason: "response has no result".into(),
            })?;
        Error::check(result.error_code, result.error_message.as_deref())
            .map_err(|e| e.with_context(resource))
    }

    /// Replaces a resource's whole set of overrides (the legacy AlterConfigs API: configs not
    /// listed revert to their defaults).
    pub async fn alter_configs(
        &self,
        resource: &ConfigResource,
        configs: &[(&str, &str)],
        validate_only: bool,
    ) -> Result<()> {
        let response = self
            .retry(|_| async {
                let connection = self.config_connection(resource).await?;
                let version = connection.negotiated_version::<AlterConfigsRequest>()?;
                let mut request = AlterConfigsRequest::default();
                let mut r = alter_configs_request::AlterConfigsResource::default();
                r.resource_type = resource.resource_type();
                r.resource_name = StrBytes::from_string(resource.resource_name());
                r.configs = configs
                    .iter()
                    .map(|(name, value)| {
                        let mut c = alter_configs_request::AlterableConfig::default();
                        c.name = str_bytes(name);
                        c.value = Some(str_bytes(value));
                        c
                    })
                    .collect();
                request.resources = vec![r];
                request.validate_only = validate_only;
                connection
                    .send_with_timeout(request, version, self.config().request_timeout)
                    .await
            })
            .await?;
        let result = response
            .responses
            .into_iter()
            .next()
            .ok_or_else(|| Error::Protocol {
                addr: "AlterConfigs".into(),
                reason: "response has no result".into(),
            })?;
        Error::check(result.error_code, result.error_message.as_deref())
            .map_err(|e| e.with_context(resource))
    }

    /// Broker configs go to that broker (only it knows its static config); the rest to any.
    async fn config_connection(&self, resource: &ConfigResource) -> Result<Connection> {
        match resource {
            ConfigResource::Broker(id) => self.broker_connection(*id).await,
            _ => self.any_connection().await,
        }
    }

    /// Describes the cluster: id, controller and brokers. Uses DescribeCluster when the broker
    /// supports it, Metadata otherwise.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let connection = self.any_connection().await?;
        if connection
            .api_versions()
            .get(ApiKey::DescribeCluster)
            .is_none()
        {
            let metadata = self.refresh_metadata(Some(&[])).await?;
            return Ok(ClusterDescription {
                cluster_id: metadata.cluster_id.clone(),
                controller_id: metadata.controller_id,
                brokers: metadata.brokers.values().cloned().collect(),
                includes_fenced_brokers: false,
                fenced_broker_ids: Vec::new(),
            });
        }
        let (version, response) = self
            .retry(|_| async {
                let connection = self.any_connection().await?;
                let version = connection.negotiated_version::<DescribeClusterRequest>()?;
                let mut request = DescribeClusterRequest::default();
                if version >= 1 {
                    // 1 = brokers (as opposed to controllers, KIP-919).
                    request.endpoint_type = 1;
                }
                if version >= 2 {
                    request.include_fenced_brokers = true;
                }
                let response = connection
                    .send_with_timeout(request, version, self.config().request_timeout)
                    .await?;
                Error::check(response.error_code, response.error_message.as_deref())?;
                Ok((version, response))
            })
            .await?;
        let mut brokers = Vec::with_capacity(response.brokers.len());
        let mut fenced_broker_ids = Vec::new();
        for b in response.brokers {
            if b.is_fenced {
                fenced_broker_ids.push(b.broker_id.0);
            }
            brokers.push(BrokerMetadata {
                id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
            });
        }
        brokers.sort_by_key(|b| b.id);
        fenced_broker_ids.sort_unstable();
        Ok(ClusterDescription {
            cluster_id: Some(response.cluster_id.to_string()).filter(|c| !c.is_empty()),
            controller_id: (response.controller_id.0 >= 0).then_some(response.controller_id.0),
            brokers,
            includes_fenced_brokers: version >= 2,
            fenced_broker_ids,
        })
    }
}

impl Client {
    /// Describes the KRaft metadata quorum (leader, epoch, voters, observers) with
    /// DescribeQuorum. `None` when the broker does not offer DescribeQuorum (a cluster without
    /// a Raft quorum, or one too old to report it).
    pub async fn describe_quorum(&self) -> Result<Option<QuorumDescription>> {
        let connection = self.any_connection().await?;
        if connection
            .api_versions()
            .get(ApiKey::DescribeQuorum)
            .is_none()
        {
            return Ok(None);
        }
        let (version, response) = self
            .retry(|_| async {
                let connection = self.any_connection().await?;
                let version = connection.negotiated_version::<DescribeQuorumRequest>()?;
                let mut partition = describe_quorum_request::PartitionData::default();
                partition.partition_index = 0;
                let mut topic = describe_quorum_request::TopicData::default();
                topic.topic_name = topic_name(METADATA_TOPIC);
                topic.partitions = vec![partition];
                let mut request = DescribeQuorumRequest::default();
                request.topics = vec![topic];
                let response = connection
                    .send_with_timeout(request, version, self.config().request_timeout)
                    .await?;
                Error::check(response.error_code, response.error_message.as_deref())?;
                Ok((version, response))
            })
            .await?;
        let partition = response
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == 0)
            .ok_or_else(|| missing("DescribeQuorum", METADATA_TOPIC))?;
        Error::check(partition.error_code, partition.error_message.as_deref())?;
        let endpoints = quorum_endpoints(&response.nodes);
        // Kafka sends -1 for anything unknown, and v0 has no timestamps at all (they decode
        // as their default, 0, which would read as 1970).
        let timestamps_reported = version >= 1;
        let known = |value: i64| (value >= 0).then_some(value);
        let known_time = |value: i64| known(value).filter(|_| timestamps_reported);
        let replicas = |states: Vec<describe_quorum_response::ReplicaState>| {
            let mut replicas: Vec<QuorumReplica> = states
                .into_iter()
                .map(|r| QuorumReplica {
                    replica_id: r.replica_id.0,
                    log_end_offset: known(r.log_end_offset),
                    last_fetch_timestamp: known_time(r.last_fetch_timestamp),
                    last_caught_up_timestamp: known_time(r.last_caught_up_timestamp),
                    endpoints: endpoints.get(&r.replica_id.0).cloned().unwrap_or_default(),
                })
                .collect();
            replicas.sort_by_key(|r| r.replica_id);
            replicas
        };
        Ok(Some(QuorumDescription {
            leader_id: partition.leader_id.0,
            leader_epoch: partition.leader_epoch,
            high_watermark: partition.high_watermark,
            voters: replicas(partition.current_voters),
            observers: replicas(partition.observers),
        }))
    }
}

impl Client {
    /// Runs a leader election (ElectLeaders) for `partitions`, or for every partition with
    /// `None`. One result per partition: every requested one, in order; for `None`, as in
    /// Kafka, only the partitions that needed an election. A partition whose wanted leader
    /// already leads fails with `ELECTION_NOT_NEEDED`, which callers usually treat as success.
    pub async fn elect_leaders(
        &self,
        election_type: ElectionType,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        if let Some(partitions) = partitions {
            ensure_unique(
                &partitions
                    .iter()
                    .map(|(t, p)| TopicPartition::new(t, *p))
                    .collect::<Vec<_>>(),
            )?;
        }
        let response = self
            .retry(|_| async {
                let (_, connection) = self.controller_connection().await?;
                let version = connection.negotiated_version::<ElectLeadersRequest>()?;
                if version == 0 && election_type != ElectionType::Preferred {
                    return Err(Error::InvalidArgument(
                        "the broker knows only preferred leader elections (ElectLeaders v0)".into(),
                    ));
                }
                let mut request = ElectLeadersRequest::default();
                request.election_type = election_type.code();
                request.timeout_ms = timeout_ms(self);
                request.topic_partitions = partitions.map(|partitions| {
                    let mut topics: Vec<elect_leaders_request::TopicPartitions> = Vec::new();
                    for (topic, partition) in partitions {
                        match topics.iter_mut().find(|t| t.topic.0.as_str() == topic) {
                            Some(t) => t.partitions.push(*partition),
                            None => {
                                let mut t = elect_leaders_request::TopicPartitions::default();
                                t.topic = topic_name(topic);
                                t.partitions = vec![*partition];
                                topics.push(t);
                            }
                        }
                    }
                    topics
                });
                let response = connection
                    .send_with_timeout(request, version, self.config().request_timeout * 2)
                    .await?;
                Error::check(response.error_code, None)?;
                // v0 has no top-level error: a moved controller shows on every partition.
                let not_controller = response
                    .replica_election_results
                    .iter()
                    .flat_map(|t| &t.partition_result)
                    .any(|p| p.error_code == ResponseError::NotController.code());
                if not_controller {
                    return Err(Error::kafka(ResponseError::NotController.code(), None));
                }
                Ok(response)
            })
            .await?;
        let mut found: Vec<(TopicPartition, Result<()>)> = response
            .replica_election_results
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic.0.to_string();
                t.partition_result.into_iter().map(move |p| {
                    let result = Error::check(p.error_code, p.error_message.as_deref());
                    (TopicPartition::new(topic.clone(), p.partition_id), result)
                })
            })
            .collect();
        self.invalidate_metadata();
        let Some(partitions) = partitions else {
            found.sort_by(|a, b| a.0.cmp(&b.0));
            return Ok(found);
        };
        let mut by_partition: HashMap<TopicPartition, Result<()>> = found.into_iter().collect();
        Ok(partitions
            .iter()
            .map(|(topic, partition)| {
                let tp = TopicPartition::new(topic, *partition);
                let result = by_partition
                    .remove(&tp)
                    .unwrap_or_else(|| Err(missing("ElectLeaders", &tp.to_string())));
                (tp, result)
            })
            .collect())
    }

    /// Starts partition reassignments (AlterPartitionReassignments): each partition moves to
    /// its target replicas, preferred leader first; `None` cancels the partition's ongoing
    /// reassignment. One result per partition, in order. The call returns once the
    /// reassignments have started; [`Client::list_partition_reassignments`] shows them until
    /// every new replica is in sync.
    pub async fn alter_partition_reassignments(
        &self,
        reassignments: &[(String, i32, Option<Vec<i32>>)],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let partitions: Vec<TopicPartition> = reassignments
            .iter()
            .map(|(t, p, _)| TopicPartition::new(t, *p))
            .collect();
        ensure_unique(&partitions)?;
        let response = self
            .retry(|_| async {
                let (_, connection) = self.controller_connection().await?;
                let version =
                    connection.negotiated_version::<AlterPartitionReassignmentsRequest>()?;
                let mut request = AlterPartitionReassignmentsRequest::default();
                request.timeout_ms = timeout_ms(self);
                if version >= 1 {
                    // v0's meaning: a reassignment may change the replication factor.
                    request.allow_replication_factor_change = true;
                }
                let mut topics: Vec<alter_partition_reassignments_request::ReassignableTopic> =
                    Vec::new();
                for (topic, partition, replicas) in reassignments {
                    let mut p =
                        alter_partition_reassignments_request::ReassignablePartition::default();
                    p.partition_index = *partition;
                    p.replicas = replicas
                        .as_ref()
                        .map(|r| r.iter().map(|b| BrokerId(*b)).collect());
                    match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                        Some(t) => t.partitions.push(p),
                        None => {
                            let mut t =
                                alter_partition_reassignments_request::ReassignableTopic::default();
                            t.name = topic_name(topic);
                            t.partitions = vec![p];
                            topics.push(t);
                        }
                    }
                }
                request.topics = topics;
                let response = connection
                    .send_with_timeout(request, version, self.config().request_timeout * 2)
                    .await?;
                Error::check(response.error_code, response.error_message.as_deref())?;
                Ok(response)
            })
            .await?;
        let mut by_partition: HashMap<TopicPartition, Result<()>> = response
            .responses
            .into_iter()
            .flat_map(|t| {
                let topic = t.name.0.to_string();
                t.partitions.into_iter().map(move |p| {
                    let result = Error::check(p.error_code, p.error_message.as_deref());
                    (
                        TopicPartition::new(topic.clone(), p.partition_index),
                        result,
                    )
                })
            })
            .collect();
        self.invalidate_metadata();
        Ok(partitions
            .into_iter()
            .map(|tp| {
                let result = by_partition.remove(&tp).unwrap_or_else(|| {
                    Err(missing("AlterPartitionReassignments", &tp.to_string()))
                });
                (tp, result)
            })
            .collect())
    }

    /// The partition reassignments in progress (ListPartitionReassignments) among `topics`
    /// (each with the partitions asked about), or all of them with `None`, sorted by topic
    /// and partition. Partitions that do not exist or are not being reassigned are left out.
    pub async fn list_partition_reassignments(
        &self,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<OngoingReassignment>> {
        let response = self
            .retry(|_| async {
                let (_, connection) = self.controller_connection().await?;
                let version =
                    connection.negotiated_version::<ListPartitionReassignmentsRequest>()?;
                let mut request = ListPartitionReassignmentsRequest::default();
                request.timeout_ms = timeout_ms(self);
                request.topics = topics.map(|topics| {
                    topics
                        .iter()
                        .map(|(name, partitions)| {
                            let mut t = list_partition_reassignments_request::ListPartitionReassignmentsTopics::default();
                            t.name = topic_name(name);
                            t.partition_indexes = partitions.clone();
                            t
                        })
                        .collect()
                });
                let response = connection
                    .send_with_timeout(request, version, self.config().request_timeout)
                    .await?;
                Error::check(response.error_code, response.error_message.as_deref())?;
                Ok(response)
            })
            .await?;
        let ids = |list: Vec<BrokerId>| list.into_iter().map(|b| b.0).collect::<Vec<i32>>();
        let mut ongoing: Vec<OngoingReassignment> = response
            .topics
            .into_iter()
            .flat_map(|t| {
                let topic = t.name.0.to_string();
                t.partitions.into_iter().map(move |p| OngoingReassignment {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    replicas: ids(p.replicas),
                    adding_replicas: ids(p.adding_replicas),
                    removing_replicas: ids(p.removing_replicas),
                })
            })
            .collect();
        ongoing.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(ongoing)
    }

    /// Removes a broker's registration for good (UnregisterBroker). Strom refuses while the
    /// broker still holds replicas (`INVALID_REQUEST`); a broker still running registers
    /// again, so stop it first. `BROKER_ID_NOT_REGISTERED` for an unknown id.
    pub async fn unregister_broker(&self, broker_id: i32) -> Result<()> {
        let response = self
            .retry(|_| async {
                let (_, connection) = self.controller_connection().await?;
                let version = connection.negotiated_version::<UnregisterBrokerRequest>()?;
                let mut request = UnregisterBrokerRequest::default();
                request.broker_id = BrokerId(broker_id);
                let response = connection
                    .send_with_timeout(request, version, self.config().request_timeout * 2)
                    .await?;
                // Retry only a moved controller; any other error is the answer.
                if response.error_code == ResponseError::NotController.code() {
                    return Err(Error::kafka(response.error_code, None));
                }
                Ok(response)
            })
            .await?;
        self.invalidate_metadata();
        Error::check(response.error_code, response.error_message.as_deref())
            .map_err(|e| e.with_context(format!("broker {broker_id}")))
    }
}

/// Each quorum node's listeners as `NAME://host:port`, by node id (DescribeQuorum v2).
fn quorum_endpoints(nodes: &[describe_quorum_response::Node]) -> HashMap<i32, Vec<String>> {
    nodes
        .iter()
        .map(|node| {
            let endpoints = node
                .listeners
                .iter()
                .map(|l| {
                    let host = l.host.as_str();
                    if host.contains(':') && !host.starts_with('[') {
                        format!("{}://[{host}]:{}", l.name.as_str(), l.port)
                    } else {
                        format!("{}://{host}:{}", l.name.as_str(), l.port)
                    }
                })
                .collect();
            (node.node_id.0, endpoints)
        })
        .collect()
}

fn creatable_topic(topic: &NewTopic) -> CreatableTopic {
    let mut t = CreatableTopic::default();
    t.name = topic_name(&topic.name);
    t.num_partitions = topic.partitions;
    t.replication_factor = topic.replication_factor;
    t.assignments = topic
        .assignments
        .iter()
        .enumerate()
        .map(|(i, brokers)| {
            let mut a = CreatableReplicaAssignment::default();
            a.partition_index = i32::try_from(i).unwrap_or(i32::MAX);
            a.broker_ids = brokers.iter().map(|b| BrokerId(*b)).collect();
            a
        })
        .collect();
    t.configs = topic
        .configs
        .iter()
        .map(|(name, value)| {
            let mut c = CreatableTopicConfig::default();
            c.name = str_bytes(name);
            c.value = Some(str_bytes(value));
            c
        })
        .collect();
    t
}

fn missing(api: &str, item: &str) -> Error {
    Error::Protocol {
        addr: api.to_owned(),
        reason: format!("response has no result for '{item}'"),
    }
}

/// The only item's result of a one-item batched operation.
fn single(results: Vec<(String, Result<()>)>) -> Result<()> {
    results
        .into_iter()
        .next()
        .map(|(name, r)| r.map_err(|e| e.with_context(format!("topic '{name}'"))))
        .unwrap_or_else(|| {
            Err(Error::Protocol {
                addr: "admin".into(),
                reason: "empty result".into(),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::ProducerConfig;
    use crate::records::ProducerRecord;
    use crate::testing::{FakeBroker, FakeCluster, FakeConnection, test_client};
    use kafka_protocol::messages::describe_configs_response::{
        DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
    };
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
    use kafka_protocol::messages::{
        DescribeConfigsResponse, IncrementalAlterConfigsResponse, MetadataRequest, MetadataResponse,
    };
    use std::sync::{Arc, OnceLock};

    #[tokio::test]
    async fn topics_are_created_listed_described_and_duplicates_refused() {
        let cluster = FakeCluster::start().await;
        let client = test_client(&cluster).await;
        client.create_topic("orders", 3, 1).await.unwrap();
        let results = client
            .create_topics(
                &[
                    NewTopic::new("orders", 1, 1),
                    NewTopic::new("payments", 2, 1).with_config("cleanup.policy", "compact"),
                ],
                false,
            )
            .await
            .unwrap();
        assert_eq!(results[0].0, "orders");
        let err = results[0].1.as_ref().unwrap_err();
        assert!(err.is(ResponseError::TopicAlreadyExists), "{err}");
        assert!(err.to_string().starts_with("TOPIC_ALREADY_EXISTS"), "{err}");
        assert!(results[1].1.is_ok());
        let err = client.create_topic("orders", 1, 1).await.unwrap_err();
        assert!(err.to_string().contains("TOPIC_ALREADY_EXISTS"), "{err}");

        let listed = client.list_topics(false).await.unwrap();
        let names: Vec<(&str, i32)> = listed
            .iter()
            .map(|t| (t.name.as_str(), t.partition_count))
            .collect();
        assert_eq!(names, [("orders", 3), ("payments", 2)]);
        assert!(listed.iter().all(|t| t.topic_id.is_some()));

        let producer = client.producer(ProducerConfig::default()).await.unwrap();
        for _ in 0..3 {
            producer
                .send(ProducerRecord::new("orders", "v").with_partition(1))
                .await
                .unwrap();
        }
        producer.close().await.unwrap();

        let described = client.describe_topic("orders").await.unwrap();
        assert_eq!(described.partitions.len(), 3);
        let p1 = &described.partitions[1];
        assert_eq!(p1.partition, 1);
        assert_eq!(p1.leader, Some(1));
        assert_eq!(p1.replicas, vec![1]);
        assert_eq!(p1.in_sync_replicas, vec![1]);
        assert_eq!(p1.leader_epoch, Some(0));
        assert_eq!((p1.earliest_offset, p1.latest_offset), (Some(0), Some(3)));
        assert_eq!(described.partitions[0].latest_offset, Some(0));
    }

    #[tokio::test]
    async fn describing_a_missing_topic_names_the_kafka_error() {
        let cluster = FakeCluster::start().await;
        let client = test_client(&cluster).await;
        let err = client.describe_topic("nope").await.unwrap_err();
        assert!(err.is(ResponseError::UnknownTopicOrPartition), "{err}");
        assert_eq!(err.to_string(), "UNKNOWN_TOPIC_OR_PARTITION: topic 'nope'");
    }

    #[tokio::test]
    async fn list_offsets_by_spec_and_timestamp() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        let producer = client.producer(ProducerConfig::default()).await.unwrap();
        for ts in [100, 200, 300] {
            producer
                .send(ProducerRecord::new("t", "v").with_timestamp(ts))
                .await
                .unwrap();
            producer.flush().await.unwrap();
        }
        let tp = TopicPartition::new("t", 0);
        let listed = |spec| {
            let client = client.clone();
            let tp = tp.clone();
            async move {
                client
                    .list_offsets(&[tp], spec)
                    .await
                    .unwrap()
                    .remove(0)
                    .1
                    .unwrap()
            }
        };
        assert_eq!(listed(OffsetSpec::Earliest).await.offset, Some(0));
        assert_eq!(listed(OffsetSpec::Latest).await.offset, Some(3));
        let at = listed(OffsetSpec::Timestamp(150)).await;
        assert_eq!((at.offset, at.timestamp), (Some(1), Some(200)));
        assert_eq!(listed(OffsetSpec::Timestamp(999)).await.offset, None);
        let missing = client
            .list_offsets(&[TopicPartition::new("t", 9)], OffsetSpec::Latest)
            .await
            .unwrap();
        assert!(
            missing[0]
                .1
                .as_ref()
                .unwrap_err()
                .is(ResponseError::UnknownTopicOrPartition)
        );
    }

    #[tokio::test]
    async fn describe_cluster_reports_id_controller_and_brokers() {
        let cluster = FakeCluster::start().await;
        let client = test_client(&cluster).await;
        let described = client.describe_cluster().await.unwrap();
        assert_eq!(described.cluster_id.as_deref(), Some("fake-cluster"));
        assert_eq!(described.controller_id, Some(1));
        assert_eq!(described.brokers.len(), 1);
        assert_eq!(described.brokers[0].addr(), cluster.addr());
    }

    /// A broker that answers ApiVersions and Metadata (itself as broker 1) and hands every
    /// other request to `handle`.
    async fn scripted<F>(handle: F) -> FakeBroker
    where
        F: Fn(&crate::testing::Received) -> Option<Box<dyn ErasedResponse>> + Send + Sync + 'static,
    {
        let addr: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
        let own_addr = Arc::clone(&addr);
        let handle = Arc::new(handle);
        let broker = FakeBroker::start(move |mut conn: FakeConnection| {
            let addr = Arc::clone(&own_addr);
            let handle = Arc::clone(&handle);
            async move {
                conn.handshake_all().await;
                while let Some(request) = conn.read().await {
                    if request.api_key == ApiKey::Metadata {
                        let _: MetadataRequest = request.decode();
                        let (host, port) = addr.get().unwrap().rsplit_once(':').unwrap();
                        let mut response = MetadataResponse::default();
                        let mut broker = MetadataResponseBroker::default();
                        broker.node_id = BrokerId(1);
                        broker.host = str_bytes(host);
                        broker.port = port.parse().unwrap();
                        response.brokers = vec![broker];
                        response.controller_id = BrokerId(1);
                        conn.respond(&request, &response).await;
                        continue;
                    }
                    let response = handle(&request).expect("an expected request");
                    response.send(&mut conn, &request).await;
                }
            }
        })
        .await;
        addr.set(broker.addr.clone()).unwrap();
        broker
    }

    /// Lets a scripted handler return any response type.
    trait ErasedResponse: Send {
        fn send<'a>(
            &'a self,
            conn: &'a mut FakeConnection,
            request: &'a crate::testing::Received,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;
    }

    impl<T: kafka_protocol::protocol::Encodable + Send + Sync> ErasedResponse for T {
        fn send<'a>(
            &'a self,
            conn: &'a mut FakeConnection,
            request: &'a crate::testing::Received,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
            Box::pin(conn.respond(request, self))
        }
    }

    #[tokio::test]
    async fn describe_configs_maps_sources_synonyms_and_flags() {
        let broker = scripted(|request| {
            assert_eq!(request.api_key, ApiKey::DescribeConfigs);
            let body: DescribeConfigsRequest = request.decode();
            assert!(body.include_synonyms);
            let resource = &body.resources[0];
            assert_eq!(resource.resource_type, 2, "topic");
            assert_eq!(resource.resource_name.as_str(), "orders");
            assert_eq!(
                resource.configuration_keys.as_ref().map(|k| k.len()),
                Some(1)
            );
            let mut synonym = DescribeConfigsSynonym::default();
            synonym.name = str_bytes("log.retention.ms");
            synonym.value = Some(str_bytes("604800000"));
            synonym.source = 5;
            let mut entry = DescribeConfigsResourceResult::default();
            entry.name = str_bytes("retention.ms");
            entry.value = Some(str_bytes("1000"));
            entry.config_source = 1;
            entry.is_sensitive = false;
            entry.read_only = false;
            entry.config_type = 5;
            entry.synonyms = vec![synonym];
            let mut result = DescribeConfigsResult::default();
            result.resource_type = 2;
            result.resource_name = str_bytes("orders");
            result.configs = vec![entry];
            let mut response = DescribeConfigsResponse::default();
            response.results = vec![result];
            Some(Box::new(response))
        })
        .await;
        let client = crate::Client::connect(crate::ClientConfig::new(broker.addr.clone()))
            .await
            .unwrap();
        let configs = client
            .describe_configs(
                &ConfigResource::Topic("orders".into()),
                Some(&["retention.ms"]),
            )
            .await
            .unwrap();
        assert_eq!(configs.len(), 1);
        let entry = &configs[0];
        assert_eq!(entry.name, "retention.ms");
        assert_eq!(entry.value.as_deref(), Some("1000"));
        assert_eq!(entry.source, ConfigSource::DynamicTopicConfig);
        assert_eq!(entry.source.name(), "DYNAMIC_TOPIC_CONFIG");
        assert_eq!(entry.config_type, 5);
        assert_eq!(
            entry.synonyms,
            vec![ConfigSynonym {
                name: "log.retention.ms".into(),
                value: Some("604800000".into()),
                source: ConfigSource::DefaultConfig,
            }]
        );
    }

    #[tokio::test]
    async fn legacy_alter_configs_sends_the_whole_set() {
        use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse as Result_;
        let broker = scripted(|request| {
            assert_eq!(request.api_key, ApiKey::AlterConfigs);
            let body: AlterConfigsRequest = request.decode();
            assert!(body.validate_only);
            let resource = &body.resources[0];
            assert_eq!(resource.resource_type, 2);
            assert_eq!(resource.resource_name.as_str(), "orders");
            let configs: Vec<(String, Option<String>)> = resource
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect();
            assert_eq!(configs, vec![("retention.ms".into(), Some("1000".into()))]);
            let mut response = kafka_protocol::messages::AlterConfigsResponse::default();
            response.responses = vec![Result_::default()];
            Some(Box::new(response))
        })
        .await;
        let client = crate::Client::connect(crate::ClientConfig::new(broker.addr.clone()))
            .await
            .unwrap();
        client
            .alter_configs(
                &ConfigResource::Topic("orders".into()),
                &[("retention.ms", "1000")],
                true,
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn incremental_alter_configs_sends_operations_and_reports_errors() {
        let broker = scripted(|request| {
            assert_eq!(request.api_key, ApiKey::IncrementalAlterConfigs);
            let body: IncrementalAlterConfigsRequest = request.decode();
            let resource = &body.resources[0];
            assert_eq!(resource.resource_type, 4, "broker");
            assert_eq!(resource.resource_name.as_str(), "1");
            let ops: Vec<(String, i8, Option<String>)> = resource
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.to_string(),
                        c.config_operation,
                        c.value.as_ref().map(|v| v.to_string()),
                    )
                })
                .collect();
            assert_eq!(
                ops,
                vec![
                    ("log.retention.ms".into(), 0, Some("5".into())),
                    ("log.cleaner.threads".into(), 1, None),
                ]
            );
            let mut result = AlterConfigsResourceResponse::default();
            result.error_code = 40;
            result.error_message = Some(str_bytes("log.retention.ms must be positive"));
            let mut response = IncrementalAlterConfigsResponse::default();
            response.responses = vec![result];
            Some(Box::new(response))
        })
        .await;
        let client = crate::Client::connect(crate::ClientConfig::new(broker.addr.clone()))
            .await
            .unwrap();
        let err = client
            .incremental_alter_configs(
                &ConfigResource::Broker(1),
                &[
                    AlterConfigOp::set("log.retention.ms", "5"),
                    AlterConfigOp::delete("log.cleaner.threads"),
                ],
                false,
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "INVALID_CONFIG: broker 1: log.retention.ms must be positive"
        );
    }

    #[tokio::test]
    async fn describe_quorum_reports_leader_voters_and_observers() {
        let broker = scripted(|request| {
            assert_eq!(request.api_key, ApiKey::DescribeQuorum);
            let body: DescribeQuorumRequest = request.decode();
            assert_eq!(body.topics[0].topic_name.0.as_str(), "__cluster_metadata");
            assert_eq!(body.topics[0].partitions[0].partition_index, 0);
            let replica = |id: i32, end: i64| {
                let mut r = describe_quorum_response::ReplicaState::default();
                r.replica_id = BrokerId(id);
                r.log_end_offset = end;
                r.last_fetch_timestamp = if id == 3 { 1_700_000_000_000 } else { -1 };
                r.last_caught_up_timestamp = -1;
                r
            };
            let mut partition = describe_quorum_response::PartitionData::default();
            partition.leader_id = BrokerId(2);
            partition.leader_epoch = 7;
            partition.high_watermark = 1234;
            partition.current_voters = vec![replica(3, 1230), replica(1, 1234), replica(2, 1234)];
            partition.observers = vec![replica(4, -1)];
            let mut topic = describe_quorum_response::TopicData::default();
            topic.topic_name = topic_name("__cluster_metadata");
            topic.partitions = vec![partition];
            let mut listener = describe_quorum_response::Listener::default();
            listener.name = str_bytes("CONTROLLER");
            listener.host = str_bytes("10.0.0.1");
            listener.port = 9093;
            let mut node = describe_quorum_response::Node::default();
            node.node_id = BrokerId(1);
            node.listeners = vec![listener];
            let mut response = kafka_protocol::messages::DescribeQuorumResponse::default();
            response.topics = vec![topic];
            response.nodes = vec![node];
            Some(Box::new(response))
        })
        .await;
        let client = crate::Client::connect(crate::ClientConfig::new(broker.addr.clone()))
            .await
            .unwrap();
        let quorum = client.describe_quorum().await.unwrap().unwrap();
        assert_eq!((quorum.leader_id, quorum.leader_epoch), (2, 7));
        assert_eq!(quorum.high_watermark, 1234);
        let voters: Vec<(i32, Option<i64>)> = quorum
            .voters
            .iter()
            .map(|v| (v.replica_id, v.log_end_offset))
            .collect();
        assert_eq!(voters, [(1, Some(1234)), (2, Some(1234)), (3, Some(1230))]);
        assert_eq!(quorum.observers[0].replica_id, 4);
        assert_eq!(quorum.observers[0].log_end_offset, None);
        assert_eq!(quorum.voters[0].last_caught_up_timestamp, None);
        assert_eq!(quorum.voters[0].last_fetch_timestamp, None);
        assert_eq!(
            quorum.voters[2].last_fetch_timestamp,
            Some(1_700_000_000_000)
        );
        assert_eq!(quorum.voters[0].endpoints, ["CONTROLLER://10.0.0.1:9093"]);
        assert!(quorum.voters[1].endpoints.is_empty());
    }

    #[tokio::test]
    async fn describe_cluster_asks_for_fenced_brokers_and_marks_them() {
        let broker = scripted(|request| {
            assert_eq!(request.api_key, ApiKey::DescribeCluster);
            assert_eq!(request.version, 2);
            let body: DescribeClusterRequest = request.decode();
            assert!(body.include_fenced_brokers);
            let member = |id: i32, fenced: bool| {
                let mut b = kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker::default();
                b.broker_id = BrokerId(id);
                b.host = str_bytes("127.0.0.1");
                b.port = 9091 + id;
                b.is_fenced = fenced;
                b
            };
            let mut response = kafka_protocol::messages::DescribeClusterResponse::default();
            response.cluster_id = str_bytes("c1");
            response.controller_id = BrokerId(1);
            response.brokers = vec![member(3, false), member(2, true), member(1, false)];
            Some(Box::new(response))
        })
        .await;
        let client = crate::Client::connect(crate::ClientConfig::new(broker.addr.clone()))
            .await
            .unwrap();
        let described = client.describe_cluster().await.unwrap();
        let ids: Vec<i32> = described.brokers.iter().map(|b| b.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(described.includes_fenced_brokers);
        assert_eq!(described.fenced_broker_ids, [2]);
        assert!(described.is_fenced(2) && !described.is_fenced(1));
    }

    #[tokio::test]
    async fn describe_quorum_is_none_when_the_broker_does_not_offer_it() {
        let versions = crate::testing::all_versions()
            .into_iter()
            .filter(|(key, _, _)| *key != ApiKey::DescribeQuorum)
            .collect();
        let cluster = FakeCluster::start_with_versions(versions).await;
        let client = test_client(&cluster).await;
        assert_eq!(client.describe_quorum().await.unwrap(), None);
    }

    #[tokio::test]
    async fn elections_are_grouped_by_topic_and_answered_in_request_order() {
        use kafka_protocol::messages::ElectLeadersResponse;
        use kafka_protocol::messages::elect_leaders_response::{
            PartitionResult, ReplicaElectionResult,
        };
        let broker = scripted(|request| {
            assert_eq!(request.api_key, ApiKey::ElectLeaders);
            let body: ElectLeadersRequest = request.decode();
            assert_eq!(body.election_type, 1, "unclean");
            let asked: Vec<(String, Vec<i32>)> = body
                .topic_partitions
                .as_ref()
                .unwrap()
                .iter()
                .map(|t| (t.topic.to_string(), t.partitions.clone()))
                .collect();
            assert_eq!(asked, [("a".into(), vec![0, 2]), ("b".into(), vec![1])]);
            let result = |partition, code: i16| {
                let mut r = PartitionResult::default();
                r.partition_id = partition;
                r.error_code = code;
                r
            };
            let mut b = ReplicaElectionResult::default();
            b.topic = topic_name("b");
            b.partition_result = vec![result(1, 0)];
            let mut a = ReplicaElectionResult::default();
            a.topic = topic_name("a");
            a.partition_result = vec![
                result(2, ResponseError::ElectionNotNeeded.code()),
                result(0, 0),
            ];
            let mut response = ElectLeadersResponse::default();
            response.replica_election_results = vec![b, a];
            Some(Box::new(response))
        })
        .await;
        let client = crate::Client::connect(crate::ClientConfig::new(broker.addr.clone()))
            .await
            .unwrap();
        let asked = [
            ("a".to_owned(), 0),
            ("b".to_owned(), 1),
            ("a".to_owned(), 2),
        ];
        let results = client
            .elect_leaders(ElectionType::Unclean, Some(&asked))
            .await
            .unwrap();
        let order: Vec<String> = results.iter().map(|(tp, _)| tp.to_string()).collect();
        assert_eq!(order, ["a-0", "b-1", "a-2"]);
        assert!(results[0].1.is_ok() && results[1].1.is_ok());
        assert!(
            results[2]
                .1
                .as_ref()
                .unwrap_err()
                .is(ResponseError::ElectionNotNeeded)
        );
        let twice = [("a".to_owned(), 0), ("a".to_owned(), 0)];
        let err = client
            .elect_leaders(ElectionType::Preferred, Some(&twice))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }

    #[tokio::test]
    async fn reassignments_are_sent_per_topic_and_a_cancel_has_null_replicas() {
        use kafka_protocol::messages::AlterPartitionReassignmentsResponse;
        use kafka_protocol::messages::alter_partition_reassignments_response::{
            ReassignablePartitionResponse, ReassignableTopicResponse,
        };
        let broker = scripted(|request| {
            assert_eq!(request.api_key, ApiKey::AlterPartitionReassignments);
            let body: AlterPartitionReassignmentsRequest = request.decode();
            let sent: Vec<(String, i32, Option<Vec<i32>>)> = body
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| {
                        (
                            t.name.to_string(),
                            p.partition_index,
                            p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
                        )
                    })
                })
                .collect();
            assert_eq!(
                sent,
                [("t".into(), 0, Some(vec![3, 1])), ("t".into(), 1, None),]
            );
            let mut cancelled = ReassignablePartitionResponse::default();
            cancelled.partition_index = 1;
            cancelled.error_code = ResponseError::NoReassignmentInProgress.code();
            let mut started = ReassignablePartitionResponse::default();
            started.partition_index = 0;
            let mut topic = ReassignableTopicResponse::default();
            topic.name = topic_name("t");
            topic.partitions = vec![cancelled, started];
            let mut response = AlterPartitionReassignmentsResponse::default();
            response.responses = vec![topic];
            Some(Box::new(response))
        })
        .await;
        let client = crate::Client::connect(crate::ClientConfig::new(broker.addr.clone()))
            .await
            .unwrap();
        let results = client
            .alter_partition_reassignments(&[
                ("t".into(), 0, Some(vec![3, 1])),
                ("t".into(), 1, None),
            ])
            .await
            .unwrap();
        assert_eq!(results[0].0, TopicPartition::new("t", 0));
        assert!(results[0].1.is_ok());
        assert!(
            results[1]
                .1
                .as_ref()
                .unwrap_err()
                .is(ResponseError::NoReassignmentInProgress)
        );
    }

    #[tokio::test]
    async fn ongoing_reassignments_are_listed_sorted_with_their_targets() {
        use kafka_protocol::messages::ListPartitionReassignmentsResponse;
        use kafka_protocol::messages::list_partition_reassignments_response::{
            OngoingPartitionReassignment, OngoingTopicReassignment,
        };
        let broker = scripted(|request| {
            assert_eq!(request.api_key, ApiKey::ListPartitionReassignments);
            let body: ListPartitionReassignmentsRequest = request.decode();
            assert_eq!(body.topics, None, "every reassignment");
            let ids = |v: &[i32]| v.iter().copied().map(BrokerId).collect::<Vec<_>>();
            let partition = |index, replicas: &[i32], adding: &[i32], removing: &[i32]| {
                let mut p = OngoingPartitionReassignment::default();
                p.partition_index = index;
                p.replicas = ids(replicas);
                p.adding_replicas = ids(adding);
                p.removing_replicas = ids(removing);
                p
            };
            let mut topic = OngoingTopicReassignment::default();
            topic.name = topic_name("t");
            topic.partitions = vec![
                partition(3, &[4, 2, 1], &[4], &[1]),
                partition(1, &[2, 4, 3], &[4], &[3]),
            ];
            let mut response = ListPartitionReassignmentsResponse::default();
            response.topics = vec![topic];
            Some(Box::new(response))
        })
        .await;
        let client = crate::Client::connect(crate::ClientConfig::new(broker.addr.clone()))
            .await
            .unwrap();
        let ongoing = client.list_partition_reassignments(None).await.unwrap();
        assert_eq!(ongoing.len(), 2);
        assert_eq!((ongoing[0].partition, ongoing[1].partition), (1, 3));
        assert_eq!(ongoing[1].adding_replicas, vec![4]);
        assert_eq!(ongoing[1].target_replicas(), vec![4, 2]);
    }

    #[tokio::test]
    async fn unregistering_a_broker_reports_the_refusal() {
        use kafka_protocol::messages::UnregisterBrokerResponse;
        let broker = scripted(|request| {
            assert_eq!(request.api_key, ApiKey::UnregisterBroker);
            let body: UnregisterBrokerRequest = request.decode();
            let mut response = UnregisterBrokerResponse::default();
            if body.broker_id.0 != 4 {
                response.error_code = ResponseError::BrokerIdNotRegistered.code();
                response.error_message = Some(str_bytes("not registered"));
            }
            Some(Box::new(response))
        })
        .await;
        let client = crate::Client::connect(crate::ClientConfig::new(broker.addr.clone()))
            .await
            .unwrap();
        client.unregister_broker(4).await.unwrap();
        let err = client.unregister_broker(5).await.unwrap_err();
        assert!(err.is(ResponseError::BrokerIdNotRegistered), "{err}");
        assert!(err.to_string().contains("broker 5"), "{err}");
    }
}

#[cfg(test)]
mod topic_lifecycle_tests {
    use super::*;
    use crate::testing::{FakeCluster, test_client};

    #[tokio::test]
    async fn partitions_are_added_and_topics_deleted() {
        let cluster = FakeCluster::start().await;
        let client = test_client(&cluster).await;
        client.create_topic("t", 1, 1).await.unwrap();
        let results = client
            .create_partitions(&[("t", 3), ("missing", 2)], false)
            .await
            .unwrap();
        assert!(results[0].1.is_ok());
        assert!(
            results[1]
                .1
                .as_ref()
                .unwrap_err()
                .is(ResponseError::UnknownTopicOrPartition)
        );
        assert_eq!(
            client.describe_topic("t").await.unwrap().partitions.len(),
            3
        );
        let err = client.create_partitions(&[("t", 2)], false).await.unwrap()[0]
            .1
            .clone()
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("INVALID_PARTITIONS: Topic currently has 3"),
            "{err}"
        );

        let deleted = client.delete_topics(&["t", "missing"]).await.unwrap();
        assert!(deleted[0].1.is_ok());
        assert!(
            deleted[1]
                .1
                .as_ref()
                .unwrap_err()
                .is(ResponseError::UnknownTopicOrPartition)
        );
        assert!(client.list_topics(false).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn delete_records_moves_the_log_start_offset_at_the_leader() {
        let cluster = FakeCluster::start_cluster(crate::testing::all_versions(), 2).await;
        cluster.with_state(|s| {
            s.create_topic("t", 2);
            s.leaders.insert(("t".into(), 1), 2);
        });
        let client = test_client(&cluster).await;
        let producer = client
            .producer(crate::producer::ProducerConfig::default())
            .await
            .unwrap();
        for partition in [0, 1, 1, 1] {
            producer
                .send(crate::records::ProducerRecord::new("t", "v").with_partition(partition))
                .await
                .unwrap();
        }
        producer.close().await.unwrap();
        let results = client
            .delete_records(&[
                (TopicPartition::new("t", 1), 2),
                (TopicPartition::new("t", 0), -1),
            ])
            .await
            .unwrap();
        assert_eq!(
            *results[0].1.as_ref().unwrap(),
            2,
            "partition 1 at broker 2"
        );
        assert_eq!(
            *results[1].1.as_ref().unwrap(),
            1,
            "-1 means the high watermark"
        );
        let beyond = client
            .delete_records(&[(TopicPartition::new("t", 0), 99)])
            .await
            .unwrap();
        assert!(
            beyond[0]
                .1
                .as_ref()
                .unwrap_err()
                .is(ResponseError::OffsetOutOfRange)
        );
        let err = client
            .delete_records(&[
                (TopicPartition::new("t", 0), 1),
                (TopicPartition::new("t", 0), 1),
            ])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        let earliest = client
            .list_offsets(&[TopicPartition::new("t", 1)], OffsetSpec::Earliest)
            .await
            .unwrap();
        assert_eq!(earliest[0].1.as_ref().unwrap().offset, Some(2));
    }
}
