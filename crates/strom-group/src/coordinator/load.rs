//! Coordinator movement: taking over a `__consumer_offsets` partition (load, replay, finish)
//! and giving it up (unload).
//!
//! While a partition loads, its groups answer COORDINATOR_LOAD_IN_PROGRESS (heartbeats
//! succeed blindly, as in Kafka). Replay rebuilds groups and durable offsets record by
//! record, exactly as the live coordinator applies its own completed writes, so a group
//! reloads as it was last persisted: Stable with its members and assignment, or Empty.
//!
//! Records of transactional batches are pending for their producer until a control batch of
//! that producer (COMMIT or ABORT) follows them. A transaction without a marker in the log
//! stays pending after the load: its transaction coordinator sends the marker again.

use super::{Coordinator, Env, Shard};
use crate::api::*;
use crate::codes;
use crate::error::{Error, Result};
use crate::group::Group;
use crate::offsets::{OffsetAndMetadata, PendingTxnOffset};
use crate::record::{GroupMetadataValue, OffsetCommitValue, RecordKey};
use crate::timer::TimerKey;

impl Coordinator {
    fn check_partition(&self, partition: i32) -> Result<()> {
        let partitions = self.config.offsets_topic_partitions;
        if !(0..partitions).contains(&partition) {
            return Err(Error::InvalidPartition {
                partition,
                partitions,
            });
        }
        Ok(())
    }

    /// Starts owning `partition`: its groups answer COORDINATOR_LOAD_IN_PROGRESS until
    /// [`Coordinator::finish_load`]. The shell then feeds every record of the partition,
    /// from the log start to its end and in log order, through [`Coordinator::replay`]
    /// (records of ordinary batches), [`Coordinator::replay_transactional`] (records of
    /// transactional batches) and [`Coordinator::replay_marker`] (control batches).
    pub fn load_partition(&mut self, partition: i32) -> Result<()> {
        self.check_partition(partition)?;
        if self.shards.contains_key(&partition) {
            return Err(Error::PartitionAlreadyOwned(partition));
        }
        self.shards.insert(
            partition,
            Shard {
                loading: true,
                ..Shard::default()
            },
        );
        Ok(())
    }

