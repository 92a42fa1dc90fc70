//! `strom cluster elect-leaders|rebalance|remove-broker`: moving leadership and replicas
//! between brokers with ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments
//! and UnregisterBroker.
//!
//! ```text
//!  DescribeCluster + Metadata ─▶ plan (pure, `plan.rs`) ─▶ print ─▶ (--dry-run: stop)
//!        ─▶ AlterPartitionReassignments ─▶ poll ListPartitionReassignments until none of the
//!           plan's partitions is still moving (bounded by --timeout), printing progress
//!        ─▶ PREFERRED ElectLeaders, so the planned first replicas lead
//!        ─▶ remove-broker only: wait for the broker to stop, then UnregisterBroker
//! ```
//!
//! A rebalance or removal refuses to start while any reassignment is in progress: its plan
//! would be made from replica lists that are about to change.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use strom_client::kafka_protocol::ResponseError;
use strom_client::{Client, ElectionType, TopicPartition};
use tokio::time::Instant;

use super::plan::{self, Assignment, Plan};
use crate::common::outln;
use crate::table::{Table, id_list};

/// How often the waits ask the cluster again.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often the wait repeats an unchanged progress line.
const PROGRESS_REPEAT: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct ElectLeadersArgs {
    /// Elect any available replica of a partition without a leader, even one that is not in
    /// sync (records it lacks are lost). Default: the preferred (first) replica.
    #[arg(long)]
    unclean: bool,
    /// Only this topic's partitions (default: every partition).
    #[arg(short, long, value_name = "TOPIC")]
    topic: Option<String>,
    /// Only these partitions of --topic (repeatable).
    #[arg(short, long, value_name = "P", requires = "topic", value_parser = clap::value_parser!(i32).range(0..))]
    partition: Vec<i32>,
}

