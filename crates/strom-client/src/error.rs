//! The crate's one error type.
//!
//! Two kinds of failure meet here. A *Kafka error* is an error code a broker put in a response
//! (`UNKNOWN_TOPIC_OR_PARTITION`, `NOT_LEADER_OR_FOLLOWER`, ...): it is data about one topic,
//! partition or group, and batched operations return it per item rather than failing the whole
//! call. Everything else (connection refused, a request that timed out, bytes that do not
//! decode) is a *client error* about the conversation itself.
//!
//! `Error` is `Clone` because one failure often has to be reported to many waiters: every record
//! of a failed batch, every request pending on a connection that closed.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A broker answered with a Kafka error code. `name` is Kafka's own spelling
    /// (`UNKNOWN_TOPIC_OR_PARTITION`), `message` the broker's optional explanation or context
    /// added by this client.
    #[error("{name}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The numeric Kafka error code.
        code: i16,
        /// Kafka's name for the code, e.g. `NOT_LEADER_OR_FOLLOWER`.
        name: String,
        /// The broker's error message, or context added by the client.
        message: Option<String>,
    },

    /// A fetch asked for an offset the partition does not have (Kafka's `OFFSET_OUT_OF_RANGE`),
    /// kept apart from [`Error::Kafka`] because consumers must decide where to resume.
    #[error("OFFSET_OUT_OF_RANGE: offset {offset} is out of range for {topic}-{partition}")]
    OffsetOutOfRange {
        /// The topic that was fetched.
        topic: String,
        /// The partition that was fetched.
        partition: i32,
        /// The offset that was asked for.
        offset: i64,
    },

    /// The TCP connection to a broker could not be opened.
    #[error("could not connect to {addr}: {source}")]
    Connect {
        /// `host:port` that was dialled.
        addr: String,
        /// The underlying IO error.
        #[source]
        source: Arc<std::io::Error>,
    },

    /// The connection closed (or failed) while the request was pending or before it was sent.
    #[error("connection to {addr} closed: {reason}")]
    ConnectionClosed {
        /// `host:port` of the broker.
        addr: String,
        /// Why the connection closed.
        reason: String,
    },

    /// No response arrived within the request timeout.
    #[error("{api} request to {addr} timed out after {timeout:?}")]
    RequestTimedOut {
        /// The API name, e.g. `Metadata`.
        api: String,
        /// `host:port` of the broker.
        addr: String,
        /// The timeout that expired.
        timeout: Duration,
    },

    /// The client and the broker share no version of an API.
    #[error("broker {addr} and this client share no version of {api}: {detail}")]
    UnsupportedVersion {
        /// The API name.
        api: String,
        /// `host:port` of the broker.
        addr: String,
        /// The two version ranges.
        detail: String,
    },

    /// A request could not be encoded (a field not valid for the chosen version, a string too
    /// long for its length prefix, ...).
    #[error("could not encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// Why it failed.
        reason: String,
    },

    /// A response (or other bytes from a broker) could not be decoded.
    #[error("could not decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// Why it failed.
        reason: String,
    },

    /// The broker broke the protocol (a frame with a negative length, a response for a request
    /// never sent, a response missing a partition that was asked for, ...).
    #[error("protocol violation by {addr}: {reason}")]
    Protocol {
        /// `host:port` of the broker, or a description of where the bytes came from.
        addr: String,
        /// What was wrong.
        reason: String,
    },

    /// A record batch failed validation (CRC, lengths, unsupported magic).
    #[error("corrupt record batch: {0}")]
    CorruptRecordBatch(String),

    /// No broker could be reached, or the broker needed is not in the cluster metadata.
    #[error("no broker available: {0}")]
    NoBrokerAvailable(String),

    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// SASL authentication failed: the broker refused the mechanism or the credentials, or
    /// (SCRAM) could not prove it knows them. Not retriable.
    #[error("authentication failed: {0}")]
    Authentication(String),

    /// An argument to an operation is invalid (no request was sent).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A client-side wait (metadata for a topic, a group rebalance, buffer space) took too long.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long the client waited.
        timeout: Duration,
    },

    /// The producer or consumer was closed.
    #[error("{0} is closed")]
    Closed(&'static str),
}

impl Error {
    /// The error for a non-zero Kafka error `code`, with an optional broker message.
    pub fn kafka(code: i16, message: Option<String>) -> Error {
        Error::Kafka {
            code,
            name: error_name(code),
            message: message.filter(|m| !m.is_empty()),
        }
    }

    /// `Ok(())` for code 0, otherwise the Kafka error with `message`.
    pub fn check(code: i16, message: Option<&str>) -> Result<()> {
        if code == 0 {
            Ok(())
        } else {
            Err(Error::kafka(code, message.map(str::to_owned)))
        }
    }