    /// Applies the record at log offset `offset` of a loading partition (`value: None` is a
    /// tombstone).
    ///
    /// Records of Kafka's newer group types give [`Error::UnsupportedRecordType`]; the shell
    /// may log and skip them. Any other error means the partition's log is not one this
    /// coordinator can serve.
    pub fn replay(
        &mut self,
        partition: i32,
        offset: i64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<()> {
        self.replay_record(partition, offset, None, key, value)
    }

    /// [`Coordinator::replay`] for a record of a transactional batch of `producer_id`: an
    /// offset commit in it is pending until the producer's marker.
    pub fn replay_transactional(
        &mut self,
        partition: i32,
        offset: i64,
        producer_id: i64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<()> {
        self.replay_record(partition, offset, Some(producer_id), key, value)
    }

    /// Applies a COMMIT (`commit`) or ABORT marker of `producer_id` read from a loading
    /// partition: the producer's pending offsets replayed so far commit or are dropped.
    pub fn replay_marker(&mut self, partition: i32, producer_id: i64, commit: bool) -> Result<()> {
        let Some(shard) = self.shards.get_mut(&partition).filter(|s| s.loading) else {
            return Err(Error::PartitionNotLoading(partition));
        };
        // A loading partition's groups get no timestamps from the clock (as in `replay`).
        shard.end_transaction(producer_id, commit, 0);
        Ok(())
    }

    fn replay_record(
        &mut self,
        partition: i32,
        offset: i64,
        producer_id: Option<i64>,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<()> {
        let Some(shard) = self.shards.get_mut(&partition).filter(|s| s.loading) else {
            return Err(Error::PartitionNotLoading(partition));
        };
        let key = RecordKey::decode(key)?;
        let expected = crate::partition::partition_for_group(
            key.group_id(),
            self.config.offsets_topic_partitions,
        );
        if expected != partition {
            return Err(Error::WrongPartition {
                group_id: key.group_id().to_owned(),
                replayed: partition,
                expected,
            });
        }
        match key {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition: p,
            } => match value {
                Some(bytes) => {
                    let value = OffsetCommitValue::decode(bytes)?;
                    // Offsets committed outside group management have no group record;
                    // their group is created Empty, without a protocol type, as in Kafka.
                    shard.groups.entry(group.clone()).or_insert_with(|| {
                        let mut g = Group::new(group.clone(), 0);
                        g.state_timestamp_ms = None;
                        g
                    });
                    let replayed = OffsetAndMetadata::from_record(&value);
                    match producer_id {
                        Some(producer_id) => {
                            let pending = PendingTxnOffset {
                                offset: replayed,
                                record_offset: offset,
                            };
                            shard
                                .txn_offsets
                                .put(producer_id, &group, (topic, p), pending);
                        }
                        None => shard.offsets.put(&group, &topic, p, replayed, offset),
                    }
                }
                None => shard.remove_offset(&group, topic, p),
            },
            RecordKey::GroupMetadata { group } => match value {
                Some(bytes) => {
                    let value = GroupMetadataValue::decode(bytes)?;
                    let rebuilt = Group::from_record(group.clone(), value).map_err(|reason| {
                        Error::InvalidGroupRecord {
                            group_id: group.clone(),
                            reason,
                        }
                    })?;
                    shard.groups.insert(group, rebuilt);
                }
                None => {
                    shard.groups.remove(&group);
                }
            },
        }
        Ok(())
    }

    /// Ends the load: the partition serves requests, every member's session starts now, a
    /// group over `group.max.size` (the limit may have been lowered) rebalances, and the
    /// retention sweep is scheduled.
    pub fn finish_load(&mut self, now_ms: i64, partition: i32) -> Result<Output> {
        let mut ctx = self.ctx(now_ms);
        let Coordinator {
            config,
            shards,
            timers,
            member_ids,
            ..
        } = self;
        let Some(shard) = shards.get_mut(&partition).filter(|s| s.loading) else {
            return Err(Error::PartitionNotLoading(partition));
        };
        shard.loading = false;
        for (producer_id, commit) in std::mem::take(&mut shard.markers_after_load) {
            shard.end_transaction(producer_id, commit, now_ms);
        }
        let mut env = Env {
            config,
            timers,
            ids: member_ids,
            ctx: &mut ctx,
            partition,
        };
        for group in shard.groups.values_mut() {
            let member_ids: Vec<String> = group.members.keys().cloned().collect();
            for member_id in member_ids {
                env.reschedule_heartbeat(group, &member_id);
            }
            if group.members.len() > env.config.group_max_size {
                // Give the members a chance to commit before the group shrinks.
                env.prepare_rebalance(group);
            }
        }
        env.timers.schedule(
            TimerKey::OffsetExpiry { partition },
            now_ms.saturating_add(env.config.offsets_retention_check_interval_ms),
        );
        Ok(self.finish(ctx))
    }

    /// Stops owning `partition` (its leadership moved, or the broker shuts down). Parked
    /// JoinGroup and SyncGroup requests and responses waiting for its writes are answered
    /// with NOT_COORDINATOR so the clients look for the new coordinator; later
    /// `write_completed`/`write_failed` calls for its writes are ignored.
    pub fn unload_partition(&mut self, now_ms: i64, partition: i32) -> Output {
        let mut ctx = self.ctx(now_ms);
        let Some(mut shard) = self.shards.remove(&partition) else {
            return Output::default();
        };
        for group in shard.groups.values_mut() {
            for member in group.members.values_mut() {
                if let Some(request_id) = member.awaiting_join.take() {
                    ctx.respond(
                        request_id,
                        Response::JoinGroup(JoinGroupResponse::error(
                            member.member_id.clone(),
                            codes::NOT_COORDINATOR,
                        )),
                    );
                }
                if let Some(request_id) = member.awaiting_sync.take() {
                    ctx.respond(
                        request_id,
                        Response::SyncGroup(SyncGroupResponse::error(codes::NOT_COORDINATOR)),
                    );
                }
            }
        }
        let partitions = self.config.offsets_topic_partitions;
        self.timers.cancel_where(|key| match key {
            TimerKey::Heartbeat { group_id, .. }
            | TimerKey::Join { group_id }
            | TimerKey::Sync { group_id } => {
                crate::partition::partition_for_group(group_id, partitions) == partition
            }
            TimerKey::OffsetExpiry { partition: p } => *p == partition,
        });
        for (write_id, write) in std::mem::take(&mut shard.pending_writes) {
            for request_id in write.gated {
                self.release_gate(&mut ctx, request_id, write_id, Some(codes::NOT_COORDINATOR));
            }
        }
        self.finish(ctx)
    }
}
