//! SCRAM users through the Kafka protocol: AlterUserScramCredentials and
//! DescribeUserScramCredentials against a real broker, Kafka's error codes, and credentials
//! that survive a restart.

use crate::common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom_cluster::{ScramCredential, ScramMechanism};

const SHA256: i8 = 1;
const SHA512: i8 = 2;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn upsertion(
    user: &str,
    mechanism: i8,
    iterations: i32,
    password: &str,
) -> ScramCredentialUpsertion {
    let salt = format!("salt-of-{user}").into_bytes();
    let salted = ScramMechanism::from_code(mechanism)
        .map(|m| m.salted_password(password.as_bytes(), &salt, iterations.max(1) as u32))
        .unwrap_or_else(|| vec![1; 32]);
    ScramCredentialUpsertion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(salt.into())
        .with_salted_password(salted.into())
}

fn deletion(user: &str, mechanism: i8) -> ScramCredentialDeletion {
    ScramCredentialDeletion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
}

async fn alter(
    conn: &mut Conn,
    deletions: Vec<ScramCredentialDeletion>,
    upsertions: Vec<ScramCredentialUpsertion>,
) -> Vec<(String, i16)> {
    let response = conn
        .send(
            0,
            AlterUserScramCredentialsRequest::default()
                .with_deletions(deletions)
                .with_upsertions(upsertions),
        )
        .await;
    let mut results: Vec<(String, i16)> = response
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    results.sort();
    results
}

/// Per user: its error code and its (mechanism, iterations).
async fn describe(conn: &mut Conn, users: Option<&[&str]>) -> Vec<(String, i16, Vec<(i8, i32)>)> {
    let request = DescribeUserScramCredentialsRequest::default().with_users(users.map(|u| {
        u.iter()
            .map(|n| UserName::default().with_name(s(n)))
            .collect()
    }));
    let response = conn.send(0, request).await;
    assert_eq!(response.error_code, 0);
    response
        .results
        .iter()
        .map(|r| {
            let infos = r
                .credential_infos
                .iter()
                .map(|c| (c.mechanism, c.iterations))
                .collect();
            (r.user.to_string(), r.error_code, infos)
        })
        .collect()
}

#[tokio::test]
async fn users_are_created_described_and_deleted() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    assert!(describe(&mut conn, None).await.is_empty(), "no users yet");

    let results = alter(
        &mut conn,
        vec![],
        vec![
            upsertion("alice", SHA256, 4096, "alice-secret"),
            upsertion("bob", SHA512, 8192, "bob-secret"),
        ],
    )
    .await;
    assert_eq!(results, [("alice".into(), 0), ("bob".into(), 0)]);
    let results = alter(
        &mut conn,
        vec![],
        vec![upsertion("alice", SHA512, 10000, "x")],
    )
    .await;
    assert_eq!(results, [("alice".into(), 0)]);

    assert_eq!(
        describe(&mut conn, None).await,
        [
            ("alice".into(), 0, vec![(SHA256, 4096), (SHA512, 10000)]),
            ("bob".into(), 0, vec![(SHA512, 8192)]),
        ]
    );
    assert_eq!(
        describe(&mut conn, Some(&[])).await.len(),
        2,
        "an empty list is every user"
    );

    // The image holds keys derived from the password, which a SASL exchange can check.
    let image = broker.broker.as_ref().unwrap().state().unwrap().image();
    let stored = image
        .scram_credential("alice", ScramMechanism::Sha256)
        .expect("stored");
    let derived = ScramCredential::from_password(
        ScramMechanism::Sha256,
        "alice-secret",
        stored.salt.clone(),
        4096,
    );
    assert_eq!(*stored, derived);

    let results = alter(&mut conn, vec![deletion("alice", SHA256)], vec![]).await;
    assert_eq!(results, [("alice".into(), 0)]);
    assert_eq!(
        describe(&mut conn, Some(&["alice"])).await,
        [("alice".into(), 0, vec![(SHA512, 10000)])]
    );
    let results = alter(&mut conn, vec![deletion("alice", SHA512)], vec![]).await;
    assert_eq!(results, [("alice".into(), 0)]);
    let not_found = ResponseError::ResourceNotFound.code();
    assert_eq!(
        describe(&mut conn, Some(&["alice", "bob"])).await,
        [
            ("alice".into(), not_found, vec![]),
            ("bob".into(), 0, vec![(SHA512, 8192)]),
        ]
    );
}

#[tokio::test]
async fn invalid_alterations_get_kafkas_error_codes() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let unacceptable = ResponseError::UnacceptableCredential.code();
    let mut empty_salt = upsertion("erin", SHA256, 4096, "pw");
    empty_salt.salt = Default::default();
    let results = alter(
        &mut conn,
        vec![deletion("ghost", SHA256), deletion("dave", SHA256)],
        vec![
            upsertion("", SHA256, 4096, "pw"),
            upsertion("carol", 9, 4096, "pw"),
            upsertion("few", SHA256, 1024, "pw"),
            upsertion("many", SHA256, 20000, "pw"),
            upsertion("dave", SHA512, 4096, "pw"),
            empty_salt,
            upsertion("ok", SHA256, 4096, "pw"),
        ],
    )
    .await;
    assert_eq!(
        results,
        [
            ("".into(), unacceptable),
            (
                "carol".into(),
                ResponseError::UnsupportedSaslMechanism.code()
            ),
            ("dave".into(), ResponseError::ResourceNotFound.code()),
            ("erin".into(), unacceptable),
            ("few".into(), unacceptable),
            ("ghost".into(), ResponseError::ResourceNotFound.code()),
            ("many".into(), unacceptable),
            ("ok".into(), 0),
        ]
    );
    let results = alter(
        &mut conn,
        vec![],
        vec![
            upsertion("twice", SHA256, 4096, "a"),
            upsertion("twice", SHA512, 4096, "b"),
        ],
    )
    .await;
    assert_eq!(
        results,
        [("twice".into(), ResponseError::DuplicateResource.code())]
    );
    assert_eq!(
        describe(&mut conn, Some(&["ok", "ok", "twice"])).await,
        [
            ("ok".into(), ResponseError::DuplicateResource.code(), vec![]),
            (
                "twice".into(),
                ResponseError::ResourceNotFound.code(),
                vec![]
            ),
        ]
    );
}

#[tokio::test]
async fn users_survive_a_restart() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let results = alter(
        &mut conn,
        vec![],
        vec![upsertion("kept", SHA512, 5000, "pw")],
    )
    .await;
    assert_eq!(results, [("kept".into(), 0)]);
    drop(conn);
    let broker = broker.restart().await;
    let mut conn = broker.connect().await;
    assert_eq!(
        describe(&mut conn, None).await,
        [("kept".into(), 0, vec![(SHA512, 5000)])]
    );
}
