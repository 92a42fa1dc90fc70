//! `/metrics`: a snapshot of the broker's counters and state, rendered in the OpenMetrics text
//! format that Prometheus scrapes.
//!
//! The broker counts with plain atomics on its hot paths; everything else (log sizes, lag,
//! the metadata quorum, process usage) is read here, at scrape time. The snapshot is taken
//! first (the group coordinator is asked asynchronously), then encoded by prometheus-client,
//! one small function per group of metric families. The metadata quorum's families live in
//! [`quorum`].

mod quorum;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeMetric, MetricEncoder,
    NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use strom_broker::metrics::{ApiStats, LATENCY_BUCKETS_US};
use strom_broker::state::BrokerState;
use strom_cluster::MetadataImage;

use quorum::QuorumSnapshot;

type EncodeResult = Result<(), std::fmt::Error>;

/// One sample's labels, in the order they are printed.
type Labels = Vec<(&'static str, String)>;

/// Everything one scrape reports.
#[derive(Debug, Default)]
pub struct Snapshot {
    apis: Vec<ApiSnapshot>,
    connections_open: i64,
    connections_accepted: u64,
    produce_waits: i64,
    fetch_waits: i64,
    isr_shrinks: u64,
    isr_expands: u64,
    partitions: Vec<PartitionSnapshot>,
    under_replicated: i64,
    under_min_isr: i64,
    reassigning: i64,
    offline: i64,
    replicated_bytes_in: u64,
    lag: Vec<(String, String, i32, i64)>,
    group_members: Vec<(String, i64)>,
    /// Transactional ids this broker coordinates, by state name.
    transactions: Vec<(&'static str, i64)>,
    quorum: QuorumSnapshot,
    process: Option<(u64, f64)>,
}

#[derive(Debug)]
struct ApiSnapshot {
    name: String,
    requests: u64,
    /// Cumulative counts per bucket bound, in seconds.
    buckets: Vec<(f64, u64)>,
    sum_seconds: f64,
}

#[derive(Debug)]
struct PartitionSnapshot {
    topic: String,
    partition: i32,
    size_bytes: i64,
    segments: i64,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    last_stable_offset: i64,
    bytes_in: u64,
    records_in: u64,
    bytes_out: u64,
}

/// Traffic summed over a topic's partitions.
#[derive(Debug, Default)]
struct TopicTraffic {
    bytes_in: u64,
    records_in: u64,
    bytes_out: u64,
}

impl Snapshot {
    pub async fn take(state: &Arc<BrokerState>) -> Snapshot {
        let metrics = &state.metrics;
        let image = state.image();
        let health = led_partition_health(state, &image);
        let replicated_bytes_in = state
            .partitions()
            .iter()
            .map(|p| p.traffic.replicated_bytes_in.load(Ordering::Relaxed))
            .sum();
        let (lag, group_members) = group_snapshots(state).await;
        let transactions = transaction_counts(state).await;
        Snapshot {
            apis: metrics
                .apis()
                .map(|(api, stats)| api_snapshot(api, stats))
                .collect(),
            connections_open: metrics.connections_open.load(Ordering::Relaxed),
            connections_accepted: metrics.connections_accepted.load(Ordering::Relaxed),
            produce_waits: metrics.produce_waits.load(Ordering::Relaxed),
            fetch_waits: metrics.fetch_waits.load(Ordering::Relaxed),
            isr_shrinks: metrics.isr_shrinks.load(Ordering::Relaxed),
            isr_expands: metrics.isr_expands.load(Ordering::Relaxed),
            partitions: partition_snapshots(state),
            under_replicated: health.under_replicated,
            under_min_isr: health.under_min_isr,
            reassigning: health.reassigning,
            offline: health.offline,
            replicated_bytes_in,
            lag,
            group_members,
            transactions,
            quorum: QuorumSnapshot::take(state, &image),
            process: crate::process::usage(),
        }
    }

    /// The OpenMetrics text of this snapshot.
    pub fn render(self) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)?;
        Ok(out)
    }
}

