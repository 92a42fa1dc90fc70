//! The controller: decides every change to cluster metadata, as a pure state machine.
//!
//! It runs on the active controller (the Raft leader of the metadata quorum). Every call takes
//! the committed [`MetadataImage`] and, where time matters, `now_ms`; it returns the records
//! to append and the reply. It never writes anything and never changes the image: the shell
//! appends the records through Raft, and the change is real once they are committed and
//! replayed.
//!
//! ```text
//!   shell (strom-quorum)                          Controller
//!   --------------------                          ----------
//!   became leader ─ activate(image, now) ───────▶ every registered broker: a full session
//!   BrokerRegistration ─ register_broker(...) ──▶ (records, broker epoch) | error
//!   BrokerHeartbeat ─ heartbeat(...) ───────────▶ (records, caught up / fenced / shut down)
//!   at next_deadline() ─ tick(image, now) ──────▶ records: expired sessions fenced
//!                                                  and, every leader imbalance check
//!                                                  interval, leaderless partitions elected
//!                                                  and preferred leaders restored
//!   CreateTopics ─ create_topics(...) ──────────▶ (records, one result per topic)
//!   DeleteTopics ─ delete_topics(...) ──────────▶ (records, one result per topic)
//!   CreatePartitions ─ create_partitions(...) ──▶ records | error
//!   AlterPartition ─ alter_partition(...) ──────▶ (records, partition state) | error
//!   ElectLeaders ─ elect_leaders(...) ──────────▶ (records, one result per partition)
//!   AlterPartitionReassignments ─ alter_partition_reassignments(...)
//!                                              ▶ (records, one result per partition)
//!   UnregisterBroker ─ unregister_broker(...) ──▶ records | error
//!   AllocateProducerIds ─ allocate_producer_ids ▶ (first id, block size, record) | error
//!   AlterConfigs ─ alter_configs(image, ...) ───▶ records | error   (free functions, like
//!   ListPartitionReassignments ─ list_partition_reassignments(image, ...)   this one: they
//!                                                   need no memory or randomness)
//!   AlterUserScramCredentials ─ alter_user_scram_credentials(image, ...)
//!                                              ▶ (records, one result per user)
//!   CreateAcls ─ create_acls(image, bindings) ──▶ (records, one result per binding)
//!   DeleteAcls ─ delete_acls(image, filters) ───▶ (records, matches per filter)
//!        │
//!        ▼ append the records as one entry of the metadata log (one Raft write)
//!   committed ─ replayed into the next MetadataImage ─ passed to the next call
//! ```
//!
//! The contract with the shell: decisions are serialized, and each decision's records are
//! appended as a single log entry and applied before the next decision is made. The
//! controller relies on it to predict where its records land: a broker's epoch is the index
//! of the entry that registers it (`applied_index + 1`), as in Kafka.
//!
//! The controller's own memory (the last heartbeat and metadata offset of each broker, the
//! seeded random generator) is not in the metadata log; a newly active controller rebuilds it
//! with [`Controller::activate`]. Randomness (replica placement, topic ids) comes from a
//! ChaCha8 generator seeded at construction, so a seed replays the same decisions.
//!
//! Submodules: `topics` (create, delete, create partitions), `configs` (alter configs),
//! `placement` (where replicas go), `partition_change` (one partition's next state: leader,
//! in-sync and eligible leader replicas, reassignment completion, epochs) with
//! `replication_config` (the topic configs it depends on), `election` (what broker events
//! do to partitions), `alter_partition` (the leader's in-sync replica changes),
//! `leadership` (ElectLeaders and the automatic preferred leader rebalance), `reassignment`,
//! `scram` (SCRAM users), `acls` (ACLs), `lifecycle` (registration, heartbeats, fencing, controlled shutdown) with `sessions` (the
//! heartbeat memory) and `unregister`, `producer_ids`, and `pending` (an image with the
//! records decided so far).

mod acls;
mod alter_partition;
mod configs;
mod election;
mod leadership;
mod lifecycle;
mod partition_change;
mod pending;
mod placement;
mod producer_ids;
mod reassignment;
mod replication_config;
mod scram;
mod sessions;
mod topics;
mod unregister;

