//! `strom group list|describe|reset-offsets|delete`: consumer groups from the operator's
//! side, like `kafka-consumer-groups`.
//!
//! `describe` joins three answers: the coordinator's member list (DescribeGroups), the group's
//! committed offsets (OffsetFetch) and each partition's end offset (ListOffsets at its leader);
//! lag is end minus committed. `reset-offsets` computes a plan with the pure [`plan_reset`],
//! prints it, and (unless `--dry-run`) commits it outside any generation, which Kafka only
//! allows while the group has no members; it refuses with a clear message otherwise.

use std::collections::{BTreeMap, BTreeSet};

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::kafka_protocol::ResponseError;
use strom_client::{Client, GroupDescription, OffsetSpec, TopicPartition};

use crate::common::{ConnectArgs, out, outln, print_json, runtime, usage};
use crate::table::{Table, or_dash};

#[derive(Debug, Args)]
#[command(
    about = "List, describe (with lag), reset offsets of and delete consumer groups",
    long_about = "List, describe, reset the offsets of and delete consumer groups. These talk \
        to each group's coordinator with the Kafka group APIs, so they work against any \
        Kafka-protocol broker and with groups of any Kafka client.",
    after_help = "Examples:\n  \
        strom group list\n  \
        strom group describe billing\n  \
        strom group reset-offsets billing --topic invoices --to-earliest --dry-run\n  \
        strom group reset-offsets billing --topic invoices:0,1 --shift-by -100\n  \
        strom group delete billing"
)]
pub struct GroupArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// List consumer groups.
    #[command(
        long_about = "List the groups every broker coordinates, with their state and protocol \
            type (consumer for consumer groups, empty for groups that only store offsets).",
        after_help = "Examples:\n  strom group list\n  strom group list --state Stable --json"
    )]
    List(ListArgs),
    /// Describe a group: members, assignments, committed offsets, end offsets and lag.
    #[command(
        long_about = "Describe a group: its state and members (member id, client id, host and \
            assigned partitions), then per partition the committed offset, the end offset (the \
            high watermark) and the lag between them. Partitions assigned to a member but \
            without a committed offset show '-'.",
        after_help = "Examples:\n  strom group describe billing\n  strom group describe billing --json | jq '.total_lag'"
    )]
    Describe(DescribeArgs),
    /// Move a group's committed offsets (the group must have no active members).
    #[command(
        long_about = "Move a group's committed offsets for some topics. Exactly one of \
            --to-earliest, --to-latest, --to-offset, --to-datetime or --shift-by says where to. \
            New offsets are kept between each partition's earliest and latest offsets. The plan \
            is printed; with --dry-run nothing else happens. Kafka only accepts such commits \
            while the group has no members, so this refuses (exit code 1) if it has any: stop \
            the group's consumers first.\n\n\
            --to-datetime takes RFC 3339 (2024-05-01T12:00:00Z, 2024-05-01T14:00:00.5+02:00, \
            2024-05-01T12:00:00 and 2024-05-01 read as UTC) or milliseconds since the epoch; \
            each partition moves to its first record at or after that time, or to its end.",
        after_help = "Examples:\n  \
            strom group reset-offsets billing --topic invoices --to-earliest --dry-run\n  \
            strom group reset-offsets billing --topic invoices --to-datetime 2024-05-01T00:00:00Z\n  \
            strom group reset-offsets billing --topic invoices:0 --to-offset 1000\n  \
            strom group reset-offsets billing --all-topics --shift-by -10"
    )]
    ResetOffsets(ResetArgs),
    /// Delete a group and its committed offsets (the group must be empty).
    #[command(
        long_about = "Delete a group and its committed offsets. The group must have no members.",
        after_help = "Examples:\n  strom group delete billing"
    )]
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only groups in this state (repeatable): Stable, Empty, PreparingRebalance, ...
    #[arg(long = "state", value_name = "STATE")]
    states: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DescribeArgs {
    /// The group id.
    group: String,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true)
    .args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])))]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["topics", "all_topics"])))]
