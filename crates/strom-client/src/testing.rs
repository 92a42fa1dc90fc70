//! In-process fake brokers for the unit tests.
//!
//! [`FakeBroker`] listens on 127.0.0.1:0 and hands every accepted connection to a test script
//! that reads requests (decoded with kafka-protocol) and writes whatever answers the test wants:
//! out of order, in an old format, never, or by closing the socket. [`FakeCluster`] is a small
//! stateful single-node broker built on it, implementing the APIs this client uses closely
//! enough to run the producer, consumers, admin and group code end to end: it keeps partition
//! logs in memory (assigning offsets by rewriting base offsets), long-polls fetches, and runs a
//! simplified classic group coordinator (join, sync, heartbeat, leave, offsets).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, decode_request_header_from_buffer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use crate::records::parse_batches;

/// A listener whose connections are served by a test script.
pub(crate) struct FakeBroker {
    pub addr: String,
    accept: JoinHandle<()>,
    /// Panic messages of connection scripts (failed assertions inside the fake broker).
    failures: Arc<Mutex<Vec<String>>>,
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection task.
        self.accept.abort();
        let failures = std::mem::take(&mut *self.failures.lock().expect("failures"));
        if !failures.is_empty() && !std::thread::panicking() {
            panic!("fake broker script failed: {failures:?}");
        }
    }
}

impl FakeBroker {
    /// Starts listening; each connection runs `serve` on its own task.
    pub async fn start<F, Fut>(serve: F) -> FakeBroker
    where
        F: Fn(FakeConnection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr").to_string();
        let serve = Arc::new(serve);
        let failures = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&failures);
        let accept = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let serve = Arc::clone(&serve);
                let recorded = Arc::clone(&recorded);
                connections.spawn(async move {
                    let script = AssertUnwindSafe(serve(FakeConnection { stream }));
                    if let Err(panic) = script.catch_unwind().await {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_else(|| "panic".to_owned());
                        recorded.lock().expect("failures").push(message);
                    }
                });
            }
        });
        FakeBroker {
            addr,
            accept,
            failures,
        }
    }
}

/// A request as the fake broker received it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub body: Bytes,
}

impl Received {
    pub fn decode<R: Decodable>(&self) -> R {
        R::decode(&mut self.body.clone(), self.version).expect("request decodes")
    }
}

/// One accepted connection.
pub(crate) struct FakeConnection {
    stream: TcpStream,
}

impl FakeConnection {
    /// The next request, or `None` once the client closed the connection.
    pub async fn read(&mut self) -> Option<Received> {
        let length = self.stream.read_i32().await.ok()?;
        let mut frame = vec![0u8; usize::try_from(length).ok()?];
        self.stream.read_exact(&mut frame).await.ok()?;
        let mut body = Bytes::from(frame);
        let header = decode_request_header_from_buffer(&mut body).ok()?;
        Some(Received {
            api_key: ApiKey::try_from(header.request_api_key).ok()?,
            version: header.request_api_version,
            correlation_id: header.correlation_id,
            client_id: header.client_id.map(|c| c.to_string()),
            body,
        })
    }

    /// Answers `to` in its own version.
    pub async fn respond<T: Encodable>(&mut self, to: &Received, response: &T) {
        self.respond_as(to, to.version, response).await;
    }

    /// Answers `to`, encoding the response body as `version`.
    pub async fn respond_as<T: Encodable>(&mut self, to: &Received, version: i16, response: &T) {
        let mut header = ResponseHeader::default();
        header.correlation_id = to.correlation_id;
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        header
            .encode(&mut frame, to.api_key.response_header_version(version))
            .expect("header encodes");
        response
            .encode(&mut frame, version)
            .expect("response encodes");
        let length = i32::try_from(frame.len() - 4).expect("frame fits");
        frame[..4].copy_from_slice(&length.to_be_bytes());
        self.write_raw(&frame).await;
    }

    pub async fn write_raw(&mut self, bytes: &[u8]) {
        // The client may already have gone; a test asserting on it will notice.
        let _ = self.stream.write_all(bytes).await;
    }

    /// Reads the ApiVersions request and answers it with `ranges`.
    pub async fn handshake(&mut self, ranges: &[(ApiKey, i16, i16)]) {
        let request = self.read().await.expect("ApiVersions request");
        assert_eq!(request.api_key, ApiKey::ApiVersions);
        self.respond(&request, &api_versions_response(ranges)).await;
    }

    /// Reads the ApiVersions request and answers with every API at kafka-protocol's range.
    pub async fn handshake_all(&mut self) {
        self.handshake(&all_versions()).await;
    }
}

/// Every API key at the full range kafka-protocol implements.
pub(crate) fn all_versions() -> Vec<(ApiKey, i16, i16)> {
    ApiKey::iter()
        .map(|k| {
            let range = k.valid_versions();
            (k, range.min, range.max)
        })
        .collect()
}

