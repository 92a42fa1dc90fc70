//! The HTTP listener against a real broker: after a known workload, `/metrics` parses and its
//! counters match; the metadata quorum shows in `/metrics` and `/api/v1/cluster`; the admin API
//! and the health endpoints answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use strom_broker::{Broker, BrokerConfig};
use strom_client::{Client, ClientConfig, ProducerConfig, ProducerRecord, TopicPartition};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const IO_TIMEOUT: Duration = Duration::from_secs(30);

async fn start() -> (tempfile::TempDir, Broker, String) {
    let dir = tempfile::tempdir().unwrap();
    let props: BTreeMap<String, String> = [
        ("log.dirs".to_string(), dir.path().display().to_string()),
        (
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        ),
    ]
    .into();
    let broker = Broker::start(BrokerConfig::from_properties(props).unwrap())
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap().to_string();
    let state = Arc::clone(broker.state().expect("a broker"));
    tokio::spawn(strom_http::serve(state, listener, std::future::pending()));
    (dir, broker, http)
}

/// A minimal HTTP/1.1 GET: status code and body.
async fn get(address: &str, path: &str) -> (u16, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8(response).unwrap()
    };
    let response = tokio::time::timeout(IO_TIMEOUT, exchange)
        .await
        .expect("HTTP answer in time");
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `name{labels}` -> value, from OpenMetrics text.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Chunked transfer encoding leaves size lines in the body; the metrics parser skips them.
fn metric(metrics: &BTreeMap<String, f64>, key: &str) -> f64 {
    *metrics.get(key).unwrap_or_else(|| {
        panic!(
            "{key} missing from /metrics: {:?}",
            metrics.keys().collect::<Vec<_>>()
        )
    })
}

