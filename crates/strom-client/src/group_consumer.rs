//! A consumer-group member speaking the classic consumer protocol.
//!
//! ```text
//!  join: FindCoordinator ─► JoinGroup (again with the member id on MEMBER_ID_REQUIRED)
//!          └─ leader? compute a range assignment from every member's subscription
//!        ─► SyncGroup ─► my assignment ─► committed offsets (OffsetFetch), or
//!           auto_offset_reset (ListOffsets) where none ─► start the heartbeat task
//!  poll: rejoin if the heartbeat task saw a rebalance ─► auto-commit if due ─► Fetch
//!  close: commit (with auto-commit) ─► LeaveGroup
//! ```
//!
//! The heartbeat task sends Heartbeat every `heartbeat_interval` (default a third of the
//! session timeout). When the coordinator answers `REBALANCE_IN_PROGRESS` (or says this member or
//! generation is unknown) the task stops and flags the consumer, which rejoins on its next
//! [`GroupConsumer::poll`], first committing its positions if auto-commit is on, since Kafka
//! accepts commits from the current generation while a rebalance is being prepared.
//!
//! The assignment is Kafka's range assignor: for each topic, the members subscribed to it,
//! sorted by member id, get consecutive ranges of partitions, the first
//! `partitions % members` one partition more. [`range_assign`] is pure and tested on its own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::admin::OffsetSpec;
use crate::client::{Client, PrivateConnections, Route};
use crate::consumer::FetchOptions;
use crate::error::{Error, Result};
use crate::groups::{
    CoordinatorLink, decode_assignment, decode_subscription, encode_assignment, encode_subscription,
};
use crate::metadata::TopicPartition;
use crate::records::ConsumerRecord;

/// The assignor this consumer offers and implements.
pub const RANGE_ASSIGNOR: &str = "range";

/// Where to start a partition the group has no committed offset for (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    /// From the log start offset.
    Earliest,
    /// From the end: only new records.
    Latest,
    /// Fail with an error.
    None,
}

