//! Consumer groups from the admin side: listing, describing, committed offsets, deleting.
//!
//! Every request about a group goes to the group's coordinator (found with FindCoordinator and
//! cached by the [`Client`]); `NOT_COORDINATOR`, `COORDINATOR_NOT_AVAILABLE` and
//! `COORDINATOR_LOAD_IN_PROGRESS` forget the cached coordinator and retry. ListGroups is the
//! exception: each broker lists only the groups it coordinates, so it asks every broker.
//!
//! This module also holds the consumer protocol's embedded formats (the subscription a member
//! sends in JoinGroup and the assignment the leader hands out in SyncGroup), which are
//! kafka-protocol messages prefixed with an `i16` version.

use std::collections::{BTreeMap, HashMap};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, DeleteGroupsRequest,
    DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::client::Client;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::metadata::TopicPartition;

/// The consumer protocol version this client writes (Kafka 3.x/4.x write 3).
const CONSUMER_PROTOCOL_VERSION: i16 = 3;

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}

/// A group as [`Client::list_groups`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type, `consumer` for consumer groups, empty for offsets-only groups.
    pub protocol_type: String,
    /// State (`Stable`, `Empty`, ...), when the broker reports it (ListGroups v4+).
    pub state: Option<String>,
    /// Group type (`classic`, `consumer`, ...), when the broker reports it (v5+).
    pub group_type: Option<String>,
}

/// A group as [`Client::describe_group`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State: `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty` or `Dead`
    /// (a group that does not exist is `Dead`).
    pub state: String,
    /// Protocol type, `consumer` for consumer groups.
    pub protocol_type: String,
    /// The chosen protocol (the assignor, e.g. `range`).
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// One member of a [`GroupDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id assigned by the coordinator.
    pub member_id: String,
    /// Static membership id, if any.
    pub group_instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host as the coordinator saw it.
    pub client_host: String,
    /// The assigned partitions, decoded when the protocol type is `consumer`.
    pub assignment: Option<Vec<TopicPartition>>,
    /// The raw assignment bytes.
    pub raw_assignment: Bytes,
    /// The raw member metadata (the subscription, for consumers).
    pub raw_metadata: Bytes,
}

/// A committed offset of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The partition.
    pub topic_partition: TopicPartition,
    /// The committed offset, `None` if nothing was committed.
    pub offset: Option<i64>,
    /// Leader epoch of the committed record, if recorded.
    pub leader_epoch: Option<i32>,
    /// The commit metadata string.
    pub metadata: Option<String>,
}

/// Errors after which a group request is retried, with the coordinator forgotten.
fn is_coordinator_error(error: &Error) -> bool {
    error.is(ResponseError::NotCoordinator)
        || error.is(ResponseError::CoordinatorNotAvailable)
        || error.is(ResponseError::CoordinatorLoadInProgress)
}

fn group_retriable(error: &Error) -> bool {
    is_coordinator_error(error)
        || matches!(
            error,
            Error::Connect { .. } | Error::ConnectionClosed { .. } | Error::NoBrokerAvailable(_)
        )
}

/// The way to one group's coordinator. A *pooled* link uses the client's shared connection to
/// the coordinator (admin requests); a *dedicated* link opens its own, which a group member
/// needs: brokers handle one request per connection at a time, so two members sharing a
/// connection would have one member's JoinGroup, held for the whole rebalance, block the
/// other's heartbeats and rejoin until the rebalance timed out.
pub(crate) struct CoordinatorLink {
    client: Client,
    group: String,
    dedicated: Option<tokio::sync::Mutex<Option<Connection>>>,
}

impl CoordinatorLink {
    pub(crate) fn pooled(client: &Client, group: &str) -> CoordinatorLink {
        CoordinatorLink {
            client: client.clone(),
            group: group.to_owned(),
            dedicated: None,
        }
    }

