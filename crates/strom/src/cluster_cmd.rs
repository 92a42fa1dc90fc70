//! `strom cluster describe`: cluster id, brokers, controller, and the metadata quorum.
//!
//! The quorum comes from DescribeQuorum where the cluster offers it (Kafka in KRaft mode).
//! A Strom cluster has no Raft quorum yet: one process is broker and controller, and this
//! says so ("single node") instead of inventing a quorum.

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::{ClusterDescription, QuorumDescription};

use crate::common::{ConnectArgs, out, print_json, runtime};
use crate::table::{Table, or_dash};

#[derive(Debug, Args)]
#[command(
    about = "Describe the cluster: id, brokers, controller, quorum",
    after_help = "Examples:\n  strom cluster describe\n  strom cluster describe --json"
)]
pub struct ClusterArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Show the cluster id, the brokers, the controller and the metadata quorum.
    #[command(
        long_about = "Show the cluster id, the brokers (id, host, port, rack), the controller \
            and the state of the metadata quorum. On a cluster that reports its Raft quorum \
            (DescribeQuorum, Kafka in KRaft mode) that is the leader, its epoch and each voter's \
            progress; a cluster without one, like today's single-process Strom, is reported as \
            a single node.",
        after_help = "Examples:\n  strom cluster describe\n  strom cluster describe --json | jq -r .cluster_id"
    )]
    Describe(DescribeArgs),
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
    /// No DescribeQuorum: one broker that is also the controller, or unknown with more.
    NotReported,
    Failed(String),
}

pub fn run(args: ClusterArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            ClusterCommand::Describe(a) => {
                let cluster = client.describe_cluster().await?;
                let quorum = match client.describe_quorum().await {
                    Ok(Some(quorum)) => Quorum::Raft(quorum),
                    Ok(None) => Quorum::NotReported,
                    Err(e) => Quorum::Failed(e.to_string()),
                };
                if a.json {
                    print_json(&describe_json(&cluster, &quorum))
                } else {
                    out!("{}", describe_text(&cluster, &quorum));
                    Ok(())
                }
            }
        }
    })
}

fn quorum_summary(cluster: &ClusterDescription, quorum: &Quorum) -> String {
    match quorum {
        Quorum::Raft(q) => format!(
            "Raft, leader {}, epoch {}, high watermark {}, {} voter(s)",
            q.leader_id,
            q.leader_epoch,
            q.high_watermark,
            q.voters.len()
        ),
        Quorum::NotReported if cluster.brokers.len() <= 1 => {
            "single node (one process is broker and controller; no Raft quorum)".to_owned()
        }
        Quorum::NotReported => "not reported by the cluster (no DescribeQuorum)".to_owned(),
        Quorum::Failed(reason) => format!("unknown ({reason})"),
    }
}

fn describe_text(cluster: &ClusterDescription, quorum: &Quorum) -> String {
    let mut out = format!(
        "Cluster id: {}\nController: {}\nBrokers: {}\nQuorum: {}\n\n",
        cluster.cluster_id.as_deref().unwrap_or("-"),
        or_dash(cluster.controller_id),
        cluster.brokers.len(),
        quorum_summary(cluster, quorum)
    );
    let mut brokers = Table::new(&["ID", "HOST", "PORT", "RACK", "CONTROLLER"]);
    for b in &cluster.brokers {
        brokers.row(vec![
            b.id.to_string(),
            b.host.clone(),
            b.port.to_string(),
            b.rack.clone().unwrap_or_else(|| "-".into()),
            if cluster.controller_id == Some(b.id) {
                "yes".into()
            } else {
                String::new()
            },
        ]);
    }
    out.push_str(&brokers.render());
    if let Quorum::Raft(q) = quorum {
        let mut replicas = Table::new(&["REPLICA", "ROLE", "LOG-END-OFFSET", "LAG"]);
        let voters = q.voters.iter().map(|r| (r, "voter"));
        let observers = q.observers.iter().map(|r| (r, "observer"));
        for (r, role) in voters.chain(observers) {
            let role = if r.replica_id == q.leader_id {
                "leader"
            } else {
                role
            };
            replicas.row(vec![
                r.replica_id.to_string(),
                role.to_owned(),
                or_dash(r.log_end_offset),
                or_dash(r.log_end_offset.map(|end| (q.high_watermark - end).max(0))),
            ]);
        }
        out.push('\n');
        out.push_str(&replicas.render());
    }
    out
}

fn describe_json(cluster: &ClusterDescription, quorum: &Quorum) -> serde_json::Value {
    let replica = |r: &strom_client::QuorumReplica| {
        json!({
            "replica_id": r.replica_id,
            "log_end_offset": r.log_end_offset,
            "last_caught_up_timestamp": r.last_caught_up_timestamp,
        })
    };
    let quorum_json = match quorum {
        Quorum::Raft(q) => json!({
            "mode": "raft",
            "leader_id": q.leader_id,
            "leader_epoch": q.leader_epoch,
            "high_watermark": q.high_watermark,
            "voters": q.voters.iter().map(replica).collect::<Vec<_>>(),
            "observers": q.observers.iter().map(replica).collect::<Vec<_>>(),
        }),
        Quorum::NotReported if cluster.brokers.len() <= 1 => json!({ "mode": "single-node" }),
        Quorum::NotReported => json!({ "mode": "not-reported" }),
        Quorum::Failed(reason) => json!({ "mode": "unknown", "error": reason }),
    };
    json!({
        "cluster_id": cluster.cluster_id,
        "controller_id": cluster.controller_id,
        "brokers": cluster.brokers.iter().map(|b| json!({
            "id": b.id,
            "host": b.host,
            "port": b.port,
            "rack": b.rack,
        })).collect::<Vec<_>>(),
        "quorum": quorum_json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_client::{BrokerMetadata, QuorumReplica};

    fn cluster(brokers: i32) -> ClusterDescription {
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
        }
    }

    #[test]
    fn one_broker_without_a_quorum_is_called_a_single_node() {
        let text = describe_text(&cluster(1), &Quorum::NotReported);
        assert!(text.contains("Quorum: single node"), "{text}");
        assert!(text.contains("1   127.0.0.1  9092  -     yes"), "{text}");
        assert_eq!(
            describe_json(&cluster(1), &Quorum::NotReported)["quorum"]["mode"],
            "single-node"
        );
        let several = describe_text(&cluster(3), &Quorum::NotReported);
        assert!(several.contains("not reported"), "{several}");
    }

    #[test]
    fn a_raft_quorum_lists_voters_with_their_lag() {
        let quorum = QuorumDescription {
            leader_id: 1,
            leader_epoch: 4,
            high_watermark: 100,
            voters: vec![
                QuorumReplica {
                    replica_id: 1,
                    log_end_offset: Some(100),
                    last_caught_up_timestamp: None,
                },
                QuorumReplica {
                    replica_id: 2,
                    log_end_offset: Some(90),
                    last_caught_up_timestamp: None,
                },
            ],
            observers: vec![],
        };
        let text = describe_text(&cluster(2), &Quorum::Raft(quorum));
        assert!(text.contains("Raft, leader 1, epoch 4"), "{text}");
        assert!(
            text.contains("1        leader  100             0"),
            "{text}"
        );
        assert!(
            text.contains("2        voter   90              10"),
            "{text}"
        );
    }
}