/// Group consumer settings, named after the Java consumer's properties.
#[derive(Debug, Clone)]
pub struct GroupConsumerConfig {
    /// `group.id`.
    pub group_id: String,
    /// The topics to subscribe to.
    pub topics: Vec<String>,
    /// `session.timeout.ms`: the coordinator evicts a member that sends no heartbeat this long.
    pub session_timeout: Duration,
    /// `max.poll.interval.ms`, sent as the rebalance timeout: how long the coordinator waits for
    /// members to rejoin during a rebalance.
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms`; `None` for a third of the session timeout.
    pub heartbeat_interval: Option<Duration>,
    /// `auto.offset.reset`.
    pub auto_offset_reset: AutoOffsetReset,
    /// `auto.commit.interval.ms` with `enable.auto.commit`; `None` disables auto-commit.
    pub auto_commit_interval: Option<Duration>,
    /// `group.instance.id` for static membership.
    pub group_instance_id: Option<String>,
    /// Fetch limits.
    pub fetch: FetchOptions,
}

impl GroupConsumerConfig {
    /// Defaults for `group_id` subscribed to `topics`.
    pub fn new(group_id: impl Into<String>, topics: Vec<String>) -> GroupConsumerConfig {
        GroupConsumerConfig {
            group_id: group_id.into(),
            topics,
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: None,
            auto_offset_reset: AutoOffsetReset::Latest,
            auto_commit_interval: Some(Duration::from_secs(5)),
            group_instance_id: None,
            fetch: FetchOptions::default(),
        }
    }

    fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
            .unwrap_or(self.session_timeout / 3)
            .max(Duration::from_millis(1))
    }
}

/// The range assignment: for each topic, the subscribed members sorted by id split the
/// partitions into consecutive ranges, the first `partitions % members` getting one more.
/// Every member appears in the result, possibly with nothing. Topics missing from
/// `partition_counts` are not assigned.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partition_counts: &HashMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut assignment: BTreeMap<String, Vec<TopicPartition>> = subscriptions
        .keys()
        .map(|member| (member.clone(), Vec::new()))
        .collect();
    let mut members_by_topic: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (member, topics) in subscriptions {
        for topic in topics.iter().collect::<BTreeSet<_>>() {
            members_by_topic.entry(topic).or_default().push(member);
        }
    }
    for (topic, members) in members_by_topic {
        let Some(&count) = partition_counts.get(topic) else {
            continue;
        };
        let count = usize::try_from(count).unwrap_or(0);
        // `subscriptions` is a BTreeMap, so `members` is already sorted by member id.
        let per_member = count / members.len();
        let extra = count % members.len();
        for (i, member) in members.iter().enumerate() {
            let start = i * per_member + i.min(extra);
            let length = per_member + usize::from(i < extra);
            if let Some(assigned) = assignment.get_mut(*member) {
                for partition in start..start + length {
                    assigned.push(TopicPartition::new(
                        topic,
                        i32::try_from(partition).unwrap_or(i32::MAX),
                    ));
                }
            }
        }
    }
    assignment
}

const REJOIN_NONE: u8 = 0;
const REJOIN: u8 = 1;
const REJOIN_AS_NEW_MEMBER: u8 = 2;

/// Shared between the consumer and its heartbeat task.
#[derive(Default)]
struct Signals {
    rejoin: AtomicU8,
    wake: Notify,
}

/// A member of a consumer group. Not `Clone`; one per task.
pub struct GroupConsumer {
    client: Client,
    /// This member's own connection to the coordinator, shared with the heartbeat task.
    link: Arc<CoordinatorLink>,
    config: GroupConsumerConfig,
    member_id: String,
    generation_id: i32,
    assignment: Vec<TopicPartition>,
    positions: BTreeMap<TopicPartition, i64>,
    signals: Arc<Signals>,
    heartbeat: Option<JoinHandle<()>>,
    fetch_connections: PrivateConnections,
    last_commit: Instant,
    closed: bool,
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group_id", &self.config.group_id)
            .field("member_id", &self.member_id)
            .field("generation_id", &self.generation_id)
            .field("assignment", &self.assignment)
            .finish()
    }
}

impl Client {
    /// Joins a consumer group; see [`GroupConsumer::join`].
    pub async fn group_consumer(&self, config: GroupConsumerConfig) -> Result<GroupConsumer> {
        GroupConsumer::join(self.clone(), config).await
    }
}

enum JoinOutcome {
    Joined,
    Retry { reset_member: bool, backoff: bool },
}

impl GroupConsumer {
    /// Joins the group, takes part in the rebalance, and positions every assigned partition at
    /// its committed offset (or per `auto_offset_reset`).
    pub async fn join(client: Client, config: GroupConsumerConfig) -> Result<GroupConsumer> {
        if config.group_id.is_empty() {
            return Err(Error::Config("group_id must not be empty".into()));
        }
        if config.topics.is_empty() {
            return Err(Error::Config("subscribe to at least one topic".into()));
        }
        let mut consumer = GroupConsumer {
            link: Arc::new(CoordinatorLink::dedicated(&client, &config.group_id)),
            client,
            config,
            member_id: String::new(),
            generation_id: -1,
            assignment: Vec::new(),
            positions: BTreeMap::new(),
            signals: Arc::new(Signals::default()),
            heartbeat: None,
            fetch_connections: PrivateConnections::default(),
            last_commit: Instant::now(),
            closed: false,
        };
        consumer.rejoin().await?;
        Ok(consumer)
    }

    /// The member id the coordinator assigned.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The current generation.
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// The partitions assigned to this member in the current generation.
    pub fn assignment(&self) -> &[TopicPartition] {
        &self.assignment
    }

    /// The next offset to fetch for an assigned partition.
    pub fn position(&self, topic_partition: &TopicPartition) -> Option<i64> {
        self.positions.get(topic_partition).copied()
    }

    /// Moves the position of an assigned partition.
    pub fn seek(&mut self, topic_partition: &TopicPartition, offset: i64) -> Result<()> {
        match self.positions.get_mut(topic_partition) {
            Some(position) => {
                *position = offset;
                Ok(())
            }
            None => Err(Error::InvalidArgument(format!(
                "{topic_partition} is not assigned to this member"
            ))),
        }
    }

    /// True when a rebalance was signalled and the next poll will rejoin.
    pub fn rejoin_pending(&self) -> bool {
        self.signals.rejoin.load(Ordering::Acquire) != REJOIN_NONE
    }

    /// Fetches from the assigned partitions once and advances their positions. Rejoins first if
    /// a rebalance was signalled, and auto-commits when due. With nothing assigned, waits up to
    /// the fetch `max_wait` (or until a rebalance is signalled) and returns nothing.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        if self.closed {
            return Err(Error::Closed("group consumer"));
        }
        if self.rejoin_pending() {
            self.rejoin().await?;
        }
        if let Some(interval) = self.config.auto_commit_interval
            && self.last_commit.elapsed() >= interval
            && let Err(e) = self.commit().await
        {
            tracing::warn!(group = %self.config.group_id, error = %e, "auto-commit failed");
        }
        if self.assignment.is_empty() {
            let wake = self.signals.wake.notified();
            let _ = tokio::time::timeout(self.config.fetch.max_wait, wake).await;
            return Ok(Vec::new());
        }
        let positions: Vec<(TopicPartition, i64)> = self
            .positions
            .iter()
            .map(|(tp, o)| (tp.clone(), *o))
            .collect();
        let fetched = self
            .client
            .fetch_via(
                Route::Private(&self.fetch_connections),
                &positions,
                &self.config.fetch,
            )
            .await?;
        let mut records = Vec::new();
        let mut failures = 0;
        for (tp, result) in fetched {
            match result {
                Ok(partition) => {
                    self.positions.insert(tp, partition.next_offset);
                    records.extend(partition.records);
                }
                Err(Error::OffsetOutOfRange { offset, .. }) => {
                    let reset = self.reset_offset(&tp).await?;
                    tracing::info!(partition = %tp, offset, reset, "offset out of range, resetting");
                    self.positions.insert(tp, reset);
                }
                Err(e) if e.is_retriable() || e.invalidates_metadata() => {
                    tracing::debug!(partition = %tp, error = %e, "fetch failed, will retry");
                    failures += 1;
                }
                Err(e) => return Err(e),
            }
        }
        if failures == positions.len() {
            // Every partition failed fast (leader moving, connection lost): do not spin.
            tokio::time::sleep(self.client.config().retry_backoff).await;
        }
        Ok(records)
    }

    /// Commits the current positions of all assigned partitions.
    pub async fn commit(&mut self) -> Result<()> {
        let offsets: Vec<(TopicPartition, i64)> = self
            .positions
            .iter()
            .map(|(tp, o)| (tp.clone(), *o))
            .collect();
        self.commit_offsets(&offsets).await
    }

    /// Commits the given offsets (the offsets of the next records to read) as this member.
    pub async fn commit_offsets(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        if offsets.is_empty() {
            self.last_commit = Instant::now();
            return Ok(());
        }
        let results = self
            .link
            .commit_offsets(
                self.generation_id,
                &self.member_id,
                self.config.group_instance_id.as_deref(),
                offsets,
            )
            .await?;
        self.last_commit = Instant::now();
        for (_, result) in results {
            if let Err(e) = result {
                if e.is(ResponseError::UnknownMemberId) {
                    self.signals
                        .rejoin
                        .store(REJOIN_AS_NEW_MEMBER, Ordering::Release);
                } else if e.is(ResponseError::RebalanceInProgress)
                    || e.is(ResponseError::IllegalGeneration)
                {
                    self.signals.rejoin.store(REJOIN, Ordering::Release);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Commits (with auto-commit) and leaves the group, so the others rebalance at once instead
    /// of after the session timeout. Static members do not leave, as in the Java client.
    pub async fn close(mut self) -> Result<()> {
        self.closed = true;
        self.stop_heartbeat();
        if self.config.auto_commit_interval.is_some()
            && let Err(e) = self.commit().await
        {
            tracing::warn!(group = %self.config.group_id, error = %e, "final commit failed");
        }
        if self.config.group_instance_id.is_some() || self.member_id.is_empty() {
            return Ok(());
        }
        let group = self.config.group_id.clone();
        let member_id = self.member_id.clone();
        let client = self.client.clone();
        let client_ref = &client;
        let group_ref = &group;
        let member_ref = &member_id;
        let response = self
            .link
            .run(|connection| async move {
                let version = connection.negotiated_version::<LeaveGroupRequest>()?;
                let mut request = LeaveGroupRequest::default();
                request.group_id = GroupId(StrBytes::from_string(group_ref.clone()));
                if version >= 3 {
                    let mut member = MemberIdentity::default();
                    member.member_id = StrBytes::from_string(member_ref.clone());
                    if version >= 5 {
                        member.reason = Some(StrBytes::from_static_str("the consumer is closing"));
                    }
                    request.members = vec![member];
                } else {
                    request.member_id = StrBytes::from_string(member_ref.clone());
                }
                connection
                    .send_with_timeout(request, version, client_ref.config().request_timeout)
                    .await
            })
            .await?;
        // The member may already be gone (session expired): nothing left to leave.
        let ignorable = |code: i16| code == 0 || code == ResponseError::UnknownMemberId.code();
        if !ignorable(response.error_code) {
            return Err(Error::kafka(response.error_code, None));
        }
        if let Some(member) = response.members.iter().find(|m| !ignorable(m.error_code)) {
            return Err(Error::kafka(member.error_code, None));
        }
        Ok(())
    }

    fn stop_heartbeat(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }

    /// Runs JoinGroup + SyncGroup until this member is in a stable generation, then positions
    /// the assigned partitions and starts heartbeating. If that fails the rejoin stays pending,
    /// so the next poll tries again (without it, a member left without a heartbeat would never
    /// notice it had been evicted).
    async fn rejoin(&mut self) -> Result<()> {
        let result = self.try_rejoin().await;
        if result.is_err() {
            self.signals.rejoin.store(REJOIN, Ordering::Release);
        }
        result
    }

    async fn try_rejoin(&mut self) -> Result<()> {
        self.stop_heartbeat();
        let signal = self.signals.rejoin.swap(REJOIN_NONE, Ordering::AcqRel);
        if signal != REJOIN_NONE
            && self.config.auto_commit_interval.is_some()
            && !self.assignment.is_empty()
        {
            // Still a member of the old generation: save progress before giving partitions up.
            if let Err(e) = self.commit().await {
                tracing::debug!(error = %e, "commit before rejoin failed");
            }
            self.signals.rejoin.store(REJOIN_NONE, Ordering::Release);
        }
        if signal == REJOIN_AS_NEW_MEMBER {
            self.member_id.clear();
        }
        let deadline = Instant::now() + self.config.rebalance_timeout + self.config.session_timeout;
        let mut attempt = 0u32;
        loop {
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("group '{}' to finish rebalancing", self.config.group_id),
                    timeout: self.config.rebalance_timeout + self.config.session_timeout,
                });
            }
            let outcome = match self.join_and_sync().await {
                Ok(outcome) => outcome,
                Err(e) if e.is_retriable() || e.invalidates_metadata() => {
                    tracing::debug!(group = %self.config.group_id, error = %e, "join failed, retrying");
                    self.link.forget().await;
                    JoinOutcome::Retry {
                        reset_member: false,
                        backoff: true,
                    }
                }
                Err(e) => return Err(e),
            };
            match outcome {
                JoinOutcome::Joined => break,
                JoinOutcome::Retry {
                    reset_member,
                    backoff,
                } => {
                    if reset_member {
                        self.member_id.clear();
                    }
                    if backoff {
                        tokio::time::sleep(self.client.config().backoff(attempt)).await;
                        attempt += 1;
                    }
                }
            }
        }
        self.init_positions().await?;
        self.start_heartbeat();
        self.last_commit = Instant::now();
        Ok(())
    }

    async fn join_and_sync(&mut self) -> Result<JoinOutcome> {
        let group = self.config.group_id.clone();
        let connection = self.link.connection().await?;
        let version = connection.negotiated_version::<JoinGroupRequest>()?;
        let mut request = JoinGroupRequest::default();
        request.group_id = GroupId(StrBytes::from_string(group.clone()));
        request.session_timeout_ms = millis(self.config.session_timeout);
        if version >= 1 {
            request.rebalance_timeout_ms = millis(self.config.rebalance_timeout);
        }
        request.member_id = StrBytes::from_string(self.member_id.clone());
        if version >= 5 {
            request.group_instance_id = self
                .config
                .group_instance_id
                .clone()
                .map(StrBytes::from_string);
        }
        request.protocol_type = StrBytes::from_static_str("consumer");
        let mut protocol = JoinGroupRequestProtocol::default();
        protocol.name = StrBytes::from_static_str(RANGE_ASSIGNOR);
        protocol.metadata = encode_subscription(&self.config.topics)?;
        request.protocols = vec![protocol];
        // The coordinator holds JoinGroup until every member rejoined or the rebalance timeout
        // passed, so wait that long plus the usual request timeout.
        let timeout = self.config.rebalance_timeout + self.client.config().request_timeout;
        let response = connection
            .send_with_timeout(request, version, timeout)
            .await?;
        match ResponseError::try_from_code(response.error_code) {
            None => {}
            Some(ResponseError::MemberIdRequired) => {
                // KIP-394: the coordinator assigned an id; join again with it, at once.
                self.member_id = response.member_id.to_string();
                return Ok(JoinOutcome::Retry {
                    reset_member: false,
                    backoff: false,
                });
            }
            Some(ResponseError::UnknownMemberId) => {
                return Ok(JoinOutcome::Retry {
                    reset_member: true,
                    backoff: false,
                });
            }
            Some(ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration) => {
                return Ok(JoinOutcome::Retry {
                    reset_member: false,
                    backoff: false,
                });
            }
            Some(_) => {
                return Err(Error::kafka(response.error_code, None)
                    .with_context(format!("JoinGroup for group '{group}'")));
            }
        }
        self.member_id = response.member_id.to_string();
        let generation_id = response.generation_id;
        let protocol_name = response.protocol_name.clone();
        let assignments = if response.leader.as_str() == self.member_id {
            self.assign(&response.members).await?
        } else {
            Vec::new()
        };

        let version = connection.negotiated_version::<SyncGroupRequest>()?;
        let mut sync = SyncGroupRequest::default();
        sync.group_id = GroupId(StrBytes::from_string(group.clone()));
        sync.generation_id = generation_id;
        sync.member_id = StrBytes::from_string(self.member_id.clone());
        if version >= 3 {
            sync.group_instance_id = self
                .config
                .group_instance_id
                .clone()
                .map(StrBytes::from_string);
        }
        if version >= 5 {
            sync.protocol_type = Some(StrBytes::from_static_str("consumer"));
            sync.protocol_name = protocol_name;
        }
        sync.assignments = assignments;
        let response = connection.send_with_timeout(sync, version, timeout).await?;
        match ResponseError::try_from_code(response.error_code) {
            None => {}
            Some(ResponseError::UnknownMemberId) => {
                return Ok(JoinOutcome::Retry {
                    reset_member: true,
                    backoff: false,
                });
            }
            Some(ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration) => {
                return Ok(JoinOutcome::Retry {
                    reset_member: false,
                    backoff: false,
                });
            }
            Some(_) => {
                return Err(Error::kafka(response.error_code, None)
                    .with_context(format!("SyncGroup for group '{group}'")));
            }
        }
        self.generation_id = generation_id;
        self.assignment = decode_assignment(&response.assignment)?;
        self.assignment.sort();
        tracing::info!(
            group = %group,
            member = %self.member_id,
            generation = generation_id,
            partitions = self.assignment.len(),
            "joined group"
        );
        Ok(JoinOutcome::Joined)
    }

    /// As the leader: decode every member's subscription and compute the range assignment.
    async fn assign(
        &self,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<SyncGroupRequestAssignment>> {
        let mut subscriptions = BTreeMap::new();
        for member in members {
            let topics = decode_subscription(&member.metadata)?;
            subscriptions.insert(member.member_id.to_string(), topics);
        }
        let topics: BTreeSet<&String> = subscriptions.values().flatten().collect();
        let names: Vec<&str> = topics.iter().map(|t| t.as_str()).collect();
        let metadata = self.client.refresh_metadata(Some(&names)).await?;
        let partition_counts: HashMap<String, i32> = names
            .iter()
            .filter_map(|name| {
                let topic = metadata.topic(name)?;
                (topic.error_code == 0).then(|| ((*name).to_owned(), topic.partition_count()))
            })
            .collect();
        range_assign(&subscriptions, &partition_counts)
            .into_iter()
            .map(|(member, partitions)| {
                let mut assignment = SyncGroupRequestAssignment::default();
                assignment.member_id = StrBytes::from_string(member);
                assignment.assignment = encode_assignment(&partitions)?;
                Ok(assignment)
            })
            .collect()
    }

    /// Keeps positions of partitions still assigned; others start at their committed offset or
    /// per `auto_offset_reset`.
    async fn init_positions(&mut self) -> Result<()> {
        let assigned: BTreeSet<&TopicPartition> = self.assignment.iter().collect();
        self.positions.retain(|tp, _| assigned.contains(tp));
        let new: Vec<TopicPartition> = self
            .assignment
            .iter()
            .filter(|tp| !self.positions.contains_key(*tp))
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let committed = self.link.offset_fetch(Some(&new)).await?;
        let committed: HashMap<TopicPartition, i64> = committed
            .into_iter()
            .filter_map(|c| Some((c.topic_partition, c.offset?)))
            .collect();
        for tp in new {
            let position = match committed.get(&tp) {
                Some(offset) => *offset,
                None => self.reset_offset(&tp).await?,
            };
            self.positions.insert(tp, position);
        }
        Ok(())
    }

    async fn reset_offset(&self, tp: &TopicPartition) -> Result<i64> {
        let spec = match self.config.auto_offset_reset {
            AutoOffsetReset::Earliest => OffsetSpec::Earliest,
            AutoOffsetReset::Latest => OffsetSpec::Latest,
            AutoOffsetReset::None => {
                return Err(Error::InvalidArgument(format!(
                    "no committed offset for {tp} and auto_offset_reset is None"
                )));
            }
        };
        self.client.resolve_offset(tp, spec).await
    }

    fn start_heartbeat(&mut self) {
        let link = Arc::clone(&self.link);
        let group = self.config.group_id.clone();
        let member_id = self.member_id.clone();
        let instance_id = self.config.group_instance_id.clone();
        let generation_id = self.generation_id;
        let interval = self.config.heartbeat_interval();
        let signals = Arc::clone(&self.signals);
        self.heartbeat = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let result = heartbeat(
                    &link,
                    &group,
                    generation_id,
                    &member_id,
                    instance_id.as_deref(),
                )
                .await;
                let rejoin = match result {
                    Ok(()) => None,
                    Err(e) if e.is(ResponseError::UnknownMemberId) => Some(REJOIN_AS_NEW_MEMBER),
                    Err(e)
                        if e.is(ResponseError::RebalanceInProgress)
                            || e.is(ResponseError::IllegalGeneration)
                            || e.is(ResponseError::FencedInstanceId) =>
                    {
                        Some(REJOIN)
                    }
                    Err(e) => {
                        // Connection trouble: keep trying; if it lasts past the session timeout
                        // the coordinator evicts us and says so on the next heartbeat.
                        tracing::debug!(%group, error = %e, "heartbeat failed");
                        None
                    }
                };
                if let Some(rejoin) = rejoin {
                    tracing::debug!(%group, "rebalance signalled by heartbeat");
                    signals.rejoin.store(rejoin, Ordering::Release);
                    signals.wake.notify_waiters();
                    return;
                }
            }
        }));
    }
}

async fn heartbeat(
    link: &CoordinatorLink,
    group: &str,
    generation_id: i32,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<()> {
    let client = link.client();
    let response = link
        .run(|connection| async move {
            let version = connection.negotiated_version::<HeartbeatRequest>()?;
            let mut request = HeartbeatRequest::default();
            request.group_id = GroupId(StrBytes::from_string(group.to_owned()));
            request.generation_id = generation_id;
            request.member_id = StrBytes::from_string(member_id.to_owned());
            if version >= 3 {
                request.group_instance_id =
                    instance_id.map(|i| StrBytes::from_string(i.to_owned()));
            }
            let response = connection
                .send_with_timeout(request, version, client.config().request_timeout)
                .await?;
            // Coordinator errors are retried (with rediscovery) inside `with_coordinator`.
            Error::check(response.error_code, None)?;
            Ok(response)
        })
        .await?;
    Error::check(response.error_code, None)
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(members: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        members
            .iter()
            .map(|(m, topics)| {
                (
                    (*m).to_owned(),
                    topics.iter().map(|t| (*t).to_owned()).collect(),
                )
            })
            .collect()
    }

    fn names(assigned: &[TopicPartition]) -> Vec<String> {
        assigned.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn range_assignment_matches_kafkas_documented_example() {
        // Kafka's RangeAssignor javadoc: C0 and C1 on t0 and t1 with 3 partitions each.
        let counts = HashMap::from([("t0".to_owned(), 3), ("t1".to_owned(), 3)]);
        let result = range_assign(
            &subs(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]),
            &counts,
        );
        assert_eq!(names(&result["C0"]), ["t0-0", "t0-1", "t1-0", "t1-1"]);
        assert_eq!(names(&result["C1"]), ["t0-2", "t1-2"]);
    }

    #[test]
    fn range_assignment_handles_uneven_subscriptions_and_idle_members() {
        let counts = HashMap::from([("a".to_owned(), 5), ("b".to_owned(), 1)]);
        let result = range_assign(
            &subs(&[
                ("m1", &["a"]),
                ("m2", &["a", "b"]),
                ("m3", &["a", "missing"]),
                ("m4", &["b"]),
            ]),
            &counts,
        );
        assert_eq!(names(&result["m1"]), ["a-0", "a-1"]);
        assert_eq!(names(&result["m2"]), ["a-2", "a-3", "b-0"]);
        assert_eq!(names(&result["m3"]), ["a-4"]);
        assert!(
            result["m4"].is_empty(),
            "b has one partition, m2 sorts first"
        );
        let total: usize = result.values().map(Vec::len).sum();
        assert_eq!(total, 6, "every partition assigned exactly once");
    }

    #[test]
    fn range_assignment_gives_extra_members_nothing() {
        let counts = HashMap::from([("t".to_owned(), 2)]);
        let result = range_assign(
            &subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]),
            &counts,
        );
        assert_eq!(names(&result["a"]), ["t-0"]);
        assert_eq!(names(&result["b"]), ["t-1"]);
        assert!(result["c"].is_empty());
    }
}

#[cfg(test)]
mod group_tests {
    use super::*;
    use crate::producer::ProducerConfig;
    use crate::records::ProducerRecord;
    use crate::testing::{FakeCluster, test_client};

    fn config(topics: &[&str]) -> GroupConsumerConfig {
        GroupConsumerConfig {
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            heartbeat_interval: Some(Duration::from_millis(20)),
            auto_offset_reset: AutoOffsetReset::Earliest,
            auto_commit_interval: None,
            fetch: FetchOptions {
                max_wait: Duration::from_millis(20),
                ..FetchOptions::default()
            },
            ..GroupConsumerConfig::new("g", topics.iter().map(|t| (*t).to_owned()).collect())
        }
    }

    async fn produce(client: &Client, topic: &str, partition: i32, count: usize) {
        let producer = client.producer(ProducerConfig::default()).await.unwrap();
        for i in 0..count {
            producer
                .send(
                    ProducerRecord::new(topic, format!("{partition}-{i}"))
                        .with_partition(partition),
                )
                .await
                .unwrap();
        }
        producer.close().await.unwrap();
    }

    /// Polls until `done` holds, failing after ten seconds.
    async fn poll_until(
        consumer: &mut GroupConsumer,
        received: &mut Vec<ConsumerRecord>,
        done: impl Fn(&GroupConsumer, &[ConsumerRecord]) -> bool,
    ) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !done(consumer, received) {
                received.extend(consumer.poll().await.unwrap());
            }
        })
        .await
        .expect("condition reached in time");
    }

    #[tokio::test]
    async fn a_member_consumes_commits_and_a_successor_resumes_from_the_commit() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 2));
        let client = test_client(&cluster).await;
        produce(&client, "t", 0, 3).await;
        produce(&client, "t", 1, 2).await;

        let mut first = client.group_consumer(config(&["t"])).await.unwrap();
        assert!(
            !first.member_id().is_empty(),
            "MEMBER_ID_REQUIRED was handled"
        );
        assert_eq!(first.generation_id(), 1);
        assert_eq!(
            first.assignment(),
            [TopicPartition::new("t", 0), TopicPartition::new("t", 1)]
        );
        let mut received = Vec::new();
        poll_until(&mut first, &mut received, |_, r| r.len() >= 5).await;
        assert_eq!(received.len(), 5);
        first.commit().await.unwrap();
        assert_eq!(cluster.with_state(|s| s.committed("g", "t", 0)), Some(3));
        assert_eq!(cluster.with_state(|s| s.committed("g", "t", 1)), Some(2));

        let described = client.describe_group("g").await.unwrap();
        assert_eq!(described.state, "Stable");
        assert_eq!(described.protocol, "range");
        assert_eq!(described.members.len(), 1);
        assert_eq!(
            described.members[0].assignment.as_deref(),
            Some(&[TopicPartition::new("t", 0), TopicPartition::new("t", 1)][..])
        );
        first.close().await.unwrap();
        assert!(client.describe_group("g").await.unwrap().members.is_empty());

        produce(&client, "t", 1, 1).await;
        let mut second = client.group_consumer(config(&["t"])).await.unwrap();
        assert_eq!(second.position(&TopicPartition::new("t", 0)), Some(3));
        let mut received = Vec::new();
        poll_until(&mut second, &mut received, |_, r| !r.is_empty()).await;
        let positions: Vec<(i32, i64)> = received.iter().map(|r| (r.partition, r.offset)).collect();
        assert_eq!(positions, [(1, 2)], "only the record after the commit");
        second.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_second_member_triggers_a_rebalance_that_splits_the_partitions() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 4));
        let first_client = test_client(&cluster).await;
        let second_client = test_client(&cluster).await;

        let mut first = first_client.group_consumer(config(&["t"])).await.unwrap();
        assert_eq!(first.assignment().len(), 4);

        // The second JoinGroup is held by the coordinator until the first member rejoins,
        // which it does on a poll after its heartbeat sees REBALANCE_IN_PROGRESS.
        let joining =
            tokio::spawn(async move { second_client.group_consumer(config(&["t"])).await });
        let mut ignored = Vec::new();
        poll_until(&mut first, &mut ignored, |c, _| c.generation_id() >= 2).await;
        let second = tokio::time::timeout(Duration::from_secs(10), joining)
            .await
            .expect("second member joins")
            .unwrap()
            .unwrap();
        assert_eq!(second.generation_id(), first.generation_id());
        let mut all: Vec<TopicPartition> = first
            .assignment()
            .iter()
            .chain(second.assignment())
            .cloned()
            .collect();
        all.sort();
        assert_eq!(first.assignment().len(), 2);
        assert_eq!(second.assignment().len(), 2);
        assert_eq!(
            all,
            (0..4)
                .map(|p| TopicPartition::new("t", p))
                .collect::<Vec<_>>()
        );

        // When the second member leaves, the first gets everything back.
        second.close().await.unwrap();
        poll_until(&mut first, &mut ignored, |c, _| c.assignment().len() == 4).await;
        assert_eq!(first.generation_id(), 3);
        first.close().await.unwrap();
    }

    /// Brokers handle one request per connection at a time. If both members shared the
    /// client's coordinator connection, the second member's JoinGroup (held until the first
    /// rejoins) would block the first member's heartbeat, and the rebalance would stall until
    /// the rebalance timeout.
    #[tokio::test]
    async fn members_sharing_one_client_rebalance_without_blocking_each_other() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 2));
        let client = test_client(&cluster).await;
        let mut first = client
            .group_consumer(GroupConsumerConfig {
                rebalance_timeout: Duration::from_secs(60),
                ..config(&["t"])
            })
            .await
            .unwrap();
        let shared = client.clone();
        let joining = tokio::spawn(async move {
            shared
                .group_consumer(GroupConsumerConfig {
                    rebalance_timeout: Duration::from_secs(60),
                    ..config(&["t"])
                })
                .await
        });
        let mut ignored = Vec::new();
        poll_until(&mut first, &mut ignored, |c, _| c.generation_id() >= 2).await;
        let second = tokio::time::timeout(Duration::from_secs(10), joining)
            .await
            .expect("second member joins")
            .unwrap()
            .unwrap();
        assert_eq!(first.assignment().len() + second.assignment().len(), 2);
        assert_eq!(first.assignment().len(), 1);
    }

    #[tokio::test]
    async fn auto_commit_saves_positions_before_a_rebalance() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        produce(&client, "t", 0, 4).await;
        let mut member = client
            .group_consumer(GroupConsumerConfig {
                auto_commit_interval: Some(Duration::from_secs(3600)),
                ..config(&["t"])
            })
            .await
            .unwrap();
        let mut received = Vec::new();
        poll_until(&mut member, &mut received, |_, r| r.len() >= 4).await;
        assert_eq!(
            cluster.with_state(|s| s.committed("g", "t", 0)),
            None,
            "not due yet"
        );

        let other_client = test_client(&cluster).await;
        let joining =
            tokio::spawn(async move { other_client.group_consumer(config(&["t"])).await });
        let mut ignored = Vec::new();
        poll_until(&mut member, &mut ignored, |c, _| c.generation_id() >= 2).await;
        assert_eq!(
            cluster.with_state(|s| s.committed("g", "t", 0)),
            Some(4),
            "committed while rejoining"
        );
        let other = joining.await.unwrap().unwrap();
        drop(other);
        drop(member);
    }

    #[tokio::test]
    async fn configuration_errors_are_reported_before_joining() {
        let cluster = FakeCluster::start().await;
        let client = test_client(&cluster).await;
        let err = client.group_consumer(config(&[])).await.unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }
}
