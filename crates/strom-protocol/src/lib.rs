//! The Kafka wire protocol around the messages: framing, request headers and response encoding.
//!
//! Every message body is encoded and decoded by the `kafka-protocol` crate (generated from
//! Kafka's own JSON schemas). This crate owns only what sits around those bodies:
//! - [`frame`]: the 4-byte length prefix, with the size limit applied before any allocation;
//! - [`body`]: decoding a request body so that no count or length read from it allocates more
//!   than the bytes received;
//! - [`header`]: reading the request header, including the fixed prefix that identifies a
//!   request even when its API key or version is one we cannot decode;
//! - [`response`]: encoding a response frame with the header version the request implies.
//!
//! Record batches inside produce and fetch messages stay raw `Bytes`; their format belongs to
//! the storage engine (`strom_log::batch`).

pub mod body;
pub mod frame;
pub mod header;
pub mod response;

pub use body::{BodyError, decode_request};
pub use frame::{FrameError, decode_frame};
pub use header::{HeaderError, RequestHeaderPrefix, decode_request_header};
pub use response::{EncodeError, encode_response};

/// Re-exported so the broker and tests use one version of the codec crate.
pub use kafka_protocol;
