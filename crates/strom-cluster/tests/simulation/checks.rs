//! What the simulation checks after every step, beyond `support::check_invariants` (the
//! shape of every partition) and `support::check_epochs` (epochs never fall): that leaders
//! come only from replicas known to have every committed record, unless an unclean election
//! is allowed, and that the eligible leader replicas only ever gain such replicas.

use strom_cluster::controller::{ControllerConfig, ReplicationConfig};
use strom_cluster::{BrokerId, MetadataImage};
use uuid::Uuid;

/// Checks the change from `before` to `after`; `allowed(topic, partition, leader)` names the
/// leaders the step may produce beyond the in-sync and eligible leader replicas.
pub fn check_replication(
    before: &MetadataImage,
    after: &MetadataImage,
    config: &ControllerConfig,
    allowed: &dyn Fn(Uuid, i32, BrokerId) -> bool,
) {
    for (topic, partition, new) in after.topic_partitions() {
        let Some(old) = before
            .topic_by_id(&topic.topic_id)
            .and_then(|t| t.partitions.get(&partition))
        else {
            continue;
        };
        if old == new {
            continue;
        }
        let at = format!("{}-{partition}: {old:?} -> {new:?}", topic.name);
        let unclean_allowed = [before, after].iter().any(|image| {
            ReplicationConfig::resolve(image, &topic.name, config).unclean_leader_election
        }) || allowed(topic.topic_id, partition, new.leader);
        if new.leader != old.leader && new.has_leader() {
            let clean = old.in_sync_replicas.contains(&new.leader)
                || old.eligible_leader_replicas.contains(&new.leader);
            assert!(
                clean || unclean_allowed,
                "unclean leader {} {at}",
                new.leader
            );
        }
        if !new.leader_recovery_state.is_recovered() && old.leader_recovery_state.is_recovered() {
            assert!(
                unclean_allowed,
                "recovering without an unclean election {at}"
            );
        }
        for b in &new.eligible_leader_replicas {
            assert!(
                old.in_sync_replicas.contains(b) || old.eligible_leader_replicas.contains(b),
                "broker {b} became eligible without having been in sync {at}"
            );
        }
        let min = ReplicationConfig::resolve(after, &topic.name, config)
            .effective_min_insync_replicas(new.replicas.len());
        assert!(
            new.eligible_leader_replicas.is_empty() || new.in_sync_replicas.len() < min,
            "eligible leader replicas while {min} replicas are in sync {at}"
        );
    }
}
