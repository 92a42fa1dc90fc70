//! The broker's own counters, kept as plain atomics so that counting costs a few relaxed
//! atomic adds on the hot path: no lock, no allocation, no label lookup. Per-topic traffic is
//! counted on each [`crate::partition::Partition`]; the HTTP crate reads everything at scrape
//! time and renders it in Prometheus' format.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

/// Upper bounds of the request latency buckets, in microseconds (the last bucket is +Inf).
pub const LATENCY_BUCKETS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// API keys are small integers; every key Kafka defines fits.
const API_SLOTS: usize = 128;

/// Counts and latency distribution of one API's requests.
#[derive(Default)]
pub struct ApiStats {
    pub requests: AtomicU64,
    /// Cumulative per bucket is computed at scrape; these are per-bucket counts, the last one
    /// for everything above the largest bound.
    pub buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    pub latency_sum_us: AtomicU64,
}

pub struct BrokerMetrics {
    apis: Box<[ApiStats]>,
    pub connections_open: AtomicI64,
    pub connections_accepted: AtomicU64,
    /// acks=all produce requests waiting for durability.
    pub produce_waits: AtomicI64,
    /// Fetch requests parked in a long poll.
    pub fetch_waits: AtomicI64,
    pub isr_shrinks: AtomicU64,
    pub isr_expands: AtomicU64,
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        Self {
            apis: (0..API_SLOTS).map(|_| ApiStats::default()).collect(),
            connections_open: AtomicI64::new(0),
            connections_accepted: AtomicU64::new(0),
            produce_waits: AtomicI64::new(0),
            fetch_waits: AtomicI64::new(0),
            isr_shrinks: AtomicU64::new(0),
            isr_expands: AtomicU64::new(0),
        }
    }
}

impl BrokerMetrics {
    /// Records one request of `api` that took `elapsed` from arrival to its response.
    pub fn record_request(&self, api: ApiKey, elapsed: Duration) {
        let Some(stats) = self.apis.get(api as usize) else {
            return;
        };
        let micros = elapsed.as_micros().min(u64::MAX as u128) as u64;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        stats.latency_sum_us.fetch_add(micros, Ordering::Relaxed);
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        stats.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The stats of every API that has served at least one request.
    pub fn apis(&self) -> impl Iterator<Item = (ApiKey, &ApiStats)> {
        self.apis.iter().enumerate().filter_map(|(key, stats)| {
            let api = ApiKey::try_from(key as i16).ok()?;
            (stats.requests.load(Ordering::Relaxed) > 0).then_some((api, stats))
        })
    }
}

/// Increments a gauge now and decrements it when dropped: for waits that end in any way.
pub struct GaugeGuard<'a>(&'a AtomicI64);

impl<'a> GaugeGuard<'a> {
    pub fn new(gauge: &'a AtomicI64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Traffic of one partition, counted where it happens.
#[derive(Default, Debug)]
pub struct PartitionTraffic {
    pub bytes_in: AtomicU64,
    pub records_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Bytes a follower appended from its leader.
    pub replicated_bytes_in: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_into_their_buckets() {
        let metrics = BrokerMetrics::default();
        metrics.record_request(ApiKey::Produce, Duration::from_micros(80));
        metrics.record_request(ApiKey::Produce, Duration::from_micros(100));
        metrics.record_request(ApiKey::Produce, Duration::from_millis(3));
        metrics.record_request(ApiKey::Produce, Duration::from_secs(60));
        let (api, stats) = metrics.apis().next().unwrap();
        assert_eq!(api, ApiKey::Produce);
        assert_eq!(stats.requests.load(Ordering::Relaxed), 4);
        assert_eq!(stats.buckets[0].load(Ordering::Relaxed), 2, "<= 100us");
        assert_eq!(stats.buckets[5].load(Ordering::Relaxed), 1, "<= 5ms");
        assert_eq!(
            stats.buckets[LATENCY_BUCKETS_US.len()].load(Ordering::Relaxed),
            1,
            "+Inf"
        );
    }

    #[test]
    fn gauge_guard_undoes_its_increment() {
        let gauge = AtomicI64::new(0);
        {
            let _a = GaugeGuard::new(&gauge);
            let _b = GaugeGuard::new(&gauge);
            assert_eq!(gauge.load(Ordering::Relaxed), 2);
        }
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
    }
}
