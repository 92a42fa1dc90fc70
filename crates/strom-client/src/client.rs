//! The cluster-aware client: bootstrap, metadata cache, connections per broker, routing.
//!
//! A [`Client`] is a cheap `Clone` handle. It keeps one [`ClusterMetadata`] snapshot (replaced
//! wholesale on refresh) and one lazily opened [`Connection`] per broker id, reopened on next use
//! after it closes. Requests are routed to any broker, a given broker, the controller, a
//! partition's leader, or a group's coordinator (found with FindCoordinator and cached).
//!
//! Metadata is refreshed on demand: when a topic is not in the cache, when a partition has no
//! known leader, and after an error that says the cache is stale (`NOT_LEADER_OR_FOLLOWER`,
//! `UNKNOWN_TOPIC_OR_PARTITION` from a leader, a closed connection, ...), which marks the cache
//! stale so the next routing decision refreshes first.
//!
//! The high-level operations live in sibling modules as further `impl Client` blocks:
//! `admin`, `producer`, `consumer`, `groups`, `group_consumer`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};

use crate::connection::{Connection, ConnectionConfig};
use crate::error::{Error, Result};
use crate::metadata::{BrokerMetadata, ClusterMetadata, TopicMetadata, TopicPartition};
use crate::security::ClientSecurity;

/// Settings for a [`Client`], named after the Java client's properties where it has one.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `bootstrap.servers`: `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// `client.id`, sent in every request header.
    pub client_id: String,
    /// `request.timeout.ms`: how long to wait for any response.
    pub request_timeout: Duration,
    /// How long opening a TCP connection may take.
    pub connect_timeout: Duration,
    /// `retry.backoff.ms`: the first wait before retrying; doubles per attempt.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the longest wait between retries.
    pub retry_backoff_max: Duration,
    /// How many times an operation is retried after a retriable error (stale metadata,
    /// connection loss, coordinator loading).
    pub retries: u32,
    /// Requests in flight per connection.
    pub max_in_flight_per_connection: usize,
    /// Largest response frame accepted.
    pub max_response_bytes: usize,
    /// `allow.auto.create.topics`: whether metadata lookups for producing or consuming may
    /// auto-create a missing topic (if the broker allows it). Admin lookups never do.
    pub allow_auto_topic_creation: bool,
    /// TLS and SASL for every connection (`security.protocol` and friends; see
    /// [`crate::ClientSecurity::from_properties`]). `None` is PLAINTEXT.
    pub security: Option<Arc<ClientSecurity>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            bootstrap_servers: "localhost:9092".to_owned(),
            client_id: "strom-client".to_owned(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            retries: 10,
            max_in_flight_per_connection: 64,
            max_response_bytes: 100 * 1024 * 1024,
            allow_auto_topic_creation: true,
            security: None,
        }
    }
}

impl ClientConfig {
    /// Defaults with `bootstrap_servers` set.
    pub fn new(bootstrap_servers: impl Into<String>) -> ClientConfig {
        ClientConfig {
            bootstrap_servers: bootstrap_servers.into(),
            ..ClientConfig::default()
        }
    }

    fn connection_config(&self) -> ConnectionConfig {
        ConnectionConfig {
            client_id: Some(self.client_id.clone()),
            request_timeout: self.request_timeout,
            connect_timeout: self.connect_timeout,
            max_in_flight: self.max_in_flight_per_connection,
            max_response_bytes: self.max_response_bytes,
            security: self.security.clone(),
        }
    }

    /// The wait before retry number `attempt` (0-based): exponential, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(16);
        self.retry_backoff
            .saturating_mul(factor)
            .min(self.retry_backoff_max.max(self.retry_backoff))
    }
}

/// A connection slot: the async mutex makes concurrent callers share one connect attempt.
type Slot = Arc<tokio::sync::Mutex<Option<Connection>>>;

/// Which of a broker's connections a request uses. Kafka brokers handle one request at a time
/// per connection, so requests the broker may hold for long (a Fetch long-poll, a JoinGroup
/// waiting for the rebalance) get their own connection instead of stalling everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Lane {
    /// Produce, metadata, admin.
    Default,
    /// Fetch.
    Fetch,
    /// Group coordinator requests.
    Group,
}

