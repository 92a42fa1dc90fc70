//! The metadata quorum's part of `/metrics`, named after KRaft's metrics:
//! - the Raft node (`kafka_server_raft_metrics_*`): role, leader, term, log indexes and, on the
//!   leader, how far each other voter is behind;
//! - the cluster as this node's metadata image sees it (`kafka_controller_kafkacontroller_*`):
//!   registered and fenced brokers, leaderless partitions, whether this node is the active
//!   controller;
//! - applying the metadata log (`kafka_server_broker_metadata_metrics_*`): time and entries, so
//!   that a rate of one over the other is the mean apply time per entry;
//! - this broker's own registration: its epoch and whether the controller has it fenced.
//!
//! Every value is read once per scrape from the quorum node's status, its apply counters and
//! the current image; nothing here is counted on a hot path.

use std::sync::atomic::Ordering;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use strom_broker::state::BrokerState;
use strom_cluster::{BrokerId, MetadataImage};

use super::{EncodeResult, as_gauge, counter, family, gauge};

/// Every role `QuorumStatus` reports. All are exported (0, or 1 for the current one) so a
/// role change moves a value instead of making one series vanish and another appear.
const ROLES: [&str; 6] = [
    "leader",
    "follower",
    "candidate",
    "learner",
    "shutdown",
    "observer",
];

/// Written for a log index that does not exist yet (no snapshot, nothing purged).
const NO_INDEX: i64 = -1;

#[derive(Debug, Default)]
pub(super) struct QuorumSnapshot {
    role: &'static str,
    leader_id: i32,
    term: u64,
    last_log_index: u64,
    applied_index: u64,
    snapshot_index: i64,
    purged_index: i64,
    voter_lag: Vec<(BrokerId, u64)>,
    registered_brokers: i64,
    fenced_brokers: i64,
    leaderless_partitions: i64,
    broker_fenced: bool,
    broker_epoch: i64,
    entries_applied: u64,
    records_applied: u64,
    apply_micros_total: u64,
    last_apply_micros: u64,
    bytes_since_snapshot: u64,
}

impl QuorumSnapshot {
    pub(super) fn take(state: &BrokerState, image: &MetadataImage) -> QuorumSnapshot {
        let status = state.quorum.status();
        let stats = state.quorum.apply_stats();
        QuorumSnapshot {
            role: status.role,
            leader_id: status.leader.unwrap_or(BrokerId::NONE).0,
            term: status.term,
            last_log_index: status.last_log_index,
            applied_index: status.applied_index,
            snapshot_index: status.snapshot_index.map_or(NO_INDEX, signed),
            purged_index: status.purged_index.map_or(NO_INDEX, signed),
            voter_lag: status.voter_lag,
            registered_brokers: image.brokers.len() as i64,
            fenced_brokers: image.brokers.values().filter(|b| b.fenced).count() as i64,
            leaderless_partitions: leaderless_partitions(image),
            broker_fenced: state.is_fenced(),
            broker_epoch: state.broker_epoch().0,
            entries_applied: stats.entries_applied.load(Ordering::Relaxed),
            records_applied: stats.records_applied.load(Ordering::Relaxed),
            apply_micros_total: stats.apply_micros_total.load(Ordering::Relaxed),
            last_apply_micros: stats.last_apply_micros.load(Ordering::Relaxed),
            bytes_since_snapshot: stats.bytes_since_snapshot.load(Ordering::Relaxed),
        }
    }

    pub(super) fn encode(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        self.encode_raft(e)?;
        self.encode_log_indexes(e)?;
        self.encode_cluster(e)?;
        self.encode_apply(e)?;
        self.encode_registration(e)
    }

    /// Who leads, in which term, and this node's part in it.
    fn encode_raft(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        gauge(
            e,
            "strom_quorum_leader",
            "Node id of the metadata quorum's leader, -1 when none is known.",
            self.leader_id,
        )?;
        family(
            e,
            "strom_quorum_role",
            "This node's role in the metadata quorum: 1 for the current role, 0 for the others.",
            MetricType::Gauge,
            self.role_samples(),
            as_gauge,
        )?;
        gauge(
            e,
            "strom_quorum_term",
            "The metadata quorum's Raft term (KRaft's leader epoch); 0 on observers.",
            self.term,
        )?;
        gauge(
            e,
            "strom_active_controller",
            "1 when this node is the active controller (the quorum leader), else 0.",
            i64::from(self.role == "leader"),
        )
    }

