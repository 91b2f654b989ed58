//! Counters and a latency histogram, readable at any time.
//!
//! Requests are keyed by route template (`GET /datasets/{dataset_id}`), not
//! by path, so the map stays small however many documents a run touches.
//! Latency goes into a log-linear histogram (eight linear steps per power of
//! two, so any percentile is within 12.5 % of the true value) held in
//! atomics: recording never blocks and a snapshot never stops traffic.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

/// Linear steps per power of two.
const SUB_BUCKETS: u64 = 8;
/// Powers of two covered: 2^40 µs is about 12 days, far past any timeout.
const POWERS: u64 = 40;

/// Live counters; shared by all clones of a client.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Route -> status (0 = no response) -> attempts.
    requests: Mutex<BTreeMap<&'static str, BTreeMap<u16, u64>>>,
    retries: AtomicU64,
    breaker_trips: AtomicU64,
    rate_limit_pauses: AtomicU64,
    connections: Arc<AtomicU64>,
    latency: Histogram,
}

impl Metrics {
    pub(crate) fn new(connections: Arc<AtomicU64>) -> Self {
        Self {
            requests: Mutex::new(BTreeMap::new()),
            retries: AtomicU64::new(0),
            breaker_trips: AtomicU64::new(0),
            rate_limit_pauses: AtomicU64::new(0),
            connections,
            latency: Histogram::new(),
        }
    }

    /// Records one attempt: its route, its status (or `error`), its latency.
    pub(crate) fn record_request(&self, route: &'static str, status: Option<u16>, took: Duration) {
        let status = status.unwrap_or(0);
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *requests.entry(route).or_default().entry(status).or_default() += 1;
        drop(requests);
        self.latency.record(took);
    }

    pub(crate) fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_breaker_trip(&self) {
        self.breaker_trips.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_rate_limit_pause(&self) {
        self.rate_limit_pauses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let requests_total = requests.values().flat_map(BTreeMap::values).sum();
        MetricsSnapshot {
            requests_total,
            requests: requests
                .into_iter()
                .map(|(route, by_status)| (route.to_owned(), status_names(by_status)))
                .collect(),
            retries: self.retries.load(Ordering::Relaxed),
            breaker_trips: self.breaker_trips.load(Ordering::Relaxed),
            rate_limit_pauses: self.rate_limit_pauses.load(Ordering::Relaxed),
            connections_opened: self.connections.load(Ordering::Relaxed),
            latency: self.latency.summary(),
        }
    }
}

fn status_names(by_status: BTreeMap<u16, u64>) -> BTreeMap<String, u64> {
    let name = |status: u16| if status == 0 { "error".to_owned() } else { status.to_string() };
    by_status.into_iter().map(|(status, count)| (name(status), count)).collect()
}

/// A point-in-time copy of a client's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    /// Attempts sent (retries included).
    pub requests_total: u64,
    /// Attempts by route template, then by status code (`"error"` when no
    /// response came back).
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Retries made.
    pub retries: u64,
    /// Times the circuit breaker opened.
    pub breaker_trips: u64,
    /// Times a rate-limit answer paused all callers.
    pub rate_limit_pauses: u64,
    /// TCP connections opened by the pool.
    pub connections_opened: u64,
    /// Attempt latency.
    pub latency: LatencySummary,
}

/// Latency percentiles in milliseconds (upper bounds of histogram buckets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample (exact).
    pub max_ms: f64,
}

/// Log-linear histogram of microseconds.
#[derive(Debug)]
struct Histogram {
    buckets: Vec<AtomicU64>,
    max_us: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        let buckets = (0..(POWERS + 1) * SUB_BUCKETS).map(|_| AtomicU64::new(0)).collect();
        Self { buckets, max_us: AtomicU64::new(0) }
    }

    fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let index = bucket_index(us).min(self.buckets.len() - 1);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let count = counts.iter().sum();
        let max_us = self.max_us.load(Ordering::Relaxed);
        let at = |q: f64| to_ms(percentile(&counts, count, q).min(max_us));
        LatencySummary {
            count,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: to_ms(max_us),
        }
    }
}

/// Bucket of a value: values below 8 get their own bucket; above, each
/// power of two is split into eight equal steps.
fn bucket_index(us: u64) -> usize {
    if us < SUB_BUCKETS {
        return us as usize;
    }
    let power = u64::from(63 - us.leading_zeros());
    let step = (us >> (power - 3)) & (SUB_BUCKETS - 1);
    // At most 64 * 8 + 7, so the cast is lossless.
    ((power - 2) * SUB_BUCKETS + step) as usize
}

/// The largest value falling into bucket `index`.
fn bucket_upper(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return index;
    }
    let power = index / SUB_BUCKETS + 2;
    let step = index % SUB_BUCKETS;
    let width = 1u64 << (power - 3);
    (1u64 << power) + (step + 1) * width - 1
}

fn percentile(counts: &[u64], total: u64, q: f64) -> u64 {
    if total == 0 {
        return 0;
    }
    // Rank of the sample at quantile q, 1-based; total fits f64 exactly in
    // any realistic run.
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (index, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return bucket_upper(index);
        }
    }
    bucket_upper(counts.len() - 1)
}

fn to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut previous_upper = None;
        for index in 0..200 {
            let upper = bucket_upper(index);
            if let Some(previous) = previous_upper {
                assert_eq!(bucket_index(previous + 1), index, "bucket {index}");
            }
            assert_eq!(bucket_index(upper), index);
            previous_upper = Some(upper);
        }
        for value in [9u64, 100, 1_000, 123_456, 9_999_999] {
            let upper = bucket_upper(bucket_index(value));
            assert!(upper >= value && (upper - value) as f64 <= value as f64 * 0.125, "{value}");
        }
    }

    #[test]
    fn percentiles_from_samples() {
        let metrics = Metrics::new(Arc::default());
        for ms in 1..=100u64 {
            metrics.record_request("GET /datasets", Some(200), Duration::from_millis(ms));
        }
        metrics.record_request("GET /datasets", None, Duration::from_millis(1));
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.requests_total, 101);
        assert_eq!(snapshot.requests["GET /datasets"]["200"], 100);
        assert_eq!(snapshot.requests["GET /datasets"]["error"], 1);
        let latency = snapshot.latency;
        assert!((45.0..=57.0).contains(&latency.p50_ms), "{latency:?}");
        assert!((88.0..=101.0).contains(&latency.p90_ms), "{latency:?}");
        assert_eq!(latency.max_ms, 100.0);
        assert!(latency.p99_ms <= latency.max_ms);
    }

    #[test]
    fn empty_histogram_reports_zero() {
        assert_eq!(Metrics::new(Arc::default()).snapshot().latency, LatencySummary::default());
    }
}
