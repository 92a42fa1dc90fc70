//! Strom's own client over secured listeners: SASL_SSL with SCRAM and PLAIN against one
//! broker (produce, fetch, a wrong password refused with the broker's message), and a
//! three-node cluster whose brokers replicate over their SASL_SSL inter-broker listener.

mod cluster_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cluster_support::{TIMEOUT, cluster_on, node_of, wait_for};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use strom_broker::{Broker, BrokerConfig};
use strom_client::{
    Acks, Client, ClientConfig, ClientSecurity, Error, FetchOptions, ProducerConfig,
    ProducerRecord, TopicPartition,
};

/// Writes a throwaway CA (`ca.pem`) and a certificate for 127.0.0.1 and localhost signed by
/// it, with its key (`broker.pem`, key and chain in one PEM file: a Kafka PEM key store).
fn write_certificates(dir: &Path) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "strom-test-ca");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("broker key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("broker params");
    params
        .distinguished_name
        .push(DnType::CommonName, "strom-test-broker");
    let cert = params.signed_by(&key, &issuer).expect("broker certificate");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(
        dir.join("broker.pem"),
        format!("{}{}", key.serialize_pem(), cert.pem()),
    )
    .unwrap();
}

const PLAIN_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-pw" user_broker="broker-pw" user_bob="bob-pw";"#;

