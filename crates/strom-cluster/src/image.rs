//! The metadata image: the state that replaying the metadata log produces.
//!
//! Readers (request handlers, the replica manager) hold an `Arc<MetadataImage>` and never see
//! it change; the publisher clones the current image, applies newly committed records to the
//! clone and hands the clone out. Topics sit behind `Arc` so a clone copies pointers, not
//! partitions. Every image knows the metadata log position it reflects ([`MetadataImage::offset`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use crate::acl::Acls;
use crate::ids::{BrokerEpoch, BrokerId, LeaderEpoch, MetadataOffset, PartitionEpoch};
use crate::records::{BrokerEndpoint, ConfigResource, LeaderRecoveryState, MetadataRecord};
use crate::scram::{ScramCredential, ScramMechanism};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub broker_id: BrokerId,
    pub broker_epoch: BrokerEpoch,
    pub incarnation_id: Uuid,
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    /// A fenced broker is left out of Metadata responses and leads nothing.
    pub fenced: bool,
    /// The broker asked to shut down; the controller moves leadership away from it.
    pub in_controlled_shutdown: bool,
    /// The metadata log index of the entry that registered it (of the snapshot that carried
    /// the registration, after a restore): the broker has caught up once it has replayed this.
    pub registered_at: u64,
}

impl BrokerRegistration {
    /// The endpoint clients use: the first listener the broker registered.
    pub fn endpoint(&self) -> Option<&BrokerEndpoint> {
        self.endpoints.first()
    }

    /// The endpoint of a named listener, or the first one when the broker has no listener of
    /// that name (a broker registered before the listener was added).
    pub fn endpoint_for(&self, listener: &str) -> Option<&BrokerEndpoint> {
        self.endpoints
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(listener))
            .or_else(|| self.endpoint())
    }

    /// `host:port` of a named listener (see [`Self::endpoint_for`]).
    pub fn address_for(&self, listener: &str) -> Option<(String, u16)> {
        self.endpoint_for(listener)
            .map(|e| (e.host.clone(), e.port))
    }

    pub fn host(&self) -> &str {
        self.endpoint().map_or("", |e| e.host.as_str())
    }

    pub fn port(&self) -> u16 {
        self.endpoint().map_or(0, |e| e.port)
    }

    /// Unfenced and not shutting down: may lead partitions and receive new ones.
    pub fn is_available(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }
}

/// One partition's replicas and leadership: what a `Partition` record holds.
///
/// Invariants the controller keeps: `leader` is in `in_sync_replicas` or is
/// [`BrokerId::NONE`]; `in_sync_replicas` is a non-empty subset of `replicas`;
/// `eligible_leader_replicas` is a subset of `replicas` disjoint from `in_sync_replicas`;
/// `adding_replicas` and `removing_replicas` are disjoint subsets of `replicas`; epochs never
/// decrease.
///
/// **The eligible leader replicas contract (KIP-966).** When a change leaves fewer in-sync
/// replicas than the topic's `min.insync.replicas`, the replicas that leave the in-sync set
/// join `eligible_leader_replicas`; the controller may later elect one of them although it is
/// no longer in sync. That is only safe because of a rule the partition leader must keep:
/// **the leader never advances the high watermark while the in-sync replicas are fewer than
/// the topic's `min.insync.replicas`**, resolved as
/// [`crate::controller::ReplicationConfig::resolve`] does (topic, cluster default, static
/// default; the controller counts on it only below that value capped at the number of
/// replicas, so a leader that uses the uncapped value is stricter, which is fine). A replica
/// that left the in-sync set at that point had every record up to the high watermark, and
/// the high watermark has not moved since, so it still has every committed record. A leader
/// that advances the high watermark with too few in-sync replicas makes the election of an
/// eligible replica lose committed data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    /// The assigned brokers, the preferred leader first. During a reassignment: the target
    /// replicas followed by the ones being removed.
    pub replicas: Vec<BrokerId>,
    /// The replicas known to have every committed record; the leader changes them with
    /// AlterPartition.
    pub in_sync_replicas: Vec<BrokerId>,
    /// [`BrokerId::NONE`] when no replica can lead (the partition is offline).
    pub leader: BrokerId,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    /// Replicas outside the in-sync set that still have every committed record and may be
    /// elected when no in-sync replica is available (KIP-966; see the type's docs). A fenced
    /// broker stays here: it is the one that may come back.
    pub eligible_leader_replicas: Vec<BrokerId>,
    /// The eligible leader replicas a partition had when they were all lost while it had no
    /// leader: a hint for an operator choosing an unclean election, which nothing elects from
    /// on its own. Cleared once the partition has a leader.
    pub last_known_elr: Vec<BrokerId>,
    /// Replicas a reassignment is adding: they must join the in-sync replicas before it
    /// completes.
    pub adding_replicas: Vec<BrokerId>,
    /// Replicas a reassignment removes once it completes.
    pub removing_replicas: Vec<BrokerId>,
    /// `Recovering` after an unclean election until the leader reports otherwise.
    pub leader_recovery_state: LeaderRecoveryState,
}

