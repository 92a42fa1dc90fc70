//! Several nodes in one process, on loopback ports bound up front: the metadata quorum forms,
//! brokers register and are unfenced, topics spread over the brokers, a stopped node is
//! fenced and comes back, a far-behind node catches up from a snapshot, and nodes with only
//! one role (broker or controller) work together. Killing processes (SIGKILL) is tested with
//! real processes in `tests/clients/test_cluster.py`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use strom_broker::{Broker, BrokerConfig, NodeListeners};
use strom_client::{
    Client, ClientConfig, FetchOptions, ProducerConfig, ProducerRecord, TopicPartition,
};
use strom_cluster::{BrokerId, MetadataImage};
use tokio::net::TcpListener;

/// Every wait in these tests is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(60);

struct Node {
    id: i32,
    dir: PathBuf,
    broker_port: Option<u16>,
    controller_port: Option<u16>,
    properties: BTreeMap<String, String>,
    broker: Option<Broker>,
}

impl Node {
    fn image(&self) -> Arc<MetadataImage> {
        self.broker.as_ref().expect("running").quorum().image()
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.broker_port.expect("a broker"))
    }

    async fn start(&mut self) {
        let broker = bind(self.broker_port).await;
        let controller = bind(self.controller_port).await;
        let config = BrokerConfig::from_properties(self.properties.clone()).expect("valid config");
        let node = Broker::start_with(config, NodeListeners { broker, controller })
            .await
            .expect("node starts");
        self.broker = Some(node);
    }

    async fn stop(&mut self) {
        if let Some(broker) = self.broker.take() {
            broker.shutdown().await.expect("clean shutdown");
        }
    }
}

async fn bind(port: Option<u16>) -> Option<TcpListener> {
    let port = port?;
    Some(TcpListener::bind(("127.0.0.1", port)).await.expect("bind"))
}

