//! The one place where domain errors become Kafka error codes.
//!
//! A Kafka error code is response data: a failed partition carries its code and the rest of the
//! request still succeeds. Each mapping that is not obvious says why it was chosen.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use strom_cluster::MetadataImage;
use strom_log::{AppendError, TopicPartition};

use crate::partition::Partition;
use crate::state::BrokerState;

/// A Kafka error code with the message clients show (error_message fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    pub error: ResponseError,
    pub message: String,
}

impl KafkaError {
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

impl From<&AppendError> for KafkaError {
    fn from(e: &AppendError) -> Self {
        let error = match e {
            AppendError::Corrupt(_) => ResponseError::CorruptMessage,
            AppendError::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
            AppendError::InvalidRecord(_) => ResponseError::InvalidRecord,
            AppendError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp,
            AppendError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            // INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED: for an idempotent (non-transactional)
            // producer Kafka reports the stale epoch this way, and clients bump their epoch.
            AppendError::ProducerFenced { .. } => ResponseError::InvalidProducerEpoch,
            // There is no transaction coordinator yet, so a transactional batch cannot be valid
            // here; INVALID_RECORD carries the reason to the client without implying a retry.
            AppendError::Storage(_) => ResponseError::KafkaStorageError,
            // Only a follower's append raises it (the fetcher handles it); it never reaches a
            // produce response.
            AppendError::OffsetMismatch { .. } => ResponseError::UnknownServerError,
        };
        KafkaError::new(error, e.to_string())
    }
}

impl From<&strom_log::Error> for KafkaError {
    fn from(e: &strom_log::Error) -> Self {
        let error = match e {
            strom_log::Error::OffsetOutOfRange { .. }
            | strom_log::Error::OffsetAboveHighWatermark { .. } => ResponseError::OffsetOutOfRange,
            strom_log::Error::Io { .. } | strom_log::Error::Offline(_) => {
                ResponseError::KafkaStorageError
            }
        };
        KafkaError::new(error, e.to_string())
    }
}

/// The local partition of `topic`/`index` if this broker leads it, or the error a client
/// should see: unknown topic or partition, not the leader, or a log that is offline.
pub fn led_partition(
    state: &BrokerState,
    image: &MetadataImage,
    topic: &str,
    index: i32,
) -> Result<Arc<Partition>, KafkaError> {
    let unknown = || {
        KafkaError::new(
            ResponseError::UnknownTopicOrPartition,
            "This server does not host this topic-partition.",
        )
    };
    let topic_image = image.topic(topic).ok_or_else(unknown)?;
    let partition_image = topic_image.partitions.get(&index).ok_or_else(unknown)?;
    let not_leader = || {
        KafkaError::new(
            ResponseError::NotLeaderOrFollower,
            "This server is not the leader for that topic-partition.",
        )
    };
    if partition_image.leader != state.node_id {
        return Err(not_leader());
    }
    let tp = TopicPartition {
        topic: topic.to_string(),
        partition: index,
    };
    // The image can name this broker leader a moment before the replica manager has opened
    // the log: the client retries, as after any leader change.
    match state.partition(&tp) {
        Some(p) if p.log.is_offline() => Err(KafkaError::new(
            ResponseError::KafkaStorageError,
            format!("The log of {tp} is offline after a storage error."),
        )),
        Some(p) if p.topic_id == topic_image.topic_id => Ok(p),
        _ => Err(not_leader()),
    }
}
