//! Kafka error codes the coordinator puts into responses, and the mapping from a failed
//! `__consumer_offsets` append to the code the client sees.
//!
//! Codes are plain `i16` because that is what the wire carries; they are taken from
//! `kafka_protocol::error::ResponseError` so the numbers cannot drift.

use kafka_protocol::error::ResponseError;

/// A Kafka error code as carried in responses (0 means no error).
pub type ErrorCode = i16;

pub const NONE: ErrorCode = 0;
pub const UNKNOWN_SERVER_ERROR: ErrorCode = ResponseError::UnknownServerError.code();
pub const OFFSET_METADATA_TOO_LARGE: ErrorCode = ResponseError::OffsetMetadataTooLarge.code();
pub const COORDINATOR_LOAD_IN_PROGRESS: ErrorCode = ResponseError::CoordinatorLoadInProgress.code();
pub const COORDINATOR_NOT_AVAILABLE: ErrorCode = ResponseError::CoordinatorNotAvailable.code();
pub const NOT_COORDINATOR: ErrorCode = ResponseError::NotCoordinator.code();
pub const ILLEGAL_GENERATION: ErrorCode = ResponseError::IllegalGeneration.code();
pub const INCONSISTENT_GROUP_PROTOCOL: ErrorCode = ResponseError::InconsistentGroupProtocol.code();
pub const INVALID_GROUP_ID: ErrorCode = ResponseError::InvalidGroupId.code();
pub const UNKNOWN_MEMBER_ID: ErrorCode = ResponseError::UnknownMemberId.code();
pub const INVALID_SESSION_TIMEOUT: ErrorCode = ResponseError::InvalidSessionTimeout.code();
pub const REBALANCE_IN_PROGRESS: ErrorCode = ResponseError::RebalanceInProgress.code();
pub const NON_EMPTY_GROUP: ErrorCode = ResponseError::NonEmptyGroup.code();
pub const GROUP_ID_NOT_FOUND: ErrorCode = ResponseError::GroupIdNotFound.code();
pub const MEMBER_ID_REQUIRED: ErrorCode = ResponseError::MemberIdRequired.code();
pub const GROUP_MAX_SIZE_REACHED: ErrorCode = ResponseError::GroupMaxSizeReached.code();
pub const FENCED_INSTANCE_ID: ErrorCode = ResponseError::FencedInstanceId.code();
pub const GROUP_SUBSCRIBED_TO_TOPIC: ErrorCode = ResponseError::GroupSubscribedToTopic.code();
/// OffsetFetch with `require_stable`: a transaction has offsets for the partition pending.
pub const UNSTABLE_OFFSET_COMMIT: ErrorCode = ResponseError::UnstableOffsetCommit.code();

// Append errors the shell may report for a failed write (inputs to `map_append_error`).
pub const UNKNOWN_TOPIC_OR_PARTITION: ErrorCode = ResponseError::UnknownTopicOrPartition.code();
pub const NOT_ENOUGH_REPLICAS: ErrorCode = ResponseError::NotEnoughReplicas.code();
pub const REQUEST_TIMED_OUT: ErrorCode = ResponseError::RequestTimedOut.code();
pub const NOT_LEADER_OR_FOLLOWER: ErrorCode = ResponseError::NotLeaderOrFollower.code();
pub const KAFKA_STORAGE_ERROR: ErrorCode = ResponseError::KafkaStorageError.code();
pub const MESSAGE_TOO_LARGE: ErrorCode = ResponseError::MessageTooLarge.code();
pub const RECORD_LIST_TOO_LARGE: ErrorCode = ResponseError::RecordListTooLarge.code();
pub const INVALID_FETCH_SIZE: ErrorCode = ResponseError::InvalidFetchSize.code();

/// Maps the error of a failed `__consumer_offsets` append to the code a group client can act
/// on, as Kafka's coordinator does (`appendGroupMetadataErrorToResponseError`): replication
/// trouble means "try again" (COORDINATOR_NOT_AVAILABLE), lost leadership or a broken disk
/// means "find the coordinator again" (NOT_COORDINATOR), and a batch too large is a bug on our
/// side (UNKNOWN_SERVER_ERROR). Anything else passes through.
pub fn map_append_error(append_error: ErrorCode) -> ErrorCode {
    match append_error {
        UNKNOWN_TOPIC_OR_PARTITION | NOT_ENOUGH_REPLICAS | REQUEST_TIMED_OUT => {
            COORDINATOR_NOT_AVAILABLE
        }
        NOT_LEADER_OR_FOLLOWER | KAFKA_STORAGE_ERROR => NOT_COORDINATOR,
        MESSAGE_TOO_LARGE | RECORD_LIST_TOO_LARGE | INVALID_FETCH_SIZE => UNKNOWN_SERVER_ERROR,
        // A "failure" without a code would otherwise reach the client as success.
        NONE => UNKNOWN_SERVER_ERROR,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka_numbers() {
        assert_eq!(UNKNOWN_MEMBER_ID, 25);
        assert_eq!(REBALANCE_IN_PROGRESS, 27);
        assert_eq!(MEMBER_ID_REQUIRED, 79);
        assert_eq!(FENCED_INSTANCE_ID, 82);
        assert_eq!(GROUP_SUBSCRIBED_TO_TOPIC, 86);
        assert_eq!(NOT_COORDINATOR, 16);
        assert_eq!(UNSTABLE_OFFSET_COMMIT, 88);
    }

    #[test]
    fn append_errors_map_like_kafka() {
        assert_eq!(
            map_append_error(REQUEST_TIMED_OUT),
            COORDINATOR_NOT_AVAILABLE
        );
        assert_eq!(
            map_append_error(NOT_ENOUGH_REPLICAS),
            COORDINATOR_NOT_AVAILABLE
        );
        assert_eq!(map_append_error(NOT_LEADER_OR_FOLLOWER), NOT_COORDINATOR);
        assert_eq!(map_append_error(KAFKA_STORAGE_ERROR), NOT_COORDINATOR);
        assert_eq!(map_append_error(MESSAGE_TOO_LARGE), UNKNOWN_SERVER_ERROR);
        assert_eq!(map_append_error(NONE), UNKNOWN_SERVER_ERROR);
        assert_eq!(
            map_append_error(COORDINATOR_NOT_AVAILABLE),
            COORDINATOR_NOT_AVAILABLE
        );
    }
}
