//! The JSON admin API under `/api/v1`: cluster, brokers, topics (with partitions and configs)
//! and consumer groups (with members, assignments and lag). Documented in `docs/http-api.md`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::Decodable;
use serde::Serialize;
use strom_broker::state::BrokerState;
use strom_log::TopicPartition;

type AppState = State<Arc<BrokerState>>;

fn not_found(what: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": what })),
    )
        .into_response()
}

#[derive(Serialize)]
pub struct Broker {
    id: i32,
    host: String,
    port: u16,
    rack: Option<String>,
    /// A fenced broker missed its heartbeats (or has not caught up yet): it leads nothing.
    fenced: bool,
}

#[derive(Serialize)]
pub struct Quorum {
    /// This node's role: leader, follower, candidate, observer.
    role: &'static str,
    leader_id: Option<i32>,
    /// The Raft term (KRaft's leader epoch).
    term: u64,
    /// The last entry in this node's metadata log (an observer keeps none: its applied index).
    last_log_index: u64,
    applied_index: u64,
    /// The last entry deleted from this node's log because a snapshot covers it.
    purged_index: Option<u64>,
}

#[derive(Serialize)]
pub struct Cluster {
    cluster_id: String,
    controller_id: i32,
    node_id: i32,
    quorum: Quorum,
    brokers: Vec<Broker>,
}

pub async fn cluster(State(state): AppState) -> Json<Cluster> {
    let image = state.image();
    let status = state.quorum.status();
    Json(Cluster {
        cluster_id: state.cluster_id.clone(),
        controller_id: state.controller_id(&image).0,
        node_id: state.node_id.0,
        quorum: Quorum {
            role: status.role,
            leader_id: status.leader.map(|l| l.0),
            term: status.term,
            last_log_index: status.last_log_index,
            applied_index: status.applied_index,
            purged_index: status.purged_index,
        },
        brokers: brokers_of(&state),
    })
}

fn brokers_of(state: &BrokerState) -> Vec<Broker> {
    state
        .image()
        .brokers
        .values()
        .map(|b| Broker {
            id: b.broker_id.0,
            host: b.host().to_string(),
            port: b.port(),
            rack: b.rack.clone(),
            fenced: b.fenced,
        })
        .collect()
}

pub async fn brokers(State(state): AppState) -> Json<Vec<Broker>> {
    Json(brokers_of(&state))
}

#[derive(Serialize)]
pub struct TopicSummary {
    name: String,
    topic_id: String,
    internal: bool,
    partitions: usize,
    replication_factor: usize,
    size_bytes: u64,
}

pub async fn topics(State(state): AppState) -> Json<Vec<TopicSummary>> {
    let image = state.image();
    Json(
        image
            .topics
            .values()
            .map(|t| TopicSummary {
                name: t.name.clone(),
                topic_id: t.topic_id.to_string(),
                internal: t.is_internal(),
                partitions: t.partitions.len(),
                replication_factor: t.partitions.values().next().map_or(0, |p| p.replicas.len()),
                size_bytes: t
                    .partitions
                    .keys()
                    .filter_map(|&p| state.partition(&tp(&t.name, p)))
                    .map(|p| p.log.size_bytes())
                    .sum(),
            })
            .collect(),
    )
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_string(),
        partition,
    }
}

#[derive(Serialize)]
pub struct PartitionDetail {
    partition: i32,
    leader: i32,
    leader_epoch: i32,
    replicas: Vec<i32>,
    in_sync_replicas: Vec<i32>,
    log_start_offset: Option<i64>,
    log_end_offset: Option<i64>,
    high_watermark: Option<i64>,
    size_bytes: Option<u64>,
    segments: Option<usize>,
    offline: bool,
}

#[derive(Serialize)]
pub struct ConfigValue {
    value: Option<String>,
    source: &'static str,
}

#[derive(Serialize)]
pub struct TopicDetail {
    name: String,
    topic_id: String,
    internal: bool,
    configs: BTreeMap<&'static str, ConfigValue>,
    partitions: Vec<PartitionDetail>,
}

pub async fn topic(State(state): AppState, Path(name): Path<String>) -> Response {
    let image = state.image();
    let Some(topic) = image.topic(&name) else {
        return not_found(format!("topic {name} does not exist"));
    };
    let partitions = topic
        .partitions
        .iter()
        .map(|(&index, p)| {
            let local = state.partition(&tp(&name, index));
            PartitionDetail {
                partition: index,
                leader: p.leader.0,
                leader_epoch: p.leader_epoch.0,
                replicas: p.replicas.iter().map(|r| r.0).collect(),
                in_sync_replicas: p.in_sync_replicas.iter().map(|r| r.0).collect(),
                log_start_offset: local.as_ref().map(|l| l.log.log_start_offset()),
                log_end_offset: local.as_ref().map(|l| l.log.log_end_offset()),
                high_watermark: local.as_ref().map(|l| l.high_watermark().0),
                size_bytes: local.as_ref().map(|l| l.log.size_bytes()),
                segments: local.as_ref().map(|l| l.log.segment_count()),
                offline: local.as_ref().is_none_or(|l| l.log.is_offline()),
            }
        })
        .collect();
    let configs = strom_broker::config_entries::topic_entries(&state.config, &image, &name)
        .into_iter()
        .map(|e| {
            (
                e.name,
                ConfigValue {
                    value: e.value,
                    source: source_name(e.source),
                },
            )
        })
        .collect();
    Json(TopicDetail {
        name: topic.name.clone(),
        topic_id: topic.topic_id.to_string(),
        internal: topic.is_internal(),
        configs,
        partitions,
    })
    .into_response()
}