/// A SASL_SSL listener's properties: PLAIN (users bob and broker) and SCRAM-SHA-256.
fn sasl_ssl_properties(dir: &Path) -> Vec<(String, String)> {
    [
        ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256"),
        ("listener.name.sasl_ssl.plain.sasl.jaas.config", PLAIN_JAAS),
        ("ssl.keystore.type", "PEM"),
        ("ssl.truststore.type", "PEM"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain([
        (
            "ssl.keystore.location".to_owned(),
            dir.join("broker.pem").display().to_string(),
        ),
        (
            "ssl.truststore.location".to_owned(),
            dir.join("ca.pem").display().to_string(),
        ),
    ])
    .collect()
}

/// Client security from Kafka client properties, trusting the test CA.
fn security(dir: &Path, mechanism: &str, user: &str, password: &str) -> Arc<ClientSecurity> {
    let module = if mechanism == "PLAIN" {
        "org.apache.kafka.common.security.plain.PlainLoginModule"
    } else {
        "org.apache.kafka.common.security.scram.ScramLoginModule"
    };
    let properties: BTreeMap<String, String> = [
        ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
        ("sasl.mechanism".to_owned(), mechanism.to_owned()),
        (
            "sasl.jaas.config".to_owned(),
            format!(r#"{module} required username="{user}" password="{password}";"#),
        ),
        (
            "ssl.truststore.location".to_owned(),
            dir.join("ca.pem").display().to_string(),
        ),
    ]
    .into_iter()
    .collect();
    Arc::new(ClientSecurity::from_properties(&properties).expect("client properties"))
}

async fn secured_client(
    bootstrap: &str,
    security: Arc<ClientSecurity>,
) -> strom_client::Result<Client> {
    Client::connect(ClientConfig {
        security: Some(security),
        request_timeout: Duration::from_secs(20),
        ..ClientConfig::new(bootstrap)
    })
    .await
}

/// Produces `count` records with acks=all and reads them back from offset 0.
async fn produce_and_fetch(client: &Client, topic: &str, count: usize) -> Vec<String> {
    let producer = client
        .producer(ProducerConfig {
            acks: Acks::All,
            ..ProducerConfig::default()
        })
        .await
        .expect("producer");
    for i in 0..count {
        let record = ProducerRecord::new(topic, format!("{topic}-{i}")).with_partition(0);
        tokio::time::timeout(TIMEOUT, producer.send_and_wait(record))
            .await
            .expect("produce in time")
            .expect("produce");
    }
    let positions = [(TopicPartition::new(topic, 0), 0)];
    let fetched = client
        .fetch(&positions, &FetchOptions::default())
        .await
        .expect("fetch");
    let records = fetched[0].1.as_ref().expect("partition fetched");
    records
        .records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_produces_and_fetches_over_sasl_ssl_with_scram_and_plain() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    write_certificates(dir);
    let mut properties: BTreeMap<String, String> = sasl_ssl_properties(dir).into_iter().collect();
    properties.insert("listeners".into(), "SASL_SSL://127.0.0.1:0".into());
    properties.insert("log.dirs".into(), dir.join("data").display().to_string());
    let mut config = BrokerConfig::from_properties(properties).expect("valid config");
    config.bootstrap_records.push(
        strom_security::bootstrap::parse_add_scram("SCRAM-SHA-256=[name=alice,password=pw]")
            .expect("SCRAM user"),
    );
    let broker = Broker::start(config).await.expect("broker starts");
    let bootstrap = format!("127.0.0.1:{}", broker.local_addr().port());

    let alice = secured_client(&bootstrap, security(dir, "SCRAM-SHA-256", "alice", "pw"))
        .await
        .expect("alice authenticates with SCRAM");
    alice.create_topic("scram", 1, 1).await.expect("create");
    let values = produce_and_fetch(&alice, "scram", 3).await;
    assert_eq!(values, ["scram-0", "scram-1", "scram-2"]);

    let bob = secured_client(&bootstrap, security(dir, "PLAIN", "bob", "bob-pw"))
        .await
        .expect("bob authenticates with PLAIN");
    bob.create_topic("plain", 1, 1).await.expect("create");
    let values = produce_and_fetch(&bob, "plain", 2).await;
    assert_eq!(values, ["plain-0", "plain-1"]);

    for (mechanism, user) in [("SCRAM-SHA-256", "alice"), ("PLAIN", "bob")] {
        let error = secured_client(&bootstrap, security(dir, mechanism, user, "wrong"))
            .await
            .expect_err("a wrong password is refused");
        assert!(matches!(error, Error::Authentication(_)), "{error}");
        assert!(error.to_string().contains(user), "{error}");
        assert!(
            error.to_string().contains("SASL_AUTHENTICATION_FAILED"),
            "{error}"
        );
    }

    // A mechanism the listener does not offer names the ones it does.
    let error = secured_client(&bootstrap, security(dir, "SCRAM-SHA-512", "alice", "pw"))
        .await
        .expect_err("SCRAM-SHA-512 is not enabled");
    assert!(matches!(error, Error::Authentication(_)), "{error}");
    assert!(error.to_string().contains("PLAIN"), "{error}");

    // Without TLS the broker's TLS listener is unreachable; without trusting its CA too.
    let untrusted: BTreeMap<String, String> = [
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "PLAIN"),
        ("sasl.username", "bob"),
        ("sasl.password", "bob-pw"),
        ("ssl.truststore.certificates", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let untrusted = Arc::new(ClientSecurity::from_properties(&untrusted).unwrap());
    let error = secured_client(&bootstrap, untrusted)
        .await
        .expect_err("an unknown CA is refused");
    assert!(
        error.to_string().contains("TLS handshake failed"),
        "{error}"
    );

    broker.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn brokers_replicate_over_a_sasl_ssl_inter_broker_listener() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    write_certificates(dir);
    let mut extra = sasl_ssl_properties(dir);
    extra.push((
        "sasl.mechanism.inter.broker.protocol".to_owned(),
        "PLAIN".to_owned(),
    ));
    extra.push(("replica.lag.time.max.ms".to_owned(), "2000".to_owned()));
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut nodes = cluster_on(&temp, &["broker,controller"; 3], &extra, "SASL_SSL").await;
    wait_for(&nodes[0], "three brokers", |i| {
        i.unfenced_brokers().count() == 3
    })
    .await;
    let bootstrap = nodes[0].bootstrap();
    let client = secured_client(&bootstrap, security(dir, "PLAIN", "bob", "bob-pw"))
        .await
        .expect("client connects");
    client
        .create_topic("secured", 1, 3)
        .await
        .expect("create RF=3");
    let image = wait_for(&nodes[0], "the topic", |i| i.topic("secured").is_some()).await;
    let p = image.partition("secured", 0).unwrap().clone();
    assert_eq!(p.replicas.len(), 3);
    let leader = p.leader;

    // acks=all succeeds only when the followers fetched the records over SASL_SSL.
    let values = produce_and_fetch(&client, "secured", 5).await;
    assert_eq!(values.len(), 5);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let ends: Vec<i64> = nodes
            .iter()
            .filter_map(|n| n.partition("secured", 0))
            .map(|p| p.log.log_end_offset())
            .collect();
        let image = nodes[0].image();
        let isr = image
            .partition("secured", 0)
            .unwrap()
            .in_sync_replicas
            .len();
        if ends == [5, 5, 5] && isr == 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "followers not in sync: log ends {ends:?}, ISR size {isr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        node_of(&nodes, leader)
            .partition("secured", 0)
            .unwrap()
            .high_watermark()
            .0,
        5
    );
    for node in &mut nodes {
        node.stop().await;
    }
}