struct ResetArgs {
    /// The group id.
    group: String,
    /// A topic, or TOPIC:P,P,... for some of its partitions (repeatable).
    #[arg(long = "topic", value_name = "TOPIC[:PARTITIONS]")]
    topics: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    all_topics: bool,
    /// To each partition's earliest offset.
    #[arg(long)]
    to_earliest: bool,
    /// To each partition's end (skip everything not yet read).
    #[arg(long)]
    to_latest: bool,
    /// To this offset.
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
    /// To the first record at or after this time.
    #[arg(long, value_name = "TIME")]
    to_datetime: Option<String>,
    /// By this many records from the committed offset (negative: back).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// Print the plan only; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    /// The group id.
    group: String,
}

pub fn run(args: GroupArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            GroupCommand::List(a) => list(&client, a).await,
            GroupCommand::Describe(a) => describe(&client, a).await,
            GroupCommand::ResetOffsets(a) => reset_offsets(&client, a).await,
            GroupCommand::Delete(a) => delete(&client, a).await,
        }
    })
}

async fn list(client: &Client, args: ListArgs) -> anyhow::Result<()> {
    let states: Vec<&str> = args.states.iter().map(String::as_str).collect();
    let groups = client.list_groups(&states).await?;
    if args.json {
        return print_json(&json!(
            groups
                .iter()
                .map(|g| json!({
                    "group": g.group_id,
                    "state": g.state,
                    "protocol_type": g.protocol_type,
                    "group_type": g.group_type,
                }))
                .collect::<Vec<_>>()
        ));
    }
    let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE"]);
    for g in &groups {
        table.row(vec![
            g.group_id.clone(),
            g.state.clone().unwrap_or_else(|| "-".into()),
            if g.protocol_type.is_empty() {
                "-".into()
            } else {
                g.protocol_type.clone()
            },
        ]);
    }
    out!("{}", table.render());
    Ok(())
}

/// One partition's row in `group describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LagRow {
    topic_partition: TopicPartition,
    committed: Option<i64>,
    end: Option<i64>,
    member_id: Option<String>,
}

impl LagRow {
    fn lag(&self) -> Option<i64> {
        Some((self.end? - self.committed?).max(0))
    }
}

fn not_found(group: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: group '{group}' does not exist",
        strom_client::error::error_name(ResponseError::GroupIdNotFound.code())
    )
}

async fn describe(client: &Client, args: DescribeArgs) -> anyhow::Result<()> {
    let description = client.describe_group(&args.group).await?;
    let committed = client.offset_fetch(&args.group, None).await?;
    if description.state == "Dead" && committed.is_empty() {
        return Err(not_found(&args.group));
    }
    let mut rows: BTreeMap<TopicPartition, LagRow> = BTreeMap::new();
    for c in &committed {
        rows.insert(
            c.topic_partition.clone(),
            LagRow {
                topic_partition: c.topic_partition.clone(),
                committed: c.offset,
                end: None,
                member_id: None,
            },
        );
    }
    for member in &description.members {
        for tp in member.assignment.iter().flatten() {
            rows.entry(tp.clone())
                .or_insert_with(|| LagRow {
                    topic_partition: tp.clone(),
                    committed: None,
                    end: None,
                    member_id: None,
                })
                .member_id = Some(member.member_id.clone());
        }
    }
    let partitions: Vec<TopicPartition> = rows.keys().cloned().collect();
    if !partitions.is_empty() {
        // A partition whose end cannot be listed (topic deleted, no leader) shows '-'.
        if let Ok(ends) = client.list_offsets(&partitions, OffsetSpec::Latest).await {
            for (tp, end) in ends {
                if let (Some(row), Ok(end)) = (rows.get_mut(&tp), end) {
                    row.end = end.offset;
                }
            }
        }
    }
    let rows: Vec<LagRow> = rows.into_values().collect();
    if args.json {
        return print_json(&describe_json(&description, &rows));
    }
    out!("{}", describe_text(&description, &rows));
    Ok(())
}