use kafka_protocol::error::ResponseError;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use acls::{MAX_ACL_RECORDS_PER_REQUEST, delete_acls};
pub use alter_partition::{AlterPartitionReply, AlterPartitionRequest};
pub use configs::{AlterOp, alter_configs};
pub use election::{elect_leader, leads_any};
pub use leadership::{ElectionResult, ElectionType};
pub use lifecycle::{
    BrokerHeartbeatReply, BrokerHeartbeatRequest, BrokerRegistrationReply,
    BrokerRegistrationRequest,
};
pub use placement::{DEFAULT_MAX_REPLICATION_FACTOR, Placement};
pub use producer_ids::{PRODUCER_ID_BLOCK_SIZE, allocate_producer_ids};
pub use reassignment::{OngoingReassignment, PartitionReassignment, list_partition_reassignments};
pub use replication_config::{
    MIN_INSYNC_REPLICAS, ReplicationConfig, UNCLEAN_LEADER_ELECTION_ENABLE,
};
pub use scram::{ScramDeletion, ScramUpsertion, UserResult, alter_user_scram_credentials};
pub use topics::{
    CreateDefaults, CreateTopic, CreatedTopic, MAX_PARTITIONS_PER_REQUEST, MAX_TOPIC_NAME_LENGTH,
    create_partitions, create_topic, delete_topic, validate_topic_name,
};

use crate::config::InvalidConfig;
use crate::ids::BrokerId;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;
use pending::Pending;
use sessions::Sessions;

/// A refused request: a Kafka error code and a message for the client. It travels over the
/// controller RPC as `{ "code": i16, "message": String }`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{error:?}: {message}")]
#[serde(from = "ApiErrorWire", into = "ApiErrorWire")]
pub struct ApiError {
    pub error: ResponseError,
    pub message: String,
}

impl ApiError {
    pub fn new(error: ResponseError, message: impl Into<String>) -> Self {
        Self {
            error,
            message: message.into(),
        }
    }
    pub fn code(&self) -> i16 {
        self.error.code()
    }
}

impl From<InvalidConfig> for ApiError {
    fn from(e: InvalidConfig) -> Self {
        ApiError::new(ResponseError::InvalidConfig, e.message)
    }
}

/// [`ApiError`] as it is serialized.
#[derive(Serialize, Deserialize)]
struct ApiErrorWire {
    code: i16,
    message: String,
}

impl From<ApiError> for ApiErrorWire {
    fn from(e: ApiError) -> Self {
        ApiErrorWire {
            code: e.code(),
            message: e.message,
        }
    }
}

impl From<ApiErrorWire> for ApiError {
    /// A code this version does not know (or 0, which is no error at all) cannot be passed
    /// on as it is, so it becomes UNKNOWN_SERVER_ERROR; the message still says what happened.
    fn from(wire: ApiErrorWire) -> Self {
        let error = match ResponseError::try_from_code(wire.code) {
            None | Some(ResponseError::Unknown(_)) => ResponseError::UnknownServerError,
            Some(error) => error,
        };
        ApiError::new(error, wire.message)
    }
}

/// What a decision produces: records (or a reply) on success, a Kafka error otherwise.
pub type Decision<T = Vec<MetadataRecord>> = Result<T, ApiError>;

/// The active controller's settings: its static configuration, with Kafka's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerConfig {
    /// `broker.session.timeout.ms`: a broker that has not heartbeated for longer is fenced.
    pub broker_session_timeout_ms: i64,
    /// The largest replication factor that may be created or reassigned to; a larger one is
    /// refused with INVALID_REPLICATION_FACTOR. No limit by default (beyond the available
    /// brokers); a deployment can lower it.
    pub max_replication_factor: i16,
    /// `min.insync.replicas` for topics that set none, when the cluster default (a dynamic
    /// config) is not set either.
    pub default_min_insync_replicas: i16,
    /// `unclean.leader.election.enable` likewise.
    pub default_unclean_leader_election: bool,
    /// `auto.leader.rebalance.enable`: every `leader_imbalance_check_interval_ms`, move
    /// leadership back to preferred replicas that are in sync and available.
    pub auto_leader_rebalance_enable: bool,
    /// Kafka's `leader.imbalance.check.interval.seconds`, in milliseconds.
    pub leader_imbalance_check_interval_ms: i64,
}

impl Default for ControllerConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        ControllerConfig {
            broker_session_timeout_ms: 9000,
            max_replication_factor: DEFAULT_MAX_REPLICATION_FACTOR,
            default_min_insync_replicas: 1,
            default_unclean_leader_election: false,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_ms: 300_000,
        }
    }
}

/// The active controller's decisions and memory. See the module docs for the flow.
#[derive(Debug, Clone)]
pub struct Controller {
    config: ControllerConfig,
    rng: ChaCha8Rng,
    sessions: Sessions,
    /// When `tick` next runs the leadership check (the `leadership` module); `None` when
    /// the automatic rebalance is off or the controller was never activated.
    next_leader_check_ms: Option<i64>,
}