/// The broker keeps one count per bucket; Prometheus wants them cumulative, with a last `+Inf`
/// bucket for everything above the largest bound.
fn api_snapshot(api: impl Debug, stats: &ApiStats) -> ApiSnapshot {
    let mut cumulative = 0;
    let mut buckets = Vec::with_capacity(LATENCY_BUCKETS_US.len() + 1);
    for (i, bound) in LATENCY_BUCKETS_US.iter().enumerate() {
        cumulative += stats.buckets[i].load(Ordering::Relaxed);
        buckets.push((*bound as f64 / 1e6, cumulative));
    }
    cumulative += stats.buckets[LATENCY_BUCKETS_US.len()].load(Ordering::Relaxed);
    buckets.push((f64::INFINITY, cumulative));
    ApiSnapshot {
        name: format!("{api:?}"),
        requests: stats.requests.load(Ordering::Relaxed),
        buckets,
        sum_seconds: stats.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
    }
}

/// The local partitions, sorted so that scrapes list them in a stable order.
fn partition_snapshots(state: &BrokerState) -> Vec<PartitionSnapshot> {
    let mut partitions: Vec<PartitionSnapshot> = state
        .partitions()
        .iter()
        .map(|p| PartitionSnapshot {
            topic: p.topic_partition.topic.clone(),
            partition: p.topic_partition.partition,
            size_bytes: p.log.size_bytes() as i64,
            segments: p.log.segment_count() as i64,
            log_start_offset: p.log.log_start_offset(),
            log_end_offset: p.log.log_end_offset(),
            high_watermark: p.high_watermark().0,
            last_stable_offset: p.last_stable_offset(),
            bytes_in: p.traffic.bytes_in.load(Ordering::Relaxed),
            records_in: p.traffic.records_in.load(Ordering::Relaxed),
            bytes_out: p.traffic.bytes_out.load(Ordering::Relaxed),
        })
        .collect();
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    partitions
}

/// Counts over the partitions the image says this broker leads.
#[derive(Default)]
struct LedHealth {
    /// In-sync replicas fewer than replicas.
    under_replicated: i64,
    /// In-sync replicas fewer than the topic's `min.insync.replicas`: acks=all is refused.
    under_min_isr: i64,
    /// A reassignment is moving replicas.
    reassigning: i64,
    /// No local log, or a log stopped by a storage error.
    offline: i64,
}

fn led_partition_health(state: &BrokerState, image: &MetadataImage) -> LedHealth {
    let mut health = LedHealth::default();
    for topic in image.topics.values() {
        let min_isr: usize = strom_broker::config::resolve_topic_config(
            &state.config,
            image,
            &topic.name,
            "min.insync.replicas",
        )
        .and_then(|(v, _)| v.parse().ok())
        .unwrap_or(1);
        for (index, p) in &topic.partitions {
            if p.leader != state.node_id {
                continue;
            }
            health.under_replicated += i64::from(p.in_sync_replicas.len() < p.replicas.len());
            health.under_min_isr += i64::from(p.in_sync_replicas.len() < min_isr);
            health.reassigning += i64::from(p.is_reassigning());
            let tp = strom_log::TopicPartition {
                topic: topic.name.clone(),
                partition: *index,
            };
            if state
                .partition(&tp)
                .is_none_or(|local| local.log.is_offline())
            {
                health.offline += 1;
            }
        }
    }
    health
}

/// Lag per (group, topic, partition) for committed offsets of local partitions, and members per
/// group. Empty when the group coordinator is not running.
async fn group_snapshots(
    state: &BrokerState,
) -> (Vec<(String, String, i32, i64)>, Vec<(String, i64)>) {
    let mut lag = Vec::new();
    let mut group_members = Vec::new();
    let Some(groups) = state.groups() else {
        return (lag, group_members);
    };
    let Ok(snapshots) = groups.snapshot().await else {
        return (lag, group_members);
    };
    for group in snapshots {
        let group_id = &group.summary.group_id;
        group_members.push((group_id.clone(), group.summary.members.len() as i64));
        for (topic, partition, committed) in &group.offsets {
            let tp = strom_log::TopicPartition {
                topic: topic.clone(),
                partition: *partition,
            };
            if let Some(local) = state.partition(&tp) {
                let behind = (local.high_watermark().0 - committed.committed_offset).max(0);
                lag.push((group_id.clone(), topic.clone(), *partition, behind));
            }
        }
    }
    (lag, group_members)
}

