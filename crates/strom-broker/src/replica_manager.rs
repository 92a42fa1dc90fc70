//! The replica manager: the one owner of the partitions this broker hosts. It follows the
//! published metadata images and, for each change, acts per partition:
//!
//! - a partition this broker is a replica of and leads: open its log (once) and become leader
//!   at the image's leader epoch (or adopt a newer ISR at the same epoch);
//! - a replica it does not lead: become a follower of the leader (a replica fetcher truncates
//!   it by leader epoch and fetches), or, without a leader, neither; losing leadership never
//!   deletes anything;
//! - a replica that is no longer this broker's, because its topic was deleted or the replica
//!   was reassigned away: stop it and delete its log after `file.delete.delay.ms`.
//!
//! It also applies topic config changes to open logs and tells the group coordinator which
//! `__consumer_offsets` partitions it now leads. It runs as one task, never under a lock that
//! requests wait on: handlers see a partition as soon as it is inserted, and a handler that
//! made a change waits for [`crate::state::BrokerState::wait_for_replicas`]. Log files are
//! opened and deleted on the blocking pool.
//!
//! Partition directories carry Kafka's `partition.metadata` file (the topic id), so a
//! directory left behind by a deleted topic is never mistaken for a new topic of the same name.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Weak};

use strom_cluster::{BrokerId, MetadataImage, PartitionImage};
use strom_log::{LogConfig, TopicPartition};
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::log_config_for;
use crate::partition::Partition;
use crate::replication::leader::{PartitionAssignment, ReplicaConfig};
use crate::state::BrokerState;

/// Starts the replica manager. It publishes on `applied` the metadata log index of each image
/// it has finished acting on. It acts on nothing before the broker has caught up with the
/// metadata log (the controller unfenced it), as Kafka's brokers wait for their initial
/// catch-up: a restarted broker's own image can be stale, and acting on it would make it lead
/// partitions (and coordinate groups, with old committed offsets) that moved while it was down.
pub fn spawn(
    state: Weak<BrokerState>,
    mut images: watch::Receiver<Arc<MetadataImage>>,
    applied: watch::Sender<u64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(mut caught_up) = state.upgrade().map(|s| s.caught_up()) else {
            return;
        };
        // Not holding the state meanwhile: a broker stopped before it caught up drops it.
        if caught_up.wait_for(|c| *c).await.is_err() {
            return;
        }
        let mut previous = Arc::new(MetadataImage::default());
        loop {
            let image = Arc::clone(&images.borrow_and_update());
            if !Arc::ptr_eq(&image, &previous) {
                let Some(state) = state.upgrade() else {
                    return;
                };
                apply(&state, &previous, &image).await;
                applied.send_replace(image.applied_index());
                previous = image;
            }
            if images.changed().await.is_err() {
                return;
            }
        }
    })
}

/// A replica this broker should host, per the image.
struct Wanted {
    topic_id: Uuid,
    partition: PartitionImage,
}

fn wanted_replicas(image: &MetadataImage, me: BrokerId) -> HashMap<TopicPartition, Wanted> {
    let mut wanted = HashMap::new();
    for topic in image.topics.values() {
        for (&index, p) in &topic.partitions {
            if p.replicas.contains(&me) {
                wanted.insert(
                    TopicPartition {
                        topic: topic.name.clone(),
                        partition: index,
                    },
                    Wanted {
                        topic_id: topic.topic_id,
                        partition: p.clone(),
                    },
                );
            }
        }
    }
    wanted
}

/// Acts on the difference between two images.
async fn apply(state: &Arc<BrokerState>, previous: &MetadataImage, image: &MetadataImage) {
    let wanted = wanted_replicas(image, state.node_id);
    // Replicas to stop: the topic is gone (or recreated under a new id), or the replica moved.
    for partition in state.partitions() {
        let keep = wanted
            .get(&partition.topic_partition)
            .is_some_and(|w| w.topic_id == partition.topic_id);
        if !keep {
            stop_and_delete(state, image, &partition.topic_partition).await;
        }
    }
    let configs_changed = previous.configs != image.configs;
    let mut to_open = Vec::new();
    for (tp, w) in &wanted {
        match state.partition(tp) {
            Some(partition) => {
                if configs_changed {
                    let config = log_config_for(&state.config, image, &tp.topic);
                    if *partition.log.config() != config {
                        let log = Arc::clone(&partition.log);
                        let _ =
                            tokio::task::spawn_blocking(move || log.update_config(config)).await;
                    }
                }
                take_role(state, image, &partition, &w.partition).await;
            }
            None => to_open.push((
                tp.clone(),
                w.topic_id,
                log_config_for(&state.config, image, &tp.topic),
            )),
        }
    }
    for partition in open_logs(state, to_open).await {
        if let Some(w) = wanted.get(&partition.topic_partition) {
            take_role(state, image, &partition, &w.partition).await;
        }
    }
    sync_group_partitions(state, image).await;
}