    pub(crate) fn dedicated(client: &Client, group: &str) -> CoordinatorLink {
        CoordinatorLink {
            client: client.clone(),
            group: group.to_owned(),
            dedicated: Some(tokio::sync::Mutex::new(None)),
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) async fn connection(&self) -> Result<Connection> {
        let Some(slot) = &self.dedicated else {
            return Ok(self.client.coordinator_connection(&self.group).await?.1);
        };
        let mut guard = slot.lock().await;
        if let Some(connection) = guard.as_ref()
            && !connection.is_closed()
        {
            return Ok(connection.clone());
        }
        let coordinator = self.client.coordinator(&self.group).await?;
        let connection =
            Connection::connect(&coordinator.addr(), self.client.connection_config()).await;
        let connection = match connection {
            Ok(connection) => connection,
            Err(e) => {
                self.client.invalidate_coordinator(&self.group);
                return Err(e);
            }
        };
        *guard = Some(connection.clone());
        Ok(connection)
    }

    /// Forgets the coordinator (and a dedicated connection to it) after a coordinator error.
    pub(crate) async fn forget(&self) {
        self.client.invalidate_coordinator(&self.group);
        if let Some(slot) = &self.dedicated {
            *slot.lock().await = None;
        }
    }

    /// Runs `op` against the coordinator, rediscovering it and retrying after coordinator
    /// errors and connection loss.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let op = &op;
        self.client
            .retry_if(group_retriable, move |_| async move {
                let result = async { op(self.connection().await?).await }.await;
                if let Err(e) = &result
                    && group_retriable(e)
                {
                    self.forget().await;
                }
                result
            })
            .await
    }

    /// The group's committed offsets: for `partitions`, or for every partition the group has
    /// offsets for when `None`. Sorted by topic and partition.
    pub(crate) async fn offset_fetch(
        &self,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<CommittedOffset>> {
        let client = &self.client;
        let group = self.group.as_str();
        let by_topic: Option<BTreeMap<&str, Vec<i32>>> = partitions.map(|ps| {
            let mut map: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in ps {
                map.entry(tp.topic.as_str()).or_default().push(tp.partition);
            }
            map
        });
        let by_topic = &by_topic;
        let retriable = |e: &Error| group_retriable(e) || e.is(ResponseError::UnstableOffsetCommit);
        let mut offsets = client
            .retry_if(retriable, |_| async {
                self.run(|connection| async move {
                    let version = connection.negotiated_version::<OffsetFetchRequest>()?;
                    let mut request = OffsetFetchRequest::default();
                    if version >= 8 {
                        let mut g = OffsetFetchRequestGroup::default();
                        g.group_id = group_id(group);
                        g.topics = by_topic.as_ref().map(|m| {
                            m.iter()
                                .map(|(topic, parts)| {
                                    let mut t = OffsetFetchRequestTopics::default();
                                    t.name = TopicName(StrBytes::from_string((*topic).to_owned()));
                                    t.partition_indexes = parts.clone();
                                    t
                                })
                                .collect()
                        });
                        request.groups = vec![g];
                    } else {
                        request.group_id = group_id(group);
                        request.topics = by_topic.as_ref().map(|m| {
                            m.iter()
                                .map(|(topic, parts)| {
                                    let mut t = OffsetFetchRequestTopic::default();
                                    t.name = TopicName(StrBytes::from_string((*topic).to_owned()));
                                    t.partition_indexes = parts.clone();
                                    t
                                })
                                .collect()
                        });
                    }
                    let response = connection
                        .send_with_timeout(request, version, client.config().request_timeout)
                        .await?;
                    let mut offsets = Vec::new();
                    let mut push = |topic: &str,
                                    partition: i32,
                                    offset: i64,
                                    epoch: i32,
                                    metadata: Option<StrBytes>,
                                    code: i16|
                     -> Result<()> {
                        Error::check(code, None)
                            .map_err(|e| e.with_context(format!("{topic}-{partition}")))?;
                        offsets.push(CommittedOffset {
                            topic_partition: TopicPartition::new(topic, partition),
                            offset: (offset >= 0).then_some(offset),
                            leader_epoch: (epoch >= 0).then_some(epoch),
                            metadata: metadata.map(|m| m.to_string()).filter(|m| !m.is_empty()),
                        });
                        Ok(())
                    };
                    if version >= 8 {
                        let g =
                            response
                                .groups
                                .into_iter()
                                .next()
                                .ok_or_else(|| Error::Protocol {
                                    addr: connection.addr().to_owned(),
                                    reason: "OffsetFetch response lists no group".into(),
                                })?;
                        Error::check(g.error_code, None)
                            .map_err(|e| e.with_context(format!("group '{group}'")))?;
                        for t in g.topics {
                            for p in t.partitions {
                                push(
                                    &t.name.0,
                                    p.partition_index,
                                    p.committed_offset,
                                    p.committed_leader_epoch,
                                    p.metadata,
                                    p.error_code,
                                )?;
                            }
                        }
                    } else {
                        Error::check(response.error_code, None)
                            .map_err(|e| e.with_context(format!("group '{group}'")))?;
                        for t in response.topics {
                            for p in t.partitions {
                                push(
                                    &t.name.0,
                                    p.partition_index,
                                    p.committed_offset,
                                    p.committed_leader_epoch,
                                    p.metadata,
                                    p.error_code,
                                )?;
                            }
                        }
                    }
                    Ok(offsets)
                })
                .await
            })
            .await?;
        offsets.sort_by(|a, b| a.topic_partition.cmp(&b.topic_partition));
        Ok(offsets)
    }

    /// Commits offsets as member `member_id` of generation `generation_id`.
    pub(crate) async fn commit_offsets(
        &self,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let client = &self.client;
        let group = self.group.as_str();
        let response = self
            .run(|connection| async move {
                let version = connection.negotiated_version::<OffsetCommitRequest>()?;
                let mut request = OffsetCommitRequest::default();
                request.group_id = group_id(group);
                request.generation_id_or_member_epoch = generation_id;
                request.member_id = StrBytes::from_string(member_id.to_owned());
                if version >= 7 {
                    request.group_instance_id =
                        group_instance_id.map(|i| StrBytes::from_string(i.to_owned()));
                }
                let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
                for (tp, offset) in offsets {
                    let mut p = OffsetCommitRequestPartition::default();
                    p.partition_index = tp.partition;
                    p.committed_offset = *offset;
                    match topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
                        Some(t) => t.partitions.push(p),
                        None => {
                            let mut t = OffsetCommitRequestTopic::default();
                            t.name = TopicName(StrBytes::from_string(tp.topic.clone()));
                            t.partitions.push(p);
                            topics.push(t);
                        }
                    }
                }
                request.topics = topics;
                let response = connection
                    .send_with_timeout(request, version, client.config().request_timeout)
                    .await?;
                // A coordinator error on any partition means the whole request went to the
                // wrong broker: retry it all.
                for t in &response.topics {
                    for p in &t.partitions {
                        let e = Error::kafka(p.error_code, None);
                        if p.error_code != 0 && is_coordinator_error(&e) {
                            return Err(e);
                        }
                    }
                }
                Ok(response)
            })
            .await?;
        let mut found: HashMap<(String, i32), i16> = HashMap::new();
        for t in response.topics {
            for p in t.partitions {
                found.insert((t.name.0.to_string(), p.partition_index), p.error_code);
            }
        }
        Ok(offsets
            .iter()
            .map(|(tp, _)| {
                let result = match found.get(&(tp.topic.clone(), tp.partition)) {
                    Some(code) => Error::check(*code, None).map_err(|e| e.with_context(tp)),
                    None => Err(Error::Protocol {
                        addr: "OffsetCommit".into(),
                        reason: format!("response has no result for {tp}"),
                    }),
                };
                (tp.clone(), result)
            })
            .collect())
    }
}

