//! A broker's life as the controller sees it: registration, heartbeats, fencing and
//! controlled shutdown (Kafka's `ClusterControlManager` and `BrokerHeartbeatManager`).
//!
//! ```text
//!   register ──▶ fenced ──heartbeat, caught up──▶ unfenced ──want_shutdown──▶ controlled shutdown
//!                  ▲                                 │                              │
//!                  └──── session expired, want_fence ┴───── others saw it, fenced ◀─┘
//!                                                                (should_shut_down)
//! ```
//!
//! - A registration is fenced until the broker has replayed the metadata log up to its own
//!   registration (`metadata_offset >= registered_at`): before that it could serve stale
//!   metadata. Its epoch is the index of the log entry that registers it.
//! - An unfenced broker whose session expires is fenced, and so is the previous incarnation
//!   of a broker that registers again: either way its partitions lose it as leader and as an
//!   in-sync replica (see [`super::election`]).
//! - Controlled shutdown moves leadership away first and lets the broker stop (fenced, with
//!   `should_shut_down`) once it leads nothing and every other active broker has applied the
//!   entry that moved its leaderships, so clients are never sent to a stopped leader.

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::pending::Pending;
use super::{ApiError, Controller, ControllerConfig, Decision, election};
use crate::ids::{BrokerEpoch, BrokerId};
use crate::image::{BrokerRegistration, MetadataImage};
use crate::records::{BrokerEndpoint, MetadataRecord};

/// BrokerRegistration: a broker process announcing itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistrationRequest {
    pub broker_id: BrokerId,
    /// Random per process start: tells a retried registration from a new incarnation.
    pub incarnation_id: Uuid,
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    /// The incarnation this process replaces, as recorded in its data directory. The process
    /// holds the directory's lock, so that incarnation is certainly gone and its registration
    /// may be replaced at once instead of after its session expires (a node restarted right
    /// after a crash). A different id is refused while the current session lives: two nodes
    /// configured with the same id.
    #[serde(default)]
    pub previous_incarnation_id: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistrationReply {
    pub broker_epoch: BrokerEpoch,
}

/// BrokerHeartbeat: sent every `broker.heartbeat.interval.ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerHeartbeatRequest {
    pub broker_id: BrokerId,
    pub broker_epoch: BrokerEpoch,
    /// The index of the last metadata log entry the broker has applied.
    pub metadata_offset: u64,
    /// The broker asks to be (or stay) fenced.
    pub want_fence: bool,
    /// The broker asks for a controlled shutdown.
    pub want_shutdown: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerHeartbeatReply {
    /// The broker has replayed the log up to its own registration.
    pub is_caught_up: bool,
    /// Fenced once the reply's records are applied.
    pub is_fenced: bool,
    /// The broker may stop now.
    pub should_shut_down: bool,
}

impl Controller {
    /// This node became the active controller: every registered broker gets a full session
    /// from `now_ms`.
    pub fn activate(&mut self, image: &MetadataImage, now_ms: i64) {
        self.sessions.activate(image, now_ms);
        self.schedule_leadership_check(now_ms);
    }