/// What was fetched since metadata was last marked stale. A refresh of some topics makes only
/// those fresh, so a brokers-only refresh cannot vouch for a stale topic leader.
#[derive(Default)]
struct Freshness {
    brokers: bool,
    all_topics: bool,
    topics: HashSet<String>,
}

/// Where [`Client::by_leader`] gets its connection to each leader.
#[derive(Clone, Copy)]
pub(crate) enum Route<'a> {
    /// The client's shared connection in this lane.
    Shared(Lane),
    /// Connections owned by one consumer.
    Private(&'a PrivateConnections),
}

/// Connections owned by one consumer (one per broker), closed when the consumer is dropped.
/// Consumers in one client each long-poll on their own connection instead of queueing behind
/// each other's Fetch on a shared one (brokers answer one request per connection at a time).
#[derive(Default)]
pub(crate) struct PrivateConnections {
    slots: tokio::sync::Mutex<HashMap<i32, Connection>>,
}

impl std::fmt::Debug for PrivateConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateConnections")
    }
}

impl PrivateConnections {
    async fn connection(&self, client: &Client, broker_id: i32) -> Result<Connection> {
        let mut slots = self.slots.lock().await;
        if let Some(connection) = slots.get(&broker_id)
            && !connection.is_closed()
        {
            return Ok(connection.clone());
        }
        let broker = match client.metadata().brokers.get(&broker_id) {
            Some(broker) => broker.clone(),
            None => client
                .refresh_metadata(Some(&[]))
                .await?
                .brokers
                .get(&broker_id)
                .cloned()
                .ok_or_else(|| {
                    Error::NoBrokerAvailable(format!(
                        "broker {broker_id} is not in the cluster metadata"
                    ))
                })?,
        };
        let connection = Connection::connect(&broker.addr(), client.connection_config()).await?;
        slots.insert(broker_id, connection.clone());
        Ok(connection)
    }
}

struct Inner {
    config: ClientConfig,
    connection_config: ConnectionConfig,
    bootstrap: Vec<String>,
    metadata: RwLock<Arc<ClusterMetadata>>,
    freshness: Mutex<Freshness>,
    /// Serialises metadata refreshes so a burst of stale-metadata errors costs one request.
    refreshing: tokio::sync::Mutex<()>,
    brokers: Mutex<HashMap<(i32, Lane), Slot>>,
    bootstrap_connection: tokio::sync::Mutex<Option<Connection>>,
    coordinators: Mutex<HashMap<String, BrokerMetadata>>,
}

/// A cluster-aware Kafka client. Clones share connections and metadata.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bootstrap", &self.inner.bootstrap)
            .finish_non_exhaustive()
    }
}