impl Client {
    /// Runs `op` against the coordinator of `group` on the client's pooled connection,
    /// rediscovering the coordinator and retrying after coordinator errors and connection loss.
    pub(crate) async fn with_coordinator<T, F, Fut>(&self, group: &str, op: F) -> Result<T>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        CoordinatorLink::pooled(self, group).run(op).await
    }

    /// Lists groups on every broker, optionally only those in `states` (e.g. `["Stable"]`,
    /// ListGroups v4+). Sorted by group id.
    pub async fn list_groups(&self, states: &[&str]) -> Result<Vec<GroupListing>> {
        let metadata = self.refresh_metadata(Some(&[])).await?;
        let brokers: Vec<i32> = metadata.brokers.keys().copied().collect();
        let requests = brokers.iter().map(|broker| {
            self.retry_if(
                |e| e.is_retriable(),
                move |_| async move {
                    let connection = self.broker_connection(*broker).await?;
                    let version = connection.negotiated_version::<ListGroupsRequest>()?;
                    let mut request = ListGroupsRequest::default();
                    if !states.is_empty() {
                        if version < 4 {
                            return Err(Error::UnsupportedVersion {
                                api: "ListGroups".into(),
                                addr: connection.addr().to_owned(),
                                detail: "filtering by state needs v4".into(),
                            });
                        }
                        request.states_filter = states
                            .iter()
                            .map(|s| StrBytes::from_string((*s).to_owned()))
                            .collect();
                    }
                    let response = connection
                        .send_with_timeout(request, version, self.config().request_timeout)
                        .await?;
                    Error::check(response.error_code, None)?;
                    Ok(response
                        .groups
                        .into_iter()
                        .map(|g| GroupListing {
                            group_id: g.group_id.0.to_string(),
                            protocol_type: g.protocol_type.to_string(),
                            state: (version >= 4).then(|| g.group_state.to_string()),
                            group_type: (version >= 5).then(|| g.group_type.to_string()),
                        })
                        .collect::<Vec<_>>())
                },
            )
        });
        let mut all = BTreeMap::new();
        for listed in futures::future::join_all(requests).await {
            for group in listed? {
                all.insert(group.group_id.clone(), group);
            }
        }
        Ok(all.into_values().collect())
    }

    /// Describes one group. A group that does not exist is reported in state `Dead`.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let described = self
            .with_coordinator(group, |connection| async move {
                let version = connection.negotiated_version::<DescribeGroupsRequest>()?;
                let mut request = DescribeGroupsRequest::default();
                request.groups = vec![group_id(group)];
                let response = connection
                    .send_with_timeout(request, version, self.config().request_timeout)
                    .await?;
                let described =
                    response
                        .groups
                        .into_iter()
                        .next()
                        .ok_or_else(|| Error::Protocol {
                            addr: connection.addr().to_owned(),
                            reason: "DescribeGroups response lists no group".into(),
                        })?;
                Error::check(described.error_code, described.error_message.as_deref())
                    .map_err(|e| e.with_context(format!("group '{group}'")))?;
                Ok(described)
            })
            .await?;
        let is_consumer = described.protocol_type.as_str() == "consumer";
        Ok(GroupDescription {
            group_id: described.group_id.0.to_string(),
            state: described.group_state.to_string(),
            protocol_type: described.protocol_type.to_string(),
            protocol: described.protocol_data.to_string(),
            members: described
                .members
                .into_iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: is_consumer
                        .then(|| decode_assignment(&m.member_assignment).ok())
                        .flatten(),
                    raw_assignment: m.member_assignment,
                    raw_metadata: m.member_metadata,
                })
                .collect(),
        })
    }

    /// Describes several groups concurrently. One result per group, in order.
    pub async fn describe_groups(
        &self,
        groups: &[&str],
    ) -> Result<Vec<(String, Result<GroupDescription>)>> {
        let described =
            futures::future::join_all(groups.iter().map(|g| self.describe_group(g))).await;
        Ok(groups
            .iter()
            .map(|g| (*g).to_owned())
            .zip(described)
            .collect())
    }

    /// The committed offsets of `group`: for `partitions`, or for every partition the group has
    /// offsets for when `None`. Sorted by topic and partition.
    pub async fn offset_fetch(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<CommittedOffset>> {
        CoordinatorLink::pooled(self, group)
            .offset_fetch(partitions)
            .await
    }

    /// Commits offsets for `group` outside any generation (generation -1, no member id), as
    /// `kafka-consumer-groups --reset-offsets` does; the group must have no active members.
    /// One result per partition, in order.
    pub async fn offset_commit(
        &self,
        group: &str,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        CoordinatorLink::pooled(self, group)
            .commit_offsets(-1, "", None, offsets)
            .await
    }

    /// Deletes groups (which must be empty). One result per group, in order.
    pub async fn delete_groups(&self, groups: &[&str]) -> Result<Vec<(String, Result<()>)>> {
        let deletions = groups.iter().map(|group| async move {
            self.with_coordinator(group, |connection| async move {
                let version = connection.negotiated_version::<DeleteGroupsRequest>()?;
                let mut request = DeleteGroupsRequest::default();
                request.groups_names = vec![group_id(group)];
                let response = connection
                    .send_with_timeout(request, version, self.config().request_timeout)
                    .await?;
                let result =
                    response
                        .results
                        .into_iter()
                        .next()
                        .ok_or_else(|| Error::Protocol {
                            addr: connection.addr().to_owned(),
                            reason: "DeleteGroups response has no result".into(),
                        })?;
                Error::check(result.error_code, None)
                    .map_err(|e| e.with_context(format!("group '{group}'")))
            })
            .await
        });
        let results = futures::future::join_all(deletions).await;
        Ok(groups
            .iter()
            .map(|g| (*g).to_owned())
            .zip(results)
            .collect())
    }

    /// Deletes committed offsets of `group` for partitions (the group must not be subscribed
    /// to their topics). One result per partition, in order.
    pub async fn offset_delete(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let response = self
            .with_coordinator(group, |connection| async move {
                let version = connection.negotiated_version::<OffsetDeleteRequest>()?;
                let mut request = OffsetDeleteRequest::default();
                request.group_id = group_id(group);
                let mut topics: Vec<OffsetDeleteRequestTopic> = Vec::new();
                for tp in partitions {
                    let mut p = OffsetDeleteRequestPartition::default();
                    p.partition_index = tp.partition;
                    match topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
                        Some(t) => t.partitions.push(p),
                        None => {
                            let mut t = OffsetDeleteRequestTopic::default();
                            t.name = TopicName(StrBytes::from_string(tp.topic.clone()));
                            t.partitions.push(p);
                            topics.push(t);
                        }
                    }
                }
                request.topics = topics;
                let response = connection
                    .send_with_timeout(request, version, self.config().request_timeout)
                    .await?;
                Error::check(response.error_code, None)
                    .map_err(|e| e.with_context(format!("group '{group}'")))?;
                Ok(response)
            })
            .await?;
        let mut found: HashMap<(String, i32), i16> = HashMap::new();
        for t in response.topics {
            for p in t.partitions {
                found.insert((t.name.0.to_string(), p.partition_index), p.error_code);
            }
        }
        Ok(partitions
            .iter()
            .map(|tp| {
                let result = match found.get(&(tp.topic.clone(), tp.partition)) {
                    Some(code) => Error::check(*code, None).map_err(|e| e.with_context(tp)),
                    None => Err(Error::Protocol {
                        addr: "OffsetDelete".into(),
                        reason: format!("response has no result for {tp}"),
                    }),
                };
                (tp.clone(), result)
            })
            .collect())
    }
}

