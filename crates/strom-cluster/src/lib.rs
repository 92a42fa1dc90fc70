//! Cluster metadata: what topics, partitions, brokers and configs exist, and the controller's
//! rules for changing them.
//!
//! The design follows Kafka's KRaft: every change is a [`MetadataRecord`] appended to the
//! metadata log (replicated by the Raft quorum in `strom-quorum`) and replayed into a
//! [`MetadataImage`]. The [`controller`] decides which records a request produces (pure
//! functions of the image, with time and randomness passed in); nothing in this crate does IO
//! except [`legacy`], which reads the metadata file of single-node Strom versions for
//! migration. [`acl`] holds access control lists and the authorization decision. [`config`] holds the definitions of every topic and broker property.

pub mod acl;
pub mod config;
pub mod controller;
pub mod ids;
pub mod image;
pub mod legacy;
pub mod records;
pub mod scram;

pub use controller::ApiError;
pub use ids::{BrokerEpoch, BrokerId, LeaderEpoch, MetadataOffset, PartitionEpoch};
pub use image::{BrokerRegistration, MetadataImage, PartitionImage, TopicImage};
pub use records::{BrokerEndpoint, ConfigResource, LeaderRecoveryState, MetadataRecord};
pub use scram::{ScramCredential, ScramMechanism};

/// The internal topic that stores consumer group offsets and metadata.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";