impl Controller {
    pub fn new(config: ControllerConfig, seed: u64) -> Self {
        Controller {
            sessions: Sessions::new(config.broker_session_timeout_ms),
            rng: ChaCha8Rng::seed_from_u64(seed),
            config,
            next_leader_check_ms: None,
        }
    }

    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// CreateTopics, batched: each topic is decided against the image plus the records of the
    /// topics before it in the same request; one result per topic, in order. With
    /// `validate_only` the results are the same and no records are returned.
    pub fn create_topics(
        &mut self,
        image: &MetadataImage,
        topics: &[CreateTopic],
        defaults: CreateDefaults,
        validate_only: bool,
    ) -> (Vec<MetadataRecord>, Vec<Decision<CreatedTopic>>) {
        // Kafka refuses the whole request when it would create too many partitions at once.
        let requested: i64 = topics
            .iter()
            .map(|t| t.requested_partitions(defaults))
            .sum();
        if requested > MAX_PARTITIONS_PER_REQUEST {
            let refusal = ApiError::new(
                ResponseError::PolicyViolation,
                "Excessively large number of partitions per request.",
            );
            return (Vec::new(), vec![Err(refusal); topics.len()]);
        }
        let mut pending = Pending::new(image);
        let mut results = Vec::with_capacity(topics.len());
        for topic in topics {
            let topic_id = self.new_topic_id(pending.image());
            let placement = self.placement();
            let decision = create_topic(pending.image(), topic, defaults, topic_id, placement).map(
                |(records, created)| {
                    pending.extend(records);
                    created
                },
            );
            results.push(decision);
        }
        let records = if validate_only {
            Vec::new()
        } else {
            pending.into_records()
        };
        (records, results)
    }

    /// DeleteTopics by name, batched like [`Controller::create_topics`]: a name given twice
    /// is deleted once and the second gets UNKNOWN_TOPIC_OR_PARTITION. Each success carries
    /// the deleted topic's id.
    pub fn delete_topics(
        &self,
        image: &MetadataImage,
        names: &[String],
    ) -> (Vec<MetadataRecord>, Vec<Decision<Uuid>>) {
        let mut pending = Pending::new(image);
        let mut results = Vec::with_capacity(names.len());
        for name in names {
            let topic_id = pending.image().topic(name).map(|t| t.topic_id);
            let decision = delete_topic(pending.image(), name).map(|records| {
                pending.extend(records);
                topic_id.unwrap_or_default()
            });
            results.push(decision);
        }
        (pending.into_records(), results)
    }

    /// CreatePartitions for one topic, placed from the seeded generator and bounded by
    /// `max_replication_factor`.
    pub fn create_partitions(
        &mut self,
        image: &MetadataImage,
        name: &str,
        new_total: i32,
        assignments: Option<&[Vec<BrokerId>]>,
    ) -> Decision {
        let placement = self.placement();
        create_partitions(image, name, new_total, assignments, placement)
    }

    /// Kafka's random start and replica shift, from the seeded generator.
    fn placement(&mut self) -> Placement {
        Placement {
            start_index: self.rng.next_u32() as usize,
            replica_shift: self.rng.next_u32() as usize,
            max_replication_factor: self.config.max_replication_factor,
        }
    }

    /// A version-4-shaped UUID from the seeded generator, never nil and never one the image
    /// already uses.
    fn new_topic_id(&mut self, image: &MetadataImage) -> Uuid {
        loop {
            let id = self.random_uuid();
            if image.topic_by_id(&id).is_none() {
                return id;
            }
        }
    }

    /// A version-4-shaped UUID from the seeded generator (never nil: the version bits).
    fn random_uuid(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_travel_as_code_and_message() {
        let e = ApiError::new(ResponseError::StaleBrokerEpoch, "old");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, format!(r#"{{"code":{},"message":"old"}}"#, e.code()));
        assert_eq!(serde_json::from_str::<ApiError>(&json).unwrap(), e);
    }

    #[test]
    fn unknown_error_codes_arrive_as_unknown_server_error() {
        for code in [0, 30_000] {
            let json = format!(r#"{{"code":{code},"message":"m"}}"#);
            let e: ApiError = serde_json::from_str(&json).unwrap();
            assert_eq!(e.error, ResponseError::UnknownServerError);
            assert_eq!(e.message, "m");
        }
    }

    #[test]
    fn topic_ids_are_version_4_and_follow_the_seed() {
        let image = MetadataImage::default();
        let mut a = Controller::new(ControllerConfig::default(), 7);
        let mut b = Controller::new(ControllerConfig::default(), 7);
        let id = a.new_topic_id(&image);
        assert_eq!(id.get_version_num(), 4);
        assert_eq!(id, b.new_topic_id(&image));
        assert_ne!(id, a.new_topic_id(&image));
    }
}