#[derive(Debug, Args)]
pub struct RebalanceArgs {
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// How long to wait for the reassignments to complete (`90s`, `10m`, `1h`).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Args)]
pub struct RemoveBrokerArgs {
    /// The id of the broker to remove.
    broker: i32,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// How long to wait for the reassignments to complete and then for the broker to stop
    /// (`90s`, `10m`, `1h`).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub async fn elect_leaders(client: &Client, args: ElectLeadersArgs) -> anyhow::Result<()> {
    let election_type = if args.unclean {
        ElectionType::Unclean
    } else {
        ElectionType::Preferred
    };
    let partitions: Option<Vec<(String, i32)>> = match &args.topic {
        None => None,
        Some(topic) if args.partition.is_empty() => {
            let metadata = client.topic_metadata(topic, false).await?;
            Some(
                metadata
                    .partitions
                    .iter()
                    .map(|p| (topic.clone(), p.partition))
                    .collect(),
            )
        }
        Some(topic) => Some(args.partition.iter().map(|&p| (topic.clone(), p)).collect()),
    };
    let results = client
        .elect_leaders(election_type, partitions.as_deref())
        .await?;
    let mut table = Table::new(&["TOPIC", "PARTITION", "RESULT"]);
    let (mut elected, mut not_needed, mut failed) = (0, 0, 0);
    for (tp, result) in &results {
        let text = match result {
            Ok(()) => {
                elected += 1;
                "elected".to_owned()
            }
            Err(e) if e.is(ResponseError::ElectionNotNeeded) => {
                not_needed += 1;
                "not needed".to_owned()
            }
            Err(e) => {
                failed += 1;
                e.to_string()
            }
        };
        table.row(vec![tp.topic.clone(), tp.partition.to_string(), text]);
    }
    let kind = election_type.name();
    if results.is_empty() {
        outln!("No partition needed a {kind} leader election.");
        return Ok(());
    }
    crate::common::emit(&table.render())?;
    outln!("\n{kind} election: {elected} elected, {not_needed} not needed, {failed} failed.");
    if failed > 0 {
        bail!("the {kind} leader election failed for {failed} partition(s)");
    }
    Ok(())
}

pub async fn rebalance(client: &Client, args: RebalanceArgs) -> anyhow::Result<()> {
    ensure_no_reassignments(client).await?;
    let view = ClusterView::read(client).await?;
    let plan = plan::rebalance(&view.assignments, &view.unfenced)
        .map_err(|e| anyhow::anyhow!("cannot plan a rebalance: {e}"))?;
    outln!("Brokers: {} (unfenced)", id_list(&view.unfenced));
    if !view.fenced.is_empty() {
        outln!(
            "Fenced brokers {} keep their replicas and get no new ones.",
            id_list(&view.fenced)
        );
    }
    print_plan(&view, &plan)?;
    if args.dry_run {
        outln!("Dry run: nothing was changed.");
        return Ok(());
    }
    let deadline = Instant::now() + args.timeout;
    execute(client, &plan, deadline, args.timeout).await?;
    // Every partition, not only the plan's: a rebalance also gives back leadership that
    // drifted away from preferred replicas.
    elect_preferred(client, None).await
}

pub async fn remove_broker(client: &Client, args: RemoveBrokerArgs) -> anyhow::Result<()> {
    let broker = args.broker;
    let view = ClusterView::read(client).await?;
    if !view.registered.contains(&broker) {
        bail!("broker {broker} is not registered");
    }
    ensure_no_reassignments(client).await?;
    let others: Vec<i32> = view
        .registered
        .iter()
        .copied()
        .filter(|&b| b != broker)
        .collect();
    let plan = plan::remove_broker(&view.assignments, &view.unfenced, broker, others.len())
        .map_err(|e| anyhow::anyhow!("cannot remove broker {broker}: {e}"))?;
    let targets: Vec<i32> = view
        .unfenced
        .iter()
        .copied()
        .filter(|&b| b != broker)
        .collect();
    outln!(
        "Moving every replica of broker {broker} to brokers {}.",
        id_list(&targets)
    );
    print_plan(&view, &plan)?;
    if args.dry_run {
        outln!("Then broker {broker} would be unregistered.");
        outln!("Dry run: nothing was changed.");
        return Ok(());
    }
    let deadline = Instant::now() + args.timeout;
    execute(client, &plan, deadline, args.timeout).await?;
    let touched: Vec<(String, i32)> = plan
        .changes
        .iter()
        .map(|c| (c.topic.clone(), c.partition))
        .collect();
    if !touched.is_empty() {
        elect_preferred(client, Some(&touched)).await?;
    }
    wait_until_empty(client, broker, deadline).await?;
    wait_until_stopped(client, broker, deadline, args.timeout).await?;
    client
        .unregister_broker(broker)
        .await
        .with_context(|| format!("cannot unregister broker {broker}"))?;
    outln!("Unregistered broker {broker}.");
    Ok(())
}

/// What the planner needs to know about the cluster.
struct ClusterView {
    assignments: Vec<Assignment>,
    /// Partitions without a leader: their new replicas cannot copy anything until they have
    /// one.
    leaderless: Vec<(String, i32)>,
    registered: Vec<i32>,
    unfenced: Vec<i32>,
    fenced: Vec<i32>,
}

impl ClusterView {
    async fn read(client: &Client) -> anyhow::Result<ClusterView> {
        let cluster = client.describe_cluster().await?;
        // Without DescribeCluster v2 the brokers listed are the unfenced ones (as in Metadata).
        let registered: Vec<i32> = cluster.brokers.iter().map(|b| b.id).collect();
        let (fenced, unfenced): (Vec<i32>, Vec<i32>) = registered
            .iter()
            .copied()
            .partition(|&b| cluster.is_fenced(b));
        let metadata = client.refresh_metadata(None).await?;
        let mut assignments = Vec::new();
        let mut leaderless = Vec::new();
        for topic in metadata.topics.values().filter(|t| t.error_code == 0) {
            for p in &topic.partitions {
                assignments.push(Assignment {
                    topic: topic.name.clone(),
                    partition: p.partition,
                    replicas: p.replicas.clone(),
                });
                if p.leader.is_none() {
                    leaderless.push((topic.name.clone(), p.partition));
                }
            }
        }
        Ok(ClusterView {
            assignments,
            leaderless,
            registered,
            unfenced,
            fenced,
        })
    }
}

async fn ensure_no_reassignments(client: &Client) -> anyhow::Result<()> {
    let ongoing = client.list_partition_reassignments(None).await?;
    if ongoing.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = ongoing
        .iter()
        .map(|r| format!("{}-{}", r.topic, r.partition))
        .collect();
    bail!(
        "{} partition reassignment(s) in progress ({}); wait for them (strom topic reassignments) or cancel them (strom topic reassign --cancel) first",
        names.len(),
        abbreviate(&names)
    )
}

fn print_plan(view: &ClusterView, plan: &Plan) -> anyhow::Result<()> {
    if plan.is_empty() {
        outln!("Nothing to move: the replicas and preferred leaders are balanced.");
        return Ok(());
    }
    let leaders_changed = plan
        .changes
        .iter()
        .filter(|c| c.changes_preferred_leader())
        .count();
    outln!(
        "Plan: move {} replica(s) of {} partition(s); {} partition(s) get another preferred leader.\n",
        plan.replicas_moved(),
        plan.changes
            .iter()
            .filter(|c| !c.added().is_empty())
            .count(),
        leaders_changed
    );
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "REPLICAS",
        "TARGET",
        "ADDING",
        "REMOVING",
    ]);
    for c in &plan.changes {
        let added = c.added();
        let removed = c.removed();
        table.row(vec![
            c.topic.clone(),
            c.partition.to_string(),
            id_list(&c.current),
            id_list(&c.target),
            dash_if_empty(&added),
            dash_if_empty(&removed),
        ]);
    }
    crate::common::emit(&table.render())?;
    let brokers: Vec<i32> = view.registered.clone();
    let before = plan::loads(&view.assignments, &brokers);
    let after = plan::loads(&plan.apply(&view.assignments), &brokers);
    let mut loads = Table::new(&["BROKER", "REPLICAS", "PREFERRED-LEADERS"]);
    for (broker, was) in &before {
        let now = after.get(broker).copied().unwrap_or_default();
        loads.row(vec![
            broker.to_string(),
            format!("{} -> {}", was.replicas, now.replicas),
            format!("{} -> {}", was.preferred_leaders, now.preferred_leaders),
        ]);
    }
    outln!("");
    crate::common::emit(&loads.render())?;
    for c in &plan.changes {
        if !c.added().is_empty()
            && view
                .leaderless
                .iter()
                .any(|(t, p)| *t == c.topic && *p == c.partition)
        {
            outln!(
                "Note: {}-{} has no leader; its new replicas copy nothing until it has one.",
                c.topic,
                c.partition
            );
        }
    }
    Ok(())
}