/// Kafka's names for config sources, as DescribeConfigs clients print them.
fn source_name(source: strom_cluster::config::ConfigSource) -> &'static str {
    use strom_cluster::config::ConfigSource::*;
    match source {
        DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
        DynamicBroker => "DYNAMIC_BROKER_CONFIG",
        DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        StaticBroker => "STATIC_BROKER_CONFIG",
        Default => "DEFAULT_CONFIG",
    }
}

#[derive(Serialize)]
pub struct GroupSummary {
    group_id: String,
    state: String,
    protocol_type: Option<String>,
    protocol: Option<String>,
    members: usize,
    /// Sum of the lag of every partition with a committed offset.
    lag: i64,
}

#[derive(Serialize)]
pub struct Member {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    /// topic -> partitions, for consumer-protocol groups.
    assignment: BTreeMap<String, Vec<i32>>,
}

#[derive(Serialize)]
pub struct CommittedOffset {
    topic: String,
    partition: i32,
    committed_offset: i64,
    metadata: String,
    high_watermark: Option<i64>,
    lag: Option<i64>,
}

#[derive(Serialize)]
pub struct GroupDetail {
    group_id: String,
    state: String,
    generation_id: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: Vec<Member>,
    offsets: Vec<CommittedOffset>,
}

fn offsets_with_lag(
    state: &BrokerState,
    group: &strom_broker::groups::GroupSnapshot,
) -> Vec<CommittedOffset> {
    group
        .offsets
        .iter()
        .map(|(topic, partition, committed)| {
            let high_watermark = state
                .partition(&tp(topic, *partition))
                .map(|p| p.high_watermark().0);
            CommittedOffset {
                topic: topic.clone(),
                partition: *partition,
                committed_offset: committed.committed_offset,
                metadata: committed.metadata.clone(),
                high_watermark,
                lag: high_watermark.map(|hw| (hw - committed.committed_offset).max(0)),
            }
        })
        .collect()
}

async fn snapshots(
    state: &BrokerState,
) -> Result<Vec<strom_broker::groups::GroupSnapshot>, Response> {
    let groups = state.groups().ok_or_else(|| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": "the group coordinator is not running"})),
        )
            .into_response()
    })?;
    groups.snapshot().await.map_err(|_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": "the group coordinator is not running"})),
        )
            .into_response()
    })
}

pub async fn groups(State(state): AppState) -> Response {
    match snapshots(&state).await {
        Ok(groups) => Json(
            groups
                .iter()
                .map(|g| GroupSummary {
                    group_id: g.summary.group_id.clone(),
                    state: g.summary.state.to_string(),
                    protocol_type: g.summary.protocol_type.clone(),
                    protocol: g.summary.protocol_name.clone(),
                    members: g.summary.members.len(),
                    lag: offsets_with_lag(&state, g)
                        .iter()
                        .filter_map(|o| o.lag)
                        .sum(),
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(response) => response,
    }
}

pub async fn group(State(state): AppState, Path(id): Path<String>) -> Response {
    let groups = match snapshots(&state).await {
        Ok(groups) => groups,
        Err(response) => return response,
    };
    let Some(group) = groups.iter().find(|g| g.summary.group_id == id) else {
        return not_found(format!("group {id} does not exist"));
    };
    let consumer = group.summary.protocol_type.as_deref() == Some("consumer");
    let members = group
        .summary
        .members
        .iter()
        .map(|m| Member {
            member_id: m.member_id.clone(),
            group_instance_id: m.group_instance_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            assignment: if consumer {
                decode_assignment(&m.assignment)
            } else {
                BTreeMap::new()
            },
        })
        .collect();
    Json(GroupDetail {
        group_id: group.summary.group_id.clone(),
        state: group.summary.state.to_string(),
        generation_id: group.summary.generation_id,
        protocol_type: group.summary.protocol_type.clone(),
        protocol: group.summary.protocol_name.clone(),
        leader: group.summary.leader_id.clone(),
        members,
        offsets: offsets_with_lag(&state, group),
    })
    .into_response()
}

/// A consumer member's assignment: an i16 version, then ConsumerProtocolAssignment.
fn decode_assignment(bytes: &[u8]) -> BTreeMap<String, Vec<i32>> {
    if bytes.len() < 2 {
        return BTreeMap::new();
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    let mut body = axum::body::Bytes::copy_from_slice(&bytes[2..]);
    ConsumerProtocolAssignment::decode(&mut body, version.clamp(0, 3))
        .map(|a| {
            a.assigned_partitions
                .into_iter()
                .map(|t| (t.topic.to_string(), t.partitions))
                .collect()
        })
        .unwrap_or_default()
}
