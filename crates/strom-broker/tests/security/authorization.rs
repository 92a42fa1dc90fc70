//! ACL enforcement (issue 13) through the Kafka protocol, with the StandardAuthorizer on: the
//! test client is `User:ANONYMOUS` over PLAINTEXT and gets rights step by step through
//! CreateAcls, checking each API allowed and denied with Kafka's error codes.
//!
//! Setup: the broker starts with `allow.everyone.if.no.acl.found=true` so the client may grant
//! itself ALTER on the cluster; wildcard ACLs for another principal on every topic and group then
//! take those resources out of "no ACL found", so only the ACLs the test adds decide.

use crate::common::*;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const CREATE: i8 = 5;
const DELETE: i8 = 6;
const ALTER: i8 = 7;
const ALTER_CONFIGS: i8 = 11;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

const ME: &str = "User:ANONYMOUS";
const AUTHORIZER: (&str, &str) = (
    "authorizer.class.name",
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
);

const TOPIC_DENIED: i16 = ResponseError::TopicAuthorizationFailed.code();
const GROUP_DENIED: i16 = ResponseError::GroupAuthorizationFailed.code();

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn acl(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    op: i8,
    perm: i8,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(op)
        .with_permission_type(perm)
}

async fn grant(conn: &mut Conn, creations: Vec<AclCreation>) {
    let response = conn
        .send(3, CreateAclsRequest::default().with_creations(creations))
        .await;
    for r in &response.results {
        assert_eq!(r.error_code, 0, "CreateAcls: {:?}", r.error_message);
    }
}

async fn revoke(conn: &mut Conn, a: AclCreation) {
    let filter = DeleteAclsFilter::default()
        .with_resource_type_filter(a.resource_type)
        .with_resource_name_filter(Some(a.resource_name))
        .with_pattern_type_filter(a.resource_pattern_type)
        .with_principal_filter(Some(a.principal))
        .with_host_filter(Some(a.host))
        .with_operation(a.operation)
        .with_permission_type(a.permission_type);
    let response = conn
        .send(3, DeleteAclsRequest::default().with_filters(vec![filter]))
        .await;
    assert_eq!(response.filter_results[0].error_code, 0);
    assert_eq!(response.filter_results[0].matching_acls.len(), 1);
}

/// A broker where only the ACLs the test adds decide, and ANONYMOUS may administer ACLs.
async fn governed_broker() -> (TestBroker, Conn) {
    let broker =
        TestBroker::start_with(&[AUTHORIZER, ("allow.everyone.if.no.acl.found", "true")]).await;
    let mut conn = broker.connect().await;
    grant(
        &mut conn,
        vec![
            acl(CLUSTER, "kafka-cluster", LITERAL, ME, ALTER, ALLOW),
            acl(TOPIC, "*", LITERAL, "User:nobody", READ, ALLOW),
            acl(GROUP, "*", LITERAL, "User:nobody", READ, ALLOW),
        ],
    )
    .await;
    (broker, conn)
}

async fn create_code(conn: &mut Conn, name: &str) -> i16 {
    conn.create_topic(name, 1, &[]).await.topics[0].error_code
}

async fn produce_code(conn: &mut Conn, topic: &str) -> i16 {
    conn.produce(topic, 0, -1, simple_batch(0, 1))
        .await
        .error_code
}

async fn fetch_code(conn: &mut Conn, topic: &str) -> i16 {
    conn.fetch(topic, 0, 0, 0, 0).await.error_code
}

/// Metadata v12: (name, error) of each topic, all topics when `names` is None.
async fn metadata(conn: &mut Conn, names: Option<&[&str]>) -> Vec<(String, i16)> {
    let request = MetadataRequest::default()
        .with_topics(names.map(|list| {
            list.iter()
                .map(|n| {
                    metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name(n)))
                })
                .collect()
        }))
        .with_allow_auto_topic_creation(false);
    let response = conn.send(12, request).await;
    let mut topics: Vec<(String, i16)> = response
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
            )
        })
        .collect();
    topics.sort();
    topics
}

async fn join_code(conn: &mut Conn, group: &str) -> i16 {
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(""))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"subscription")),
        ]);
    // v9: a new member first gets MEMBER_ID_REQUIRED, which is the coordinator's answer.
    conn.send(9, request).await.error_code
}