/// The replication settings of a partition this broker leads.
fn replica_config(state: &BrokerState, image: &MetadataImage, topic: &str) -> ReplicaConfig {
    let min_insync_replicas =
        crate::config::resolve_topic_config(&state.config, image, topic, "min.insync.replicas")
            .and_then(|(v, _)| v.parse().ok())
            .unwrap_or(1);
    ReplicaConfig {
        replica_lag_time_max_ms: state.config.replica_lag_time_max_ms,
        min_insync_replicas,
    }
}

/// Makes the partition leader, follower, or neither, as the image says.
async fn take_role(
    state: &Arc<BrokerState>,
    image: &MetadataImage,
    partition: &Arc<Partition>,
    p: &PartitionImage,
) {
    let tp = &partition.topic_partition;
    if p.leader == state.node_id {
        state.fetchers.unfollow(tp);
        let assignment = PartitionAssignment {
            replicas: p.replicas.clone(),
            in_sync_replicas: p.in_sync_replicas.clone(),
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
        };
        let config = replica_config(state, image, &tp.topic);
        let now = crate::now_ms();
        if partition.is_leader() && partition.leader_epoch() == p.leader_epoch.0 {
            // Same leadership: no IO, only the new ISR or assignment.
            let _ = partition.become_leader(assignment, config, now);
            return;
        }
        let target = Arc::clone(partition);
        let became =
            tokio::task::spawn_blocking(move || target.become_leader(assignment, config, now))
                .await;
        match became {
            Ok(Ok(())) => {
                tracing::info!(partition = %tp, leader_epoch = %p.leader_epoch, "became leader")
            }
            Ok(Err(e)) => tracing::error!(partition = %tp, error = %e, "cannot become leader"),
            Err(e) => tracing::error!(partition = %tp, error = %e, "become-leader task failed"),
        }
        return;
    }
    let follows = partition.followed_leader() == Some(p.leader)
        && partition.leader_epoch() == p.leader_epoch.0;
    if follows {
        return;
    }
    partition.become_follower(p.leader, p.leader_epoch.0);
    if p.leader.is_none() {
        state.fetchers.unfollow(tp);
    } else {
        tracing::info!(partition = %tp, leader = %p.leader, leader_epoch = %p.leader_epoch, "following");
        state
            .fetchers
            .follow(state, Arc::clone(partition), p.leader, p.leader_epoch.0);
    }
}

