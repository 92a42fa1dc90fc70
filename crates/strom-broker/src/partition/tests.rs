use std::time::Duration;

use strom_cluster::{LeaderEpoch, PartitionEpoch};
use strom_log::testing::{BatchSpec, Rec, encode};
use strom_log::{LogConfig, OpenOptions};

use super::*;

const NOW: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(30);

fn open(dir: &std::path::Path) -> Arc<Partition> {
    let tp = TopicPartition {
        topic: "orders".to_owned(),
        partition: 0,
    };
    let log = Log::open(
        dir.join("orders-0"),
        tp.clone(),
        LogConfig::default(),
        OpenOptions {
            now_ms: NOW,
            ..OpenOptions::default()
        },
    )
    .expect("log opens");
    Partition::new(tp, Uuid::nil(), Arc::new(log), BrokerId(1))
}

fn lead(partition: &Partition, epoch: i32, replicas: &[i32]) {
    let ids: Vec<BrokerId> = replicas.iter().map(|&i| BrokerId(i)).collect();
    partition
        .become_leader(
            PartitionAssignment {
                replicas: ids.clone(),
                in_sync_replicas: ids,
                leader_epoch: LeaderEpoch(epoch),
                partition_epoch: PartitionEpoch(epoch),
            },
            ReplicaConfig {
                replica_lag_time_max_ms: 30_000,
                min_insync_replicas: 1,
            },
            NOW,
        )
        .expect("become leader");
}

fn append(partition: &Partition) -> Appended {
    let records = encode(&[Rec::kv(b"k", b"v", NOW)], &BatchSpec::default());
    partition
        .append_as_leader(&records, true, NOW)
        .expect("append")
}

/// A write waiting for follower 2, and what happens to the partition meanwhile.
async fn wait_across(change: impl FnOnce(&Partition)) -> Result<(), KafkaError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = open(dir.path());
    lead(&partition, 1, &[1, 2]);
    let appended = append(&partition);
    let end = appended.info.last_offset + 1;
    let waiting = {
        let partition = Arc::clone(&partition);
        tokio::spawn(async move { partition.wait_committed(&appended, false, WAIT).await })
    };
    change(&partition);
    if partition.is_leader() {
        // Follower 2 catches up: the high watermark passes the write.
        partition
            .on_follower_fetch(BrokerId(2), end, NOW)
            .expect("follower fetch");
    }
    waiting.await.expect("wait task")
}

#[tokio::test]
async fn a_write_commits_when_its_leader_stays_leader_into_a_new_epoch() {
    let result = wait_across(|p| lead(p, 2, &[1, 2])).await;
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn a_write_fails_when_its_leader_stops_leading() {
    let result = wait_across(|p| p.become_follower(BrokerId(2), 2)).await;
    let error = result.expect_err("not committed by this leader");
    assert_eq!(error.error, ResponseError::NotLeaderOrFollower);
}
