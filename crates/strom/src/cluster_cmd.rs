//! `strom cluster`: describe a running cluster, move leadership and replicas between its
//! brokers, remove a broker, or start a local cluster for development.
//!
//! `describe` asks any broker for DescribeCluster (v2 with fenced brokers, where the broker
//! offers it) and DescribeQuorum, and shows what `kafka-metadata-quorum.sh describe --status`
//! and `--replication` show, plus the brokers: the quorum leader, its epoch, the metadata log's
//! high watermark, and each voter's and observer's log end offset, lag and fetch times. Every
//! Strom cluster has a Raft quorum (one voter for a single broker); a cluster that does not
//! answer DescribeQuorum (Kafka in ZooKeeper mode, some other Kafka-compatible broker) gets a
//! "not reported" line instead. Rendering is pure: it takes the two descriptions and the
//! current time, so its tests need no cluster.
//!
//! `up` (in `cluster_up.rs`) runs an N-node cluster of `strom broker` processes on loopback.
//! `elect-leaders`, `rebalance` and `remove-broker` are in `cluster_cmd/reassign.rs`, with
//! their pure planner in `cluster_cmd/plan.rs`.

mod plan;
mod reassign;

// `cluster up` hangs off `ClusterCommand`, so it is a submodule of this one, in its own file.
use crate::cluster_up as up;

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::{ClusterDescription, QuorumDescription, QuorumReplica};

use crate::common::{ConnectArgs, out, print_json, runtime};
use crate::table::{Table, or_dash};

#[derive(Debug, Args)]
#[command(
    about = "Describe the cluster, elect leaders, rebalance or remove brokers, or start a local one",
    after_help = "Examples:\n  \
        strom cluster describe\n  \
        strom cluster describe --json\n  \
        strom cluster elect-leaders\n  \
        strom cluster rebalance --dry-run\n  \
        strom cluster remove-broker 4\n  \
        strom cluster up --nodes 3"
)]
pub struct ClusterArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Show the cluster id, the brokers (fenced or not), the controller and the metadata quorum.
    #[command(
        long_about = "Show the cluster id, the brokers (id, host, port, rack, fenced), the \
            controller and the state of the metadata quorum, like kafka-metadata-quorum.sh \
            describe --status and --replication together: the quorum leader (the active \
            controller), its epoch, the metadata log's high watermark, the largest follower \
            lag, and for each voter and observer its log end offset, its lag (high watermark \
            minus log end offset), when it last fetched and when it last caught up.\n\n\
            Fenced brokers (registered but no longer heartbeating) are listed when the broker \
            answers DescribeCluster v2; older brokers leave them out. A cluster that does not \
            answer DescribeQuorum (no KRaft quorum) gets a \"not reported\" line.",
        after_help = "Examples:\n  \
            strom cluster describe\n  \
            strom cluster describe -b 127.0.0.1:9092,127.0.0.1:9093\n  \
            strom cluster describe --json | jq -r .cluster_id\n  \
            strom cluster describe --json | jq '.quorum.voters[] | {replica_id, lag}'"
    )]
    Describe(DescribeArgs),
    /// Run a leader election: give partitions back to their preferred replica, or (--unclean)
    /// give leaderless partitions any replica.
    #[command(
        long_about = "Run a leader election with ElectLeaders, like kafka-leader-election.sh. \
            A preferred election (the default) makes each partition's first replica its \
            leader again where that replica is in sync and available. --unclean gives a \
            partition without a leader any available replica, even one that is not in sync: \
            records it lacks are lost.\n\n\
            Without --topic every partition is elected and only those that needed an election \
            are listed. A partition that failed makes the command exit with code 1.",
        after_help = "Examples:\n  \
            strom cluster elect-leaders\n  \
            strom cluster elect-leaders --topic events\n  \
            strom cluster elect-leaders --topic events --partition 0 --partition 3\n  \
            strom cluster elect-leaders --unclean --topic events --partition 2"
    )]
    ElectLeaders(reassign::ElectLeadersArgs),
    /// Spread replicas and preferred leaders evenly over the unfenced brokers.
    #[command(
        long_about = "Spread replicas and preferred leaders evenly over the unfenced brokers, \
            for instance after adding a broker. It plans a new assignment that moves as few \
            replicas as it can (each broker ends within one replica, and where the replicas \
            allow it within one preferred leadership, of every other; a partition's first \
            replica is its preferred leader), prints it, submits it with \
            AlterPartitionReassignments, waits (up to --timeout) until every moved replica \
            has copied the log and joined the in-sync replicas, printing which partitions \
            are still moving, and finally runs a preferred leader election. Replicas on \
            fenced brokers stay where they are. It refuses to start while a reassignment is \
            in progress.",
        after_help = "Examples:\n  \
            strom cluster rebalance --dry-run\n  \
            strom cluster rebalance\n  \
            strom cluster rebalance --timeout 1h"
    )]
    Rebalance(reassign::RebalanceArgs),
    /// Move every replica off a broker, then unregister it.
    #[command(
        long_about = "Decommission a broker: move every replica it holds to the other unfenced \
            brokers (keeping each partition's replication factor, balancing where they go), \
            wait until the moves complete, run a preferred leader election for the moved \
            partitions, wait for the broker to be stopped (a broker still running would \
            register again), and unregister it with UnregisterBroker, after which it is no \
            longer part of the cluster. Every wait is bounded by --timeout. It refuses when \
            fewer brokers than some topic's replication factor would remain.",
        after_help = "Examples:\n  \
            strom cluster remove-broker 4 --dry-run\n  \
            strom cluster remove-broker 4\n  \
            strom cluster remove-broker 4 --timeout 30m"
    )]
    RemoveBroker(reassign::RemoveBrokerArgs),
    Up(up::UpArgs),
}

