//! The two topic configs the controller's replication decisions depend on, resolved in one
//! place: `min.insync.replicas` (when leavers of the in-sync replicas become eligible leader
//! replicas) and `unclean.leader.election.enable` (whether a replica outside the in-sync and
//! eligible sets may lead).
//!
//! Resolution is KRaft's `ConfigurationControlManager.getTopicConfig`: the topic's override,
//! else the cluster-wide dynamic default (AlterConfigs on the empty broker name), else the
//! static default the active controller was started with ([`ControllerConfig`]). Dynamic
//! per-broker values are not consulted: a partition's rules must not depend on which broker
//! happens to lead it.

use std::collections::BTreeMap;

use super::ControllerConfig;
use crate::image::MetadataImage;
use crate::records::ConfigResource;

pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// A topic's replication settings as the controller sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `min.insync.replicas`, at least 1.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election: bool,
}

impl ReplicationConfig {
    /// The settings of `topic`: its override, else the cluster default, else `config`'s.
    /// A value that does not parse (never written: AlterConfigs validates) is skipped.
    pub fn resolve(image: &MetadataImage, topic: &str, config: &ControllerConfig) -> Self {
        let min_insync_replicas = lookup(image, topic, MIN_INSYNC_REPLICAS, |v| {
            v.trim().parse::<i32>().ok().filter(|&n| n >= 1)
        })
        .unwrap_or(i32::from(config.default_min_insync_replicas.max(1)));
        let unclean_leader_election = lookup(image, topic, UNCLEAN_LEADER_ELECTION_ENABLE, |v| {
            v.trim().parse::<bool>().ok()
        })
        .unwrap_or(config.default_unclean_leader_election);
        ReplicationConfig {
            min_insync_replicas,
            unclean_leader_election,
        }
    }

    /// KRaft's `getTopicEffectiveMinIsr`: `min.insync.replicas` capped at the number of
    /// replicas, since a partition can never have more in-sync replicas than that.
    pub fn effective_min_insync_replicas(&self, replicas: usize) -> usize {
        (self.min_insync_replicas.max(1) as usize).min(replicas.max(1))
    }
}

/// The first layer (topic override, then cluster default) whose value `parse` accepts.
fn lookup<T>(
    image: &MetadataImage,
    topic: &str,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    let layers: [Option<&BTreeMap<String, String>>; 2] = [
        image.topic_configs(topic),
        image.configs_of(&ConfigResource::Broker(String::new())),
    ];
    layers
        .into_iter()
        .flatten()
        .find_map(|layer| layer.get(name).and_then(|v| parse(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::MetadataRecord;

    fn set(image: &mut MetadataImage, resource: ConfigResource, name: &str, value: &str) {
        image.replay(&MetadataRecord::Config {
            resource,
            name: name.into(),
            value: Some(value.into()),
        });
    }

    #[test]
    fn the_topic_override_wins_over_the_cluster_default_which_wins_over_the_static_one() {
        let config = ControllerConfig {
            default_min_insync_replicas: 3,
            default_unclean_leader_election: false,
            ..ControllerConfig::default()
        };
        let mut image = MetadataImage::default();
        let resolve = |image: &MetadataImage| ReplicationConfig::resolve(image, "t", &config);
        assert_eq!(
            resolve(&image),
            ReplicationConfig {
                min_insync_replicas: 3,
                unclean_leader_election: false
            }
        );
        let cluster = ConfigResource::Broker(String::new());
        set(&mut image, cluster.clone(), MIN_INSYNC_REPLICAS, "2");
        set(&mut image, cluster, UNCLEAN_LEADER_ELECTION_ENABLE, "true");
        assert_eq!(resolve(&image).min_insync_replicas, 2);
        assert!(resolve(&image).unclean_leader_election);
        let topic = ConfigResource::Topic("t".into());
        set(&mut image, topic.clone(), MIN_INSYNC_REPLICAS, "1");
        set(&mut image, topic, UNCLEAN_LEADER_ELECTION_ENABLE, "false");
        assert_eq!(resolve(&image).min_insync_replicas, 1);
        assert!(!resolve(&image).unclean_leader_election);
        // A per-broker value is not the cluster default.
        let mut image = MetadataImage::default();
        set(
            &mut image,
            ConfigResource::Broker("1".into()),
            MIN_INSYNC_REPLICAS,
            "1",
        );
        assert_eq!(resolve(&image).min_insync_replicas, 3);
    }

    #[test]
    fn the_effective_minimum_never_exceeds_the_replicas() {
        let config = ReplicationConfig {
            min_insync_replicas: 2,
            unclean_leader_election: false,
        };
        assert_eq!(config.effective_min_insync_replicas(1), 1);
        assert_eq!(config.effective_min_insync_replicas(3), 2);
    }
}
