//! ACLs through the Kafka protocol: CreateAcls, DescribeAcls with filters, DeleteAcls, and
//! ACLs that survive a restart.

use crate::common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const ANY: i8 = 1;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

/// The ACL APIs need an authorizer; the test client (`User:ANONYMOUS`) is a super user.
const AUTHORIZER: &[(&str, &str)] = &[
    (
        "authorizer.class.name",
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    ),
    ("super.users", "User:ANONYMOUS"),
];

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn creation(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    op: i8,
    permission: i8,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(op)
        .with_permission_type(permission)
}

async fn create(conn: &mut Conn, creations: Vec<AclCreation>) -> Vec<i16> {
    let response = conn
        .send(3, CreateAclsRequest::default().with_creations(creations))
        .await;
    response.results.iter().map(|r| r.error_code).collect()
}

/// The filter (type, name, pattern type, principal) with ANY operation and permission.
fn filter(
    resource_type: i8,
    name: Option<&str>,
    pattern: i8,
    principal: Option<&str>,
) -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(resource_type)
        .with_resource_name_filter(name.map(s))
        .with_pattern_type_filter(pattern)
        .with_principal_filter(principal.map(s))
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY)
}

/// (resource name, pattern type, principal, operation, permission) of every described ACL.
async fn describe(
    conn: &mut Conn,
    request: DescribeAclsRequest,
) -> Vec<(String, i8, String, i8, i8)> {
    let response = conn.send(3, request).await;
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    let mut out = Vec::new();
    for resource in &response.resources {
        for acl in &resource.acls {
            out.push((
                resource.resource_name.to_string(),
                resource.pattern_type,
                acl.principal.to_string(),
                acl.operation,
                acl.permission_type,
            ));
        }
    }
    out.sort();
    out
}

fn as_delete(f: DescribeAclsRequest) -> DeleteAclsFilter {
    DeleteAclsFilter::default()
        .with_resource_type_filter(f.resource_type_filter)
        .with_resource_name_filter(f.resource_name_filter)
        .with_pattern_type_filter(f.pattern_type_filter)
        .with_principal_filter(f.principal_filter)
        .with_host_filter(f.host_filter)
        .with_operation(f.operation)
        .with_permission_type(f.permission_type)
}

