//! The replication half of the controller simulation: the steps that act on partitions
//! (`replication`) and the checks that follow every step (`checks`).

pub mod checks;
mod replication;
