//! Cluster metadata: what topics, partitions, brokers and configs exist, and the controller's
//! rules for changing them.
//!
//! The design follows Kafka's KRaft: every change is a [`MetadataRecord`] appended to a
//! metadata log and replayed into a [`MetadataImage`]. The [`controller`] decides which records
//! a request produces (pure functions of the image); the [`store`] makes them durable. On a
//! single node the store is a local file; the Raft quorum will replicate the same records.
//! [`config`] holds the definitions of every topic and broker property.

pub mod config;
pub mod controller;
pub mod image;
pub mod records;
pub mod store;

pub use controller::ApiError;
pub use image::{BrokerRegistration, MetadataImage, PartitionImage, TopicImage};
pub use records::{ConfigResource, MetadataRecord};
pub use store::{MetadataStore, StoreError};

/// The internal topic that stores consumer group offsets and metadata.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";