fn std_lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is a single map operation; a panic inside one cannot leave
    // the map half-updated, so a poisoned lock is safe to keep using.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Client {
    /// Connects to the first reachable bootstrap server and loads the broker list.
    pub async fn connect(config: ClientConfig) -> Result<Client> {
        let bootstrap: Vec<String> = config
            .bootstrap_servers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if bootstrap.is_empty() {
            return Err(Error::Config("bootstrap_servers is empty".into()));
        }
        if let Some(bad) = bootstrap.iter().find(|s| !s.contains(':')) {
            return Err(Error::Config(format!(
                "bootstrap server '{bad}' is not host:port"
            )));
        }
        let client = Client {
            inner: Arc::new(Inner {
                connection_config: config.connection_config(),
                config,
                bootstrap,
                metadata: RwLock::new(Arc::new(ClusterMetadata::default())),
                freshness: Mutex::new(Freshness::default()),
                refreshing: tokio::sync::Mutex::new(()),
                brokers: Mutex::new(HashMap::new()),
                bootstrap_connection: tokio::sync::Mutex::new(None),
                coordinators: Mutex::new(HashMap::new()),
            }),
        };
        // Fail fast when no bootstrap server answers at all, instead of retrying for seconds:
        // a wrong address is far more likely than a cluster that is still starting.
        client.any_connection().await?;
        client.refresh_metadata(Some(&[])).await?;
        Ok(client)
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The current metadata snapshot (possibly stale; see [`Client::refresh_metadata`]).
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        Arc::clone(
            &self
                .inner
                .metadata
                .read()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// Whether `topic`'s cached metadata was fetched since the last invalidation.
    fn is_fresh(&self, topic: &str) -> bool {
        let freshness = std_lock(&self.inner.freshness);
        freshness.all_topics || freshness.topics.contains(topic)
    }

    /// Marks cached metadata stale: the next routing decision refreshes it first.
    pub fn invalidate_metadata(&self) {
        *std_lock(&self.inner.freshness) = Freshness::default();
    }

    fn store_metadata(&self, metadata: ClusterMetadata) -> Arc<ClusterMetadata> {
        let metadata = Arc::new(metadata);
        *self
            .inner
            .metadata
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::clone(&metadata);
        metadata
    }

    /// Fetches fresh metadata. `None` asks for every topic and replaces the topic cache;
    /// `Some(topics)` asks for those topics only (`Some(&[])`: brokers and controller only) and
    /// merges them into the cache. Never auto-creates topics.
    pub async fn refresh_metadata(&self, topics: Option<&[&str]>) -> Result<Arc<ClusterMetadata>> {
        self.fetch_metadata(topics, false).await
    }

    pub(crate) async fn fetch_metadata(
        &self,
        topics: Option<&[&str]>,
        allow_auto_topic_creation: bool,
    ) -> Result<Arc<ClusterMetadata>> {
        let _refreshing = self.inner.refreshing.lock().await;
        self.retry(|_| async {
            let connection = self.any_connection().await?;
            let version = connection.negotiated_version::<MetadataRequest>()?;
            let mut request = MetadataRequest::default();
            request.topics = topics.map(|names| {
                names
                    .iter()
                    .map(|name| {
                        let mut topic = MetadataRequestTopic::default();
                        topic.name = Some(TopicName(StrBytes::from_string((*name).to_owned())));
                        topic
                    })
                    .collect()
            });
            // Before v4 the field does not exist and the broker behaves as if it were true.
            if version >= 4 {
                request.allow_auto_topic_creation = allow_auto_topic_creation;
            }
            let response = connection
                .send_with_timeout(request, version, self.inner.config.request_timeout)
                .await?;
            Error::check(response.error_code, None)?;
            Ok(response)
        })
        .await
        .map(|response| {
            // Mark fresh before swapping in the new snapshot: an error seen after this point
            // must be able to mark this very snapshot stale again.
            {
                let mut freshness = std_lock(&self.inner.freshness);
                freshness.brokers = true;
                match topics {
                    None => freshness.all_topics = true,
                    Some(names) => {
                        freshness
                            .topics
                            .extend(names.iter().map(|n| (*n).to_owned()));
                    }
                }
            }
            let previous = self.metadata();
            let merge_with = topics.is_some().then_some(&*previous);
            self.store_metadata(ClusterMetadata::from_response(response, merge_with))
        })
    }

    /// Metadata for `topic`, from the cache when fresh, otherwise fetched (auto-creating the
    /// topic if `auto_create` and the broker allow it). Fails with the topic's error
    /// (`UNKNOWN_TOPIC_OR_PARTITION`, ...) if the broker reports one.
    pub async fn topic_metadata(&self, topic: &str, auto_create: bool) -> Result<TopicMetadata> {
        if self.is_fresh(topic)
            && let Some(cached) = self.metadata().topic(topic)
            && cached.error_code == 0
            && cached.partitions.iter().all(|p| p.leader.is_some())
        {
            return Ok(cached.clone());
        }
        let metadata = self.fetch_metadata(Some(&[topic]), auto_create).await?;
        let found = metadata
            .topic(topic)
            .cloned()
            .ok_or_else(|| Error::Protocol {
                addr: "metadata".into(),
                reason: format!("Metadata response does not mention topic '{topic}'"),
            })?;
        found.error()?;
        Ok(found)
    }

    /// Runs `op` and retries it, with exponential backoff, while it fails with an error worth
    /// retrying: connection loss, or a Kafka error saying metadata or the coordinator moved.
    /// `op` gets the attempt number (0-based).
    pub(crate) async fn retry<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.retry_if(is_routing_retriable, op).await
    }

    /// Like [`Client::retry`] with a custom test for which errors to retry.
    pub(crate) async fn retry_if<T, F, Fut>(
        &self,
        retriable: impl Fn(&Error) -> bool,
        mut op: F,
    ) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match op(attempt).await {
                Ok(value) => return Ok(value),
                Err(error) if attempt < self.inner.config.retries && retriable(&error) => {
                    tracing::debug!(%error, attempt, "retrying");
                    if error.invalidates_metadata() {
                        self.invalidate_metadata();
                    }
                    tokio::time::sleep(self.inner.config.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn refresh_if_stale(&self) -> Result<()> {
        if !std_lock(&self.inner.freshness).brokers {
            self.refresh_metadata(Some(&[])).await?;
        }
        Ok(())
    }

    /// A connection to some broker: an open one if there is any, else the first that accepts
    /// a connection among the known brokers and the bootstrap servers.
    pub async fn any_connection(&self) -> Result<Connection> {
        let metadata = self.metadata();
        let open: Vec<Slot> = {
            let brokers = std_lock(&self.inner.brokers);
            metadata
                .brokers
                .keys()
                .filter_map(|id| brokers.get(&(*id, Lane::Default)).cloned())
                .collect()
        };
        for slot in open {
            if let Ok(guard) = slot.try_lock()
                && let Some(connection) = guard.as_ref()
                && !connection.is_closed()
            {
                return Ok(connection.clone());
            }
        }
        {
            let guard = self.inner.bootstrap_connection.lock().await;
            if let Some(connection) = guard.as_ref()
                && !connection.is_closed()
            {
                return Ok(connection.clone());
            }
        }
        let mut failures = Vec::new();
        for broker in metadata.brokers.values() {
            match self.connection_to(broker, Lane::Default).await {
                Ok(connection) => return Ok(connection),
                Err(e) => failures.push(format!("{} ({e})", broker.addr())),
            }
        }
        let mut guard = self.inner.bootstrap_connection.lock().await;
        for addr in &self.inner.bootstrap {
            match Connection::connect(addr, &self.inner.connection_config).await {
                Ok(connection) => {
                    *guard = Some(connection.clone());
                    return Ok(connection);
                }
                // Wrong credentials will not get better at the next address.
                Err(e @ Error::Authentication(_)) => return Err(e),
                Err(e) => failures.push(format!("{addr} ({e})")),
            }
        }
        Err(Error::NoBrokerAvailable(format!(
            "could not connect to any of: {}",
            failures.join(", ")
        )))
    }

    /// The connection to broker `broker_id`, opened if needed. Refreshes metadata once if the
    /// broker is unknown.
    pub async fn broker_connection(&self, broker_id: i32) -> Result<Connection> {
        self.lane_connection(broker_id, Lane::Default).await
    }

    pub(crate) async fn lane_connection(&self, broker_id: i32, lane: Lane) -> Result<Connection> {
        let broker = match self.metadata().brokers.get(&broker_id) {
            Some(broker) => broker.clone(),
            None => self
                .refresh_metadata(Some(&[]))
                .await?
                .brokers
                .get(&broker_id)
                .cloned()
                .ok_or_else(|| {
                    Error::NoBrokerAvailable(format!(
                        "broker {broker_id} is not in the cluster metadata"
                    ))
                })?,
        };
        self.connection_to(&broker, lane).await
    }

    /// The connection to `broker` (which need not be in the metadata, e.g. a coordinator).
    async fn connection_to(&self, broker: &BrokerMetadata, lane: Lane) -> Result<Connection> {
        let slot = std_lock(&self.inner.brokers)
            .entry((broker.id, lane))
            .or_default()
            .clone();
        let mut guard = slot.lock().await;
        if let Some(connection) = guard.as_ref()
            && !connection.is_closed()
            && connection.addr() == broker.addr()
        {
            return Ok(connection.clone());
        }
        let connection = Connection::connect(&broker.addr(), &self.inner.connection_config).await?;
        *guard = Some(connection.clone());
        Ok(connection)
    }

    /// The connection to the controller (as the metadata names it) and its id.
    pub async fn controller_connection(&self) -> Result<(i32, Connection)> {
        self.refresh_if_stale().await?;
        let mut controller = self.metadata().controller_id;
        if controller.is_none() {
            controller = self.refresh_metadata(Some(&[])).await?.controller_id;
        }
        let id = controller
            .ok_or_else(|| Error::NoBrokerAvailable("the cluster reports no controller".into()))?;
        Ok((id, self.broker_connection(id).await?))
    }

    /// The leader of `topic`/`partition` and a connection to it. Refreshes metadata when the
    /// cache is stale, lacks the topic, or knows no leader.
    pub async fn leader_connection(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(i32, Connection)> {
        let leader = self.leader_for(topic, partition, false).await?;
        Ok((leader, self.broker_connection(leader).await?))
    }

    pub(crate) async fn leader_for(
        &self,
        topic: &str,
        partition: i32,
        auto_create: bool,
    ) -> Result<i32> {
        if self.is_fresh(topic)
            && let Some(leader) = self.metadata().leader(topic, partition)
        {
            return Ok(leader);
        }
        let topic_metadata = self.topic_metadata(topic, auto_create).await?;
        let partition_metadata = topic_metadata.partition(partition).ok_or_else(|| {
            Error::kafka(
                ResponseError::UnknownTopicOrPartition.code(),
                Some(format!(
                    "topic '{topic}' has {} partitions, there is no partition {partition}",
                    topic_metadata.partition_count()
                )),
            )
        })?;
        partition_metadata.leader.ok_or_else(|| {
            Error::kafka(
                ResponseError::LeaderNotAvailable.code(),
                Some(format!("{topic}-{partition} has no leader")),
            )
        })
    }

    /// The coordinator of consumer group `group` and a connection to it. Uses the cached
    /// coordinator when there is one; otherwise asks with FindCoordinator (key type 0, batched
    /// `coordinator_keys` on v4+), retrying while the coordinator is not available yet.
    pub async fn coordinator_connection(&self, group: &str) -> Result<(i32, Connection)> {
        let coordinator = self.coordinator(group).await?;
        match self.connection_to(&coordinator, Lane::Group).await {
            Ok(connection) => Ok((coordinator.id, connection)),
            Err(e) => {
                self.invalidate_coordinator(group);
                Err(e)
            }
        }
    }

    /// The coordinator of `group`: cached, or found with FindCoordinator.
    pub(crate) async fn coordinator(&self, group: &str) -> Result<BrokerMetadata> {
        let cached = std_lock(&self.inner.coordinators).get(group).cloned();
        match cached {
            Some(c) => Ok(c),
            None => {
                let found = self.find_coordinator(group).await?;
                std_lock(&self.inner.coordinators).insert(group.to_owned(), found.clone());
                Ok(found)
            }
        }
    }

    /// The settings every connection of this client uses.
    pub(crate) fn connection_config(&self) -> &ConnectionConfig {
        &self.inner.connection_config
    }

    /// Forgets the cached coordinator of `group` (after `NOT_COORDINATOR` and friends).
    pub fn invalidate_coordinator(&self, group: &str) {
        std_lock(&self.inner.coordinators).remove(group);
    }

    async fn find_coordinator(&self, group: &str) -> Result<BrokerMetadata> {
        self.retry(|_| async {
            let connection = self.any_connection().await?;
            let version = connection.negotiated_version::<FindCoordinatorRequest>()?;
            let mut request = FindCoordinatorRequest::default();
            if version >= 4 {
                request.coordinator_keys = vec![StrBytes::from_string(group.to_owned())];
            } else {
                request.key = StrBytes::from_string(group.to_owned());
            }
            // key_type 0 = group; it is the default and the only value before v1.
            request.key_type = 0;
            let response: FindCoordinatorResponse = connection
                .send_with_timeout(request, version, self.inner.config.request_timeout)
                .await?;
            let (error_code, message, id, host, port) =
                if version >= 4 {
                    let c = response.coordinators.into_iter().next().ok_or_else(|| {
                        Error::Protocol {
                            addr: connection.addr().to_owned(),
                            reason: "FindCoordinator response lists no coordinator".into(),
                        }
                    })?;
                    (c.error_code, c.error_message, c.node_id.0, c.host, c.port)
                } else {
                    (
                        response.error_code,
                        response.error_message,
                        response.node_id.0,
                        response.host,
                        response.port,
                    )
                };
            Error::check(error_code, message.as_deref())
                .map_err(|e| e.with_context(format!("group '{group}'")))?;
            Ok(BrokerMetadata {
                id,
                host: host.to_string(),
                port,
                rack: None,
            })
        })
        .await
    }

    /// Splits `items` by partition leader, sends one request per leader (concurrently) with
    /// `send`, and retries the items whose leader moved, for up to `max_rounds` rounds. `send`
    /// must return one result per item it was given, in the same order. Results come back in
    /// the order of `items`.
    pub(crate) async fn by_leader<I, O, F, Fut>(
        &self,
        items: &[(TopicPartition, I)],
        route: Route<'_>,
        max_rounds: u32,
        send: F,
    ) -> Vec<Result<O>>
    where
        I: Clone,
        F: Fn(i32, Connection, Vec<(TopicPartition, I)>) -> Fut,
        Fut: Future<Output = Result<Vec<Result<O>>>>,
    {
        let mut results: Vec<Option<Result<O>>> = items.iter().map(|_| None).collect();
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut round = 0;
        let send = &send;
        loop {
            let last_round = round + 1 >= max_rounds.max(1);
            let mut retry_later = Vec::new();
            let mut groups: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
            for index in pending.drain(..) {
                let tp = &items[index].0;
                match self.leader_for(&tp.topic, tp.partition, false).await {
                    Ok(leader) => groups.entry(leader).or_default().push(index),
                    Err(e) if !last_round && is_routing_retriable(&e) => retry_later.push(index),
                    Err(e) => results[index] = Some(Err(e)),
                }
            }
            let requests = groups.into_iter().map(|(leader, indexes)| async move {
                let group: Vec<_> = indexes.iter().map(|i| items[*i].clone()).collect();
                let connection = match route {
                    Route::Shared(lane) => self.lane_connection(leader, lane).await,
                    Route::Private(private) => private.connection(self, leader).await,
                };
                let outcome = match connection {
                    Ok(connection) => send(leader, connection, group).await,
                    Err(e) => Err(e),
                };
                (indexes, outcome)
            });
            for (indexes, outcome) in futures::future::join_all(requests).await {
                let per_item: Vec<Result<O>> = match outcome {
                    Ok(per_item) if per_item.len() == indexes.len() => per_item,
                    Ok(per_item) => {
                        let e = Error::Protocol {
                            addr: "partition leader".into(),
                            reason: format!(
                                "{} results for {} partitions",
                                per_item.len(),
                                indexes.len()
                            ),
                        };
                        indexes.iter().map(|_| Err(e.clone())).collect()
                    }
                    Err(e) => indexes.iter().map(|_| Err(e.clone())).collect(),
                };
                for (index, result) in indexes.into_iter().zip(per_item) {
                    match result {
                        Err(e) if !last_round && is_partition_retriable(&e) => {
                            retry_later.push(index);
                        }
                        other => results[index] = Some(other),
                    }
                }
            }
            if retry_later.is_empty() {
                break;
            }
            self.invalidate_metadata();
            tokio::time::sleep(self.inner.config.backoff(round)).await;
            round += 1;
            pending = retry_later;
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(Error::Protocol {
                        addr: "partition leader".into(),
                        reason: "no result for a partition".into(),
                    })
                })
            })
            .collect()
    }

    /// Sends `request` to any broker.
    pub async fn send_to_any<R: Request>(&self, request: R) -> Result<R::Response> {
        self.any_connection().await?.send(request).await
    }

    /// Sends `request` to broker `broker_id`.
    pub async fn send_to_broker<R: Request>(
        &self,
        broker_id: i32,
        request: R,
    ) -> Result<R::Response> {
        self.broker_connection(broker_id).await?.send(request).await
    }

    /// Sends `request` to the controller.
    pub async fn send_to_controller<R: Request>(&self, request: R) -> Result<R::Response> {
        self.controller_connection().await?.1.send(request).await
    }

    /// Sends `request` to the leader of `topic`/`partition`.
    pub async fn send_to_leader<R: Request>(
        &self,
        topic: &str,
        partition: i32,
        request: R,
    ) -> Result<R::Response> {
        self.leader_connection(topic, partition)
            .await?
            .1
            .send(request)
            .await
    }

    /// Sends `request` to the coordinator of `group`.
    pub async fn send_to_coordinator<R: Request>(
        &self,
        group: &str,
        request: R,
    ) -> Result<R::Response> {
        self.coordinator_connection(group)
            .await?
            .1
            .send(request)
            .await
    }
}

/// Errors worth retrying for routed requests: connection loss and Kafka errors meaning the
/// request went to the wrong broker or the right broker is not ready. Not
/// `UNKNOWN_TOPIC_OR_PARTITION` (an admin request about a missing topic should fail at once) and
/// not request timeouts (the request may have taken effect).
pub(crate) fn is_routing_retriable(error: &Error) -> bool {
    match error {
        Error::Connect { .. } | Error::ConnectionClosed { .. } | Error::NoBrokerAvailable(_) => {
            true
        }
        Error::Kafka { code, .. } => matches!(
            ResponseError::try_from_code(*code),
            Some(
                ResponseError::NotLeaderOrFollower
                    | ResponseError::LeaderNotAvailable
                    | ResponseError::NotController
                    | ResponseError::NotCoordinator
                    | ResponseError::CoordinatorNotAvailable
                    | ResponseError::CoordinatorLoadInProgress
                    | ResponseError::FencedLeaderEpoch
                    | ResponseError::UnknownLeaderEpoch
                    | ResponseError::ReplicaNotAvailable
                    | ResponseError::KafkaStorageError
                    | ResponseError::NetworkException
                    | ResponseError::ThrottlingQuotaExceeded
            )
        ),
        _ => false,
    }
}

/// Errors worth retrying for one partition of a request routed to its leader: the routing
/// errors plus `UNKNOWN_TOPIC_OR_PARTITION`, which from a leader means our metadata is stale.
pub(crate) fn is_partition_retriable(error: &Error) -> bool {
    is_routing_retriable(error) || error.is(ResponseError::UnknownTopicOrPartition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::{FetchOptions, StartOffset};
    use crate::producer::ProducerConfig;
    use crate::records::ProducerRecord;
    use crate::testing::{FakeCluster, all_versions, test_client};

    #[tokio::test]
    async fn a_moved_leader_is_found_after_not_leader_or_follower() {
        let cluster = FakeCluster::start_cluster(all_versions(), 2).await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        assert_eq!(client.metadata().brokers.len(), 2);
        let producer = client.producer(ProducerConfig::default()).await.unwrap();
        let first = producer
            .send_and_wait(ProducerRecord::new("t", "a"))
            .await
            .unwrap();
        assert_eq!(first.offset, 0);
        let mut consumer = client
            .partition_consumer(
                "t",
                0,
                StartOffset::Earliest,
                FetchOptions {
                    max_wait: Duration::from_millis(10),
                    ..FetchOptions::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(consumer.poll().await.unwrap().len(), 1);

        cluster.with_state(|s| s.leaders.insert(("t".into(), 0), 2));
        let second = producer
            .send_and_wait(ProducerRecord::new("t", "b"))
            .await
            .unwrap();
        assert_eq!(second.offset, 1, "written at the new leader");
        let requests = cluster.with_state(|s| s.produce_requests);
        assert_eq!(requests, 3, "one refused by the old leader");
        assert_eq!(client.metadata().leader("t", 0), Some(2));

        // The consumer follows as well: one poll may be spent on the refusal.
        let mut received = Vec::new();
        for _ in 0..5 {
            received.extend(consumer.poll().await.unwrap());
            if !received.is_empty() {
                break;
            }
        }
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].offset, 1);
    }

    #[tokio::test]
    async fn a_brokers_only_refresh_does_not_make_stale_topics_fresh() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        let count = || cluster.with_state(|s| s.metadata_requests);
        client.leader_connection("t", 0).await.unwrap();
        let after_first = count();
        client.leader_connection("t", 0).await.unwrap();
        assert_eq!(count(), after_first, "served from the cache");

        client.invalidate_metadata();
        client.controller_connection().await.unwrap();
        assert_eq!(
            count(),
            after_first + 1,
            "brokers refreshed for the controller"
        );
        client.leader_connection("t", 0).await.unwrap();
        assert_eq!(
            count(),
            after_first + 2,
            "the topic itself is refreshed too"
        );
    }

    #[tokio::test]
    async fn connect_fails_fast_when_no_bootstrap_server_answers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let started = std::time::Instant::now();
        let err = Client::connect(ClientConfig::new(format!("{addr}, {addr}")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NoBrokerAvailable(_)), "{err}");
        assert!(err.to_string().contains(&addr), "{err}");
        // Retrying with backoff would take seconds.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn malformed_bootstrap_servers_are_a_config_error() {
        for servers in ["", " , ", "no-port"] {
            let err = Client::connect(ClientConfig::new(servers))
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{servers:?}: {err}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let config = ClientConfig {
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1000),
            ..ClientConfig::default()
        };
        let waits: Vec<u128> = (0..6).map(|a| config.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(config.backoff(u32::MAX), Duration::from_millis(1000));
    }
}