async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Roles per node: "broker,controller", "broker" or "controller".
async fn cluster(dir: &tempfile::TempDir, roles: &[&str], extra: &[(&str, &str)]) -> Vec<Node> {
    let mut nodes = Vec::new();
    for (i, role) in roles.iter().enumerate() {
        let id = i as i32 + 1;
        nodes.push(Node {
            id,
            dir: dir.path().join(format!("node-{id}")),
            broker_port: if role.contains("broker") {
                Some(free_port().await)
            } else {
                None
            },
            controller_port: if role.contains("controller") {
                Some(free_port().await)
            } else {
                None
            },
            properties: BTreeMap::new(),
            broker: None,
        });
    }
    let voters: Vec<String> = nodes
        .iter()
        .filter_map(|n| Some(format!("{}@127.0.0.1:{}", n.id, n.controller_port?)))
        .collect();
    for (node, role) in nodes.iter_mut().zip(roles) {
        let mut listeners = Vec::new();
        if let Some(p) = node.broker_port {
            listeners.push(format!("PLAINTEXT://127.0.0.1:{p}"));
        }
        if let Some(p) = node.controller_port {
            listeners.push(format!("CONTROLLER://127.0.0.1:{p}"));
        }
        let mut props: BTreeMap<String, String> = [
            ("node.id", node.id.to_string()),
            ("process.roles", role.to_string()),
            ("listeners", listeners.join(",")),
            ("controller.quorum.voters", voters.join(",")),
            ("log.dirs", node.dir.display().to_string()),
            ("broker.heartbeat.interval.ms", "100".into()),
            ("broker.session.timeout.ms", "1500".into()),
            ("controller.quorum.election.timeout.ms", "500".into()),
            ("num.partitions", "1".into()),
            ("log.segment.delete.delay.ms", "0".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            props.insert(k.to_string(), v.to_string());
        }
        node.properties = props;
    }
    // The quorum needs a majority of voters: start them together.
    let starts = nodes.iter_mut().map(|n| n.start());
    tokio::time::timeout(TIMEOUT, futures::future::join_all(starts))
        .await
        .expect("the cluster starts in time");
    nodes
}

/// Waits until `node`'s image satisfies `done`.
async fn wait_for(
    node: &Node,
    what: &str,
    done: impl Fn(&MetadataImage) -> bool,
) -> Arc<MetadataImage> {
    node.broker
        .as_ref()
        .expect("running")
        .quorum()
        .wait_for_image(TIMEOUT, done)
        .await
        .unwrap_or_else(|_| panic!("node {}: {what} did not happen in time", node.id))
}

async fn client(node: &Node) -> Client {
    Client::connect(ClientConfig::new(node.bootstrap()))
        .await
        .expect("client connects")
}

fn leaders(image: &MetadataImage, topic: &str) -> BTreeMap<BrokerId, usize> {
    let mut count = BTreeMap::new();
    for p in image.topic(topic).expect("topic").partitions.values() {
        *count.entry(p.leader).or_insert(0) += 1;
    }
    count
}

/// Produces one record to every partition of `topic` and reads each back.
async fn produce_and_consume_every_partition(
    client: &Client,
    topic: &str,
    partitions: i32,
    tag: &str,
) {
    let producer = client
        .producer(ProducerConfig::default())
        .await
        .expect("producer");
    for p in 0..partitions {
        let record = ProducerRecord::new(topic, format!("{tag}-{p}")).with_partition(p);
        let sent = tokio::time::timeout(TIMEOUT, producer.send_and_wait(record))
            .await
            .expect("produce in time")
            .expect("produce");
        let positions = [(TopicPartition::new(topic, p), sent.offset)];
        let fetched = client
            .fetch(&positions, &FetchOptions::default())
            .await
            .expect("fetch");
        let records = fetched[0].1.as_ref().expect("partition fetched");
        assert_eq!(
            records
                .records
                .first()
                .and_then(|r| r.value.clone())
                .as_deref(),
            Some(format!("{tag}-{p}").as_bytes()),
            "{topic}-{p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_form_a_quorum_and_spread_partition_leaders_evenly() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&dir, &["broker,controller"; 3], &[]).await;
    let image = wait_for(&nodes[0], "three unfenced brokers", |i| {
        i.unfenced_brokers().count() == 3
    })
    .await;
    assert!(image.cluster_id.is_some());
    let cluster_ids: Vec<_> = nodes.iter().map(|n| n.image().cluster_id.clone()).collect();
    assert!(
        cluster_ids.windows(2).all(|w| w[0] == w[1]),
        "one cluster: {cluster_ids:?}"
    );

    // Admin requests work on any broker: create through the third.
    let admin = client(&nodes[2]).await;
    admin.create_topic("spread", 6, 1).await.expect("create");
    let image = wait_for(&nodes[0], "the topic", |i| i.topic("spread").is_some()).await;
    let counts = leaders(&image, "spread");
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(
        counts.values().all(|c| *c == 2),
        "6 partitions on 3 brokers = 2 leaders each: {counts:?}"
    );

    // Every broker answers Metadata with every broker, and produce/consume reach every leader.
    for node in &nodes {
        let c = client(node).await;
        let metadata = c
            .refresh_metadata(Some(&["spread"]))
            .await
            .expect("metadata");
        assert_eq!(metadata.brokers.len(), 3);
        produce_and_consume_every_partition(&c, "spread", 6, &format!("via-{}", node.id)).await;
    }

    // Replication is the next step: more than one replica is refused, not faked.
    let refused = admin.create_topic("replicated", 1, 3).await;
    assert!(
        format!("{refused:?}").contains("INVALID_REPLICATION_FACTOR"),
        "{refused:?}"
    );

    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_node_is_fenced_and_comes_back_with_its_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&dir, &["broker,controller"; 3], &[]).await;
    wait_for(&nodes[0], "three unfenced brokers", |i| {
        i.unfenced_brokers().count() == 3
    })
    .await;
    let admin = client(&nodes[0]).await;
    admin.create_topic("before", 3, 1).await.expect("create");
    let image = wait_for(&nodes[0], "the topic", |i| i.topic("before").is_some()).await;
    let (&victim_partition, victim_image) = image
        .topic("before")
        .unwrap()
        .partitions
        .iter()
        .find(|(_, p)| p.leader == BrokerId(2))
        .expect("node 2 leads a partition");
    let epoch_before = victim_image.leader_epoch;

    // Node 2 stops: it is fenced and leads nothing (its partitions have one replica, so they
    // are offline until it returns).
    nodes[1].stop().await;
    let image = wait_for(&nodes[0], "node 2 fenced", |i| !i.is_unfenced(BrokerId(2))).await;
    assert!(
        image
            .partition("before", victim_partition)
            .unwrap()
            .leader
            .is_none()
    );

    // Topics can still be created, on the live brokers only.
    admin
        .create_topic("during", 4, 1)
        .await
        .expect("create while a node is down");
    let image = wait_for(&nodes[2], "the new topic", |i| i.topic("during").is_some()).await;
    assert!(
        image
            .topic("during")
            .unwrap()
            .partitions
            .values()
            .all(|p| p.leader != BrokerId(2))
    );
    produce_and_consume_every_partition(&admin, "during", 4, "during").await;

    // It comes back, catches up, is unfenced and leads its partition again, at a later epoch.
    nodes[1].start().await;
    let image = wait_for(&nodes[0], "node 2 back as leader", |i| {
        i.is_unfenced(BrokerId(2))
            && i.partition("before", victim_partition)
                .is_some_and(|p| p.leader == BrokerId(2))
    })
    .await;
    assert!(
        image
            .partition("before", victim_partition)
            .unwrap()
            .leader_epoch
            > epoch_before
    );
    let back = client(&nodes[1]).await;
    produce_and_consume_every_partition(&back, "before", 3, "after").await;
    assert!(
        nodes[1].image().topic("during").is_some(),
        "it caught up with what it missed"
    );

    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_missed_purged_entries_catches_up_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    // Snapshot after every few hundred bytes and keep no log behind a snapshot.
    let extra = [
        ("metadata.log.max.record.bytes.between.snapshots", "200"),
        ("metadata.max.retention.bytes", "0"),
    ];
    let mut nodes = cluster(&dir, &["broker,controller"; 3], &extra).await;
    wait_for(&nodes[0], "three unfenced brokers", |i| {
        i.unfenced_brokers().count() == 3
    })
    .await;
    let behind = nodes[2]
        .broker
        .as_ref()
        .unwrap()
        .quorum()
        .status()
        .last_log_index;
    nodes[2].stop().await;
    let admin = client(&nodes[0]).await;
    for i in 0..10 {
        admin
            .create_topic(&format!("missed-{i}"), 1, 1)
            .await
            .expect("create");
    }
    // Wait until the leader has deleted entries node 3 does not have: it can then only catch
    // up from a snapshot.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let purged = nodes[..2]
            .iter()
            .map(|n| n.broker.as_ref().unwrap().quorum().status())
            .find(|s| s.role == "leader")
            .and_then(|s| s.purged_index);
        if purged.is_some_and(|p| p > behind) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the leader did not purge its log"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nodes[2].start().await;
    wait_for(&nodes[2], "the topics it missed", |i| {
        (0..10).all(|n| i.topic(&format!("missed-{n}")).is_some())
    })
    .await;
    wait_for(&nodes[0], "node 3 unfenced", |i| i.is_unfenced(BrokerId(3))).await;
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_only_node_follows_a_controller_only_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&dir, &["controller", "broker"], &[]).await;
    assert!(
        nodes[0].broker.as_ref().unwrap().state().is_none(),
        "a controller serves no clients"
    );
    let image = wait_for(&nodes[1], "the broker unfenced", |i| {
        i.is_unfenced(BrokerId(2))
    })
    .await;
    assert_eq!(image.brokers.len(), 1, "the controller is not a broker");
    let c = client(&nodes[1]).await;
    c.create_topic("observed", 2, 1)
        .await
        .expect("create via the broker");
    wait_for(&nodes[1], "the topic", |i| i.topic("observed").is_some()).await;
    produce_and_consume_every_partition(&c, "observed", 2, "observer").await;
    let quorum = c
        .describe_quorum()
        .await
        .expect("describe quorum")
        .expect("a quorum");
    assert_eq!(quorum.leader_id, 1);
    assert_eq!(quorum.voters.len(), 1);
    assert!(
        quorum.observers.iter().any(|o| o.replica_id == 2),
        "{quorum:?}"
    );
    for node in nodes.iter_mut().rev() {
        node.stop().await;
    }
}
