//! Leader elections an operator asks for, and the ones the controller runs on a timer.
//!
//! - **ElectLeaders** (API 43, `kafka-leader-election.sh`). A PREFERRED election gives a
//!   partition back to its first replica when that replica is in sync and available. An
//!   UNCLEAN election gives a leaderless partition a leader, from outside the in-sync and
//!   eligible leader replicas if it must, whatever the topic's
//!   `unclean.leader.election.enable` says: the operator accepted the data loss by asking.
//! - **The leadership check**, every `leader.imbalance.check.interval.seconds` while
//!   `auto.leader.rebalance.enable` is on: `tick` elects leaders for leaderless partitions that
//!   can have one (this is how turning `unclean.leader.election.enable` on reaches partitions
//!   that were already offline; with the check off they wait for the next broker to come back
//!   or for an UNCLEAN ElectLeaders), then moves every partition whose leader is not its
//!   preferred replica back to it where it can. Kafka rebalances only brokers whose share of
//!   such partitions exceeds `leader.imbalance.per.broker.percentage`; Strom ignores that
//!   setting and rebalances every imbalanced partition, one leader change each.

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::partition_change::{Election, PartitionChange};
use super::pending::Pending;
use super::{ApiError, Controller, ControllerConfig, Decision, election};
use crate::image::{MetadataImage, PartitionImage};
use crate::records::MetadataRecord;

/// Kafka's `ElectionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElectionType {
    /// PREFERRED (0): the first replica leads, if it is in sync and available.
    Preferred,
    /// UNCLEAN (1): a leaderless partition gets any available replica as leader.
    Unclean,
}

impl ElectionType {
    /// From Kafka's wire value (ElectLeaders v1+); `None` for an unknown one, which Kafka
    /// refuses with INVALID_REQUEST.
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }

    pub fn code(self) -> i8 {
        match self {
            ElectionType::Preferred => 0,
            ElectionType::Unclean => 1,
        }
    }
}

/// The outcome of ElectLeaders for one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionResult {
    pub topic_id: Uuid,
    pub partition: i32,
    /// `Ok` when the partition got the leader the election asked for.
    pub result: Decision<()>,
}

impl Controller {
    /// ElectLeaders for `partitions` (topic id, partition), or for every partition with
    /// `None`, Kafka's "all partitions" form, whose results leave out the partitions that
    /// needed no election. Each election sees the ones before it.
    pub fn elect_leaders(
        &mut self,
        image: &MetadataImage,
        election_type: ElectionType,
        partitions: Option<Vec<(Uuid, i32)>>,
    ) -> (Vec<MetadataRecord>, Vec<ElectionResult>) {
        let all = partitions.is_none();
        let targets =
            partitions.unwrap_or_else(|| image.partitions().map(|(t, p, _)| (t, p)).collect());
        let mut pending = Pending::new(image);
        let mut results = Vec::with_capacity(targets.len());
        for (topic_id, partition) in targets {
            let election = elect(
                pending.image(),
                &self.config,
                topic_id,
                partition,
                election_type,
            );
            let result = election.map(|next| pending.push(next.to_record(topic_id, partition)));
            let not_needed =
                matches!(&result, Err(e) if e.error == ResponseError::ElectionNotNeeded);
            if !(all && not_needed) {
                results.push(ElectionResult {
                    topic_id,
                    partition,
                    result,
                });
            }
        }
        (pending.into_records(), results)
    }

    /// Arms the leadership check one interval after `now_ms`, if it is on.
    pub(super) fn schedule_leadership_check(&mut self, now_ms: i64) {
        let interval_ms = self.config.leader_imbalance_check_interval_ms.max(1);
        self.next_leader_check_ms = self
            .config
            .auto_leader_rebalance_enable
            .then(|| now_ms.saturating_add(interval_ms));
    }

    /// Runs the leadership check (module docs) if it is due.
    pub(super) fn check_leadership_if_due(&mut self, pending: &mut Pending<'_>, now_ms: i64) {
        match self.next_leader_check_ms {
            Some(due) if now_ms >= due => {}
            Some(_) => return,
            None => return self.schedule_leadership_check(now_ms),
        }
        let elected = election::elect_leaderless(pending, &self.config);
        let restored = restore_preferred_leaders(pending, &self.config);
        if elected + restored > 0 {
            tracing::info!(elected, restored, "leadership check moved leaders");
        }
        self.schedule_leadership_check(now_ms);
    }
}

/// One partition's election: its next state, or Kafka's per-partition error.
fn elect(
    image: &MetadataImage,
    config: &ControllerConfig,
    topic_id: Uuid,
    partition: i32,
    election_type: ElectionType,
) -> Decision<PartitionImage> {
    let unknown = || {
        ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("No such partition as {topic_id}-{partition}"),
        )
    };
    let topic = image.topic_by_id(&topic_id).ok_or_else(unknown)?;
    let current = topic.partitions.get(&partition).ok_or_else(unknown)?;
    let change = PartitionChange::new(image, config, &topic.name, current);
    let name = format!("{}-{partition}", topic.name);
    let not_needed = |why: &str| ApiError::new(ResponseError::ElectionNotNeeded, why.to_string());
    match election_type {
        ElectionType::Preferred => {
            let preferred = current.preferred_leader();
            if current.has_leader() && preferred == Some(current.leader) {
                return Err(not_needed("The preferred replica already leads."));
            }
            change
                .election(Election::Preferred)
                .build()
                .filter(|next| Some(next.leader) == preferred)
                .ok_or_else(|| {
                    ApiError::new(
                        ResponseError::PreferredLeaderNotAvailable,
                        format!(
                            "The preferred leader of {name} is not an available in-sync replica."
                        ),
                    )
                })
        }
        ElectionType::Unclean => {
            if current.has_leader() {
                return Err(not_needed("The partition has a leader."));
            }
            change
                .election(Election::Unclean)
                .build()
                .filter(PartitionImage::has_leader)
                .ok_or_else(|| {
                    ApiError::new(
                        ResponseError::EligibleLeadersNotAvailable,
                        format!("No replica of {name} is available to lead."),
                    )
                })
        }
    }
}

/// Gives every partition led by another replica back to its preferred replica, where that
/// replica is in sync and available. Returns how many moved.
fn restore_preferred_leaders(pending: &mut Pending<'_>, config: &ControllerConfig) -> usize {
    election::change_each(pending, |image, topic, p| {
        let preferred = p.preferred_leader()?;
        if !p.has_leader() || p.leader == preferred {
            return None;
        }
        PartitionChange::new(image, config, &topic.name, p)
            .election(Election::Preferred)
            .build()
            .filter(|next| next.leader == preferred)
    })
}
