//! Partition replication with three brokers in one process: replicas converge on the same log,
//! acks=all waits for the in-sync replicas and refuses when too few are left, leadership moves
//! to an in-sync replica when the leader stops, a returning replica catches up and rejoins the
//! ISR, and committed group offsets survive the loss of the coordinator's broker. Crashes
//! (SIGKILL, SIGSTOP) and cut networks are tested with processes in `tests/clients`.

mod cluster_support;

use std::time::Duration;

use cluster_support::*;
use strom_client::{Acks, FetchOptions, ProducerConfig, ProducerRecord, TopicPartition};
use strom_cluster::BrokerId;

/// Produces `count` records to `topic`-`partition` with acks=all; returns their offsets.
async fn produce(node: &Node, topic: &str, partition: i32, count: usize, tag: &str) -> Vec<i64> {
    let c = client(node).await;
    let producer = c
        .producer(ProducerConfig {
            acks: Acks::All,
            enable_idempotence: true,
            ..ProducerConfig::default()
        })
        .await
        .expect("producer");
    let mut offsets = Vec::new();
    for i in 0..count {
        let record = ProducerRecord::new(topic, format!("{tag}-{i}")).with_partition(partition);
        let sent = tokio::time::timeout(TIMEOUT, producer.send_and_wait(record))
            .await
            .expect("produce in time")
            .expect("produce");
        offsets.push(sent.offset);
    }
    offsets
}

/// Every value in `topic`-`partition`, read from its leader.
async fn read_all(node: &Node, topic: &str, partition: i32) -> Vec<String> {
    let c = client(node).await;
    let mut offset = 0;
    let mut values = Vec::new();
    loop {
        let positions = [(TopicPartition::new(topic, partition), offset)];
        let fetched = c
            .fetch(&positions, &FetchOptions::default())
            .await
            .expect("fetch");
        let records = fetched[0].1.as_ref().expect("partition fetched");
        if records.records.is_empty() {
            return values;
        }
        for r in &records.records {
            values
                .push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
        }
        offset = records.next_offset;
    }
}