/// Encodes a consumer subscription (JoinGroup protocol metadata) for `topics`.
pub fn encode_subscription(topics: &[String]) -> Result<Bytes> {
    let mut subscription = ConsumerProtocolSubscription::default();
    subscription.topics = topics
        .iter()
        .map(|t| StrBytes::from_string(t.clone()))
        .collect();
    encode_versioned(&subscription, "consumer subscription")
}

/// Decodes a consumer subscription; returns the subscribed topics.
pub fn decode_subscription(bytes: &Bytes) -> Result<Vec<String>> {
    let subscription: ConsumerProtocolSubscription =
        decode_versioned(bytes, "consumer subscription")?;
    Ok(subscription.topics.iter().map(|t| t.to_string()).collect())
}

/// Encodes a consumer assignment (SyncGroup assignment) of `partitions`.
pub fn encode_assignment(partitions: &[TopicPartition]) -> Result<Bytes> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic
            .entry(tp.topic.as_str())
            .or_default()
            .push(tp.partition);
    }
    let mut assignment = ConsumerProtocolAssignment::default();
    assignment.assigned_partitions = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            let mut assigned = AssignedPartitions::default();
            assigned.topic = TopicName(StrBytes::from_string(topic.to_owned()));
            assigned.partitions = partitions;
            assigned
        })
        .collect();
    encode_versioned(&assignment, "consumer assignment")
}

