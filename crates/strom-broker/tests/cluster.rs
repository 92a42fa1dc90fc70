//! Several nodes in one process, on loopback ports bound up front: the metadata quorum forms,
//! brokers register and are unfenced, topics spread over the brokers, a stopped node is
//! fenced and comes back, a far-behind node catches up from a snapshot, and nodes with only
//! one role (broker or controller) work together. Killing processes (SIGKILL) is tested with
//! real processes in `tests/clients/test_cluster.py`.

mod cluster_support;

use std::collections::BTreeMap;
use std::time::Duration;

use cluster_support::*;
use strom_client::{Client, FetchOptions, ProducerConfig, ProducerRecord, TopicPartition};
use strom_cluster::{BrokerId, MetadataImage};

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

    // More replicas than brokers cannot be placed.
    let refused = admin.create_topic("replicated", 1, 4).await;
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