/// Waits until every running replica of the partition has the same log end offset as its
/// leader, and returns it.
async fn converged(nodes: &[Node], topic: &str, partition: i32) -> i64 {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let ends: Vec<i64> = nodes
            .iter()
            .filter_map(|n| n.partition(topic, partition))
            .map(|p| p.log.log_end_offset())
            .collect();
        if ends.len() > 1 && ends.windows(2).all(|w| w[0] == w[1]) {
            return ends[0];
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replicas did not converge: {ends:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_copy_the_leaders_log_and_acks_all_waits_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&dir, &["broker,controller"; 3], &[]).await;
    wait_for(&nodes[0], "three brokers", |i| {
        i.unfenced_brokers().count() == 3
    })
    .await;
    let admin = client(&nodes[0]).await;
    admin
        .create_topic("replicated", 1, 3)
        .await
        .expect("RF=3 is allowed now");
    let image = wait_for(&nodes[0], "the topic", |i| i.topic("replicated").is_some()).await;
    let p = image.partition("replicated", 0).unwrap().clone();
    assert_eq!(p.replicas.len(), 3);
    assert_eq!(p.in_sync_replicas.len(), 3);
    let leader = node_of(&nodes, p.leader);

    let offsets = produce(leader, "replicated", 0, 20, "a").await;
    assert_eq!(offsets, (0..20).collect::<Vec<_>>());
    // acks=all answered only once the followers had the records: the high watermark on the
    // leader covers them, and every replica ends up with the same log.
    let end = converged(&nodes, "replicated", 0).await;
    assert_eq!(end, 20);
    let leader_partition = leader.partition("replicated", 0).unwrap();
    assert_eq!(leader_partition.high_watermark().0, 20);
    let leader_bytes = leader_partition
        .log
        .read(0, 1 << 20, end, true)
        .unwrap()
        .records;
    for node in &nodes {
        let log = &node.partition("replicated", 0).unwrap().log;
        assert_eq!(
            log.read(0, 1 << 20, end, true).unwrap().records,
            leader_bytes,
            "node {}",
            node.id
        );
    }
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acks_all_needs_min_insync_replicas_and_acks_1_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        ("replica.lag.time.max.ms", "1000"),
        ("min.insync.replicas", "2"),
    ];
    let mut nodes = cluster(&dir, &["broker,controller"; 3], &extra).await;
    wait_for(&nodes[0], "three brokers", |i| {
        i.unfenced_brokers().count() == 3
    })
    .await;
    let admin = client(&nodes[0]).await;
    admin.create_topic("guarded", 1, 3).await.expect("create");
    let image = wait_for(&nodes[0], "the topic", |i| i.topic("guarded").is_some()).await;
    let leader_id = image.partition("guarded", 0).unwrap().leader;
    produce(node_of(&nodes, leader_id), "guarded", 0, 3, "before").await;

    // Stop both followers: the ISR shrinks to the leader alone (below min.insync.replicas=2).
    let followers: Vec<usize> = (0..3).filter(|&i| nodes[i].id != leader_id.0).collect();
    for &i in &followers {
        nodes[i].stop().await;
    }
    let leader_index = (0..3).find(|&i| nodes[i].id == leader_id.0).unwrap();
    wait_for(
        &nodes[leader_index],
        "the ISR to shrink to the leader",
        |i| {
            i.partition("guarded", 0)
                .is_some_and(|p| p.in_sync_replicas == vec![leader_id])
        },
    )
    .await;
    let c = client(&nodes[leader_index]).await;
    let all = c
        .producer(ProducerConfig {
            acks: Acks::All,
            delivery_timeout: Duration::from_secs(2),
            ..ProducerConfig::default()
        })
        .await
        .unwrap();
    let refused = all
        .send_and_wait(ProducerRecord::new("guarded", "x").with_partition(0))
        .await;
    assert!(
        format!("{refused:?}").contains("NOT_ENOUGH_REPLICAS"),
        "{refused:?}"
    );
    let one = c
        .producer(ProducerConfig {
            acks: Acks::Leader,
            ..ProducerConfig::default()
        })
        .await
        .unwrap();
    one.send_and_wait(ProducerRecord::new("guarded", "y").with_partition(0))
        .await
        .expect("acks=1 still works");

    // The followers come back, catch up and rejoin; acks=all works again.
    for &i in &followers {
        nodes[i].start().await;
    }
    wait_for(&nodes[leader_index], "the ISR to grow back", |i| {
        i.partition("guarded", 0)
            .is_some_and(|p| p.in_sync_replicas.len() == 3)
    })
    .await;
    produce(&nodes[leader_index], "guarded", 0, 2, "after").await;
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_leader_is_replaced_by_an_in_sync_replica_with_every_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&dir, &["broker,controller"; 3], &[]).await;
    wait_for(&nodes[0], "three brokers", |i| {
        i.unfenced_brokers().count() == 3
    })
    .await;
    let admin = client(&nodes[0]).await;
    admin.create_topic("failover", 1, 3).await.expect("create");
    let image = wait_for(&nodes[0], "the topic", |i| i.topic("failover").is_some()).await;
    let first = image.partition("failover", 0).unwrap().clone();
    let old = (0..3).find(|&i| nodes[i].id == first.leader.0).unwrap();
    produce(&nodes[old], "failover", 0, 10, "one").await;

    nodes[old].stop().await;
    let survivor = (old + 1) % 3;
    let image = wait_for(&nodes[survivor], "a new leader", |i| {
        i.partition("failover", 0)
            .is_some_and(|p| p.has_leader() && p.leader != first.leader)
    })
    .await;
    let now = image.partition("failover", 0).unwrap().clone();
    assert!(now.leader_epoch > first.leader_epoch);
    let new_leader = node_of(&nodes, now.leader);
    produce(new_leader, "failover", 0, 10, "two").await;

    // The old leader comes back as a follower and converges on the new leader's log.
    nodes[old].start().await;
    converged(&nodes, "failover", 0).await;
    let values = read_all(node_of(&nodes, now.leader), "failover", 0).await;
    let expected: Vec<String> = (0..10)
        .map(|i| format!("one-{i}"))
        .chain((0..10).map(|i| format!("two-{i}")))
        .collect();
    assert_eq!(values, expected);
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn committed_offsets_survive_the_loss_of_the_coordinators_broker() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(
        &dir,
        &["broker,controller"; 3],
        &[("offsets.topic.num.partitions", "3")],
    )
    .await;
    wait_for(&nodes[0], "three brokers", |i| {
        i.unfenced_brokers().count() == 3
    })
    .await;
    let c = client(&nodes[0]).await;
    c.create_topic("orders", 1, 3).await.expect("create");
    let committed = [(TopicPartition::new("orders", 0), 42i64)];
    commit_offsets(&c, "keepers", &committed).await;
    let image = wait_for(&nodes[0], "__consumer_offsets", |i| {
        i.topic("__consumer_offsets").is_some()
    })
    .await;
    let offsets_topic = image.topic("__consumer_offsets").unwrap();
    assert!(
        offsets_topic
            .partitions
            .values()
            .all(|p| p.replicas.len() == 3),
        "replicated"
    );
    let coordinator = coordinator_of(&c, "keepers").await;

    let victim = (0..3).find(|&i| nodes[i].id == coordinator).unwrap();
    nodes[victim].stop().await;
    let survivor = (victim + 1) % 3;
    let c = client(&nodes[survivor]).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match fetch_committed(&c, "keepers", "orders", 0).await {
            Some(42) => break,
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "committed offset not found: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_ne!(
        coordinator_of(&c, "keepers").await,
        coordinator,
        "the coordinator moved"
    );
    let _ = BrokerId(coordinator);
    for node in &mut nodes {
        node.stop().await;
    }
}