fn assignment_text(assignment: Option<&Vec<TopicPartition>>) -> String {
    let Some(assignment) = assignment else {
        return "-".to_owned();
    };
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in assignment {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    if by_topic.is_empty() {
        return "(none)".to_owned();
    }
    by_topic
        .into_iter()
        .map(|(topic, mut partitions)| {
            partitions.sort_unstable();
            let list: Vec<String> = partitions.iter().map(i32::to_string).collect();
            format!("{topic}:{}", list.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn total_lag(rows: &[LagRow]) -> i64 {
    rows.iter().filter_map(LagRow::lag).sum()
}

fn describe_text(group: &GroupDescription, rows: &[LagRow]) -> String {
    let protocol = match (group.protocol_type.as_str(), group.protocol.as_str()) {
        ("", "") => "-".to_owned(),
        (kind, "") => kind.to_owned(),
        (kind, assignor) => format!("{kind} ({assignor})"),
    };
    let mut out = format!(
        "Group: {}\nState: {}\nProtocol: {}\nMembers: {}\n",
        group.group_id,
        group.state,
        protocol,
        group.members.len()
    );
    if !group.members.is_empty() {
        let mut members = Table::new(&["MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"]);
        for m in &group.members {
            members.row(vec![
                m.member_id.clone(),
                m.client_id.clone(),
                m.client_host.clone(),
                assignment_text(m.assignment.as_ref()),
            ]);
        }
        out.push('\n');
        out.push_str(&members.render());
    }
    out.push('\n');
    if rows.is_empty() {
        out.push_str("No committed offsets and no assigned partitions.\n");
        return out;
    }
    let mut offsets = Table::new(&["TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER-ID"]);
    for row in rows {
        offsets.row(vec![
            row.topic_partition.topic.clone(),
            row.topic_partition.partition.to_string(),
            or_dash(row.committed),
            or_dash(row.end),
            or_dash(row.lag()),
            row.member_id.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    out.push_str(&offsets.render());
    out.push_str(&format!("\nTotal lag: {}\n", total_lag(rows)));
    out
}

fn describe_json(group: &GroupDescription, rows: &[LagRow]) -> serde_json::Value {
    json!({
        "group": group.group_id,
        "state": group.state,
        "protocol_type": group.protocol_type,
        "protocol": group.protocol,
        "members": group.members.iter().map(|m| json!({
            "member_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "host": m.client_host,
            "assignment": m.assignment.as_ref().map(|a| a.iter().map(|tp| json!({
                "topic": tp.topic,
                "partition": tp.partition,
            })).collect::<Vec<_>>()),
        })).collect::<Vec<_>>(),
        "offsets": rows.iter().map(|r| json!({
            "topic": r.topic_partition.topic,
            "partition": r.topic_partition.partition,
            "committed": r.committed,
            "end": r.end,
            "lag": r.lag(),
            "member_id": r.member_id,
        })).collect::<Vec<_>>(),
        "total_lag": total_lag(rows),
    })
}

/// Where `reset-offsets` moves offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResetTo {
    Earliest,
    Latest,
    Offset(i64),
    /// Milliseconds since the epoch.
    Datetime(i64),
    ShiftBy(i64),
}

/// What is known about one partition before a reset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionOffsets {
    topic_partition: TopicPartition,
    committed: Option<i64>,
    earliest: i64,
    latest: i64,
    /// For [`ResetTo::Datetime`]: the first offset at or after the time, `None` if none.
    at_time: Option<i64>,
}

/// One line of a reset plan.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlannedReset {
    topic_partition: TopicPartition,
    current: Option<i64>,
    new: i64,
}

/// The new offset of every partition, kept between its earliest and latest offsets (as
/// Kafka's tool does). Fails for `--shift-by` on a partition without a committed offset:
/// there is nothing to shift from.
fn plan_reset(partitions: &[PartitionOffsets], to: ResetTo) -> Result<Vec<PlannedReset>, String> {
    partitions
        .iter()
        .map(|p| {
            let wanted = match to {
                ResetTo::Earliest => p.earliest,
                ResetTo::Latest => p.latest,
                ResetTo::Offset(offset) => offset,
                ResetTo::Datetime(_) => p.at_time.unwrap_or(p.latest),
                ResetTo::ShiftBy(n) => match p.committed {
                    Some(committed) => committed.saturating_add(n),
                    None => {
                        return Err(format!(
                            "cannot shift {}: the group has no committed offset for it",
                            p.topic_partition
                        ));
                    }
                },
            };
            Ok(PlannedReset {
                topic_partition: p.topic_partition.clone(),
                current: p.committed,
                new: wanted.clamp(p.earliest, p.latest.max(p.earliest)),
            })
        })
        .collect()
}

/// Parses `--to-datetime`: RFC 3339 with `Z` or a `+hh:mm`/`-hh:mm` offset, a date-time or a
/// date without a zone (read as UTC), or milliseconds since the epoch.
fn parse_datetime_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        format!(
            "--to-datetime {text}: expected e.g. 2024-05-01T12:00:00Z, 2024-05-01T12:00:00+02:00, 2024-05-01 or epoch milliseconds"
        )
    };
    let (local, offset_minutes) = split_zone(text).ok_or_else(bad)?;
    let local = if local.len() == 10 {
        format!("{local}T00:00:00")
    } else {
        local.to_owned()
    };
    let time = humantime::parse_rfc3339_weak(&local).map_err(|_| bad())?;
    let ms = time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .map_err(|_| bad())?;
    Ok(ms - offset_minutes * 60_000)
}

/// Splits a trailing zone (`Z`, `+hh:mm`, `-hh:mm`) off a date-time; minutes east of UTC.
fn split_zone(text: &str) -> Option<(&str, i64)> {
    if let Some(local) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        return Some((local, 0));
    }
    // A zone offset only follows a time (after the 'T'), so the date's dashes are not one.
    let time_start = text.find(['T', 't', ' ']).map_or(text.len(), |i| i + 1);
    let Some(sign_at) = text[time_start..].rfind(['+', '-']).map(|i| i + time_start) else {
        return Some((text, 0));
    };
    let zone = &text[sign_at + 1..];
    let (hours, minutes) = zone.split_once(':').unwrap_or((zone, "00"));
    let hours: i64 = hours.parse().ok().filter(|h| (0..=23).contains(h))?;
    let minutes: i64 = minutes.parse().ok().filter(|m| (0..=59).contains(m))?;
    let sign = if text[sign_at..].starts_with('-') {
        -1
    } else {
        1
    };
    Some((&text[..sign_at], sign * (hours * 60 + minutes)))
}

/// Parses `--topic TOPIC` or `--topic TOPIC:0,1,2`.
fn parse_topic_scope(text: &str) -> Result<(String, Option<Vec<i32>>), String> {
    match text.split_once(':') {
        None if !text.is_empty() => Ok((text.to_owned(), None)),
        Some((topic, list)) if !topic.is_empty() => {
            let partitions = list
                .split(',')
                .map(|p| p.trim().parse::<i32>().ok().filter(|p| *p >= 0))
                .collect::<Option<Vec<i32>>>()
                .ok_or_else(|| format!("--topic {text}: expected TOPIC or TOPIC:0,1,..."))?;
            Ok((topic.to_owned(), Some(partitions)))
        }
        _ => Err(format!("--topic {text}: expected TOPIC or TOPIC:0,1,...")),
    }
}

async fn reset_offsets(client: &Client, args: ResetArgs) -> anyhow::Result<()> {
    let to = match (
        args.to_earliest,
        args.to_latest,
        args.to_offset,
        &args.to_datetime,
        args.shift_by,
    ) {
        (true, ..) => ResetTo::Earliest,
        (_, true, ..) => ResetTo::Latest,
        (_, _, Some(offset), ..) => ResetTo::Offset(offset),
        (_, _, _, Some(text), _) => match parse_datetime_ms(text) {
            Ok(ms) => ResetTo::Datetime(ms),
            Err(reason) => usage!("{reason}"),
        },
        (_, _, _, _, Some(n)) => ResetTo::ShiftBy(n),
        _ => usage!(
            "say where to reset to: --to-earliest, --to-latest, --to-offset, --to-datetime or --shift-by"
        ),
    };
    let description = client.describe_group(&args.group).await?;
    let active = !description.members.is_empty();
    if active && !args.dry_run {
        anyhow::bail!(
            "cannot reset offsets of group '{}': it has {} active member(s) (state {}); stop its consumers first",
            args.group,
            description.members.len(),
            description.state
        );
    }
    let committed = client.offset_fetch(&args.group, None).await?;
    let committed_by_partition: BTreeMap<TopicPartition, Option<i64>> = committed
        .iter()
        .map(|c| (c.topic_partition.clone(), c.offset))
        .collect();

    let mut partitions: BTreeSet<TopicPartition> = BTreeSet::new();
    if args.all_topics {
        partitions.extend(committed_by_partition.keys().cloned());
    }
    for scope in &args.topics {
        let (topic, only) = match parse_topic_scope(scope) {
            Ok(parsed) => parsed,
            Err(reason) => usage!("{reason}"),
        };
        let metadata = client.topic_metadata(&topic, false).await?;
        match only {
            None => partitions.extend(
                metadata
                    .partitions
                    .iter()
                    .map(|p| TopicPartition::new(&topic, p.partition)),
            ),
            Some(only) => {
                for p in only {
                    if metadata.partition(p).is_none() {
                        usage!(
                            "--topic {scope}: topic '{topic}' has no partition {p} (it has {})",
                            metadata.partition_count()
                        );
                    }
                    partitions.insert(TopicPartition::new(&topic, p));
                }
            }
        }
    }
    if partitions.is_empty() {
        anyhow::bail!(
            "nothing to reset: group '{}' has no committed offsets",
            args.group
        );
    }
    let partitions: Vec<TopicPartition> = partitions.into_iter().collect();
    let earliest = client
        .list_offsets(&partitions, OffsetSpec::Earliest)
        .await?;
    let latest = client.list_offsets(&partitions, OffsetSpec::Latest).await?;
    let at_time = match to {
        ResetTo::Datetime(ms) => Some(
            client
                .list_offsets(&partitions, OffsetSpec::Timestamp(ms))
                .await?,
        ),
        _ => None,
    };
    let mut known = Vec::with_capacity(partitions.len());
    for (i, tp) in partitions.iter().enumerate() {
        let offset_of = |listed: &Vec<(
            TopicPartition,
            strom_client::Result<strom_client::ListedOffset>,
        )>| {
            match listed.get(i) {
                Some((_, Ok(found))) => Ok(found.offset),
                Some((_, Err(e))) => Err(anyhow::anyhow!("cannot list offsets of {tp}: {e}")),
                None => Err(anyhow::anyhow!("no offsets listed for {tp}")),
            }
        };
        let earliest = offset_of(&earliest)?.unwrap_or(0);
        let latest = offset_of(&latest)?.unwrap_or(earliest);
        let at_time = match &at_time {
            Some(listed) => offset_of(listed)?,
            None => None,
        };
        known.push(PartitionOffsets {
            topic_partition: tp.clone(),
            committed: committed_by_partition.get(tp).copied().flatten(),
            earliest,
            latest,
            at_time,
        });
    }
    let plan = match plan_reset(&known, to) {
        Ok(plan) => plan,
        Err(reason) => anyhow::bail!("{reason}"),
    };
    if !args.dry_run {
        let offsets: Vec<(TopicPartition, i64)> = plan
            .iter()
            .map(|p| (p.topic_partition.clone(), p.new))
            .collect();
        let results = client.offset_commit(&args.group, &offsets).await?;
        let failures: Vec<String> = results
            .iter()
            .filter_map(|(tp, r)| r.as_ref().err().map(|e| format!("{tp}: {e}")))
            .collect();
        if !failures.is_empty() {
            anyhow::bail!(
                "cannot reset offsets of group '{}': {}",
                args.group,
                failures.join("; ")
            );
        }
    }
    if args.json {
        return print_json(&json!({
            "group": args.group,
            "dry_run": args.dry_run,
            "partitions": plan.iter().map(|p| json!({
                "topic": p.topic_partition.topic,
                "partition": p.topic_partition.partition,
                "current": p.current,
                "new": p.new,
            })).collect::<Vec<_>>(),
        }));
    }
    let mut table = Table::new(&["TOPIC", "PARTITION", "CURRENT", "NEW"]);
    for p in &plan {
        table.row(vec![
            p.topic_partition.topic.clone(),
            p.topic_partition.partition.to_string(),
            or_dash(p.current),
            p.new.to_string(),
        ]);
    }
    out!("{}", table.render());
    if args.dry_run {
        outln!("Dry run: nothing was changed.");
        if active {
            outln!(
                "Note: group '{}' has {} active member(s); a real reset would be refused.",
                args.group,
                description.members.len()
            );
        }
    } else {
        outln!(
            "Reset the offsets of group '{}' for {} partition(s).",
            args.group,
            plan.len()
        );
    }
    Ok(())
}

async fn delete(client: &Client, args: DeleteArgs) -> anyhow::Result<()> {
    let (_, result) = client
        .delete_groups(&[args.group.as_str()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            anyhow::anyhow!("the broker returned no result for group '{}'", args.group)
        })?;
    result.map_err(|e| anyhow::anyhow!("cannot delete group '{}': {e}", args.group))?;
    outln!("Deleted group '{}'.", args.group);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(p: i32, committed: Option<i64>, at_time: Option<i64>) -> PartitionOffsets {
        PartitionOffsets {
            topic_partition: TopicPartition::new("t", p),
            committed,
            earliest: 10,
            latest: 100,
            at_time,
        }
    }

    fn news(plan: &[PlannedReset]) -> Vec<i64> {
        plan.iter().map(|p| p.new).collect()
    }

    #[test]
    fn reset_targets_resolve_per_partition() {
        let parts = [partition(0, Some(50), Some(60)), partition(1, None, None)];
        assert_eq!(
            news(&plan_reset(&parts, ResetTo::Earliest).unwrap()),
            [10, 10]
        );
        assert_eq!(
            news(&plan_reset(&parts, ResetTo::Latest).unwrap()),
            [100, 100]
        );
        assert_eq!(
            news(&plan_reset(&parts, ResetTo::Offset(42)).unwrap()),
            [42, 42]
        );
        assert_eq!(
            news(&plan_reset(&parts, ResetTo::Datetime(0)).unwrap()),
            [60, 100],
            "no record at or after the time: the end"
        );
        let plan = plan_reset(&parts[..1], ResetTo::ShiftBy(-5)).unwrap();
        assert_eq!(plan[0].current, Some(50));
        assert_eq!(plan[0].new, 45);
    }

    #[test]
    fn reset_offsets_are_clamped_to_the_log() {
        let parts = [partition(0, Some(50), None)];
        assert_eq!(news(&plan_reset(&parts, ResetTo::Offset(5)).unwrap()), [10]);
        assert_eq!(
            news(&plan_reset(&parts, ResetTo::Offset(500)).unwrap()),
            [100]
        );
        assert_eq!(
            news(&plan_reset(&parts, ResetTo::ShiftBy(-1000)).unwrap()),
            [10]
        );
        assert_eq!(
            news(&plan_reset(&parts, ResetTo::ShiftBy(i64::MAX)).unwrap()),
            [100]
        );
    }

    #[test]
    fn shifting_a_partition_without_a_committed_offset_is_refused() {
        let error = plan_reset(&[partition(3, None, None)], ResetTo::ShiftBy(1)).unwrap_err();
        assert!(error.contains("t-3"), "{error}");
    }

    #[test]
    fn datetimes_parse_with_and_without_zones() {
        assert_eq!(parse_datetime_ms("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01Z"), Ok(1_000));
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01.250Z"), Ok(1_250));
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01"), Ok(1_000));
        assert_eq!(parse_datetime_ms("1970-01-02"), Ok(86_400_000));
        assert_eq!(
            parse_datetime_ms("1970-01-01T02:00:00+02:00"),
            Ok(0),
            "east of UTC is earlier in UTC"
        );
        assert_eq!(
            parse_datetime_ms("1970-01-01T00:00:00-01:30"),
            Ok(5_400_000)
        );
        assert!(parse_datetime_ms("yesterday").is_err());
        assert!(parse_datetime_ms("2024-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn topic_scopes_name_all_or_some_partitions() {
        assert_eq!(parse_topic_scope("t"), Ok(("t".to_owned(), None)));
        assert_eq!(
            parse_topic_scope("t:0,2"),
            Ok(("t".to_owned(), Some(vec![0, 2])))
        );
        assert!(parse_topic_scope("t:").is_err());
        assert!(parse_topic_scope("t:x").is_err());
        assert!(parse_topic_scope(":1").is_err());
    }

    #[test]
    fn lag_is_end_minus_committed_and_unknown_without_either() {
        let row = |committed, end| LagRow {
            topic_partition: TopicPartition::new("t", 0),
            committed,
            end,
            member_id: None,
        };
        assert_eq!(row(Some(400), Some(1000)).lag(), Some(600));
        assert_eq!(row(None, Some(1000)).lag(), None);
        assert_eq!(row(Some(5), None).lag(), None);
        assert_eq!(
            total_lag(&[row(Some(400), Some(1000)), row(None, Some(9))]),
            600
        );
    }

    #[test]
    fn assignments_are_grouped_by_topic() {
        let assignment = vec![
            TopicPartition::new("b", 1),
            TopicPartition::new("a", 2),
            TopicPartition::new("a", 0),
        ];
        assert_eq!(assignment_text(Some(&assignment)), "a:0,2 b:1");
        assert_eq!(assignment_text(Some(&Vec::new())), "(none)");
        assert_eq!(assignment_text(None), "-");
    }
}