#[derive(Debug, Args)]
struct DescribeArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// What is known about the metadata quorum.
enum Quorum {
    Raft(QuorumDescription),
    /// The cluster does not offer DescribeQuorum.
    NotReported,
    Failed(String),
}

pub fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Describe(describe_args) => describe(&args.connect, &describe_args),
        ClusterCommand::ElectLeaders(a) => with_client(&args.connect, |client| async move {
            reassign::elect_leaders(&client, a).await
        }),
        ClusterCommand::Rebalance(a) => with_client(&args.connect, |client| async move {
            reassign::rebalance(&client, a).await
        }),
        ClusterCommand::RemoveBroker(a) => with_client(&args.connect, |client| async move {
            reassign::remove_broker(&client, a).await
        }),
        ClusterCommand::Up(up_args) => up::run(up_args),
    }
}

/// Connects and runs `command` on the CLI's runtime.
fn with_client<F, Fut>(connect: &ConnectArgs, command: F) -> anyhow::Result<()>
where
    F: FnOnce(strom_client::Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    runtime()?.block_on(async move { command(connect.connect().await?).await })
}

fn describe(connect: &ConnectArgs, args: &DescribeArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = connect.connect().await?;
        let cluster = client.describe_cluster().await?;
        let quorum = match client.describe_quorum().await {
            Ok(Some(quorum)) => Quorum::Raft(quorum),
            Ok(None) => Quorum::NotReported,
            Err(e) => Quorum::Failed(e.to_string()),
        };
        if args.json {
            print_json(&describe_json(&cluster, &quorum))
        } else {
            out!("{}", describe_text(&cluster, &quorum, wall_clock_ms()));
            Ok(())
        }
    })
}

/// Milliseconds since the Unix epoch, the unit of DescribeQuorum's timestamps.
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A replica's part in the quorum, named as `kafka-metadata-quorum.sh --replication` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Leader,
    Follower,
    Observer,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Observer => "observer",
        }
    }
}