    fn role_samples(&self) -> Vec<(super::Labels, i64)> {
        let mut roles = ROLES.to_vec();
        // A role added to the quorum later still shows up rather than reading as no role.
        if !roles.contains(&self.role) {
            roles.push(self.role);
        }
        roles
            .into_iter()
            .map(|role| {
                let current = i64::from(role == self.role);
                (vec![("role", role.to_string())], current)
            })
            .collect()
    }

    /// The metadata log's indexes on this node, and the other voters' lag on the leader.
    fn encode_log_indexes(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        gauge(
            e,
            "strom_quorum_last_log_index",
            "Index of the last entry in this node's metadata log.",
            self.last_log_index,
        )?;
        gauge(
            e,
            "strom_quorum_applied_index",
            "Index of the last metadata log entry applied to this node's image.",
            self.applied_index,
        )?;
        gauge(
            e,
            "strom_quorum_snapshot_index",
            "Last metadata log index covered by this node's snapshot, -1 when it has none.",
            self.snapshot_index,
        )?;
        gauge(
            e,
            "strom_quorum_purged_index",
            "Last metadata log index deleted from this node's log, -1 when none was.",
            self.purged_index,
        )?;
        family(
            e,
            "strom_quorum_voter_lag",
            "Metadata log entries each other voter is behind the leader (reported by the leader).",
            MetricType::Gauge,
            self.voter_lag
                .iter()
                .map(|(voter, lag)| (vec![("voter", voter.0.to_string())], *lag)),
            as_gauge,
        )
    }

    /// The cluster as the image sees it: the same on every node that has caught up.
    fn encode_cluster(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        gauge(
            e,
            "strom_registered_brokers",
            "Brokers registered in the metadata image, fenced or not.",
            self.registered_brokers,
        )?;
        gauge(
            e,
            "strom_fenced_brokers",
            "Registered brokers the controller has fenced.",
            self.fenced_brokers,
        )?;
        gauge(
            e,
            "strom_leaderless_partitions",
            "Partitions in the metadata image without a leader.",
            self.leaderless_partitions,
        )
    }

    /// How much of the metadata log this node applied, and how long that took.
    fn encode_apply(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        counter(
            e,
            "strom_metadata_applied_entries",
            "Metadata log entries applied to this node's image.",
            self.entries_applied,
        )?;
        counter(
            e,
            "strom_metadata_applied_records",
            "Metadata records applied to this node's image.",
            self.records_applied,
        )?;
        counter(
            e,
            "strom_metadata_apply_seconds",
            "Time spent applying metadata log entries to this node's image.",
            seconds(self.apply_micros_total),
        )?;
        gauge(
            e,
            "strom_metadata_last_apply_seconds",
            "Duration of the last batch of metadata log entries applied.",
            seconds(self.last_apply_micros),
        )?;
        gauge(
            e,
            "strom_metadata_bytes_since_snapshot",
            "Bytes of metadata records applied since the last snapshot.",
            self.bytes_since_snapshot,
        )
    }

    /// This broker's registration with the controller.
    fn encode_registration(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        gauge(
            e,
            "strom_broker_fenced",
            "1 while the controller has this broker fenced, else 0.",
            i64::from(self.broker_fenced),
        )?;
        gauge(
            e,
            "strom_broker_epoch",
            "This broker's epoch, from its registration with the controller.",
            self.broker_epoch,
        )
    }
}

fn leaderless_partitions(image: &MetadataImage) -> i64 {
    image
        .topics
        .values()
        .flat_map(|topic| topic.partitions.values())
        .filter(|p| p.leader == BrokerId::NONE)
        .count() as i64
}

/// A log index as a signed gauge value; Raft indexes never come near `i64::MAX`.
fn signed(index: u64) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

fn seconds(micros: u64) -> f64 {
    micros as f64 / 1e6
}