    /// The Kafka error code this error carries, if it is a Kafka error.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            Error::Kafka { code, .. } => Some(*code),
            Error::OffsetOutOfRange { .. } => Some(ResponseError::OffsetOutOfRange.code()),
            _ => None,
        }
    }

    /// True when this is the Kafka error `kind`.
    pub fn is(&self, kind: ResponseError) -> bool {
        self.kafka_code() == Some(kind.code())
    }

    /// True when retrying the same operation later may succeed: Kafka's retriable error codes
    /// plus connection failures and timeouts.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Kafka { code, .. } => {
                ResponseError::try_from_code(*code).is_some_and(|e| e.is_retriable())
            }
            Error::Connect { .. }
            | Error::ConnectionClosed { .. }
            | Error::RequestTimedOut { .. }
            | Error::NoBrokerAvailable(_) => true,
            _ => false,
        }
    }

    /// True when the error means the client's view of who leads a partition (or coordinates
    /// a group) is stale, so cached metadata must be refreshed before retrying.
    pub fn invalidates_metadata(&self) -> bool {
        match self {
            Error::Kafka { code, .. } => matches!(
                ResponseError::try_from_code(*code),
                Some(
                    ResponseError::NotLeaderOrFollower
                        | ResponseError::UnknownTopicOrPartition
                        | ResponseError::LeaderNotAvailable
                        | ResponseError::NotController
                        | ResponseError::NotCoordinator
                        | ResponseError::CoordinatorNotAvailable
                        | ResponseError::FencedLeaderEpoch
                        | ResponseError::UnknownLeaderEpoch
                        | ResponseError::UnknownTopicId
                        | ResponseError::InconsistentTopicId
                        | ResponseError::ReplicaNotAvailable
                        | ResponseError::KafkaStorageError
                )
            ),
            Error::Connect { .. } | Error::ConnectionClosed { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn encode(what: impl Into<String>, reason: impl std::fmt::Display) -> Error {
        Error::Encode {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn decode(what: impl Into<String>, reason: impl std::fmt::Display) -> Error {
        Error::Decode {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    /// Adds context to a Kafka error's message (which topic, which group); other errors are
    /// returned unchanged.
    pub(crate) fn with_context(self, context: impl std::fmt::Display) -> Error {
        match self {
            Error::Kafka {
                code,
                name,
                message,
            } => Error::Kafka {
                code,
                name,
                message: Some(match message {
                    Some(m) => format!("{context}: {m}"),
                    None => context.to_string(),
                }),
            },
            other => other,
        }
    }
}

/// Kafka's name for an error code, e.g. 3 -> `UNKNOWN_TOPIC_OR_PARTITION`.
///
/// kafka-protocol names its variants in CamelCase after Kafka's `Errors` enum, so converting the
/// variant name back to SCREAMING_SNAKE_CASE gives Kafka's spelling. Codes newer than the
/// kafka-protocol release are shown as `UNKNOWN_ERROR_CODE_<n>`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_owned(),
        Some(ResponseError::Unknown(code)) => format!("UNKNOWN_ERROR_CODE_{code}"),
        Some(known) => camel_to_screaming_snake(&format!("{known:?}")),
    }
}

fn camel_to_screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_error_names_use_kafkas_spelling() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(17), "INVALID_TOPIC_EXCEPTION");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(31000), "UNKNOWN_ERROR_CODE_31000");
    }

    #[test]
    fn kafka_error_display_shows_name_and_message() {
        let e = Error::kafka(3, Some("topic 'a' does not exist".into()));
        assert_eq!(
            e.to_string(),
            "UNKNOWN_TOPIC_OR_PARTITION: topic 'a' does not exist"
        );
        assert_eq!(Error::kafka(36, None).to_string(), "TOPIC_ALREADY_EXISTS");
        assert_eq!(
            Error::kafka(36, Some(String::new())).to_string(),
            "TOPIC_ALREADY_EXISTS"
        );
    }

    #[test]
    fn retriable_and_metadata_classification() {
        assert!(Error::kafka(6, None).is_retriable());
        assert!(Error::kafka(6, None).invalidates_metadata());
        assert!(!Error::kafka(36, None).is_retriable());
        assert!(!Error::kafka(36, None).invalidates_metadata());
        assert!(Error::kafka(36, None).is(ResponseError::TopicAlreadyExists));
        let out_of_range = Error::OffsetOutOfRange {
            topic: "t".into(),
            partition: 0,
            offset: 5,
        };
        assert_eq!(out_of_range.kafka_code(), Some(1));
    }
}
