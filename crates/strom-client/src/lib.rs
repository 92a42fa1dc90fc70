//! strom-client: Strom's own small async Kafka client.
//!
//! It is what the broker's integration tests, the operator CLI (`strom topic|produce|consume|
//! group|cluster|config`) and `strom bench` stand on, and it speaks to any Kafka-protocol
//! broker. Every protocol message is encoded and decoded by the `kafka-protocol` crate; this
//! crate adds the conversation around them.
//!
//! Layers, bottom up:
//! - [`connection`]: one pipelined TCP connection to one broker, with ApiVersions negotiation
//!   (KIP-511 fallback), correlation-id matching, per-request timeouts, and raw-bytes access for
//!   malformed-input tests ([`Connection::send_raw`], [`RawConnection`]); TLS and SASL
//!   (PLAIN, SCRAM) from Kafka client properties in [`security`].
//! - [`client`]: the cluster-aware [`Client`]: bootstrap, a metadata cache, one connection per
//!   broker, routing to any broker / a broker / the controller / a partition leader / a group
//!   coordinator, and retries when the cluster says a request went to the wrong place.
//! - Operations on [`Client`]: [`admin`] (topics, configs, cluster, offsets, records, leader
//!   elections, partition reassignments), [`scram`] (SCRAM users), [`acl`] (ACLs),
//!   [`producer`] (batching, compression, partitioning, idempotence), [`consumer`] (fetch and a
//!   single-partition consumer), [`groups`] (group administration), [`group_consumer`] (a
//!   group member with the classic protocol and the range assignor) and [`transactions`]
//!   (listing, describing and aborting transactions).
//! - [`records`]: the RecordBatch v2 format, [`partitioner`]: murmur2 like the Java client.
//!
//! Errors: one [`Error`] enum; Kafka error codes become [`Error::Kafka`] printed with Kafka's
//! own name (`UNKNOWN_TOPIC_OR_PARTITION`). Batched operations return a result per item.
//!
//! ```no_run
//! # async fn example() -> strom_client::Result<()> {
//! use strom_client::{Client, ClientConfig, ProducerConfig, ProducerRecord, StartOffset};
//!
//! let client = Client::connect(ClientConfig::new("127.0.0.1:9092")).await?;
//! client.create_topic("events", 3, 1).await?;
//! let producer = client.producer(ProducerConfig::default()).await?;
//! let written = producer
//!     .send_and_wait(ProducerRecord::new("events", "hello").with_key("k"))
//!     .await?;
//! let mut consumer = client
//!     .partition_consumer("events", written.partition, StartOffset::Earliest, Default::default())
//!     .await?;
//! let records = consumer.poll().await?;
//! # let _ = records;
//! # Ok(())
//! # }
//! ```

pub mod acl;
pub mod admin;
pub mod client;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod group_consumer;
pub mod groups;
pub mod metadata;
pub mod partitioner;
pub mod producer;
pub mod records;
pub mod scram;
pub mod security;
pub mod transactions;

#[cfg(test)]
mod testing;

pub use acl::{AclBinding, AclBindingFilter};
pub use admin::{
    AlterConfigOp, AlterConfigOpType, ClusterDescription, ConfigEntry, ConfigResource,
    ConfigSource, ConfigSynonym, ElectionType, ListedOffset, NewTopic, OffsetSpec,
    OngoingReassignment, PartitionDescription, QuorumDescription, QuorumReplica, TopicDescription,
    TopicListing,
};
pub use client::{Client, ClientConfig};
pub use connection::{
    ApiVersions, Connection, ConnectionConfig, RawConnection, decode_response_frame,
    encode_request_frame,
};
pub use consumer::{
    FetchOptions, IsolationLevel, PartitionConsumer, PartitionRecords, StartOffset,
};
pub use error::{Error, Result};
pub use group_consumer::{AutoOffsetReset, GroupConsumer, GroupConsumerConfig};
pub use groups::{CommittedOffset, GroupDescription, GroupListing, MemberDescription};
pub use metadata::{
    BrokerMetadata, ClusterMetadata, PartitionMetadata, TopicMetadata, TopicPartition,
};
pub use producer::{Acks, Delivery, Producer, ProducerConfig, RecordMetadata};
pub use records::{Compression, ConsumerRecord, Header, ProducerRecord, TimestampType};
pub use scram::{ScramCredentialInfo, ScramMechanism, UserScramAlteration};
pub use security::{ClientSecurity, SaslCredentials, SecurityProtocol};
pub use transactions::{ProducerState, TransactionDescription, TransactionListing};

/// The kafka-protocol crate this client is built on, re-exported so callers can build raw
/// requests with the same version.
pub use kafka_protocol;