/// How many transactional ids this broker coordinates are in each state.
async fn transaction_counts(state: &BrokerState) -> Vec<(&'static str, i64)> {
    let Some(transactions) = state.transactions() else {
        return Vec::new();
    };
    let listed = transactions
        .inspect(|c| {
            c.list(&[], &[])
                .into_iter()
                .map(|(_, _, s)| s)
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
    let mut counts: std::collections::BTreeMap<&'static str, i64> = Default::default();
    for s in listed {
        *counts.entry(s.name()).or_default() += 1;
    }
    counts.into_iter().collect()
}

fn counter<N: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> EncodeResult {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge<N: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> EncodeResult {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// A metric family: one descriptor, one sample per label set.
fn family<V>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    samples: impl IntoIterator<Item = (Labels, V)>,
    encode_one: impl Fn(&mut MetricEncoder, &V) -> EncodeResult,
) -> EncodeResult {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in samples {
        let mut sample = metric.encode_family(&labels)?;
        encode_one(&mut sample, &value)?;
    }
    Ok(())
}

/// Encodes one sample of a counter family.
fn as_counter(sample: &mut MetricEncoder, value: &u64) -> EncodeResult {
    sample.encode_counter::<NoLabelSet, _, u64>(value, None)
}

/// Encodes one sample of a gauge family.
fn as_gauge<N: EncodeGaugeValue>(sample: &mut MetricEncoder, value: &N) -> EncodeResult {
    sample.encode_gauge(value)
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> EncodeResult {
        let e = &mut encoder;
        self.encode_requests(e)?;
        self.encode_waits_and_connections(e)?;
        self.encode_partition_counts(e)?;
        self.encode_logs(e)?;
        self.encode_topic_traffic(e)?;
        self.encode_groups(e)?;
        self.encode_transactions(e)?;
        self.quorum.encode(e)?;
        self.encode_process(e)
    }
}

impl Snapshot {
    /// Requests and their latency, per Kafka API.
    fn encode_requests(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        family(
            e,
            "strom_requests",
            "Requests served, by Kafka API.",
            MetricType::Counter,
            self.apis
                .iter()
                .map(|a| (vec![("api", a.name.clone())], a.requests)),
            as_counter,
        )?;
        let mut metric = e.encode_descriptor(
            "strom_request_latency_seconds",
            "Time from a request's arrival to its response being ready, by Kafka API.",
            None,
            MetricType::Histogram,
        )?;
        for api in &self.apis {
            let labels = vec![("api", api.name.clone())];
            let mut sample = metric.encode_family(&labels)?;
            sample.encode_histogram::<NoLabelSet>(
                api.sum_seconds,
                api.requests,
                &api.buckets,
                None,
            )?;
        }
        Ok(())
    }

    fn encode_waits_and_connections(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        gauge(
            e,
            "strom_produce_waits",
            "acks=all produce requests waiting for their records to be durable.",
            self.produce_waits,
        )?;
        gauge(
            e,
            "strom_fetch_waits",
            "Fetch requests parked in a long poll.",
            self.fetch_waits,
        )?;
        gauge(
            e,
            "strom_connections",
            "Open client connections.",
            self.connections_open,
        )?;
        counter(
            e,
            "strom_connections_accepted",
            "Client connections accepted.",
            self.connections_accepted,
        )
    }

    /// Counts over the partitions this broker leads, and in-sync replica set changes.
    fn encode_partition_counts(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        gauge(
            e,
            "strom_partitions",
            "Partition replicas this broker hosts (leader or follower).",
            self.partitions.len() as i64,
        )?;
        gauge(
            e,
            "strom_under_replicated_partitions",
            "Led partitions whose in-sync replica set is smaller than the replica set.",
            self.under_replicated,
        )?;
        gauge(
            e,
            "strom_under_min_isr_partitions",
            "Led partitions whose in-sync replicas are fewer than min.insync.replicas (acks=all is refused).",
            self.under_min_isr,
        )?;
        gauge(
            e,
            "strom_reassigning_partitions",
            "Led partitions with a replica reassignment in progress.",
            self.reassigning,
        )?;
        gauge(
            e,
            "strom_offline_partitions",
            "Led partitions whose log is offline.",
            self.offline,
        )?;
        counter(
            e,
            "strom_replication_bytes_in",
            "Bytes this broker's followers appended from their leaders (replication and reassignment traffic).",
            self.replicated_bytes_in,
        )?;
        counter(
            e,
            "strom_isr_shrinks",
            "Times a partition's in-sync replica set shrank.",
            self.isr_shrinks,
        )?;
        counter(
            e,
            "strom_isr_expands",
            "Times a partition's in-sync replica set grew.",
            self.isr_expands,
        )
    }

    /// Per-partition log gauges.
    fn encode_logs(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        self.per_partition(
            e,
            "strom_log_size_bytes",
            "Bytes in the partition's log segments.",
            |p| p.size_bytes,
        )?;
        self.per_partition(
            e,
            "strom_log_segments",
            "Segments in the partition's log.",
            |p| p.segments,
        )?;
        self.per_partition(
            e,
            "strom_log_start_offset",
            "The partition's log start offset.",
            |p| p.log_start_offset,
        )?;
        self.per_partition(
            e,
            "strom_log_end_offset",
            "The partition's log end offset.",
            |p| p.log_end_offset,
        )?;
        self.per_partition(
            e,
            "strom_high_watermark",
            "The partition's high watermark.",
            |p| p.high_watermark,
        )?;
        self.per_partition(
            e,
            "strom_last_stable_offset_lag",
            "High watermark minus last stable offset: records read_committed consumers wait for \
             while transactions are open.",
            |p| p.high_watermark - p.last_stable_offset,
        )
    }

    fn per_partition(
        &self,
        e: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        pick: fn(&PartitionSnapshot) -> i64,
    ) -> EncodeResult {
        let samples = self.partitions.iter().map(|p| {
            let labels = vec![
                ("topic", p.topic.clone()),
                ("partition", p.partition.to_string()),
            ];
            (labels, pick(p))
        });
        family(e, name, help, MetricType::Gauge, samples, as_gauge)
    }

    /// Traffic counters, summed per topic (per partition would multiply the series).
    fn encode_topic_traffic(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        let mut topics: BTreeMap<&str, TopicTraffic> = BTreeMap::new();
        for p in &self.partitions {
            let traffic = topics.entry(&p.topic).or_default();
            traffic.bytes_in += p.bytes_in;
            traffic.records_in += p.records_in;
            traffic.bytes_out += p.bytes_out;
        }
        per_topic(
            e,
            &topics,
            "strom_topic_bytes_in",
            "Record batch bytes appended, by topic.",
            |t| t.bytes_in,
        )?;
        per_topic(
            e,
            &topics,
            "strom_topic_records_in",
            "Records appended, by topic.",
            |t| t.records_in,
        )?;
        per_topic(
            e,
            &topics,
            "strom_topic_bytes_out",
            "Record batch bytes sent to fetchers, by topic.",
            |t| t.bytes_out,
        )
    }

    fn encode_groups(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        family(
            e,
            "strom_consumer_group_lag",
            "Records between a group's committed offset and the high watermark.",
            MetricType::Gauge,
            self.lag.iter().map(|(g, t, p, lag)| {
                let labels = vec![
                    ("group", g.clone()),
                    ("topic", t.clone()),
                    ("partition", p.to_string()),
                ];
                (labels, *lag)
            }),
            as_gauge,
        )?;
        family(
            e,
            "strom_consumer_group_members",
            "Members of each consumer group.",
            MetricType::Gauge,
            self.group_members
                .iter()
                .map(|(g, n)| (vec![("group", g.clone())], *n)),
            as_gauge,
        )
    }

    fn encode_transactions(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        family(
            e,
            "strom_transactions",
            "Transactional ids this broker coordinates, by state (Ongoing: open transactions).",
            MetricType::Gauge,
            self.transactions
                .iter()
                .map(|(state, n)| (vec![("state", state.to_string())], *n)),
            as_gauge,
        )
    }

    /// The process's resources, under the names the Prometheus client libraries use.
    fn encode_process(&self, e: &mut DescriptorEncoder) -> EncodeResult {
        let Some((rss, cpu)) = self.process else {
            return Ok(());
        };
        gauge(
            e,
            "process_resident_memory_bytes",
            "Resident memory of the broker process.",
            rss as i64,
        )?;
        counter(
            e,
            "process_cpu_seconds",
            "User and system CPU time of the broker process.",
            cpu,
        )
    }
}

fn per_topic(
    e: &mut DescriptorEncoder,
    topics: &BTreeMap<&str, TopicTraffic>,
    name: &str,
    help: &str,
    pick: fn(&TopicTraffic) -> u64,
) -> EncodeResult {
    let samples = topics
        .iter()
        .map(|(topic, traffic)| (vec![("topic", topic.to_string())], pick(traffic)));
    family(e, name, help, MetricType::Counter, samples, as_counter)
}