/// The leader first, then the other voters, then the observers, each group by id.
fn replicas_in_order(q: &QuorumDescription) -> Vec<(&QuorumReplica, Role)> {
    let leader = q.voters.iter().filter(|r| r.replica_id == q.leader_id);
    let followers = q.voters.iter().filter(|r| r.replica_id != q.leader_id);
    leader
        .map(|r| (r, Role::Leader))
        .chain(followers.map(|r| (r, Role::Follower)))
        .chain(q.observers.iter().map(|r| (r, Role::Observer)))
        .collect()
}

/// How far a replica is behind: the high watermark minus its log end offset. A replica ahead
/// of the high watermark (the leader, with entries not yet committed) is not behind.
fn lag(q: &QuorumDescription, replica: &QuorumReplica) -> Option<i64> {
    replica
        .log_end_offset
        .map(|end| (q.high_watermark - end).max(0))
}

/// The voter furthest behind, as `kafka-metadata-quorum.sh --status` reports it: its lag in
/// offsets, and how much earlier than the leader it last caught up (ms), when both times are
/// known. `None` when no voter reports a log end offset.
fn max_follower_lag(q: &QuorumDescription) -> Option<(i64, Option<i64>)> {
    let furthest = q
        .voters
        .iter()
        .filter(|r| r.log_end_offset.is_some())
        .min_by_key(|r| (r.log_end_offset, r.replica_id))?;
    let offsets = lag(q, furthest)?;
    let leader = q.voters.iter().find(|r| r.replica_id == q.leader_id);
    let time_ms = if furthest.replica_id == q.leader_id {
        Some(0)
    } else {
        match (
            leader.and_then(|l| l.last_caught_up_timestamp),
            furthest.last_caught_up_timestamp,
        ) {
            (Some(leader), Some(follower)) => Some((leader - follower).max(0)),
            _ => None,
        }
    };
    Some((offsets, time_ms))
}

/// `12 ms ago`, `3s ago`, `2m 5s ago`; `-` when unknown. A time ahead of ours (the leader's
/// clock runs ahead) counts as now.
fn ago(now_ms: i64, timestamp_ms: Option<i64>) -> String {
    let Some(timestamp_ms) = timestamp_ms else {
        return "-".to_owned();
    };
    let elapsed_ms = now_ms.saturating_sub(timestamp_ms).max(0);
    if elapsed_ms < 1_000 {
        return format!("{elapsed_ms} ms ago");
    }
    let elapsed = std::time::Duration::from_secs(u64::try_from(elapsed_ms / 1_000).unwrap_or(0));
    format!("{} ago", humantime::format_duration(elapsed))
}

fn brokers_summary(cluster: &ClusterDescription) -> String {
    let count = cluster.brokers.len();
    if !cluster.includes_fenced_brokers {
        return format!("{count} (fenced brokers not reported by this cluster)");
    }
    match cluster.fenced_broker_ids.len() {
        0 => format!("{count} (none fenced)"),
        fenced => format!("{count} ({fenced} fenced)"),
    }
}

