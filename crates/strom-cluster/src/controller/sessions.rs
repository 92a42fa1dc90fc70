//! The active controller's memory of each broker's session: when it last heartbeated, which
//! metadata offset it reported, and where a controlled shutdown must be seen before the
//! broker may stop. Kafka's `BrokerHeartbeatManager`.
//!
//! None of this is in the metadata log. A newly active controller cannot know when brokers
//! last heartbeated to its predecessor, so [`Sessions::activate`] gives every broker a full
//! session from the moment of activation; a broker that is really gone is fenced one session
//! timeout later.
//!
//! A session expires when `now_ms - last_contact_ms > timeout_ms` (strictly): a broker that
//! heartbeats exactly at the timeout is still alive. Only unfenced brokers' sessions expire;
//! the `fenced` flag is a copy of the image's, refreshed after every decision, so that
//! [`Sessions::next_deadline`] needs no image.

use std::collections::BTreeMap;

use crate::ids::{BrokerEpoch, BrokerId};
use crate::image::{BrokerRegistration, MetadataImage};

#[derive(Debug, Clone, PartialEq, Eq)]
struct BrokerSession {
    /// The registration this memory belongs to; a new registration starts afresh.
    broker_epoch: BrokerEpoch,
    last_contact_ms: i64,
    fenced: bool,
    /// The index of the last metadata log entry the broker said it has applied.
    metadata_offset: u64,
    /// Set while the broker is in controlled shutdown: the log index that every active broker
    /// must have applied (it moved the broker's leaderships away) before it may stop.
    controlled_shutdown_offset: Option<u64>,
}

fn fresh(registration: &BrokerRegistration, now_ms: i64) -> BrokerSession {
    BrokerSession {
        broker_epoch: registration.broker_epoch,
        last_contact_ms: now_ms,
        fenced: registration.fenced,
        metadata_offset: 0,
        controlled_shutdown_offset: None,
    }
}

#[derive(Debug, Clone)]
pub(super) struct Sessions {
    timeout_ms: i64,
    brokers: BTreeMap<BrokerId, BrokerSession>,
}

impl Sessions {
    pub(super) fn new(timeout_ms: i64) -> Self {
        Sessions {
            timeout_ms,
            brokers: BTreeMap::new(),
        }
    }

    /// Forgets everything and gives every registered broker a full session from `now_ms`.
    /// Brokers already in controlled shutdown wait for the current log end, the latest point
    /// at which their leaderships can have moved.
    pub(super) fn activate(&mut self, image: &MetadataImage, now_ms: i64) {
        self.brokers.clear();
        for registration in image.brokers.values() {
            let session = self.start(registration, now_ms);
            session.controlled_shutdown_offset = registration
                .in_controlled_shutdown
                .then(|| image.applied_index());
        }
    }

    /// A new session for `registration`, replacing any earlier memory of the broker.
    fn start(&mut self, registration: &BrokerRegistration, now_ms: i64) -> &mut BrokerSession {
        let slot = self
            .brokers
            .entry(registration.broker_id)
            .or_insert_with(|| fresh(registration, now_ms));
        *slot = fresh(registration, now_ms);
        slot
    }

    /// The session of `registration`, started at `now_ms` if the controller has none for this
    /// broker epoch (a registration it did not see, before `activate` caught up with it).
    fn session(&mut self, registration: &BrokerRegistration, now_ms: i64) -> &mut BrokerSession {
        let slot = self
            .brokers
            .entry(registration.broker_id)
            .or_insert_with(|| fresh(registration, now_ms));
        if slot.broker_epoch != registration.broker_epoch {
            *slot = fresh(registration, now_ms);
        }
        slot
    }

    /// A new registration: its session starts now, fenced.
    pub(super) fn register(&mut self, registration: &BrokerRegistration, now_ms: i64) {
        self.start(registration, now_ms);
    }

    /// Renews the session of a broker that heartbeated (or retried its registration).
    pub(super) fn touch(
        &mut self,
        registration: &BrokerRegistration,
        now_ms: i64,
        metadata_offset: u64,
    ) {
        let session = self.session(registration, now_ms);
        session.last_contact_ms = session.last_contact_ms.max(now_ms);
        session.metadata_offset = session.metadata_offset.max(metadata_offset);
    }

    /// Kafka's `hasValidSession`: unfenced and heard from within the session timeout.
    pub(super) fn has_valid_session(&self, registration: &BrokerRegistration, now_ms: i64) -> bool {
        !registration.fenced
            && self.brokers.get(&registration.broker_id).is_some_and(|s| {
                s.broker_epoch == registration.broker_epoch && !self.expired(s, now_ms)
            })
    }

    fn expired(&self, session: &BrokerSession, now_ms: i64) -> bool {
        now_ms - session.last_contact_ms > self.timeout_ms
    }

    /// The unfenced brokers of `image` whose sessions have expired, in broker id order.
    /// Brokers the controller has no memory of get a session from `now_ms` instead.
    pub(super) fn expired_brokers(
        &mut self,
        image: &MetadataImage,
        now_ms: i64,
    ) -> Vec<(BrokerId, BrokerEpoch)> {
        self.brokers.retain(|id, _| image.brokers.contains_key(id));
        let mut expired = Vec::new();
        for registration in image.unfenced_brokers() {
            let last_contact_ms = self.session(registration, now_ms).last_contact_ms;
            if now_ms - last_contact_ms > self.timeout_ms {
                expired.push((registration.broker_id, registration.broker_epoch));
            }
        }
        expired
    }

    /// Copies the fenced flags of `image` (the image as the decision leaves it).
    pub(super) fn observe(&mut self, image: &MetadataImage) {
        for (id, session) in &mut self.brokers {
            if let Some(registration) = image.brokers.get(id)
                && registration.broker_epoch == session.broker_epoch
            {
                session.fenced = registration.fenced;
            }
        }
    }

    /// The first instant at which an unfenced broker's session will have expired.
    pub(super) fn next_deadline(&self) -> Option<i64> {
        self.brokers
            .values()
            .filter(|s| !s.fenced)
            .map(|s| {
                s.last_contact_ms
                    .saturating_add(self.timeout_ms)
                    .saturating_add(1)
            })
            .min()
    }

    pub(super) fn set_controlled_shutdown_offset(&mut self, broker: BrokerId, offset: Option<u64>) {
        if let Some(session) = self.brokers.get_mut(&broker) {
            session.controlled_shutdown_offset = offset;
        }
    }

    /// Kafka's rule for finishing a controlled shutdown: every other active broker (unfenced,
    /// not shutting down) has applied the entry that moved `broker`'s leaderships away, so
    /// none of them still sends clients to it.
    pub(super) fn others_have_seen_shutdown(
        &self,
        image: &MetadataImage,
        broker: BrokerId,
    ) -> bool {
        let Some(offset) = self
            .brokers
            .get(&broker)
            .and_then(|s| s.controlled_shutdown_offset)
        else {
            return true;
        };
        image
            .available_brokers()
            .filter(|b| b.broker_id != broker)
            .all(|b| {
                self.brokers
                    .get(&b.broker_id)
                    .is_some_and(|s| s.metadata_offset >= offset)
            })
    }
}
