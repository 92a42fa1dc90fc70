//! The coordinator's settings, named after Kafka's broker properties.

use crate::error::{Error, Result};

/// Settings of the group coordinator. Every field maps to a Kafka broker property of the same
/// meaning; [`Config::default`] gives Kafka's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `offsets.topic.num.partitions`: how many `__consumer_offsets` partitions exist. A group
    /// lives on partition `abs(java_hash(group_id)) % offsets_topic_partitions`.
    pub offsets_topic_partitions: i32,
    /// `group.min.session.timeout.ms`: JoinGroup with a smaller session timeout gets
    /// INVALID_SESSION_TIMEOUT.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: JoinGroup with a larger session timeout gets
    /// INVALID_SESSION_TIMEOUT.
    pub group_max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long a new (Empty) group waits for more members
    /// before it completes its first join phase; extended by this much (at most up to the
    /// rebalance timeout) each time another member joins.
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.max.size`: the most members a group accepts (GROUP_MAX_SIZE_REACHED beyond).
    pub group_max_size: usize,
    /// Kafka's `group.new.member.join.timeout.ms` (internal, 5 minutes): a new member parked in
    /// JoinGroup is removed if the join phase has not completed after this long.
    pub group_new_member_join_timeout_ms: i32,
    /// Strom's limit on KIP-394 pending members (those that were given a member id and asked
    /// to rejoin) per group. Kafka has none; without it a client looping on empty member ids
    /// grows a group's state until session timeouts catch up. Beyond the limit JoinGroup
    /// answers GROUP_MAX_SIZE_REACHED.
    pub group_pending_members_max: usize,
    /// `offset.metadata.max.bytes`: longest committed metadata string (in UTF-16 code units,
    /// as Kafka's `String.length()` counts) before OFFSET_METADATA_TOO_LARGE.
    pub offset_metadata_max_bytes: usize,
    /// `offsets.retention.minutes` in milliseconds (KIP-211).
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often each loaded partition looks for
    /// expired offsets and empty groups to delete.
    pub offsets_retention_check_interval_ms: i64,
    /// Seed of the generator behind member ids, so a test (or a simulation) reproduces them.
    /// A broker should pass something different on every start (for example the start time),
    /// or two incarnations could hand out the same member id.
    pub member_id_seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            offsets_topic_partitions: 50,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_max_size: i32::MAX as usize,
            group_new_member_join_timeout_ms: 5 * 60 * 1_000,
            group_pending_members_max: 10_000,
            offset_metadata_max_bytes: 4_096,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1_000,
            offsets_retention_check_interval_ms: 600_000,
            member_id_seed: 0,
        }
    }
}

impl Config {
    /// Checks the settings for contradictions the coordinator cannot work with.
    pub fn validate(&self) -> Result<()> {
        let fail = |reason: &str| Err(Error::InvalidConfig(reason.to_owned()));
        if self.offsets_topic_partitions <= 0 {
            return fail("offsets.topic.num.partitions must be positive");
        }
        if self.group_min_session_timeout_ms < 0
            || self.group_min_session_timeout_ms > self.group_max_session_timeout_ms
        {
            return fail(
                "group.min.session.timeout.ms must be between 0 and group.max.session.timeout.ms",
            );
        }
        if self.group_initial_rebalance_delay_ms < 0 {
            return fail("group.initial.rebalance.delay.ms must not be negative");
        }
        if self.group_max_size == 0 {
            return fail("group.max.size must be at least 1");
        }
        if self.group_new_member_join_timeout_ms < 0 {
            return fail("group.new.member.join.timeout.ms must not be negative");
        }
        if self.offsets_retention_ms <= 0 {
            return fail("offsets.retention.minutes must be positive");
        }
        if self.offsets_retention_check_interval_ms <= 0 {
            return fail("offsets.retention.check.interval.ms must be positive");
        }
        Ok(())
    }
}