/// Opens logs on the blocking pool and inserts their partitions (with no role yet).
async fn open_logs(
    state: &Arc<BrokerState>,
    to_open: Vec<(TopicPartition, Uuid, LogConfig)>,
) -> Vec<Arc<Partition>> {
    if to_open.is_empty() {
        return Vec::new();
    }
    let logs = Arc::clone(&state.logs);
    let opened = tokio::task::spawn_blocking(move || {
        to_open
            .into_iter()
            .map(|(tp, topic_id, config)| {
                let result = open_log(&logs, &tp, topic_id, config);
                (tp, topic_id, result)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let opened = match opened {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "log open task failed");
            return Vec::new();
        }
    };
    let mut partitions = Vec::new();
    for (tp, topic_id, result) in opened {
        match result {
            Ok(log) => {
                let partition = Partition::new(tp, topic_id, log, state.node_id);
                state.insert_partition(Arc::clone(&partition));
                partitions.push(partition);
            }
            Err(e) => {
                tracing::error!(partition = %tp, error = %e, "cannot open the partition's log; it is offline");
            }
        }
    }
    partitions
}

/// Opens (or creates) a partition's log, making sure the directory belongs to `topic_id`.
fn open_log(
    logs: &strom_log::LogManager,
    tp: &TopicPartition,
    topic_id: Uuid,
    config: LogConfig,
) -> Result<Arc<strom_log::Log>, String> {
    let dir = logs.data_dir().join(tp.to_string());
    match read_partition_metadata(&dir) {
        Some(existing) if existing != topic_id => {
            tracing::warn!(partition = %tp, old_topic_id = %existing, new_topic_id = %topic_id, "deleting the log of a deleted topic with the same name");
            logs.delete(tp).map_err(|e| e.to_string())?;
        }
        _ => {}
    }
    let log = logs.load(tp, config).map_err(|e| e.to_string())?;
    write_partition_metadata(&dir, topic_id).map_err(|e| e.to_string())?;
    Ok(log)
}

const PARTITION_METADATA: &str = "partition.metadata";

/// Reads Kafka's `partition.metadata`: `version: 0` and `topic_id: <id>` lines. Strom writes
/// the id in the standard hyphenated form; Kafka's base64 form is not read (a directory
/// written by Kafka is not a Strom data directory).
fn read_partition_metadata(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .and_then(|id| Uuid::parse_str(id.trim()).ok())
}

fn write_partition_metadata(dir: &Path, topic_id: Uuid) -> std::io::Result<()> {
    let path = dir.join(PARTITION_METADATA);
    if read_partition_metadata(dir) == Some(topic_id) {
        return Ok(());
    }
    let tmp = dir.join(format!("{PARTITION_METADATA}.tmp"));
    std::fs::write(&tmp, format!("version: 0\ntopic_id: {topic_id}\n"))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Stops serving a replica and deletes its log after the topic's `file.delete.delay.ms`.
async fn stop_and_delete(state: &Arc<BrokerState>, image: &MetadataImage, tp: &TopicPartition) {
    state.fetchers.unfollow(tp);
    if let Some(partition) = state.remove_partition(tp) {
        partition.stop();
    }
    let delay_ms = log_config_for(&state.config, image, &tp.topic).file_delete_delay_ms;
    let logs = Arc::clone(&state.logs);
    let target = tp.clone();
    match tokio::task::spawn_blocking(move || logs.delete_after(&target, delay_ms)).await {
        Ok(Ok(())) => {
            tracing::info!(partition = %tp, delay_ms, "stopped replica; its log is deleted after the delay")
        }
        Ok(Err(e)) => tracing::error!(partition = %tp, error = %e, "cannot delete partition log"),
        Err(e) => tracing::error!(partition = %tp, error = %e, "log delete task failed"),
    }
}

/// Tells the group and transaction coordinators which `__consumer_offsets` and
/// `__transaction_state` partitions this broker now leads.
async fn sync_group_partitions(state: &BrokerState, image: &MetadataImage) {
    if let Some(groups) = state.groups() {
        let led = crate::groups::led_offsets_partitions(state, image);
        if groups.sync_partitions(led).await.is_err() {
            tracing::error!("the group coordinator is not running");
        }
    }
    if let Some(transactions) = state.transactions() {
        let led = crate::txn::led_partitions(state, image);
        if transactions.sync_partitions(led).await.is_err() {
            tracing::error!("the transaction coordinator is not running");
        }
    }
}

/// Deletes partition directories that no replica of this broker accounts for: left behind by
/// a deletion or a reassignment that happened while this broker was down. Only safe once this
/// broker has caught up with the metadata log (the controller unfenced it): an image that is
/// behind could miss a topic created since.
pub async fn delete_stray_logs(state: &BrokerState, image: &MetadataImage) {
    let logs = Arc::clone(&state.logs);
    let on_disk = match tokio::task::spawn_blocking(move || logs.partitions_on_disk()).await {
        Ok(list) => list,
        Err(_) => return,
    };
    let wanted = wanted_replicas(image, state.node_id);
    let stray: BTreeSet<TopicPartition> = on_disk
        .into_iter()
        .filter(|tp| {
            let dir = state.logs.data_dir().join(tp.to_string());
            match wanted.get(tp) {
                None => true,
                Some(w) => read_partition_metadata(&dir).is_some_and(|id| id != w.topic_id),
            }
        })
        .collect();
    for tp in stray {
        tracing::warn!(partition = %tp, "deleting a partition log that no replica of this broker accounts for");
        let delay_ms = log_config_for(&state.config, image, &tp.topic).file_delete_delay_ms;
        let logs = Arc::clone(&state.logs);
        let target = tp.clone();
        if let Ok(Err(e)) =
            tokio::task::spawn_blocking(move || logs.delete_after(&target, delay_ms)).await
        {
            tracing::error!(partition = %tp, error = %e, "cannot delete stray partition log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_metadata_round_trips_and_is_kafkas_layout() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_partition_metadata(dir.path()), None);
        let id = Uuid::from_u128(42);
        write_partition_metadata(dir.path(), id).unwrap();
        assert_eq!(read_partition_metadata(dir.path()), Some(id));
        let text = std::fs::read_to_string(dir.path().join(PARTITION_METADATA)).unwrap();
        assert!(text.starts_with("version: 0\ntopic_id: "), "{text}");
    }
}