#[tokio::test]
async fn acls_are_created_described_with_filters_and_deleted() {
    let broker = TestBroker::start_with(AUTHORIZER).await;
    let mut conn = broker.connect().await;
    let codes = create(
        &mut conn,
        vec![
            creation(TOPIC, "orders", LITERAL, "User:alice", READ, ALLOW),
            creation(TOPIC, "ord", PREFIXED, "User:bob", WRITE, ALLOW),
            creation(TOPIC, "*", LITERAL, "User:*", READ, DENY),
            creation(GROUP, "g", LITERAL, "User:alice", READ, ALLOW),
            creation(TOPIC, "orders", LITERAL, "User:alice", READ, ALLOW),
        ],
    )
    .await;
    assert_eq!(
        codes, [0; 5],
        "a repeated ACL is created once, successfully"
    );

    let all = describe(&mut conn, filter(ANY, None, ANY, None)).await;
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(
        describe(&mut conn, filter(TOPIC, Some("orders"), MATCH, None)).await,
        [
            ("*".into(), LITERAL, "User:*".into(), READ, DENY),
            ("ord".into(), PREFIXED, "User:bob".into(), WRITE, ALLOW),
            ("orders".into(), LITERAL, "User:alice".into(), READ, ALLOW),
        ]
    );
    assert_eq!(
        describe(&mut conn, filter(TOPIC, Some("orders"), ANY, None)).await,
        [("orders".into(), LITERAL, "User:alice".into(), READ, ALLOW)]
    );
    assert_eq!(
        describe(&mut conn, filter(ANY, None, ANY, Some("User:alice")))
            .await
            .len(),
        2
    );
    assert_eq!(
        describe(&mut conn, filter(ANY, None, PREFIXED, None))
            .await
            .len(),
        1
    );

    let response = conn
        .send(
            3,
            DeleteAclsRequest::default().with_filters(vec![
                as_delete(filter(ANY, None, ANY, Some("User:alice"))),
                as_delete(filter(GROUP, None, ANY, None)),
                as_delete(filter(0, None, ANY, None)),
            ]),
        )
        .await;
    let results: Vec<(i16, usize)> = response
        .filter_results
        .iter()
        .map(|r| (r.error_code, r.matching_acls.len()))
        .collect();
    assert_eq!(
        results,
        [(0, 2), (0, 1), (ResponseError::InvalidRequest.code(), 0)]
    );
    assert_eq!(
        describe(&mut conn, filter(ANY, None, ANY, None))
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn invalid_acls_and_filters_are_invalid_requests() {
    let broker = TestBroker::start_with(AUTHORIZER).await;
    let mut conn = broker.connect().await;
    let invalid = ResponseError::InvalidRequest.code();
    let codes = create(
        &mut conn,
        vec![
            creation(ANY, "t", LITERAL, "User:a", READ, ALLOW),
            creation(TOPIC, "t", MATCH, "User:a", READ, ALLOW),
            creation(TOPIC, "t", LITERAL, "User:a", ANY, ALLOW),
            creation(TOPIC, "t", LITERAL, "User:a", READ, ANY),
            creation(TOPIC, "", LITERAL, "User:a", READ, ALLOW),
            creation(TOPIC, "t", LITERAL, "alice", READ, ALLOW),
            creation(CLUSTER, "my-cluster", LITERAL, "User:a", READ, ALLOW),
            creation(CLUSTER, "kafka-cluster", LITERAL, "User:a", READ, ALLOW),
        ],
    )
    .await;
    assert_eq!(
        codes,
        [
            invalid, invalid, invalid, invalid, invalid, invalid, invalid, 0
        ]
    );
    let response = conn.send(3, filter(0, None, ANY, None)).await;
    assert_eq!(response.error_code, invalid);
}

#[tokio::test]
async fn acls_survive_a_restart() {
    let broker = TestBroker::start_with(AUTHORIZER).await;
    let mut conn = broker.connect().await;
    let codes = create(
        &mut conn,
        vec![creation(TOPIC, "kept", PREFIXED, "User:alice", READ, ALLOW)],
    )
    .await;
    assert_eq!(codes, [0]);
    drop(conn);
    let broker = broker.restart().await;
    let mut conn = broker.connect().await;
    assert_eq!(
        describe(&mut conn, filter(ANY, None, ANY, None)).await,
        [("kept".into(), PREFIXED, "User:alice".into(), READ, ALLOW)]
    );
    let image = broker.broker.as_ref().unwrap().state().unwrap().image();
    let acl = strom_cluster::acl::AclOperation::Read;
    let topic = strom_cluster::acl::ResourceType::Topic;
    assert!(strom_cluster::acl::authorize(
        &image.acls,
        "User:alice",
        "127.0.0.1",
        acl,
        topic,
        "kept-1",
        &[],
        false
    ));
}

#[tokio::test]
async fn acl_apis_answer_security_disabled_without_an_authorizer() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let codes = create(
        &mut conn,
        vec![creation(TOPIC, "t", LITERAL, "User:alice", READ, ALLOW)],
    )
    .await;
    assert_eq!(codes, vec![ResponseError::SecurityDisabled.code()]);
    let described = conn.send(3, filter(TOPIC, None, ANY, None)).await;
    assert_eq!(described.error_code, ResponseError::SecurityDisabled.code());
    let deleted = conn
        .send(
            3,
            DeleteAclsRequest::default().with_filters(vec![
                DeleteAclsFilter::default()
                    .with_resource_type_filter(ANY)
                    .with_pattern_type_filter(ANY)
                    .with_operation(ANY)
                    .with_permission_type(ANY),
            ]),
        )
        .await;
    assert_eq!(
        deleted.filter_results[0].error_code,
        ResponseError::SecurityDisabled.code()
    );
    broker.stop().await;
}
