//! `/metrics`: a snapshot of the broker's counters and state, rendered in the OpenMetrics text
//! format that Prometheus scrapes.
//!
//! The broker counts with plain atomics on its hot paths; everything else (log sizes, lag,
//! process usage) is read here, at scrape time. The snapshot is taken first (the group
//! coordinator is asked asynchronously), then encoded by prometheus-client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use strom_broker::metrics::LATENCY_BUCKETS_US;
use strom_broker::state::BrokerState;

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
    offline: i64,
    lag: Vec<(String, String, i32, i64)>,
    group_members: Vec<(String, i64)>,
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
    bytes_in: u64,
    records_in: u64,
    bytes_out: u64,
}

impl Snapshot {
    pub async fn take(state: &Arc<BrokerState>) -> Snapshot {
        let metrics = &state.metrics;
        let apis = metrics
            .apis()
            .map(|(api, stats)| {
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
            })
            .collect();

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
                high_watermark: p.high_watermark(),
                bytes_in: p.traffic.bytes_in.load(Ordering::Relaxed),
                records_in: p.traffic.records_in.load(Ordering::Relaxed),
                bytes_out: p.traffic.bytes_out.load(Ordering::Relaxed),
            })
            .collect();
        partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));

        let image = state.image();
        let mut under_replicated = 0;
        let mut offline = 0;
        for topic in image.topics.values() {
            for (index, p) in &topic.partitions {
                if p.leader == state.node_id {
                    if p.in_sync_replicas.len() < p.replicas.len() {
                        under_replicated += 1;
                    }
                    let tp = strom_log::TopicPartition {
                        topic: topic.name.clone(),
                        partition: *index,
                    };
                    if state
                        .partition(&tp)
                        .is_none_or(|local| local.log.is_offline())
                    {
                        offline += 1;
                    }
                }
            }
        }

        let mut lag = Vec::new();
        let mut group_members = Vec::new();
        if let Some(groups) = state.groups()
            && let Ok(snapshots) = groups.snapshot().await
        {
            for group in snapshots {
                group_members.push((
                    group.summary.group_id.clone(),
                    group.summary.members.len() as i64,
                ));
                for (topic, partition, committed) in &group.offsets {
                    let tp = strom_log::TopicPartition {
                        topic: topic.clone(),
                        partition: *partition,
                    };
                    if let Some(local) = state.partition(&tp) {
                        let behind = (local.high_watermark() - committed.committed_offset).max(0);
                        lag.push((
                            group.summary.group_id.clone(),
                            topic.clone(),
                            *partition,
                            behind,
                        ));
                    }
                }
            }
        }

        Snapshot {
            apis,
            connections_open: metrics.connections_open.load(Ordering::Relaxed),
            connections_accepted: metrics.connections_accepted.load(Ordering::Relaxed),
            produce_waits: metrics.produce_waits.load(Ordering::Relaxed),
            fetch_waits: metrics.fetch_waits.load(Ordering::Relaxed),
            isr_shrinks: metrics.isr_shrinks.load(Ordering::Relaxed),
            isr_expands: metrics.isr_expands.load(Ordering::Relaxed),
            partitions,
            under_replicated,
            offline,
            lag,
            group_members,
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

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge<N: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// A metric family: one descriptor, one sample per label set.
fn family<V>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, V)>,
    encode_one: impl Fn(
        &mut prometheus_client::encoding::MetricEncoder,
        &V,
    ) -> Result<(), std::fmt::Error>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in samples {
        let mut sample = metric.encode_family(&labels)?;
        encode_one(&mut sample, &value)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        let as_counter = |m: &mut prometheus_client::encoding::MetricEncoder, v: &u64| {
            m.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(v, None)
        };
        let as_gauge =
            |m: &mut prometheus_client::encoding::MetricEncoder, v: &i64| m.encode_gauge(v);

        // Requests per API.
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
        {
            let mut metric = e.encode_descriptor(
                "strom_request_latency_seconds",
                "Time from a request's arrival to its response being ready, by Kafka API.",
                None,
                MetricType::Histogram,
            )?;
            for api in &self.apis {
                let labels = vec![("api", api.name.clone())];
                let mut sample = metric.encode_family(&labels)?;
                sample.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    api.sum_seconds,
                    api.requests,
                    &api.buckets,
                    None,
                )?;
            }
        }
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
        )?;

        // Partitions and logs.
        gauge(
            e,
            "strom_partitions",
            "Partitions this broker leads.",
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
            "strom_offline_partitions",
            "Led partitions whose log is offline.",
            self.offline,
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
        )?;
        let partition_labels = |p: &PartitionSnapshot| {
            vec![
                ("topic", p.topic.clone()),
                ("partition", p.partition.to_string()),
            ]
        };
        let per_partition = |e: &mut DescriptorEncoder,
                             name: &str,
                             help: &str,
                             pick: fn(&PartitionSnapshot) -> i64| {
            family(
                e,
                name,
                help,
                MetricType::Gauge,
                self.partitions
                    .iter()
                    .map(|p| (partition_labels(p), pick(p))),
                as_gauge,
            )
        };
        per_partition(
            e,
            "strom_log_size_bytes",
            "Bytes in the partition's log segments.",
            |p| p.size_bytes,
        )?;
        per_partition(
            e,
            "strom_log_segments",
            "Segments in the partition's log.",
            |p| p.segments,
        )?;
        per_partition(
            e,
            "strom_log_start_offset",
            "The partition's log start offset.",
            |p| p.log_start_offset,
        )?;
        per_partition(
            e,
            "strom_log_end_offset",
            "The partition's log end offset.",
            |p| p.log_end_offset,
        )?;
        per_partition(
            e,
            "strom_high_watermark",
            "The partition's high watermark.",
            |p| p.high_watermark,
        )?;

        // Traffic per topic.
        let mut topics: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
        for p in &self.partitions {
            let entry = topics.entry(&p.topic).or_default();
            entry.0 += p.bytes_in;
            entry.1 += p.records_in;
            entry.2 += p.bytes_out;
        }
        let per_topic = |e: &mut DescriptorEncoder,
                         name: &str,
                         help: &str,
                         pick: fn(&(u64, u64, u64)) -> u64| {
            family(
                e,
                name,
                help,
                MetricType::Counter,
                topics
                    .iter()
                    .map(|(t, v)| (vec![("topic", t.to_string())], pick(v))),
                as_counter,
            )
        };
        per_topic(
            e,
            "strom_topic_bytes_in",
            "Record batch bytes appended, by topic.",
            |v| v.0,
        )?;
        per_topic(
            e,
            "strom_topic_records_in",
            "Records appended, by topic.",
            |v| v.1,
        )?;
        per_topic(
            e,
            "strom_topic_bytes_out",
            "Record batch bytes sent to fetchers, by topic.",
            |v| v.2,
        )?;

        // Consumer groups.
        family(
            e,
            "strom_consumer_group_lag",
            "Records between a group's committed offset and the high watermark.",
            MetricType::Gauge,
            self.lag.iter().map(|(g, t, p, lag)| {
                (
                    vec![
                        ("group", g.clone()),
                        ("topic", t.clone()),
                        ("partition", p.to_string()),
                    ],
                    *lag,
                )
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
        )?;

        // The process.
        if let Some((rss, cpu)) = self.process {
            gauge(
                e,
                "process_resident_memory_bytes",
                "Resident memory of the broker process.",
                rss as i64,
            )?;
            let metric = ConstCounter::new(cpu);
            metric.encode(e.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time of the broker process.",
                None,
                MetricType::Counter,
            )?)?;
        }
        Ok(())
    }
}