/// FindCoordinator v3 for a group, until the coordinator is loaded or refused.
async fn find_group_coordinator(conn: &mut Conn, group: &str) -> i16 {
    for _ in 0..100 {
        let request = FindCoordinatorRequest::default()
            .with_key(s(group))
            .with_key_type(0);
        let code = conn.send(3, request).await.error_code;
        if code != ResponseError::CoordinatorNotAvailable.code() {
            return code;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no group coordinator");
}

async fn commit_code(conn: &mut Conn, group: &str, topic: &str) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(0)
                        .with_committed_leader_epoch(-1),
                ]),
        ]);
    conn.send(8, request).await.topics[0].partitions[0].error_code
}

async fn delete_code(conn: &mut Conn, topic: &str) -> i16 {
    let request = DeleteTopicsRequest::default()
        .with_topic_names(vec![topic_name(topic)])
        .with_timeout_ms(5000);
    conn.send(5, request).await.responses[0].error_code
}

async fn alter_config_code(conn: &mut Conn, topic: &str) -> i16 {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic))
            .with_configs(vec![
                AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(s("60000"))),
            ]),
    ]);
    conn.send(1, request).await.responses[0].error_code
}

#[tokio::test]
async fn topic_operations_follow_the_acls() {
    let (broker, mut conn) = governed_broker().await;

    // CREATE: none, then a prefixed ALLOW.
    assert_eq!(create_code(&mut conn, "orders").await, TOPIC_DENIED);
    grant(
        &mut conn,
        vec![acl(TOPIC, "ord", PREFIXED, ME, CREATE, ALLOW)],
    )
    .await;
    assert_eq!(create_code(&mut conn, "orders").await, 0);
    assert_eq!(create_code(&mut conn, "ordinals").await, 0);
    assert_eq!(create_code(&mut conn, "payments").await, TOPIC_DENIED);

    // Nothing describable yet: no topics listed, named ones refused.
    assert_eq!(metadata(&mut conn, None).await, vec![]);
    assert_eq!(
        metadata(&mut conn, Some(&["orders", "missing"])).await,
        vec![
            ("missing".into(), TOPIC_DENIED),
            ("orders".into(), TOPIC_DENIED)
        ]
    );

    // WRITE (which implies DESCRIBE) on orders only.
    assert_eq!(produce_code(&mut conn, "orders").await, TOPIC_DENIED);
    grant(
        &mut conn,
        vec![acl(TOPIC, "orders", LITERAL, ME, WRITE, ALLOW)],
    )
    .await;
    assert_eq!(produce_code(&mut conn, "orders").await, 0);
    assert_eq!(produce_code(&mut conn, "ordinals").await, TOPIC_DENIED);
    assert_eq!(metadata(&mut conn, None).await, vec![("orders".into(), 0)]);

    // READ.
    assert_eq!(fetch_code(&mut conn, "orders").await, TOPIC_DENIED);
    grant(
        &mut conn,
        vec![acl(TOPIC, "orders", LITERAL, ME, READ, ALLOW)],
    )
    .await;
    assert_eq!(fetch_code(&mut conn, "orders").await, 0);

    // DENY beats ALLOW, and lifting it restores the ALLOW.
    let deny = acl(TOPIC, "ord", PREFIXED, ME, WRITE, DENY);
    grant(&mut conn, vec![deny.clone()]).await;
    assert_eq!(produce_code(&mut conn, "orders").await, TOPIC_DENIED);
    revoke(&mut conn, deny).await;
    assert_eq!(produce_code(&mut conn, "orders").await, 0);

    // ALTER_CONFIGS.
    assert_eq!(alter_config_code(&mut conn, "orders").await, TOPIC_DENIED);
    grant(
        &mut conn,
        vec![acl(TOPIC, "orders", LITERAL, ME, ALTER_CONFIGS, ALLOW)],
    )
    .await;
    assert_eq!(alter_config_code(&mut conn, "orders").await, 0);

    // DELETE.
    assert_eq!(delete_code(&mut conn, "orders").await, TOPIC_DENIED);
    assert_eq!(delete_code(&mut conn, "ordinals").await, TOPIC_DENIED);
    grant(
        &mut conn,
        vec![acl(TOPIC, "orders", LITERAL, ME, DELETE, ALLOW)],
    )
    .await;
    assert_eq!(delete_code(&mut conn, "orders").await, 0);
    broker.stop().await;
}