impl PartitionImage {
    /// A partition outside any reassignment, without eligible leader replicas, at epoch 0.
    pub fn new(replicas: Vec<BrokerId>, in_sync_replicas: Vec<BrokerId>, leader: BrokerId) -> Self {
        PartitionImage {
            replicas,
            in_sync_replicas,
            leader,
            leader_epoch: LeaderEpoch(0),
            partition_epoch: PartitionEpoch(0),
            eligible_leader_replicas: Vec::new(),
            last_known_elr: Vec::new(),
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            leader_recovery_state: LeaderRecoveryState::Recovered,
        }
    }

    pub fn has_leader(&self) -> bool {
        !self.leader.is_none()
    }

    /// The first replica: the one that leads whenever it can.
    pub fn preferred_leader(&self) -> Option<BrokerId> {
        self.replicas.first().copied()
    }

    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas before the ongoing reassignment (all of them when there is none): the
    /// replicas without the ones being added. Their order is the reassignment's (target
    /// first), not necessarily the original order.
    pub fn original_replicas(&self) -> Vec<BrokerId> {
        self.replicas
            .iter()
            .copied()
            .filter(|b| !self.adding_replicas.contains(b))
            .collect()
    }

    /// The record that writes this state as `partition` of `topic_id`.
    pub fn to_record(&self, topic_id: Uuid, partition: i32) -> MetadataRecord {
        MetadataRecord::Partition {
            topic_id,
            partition,
            replicas: self.replicas.clone(),
            in_sync_replicas: self.in_sync_replicas.clone(),
            leader: self.leader,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            eligible_leader_replicas: self.eligible_leader_replicas.clone(),
            last_known_elr: self.last_known_elr.clone(),
            adding_replicas: self.adding_replicas.clone(),
            removing_replicas: self.removing_replicas.clone(),
            leader_recovery_state: self.leader_recovery_state,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: BTreeMap<i32, PartitionImage>,
}

impl TopicImage {
    /// Kafka's internal topics: hidden from `listTopics` unless asked for.
    pub fn is_internal(&self) -> bool {
        is_internal_topic(&self.name)
    }
}

pub fn is_internal_topic(name: &str) -> bool {
    name == crate::CONSUMER_OFFSETS_TOPIC || name == "__transaction_state"
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataImage {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<BrokerId, BrokerRegistration>,
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    topic_names: HashMap<Uuid, String>,
    pub configs: BTreeMap<ConfigResource, BTreeMap<String, String>>,
    pub next_producer_id: i64,
    /// SCRAM credentials by user name and mechanism.
    pub scram_credentials: BTreeMap<(String, ScramMechanism), ScramCredential>,
    /// ACLs by id, indexed by resource for the authorizer.
    pub acls: Acls,
    /// The metadata log position of the last entry applied, `None` for an empty log.
    pub offset: Option<MetadataOffset>,
    /// How many records have been replayed into this image.
    pub records_applied: u64,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, topic_id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.topic_names
            .get(topic_id)
            .and_then(|n| self.topics.get(n))
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionImage> {
        self.topic(topic)?.partitions.get(&partition)
    }

    pub fn configs_of(&self, resource: &ConfigResource) -> Option<&BTreeMap<String, String>> {
        self.configs.get(resource)
    }

    pub fn topic_configs(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.configs_of(&ConfigResource::Topic(name.to_string()))
    }

    /// The SCRAM credential a SASL exchange checks a user against.
    pub fn scram_credential(
        &self,
        name: &str,
        mechanism: ScramMechanism,
    ) -> Option<&ScramCredential> {
        self.scram_credentials.get(&(name.to_string(), mechanism))
    }

    /// The mechanisms a SCRAM user has a credential for, with each credential (in mechanism
    /// order); empty for an unknown user.
    pub fn scram_credentials_of(&self, name: &str) -> Vec<(ScramMechanism, &ScramCredential)> {
        ScramMechanism::ALL
            .into_iter()
            .filter_map(|m| Some((m, self.scram_credential(name, m)?)))
            .collect()
    }

    /// Every user with at least one SCRAM credential, in name order, each once.
    pub fn scram_users(&self) -> Vec<&str> {
        let mut users: Vec<&str> = self
            .scram_credentials
            .keys()
            .map(|(name, _)| name.as_str())
            .collect();
        // The map is ordered by (name, mechanism), so a user's entries are adjacent.
        users.dedup();
        users
    }

    /// Brokers that are unfenced: the ones Metadata lists and the ones that may lead.
    pub fn unfenced_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Brokers that may receive new replicas and leadership: unfenced and not shutting down.
    pub fn available_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| b.is_available())
    }

    pub fn is_unfenced(&self, broker: BrokerId) -> bool {
        self.brokers.get(&broker).is_some_and(|b| !b.fenced)
    }

    /// Whether `broker` is registered, unfenced and not shutting down: may lead partitions.
    pub fn is_available(&self, broker: BrokerId) -> bool {
        self.brokers
            .get(&broker)
            .is_some_and(BrokerRegistration::is_available)
    }

    /// Every partition with its topic id, in topic-name order and then partition order.
    pub fn partitions(&self) -> impl Iterator<Item = (Uuid, i32, &PartitionImage)> {
        self.topics.values().flat_map(|t| {
            t.partitions
                .iter()
                .map(move |(&partition, p)| (t.topic_id, partition, p))
        })
    }

    /// Every partition with its topic, in the same order as [`MetadataImage::partitions`].
    pub fn topic_partitions(&self) -> impl Iterator<Item = (&TopicImage, i32, &PartitionImage)> {
        self.topics.values().flat_map(|t| {
            t.partitions
                .iter()
                .map(move |(&partition, p)| (t.as_ref(), partition, p))
        })
    }

    /// The metadata log index of the last applied entry (0 for an empty log).
    pub fn applied_index(&self) -> u64 {
        self.offset.map_or(0, |o| o.index)
    }

    /// Applies one entry of the metadata log: its records, in order, at `offset`.
    pub fn apply(&mut self, offset: MetadataOffset, records: &[MetadataRecord]) {
        self.offset = Some(offset);
        for record in records {
            self.replay(record);
        }
    }

    /// Applies one record. Records that refer to unknown topics are ignored: the controller
    /// never writes them, and ignoring is the safe reading of a log written by a newer version.
    pub fn replay(&mut self, record: &MetadataRecord) {
        self.records_applied += 1;
        match record {
            MetadataRecord::Cluster { cluster_id } => self.cluster_id = Some(cluster_id.clone()),
            MetadataRecord::RegisterBroker {
                broker_id,
                broker_epoch,
                incarnation_id,
                endpoints,
                rack,
                fenced,
            } => {
                self.brokers.insert(
                    *broker_id,
                    BrokerRegistration {
                        broker_id: *broker_id,
                        broker_epoch: *broker_epoch,
                        incarnation_id: *incarnation_id,
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        fenced: *fenced,
                        in_controlled_shutdown: false,
                        registered_at: self.applied_index(),
                    },
                );
            }
            MetadataRecord::BrokerRegistrationChange {
                broker_id,
                broker_epoch,
                fenced,
                in_controlled_shutdown,
            } => {
                // A change for an earlier incarnation says nothing about the current one.
                if let Some(b) = self.brokers.get_mut(broker_id)
                    && b.broker_epoch == *broker_epoch
                {
                    if let Some(fenced) = fenced {
                        b.fenced = *fenced;
                    }
                    if let Some(shutdown) = in_controlled_shutdown {
                        b.in_controlled_shutdown = *shutdown;
                    }
                }
            }
            MetadataRecord::UnregisterBroker {
                broker_id,
                broker_epoch,
            } => {
                if self
                    .brokers
                    .get(broker_id)
                    .is_some_and(|b| b.broker_epoch == *broker_epoch)
                {
                    self.brokers.remove(broker_id);
                }
            }
            MetadataRecord::Topic { name, topic_id } => {
                self.topic_names.insert(*topic_id, name.clone());
                self.topics.insert(
                    name.clone(),
                    Arc::new(TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: BTreeMap::new(),
                    }),
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                in_sync_replicas,
                leader,
                leader_epoch,
                partition_epoch,
                eligible_leader_replicas,
                last_known_elr,
                adding_replicas,
                removing_replicas,
                leader_recovery_state,
            } => {
                let Some(name) = self.topic_names.get(topic_id) else {
                    return;
                };
                let Some(topic) = self.topics.get_mut(name) else {
                    return;
                };
                Arc::make_mut(topic).partitions.insert(
                    *partition,
                    PartitionImage {
                        replicas: replicas.clone(),
                        in_sync_replicas: in_sync_replicas.clone(),
                        leader: *leader,
                        leader_epoch: *leader_epoch,
                        partition_epoch: *partition_epoch,
                        eligible_leader_replicas: eligible_leader_replicas.clone(),
                        last_known_elr: last_known_elr.clone(),
                        adding_replicas: adding_replicas.clone(),
                        removing_replicas: removing_replicas.clone(),
                        leader_recovery_state: *leader_recovery_state,
                    },
                );
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.topic_names.remove(topic_id) {
                    self.topics.remove(&name);
                    self.configs.remove(&ConfigResource::Topic(name));
                }
            }
            MetadataRecord::Config {
                resource,
                name,
                value,
            } => match value {
                Some(v) => {
                    self.configs
                        .entry(resource.clone())
                        .or_default()
                        .insert(name.clone(), v.clone());
                }
                None => {
                    if let Some(map) = self.configs.get_mut(resource) {
                        map.remove(name);
                        if map.is_empty() {
                            self.configs.remove(resource);
                        }
                    }
                }
            },
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => self.next_producer_id = self.next_producer_id.max(*next_producer_id),
            MetadataRecord::UserScramCredential {
                name,
                mechanism,
                credential,
            } => {
                self.scram_credentials
                    .insert((name.clone(), *mechanism), credential.clone());
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                self.scram_credentials.remove(&(name.clone(), *mechanism));
            }
            MetadataRecord::Acl { id, binding } => self.acls.insert(*id, binding.clone()),
            MetadataRecord::RemoveAcl { id } => {
                self.acls.remove(id);
            }
        }
    }

    /// The records that rebuild this image from nothing: what a snapshot holds.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        if let Some(cluster_id) = &self.cluster_id {
            out.push(MetadataRecord::Cluster {
                cluster_id: cluster_id.clone(),
            });
        }
        for b in self.brokers.values() {
            out.push(MetadataRecord::RegisterBroker {
                broker_id: b.broker_id,
                broker_epoch: b.broker_epoch,
                incarnation_id: b.incarnation_id,
                endpoints: b.endpoints.clone(),
                rack: b.rack.clone(),
                fenced: b.fenced,
            });
            if b.in_controlled_shutdown {
                out.push(MetadataRecord::BrokerRegistrationChange {
                    broker_id: b.broker_id,
                    broker_epoch: b.broker_epoch,
                    fenced: None,
                    in_controlled_shutdown: Some(true),
                });
            }
        }
        for t in self.topics.values() {
            out.push(MetadataRecord::Topic {
                name: t.name.clone(),
                topic_id: t.topic_id,
            });
            for (&partition, p) in &t.partitions {
                out.push(p.to_record(t.topic_id, partition));
            }
        }
        for (resource, configs) in &self.configs {
            for (name, value) in configs {
                out.push(MetadataRecord::Config {
                    resource: resource.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        if self.next_producer_id > 0 {
            out.push(MetadataRecord::ProducerIds {
                broker_id: BrokerId::NONE,
                next_producer_id: self.next_producer_id,
            });
        }
        for ((name, mechanism), credential) in &self.scram_credentials {
            out.push(MetadataRecord::UserScramCredential {
                name: name.clone(),
                mechanism: *mechanism,
                credential: credential.clone(),
            });
        }
        for (id, binding) in self.acls.iter() {
            out.push(MetadataRecord::Acl {
                id: *id,
                binding: binding.clone(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(id: i32) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            broker_id: BrokerId(id),
            broker_epoch: BrokerEpoch(id as i64),
            incarnation_id: Uuid::from_u128(id as u128),
            endpoints: vec![BrokerEndpoint {
                name: "PLAINTEXT".into(),
                host: "h".into(),
                port: 9092,
            }],
            rack: None,
            fenced: true,
        }
    }

    fn sample_records() -> Vec<MetadataRecord> {
        let id = Uuid::from_u128(7);
        vec![
            MetadataRecord::Cluster {
                cluster_id: "c1".into(),
            },
            registration(1),
            MetadataRecord::BrokerRegistrationChange {
                broker_id: BrokerId(1),
                broker_epoch: BrokerEpoch(1),
                fenced: Some(false),
                in_controlled_shutdown: None,
            },
            registration(2),
            MetadataRecord::BrokerRegistrationChange {
                broker_id: BrokerId(2),
                broker_epoch: BrokerEpoch(2),
                fenced: None,
                in_controlled_shutdown: Some(true),
            },
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id: id,
            },
            PartitionImage::new(vec![BrokerId(1)], vec![BrokerId(1)], BrokerId(1)).to_record(id, 0),
            // A partition in the middle of everything: reassigning, below its min.insync.replicas
            // with eligible leader replicas, and recovering from an unclean election.
            PartitionImage {
                replicas: ids(&[4, 1, 2, 3]),
                in_sync_replicas: ids(&[1]),
                leader: BrokerId(1),
                leader_epoch: LeaderEpoch(3),
                partition_epoch: PartitionEpoch(9),
                eligible_leader_replicas: ids(&[2]),
                last_known_elr: ids(&[3]),
                adding_replicas: ids(&[4]),
                removing_replicas: ids(&[3]),
                leader_recovery_state: LeaderRecoveryState::Recovering,
            }
            .to_record(id, 1),
            MetadataRecord::Config {
                resource: ConfigResource::Topic("t".into()),
                name: "retention.ms".into(),
                value: Some("1000".into()),
            },
            MetadataRecord::ProducerIds {
                broker_id: BrokerId(1),
                next_producer_id: 1000,
            },
            MetadataRecord::UserScramCredential {
                name: "alice".into(),
                mechanism: ScramMechanism::Sha512,
                credential: ScramCredential::from_password(
                    ScramMechanism::Sha512,
                    "secret",
                    b"salt".to_vec(),
                    4096,
                ),
            },
            MetadataRecord::Acl {
                id: Uuid::from_u128(77),
                binding: crate::acl::AclBinding {
                    resource_type: crate::acl::ResourceType::Topic,
                    resource_name: "t".into(),
                    pattern_type: crate::acl::PatternType::Prefixed,
                    principal: "User:alice".into(),
                    host: "*".into(),
                    operation: crate::acl::AclOperation::Read,
                    permission_type: crate::acl::AclPermissionType::Allow,
                },
            },
        ]
    }

    fn ids(v: &[i32]) -> Vec<BrokerId> {
        v.iter().copied().map(BrokerId).collect()
    }

    fn at(index: u64) -> MetadataOffset {
        MetadataOffset { term: 1, index }
    }

    #[test]
    fn snapshot_records_rebuild_the_same_image() {
        let mut image = MetadataImage::default();
        image.apply(at(5), &sample_records());
        let mut rebuilt = MetadataImage::default();
        rebuilt.apply(at(5), &image.to_records());
        rebuilt.records_applied = image.records_applied;
        assert_eq!(rebuilt, image);
        assert!(!rebuilt.brokers[&BrokerId(1)].fenced);
        assert!(rebuilt.brokers[&BrokerId(2)].in_controlled_shutdown);
        assert!(
            rebuilt
                .scram_credential("alice", ScramMechanism::Sha512)
                .is_some()
        );
        assert_eq!(rebuilt.acls.len(), 1);
    }

    #[test]
    fn a_removed_acl_is_gone_from_the_map_and_the_index() {
        let mut image = MetadataImage::default();
        image.apply(at(5), &sample_records());
        let id = Uuid::from_u128(77);
        let binding = image.acls.get(&id).cloned().expect("replayed");
        let json = serde_json::to_string(&MetadataRecord::Acl { id, binding }).unwrap();
        assert!(
            json.contains(r#""type":"acl""#) && json.contains(r#""operation":"read""#),
            "{json}"
        );
        image.replay(&MetadataRecord::RemoveAcl { id });
        assert!(image.acls.is_empty());
        assert_eq!(image.acls, crate::acl::Acls::default());
    }

    #[test]
    fn a_removed_scram_credential_is_gone_and_other_mechanisms_stay() {
        let mut image = MetadataImage::default();
        let credential =
            ScramCredential::from_password(ScramMechanism::Sha256, "pw", b"s".to_vec(), 4096);
        for mechanism in ScramMechanism::ALL {
            image.replay(&MetadataRecord::UserScramCredential {
                name: "bob".into(),
                mechanism,
                credential: credential.clone(),
            });
        }
        image.replay(&MetadataRecord::RemoveUserScramCredential {
            name: "bob".into(),
            mechanism: ScramMechanism::Sha256,
        });
        assert!(
            image
                .scram_credential("bob", ScramMechanism::Sha256)
                .is_none()
        );
        assert_eq!(
            image.scram_credential("bob", ScramMechanism::Sha512),
            Some(&credential)
        );
    }

    #[test]
    fn partition_records_written_before_replication_still_read() {
        let old = r#"{"type":"partition","topic_id":"00000000-0000-0000-0000-000000000007","partition":0,"replicas":[1],"in_sync_replicas":[1],"leader":1,"leader_epoch":2,"partition_epoch":5}"#;
        let record: MetadataRecord = serde_json::from_str(old).unwrap();
        let mut expected = PartitionImage::new(ids(&[1]), ids(&[1]), BrokerId(1));
        expected.leader_epoch = LeaderEpoch(2);
        expected.partition_epoch = PartitionEpoch(5);
        assert_eq!(record, expected.to_record(Uuid::from_u128(7), 0));
        // And a partition without the new state is written exactly as before.
        assert_eq!(serde_json::to_string(&record).unwrap(), old);
    }

    #[test]
    fn registration_remembers_where_it_was_written() {
        let mut image = MetadataImage::default();
        image.apply(at(3), &[registration(1)]);
        image.apply(at(9), &[registration(2)]);
        assert_eq!(image.brokers[&BrokerId(1)].registered_at, 3);
        assert_eq!(image.brokers[&BrokerId(2)].registered_at, 9);
        assert_eq!(image.applied_index(), 9);
        assert_eq!(image.unfenced_brokers().count(), 0);
    }

    #[test]
    fn changes_for_an_old_broker_epoch_are_ignored() {
        let mut image = MetadataImage::default();
        image.apply(at(1), &[registration(1)]);
        image.apply(
            at(2),
            &[MetadataRecord::BrokerRegistrationChange {
                broker_id: BrokerId(1),
                broker_epoch: BrokerEpoch(0),
                fenced: Some(false),
                in_controlled_shutdown: None,
            }],
        );
        assert!(image.brokers[&BrokerId(1)].fenced);
        image.apply(
            at(3),
            &[MetadataRecord::UnregisterBroker {
                broker_id: BrokerId(1),
                broker_epoch: BrokerEpoch(1),
            }],
        );
        assert!(image.brokers.is_empty());
    }

    #[test]
    fn removing_a_topic_removes_its_configs_and_id() {
        let mut image = MetadataImage::default();
        image.apply(at(1), &sample_records());
        image.replay(&MetadataRecord::RemoveTopic {
            topic_id: Uuid::from_u128(7),
        });
        assert!(image.topic("t").is_none());
        assert!(image.topic_by_id(&Uuid::from_u128(7)).is_none());
        assert!(image.topic_configs("t").is_none());
    }

    #[test]
    fn config_removal_drops_empty_resources() {
        let mut image = MetadataImage::default();
        let resource = ConfigResource::Broker(String::new());
        image.replay(&MetadataRecord::Config {
            resource: resource.clone(),
            name: "a".into(),
            value: Some("1".into()),
        });
        image.replay(&MetadataRecord::Config {
            resource: resource.clone(),
            name: "a".into(),
            value: None,
        });
        assert!(image.configs_of(&resource).is_none());
    }
}