pub(crate) fn api_versions_response(ranges: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.api_keys = ranges
        .iter()
        .map(|(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *key as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect();
    response
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

// ---------------------------------------------------------------------------------------------
// FakeCluster
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Log {
    /// (base offset, next offset, batch bytes).
    batches: Vec<(i64, i64, Bytes)>,
    log_end: i64,
    log_start: i64,
}

struct Topic {
    id: Uuid,
    partitions: Vec<Log>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum GroupState {
    #[default]
    Empty,
    Preparing,
    Completing,
    Stable,
}

impl GroupState {
    fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::Preparing => "PreparingRebalance",
            GroupState::Completing => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

struct Member {
    metadata: Bytes,
    joined: bool,
    client_id: String,
}

#[derive(Default)]
struct Group {
    generation: i32,
    state: GroupState,
    members: BTreeMap<String, Member>,
    leader: Option<String>,
    assignments: HashMap<String, Bytes>,
    offsets: BTreeMap<(String, i32), i64>,
}

impl Group {
    /// Completes the join phase once every member rejoined.
    fn try_complete_join(&mut self) -> bool {
        if self.state != GroupState::Preparing
            || self.members.is_empty()
            || !self.members.values().all(|m| m.joined)
        {
            return false;
        }
        self.generation += 1;
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        for member in self.members.values_mut() {
            member.joined = false;
        }
        self.assignments.clear();
        self.state = GroupState::Completing;
        true
    }

    fn start_rebalance(&mut self) {
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.leader = None;
        } else {
            self.state = GroupState::Preparing;
        }
    }
}

/// What a test can look at or change in a [`FakeCluster`].
pub(crate) struct ClusterState {
    /// (node id, host, port) of every fake broker.
    pub brokers: Vec<(i32, String, i32)>,
    /// Leader of (topic, partition); broker 1 when not listed.
    pub leaders: HashMap<(String, i32), i32>,
    pub metadata_requests: usize,
    topics: BTreeMap<String, Topic>,
    pub auto_create: bool,
    /// Error codes to answer the next Produce requests with (one per request).
    pub produce_errors: VecDeque<i16>,
    /// (topic, partition, producer id, producer epoch, base sequence, record count) per batch.
    pub produced: Vec<(String, i32, i64, i16, i32, i32)>,
    pub produce_requests: usize,
    /// Cut every fetch response's records of a partition at this many bytes.
    pub fetch_truncate: Option<usize>,
    /// Versions advertised; defaults to everything.
    pub versions: Vec<(ApiKey, i16, i16)>,
    groups: BTreeMap<String, Group>,
    next_member: u32,
}

impl ClusterState {
    pub fn create_topic(&mut self, name: &str, partitions: usize) {
        self.topics.insert(
            name.to_owned(),
            Topic {
                id: Uuid::new_v4(),
                partitions: (0..partitions).map(|_| Log::default()).collect(),
            },
        );
    }

    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.groups
            .get(group)?
            .offsets
            .get(&(topic.to_owned(), partition))
            .copied()
    }

    fn leader(&self, topic: &str, partition: i32) -> i32 {
        self.leaders
            .get(&(topic.to_owned(), partition))
            .copied()
            .unwrap_or(1)
    }

    fn host_port(&self, id: i32) -> (String, i32) {
        self.brokers
            .iter()
            .find(|b| b.0 == id)
            .map(|b| (b.1.clone(), b.2))
            .expect("known broker")
    }

    fn topic_name_by_id(&self, id: Uuid) -> Option<String> {
        self.topics
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(n, _)| n.clone())
    }
}

pub(crate) struct FakeCluster {
    pub brokers: Vec<FakeBroker>,
    pub state: Arc<Mutex<ClusterState>>,
    data: Arc<Notify>,
    groups_changed: Arc<watch::Sender<u64>>,
}

struct Ctx {
    state: Arc<Mutex<ClusterState>>,
    data: Arc<Notify>,
    groups_changed: Arc<watch::Sender<u64>>,
}

impl FakeCluster {
    pub async fn start() -> FakeCluster {
        FakeCluster::start_with_versions(all_versions()).await
    }

    pub async fn start_with_versions(versions: Vec<(ApiKey, i16, i16)>) -> FakeCluster {
        FakeCluster::start_cluster(versions, 1).await
    }

    /// `broker_count` brokers (node ids 1..) sharing one state.
    pub async fn start_cluster(
        versions: Vec<(ApiKey, i16, i16)>,
        broker_count: i32,
    ) -> FakeCluster {
        // The state needs the addresses, which exist only once the listeners are bound: start
        // without brokers and fill them in.
        let state = Arc::new(Mutex::new(ClusterState {
            brokers: Vec::new(),
            leaders: HashMap::new(),
            metadata_requests: 0,
            topics: BTreeMap::new(),
            auto_create: false,
            produce_errors: VecDeque::new(),
            produced: Vec::new(),
            produce_requests: 0,
            fetch_truncate: None,
            versions,
            groups: BTreeMap::new(),
            next_member: 0,
        }));
        let data = Arc::new(Notify::new());
        let groups_changed = Arc::new(watch::channel(0u64).0);
        let ctx = Arc::new(Ctx {
            state: Arc::clone(&state),
            data: Arc::clone(&data),
            groups_changed: Arc::clone(&groups_changed),
        });
        let mut brokers = Vec::new();
        for node_id in 1..=broker_count {
            let ctx = Arc::clone(&ctx);
            let broker = FakeBroker::start(move |connection| {
                let ctx = Arc::clone(&ctx);
                async move { serve(ctx, node_id, connection).await }
            })
            .await;
            let (host, port) = broker.addr.rsplit_once(':').expect("host:port");
            let port: i32 = port.parse().expect("port");
            state
                .lock()
                .expect("state")
                .brokers
                .push((node_id, host.to_owned(), port));
            brokers.push(broker);
        }
        FakeCluster {
            brokers,
            state,
            data,
            groups_changed,
        }
    }

    pub fn addr(&self) -> String {
        self.brokers[0].addr.clone()
    }

    pub fn with_state<T>(&self, f: impl FnOnce(&mut ClusterState) -> T) -> T {
        let result = f(&mut self.state.lock().expect("state"));
        // Whatever changed, let waiters re-check.
        self.data.notify_waiters();
        self.groups_changed.send_modify(|v| *v += 1);
        result
    }
}

async fn serve(ctx: Arc<Ctx>, node_id: i32, mut connection: FakeConnection) {
    while let Some(request) = connection.read().await {
        match request.api_key {
            ApiKey::ApiVersions => {
                let versions = ctx.state.lock().expect("state").versions.clone();
                connection
                    .respond(&request, &api_versions_response(&versions))
                    .await;
            }
            ApiKey::Metadata => {
                let response = metadata(&ctx, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::CreateTopics => {
                let response = create_topics(&ctx, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::DeleteTopics => {
                let response = delete_topics(&ctx, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::CreatePartitions => {
                let response = create_partitions(&ctx, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::DeleteRecords => {
                let response = delete_records(&ctx, node_id, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::DeleteGroups => {
                let response = delete_groups(&ctx, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::OffsetDelete => {
                let response = offset_delete(&ctx, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::DescribeCluster => {
                let response = describe_cluster(&ctx);
                connection.respond(&request, &response).await;
            }
            ApiKey::Produce => {
                if let Some(response) = produce(&ctx, node_id, &request) {
                    connection.respond(&request, &response).await;
                }
            }
            ApiKey::Fetch => {
                let response = fetch(&ctx, node_id, &request).await;
                connection.respond(&request, &response).await;
            }
            ApiKey::ListOffsets => {
                let response = list_offsets(&ctx, node_id, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::InitProducerId => {
                let mut response = InitProducerIdResponse::default();
                response.producer_id = ProducerId(1000);
                response.producer_epoch = 0;
                connection.respond(&request, &response).await;
            }
            ApiKey::FindCoordinator => {
                let response = find_coordinator(&ctx, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::JoinGroup => {
                let response = join_group(&ctx, &request).await;
                connection.respond(&request, &response).await;
            }
            ApiKey::SyncGroup => {
                let response = sync_group(&ctx, &request).await;
                connection.respond(&request, &response).await;
            }
            ApiKey::Heartbeat => {
                let response = heartbeat(&ctx, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::LeaveGroup => {
                let response = leave_group(&ctx, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::OffsetCommit => {
                let response = offset_commit(&ctx, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::OffsetFetch => {
                let response = offset_fetch(&ctx, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::DescribeGroups => {
                let response = describe_groups(&ctx, &request);
                connection.respond(&request, &response).await;
            }
            ApiKey::ListGroups => {
                let response = list_groups(&ctx);
                connection.respond(&request, &response).await;
            }
            other => panic!("the fake cluster does not implement {other:?}"),
        }
    }
}

fn describe_cluster(ctx: &Ctx) -> DescribeClusterResponse {
    let state = ctx.state.lock().expect("state");
    let mut response = DescribeClusterResponse::default();
    response.cluster_id = str_bytes("fake-cluster");
    response.controller_id = BrokerId(1);
    response.brokers = state
        .brokers
        .iter()
        .map(|(id, host, port)| {
            let mut broker = DescribeClusterBroker::default();
            broker.broker_id = BrokerId(*id);
            broker.host = str_bytes(host);
            broker.port = *port;
            broker
        })
        .collect();
    response
}

fn delete_records(ctx: &Ctx, node_id: i32, request: &Received) -> DeleteRecordsResponse {
    use kafka_protocol::messages::delete_records_response::{
        DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
    };
    let body: DeleteRecordsRequest = request.decode();
    let mut state = ctx.state.lock().expect("state");
    let mut response = DeleteRecordsResponse::default();
    for topic in body.topics {
        let name = topic.name.0.to_string();
        let mut t = DeleteRecordsTopicResult::default();
        t.name = topic.name.clone();
        for partition in topic.partitions {
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = partition.partition_index;
            let leader = state.leader(&name, partition.partition_index);
            match state
                .topics
                .get_mut(&name)
                .and_then(|t| t.partitions.get_mut(partition.partition_index as usize))
            {
                None => r.error_code = 3,
                Some(_) if leader != node_id => r.error_code = 6,
                Some(log) => {
                    let offset = if partition.offset == -1 {
                        log.log_end
                    } else {
                        partition.offset
                    };
                    if offset > log.log_end {
                        r.error_code = 1;
                    } else {
                        log.log_start = log.log_start.max(offset);
                        r.low_watermark = log.log_start;
                    }
                }
            }
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}

fn delete_groups(ctx: &Ctx, request: &Received) -> DeleteGroupsResponse {
    use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
    let body: DeleteGroupsRequest = request.decode();
    let mut state = ctx.state.lock().expect("state");
    let mut response = DeleteGroupsResponse::default();
    for group_id in body.groups_names {
        let mut result = DeletableGroupResult::default();
        result.group_id = group_id.clone();
        result.error_code = match state.groups.get(group_id.0.as_str()) {
            None => 69,
            Some(g) if !g.members.is_empty() => 68,
            Some(_) => {
                state.groups.remove(group_id.0.as_str());
                0
            }
        };
        response.results.push(result);
    }
    response
}

fn offset_delete(ctx: &Ctx, request: &Received) -> OffsetDeleteResponse {
    use kafka_protocol::messages::offset_delete_response::{
        OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
    };
    let body: OffsetDeleteRequest = request.decode();
    let mut state = ctx.state.lock().expect("state");
    let mut response = OffsetDeleteResponse::default();
    let Some(group) = state.groups.get_mut(body.group_id.0.as_str()) else {
        response.error_code = 69;
        return response;
    };
    for topic in body.topics {
        let mut t = OffsetDeleteResponseTopic::default();
        t.name = topic.name.clone();
        for partition in topic.partitions {
            group
                .offsets
                .remove(&(topic.name.0.to_string(), partition.partition_index));
            let mut r = OffsetDeleteResponsePartition::default();
            r.partition_index = partition.partition_index;
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}

fn delete_topics(ctx: &Ctx, request: &Received) -> DeleteTopicsResponse {
    let body: DeleteTopicsRequest = request.decode();
    let mut state = ctx.state.lock().expect("state");
    let names: Vec<String> = if request.version >= 6 {
        body.topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect()
    } else {
        body.topic_names.iter().map(|n| n.0.to_string()).collect()
    };
    let mut response = DeleteTopicsResponse::default();
    for name in names {
        let mut result =
            kafka_protocol::messages::delete_topics_response::DeletableTopicResult::default();
        result.name = Some(TopicName(str_bytes(&name)));
        if state.topics.remove(&name).is_none() {
            result.error_code = 3;
        }
        response.responses.push(result);
    }
    response
}

fn create_partitions(ctx: &Ctx, request: &Received) -> CreatePartitionsResponse {
    let body: CreatePartitionsRequest = request.decode();
    let mut state = ctx.state.lock().expect("state");
    let mut response = CreatePartitionsResponse::default();
    for topic in body.topics {
        let mut result =
            kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        match state.topics.get_mut(topic.name.0.as_str()) {
            None => result.error_code = 3,
            Some(t) if (topic.count as usize) <= t.partitions.len() => {
                result.error_code = 37;
                result.error_message = Some(str_bytes(&format!(
                    "Topic currently has {} partitions, which is higher than the requested {}.",
                    t.partitions.len(),
                    topic.count
                )));
            }
            Some(t) if !body.validate_only => {
                t.partitions.resize_with(topic.count as usize, Log::default);
            }
            Some(_) => {}
        }
        response.results.push(result);
    }
    response
}

fn list_groups(ctx: &Ctx) -> ListGroupsResponse {
    let state = ctx.state.lock().expect("state");
    let mut response = ListGroupsResponse::default();
    response.groups = state
        .groups
        .iter()
        .map(|(id, g)| {
            let mut listed = ListedGroup::default();
            listed.group_id = GroupId(str_bytes(id));
            listed.protocol_type = str_bytes("consumer");
            listed.group_state = str_bytes(g.state.name());
            listed.group_type = str_bytes("classic");
            listed
        })
        .collect();
    response
}

fn metadata(ctx: &Ctx, request: &Received) -> MetadataResponse {
    let body: MetadataRequest = request.decode();
    let mut state = ctx.state.lock().expect("state");
    state.metadata_requests += 1;
    let mut response = MetadataResponse::default();
    response.brokers = state
        .brokers
        .iter()
        .map(|(id, host, port)| {
            let mut broker = MetadataResponseBroker::default();
            broker.node_id = BrokerId(*id);
            broker.host = str_bytes(host);
            broker.port = *port;
            broker
        })
        .collect();
    let all_brokers: Vec<BrokerId> = state.brokers.iter().map(|b| BrokerId(b.0)).collect();
    response.cluster_id = Some(str_bytes("fake-cluster"));
    response.controller_id = BrokerId(1);
    let names: Vec<String> = match &body.topics {
        None => state.topics.keys().cloned().collect(),
        Some(topics) => topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect(),
    };
    for name in names {
        if !state.topics.contains_key(&name) && state.auto_create && body.allow_auto_topic_creation
        {
            state.create_topic(&name, 1);
        }
        let mut topic = MetadataResponseTopic::default();
        topic.name = Some(TopicName(str_bytes(&name)));
        match state.topics.get(&name) {
            None => topic.error_code = 3,
            Some(t) => {
                topic.topic_id = t.id;
                topic.partitions = (0..t.partitions.len())
                    .map(|i| {
                        let mut p = MetadataResponsePartition::default();
                        p.partition_index = i as i32;
                        p.leader_id = BrokerId(state.leader(&name, i as i32));
                        p.leader_epoch = 0;
                        p.replica_nodes = all_brokers.clone();
                        p.isr_nodes = all_brokers.clone();
                        p
                    })
                    .collect();
            }
        }
        response.topics.push(topic);
    }
    response
}

fn create_topics(ctx: &Ctx, request: &Received) -> CreateTopicsResponse {
    let body: CreateTopicsRequest = request.decode();
    let mut state = ctx.state.lock().expect("state");
    let mut response = CreateTopicsResponse::default();
    for topic in body.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatableTopicResult::default();
        result.name = topic.name.clone();
        if state.topics.contains_key(&name) {
            result.error_code = 36;
            result.error_message = Some(str_bytes(&format!("Topic '{name}' already exists.")));
        } else if topic.num_partitions == 0 || topic.num_partitions < -1 {
            result.error_code = 37;
        } else if !body.validate_only {
            let partitions = if topic.num_partitions == -1 {
                1
            } else {
                topic.num_partitions
            };
            state.create_topic(&name, partitions as usize);
        }
        response.topics.push(result);
    }
    response
}

fn produce(ctx: &Ctx, node_id: i32, request: &Received) -> Option<ProduceResponse> {
    let body: ProduceRequest = request.decode();
    let mut state = ctx.state.lock().expect("state");
    state.produce_requests += 1;
    let injected = state.produce_errors.pop_front();
    let mut response = ProduceResponse::default();
    for topic in body.topic_data {
        let name = if request.version >= 13 {
            state.topic_name_by_id(topic.topic_id).unwrap_or_default()
        } else {
            topic.name.0.to_string()
        };
        let mut topic_response = TopicProduceResponse::default();
        topic_response.name = topic.name.clone();
        topic_response.topic_id = topic.topic_id;
        for partition in topic.partition_data {
            let mut p = PartitionProduceResponse::default();
            p.index = partition.index;
            p.log_append_time_ms = -1;
            let exists = state
                .topics
                .get(&name)
                .is_some_and(|t| (partition.index as usize) < t.partitions.len());
            if let Some(code) = injected {
                p.error_code = code;
            } else if exists && state.leader(&name, partition.index) != node_id {
                p.error_code = 6;
            } else if !exists {
                p.error_code = 3;
            } else {
                let records = partition.records.unwrap_or_default();
                let parsed = parse_batches(&records).expect("valid batches");
                let mut base_offset = -1;
                for batch in parsed.batches {
                    state.produced.push((
                        name.clone(),
                        partition.index,
                        batch.producer_id,
                        batch.producer_epoch,
                        batch.base_sequence,
                        batch.record_count,
                    ));
                    let log = &mut state.topics.get_mut(&name).expect("topic").partitions
                        [partition.index as usize];
                    let base = log.log_end;
                    let mut raw = BytesMut::from(&batch.raw[..]);
                    raw[..8].copy_from_slice(&base.to_be_bytes());
                    let next = base + i64::from(batch.last_offset_delta) + 1;
                    log.batches.push((base, next, raw.freeze()));
                    log.log_end = next;
                    if base_offset < 0 {
                        base_offset = base;
                    }
                }
                p.base_offset = base_offset;
            }
            topic_response.partition_responses.push(p);
        }
        response.responses.push(topic_response);
    }
    drop(state);
    ctx.data.notify_waiters();
    (body.acks != 0).then_some(response)
}

async fn fetch(ctx: &Ctx, node_id: i32, request: &Received) -> FetchResponse {
    let body: FetchRequest = request.decode();
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(body.max_wait_ms.max(0) as u64);
    loop {
        let data_arrived = ctx.data.notified();
        tokio::pin!(data_arrived);
        data_arrived.as_mut().enable();
        let (response, bytes) = fetch_once(ctx, node_id, request, &body);
        if bytes > 0 || tokio::time::Instant::now() >= deadline {
            return response;
        }
        if tokio::time::timeout_at(deadline, data_arrived)
            .await
            .is_err()
        {
            return fetch_once(ctx, node_id, request, &body).0;
        }
    }
}

fn fetch_once(
    ctx: &Ctx,
    node_id: i32,
    request: &Received,
    body: &FetchRequest,
) -> (FetchResponse, usize) {
    let state = ctx.state.lock().expect("state");
    let mut response = FetchResponse::default();
    let mut total = 0;
    for topic in &body.topics {
        let name = if request.version >= 13 {
            state.topic_name_by_id(topic.topic_id).unwrap_or_default()
        } else {
            topic.topic.0.to_string()
        };
        let mut topic_response = FetchableTopicResponse::default();
        topic_response.topic = topic.topic.clone();
        topic_response.topic_id = topic.topic_id;
        for partition in &topic.partitions {
            let mut p = PartitionData::default();
            p.partition_index = partition.partition;
            match state
                .topics
                .get(&name)
                .and_then(|t| t.partitions.get(partition.partition as usize))
            {
                None => p.error_code = if request.version >= 13 { 100 } else { 3 },
                Some(_) if state.leader(&name, partition.partition) != node_id => {
                    p.error_code = 6;
                }
                Some(log)
                    if partition.fetch_offset < log.log_start
                        || partition.fetch_offset > log.log_end =>
                {
                    p.error_code = 1;
                    p.high_watermark = log.log_end;
                }
                Some(log) => {
                    let mut records = BytesMut::new();
                    for (_, next, batch) in &log.batches {
                        if *next <= partition.fetch_offset {
                            continue;
                        }
                        if !records.is_empty()
                            && records.len() + batch.len() > partition.partition_max_bytes as usize
                        {
                            break;
                        }
                        records.extend_from_slice(batch);
                    }
                    if let Some(cut) = state.fetch_truncate {
                        records.truncate(cut);
                    }
                    total += records.len();
                    p.high_watermark = log.log_end;
                    p.last_stable_offset = log.log_end;
                    p.log_start_offset = log.log_start;
                    p.records = Some(records.freeze());
                }
            }
            topic_response.partitions.push(p);
        }
        response.responses.push(topic_response);
    }
    (response, total)
}

fn list_offsets(ctx: &Ctx, node_id: i32, request: &Received) -> ListOffsetsResponse {
    let body: ListOffsetsRequest = request.decode();
    assert_eq!(
        body.replica_id,
        BrokerId(-1),
        "consumers list offsets as replica -1"
    );
    let state = ctx.state.lock().expect("state");
    let mut response = ListOffsetsResponse::default();
    for topic in body.topics {
        let name = topic.name.0.to_string();
        let mut topic_response = ListOffsetsTopicResponse::default();
        topic_response.name = topic.name.clone();
        for partition in topic.partitions {
            let mut p = ListOffsetsPartitionResponse::default();
            p.partition_index = partition.partition_index;
            p.timestamp = -1;
            p.offset = -1;
            match state
                .topics
                .get(&name)
                .and_then(|t| t.partitions.get(partition.partition_index as usize))
            {
                None => p.error_code = 3,
                Some(_) if state.leader(&name, partition.partition_index) != node_id => {
                    p.error_code = 6;
                }
                Some(log) => match partition.timestamp {
                    -2 => p.offset = log.log_start,
                    -1 => p.offset = log.log_end,
                    ts if ts >= 0 => {
                        'search: for (_, _, raw) in &log.batches {
                            for batch in parse_batches(raw).expect("stored batches").batches {
                                for record in batch.records().expect("stored records") {
                                    if record.timestamp >= ts {
                                        p.offset = record.offset;
                                        p.timestamp = record.timestamp;
                                        break 'search;
                                    }
                                }
                            }
                        }
                    }
                    _ => p.error_code = 35,
                },
            }
            topic_response.partitions.push(p);
        }
        response.topics.push(topic_response);
    }
    response
}

fn find_coordinator(ctx: &Ctx, request: &Received) -> FindCoordinatorResponse {
    let body: FindCoordinatorRequest = request.decode();
    let state = ctx.state.lock().expect("state");
    let mut response = FindCoordinatorResponse::default();
    if request.version >= 4 {
        response.coordinators = body
            .coordinator_keys
            .iter()
            .map(|key| {
                let mut c = Coordinator::default();
                c.key = key.clone();
                let (host, port) = state.host_port(1);
                c.node_id = BrokerId(1);
                c.host = str_bytes(&host);
                c.port = port;
                c
            })
            .collect();
    } else {
        let (host, port) = state.host_port(1);
        response.node_id = BrokerId(1);
        response.host = str_bytes(&host);
        response.port = port;
    }
    response
}

async fn join_group(ctx: &Ctx, request: &Received) -> JoinGroupResponse {
    let body: JoinGroupRequest = request.decode();
    let group_id = body.group_id.0.to_string();
    let mut response = JoinGroupResponse::default();
    let (member_id, generation_before) = {
        let mut state = ctx.state.lock().expect("state");
        if body.member_id.is_empty() && request.version >= 4 {
            state.next_member += 1;
            let id = format!(
                "{}-{}",
                request.client_id.clone().unwrap_or_default(),
                state.next_member
            );
            response.error_code = 79;
            response.member_id = str_bytes(&id);
            return response;
        }
        let group = state.groups.entry(group_id.clone()).or_default();
        let member_id = body.member_id.to_string();
        let member = group.members.entry(member_id.clone()).or_insert(Member {
            metadata: Bytes::new(),
            joined: false,
            client_id: request.client_id.clone().unwrap_or_default(),
        });
        member.metadata = body
            .protocols
            .first()
            .map(|p| p.metadata.clone())
            .unwrap_or_default();
        member.joined = true;
        let generation_before = group.generation;
        if group.state != GroupState::Preparing {
            group.state = GroupState::Preparing;
        }
        group.try_complete_join();
        (member_id, generation_before)
    };
    ctx.groups_changed.send_modify(|v| *v += 1);
    let rebalance_timeout = Duration::from_millis(body.rebalance_timeout_ms.max(0) as u64);
    let mut changes = ctx.groups_changed.subscribe();
    let deadline = tokio::time::Instant::now() + rebalance_timeout;
    loop {
        {
            let mut state = ctx.state.lock().expect("state");
            let group = state.groups.get_mut(&group_id).expect("group");
            if group.generation > generation_before {
                if !group.members.contains_key(&member_id) {
                    response.error_code = 25;
                    return response;
                }
                response.generation_id = group.generation;
                response.protocol_type = Some(str_bytes("consumer"));
                response.protocol_name = Some(str_bytes("range"));
                response.leader = str_bytes(group.leader.as_deref().unwrap_or_default());
                response.member_id = str_bytes(&member_id);
                if group.leader.as_deref() == Some(member_id.as_str()) {
                    response.members = group
                        .members
                        .iter()
                        .map(|(id, m)| {
                            let mut member = JoinGroupResponseMember::default();
                            member.member_id = str_bytes(id);
                            member.metadata = m.metadata.clone();
                            member
                        })
                        .collect();
                }
                return response;
            }
            if tokio::time::Instant::now() >= deadline {
                // Members that did not rejoin in time are dropped, as Kafka does.
                group.members.retain(|_, m| m.joined);
                group.try_complete_join();
                drop(state);
                ctx.groups_changed.send_modify(|v| *v += 1);
                continue;
            }
        }
        let _ = tokio::time::timeout_at(deadline, changes.changed()).await;
    }
}

async fn sync_group(ctx: &Ctx, request: &Received) -> SyncGroupResponse {
    let body: SyncGroupRequest = request.decode();
    let group_id = body.group_id.0.to_string();
    let member_id = body.member_id.to_string();
    let mut response = SyncGroupResponse::default();
    {
        let mut state = ctx.state.lock().expect("state");
        let Some(group) = state.groups.get_mut(&group_id) else {
            response.error_code = 25;
            return response;
        };
        if !group.members.contains_key(&member_id) {
            response.error_code = 25;
            return response;
        }
        if group.generation != body.generation_id {
            response.error_code = 22;
            return response;
        }
        if group.state == GroupState::Preparing {
            response.error_code = 27;
            return response;
        }
        if group.leader.as_deref() == Some(member_id.as_str()) {
            for a in &body.assignments {
                group
                    .assignments
                    .insert(a.member_id.to_string(), a.assignment.clone());
            }
            group.state = GroupState::Stable;
        }
    }
    ctx.groups_changed.send_modify(|v| *v += 1);
    let mut changes = ctx.groups_changed.subscribe();
    loop {
        {
            let state = ctx.state.lock().expect("state");
            let group = &state.groups[&group_id];
            if group.generation != body.generation_id || group.state == GroupState::Preparing {
                response.error_code = 27;
                return response;
            }
            if group.state == GroupState::Stable {
                response.protocol_type = Some(str_bytes("consumer"));
                response.protocol_name = Some(str_bytes("range"));
                response.assignment = group
                    .assignments
                    .get(&member_id)
                    .cloned()
                    .unwrap_or_default();
                return response;
            }
        }
        if changes.changed().await.is_err() {
            response.error_code = 15;
            return response;
        }
    }
}

fn heartbeat(ctx: &Ctx, request: &Received) -> HeartbeatResponse {
    let body: HeartbeatRequest = request.decode();
    let state = ctx.state.lock().expect("state");
    let mut response = HeartbeatResponse::default();
    response.error_code = match state.groups.get(body.group_id.0.as_str()) {
        None => 25,
        Some(g) if !g.members.contains_key(body.member_id.as_str()) => 25,
        Some(g) if g.generation != body.generation_id => 22,
        Some(g) if g.state == GroupState::Preparing => 27,
        Some(_) => 0,
    };
    response
}

fn leave_group(ctx: &Ctx, request: &Received) -> LeaveGroupResponse {
    let body: LeaveGroupRequest = request.decode();
    let mut response = LeaveGroupResponse::default();
    {
        let mut state = ctx.state.lock().expect("state");
        let group = state.groups.entry(body.group_id.0.to_string()).or_default();
        let leaving: Vec<String> = if request.version >= 3 {
            body.members
                .iter()
                .map(|m| m.member_id.to_string())
                .collect()
        } else {
            vec![body.member_id.to_string()]
        };
        for member in &leaving {
            if group.members.remove(member).is_none() && request.version < 3 {
                response.error_code = 25;
            }
        }
        group.start_rebalance();
        group.try_complete_join();
    }
    ctx.groups_changed.send_modify(|v| *v += 1);
    response
}

fn offset_commit(ctx: &Ctx, request: &Received) -> OffsetCommitResponse {
    let body: OffsetCommitRequest = request.decode();
    let mut state = ctx.state.lock().expect("state");
    let group = state.groups.entry(body.group_id.0.to_string()).or_default();
    let code = if body.generation_id_or_member_epoch < 0 {
        if group.members.is_empty() { 0 } else { 25 }
    } else if !group.members.contains_key(body.member_id.as_str()) {
        25
    } else if group.generation != body.generation_id_or_member_epoch {
        22
    } else if group.state == GroupState::Completing {
        27
    } else {
        0
    };
    let mut response = OffsetCommitResponse::default();
    for topic in body.topics {
        let mut t = OffsetCommitResponseTopic::default();
        t.name = topic.name.clone();
        for p in topic.partitions {
            if code == 0 {
                group.offsets.insert(
                    (topic.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                );
            }
            let mut r = OffsetCommitResponsePartition::default();
            r.partition_index = p.partition_index;
            r.error_code = code;
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}

fn offset_fetch(ctx: &Ctx, request: &Received) -> OffsetFetchResponse {
    let body: OffsetFetchRequest = request.decode();
    let state = ctx.state.lock().expect("state");
    let lookup =
        |group: &str, topics: Option<Vec<(String, Vec<i32>)>>| -> Vec<(String, Vec<(i32, i64)>)> {
            let offsets = state
                .groups
                .get(group)
                .map(|g| g.offsets.clone())
                .unwrap_or_default();
            match topics {
                Some(topics) => topics
                    .into_iter()
                    .map(|(name, parts)| {
                        let found = parts
                            .into_iter()
                            .map(|p| (p, offsets.get(&(name.clone(), p)).copied().unwrap_or(-1)))
                            .collect();
                        (name, found)
                    })
                    .collect(),
                None => {
                    let mut by_topic: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
                    for ((t, p), o) in offsets {
                        by_topic.entry(t).or_default().push((p, o));
                    }
                    by_topic.into_iter().collect()
                }
            }
        };
    let mut response = OffsetFetchResponse::default();
    if request.version >= 8 {
        for group in body.groups {
            let topics = group.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let mut g = OffsetFetchResponseGroup::default();
            g.group_id = group.group_id.clone();
            for (name, parts) in lookup(&group.group_id.0, topics) {
                let mut t = OffsetFetchResponseTopics::default();
                t.name = TopicName(str_bytes(&name));
                for (p, o) in parts {
                    let mut r = OffsetFetchResponsePartitions::default();
                    r.partition_index = p;
                    r.committed_offset = o;
                    t.partitions.push(r);
                }
                g.topics.push(t);
            }
            response.groups.push(g);
        }
    } else {
        let topics = body.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        for (name, parts) in lookup(&body.group_id.0, topics) {
            let mut t = OffsetFetchResponseTopic::default();
            t.name = TopicName(str_bytes(&name));
            for (p, o) in parts {
                let mut r = OffsetFetchResponsePartition::default();
                r.partition_index = p;
                r.committed_offset = o;
                t.partitions.push(r);
            }
            response.topics.push(t);
        }
    }
    response
}

fn describe_groups(ctx: &Ctx, request: &Received) -> DescribeGroupsResponse {
    let body: DescribeGroupsRequest = request.decode();
    let state = ctx.state.lock().expect("state");
    let mut response = DescribeGroupsResponse::default();
    for group_id in body.groups {
        let mut described = DescribedGroup::default();
        described.group_id = group_id.clone();
        match state.groups.get(group_id.0.as_str()) {
            None => described.group_state = str_bytes("Dead"),
            Some(g) => {
                described.group_state = str_bytes(g.state.name());
                described.protocol_type = str_bytes("consumer");
                described.protocol_data = str_bytes("range");
                described.members = g
                    .members
                    .iter()
                    .map(|(id, m)| {
                        let mut member = DescribedGroupMember::default();
                        member.member_id = str_bytes(id);
                        member.client_id = str_bytes(&m.client_id);
                        member.client_host = str_bytes("/127.0.0.1");
                        member.member_metadata = m.metadata.clone();
                        member.member_assignment =
                            g.assignments.get(id).cloned().unwrap_or_default();
                        member
                    })
                    .collect();
            }
        }
        response.groups.push(described);
    }
    response
}

/// A client connected to `cluster` with short backoffs for tests.
pub(crate) async fn test_client(cluster: &FakeCluster) -> crate::Client {
    let mut config = crate::ClientConfig::new(cluster.addr());
    config.retry_backoff = Duration::from_millis(20);
    config.retry_backoff_max = Duration::from_millis(100);
    config.request_timeout = Duration::from_secs(10);
    crate::Client::connect(config)
        .await
        .expect("client connects")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    #[should_panic(expected = "fake broker script failed")]
    async fn fake_broker_reports_script_panics() {
        let broker = FakeBroker::start(|mut conn: FakeConnection| async move {
            let _ = conn.read().await;
            panic!("script assertion");
        })
        .await;
        let mut raw = crate::RawConnection::connect(&broker.addr)
            .await
            .expect("connect");
        raw.write_all(&[0, 0, 0, 1, 0]).await.expect("write");
        let _ = raw.read_until_closed(Duration::from_secs(10)).await;
        drop(broker);
    }
}