fn quorum_summary(quorum: &Quorum) -> String {
    match quorum {
        Quorum::Raft(q) => format!(
            "Raft, leader {}, epoch {}, high watermark {}, {} voter{}, {} observer{}",
            q.leader_id,
            q.leader_epoch,
            q.high_watermark,
            q.voters.len(),
            plural(q.voters.len()),
            q.observers.len(),
            plural(q.observers.len()),
        ),
        Quorum::NotReported => "not reported (the cluster does not answer DescribeQuorum)".into(),
        Quorum::Failed(reason) => format!("unknown ({reason})"),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn describe_text(cluster: &ClusterDescription, quorum: &Quorum, now_ms: i64) -> String {
    let mut out = format!(
        "Cluster id: {}\nController: {}\nBrokers: {}\nQuorum: {}\n",
        cluster.cluster_id.as_deref().unwrap_or("-"),
        or_dash(cluster.controller_id),
        brokers_summary(cluster),
        quorum_summary(quorum)
    );
    if let Quorum::Raft(q) = quorum
        && let Some((offsets, time_ms)) = max_follower_lag(q)
    {
        let time = time_ms.map_or_else(|| "time unknown".to_owned(), |ms| format!("{ms} ms"));
        out.push_str(&format!("Max follower lag: {offsets} ({time})\n"));
    }
    out.push('\n');
    out.push_str(&brokers_table(cluster));
    if let Quorum::Raft(q) = quorum {
        out.push('\n');
        out.push_str(&replicas_table(q, now_ms));
    }
    out
}

fn brokers_table(cluster: &ClusterDescription) -> String {
    let mut table = Table::new(&["ID", "HOST", "PORT", "RACK", "FENCED", "CONTROLLER"]);
    for b in &cluster.brokers {
        let yes_no = |flag: bool| if flag { "yes" } else { "no" };
        table.row(vec![
            b.id.to_string(),
            b.host.clone(),
            b.port.to_string(),
            b.rack.clone().unwrap_or_else(|| "-".into()),
            yes_no(cluster.is_fenced(b.id)).to_owned(),
            if cluster.controller_id == Some(b.id) {
                "yes".into()
            } else {
                String::new()
            },
        ]);
    }
    table.render()
}

fn replicas_table(q: &QuorumDescription, now_ms: i64) -> String {
    let mut table = Table::new(&[
        "NODE",
        "ROLE",
        "LOG-END-OFFSET",
        "LAG",
        "LAST-FETCH",
        "LAST-CAUGHT-UP",
        "ENDPOINTS",
    ]);
    for (r, role) in replicas_in_order(q) {
        table.row(vec![
            r.replica_id.to_string(),
            role.name().to_owned(),
            or_dash(r.log_end_offset),
            or_dash(lag(q, r)),
            ago(now_ms, r.last_fetch_timestamp),
            ago(now_ms, r.last_caught_up_timestamp),
            if r.endpoints.is_empty() {
                "-".to_owned()
            } else {
                r.endpoints.join(",")
            },
        ]);
    }
    table.render()
}

fn describe_json(cluster: &ClusterDescription, quorum: &Quorum) -> serde_json::Value {
    json!({
        "cluster_id": cluster.cluster_id,
        "controller_id": cluster.controller_id,
        "fenced_brokers_reported": cluster.includes_fenced_brokers,
        "brokers": cluster.brokers.iter().map(|b| json!({
            "id": b.id,
            "host": b.host,
            "port": b.port,
            "rack": b.rack,
            "fenced": cluster.is_fenced(b.id),
        })).collect::<Vec<_>>(),
        "quorum": quorum_json(quorum),
    })
}

fn quorum_json(quorum: &Quorum) -> serde_json::Value {
    let q = match quorum {
        Quorum::Raft(q) => q,
        Quorum::NotReported => return json!({ "mode": "not-reported" }),
        Quorum::Failed(reason) => return json!({ "mode": "unknown", "error": reason }),
    };
    let replica = |(r, role): (&QuorumReplica, Role)| {
        json!({
            "replica_id": r.replica_id,
            "role": role.name(),
            "log_end_offset": r.log_end_offset,
            "lag": lag(q, r),
            "last_fetch_timestamp": r.last_fetch_timestamp,
            "last_caught_up_timestamp": r.last_caught_up_timestamp,
            "endpoints": r.endpoints,
        })
    };
    let (voters, observers): (Vec<_>, Vec<_>) = replicas_in_order(q)
        .into_iter()
        .partition(|(_, role)| *role != Role::Observer);
    let max_lag = max_follower_lag(q);
    json!({
        "mode": "raft",
        "leader_id": q.leader_id,
        "leader_epoch": q.leader_epoch,
        "high_watermark": q.high_watermark,
        "max_follower_lag": max_lag.map(|(offsets, _)| offsets),
        "max_follower_lag_time_ms": max_lag.and_then(|(_, time_ms)| time_ms),
        "voters": voters.into_iter().map(replica).collect::<Vec<_>>(),
        "observers": observers.into_iter().map(replica).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_client::BrokerMetadata;

    const NOW_MS: i64 = 1_700_000_010_000;

    fn cluster(brokers: i32, fenced: &[i32]) -> ClusterDescription {
        ClusterDescription {
            cluster_id: Some("abc".into()),
            controller_id: Some(1),
            brokers: (1..=brokers)
                .map(|id| BrokerMetadata {
                    id,
                    host: "127.0.0.1".into(),
                    port: 9091 + id,
                    rack: None,
                })
                .collect(),
            includes_fenced_brokers: true,
            fenced_broker_ids: fenced.to_vec(),
        }
    }

    fn replica(id: i32, log_end_offset: i64, caught_up_ms_ago: Option<i64>) -> QuorumReplica {
        QuorumReplica {
            replica_id: id,
            log_end_offset: Some(log_end_offset),
            last_fetch_timestamp: Some(NOW_MS - 5),
            last_caught_up_timestamp: caught_up_ms_ago.map(|ago| NOW_MS - ago),
            endpoints: vec![format!("CONTROLLER://127.0.0.1:{}", 9191 + id)],
        }
    }

    /// Leader 2 at the high watermark, voter 1 caught up, voter 3 ten offsets behind since
    /// 3.5 s, observer 4.
    fn three_voters() -> QuorumDescription {
        QuorumDescription {
            leader_id: 2,
            leader_epoch: 4,
            high_watermark: 100,
            voters: vec![
                replica(1, 100, Some(0)),
                replica(2, 100, Some(0)),
                replica(3, 90, Some(3_500)),
            ],
            observers: vec![QuorumReplica {
                endpoints: Vec::new(),
                ..replica(4, 100, Some(0))
            }],
        }
    }

    /// The cells of the row starting with `first` in the table whose header starts with
    /// `header`.
    fn row_of(text: &str, header: &str, first: &str) -> Vec<String> {
        text.lines()
            .skip_while(|l| !l.starts_with(header))
            .take_while(|l| !l.is_empty())
            .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .find(|cells| cells.first().map(String::as_str) == Some(first))
            .unwrap_or_else(|| panic!("no row starting with {first}: {text}"))
    }

    #[test]
    fn a_single_broker_reports_a_one_voter_raft_quorum() {
        let quorum = QuorumDescription {
            leader_id: 1,
            leader_epoch: 1,
            high_watermark: 7,
            voters: vec![replica(1, 7, Some(0))],
            observers: vec![],
        };
        let text = describe_text(&cluster(1, &[]), &Quorum::Raft(quorum.clone()), NOW_MS);
        assert!(
            text.contains(
                "Quorum: Raft, leader 1, epoch 1, high watermark 7, 1 voter, 0 observers"
            ),
            "{text}"
        );
        assert!(text.contains("Brokers: 1 (none fenced)"), "{text}");
        assert!(text.contains("Max follower lag: 0 (0 ms)"), "{text}");
        assert!(!text.contains("single node"), "{text}");
        assert!(
            text.contains("1   127.0.0.1  9092  -     no      yes"),
            "{text}"
        );
        let json = describe_json(&cluster(1, &[]), &Quorum::Raft(quorum));
        assert_eq!(json["quorum"]["mode"], "raft");
        assert_eq!(json["quorum"]["voters"][0]["role"], "leader");
    }

    #[test]
    fn a_cluster_without_describe_quorum_says_it_is_not_reported() {
        for brokers in [1, 3] {
            let text = describe_text(&cluster(brokers, &[]), &Quorum::NotReported, NOW_MS);
            assert!(text.contains("Quorum: not reported"), "{text}");
            assert!(!text.contains("LOG-END-OFFSET"), "{text}");
            assert_eq!(
                describe_json(&cluster(brokers, &[]), &Quorum::NotReported)["quorum"]["mode"],
                "not-reported"
            );
        }
        let failed = Quorum::Failed("NOT_CONTROLLER".into());
        let text = describe_text(&cluster(1, &[]), &failed, NOW_MS);
        assert!(text.contains("Quorum: unknown (NOT_CONTROLLER)"), "{text}");
    }

    #[test]
    fn the_leader_comes_first_then_followers_and_observers_with_their_lag() {
        let text = describe_text(&cluster(3, &[]), &Quorum::Raft(three_voters()), NOW_MS);
        let nodes: Vec<String> = text
            .lines()
            .skip_while(|l| !l.starts_with("NODE"))
            .skip(1)
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            nodes,
            ["2 leader", "1 follower", "3 follower", "4 observer"],
            "{text}"
        );
        assert_eq!(
            row_of(&text, "NODE", "3"),
            [
                "3",
                "follower",
                "90",
                "10",
                "5",
                "ms",
                "ago",
                "3s",
                "ago",
                "CONTROLLER://127.0.0.1:9194"
            ]
        );
        assert_eq!(
            row_of(&text, "NODE", "4").last().map(String::as_str),
            Some("-")
        );
        assert!(text.contains("Max follower lag: 10 (3500 ms)"), "{text}");
    }

    #[test]
    fn fenced_brokers_are_marked_and_counted() {
        let text = describe_text(&cluster(3, &[2]), &Quorum::NotReported, NOW_MS);
        assert!(text.contains("Brokers: 3 (1 fenced)"), "{text}");
        assert_eq!(row_of(&text, "ID", "2")[4], "yes");
        assert_eq!(row_of(&text, "ID", "3")[4], "no");
        let json = describe_json(&cluster(3, &[2]), &Quorum::NotReported);
        assert_eq!(json["brokers"][1]["fenced"], true);
        assert_eq!(json["brokers"][2]["fenced"], false);

        let mut old = cluster(2, &[]);
        old.includes_fenced_brokers = false;
        let text = describe_text(&old, &Quorum::NotReported, NOW_MS);
        assert!(
            text.contains("Brokers: 2 (fenced brokers not reported by this cluster)"),
            "{text}"
        );
        assert_eq!(
            describe_json(&old, &Quorum::NotReported)["fenced_brokers_reported"],
            false
        );
    }

    #[test]
    fn json_carries_what_the_text_shows() {
        let json = describe_json(&cluster(3, &[]), &Quorum::Raft(three_voters()));
        let quorum = &json["quorum"];
        assert_eq!(quorum["leader_id"], 2);
        assert_eq!(quorum["leader_epoch"], 4);
        assert_eq!(quorum["high_watermark"], 100);
        assert_eq!(quorum["max_follower_lag"], 10);
        assert_eq!(quorum["max_follower_lag_time_ms"], 3_500);
        let voters = quorum["voters"].as_array().unwrap();
        assert_eq!(voters.len(), 3);
        assert_eq!(voters[2]["replica_id"], 3);
        assert_eq!(voters[2]["lag"], 10);
        assert_eq!(voters[2]["last_caught_up_timestamp"], NOW_MS - 3_500);
        assert_eq!(voters[2]["last_fetch_timestamp"], NOW_MS - 5);
        assert_eq!(voters[2]["endpoints"][0], "CONTROLLER://127.0.0.1:9194");
        assert_eq!(quorum["observers"][0]["role"], "observer");
    }

    #[test]
    fn a_follower_that_never_caught_up_has_an_unknown_lag_time() {
        let mut quorum = three_voters();
        quorum.voters[2].last_caught_up_timestamp = None;
        assert_eq!(max_follower_lag(&quorum), Some((10, None)));
        let text = describe_text(&cluster(3, &[]), &Quorum::Raft(quorum), NOW_MS);
        assert!(
            text.contains("Max follower lag: 10 (time unknown)"),
            "{text}"
        );
        assert_eq!(row_of(&text, "NODE", "3")[7], "-", "{text}");
    }

    #[test]
    fn times_are_shown_relative_to_now() {
        assert_eq!(ago(NOW_MS, None), "-");
        assert_eq!(ago(NOW_MS, Some(NOW_MS - 12)), "12 ms ago");
        assert_eq!(ago(NOW_MS, Some(NOW_MS + 40)), "0 ms ago");
        assert_eq!(ago(NOW_MS, Some(NOW_MS - 125_400)), "2m 5s ago");
    }
}