#[tokio::test]
async fn metrics_match_a_known_workload() {
    let (_dir, broker, http) = start().await;
    let client = Client::connect(ClientConfig::new(broker.local_addr().to_string()))
        .await
        .unwrap();
    client.create_topic("m", 2, 1).await.unwrap();
    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    for i in 0..800 {
        let partition = if i < 500 { 0 } else { 1 };
        let record = ProducerRecord::new("m", format!("value-{i}"))
            .with_key(format!("key-{i}"))
            .with_partition(partition);
        producer.send(record).await.unwrap();
    }
    producer.flush().await.unwrap();
    let commits = client
        .offset_commit(
            "g",
            &[
                (TopicPartition::new("m", 0), 200),
                (TopicPartition::new("m", 1), 300),
            ],
        )
        .await
        .unwrap();
    assert!(commits.iter().all(|(_, r)| r.is_ok()), "{commits:?}");

    let fetched = client
        .fetch(
            &[(TopicPartition::new("m", 0), 0)],
            &strom_client::FetchOptions::default(),
        )
        .await
        .unwrap();
    let read = fetched[0].1.as_ref().unwrap().records.len();
    assert!(read > 0);

    let (status, text) = get(&http, "/metrics").await;
    assert_eq!(status, 200);
    let m = parse(&text);
    assert_eq!(
        metric(&m, r#"strom_topic_records_in_total{topic="m"}"#),
        800.0
    );
    assert!(metric(&m, r#"strom_topic_bytes_in_total{topic="m"}"#) > 800.0 * 10.0);
    assert!(
        metric(&m, r#"strom_topic_bytes_out_total{topic="m"}"#) > 0.0,
        "the fetch was counted"
    );
    assert_eq!(
        metric(&m, r#"strom_log_end_offset{topic="m",partition="0"}"#),
        500.0
    );
    assert_eq!(
        metric(&m, r#"strom_high_watermark{topic="m",partition="1"}"#),
        300.0
    );
    assert!(metric(&m, r#"strom_log_size_bytes{topic="m",partition="0"}"#) > 0.0);
    assert_eq!(
        metric(&m, r#"strom_log_segments{topic="m",partition="0"}"#),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            r#"strom_consumer_group_lag{group="g",topic="m",partition="0"}"#
        ),
        300.0
    );
    assert_eq!(
        metric(
            &m,
            r#"strom_consumer_group_lag{group="g",topic="m",partition="1"}"#
        ),
        0.0
    );
    assert!(metric(&m, r#"strom_requests_total{api="Produce"}"#) >= 1.0);
    assert!(metric(&m, r#"strom_request_latency_seconds_count{api="Produce"}"#) >= 1.0);
    assert_eq!(metric(&m, "strom_under_replicated_partitions"), 0.0);
    assert_eq!(metric(&m, "strom_offline_partitions"), 0.0);
    assert!(metric(&m, "strom_partitions") >= 2.0);
    assert!(
        metric(&m, "strom_connections") >= 1.0,
        "{}",
        text.lines()
            .filter(|l| l.contains("connections"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(metric(&m, "process_resident_memory_bytes") > 1e6);
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );

    let (status, body) = get(&http, "/api/v1/groups/g").await;
    assert_eq!(status, 200);
    let group: serde_json::Value = serde_json::from_str(&body).unwrap();
    let lag: i64 = group["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(lag, 300);

    let (status, body) = get(&http, "/api/v1/topics/m").await;
    assert_eq!(status, 200);
    let topic: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(topic["partitions"].as_array().unwrap().len(), 2);
    assert_eq!(topic["configs"]["cleanup.policy"]["value"], "delete");
    assert_eq!(get(&http, "/api/v1/topics/nope").await.0, 404);
    assert_eq!(get(&http, "/api/v1/groups/nope").await.0, 404);
    let (status, body) = get(&http, "/api/v1/cluster").await;
    assert_eq!(status, 200);
    let cluster: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(cluster["node_id"], 1, "{body}");
    assert_eq!(get(&http, "/health").await.0, 200);
    assert_eq!(get(&http, "/ready").await.0, 200);
    broker.shutdown().await.unwrap();
}

/// The lines of `/metrics` about the metadata quorum, for failure messages.
fn quorum_lines(text: &str) -> String {
    text.lines()
        .filter(|l| {
            [
                "quorum",
                "controller",
                "brokers",
                "metadata",
                "broker_",
                "leaderless",
            ]
            .iter()
            .any(|word| l.contains(word))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn metrics_and_cluster_report_the_metadata_quorum() {
    let (_dir, broker, http) = start().await;

    let (status, text) = get(&http, "/metrics").await;
    assert_eq!(status, 200);
    let m = parse(&text);
    let lines = quorum_lines(&text);
    // A single node is a one-voter quorum: node 1 leads it and is the active controller.
    assert_eq!(metric(&m, "strom_quorum_leader"), 1.0, "{lines}");
    assert_eq!(metric(&m, r#"strom_quorum_role{role="leader"}"#), 1.0);
    assert_eq!(metric(&m, r#"strom_quorum_role{role="follower"}"#), 0.0);
    assert_eq!(metric(&m, r#"strom_quorum_role{role="observer"}"#), 0.0);
    assert!(metric(&m, "strom_quorum_term") >= 1.0, "{lines}");
    let applied = metric(&m, "strom_quorum_applied_index");
    assert!(applied > 0.0, "{lines}");
    assert!(
        metric(&m, "strom_quorum_last_log_index") >= applied,
        "{lines}"
    );
    assert!(metric(&m, "strom_quorum_snapshot_index") >= -1.0);
    assert!(
        !text.contains("strom_quorum_voter_lag{"),
        "a lone voter has no other voters to lag: {lines}"
    );
    assert_eq!(metric(&m, "strom_active_controller"), 1.0);
    assert_eq!(metric(&m, "strom_registered_brokers"), 1.0, "{lines}");
    assert_eq!(metric(&m, "strom_fenced_brokers"), 0.0, "{lines}");
    assert_eq!(metric(&m, "strom_leaderless_partitions"), 0.0);
    assert_eq!(metric(&m, "strom_broker_fenced"), 0.0);
    assert!(metric(&m, "strom_broker_epoch") >= 0.0, "{lines}");
    assert!(
        metric(&m, "strom_metadata_applied_entries_total") > 0.0,
        "{lines}"
    );
    assert!(
        metric(&m, "strom_metadata_applied_records_total") > 0.0,
        "{lines}"
    );
    assert!(metric(&m, "strom_metadata_apply_seconds_total") >= 0.0);
    assert!(metric(&m, "strom_metadata_last_apply_seconds") >= 0.0);
    assert!(text.contains("# TYPE strom_metadata_apply_seconds counter"));
    assert!(text.contains("# TYPE strom_quorum_role gauge"));

    let (status, body) = get(&http, "/api/v1/cluster").await;
    assert_eq!(status, 200);
    let cluster: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(cluster["node_id"], 1, "{body}");
    assert_eq!(cluster["controller_id"], 1, "{body}");
    assert_eq!(cluster["quorum"]["role"], "leader", "{body}");
    assert_eq!(cluster["quorum"]["leader_id"], 1, "{body}");
    assert!(cluster["quorum"]["term"].as_u64().unwrap() >= 1, "{body}");
    assert!(
        cluster["quorum"]["applied_index"].as_u64().unwrap() > 0,
        "{body}"
    );
    let brokers = cluster["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1, "{body}");
    assert_eq!(brokers[0]["id"], 1);
    assert_eq!(brokers[0]["fenced"], false, "{body}");
    broker.shutdown().await.unwrap();
}