/// Decodes a consumer assignment; an empty buffer is an empty assignment.
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<TopicPartition>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let assignment: ConsumerProtocolAssignment = decode_versioned(bytes, "consumer assignment")?;
    Ok(assignment
        .assigned_partitions
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic.0.to_string();
            t.partitions
                .into_iter()
                .map(move |p| TopicPartition::new(topic.clone(), p))
        })
        .collect())
}

fn encode_versioned<T: Encodable>(message: &T, what: &str) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(CONSUMER_PROTOCOL_VERSION);
    message
        .encode(&mut buf, CONSUMER_PROTOCOL_VERSION)
        .map_err(|e| Error::encode(what, e))?;
    Ok(buf.freeze())
}

fn decode_versioned<T: Decodable>(bytes: &Bytes, what: &str) -> Result<T> {
    let mut buf = bytes.clone();
    let version = buf
        .try_get_i16()
        .map_err(|_| Error::decode(what, "shorter than its version prefix"))?;
    if version < 0 {
        return Err(Error::decode(what, format!("negative version {version}")));
    }
    // Newer versions only append fields, so read them as the newest version we know (what
    // the Java client does too).
    T::decode(&mut buf, version.min(CONSUMER_PROTOCOL_VERSION)).map_err(|e| Error::decode(what, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeCluster, test_client};

    #[test]
    fn consumer_protocol_formats_round_trip() {
        let topics = vec!["a".to_owned(), "b".to_owned()];
        let encoded = encode_subscription(&topics).unwrap();
        assert_eq!(&encoded[..2], &CONSUMER_PROTOCOL_VERSION.to_be_bytes());
        assert_eq!(decode_subscription(&encoded).unwrap(), topics);

        let assigned = vec![
            TopicPartition::new("a", 0),
            TopicPartition::new("a", 2),
            TopicPartition::new("b", 1),
        ];
        let encoded = encode_assignment(&assigned).unwrap();
        assert_eq!(decode_assignment(&encoded).unwrap(), assigned);
        assert!(decode_assignment(&Bytes::new()).unwrap().is_empty());
        assert!(decode_assignment(&Bytes::from_static(&[0])).is_err());
    }

    #[test]
    fn older_consumer_protocol_versions_decode() {
        // Version 0 of the subscription: topics and user data only.
        let mut subscription = ConsumerProtocolSubscription::default();
        subscription.topics = vec![StrBytes::from_static_str("legacy")];
        let mut buf = BytesMut::new();
        buf.put_i16(0);
        subscription.encode(&mut buf, 0).unwrap();
        assert_eq!(decode_subscription(&buf.freeze()).unwrap(), ["legacy"]);
    }

    #[tokio::test]
    async fn standalone_commits_are_fetched_back_per_partition_or_all() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 3));
        let client = test_client(&cluster).await;
        let results = client
            .offset_commit(
                "g",
                &[
                    (TopicPartition::new("t", 0), 5),
                    (TopicPartition::new("t", 2), 7),
                ],
            )
            .await
            .unwrap();
        assert!(results.iter().all(|(_, r)| r.is_ok()));
        assert_eq!(cluster.with_state(|s| s.committed("g", "t", 2)), Some(7));

        let some = client
            .offset_fetch(
                "g",
                Some(&[TopicPartition::new("t", 0), TopicPartition::new("t", 1)]),
            )
            .await
            .unwrap();
        let got: Vec<(i32, Option<i64>)> = some
            .iter()
            .map(|c| (c.topic_partition.partition, c.offset))
            .collect();
        assert_eq!(got, [(0, Some(5)), (1, None)]);

        let all = client.offset_fetch("g", None).await.unwrap();
        let got: Vec<(i32, Option<i64>)> = all
            .iter()
            .map(|c| (c.topic_partition.partition, c.offset))
            .collect();
        assert_eq!(got, [(0, Some(5)), (2, Some(7))]);
    }

    #[tokio::test]
    async fn offsets_and_empty_groups_are_deleted() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 2));
        let client = test_client(&cluster).await;
        client
            .offset_commit(
                "g",
                &[
                    (TopicPartition::new("t", 0), 3),
                    (TopicPartition::new("t", 1), 4),
                ],
            )
            .await
            .unwrap();
        let deleted = client
            .offset_delete("g", &[TopicPartition::new("t", 0)])
            .await
            .unwrap();
        assert!(deleted[0].1.is_ok());
        let left: Vec<i32> = client
            .offset_fetch("g", None)
            .await
            .unwrap()
            .iter()
            .map(|c| c.topic_partition.partition)
            .collect();
        assert_eq!(left, [1]);

        let results = client.delete_groups(&["g", "unknown"]).await.unwrap();
        assert!(results[0].1.is_ok());
        let err = results[1].1.as_ref().unwrap_err();
        assert!(err.is(ResponseError::GroupIdNotFound), "{err}");
        assert_eq!(err.to_string(), "GROUP_ID_NOT_FOUND: group 'unknown'");
        assert!(client.list_groups(&[]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_missing_group_is_described_as_dead_and_listing_finds_groups() {
        let cluster = FakeCluster::start().await;
        let client = test_client(&cluster).await;
        let described = client.describe_group("nobody").await.unwrap();
        assert_eq!(described.state, "Dead");
        assert!(described.members.is_empty());
        assert!(client.list_groups(&[]).await.unwrap().is_empty());
        client
            .offset_commit("offsets-only", &[(TopicPartition::new("t", 0), 1)])
            .await
            .unwrap();
        let listed = client.list_groups(&[]).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].group_id, "offsets-only");
        assert_eq!(listed[0].state.as_deref(), Some("Empty"));
    }
}