#[tokio::test]
async fn group_operations_follow_the_acls() {
    let (broker, mut conn) = governed_broker().await;
    grant(
        &mut conn,
        vec![acl(TOPIC, "orders", LITERAL, ME, CREATE, ALLOW)],
    )
    .await;
    assert_eq!(create_code(&mut conn, "orders").await, 0);

    assert_eq!(find_group_coordinator(&mut conn, "g1").await, GROUP_DENIED);
    assert_eq!(join_code(&mut conn, "g1").await, GROUP_DENIED);
    assert_eq!(commit_code(&mut conn, "g1", "orders").await, GROUP_DENIED);
    grant(&mut conn, vec![acl(GROUP, "g", PREFIXED, ME, READ, ALLOW)]).await;
    assert_eq!(find_group_coordinator(&mut conn, "g1").await, 0);
    let joined = join_code(&mut conn, "g1").await;
    assert_eq!(joined, ResponseError::MemberIdRequired.code());

    // The group is readable, the topic not yet.
    assert_eq!(commit_code(&mut conn, "g2", "orders").await, TOPIC_DENIED);
    grant(
        &mut conn,
        vec![acl(TOPIC, "orders", LITERAL, ME, READ, ALLOW)],
    )
    .await;
    assert_eq!(commit_code(&mut conn, "g2", "orders").await, 0);

    // ListGroups: ALTER on the cluster implies DESCRIBE there, which lists every group.
    let listed = conn.send(4, ListGroupsRequest::default()).await;
    assert_eq!(listed.error_code, 0);
    assert!(listed.groups.iter().any(|g| g.group_id.as_str() == "g2"));
    broker.stop().await;
}

#[tokio::test]
async fn cluster_operations_need_cluster_acls() {
    // No ACLs at all and no allow-everyone: ANONYMOUS may do nothing.
    let broker = TestBroker::start_with(&[AUTHORIZER]).await;
    let mut conn = broker.connect().await;
    let created = conn
        .send(
            3,
            CreateAclsRequest::default()
                .with_creations(vec![acl(TOPIC, "t", LITERAL, ME, READ, ALLOW)]),
        )
        .await;
    assert_eq!(
        created.results[0].error_code,
        ResponseError::ClusterAuthorizationFailed.code()
    );
    assert_eq!(create_code(&mut conn, "t").await, TOPIC_DENIED);
    assert_eq!(metadata(&mut conn, None).await, vec![]);
    let log_dirs = conn
        .send(4, DescribeLogDirsRequest::default().with_topics(None))
        .await;
    assert_eq!(
        log_dirs.error_code,
        ResponseError::ClusterAuthorizationFailed.code()
    );
    let producer = conn
        .send(
            4,
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000),
        )
        .await;
    assert_eq!(
        producer.error_code,
        ResponseError::ClusterAuthorizationFailed.code()
    );
    broker.stop().await;
}

#[tokio::test]
async fn allow_everyone_if_no_acl_found() {
    let broker =
        TestBroker::start_with(&[AUTHORIZER, ("allow.everyone.if.no.acl.found", "true")]).await;
    let mut conn = broker.connect().await;
    // No ACLs anywhere: everything is allowed.
    assert_eq!(create_code(&mut conn, "open").await, 0);
    assert_eq!(create_code(&mut conn, "closed").await, 0);
    assert_eq!(produce_code(&mut conn, "open").await, 0);
    // An ACL on "closed" for someone else: ANONYMOUS is no longer allowed there, still on "open".
    grant(
        &mut conn,
        vec![acl(TOPIC, "closed", LITERAL, "User:alice", WRITE, ALLOW)],
    )
    .await;
    assert_eq!(produce_code(&mut conn, "closed").await, TOPIC_DENIED);
    assert_eq!(produce_code(&mut conn, "open").await, 0);
    assert_eq!(
        metadata(&mut conn, None).await,
        vec![("open".into(), 0)],
        "closed is not describable"
    );
    broker.stop().await;
}

#[tokio::test]
async fn describe_allowed_operations_are_reported() {
    let (broker, mut conn) = governed_broker().await;
    grant(
        &mut conn,
        vec![
            acl(TOPIC, "orders", LITERAL, ME, CREATE, ALLOW),
            acl(TOPIC, "orders", LITERAL, ME, READ, ALLOW),
        ],
    )
    .await;
    assert_eq!(create_code(&mut conn, "orders").await, 0);
    let response = conn
        .send(
            10,
            MetadataRequest::default()
                .with_topics(Some(vec![
                    metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(topic_name("orders"))),
                ]))
                .with_include_topic_authorized_operations(true)
                .with_include_cluster_authorized_operations(true),
        )
        .await;
    // READ=3, CREATE=5, DESCRIBE=8 (implied by READ).
    assert_eq!(
        response.topics[0].topic_authorized_operations,
        (1 << 3) | (1 << 5) | (1 << 8)
    );
    // ALTER=7 and the DESCRIBE=8 it implies.
    assert_eq!(response.cluster_authorized_operations, (1 << 7) | (1 << 8));
    broker.stop().await;
}
