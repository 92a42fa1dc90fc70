//! A test shell: drives a `Coordinator` the way the broker's IO shell will, with a fake
//! clock, an in-memory `__consumer_offsets` log and bookkeeping that fails the test if a
//! request is ever answered twice or not at all.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{BufMut, Bytes, BytesMut};
use strom_group::*;

pub const GROUP: &str = "group-a";
pub const SESSION_MS: i32 = 10_000;
pub const REBALANCE_MS: i32 = 30_000;

/// The shell around one coordinator.
pub struct Harness {
    pub coordinator: Coordinator,
    pub now: i64,
    next_request: u64,
    /// Requests sent and not answered yet.
    pub outstanding: BTreeSet<RequestId>,
    /// Answers not yet taken by the test.
    pub responses: BTreeMap<RequestId, Response>,
    /// Request ids in the order their answers arrived.
    pub arrivals: Vec<RequestId>,
    /// Writes issued and not yet resolved, oldest first.
    pub in_flight: VecDeque<Write>,
    /// Every write the coordinator issued (for asserting records).
    pub issued: Vec<Write>,
    /// The durable records, per partition, in append order.
    pub log: BTreeMap<i32, Vec<Record>>,
    /// The partitions' logs as the broker's would be: every record with the producer of its
    /// batch, and transaction markers; an entry's index is its log offset.
    pub full_log: BTreeMap<i32, Vec<LogEntry>>,
    /// Complete every write as soon as it is issued.
    pub auto_complete: bool,
}

pub fn config() -> Config {
    Config {
        // A few partitions keep the load fast while still exercising routing.
        offsets_topic_partitions: 4,
        member_id_seed: 42,
        ..Config::default()
    }
}

impl Harness {
    /// A coordinator owning every partition, writes completed automatically.
    pub fn new() -> Harness {
        Harness::with_config(config())
    }

    pub fn with_config(config: Config) -> Harness {
        let partitions = config.offsets_topic_partitions;
        let mut h = Harness {
            coordinator: Coordinator::new(config).expect("valid config"),
            now: 1_000_000,
            next_request: 1,
            outstanding: BTreeSet::new(),
            responses: BTreeMap::new(),
            arrivals: Vec::new(),
            in_flight: VecDeque::new(),
            issued: Vec::new(),
            log: BTreeMap::new(),
            full_log: BTreeMap::new(),
            auto_complete: true,
        };
        for p in 0..partitions {
            h.coordinator.load_partition(p).expect("load");
            let out = h.coordinator.finish_load(h.now, p).expect("finish load");
            h.handle(out);
        }
        h
    }