/// Submits the plan and waits until none of its partitions is still being reassigned.
async fn execute(
    client: &Client,
    plan: &Plan,
    deadline: Instant,
    timeout: Duration,
) -> anyhow::Result<()> {
    if plan.is_empty() {
        return Ok(());
    }
    let reassignments: Vec<(String, i32, Option<Vec<i32>>)> = plan
        .changes
        .iter()
        .map(|c| (c.topic.clone(), c.partition, Some(c.target.clone())))
        .collect();
    let results = client.alter_partition_reassignments(&reassignments).await?;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(tp, r)| r.as_ref().err().map(|e| format!("{tp}: {e}")))
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} reassignment(s) were refused (the others go on): {}",
            failed.len(),
            results.len(),
            failed.join("; ")
        );
    }
    outln!("\nStarted {} reassignment(s).", results.len());
    let partitions: Vec<TopicPartition> = results.into_iter().map(|(tp, _)| tp).collect();
    wait_for_reassignments(client, &partitions, deadline, timeout).await
}

/// Waits until none of `partitions` is being reassigned, printing which still are whenever
/// that changes (and every [`PROGRESS_REPEAT`]).
async fn wait_for_reassignments(
    client: &Client,
    partitions: &[TopicPartition],
    deadline: Instant,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut topics: Vec<(String, Vec<i32>)> = Vec::new();
    for tp in partitions {
        match topics.iter_mut().find(|(t, _)| *t == tp.topic) {
            Some((_, list)) => list.push(tp.partition),
            None => topics.push((tp.topic.clone(), vec![tp.partition])),
        }
    }
    let mut last: Option<(Vec<String>, Instant)> = None;
    loop {
        let ongoing = match client.list_partition_reassignments(Some(&topics)).await {
            Ok(ongoing) => ongoing,
            // A controller failover (REQUEST_TIMED_OUT, NOT_CONTROLLER) passes: ask again.
            Err(e) if e.is_retriable() && Instant::now() + POLL_INTERVAL <= deadline => {
                tracing::debug!(error = %e, "cannot list reassignments; retrying");
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let names: Vec<String> = ongoing
            .iter()
            .map(|r| {
                format!(
                    "{}-{} (adding {})",
                    r.topic,
                    r.partition,
                    id_list(&r.adding_replicas)
                )
            })
            .collect();
        if names.is_empty() {
            outln!(
                "All {} reassignment(s) completed in {:.1}s.",
                partitions.len(),
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        let repeat = last
            .as_ref()
            .is_none_or(|(seen, at)| *seen != names || at.elapsed() >= PROGRESS_REPEAT);
        if repeat {
            outln!(
                "Waiting for {} of {} partition(s) to finish reassigning [{}s]: {}",
                names.len(),
                partitions.len(),
                started.elapsed().as_secs(),
                abbreviate(&names)
            );
            last = Some((names.clone(), Instant::now()));
        }
        if Instant::now() + POLL_INTERVAL > deadline {
            bail!(
                "{} reassignment(s) did not complete within {}; they go on in the background (strom topic reassignments shows them, strom topic reassign --cancel stops one)",
                names.len(),
                humantime::format_duration(timeout)
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A PREFERRED election for `partitions` (every partition with `None`). Partitions whose
/// preferred replica cannot lead are reported, not failed: the data is where it should be.
async fn elect_preferred(
    client: &Client,
    partitions: Option<&[(String, i32)]>,
) -> anyhow::Result<()> {
    let results = client
        .elect_leaders(ElectionType::Preferred, partitions)
        .await
        .context("preferred leader election")?;
    let elected = results.iter().filter(|(_, r)| r.is_ok()).count();
    outln!("Preferred leader election: {elected} partition(s) moved to their preferred leader.");
    for (tp, result) in &results {
        if let Err(e) = result
            && !e.is(ResponseError::ElectionNotNeeded)
        {
            outln!("  {tp} keeps its leader: {e}");
        }
    }
    Ok(())
}

/// Waits until no partition names `broker` in the metadata: the broker answering Metadata
/// may apply the completed reassignments a moment after the controller reported them.
async fn wait_until_empty(client: &Client, broker: i32, deadline: Instant) -> anyhow::Result<()> {
    loop {
        let view = ClusterView::read(client).await?;
        let left: Vec<String> = view
            .assignments
            .iter()
            .filter(|a| a.replicas.contains(&broker))
            .map(|a| format!("{}-{}", a.topic, a.partition))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() + POLL_INTERVAL > deadline {
            bail!(
                "broker {broker} still holds replicas of {} (changed by someone else meanwhile?); run remove-broker {broker} again",
                abbreviate(&left)
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Waits until `broker` is fenced or gone: unregistering a running broker is undone by its
/// next heartbeat, which registers it again.
async fn wait_until_stopped(
    client: &Client,
    broker: i32,
    deadline: Instant,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut told = false;
    loop {
        let cluster = match client.describe_cluster().await {
            Ok(cluster) => cluster,
            Err(e) if e.is_retriable() && Instant::now() + POLL_INTERVAL <= deadline => {
                tracing::debug!(error = %e, "cannot describe the cluster; retrying");
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let running = cluster
            .brokers
            .iter()
            .any(|b| b.id == broker && !cluster.is_fenced(b.id));
        if !running {
            return Ok(());
        }
        if !told {
            outln!(
                "Broker {broker} holds no replicas now. Waiting for it to stop before unregistering it: stop its process (a broker still running registers again)."
            );
            told = true;
        }
        if Instant::now() + POLL_INTERVAL > deadline {
            bail!(
                "broker {broker} was still running after {}; stop it and run remove-broker {broker} again to unregister it",
                humantime::format_duration(timeout)
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The first few names and how many more.
fn abbreviate(names: &[String]) -> String {
    const SHOWN: usize = 6;
    let mut text = names[..names.len().min(SHOWN)].join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

fn dash_if_empty(ids: &[i32]) -> String {
    if ids.is_empty() {
        "-".to_owned()
    } else {
        id_list(ids)
    }
}