    /// Decides a BrokerRegistration. A different incarnation is refused while the current
    /// one is unfenced and its session lives; the same incarnation (a retry) gets its epoch
    /// back without records.
    pub fn register_broker(
        &mut self,
        image: &MetadataImage,
        now_ms: i64,
        request: BrokerRegistrationRequest,
    ) -> Decision<(Vec<MetadataRecord>, BrokerRegistrationReply)> {
        let broker_id = request.broker_id;
        if broker_id.is_none() {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("Broker id must not be negative, got {broker_id}."),
            ));
        }
        let existing = image.brokers.get(&broker_id);
        if let Some(existing) = existing {
            if existing.incarnation_id == request.incarnation_id {
                self.sessions.touch(existing, now_ms, 0);
                let reply = BrokerRegistrationReply {
                    broker_epoch: existing.broker_epoch,
                };
                return Ok((Vec::new(), reply));
            }
            let replaces = request.previous_incarnation_id == Some(existing.incarnation_id);
            if !replaces && self.sessions.has_valid_session(existing, now_ms) {
                return Err(ApiError::new(
                    ResponseError::DuplicateBrokerRegistration,
                    "Another broker is registered with that broker id.",
                ));
            }
        }
        // The record lands at the next index, past every earlier registration's; the max
        // keeps epochs increasing even for an image restored with unusual numbers.
        let next_index = image.applied_index().saturating_add(1);
        let broker_epoch = BrokerEpoch(
            (next_index.min(i64::MAX as u64) as i64)
                .max(existing.map_or(0, |e| e.broker_epoch.0.saturating_add(1))),
        );
        let mut pending = Pending::new(image);
        pending.push(MetadataRecord::RegisterBroker {
            broker_id,
            broker_epoch,
            incarnation_id: request.incarnation_id,
            endpoints: request.endpoints,
            rack: request.rack,
            fenced: true,
        });
        // The previous incarnation is gone: its partitions lose it as if it had been fenced.
        election::move_away_from(&mut pending, &self.config, broker_id);
        if let Some(registration) = pending.image().brokers.get(&broker_id) {
            self.sessions.register(registration, now_ms);
        }
        Ok((
            pending.into_records(),
            BrokerRegistrationReply { broker_epoch },
        ))
    }

    /// Decides a BrokerHeartbeat: renews the session, and unfences, fences or shuts the
    /// broker down as it asks and as its state allows.
    pub fn heartbeat(
        &mut self,
        image: &MetadataImage,
        now_ms: i64,
        request: BrokerHeartbeatRequest,
    ) -> Decision<(Vec<MetadataRecord>, BrokerHeartbeatReply)> {
        let registration = registration_for(image, request.broker_id, request.broker_epoch)?;
        self.sessions
            .touch(registration, now_ms, request.metadata_offset);
        let is_caught_up = request.metadata_offset >= registration.registered_at;
        let (id, epoch) = (registration.broker_id, registration.broker_epoch);
        let mut pending = Pending::new(image);
        let mut should_shut_down = false;
        if registration.fenced {
            // A fenced broker leads nothing, so it may stop at once (Kafka's SHUTDOWN_NOW).
            should_shut_down = request.want_shutdown;
            if !request.want_shutdown && !request.want_fence && is_caught_up {
                unfence(&mut pending, &self.config, registration);
            }
        } else if request.want_fence {
            fence(&mut pending, &self.config, id, epoch);
            should_shut_down = request.want_shutdown;
        } else if request.want_shutdown || registration.in_controlled_shutdown {
            if !registration.in_controlled_shutdown {
                self.begin_controlled_shutdown(&mut pending, id, epoch);
            }
            if !election::leads_any(pending.image(), id)
                && self.sessions.others_have_seen_shutdown(pending.image(), id)
            {
                fence(&mut pending, &self.config, id, epoch);
                should_shut_down = true;
            }
        }
        let is_fenced = pending.image().brokers.get(&id).is_some_and(|b| b.fenced);
        self.sessions.observe(pending.image());
        let reply = BrokerHeartbeatReply {
            is_caught_up,
            is_fenced,
            should_shut_down,
        };
        Ok((pending.into_records(), reply))
    }

    /// Fences brokers whose session expired and, when the leadership check is due, elects
    /// leaders (see [`Controller::elect_leaders`]); returns the records (fences and
    /// leadership changes).
    pub fn tick(&mut self, image: &MetadataImage, now_ms: i64) -> Vec<MetadataRecord> {
        let mut pending = Pending::new(image);
        for (id, epoch) in self.sessions.expired_brokers(image, now_ms) {
            tracing::info!(broker = %id, %epoch, "broker session expired, fencing it");
            fence(&mut pending, &self.config, id, epoch);
        }
        self.check_leadership_if_due(&mut pending, now_ms);
        self.sessions.observe(pending.image());
        pending.into_records()
    }

    /// When `tick` next has something to do (the earliest session expiry or leadership
    /// check), if ever.
    pub fn next_deadline(&self) -> Option<i64> {
        [self.sessions.next_deadline(), self.next_leader_check_ms]
            .into_iter()
            .flatten()
            .min()
    }

    /// Marks the broker as shutting down and moves its leaderships away. When anything
    /// moved, the broker must wait until every other active broker has applied the entry
    /// these records land in: the next index, by the shell's contract.
    fn begin_controlled_shutdown(
        &mut self,
        pending: &mut Pending<'_>,
        broker_id: BrokerId,
        broker_epoch: BrokerEpoch,
    ) {
        pending.push(MetadataRecord::BrokerRegistrationChange {
            broker_id,
            broker_epoch,
            fenced: None,
            in_controlled_shutdown: Some(true),
        });
        let moved = election::move_away_from(pending, &self.config, broker_id);
        let offset = (moved > 0).then(|| pending.image().applied_index().saturating_add(1));
        self.sessions
            .set_controlled_shutdown_offset(broker_id, offset);
    }
}

/// The registration a heartbeat speaks for, or Kafka's error for an unknown broker or a
/// stale epoch (a heartbeat from a previous incarnation).
pub(super) fn registration_for(
    image: &MetadataImage,
    broker_id: BrokerId,
    broker_epoch: BrokerEpoch,
) -> Decision<&BrokerRegistration> {
    let registration = image.brokers.get(&broker_id).ok_or_else(|| {
        ApiError::new(
            ResponseError::BrokerIdNotRegistered,
            format!("Broker ID {broker_id} is not currently registered"),
        )
    })?;
    if registration.broker_epoch != broker_epoch {
        return Err(ApiError::new(
            ResponseError::StaleBrokerEpoch,
            format!(
                "Expected broker epoch {}, but got broker epoch {broker_epoch}",
                registration.broker_epoch
            ),
        ));
    }
    Ok(registration)
}

/// Fences a broker: it leaves the in-sync replicas where others remain and leads nothing.
fn fence(
    pending: &mut Pending<'_>,
    config: &ControllerConfig,
    broker_id: BrokerId,
    broker_epoch: BrokerEpoch,
) {
    pending.push(MetadataRecord::BrokerRegistrationChange {
        broker_id,
        broker_epoch,
        fenced: Some(true),
        in_controlled_shutdown: None,
    });
    election::move_away_from(pending, config, broker_id);
}

/// Unfences a caught-up broker (ending a controlled shutdown it no longer asks for) and
/// elects leaders for the leaderless partitions it may lead now.
fn unfence(
    pending: &mut Pending<'_>,
    config: &ControllerConfig,
    registration: &BrokerRegistration,
) {
    pending.push(MetadataRecord::BrokerRegistrationChange {
        broker_id: registration.broker_id,
        broker_epoch: registration.broker_epoch,
        fenced: Some(false),
        in_controlled_shutdown: registration.in_controlled_shutdown.then_some(false),
    });
    election::elect_leaderless(pending, config);
}