    pub fn next_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.outstanding.insert(id);
        id
    }

    /// Takes an output like the shell: records responses, queues writes.
    pub fn handle(&mut self, out: Output) {
        for (id, response) in out.responses {
            assert!(
                self.outstanding.remove(&id),
                "response for {id:?} which is unknown or already answered: {response:?}"
            );
            self.responses.insert(id, response);
            self.arrivals.push(id);
        }
        for write in out.writes {
            self.issued.push(write.clone());
            self.in_flight.push_back(write);
        }
        if self.auto_complete {
            self.complete_all();
        }
    }

    /// Makes the oldest write durable.
    pub fn complete_one(&mut self) -> bool {
        let Some(write) = self.in_flight.pop_front() else {
            return false;
        };
        self.log
            .entry(write.partition)
            .or_default()
            .extend(write.records.iter().cloned());
        let entries = self.full_log.entry(write.partition).or_default();
        let base_offset = entries.len() as i64;
        entries.extend(write.records.iter().map(|record| LogEntry::Record {
            producer_id: write.producer.map(|p| p.producer_id),
            record: record.clone(),
        }));
        let out = self
            .coordinator
            .write_completed(self.now, write.id, base_offset)
            .expect("in-order completion");
        self.handle(out);
        true
    }

    pub fn complete_all(&mut self) {
        while self.complete_one() {}
    }

    /// Appends a COMMIT or ABORT marker of `producer_id` to `partition` and tells the
    /// coordinator, as the WriteTxnMarkers handler does.
    pub fn marker(&mut self, partition: i32, producer_id: i64, commit: bool) {
        self.full_log
            .entry(partition)
            .or_default()
            .push(LogEntry::Marker {
                producer_id,
                commit,
            });
        let out = self
            .coordinator
            .complete_transaction(self.now, partition, producer_id, commit);
        self.handle(out);
    }

    /// Feeds the durable log of `partition` to `coordinator`, which is loading it.
    pub fn replay_into(&self, coordinator: &mut Coordinator, partition: i32) {
        let entries = self.full_log.get(&partition).map_or(&[][..], Vec::as_slice);
        replay_log(coordinator, partition, entries);
    }

    /// Unloads `partition` and loads it again from the durable log. Writes in flight are
    /// dropped: they never reached the log.
    pub fn reload(&mut self, partition: i32) {
        let out = self.coordinator.unload_partition(self.now, partition);
        self.handle(out);
        self.in_flight.retain(|w| w.partition != partition);
        self.coordinator.load_partition(partition).expect("load");
        let entries = self.full_log.get(&partition).map_or(&[][..], Vec::as_slice);
        replay_log(&mut self.coordinator, partition, entries);
        let out = self
            .coordinator
            .finish_load(self.now, partition)
            .expect("finish load");
        self.handle(out);
    }

    pub fn send_txn_commit(&mut self, request: TxnOffsetCommitRequest) -> RequestId {
        let id = self.next_id();
        let out = self.coordinator.txn_offset_commit(self.now, id, request);
        self.handle(out);
        id
    }

    pub fn txn_commit_response(&mut self, id: RequestId) -> TxnOffsetCommitResponse {
        match self.take(id) {
            Some(Response::TxnOffsetCommit(r)) => r,
            other => panic!("expected a TxnOffsetCommit response for {id:?}, got {other:?}"),
        }
    }

    /// Fails the oldest write.
    pub fn fail_one(&mut self, append_error: ErrorCode) -> bool {
        let Some(write) = self.in_flight.pop_front() else {
            return false;
        };
        let out = self
            .coordinator
            .write_failed(self.now, write.id, append_error)
            .expect("in-order failure");
        self.handle(out);
        true
    }

    /// Moves the clock and fires every deadline on the way, in order.
    pub fn advance(&mut self, ms: i64) {
        let target = self.now + ms;
        while let Some(deadline) = self.coordinator.next_deadline() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            let out = self.coordinator.poll(self.now);
            self.handle(out);
        }
        self.now = target;
    }

    pub fn take(&mut self, id: RequestId) -> Option<Response> {
        self.responses.remove(&id)
    }

    pub fn is_answered(&self, id: RequestId) -> bool {
        self.responses.contains_key(&id)
    }

    // ---- requests

    pub fn send_join(&mut self, request: JoinGroupRequest) -> RequestId {
        let id = self.next_id();
        let out = self.coordinator.join_group(self.now, id, request);
        self.handle(out);
        id
    }

    pub fn send_sync(&mut self, request: SyncGroupRequest) -> RequestId {
        let id = self.next_id();
        let out = self.coordinator.sync_group(self.now, id, request);
        self.handle(out);
        id
    }

    pub fn heartbeat(&mut self, group: &str, member_id: &str, generation_id: i32) -> ErrorCode {
        let id = self.next_id();
        let out = self.coordinator.heartbeat(
            self.now,
            id,
            HeartbeatRequest {
                group_id: group.into(),
                generation_id,
                member_id: member_id.into(),
                group_instance_id: None,
            },
        );
        self.handle(out);
        match self.take(id) {
            Some(Response::Heartbeat(r)) => r.error_code,
            other => panic!("heartbeat not answered at once: {other:?}"),
        }
    }

    pub fn send_leave(&mut self, request: LeaveGroupRequest) -> RequestId {
        let id = self.next_id();
        let out = self.coordinator.leave_group(self.now, id, request);
        self.handle(out);
        id
    }

    pub fn send_commit(&mut self, request: OffsetCommitRequest) -> RequestId {
        let id = self.next_id();
        let out = self.coordinator.offset_commit(self.now, id, request);
        self.handle(out);
        id
    }

    pub fn send_fetch(&mut self, request: OffsetFetchRequest) -> RequestId {
        let id = self.next_id();
        let out = self.coordinator.offset_fetch(self.now, id, request);
        self.handle(out);
        id
    }

    pub fn send_delete_groups(&mut self, groups: &[&str]) -> RequestId {
        let id = self.next_id();
        let out = self.coordinator.delete_groups(
            self.now,
            id,
            DeleteGroupsRequest {
                groups_names: groups.iter().map(|g| g.to_string()).collect(),
            },
        );
        self.handle(out);
        id
    }

    pub fn send_offset_delete(&mut self, request: OffsetDeleteRequest) -> RequestId {
        let id = self.next_id();
        let out = self.coordinator.offset_delete(self.now, id, request);
        self.handle(out);
        id
    }

    pub fn list(&mut self, request: ListGroupsRequest) -> ListGroupsResponse {
        let id = self.next_id();
        let out = self.coordinator.list_groups(self.now, id, request);
        self.handle(out);
        match self.take(id) {
            Some(Response::ListGroups(r)) => r,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn describe(&mut self, groups: &[&str]) -> DescribeGroupsResponse {
        let id = self.next_id();
        let out = self.coordinator.describe_groups(
            self.now,
            id,
            DescribeGroupsRequest {
                groups: groups.iter().map(|g| g.to_string()).collect(),
            },
        );
        self.handle(out);
        match self.take(id) {
            Some(Response::DescribeGroups(r)) => r,
            other => panic!("unexpected {other:?}"),
        }
    }

    // ---- typed takes

    pub fn join_response(&mut self, id: RequestId) -> JoinGroupResponse {
        match self.take(id) {
            Some(Response::JoinGroup(r)) => r,
            other => panic!("expected a JoinGroup response for {id:?}, got {other:?}"),
        }
    }

    pub fn sync_response(&mut self, id: RequestId) -> SyncGroupResponse {
        match self.take(id) {
            Some(Response::SyncGroup(r)) => r,
            other => panic!("expected a SyncGroup response for {id:?}, got {other:?}"),
        }
    }

    pub fn leave_response(&mut self, id: RequestId) -> LeaveGroupResponse {
        match self.take(id) {
            Some(Response::LeaveGroup(r)) => r,
            other => panic!("expected a LeaveGroup response for {id:?}, got {other:?}"),
        }
    }

    pub fn commit_response(&mut self, id: RequestId) -> OffsetCommitResponse {
        match self.take(id) {
            Some(Response::OffsetCommit(r)) => r,
            other => panic!("expected an OffsetCommit response for {id:?}, got {other:?}"),
        }
    }

    pub fn fetch_response(&mut self, id: RequestId) -> OffsetFetchResponse {
        match self.take(id) {
            Some(Response::OffsetFetch(r)) => r,
            other => panic!("expected an OffsetFetch response for {id:?}, got {other:?}"),
        }
    }

    pub fn delete_groups_response(&mut self, id: RequestId) -> DeleteGroupsResponse {
        match self.take(id) {
            Some(Response::DeleteGroups(r)) => r,
            other => panic!("expected a DeleteGroups response for {id:?}, got {other:?}"),
        }
    }

    pub fn offset_delete_response(&mut self, id: RequestId) -> OffsetDeleteResponse {
        match self.take(id) {
            Some(Response::OffsetDelete(r)) => r,
            other => panic!("expected an OffsetDelete response for {id:?}, got {other:?}"),
        }
    }

    // ---- composite flows

    /// A dynamic member joins with JoinGroup v9: MEMBER_ID_REQUIRED, then the real join.
    /// Returns the id of the parked (or answered) second request and the member id.
    pub fn join_dynamic(
        &mut self,
        group: &str,
        client: &str,
        topics: &[&str],
    ) -> (RequestId, String) {
        let first = self.send_join(join_request(group, "", client, topics));
        let response = self.join_response(first);
        assert_eq!(response.error_code, codes::MEMBER_ID_REQUIRED);
        let member_id = response.member_id;
        let second = self.send_join(join_request(group, &member_id, client, topics));
        (second, member_id)
    }

    /// Leader syncs with `assignment` (member id -> bytes); returns the request id.
    pub fn sync(
        &mut self,
        group: &str,
        member_id: &str,
        generation_id: i32,
        assignment: &[(&str, &[u8])],
    ) -> RequestId {
        self.send_sync(SyncGroupRequest {
            group_id: group.into(),
            generation_id,
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: assignment
                .iter()
                .map(|(m, a)| SyncGroupAssignment {
                    member_id: m.to_string(),
                    assignment: Bytes::copy_from_slice(a),
                })
                .collect(),
        })
    }

    /// One member forms a Stable group (generation 1); returns its member id.
    pub fn stable_single_member_group(&mut self, group: &str, topics: &[&str]) -> String {
        let (join, member_id) = self.join_dynamic(group, "client", topics);
        self.advance(3_000);
        let response = self.join_response(join);
        assert_eq!(response.error_code, codes::NONE);
        let sync = self.sync(
            group,
            &member_id,
            response.generation_id,
            &[(&member_id, b"a1")],
        );
        let sync = self.sync_response(sync);
        assert_eq!(sync.error_code, codes::NONE);
        member_id
    }

    pub fn summary(&self, group: &str) -> GroupSummary {
        self.coordinator
            .group_summary(group)
            .unwrap_or_else(|| panic!("group {group} does not exist"))
    }

    /// A fresh coordinator rebuilt from this one's durable log.
    pub fn replayed(&self) -> Coordinator {
        let config = self.coordinator.config().clone();
        let partitions = config.offsets_topic_partitions;
        let mut fresh = Coordinator::new(config).expect("config");
        for p in 0..partitions {
            fresh.load_partition(p).expect("load");
            self.replay_into(&mut fresh, p);
            fresh.finish_load(self.now, p).expect("finish");
        }
        fresh
    }
}

/// One entry of a partition's log in [`Harness::full_log`].
#[derive(Debug, Clone)]
pub enum LogEntry {
    /// A record; `producer_id` is set when its batch is transactional.
    Record {
        producer_id: Option<i64>,
        record: Record,
    },
    /// A control batch ending `producer_id`'s transaction.
    Marker { producer_id: i64, commit: bool },
}

/// Feeds a partition's log entries, in order, to a coordinator loading the partition.
pub fn replay_log(coordinator: &mut Coordinator, partition: i32, entries: &[LogEntry]) {
    for (offset, entry) in entries.iter().enumerate() {
        let offset = offset as i64;
        let replayed = match entry {
            LogEntry::Record {
                producer_id: None,
                record,
            } => coordinator.replay(partition, offset, &record.key, record.value.as_deref()),
            LogEntry::Record {
                producer_id: Some(producer_id),
                record,
            } => coordinator.replay_transactional(
                partition,
                offset,
                *producer_id,
                &record.key,
                record.value.as_deref(),
            ),
            LogEntry::Marker {
                producer_id,
                commit,
            } => coordinator.replay_marker(partition, *producer_id, *commit),
        };
        replayed.expect("replay");
    }
}

/// TxnOffsetCommit v3 of `producer_id` (epoch 0) with a consumer's group metadata.
pub fn txn_commit_request(
    group: &str,
    producer_id: i64,
    member_id: &str,
    generation: i32,
    offsets: &[(&str, i32, i64)],
) -> TxnOffsetCommitRequest {
    let mut topics: BTreeMap<&str, Vec<TxnOffsetCommitPartition>> = BTreeMap::new();
    for (topic, partition, offset) in offsets {
        topics
            .entry(topic)
            .or_default()
            .push(TxnOffsetCommitPartition {
                partition_index: *partition,
                committed_offset: *offset,
                committed_leader_epoch: 3,
                committed_metadata: Some(format!("t{offset}")),
            });
    }
    TxnOffsetCommitRequest {
        transactional_id: format!("txn-{producer_id}"),
        group_id: group.into(),
        producer_id,
        producer_epoch: 0,
        generation_id: generation,
        member_id: member_id.into(),
        group_instance_id: None,
        topics: topics
            .into_iter()
            .map(|(name, partitions)| TxnOffsetCommitTopic {
                name: name.into(),
                partitions,
            })
            .collect(),
    }
}

pub fn txn_commit_codes(response: &TxnOffsetCommitResponse) -> Vec<ErrorCode> {
    response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// A consumer's `ConsumerProtocolSubscription` v1 for `topics` (what the Java client sends).
pub fn subscription(topics: &[&str]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    buf.put_i32(topics.len() as i32);
    for topic in topics {
        buf.put_i16(topic.len() as i16);
        buf.put_slice(topic.as_bytes());
    }
    buf.put_i32(-1); // no user data
    buf.put_i32(0); // no owned partitions
    buf.freeze()
}

/// JoinGroup v9 for the "consumer" protocol type with one "range" protocol.
pub fn join_request(
    group: &str,
    member_id: &str,
    client: &str,
    topics: &[&str],
) -> JoinGroupRequest {
    JoinGroupRequest {
        api_version: 9,
        group_id: group.into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupProtocol {
            name: "range".into(),
            metadata: subscription(topics),
        }],
        reason: None,
        client_id: client.into(),
        client_host: "/127.0.0.1".into(),
    }
}

pub fn static_join_request(
    group: &str,
    member_id: &str,
    instance: &str,
    topics: &[&str],
) -> JoinGroupRequest {
    JoinGroupRequest {
        group_instance_id: Some(instance.into()),
        ..join_request(group, member_id, instance, topics)
    }
}

pub fn commit_request(
    group: &str,
    member_id: &str,
    generation: i32,
    offsets: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitPartition>> = BTreeMap::new();
    for (topic, partition, offset) in offsets {
        topics
            .entry(topic)
            .or_default()
            .push(OffsetCommitPartition {
                partition_index: *partition,
                committed_offset: *offset,
                committed_leader_epoch: 3,
                commit_timestamp: -1,
                committed_metadata: Some(format!("m{offset}")),
            });
    }
    OffsetCommitRequest {
        api_version: 9,
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member_id.into(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: topics
            .into_iter()
            .map(|(name, partitions)| OffsetCommitTopic {
                name: name.into(),
                partitions,
            })
            .collect(),
    }
}

/// Every partition error code of a commit response, in order.
pub fn commit_codes(response: &OffsetCommitResponse) -> Vec<ErrorCode> {
    response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

pub fn fetch_all(groups: &[&str]) -> OffsetFetchRequest {
    OffsetFetchRequest {
        groups: groups
            .iter()
            .map(|g| OffsetFetchGroup {
                group_id: g.to_string(),
                member_id: None,
                member_epoch: -1,
                topics: None,
            })
            .collect(),
        require_stable: false,
    }
}

pub fn leave_request(group: &str, member_id: &str) -> LeaveGroupRequest {
    LeaveGroupRequest {
        group_id: group.into(),
        members: vec![LeaveGroupMember {
            member_id: member_id.into(),
            group_instance_id: None,
            reason: None,
        }],
    }
}

/// Offsets of a fetch response as (topic, partition, offset).
pub fn fetched(group: &OffsetFetchGroupResponse) -> Vec<(String, i32, i64)> {
    group
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.clone(), p.partition_index, p.committed_offset))
        })
        .collect()
}
