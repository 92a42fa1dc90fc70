//! Consumer groups through the broker: coordinator lookup, a member's lifecycle, committed
//! offsets that survive a restart, and the `__consumer_offsets` topic.

mod common;

use bytes::Bytes;
use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

async fn join(conn: &mut Conn, group: &str, member_id: &str) -> JoinGroupResponse {
    conn.send(
        9,
        JoinGroupRequest::default()
            .with_group_id(gid(group))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(s(member_id))
            .with_group_instance_id(None)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![
                join_group_request::JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(b"subscription")),
            ]),
    )
    .await
}

async fn commit(conn: &mut Conn, group: &str, generation: i32, member: &str, offset: i64) -> i16 {
    let response = conn
        .send(
            9,
            OffsetCommitRequest::default()
                .with_group_id(gid(group))
                .with_generation_id_or_member_epoch(generation)
                .with_member_id(s(member))
                .with_group_instance_id(None)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(topic_name("orders"))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(-1)
                                .with_committed_metadata(Some(s("meta"))),
                        ]),
                ]),
        )
        .await;
    response.topics[0].partitions[0].error_code
}

async fn fetch_offset(conn: &mut Conn, group: &str) -> (i64, String) {
    let response = conn
        .send(
            9,
            OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(gid(group))
                    .with_member_id(None)
                    .with_topics(None),
            ]),
        )
        .await;
    let group = &response.groups[0];
    assert_eq!(group.error_code, 0);
    let partition = &group.topics[0].partitions[0];
    (
        partition.committed_offset,
        partition
            .metadata
            .as_deref()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test]
async fn a_member_joins_syncs_heartbeats_commits_and_leaves() {
    let broker = TestBroker::start_with(&[("group.initial.rebalance.delay.ms", "0")]).await;
    let mut conn = broker.connect().await;
    conn.create_topic("orders", 1, &[]).await;

    let coordinator = conn
        .send(
            4,
            FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![s("g1")]),
        )
        .await;
    let found = &coordinator.coordinators[0];
    assert_eq!(
        (found.error_code, found.node_id.0, found.port as u16),
        (0, 1, broker.addr.port())
    );

    let first = join(&mut conn, "g1", "").await;
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    let member = first.member_id.to_string();
    assert!(member.starts_with("strom-test-"), "{member}");
    let joined = join(&mut conn, "g1", &member).await;
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader.as_str(), member);
    assert_eq!(joined.members.len(), 1);
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));

    let synced = conn
        .send(
            5,
            SyncGroupRequest::default()
                .with_group_id(gid("g1"))
                .with_generation_id(1)
                .with_member_id(s(&member))
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")))
                .with_assignments(vec![
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(s(&member))
                        .with_assignment(Bytes::from_static(b"all of it")),
                ]),
        )
        .await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(&synced.assignment[..], b"all of it");

    let beat = conn
        .send(
            4,
            HeartbeatRequest::default()
                .with_group_id(gid("g1"))
                .with_generation_id(1)
                .with_member_id(s(&member)),
        )
        .await;
    assert_eq!(beat.error_code, 0);
    let stale = conn
        .send(
            4,
            HeartbeatRequest::default()
                .with_group_id(gid("g1"))
                .with_generation_id(0)
                .with_member_id(s(&member)),
        )
        .await;
    assert_eq!(stale.error_code, ResponseError::IllegalGeneration.code());

    assert_eq!(commit(&mut conn, "g1", 1, &member, 42).await, 0);
    assert_eq!(
        commit(&mut conn, "g1", 7, &member, 43).await,
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        fetch_offset(&mut conn, "g1").await,
        (42, "meta".to_string())
    );

    let described = conn
        .send(
            5,
            DescribeGroupsRequest::default().with_groups(vec![gid("g1")]),
        )
        .await;
    let group = &described.groups[0];
    assert_eq!(
        (group.group_state.as_str(), group.members.len()),
        ("Stable", 1)
    );
    assert_eq!(group.members[0].client_host.as_str(), "/127.0.0.1");

    let left = conn
        .send(
            5,
            LeaveGroupRequest::default()
                .with_group_id(gid("g1"))
                .with_members(vec![
                    leave_group_request::MemberIdentity::default().with_member_id(s(&member)),
                ]),
        )
        .await;
    assert_eq!((left.error_code, left.members[0].error_code), (0, 0));
    let listed = conn
        .send(
            5,
            ListGroupsRequest::default().with_states_filter(vec![s("Empty")]),
        )
        .await;
    assert!(listed.groups.iter().any(|g| g.group_id.as_str() == "g1"));

    let deleted = conn
        .send(
            2,
            DeleteGroupsRequest::default().with_groups_names(vec![gid("g1")]),
        )
        .await;
    assert_eq!(deleted.results[0].error_code, 0);
    broker.stop().await;
}

#[tokio::test]
async fn committed_offsets_survive_a_restart() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("orders", 1, &[]).await;
    conn.send(3, FindCoordinatorRequest::default().with_key(s("keeper")))
        .await;
    assert_eq!(commit(&mut conn, "keeper", -1, "", 1234).await, 0);
    assert_eq!(commit(&mut conn, "keeper", -1, "", 1235).await, 0);

    let broker = broker.restart().await;
    let mut conn = broker.connect().await;
    assert_eq!(fetch_offset(&mut conn, "keeper").await.0, 1235);
    broker.stop().await;
}

#[tokio::test]
async fn consumer_offsets_is_an_internal_compacted_topic() {
    let broker = TestBroker::start_with(&[("offsets.topic.num.partitions", "5")]).await;
    let mut conn = broker.connect().await;
    conn.send(3, FindCoordinatorRequest::default().with_key(s("any")))
        .await;
    let metadata = conn
        .send(
            12,
            MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(topic_name("__consumer_offsets"))),
            ])),
        )
        .await;
    let topic = &metadata.topics[0];
    assert!(topic.is_internal);
    assert_eq!(topic.partitions.len(), 5);
    let state = broker.broker.as_ref().unwrap().state().unwrap().clone();
    let log = state
        .partition(&strom_log::TopicPartition {
            topic: "__consumer_offsets".into(),
            partition: 0,
        })
        .unwrap()
        .log
        .clone();
    assert!(log.config().cleanup_policy.compact);
    let deleted = conn
        .send(
            5,
            DeleteTopicsRequest::default().with_topic_names(vec![topic_name("__consumer_offsets")]),
        )
        .await;
    assert_ne!(
        deleted.responses[0].error_code, 0,
        "the internal topic cannot be deleted"
    );
    broker.stop().await;
}

#[tokio::test]
async fn transactional_coordinator_lookups_create_the_state_topic_and_find_its_leader() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let response = conn
        .send(
            4,
            FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![s("tx-1"), s("tx-2")]),
        )
        .await;
    for coordinator in &response.coordinators {
        assert_eq!(coordinator.error_code, 0, "{coordinator:?}");
        assert_eq!(coordinator.port, i32::from(broker.addr.port()));
    }
    let metadata = conn
        .send(
            12,
            MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(topic_name("__transaction_state"))),
            ])),
        )
        .await;
    assert_eq!(metadata.topics[0].error_code, 0);
    assert!(metadata.topics[0].is_internal);
    assert_eq!(metadata.topics[0].partitions.len(), 50);
    broker.stop().await;
}
