//! Brings the partitions this broker hosts in line with a metadata image: opens logs for new
//! partitions it leads, deletes the logs of removed topics, applies config changes to live logs
//! and follows leader epochs.
//!
//! This is what a broker does when it follows the metadata log in a cluster; on a single node it
//! runs after every committed change and once at start.

use std::collections::HashMap;
use std::sync::Arc;

use strom_cluster::MetadataImage;
use strom_log::TopicPartition;
use uuid::Uuid;

use crate::config::log_config_for;
use crate::partition::Partition;
use crate::state::BrokerState;

pub async fn reconcile(state: &BrokerState, image: &MetadataImage) {
    let mut desired: HashMap<TopicPartition, (Uuid, i32)> = HashMap::new();
    for topic in image.topics.values() {
        for (&index, partition) in &topic.partitions {
            if partition.leader == state.node_id {
                desired.insert(
                    TopicPartition {
                        topic: topic.name.clone(),
                        partition: index,
                    },
                    (topic.topic_id, partition.leader_epoch),
                );
            }
        }
    }

    for partition in state.partitions() {
        let keep = desired
            .get(&partition.topic_partition)
            .is_some_and(|(id, _)| *id == partition.topic_id);
        if !keep {
            remove(state, &partition.topic_partition).await;
        }
    }

    for (topic_partition, (topic_id, leader_epoch)) in desired {
        let config = log_config_for(&state.config, image, &topic_partition.topic);
        match state.partition(&topic_partition) {
            Some(partition) => {
                partition.set_leader_epoch(leader_epoch);
                if *partition.log.config() != config {
                    let log = Arc::clone(&partition.log);
                    let _ = tokio::task::spawn_blocking(move || log.update_config(config)).await;
                }
            }
            None => {
                let logs = Arc::clone(&state.logs);
                let tp = topic_partition.clone();
                match tokio::task::spawn_blocking(move || logs.load(&tp, config)).await {
                    Ok(Ok(log)) => {
                        state.insert_partition(Partition::new(
                            topic_partition,
                            topic_id,
                            log,
                            leader_epoch,
                        ));
                    }
                    Ok(Err(e)) => {
                        tracing::error!(partition = %topic_partition, error = %e, "cannot open the partition's log; it is offline");
                    }
                    Err(e) => {
                        tracing::error!(partition = %topic_partition, error = %e, "log open task failed");
                    }
                }
            }
        }
    }
    sync_group_partitions(state, image).await;
}

/// Tells the group coordinator which `__consumer_offsets` partitions this broker now leads.
async fn sync_group_partitions(state: &BrokerState, image: &MetadataImage) {
    if let Some(groups) = state.groups() {
        let led = crate::groups::led_offsets_partitions(state, image);
        if groups.sync_partitions(led).await.is_err() {
            tracing::error!("the group coordinator is not running");
        }
    }
}

async fn remove(state: &BrokerState, topic_partition: &TopicPartition) {
    state.remove_partition(topic_partition);
    let logs = Arc::clone(&state.logs);
    let tp = topic_partition.clone();
    match tokio::task::spawn_blocking(move || logs.delete(&tp)).await {
        Ok(Ok(())) => tracing::info!(partition = %topic_partition, "deleted partition log"),
        Ok(Err(e)) => {
            tracing::error!(partition = %topic_partition, error = %e, "cannot delete partition log")
        }
        Err(e) => {
            tracing::error!(partition = %topic_partition, error = %e, "log delete task failed")
        }
    }
}

/// Deletes partition directories that no topic in the image accounts for: left behind when a
/// deletion was interrupted by a crash.
pub async fn delete_stray_logs(state: &BrokerState, image: &MetadataImage) {
    let logs = Arc::clone(&state.logs);
    let on_disk = match tokio::task::spawn_blocking(move || logs.partitions_on_disk()).await {
        Ok(list) => list,
        Err(_) => return,
    };
    for tp in on_disk {
        let known = image.topic(&tp.topic).is_some_and(|t| {
            t.partitions
                .get(&tp.partition)
                .is_some_and(|p| p.leader == state.node_id)
        });
        if !known {
            tracing::warn!(partition = %tp, "deleting a partition log that no topic accounts for");
            let logs = Arc::clone(&state.logs);
            let tp2 = tp.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || logs.delete(&tp2)).await {
                tracing::error!(partition = %tp, error = %e, "cannot delete stray partition log");
            }
        }
    }
}
