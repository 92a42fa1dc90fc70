//! Test support: a cluster of nodes in one process, on loopback ports bound up front, with
//! helpers to wait on the metadata and to reach a node with a client.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use strom_broker::partition::Partition;
use strom_broker::{Broker, BrokerConfig, NodeListeners};
use strom_client::{Client, ClientConfig, TopicPartition};
use strom_cluster::{BrokerId, MetadataImage};
use tokio::net::TcpListener;

/// Every wait in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Node {
    pub id: i32,
    pub dir: PathBuf,
    pub broker_port: Option<u16>,
    pub controller_port: Option<u16>,
    pub properties: BTreeMap<String, String>,
    pub broker: Option<Broker>,
    /// The listeners bound when the cluster was laid out, handed to the first start so that no
    /// other socket (another test's client, say) can take a port in between. Restarts bind the
    /// same ports again.
    reserved: (Option<TcpListener>, Option<TcpListener>),
}

impl Node {
    pub fn image(&self) -> Arc<MetadataImage> {
        self.broker.as_ref().expect("running").quorum().image()
    }

    /// The partition as this node hosts it, if it does.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let state = self.broker.as_ref()?.state()?;
        state.partition(&strom_log::TopicPartition {
            topic: topic.to_string(),
            partition,
        })
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.broker_port.expect("a broker"))
    }

    pub async fn start(&mut self) {
        let broker = match self.reserved.0.take() {
            Some(listener) => Some(listener),
            None => bind(self.broker_port).await,
        };
        let controller = match self.reserved.1.take() {
            Some(listener) => Some(listener),
            None => bind(self.controller_port).await,
        };
        let config = BrokerConfig::from_properties(self.properties.clone()).expect("valid config");
        let node = Broker::start_with(config, NodeListeners { broker, controller })
            .await
            .expect("node starts");
        self.broker = Some(node);
    }

    pub async fn stop(&mut self) {
        if let Some(broker) = self.broker.take() {
            broker.shutdown().await.expect("clean shutdown");
        }
    }
}

async fn bind(port: Option<u16>) -> Option<TcpListener> {
    let port = port?;
    Some(TcpListener::bind(("127.0.0.1", port)).await.expect("bind"))
}

/// A listener on a loopback port below the kernel's ephemeral range (where outgoing
/// connections take their source ports, so none can hold a stopped node's port when the test
/// restarts it there), and its port.
async fn reserve(wanted: bool) -> (Option<u16>, Option<TcpListener>) {
    if !wanted {
        return (None, None);
    }
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    for _ in 0..1000 {
        let port = rand::random_range(10000..ephemeral_low.max(10001));
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return (Some(port), Some(listener));
        }
    }
    panic!("no free loopback port below the ephemeral range");
}

/// Roles per node: "broker,controller", "broker" or "controller".
pub async fn cluster(dir: &tempfile::TempDir, roles: &[&str], extra: &[(&str, &str)]) -> Vec<Node> {
    cluster_on(dir, roles, extra, "PLAINTEXT").await
}

/// Like [`cluster`], with the brokers' listener named `listener` (`SASL_SSL`, say: the default
/// security protocol map gives it that protocol), which is also the inter-broker listener.
pub async fn cluster_on(
    dir: &tempfile::TempDir,
    roles: &[&str],
    extra: &[(&str, &str)],
    listener: &str,
) -> Vec<Node> {
    let mut nodes = Vec::new();
    for (i, role) in roles.iter().enumerate() {
        let id = i as i32 + 1;
        let (broker_port, broker) = reserve(role.contains("broker")).await;
        let (controller_port, controller) = reserve(role.contains("controller")).await;
        nodes.push(Node {
            id,
            dir: dir.path().join(format!("node-{id}")),
            broker_port,
            controller_port,
            properties: BTreeMap::new(),
            broker: None,
            reserved: (broker, controller),
        });
    }
    let voters: Vec<String> = nodes
        .iter()
        .filter_map(|n| Some(format!("{}@127.0.0.1:{}", n.id, n.controller_port?)))
        .collect();
    for (node, role) in nodes.iter_mut().zip(roles) {
        let mut listeners = Vec::new();
        if let Some(p) = node.broker_port {
            listeners.push(format!("{listener}://127.0.0.1:{p}"));
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
pub async fn wait_for(
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

pub async fn client(node: &Node) -> Client {
    Client::connect(ClientConfig::new(node.bootstrap()))
        .await
        .expect("client connects")
}

/// The node with broker id `id`.
pub fn node_of(nodes: &[Node], id: BrokerId) -> &Node {
    nodes
        .iter()
        .find(|n| n.id == id.0)
        .expect("a node with that id")
}

/// Commits offsets for `group` (outside a generation), retrying while the coordinator moves.
pub async fn commit_offsets(client: &Client, group: &str, offsets: &[(TopicPartition, i64)]) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match client.offset_commit(group, offsets).await {
            Ok(results) if results.iter().all(|(_, r)| r.is_ok()) => return,
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "commit failed: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The committed offset of `group` for `topic`-`partition`, if the coordinator answers.
pub async fn fetch_committed(
    client: &Client,
    group: &str,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let tp = [TopicPartition::new(topic, partition)];
    let offsets = client.offset_fetch(group, Some(&tp)).await.ok()?;
    offsets.first()?.offset
}

/// The broker id of `group`'s coordinator.
pub async fn coordinator_of(client: &Client, group: &str) -> i32 {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match client.coordinator_connection(group).await {
            Ok((id, _)) => return id,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no coordinator: {e}"
                );
                client.invalidate_coordinator(group);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