/// KIP-392: a consumer in a rack is sent to the in-sync replica in its rack, which serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_reads_from_the_replica_in_its_rack() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId as WireId, FetchRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&dir, &["broker,controller"; 3], &[]).await;
    // Each node in its own rack: restart them with broker.rack set.
    for node in &mut nodes {
        node.properties
            .insert("broker.rack".into(), format!("rack-{}", node.id));
    }
    for node in &mut nodes {
        node.stop().await;
    }
    let starts = nodes.iter_mut().map(|n| n.start());
    futures::future::join_all(starts).await;
    wait_for(&nodes[0], "three brokers with racks", |i| {
        i.unfenced_brokers().count() == 3 && i.brokers.values().all(|b| b.rack.is_some())
    })
    .await;
    let admin = client(&nodes[0]).await;
    admin.create_topic("racked", 1, 3).await.expect("create");
    let image = wait_for(&nodes[0], "the topic", |i| i.topic("racked").is_some()).await;
    let p = image.partition("racked", 0).unwrap().clone();
    let leader = node_of(&nodes, p.leader);
    produce(leader, "racked", 0, 5, "r").await;
    converged(&nodes, "racked", 0).await;
    let follower_id = p.replicas.iter().copied().find(|r| *r != p.leader).unwrap();
    let follower = node_of(&nodes, follower_id);
    // Wait until the follower knows the high watermark (from its next fetch round).
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while follower.partition("racked", 0).unwrap().high_watermark().0 < 5 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let fetch = |rack: String| {
        FetchRequest::default()
            .with_replica_id(WireId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_rack_id(StrBytes::from_string(rack))
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("racked")))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ])
    };
    let config = strom_client::ConnectionConfig::default();
    let to_leader = strom_client::Connection::connect(&leader.bootstrap(), &config)
        .await
        .unwrap();
    let answer = to_leader
        .send_version(fetch(format!("rack-{}", follower_id.0)), 12)
        .await
        .unwrap();
    let data = &answer.responses[0].partitions[0];
    assert_eq!(data.error_code, 0);
    assert_eq!(
        data.preferred_read_replica.0, follower_id.0,
        "sent to its rack's replica"
    );
    assert!(data.records.as_ref().is_none_or(|r| r.is_empty()));

    let to_follower = strom_client::Connection::connect(&follower.bootstrap(), &config)
        .await
        .unwrap();
    let answer = to_follower
        .send_version(fetch(format!("rack-{}", follower_id.0)), 12)
        .await
        .unwrap();
    let data = &answer.responses[0].partitions[0];
    assert_eq!(data.error_code, 0);
    assert_eq!(data.high_watermark, 5);
    assert!(
        data.records.as_ref().is_some_and(|r| !r.is_empty()),
        "the follower serves it"
    );
    // A consumer without a rack reads from the leader.
    let answer = to_leader
        .send_version(fetch(String::new()), 12)
        .await
        .unwrap();
    assert_eq!(
        answer.responses[0].partitions[0].preferred_read_replica.0,
        -1
    );
    for node in &mut nodes {
        node.stop().await;
    }
}
