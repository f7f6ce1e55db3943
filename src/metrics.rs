//! Request metrics: Prometheus counters and histograms for `/_wbe/metrics`, and recent
//! latencies per widget for the percentiles in `/_wbe/status`.
//!
//! Labels come only from widgets and endpoints that exist (a request for an unknown
//! widget or endpoint is counted under `unknown`), so a client inventing `widget-id`
//! values cannot make the gateway's memory grow.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Latencies kept per widget for percentiles.
const RECENT: usize = 1024;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub widget: String,
    pub endpoint: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub widget: String,
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WidgetLabels {
    pub widget: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemoryLabels {
    pub widget: String,
    pub kind: &'static str,
}

/// One widget's workers, added up, as sampled when metrics are scraped.
pub struct WorkerSample {
    pub widget: String,
    pub restarts: u64,
    pub inflight: u64,
    pub rss: u64,
    pub heap: u64,
}

impl WorkerSample {
    pub fn of(widget: &str, restarts: u64, workers: &[std::sync::Arc<crate::supervisor::WorkerConn>]) -> WorkerSample {
        use std::sync::atomic::Ordering::Relaxed;
        WorkerSample {
            widget: widget.to_owned(),
            restarts,
            inflight: workers.iter().map(|c| c.inflight_count() as u64).sum(),
            rss: workers.iter().map(|c| c.rss.load(Relaxed)).sum(),
            heap: workers.iter().map(|c| c.heap.load(Relaxed)).sum(),
        }
    }
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    restarts: Family<WidgetLabels, Counter>,
    inflight: Family<WidgetLabels, Gauge>,
    memory: Family<MemoryLabels, Gauge>,
    per_widget: Mutex<HashMap<String, WidgetStats>>,
}

/// What `/_wbe/status` shows of one widget's traffic.
#[derive(Default)]
struct WidgetStats {
    requests: u64,
    /// Responses with status ≥ 500.
    errors: u64,
    /// The latest latencies in milliseconds, oldest first.
    recent: VecDeque<f64>,
}

/// p50, p90, p99 of a widget's recent requests, in milliseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wbe");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Widget requests answered, by widget, endpoint, method and status", requests.clone());
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register("request_duration_seconds", "Time from request to response head", latency.clone());
        let restarts = Family::<WidgetLabels, Counter>::default();
        registry.register("worker_restarts", "Times a widget's worker was restarted after dying", restarts.clone());
        let inflight = Family::<WidgetLabels, Gauge>::default();
        registry.register("inflight_requests", "Requests a widget's worker is handling now", inflight.clone());
        let memory = Family::<MemoryLabels, Gauge>::default();
        registry.register("worker_memory_bytes", "Worker memory by kind (rss, heap) as last reported", memory.clone());
        Metrics { registry, requests, latency, restarts, inflight, memory, per_widget: Mutex::new(HashMap::new()) }
    }
}

impl Metrics {
    pub fn record(&self, labels: RequestLabels, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        self.latency.get_or_create(&EndpointLabels { widget: labels.widget.clone(), endpoint: labels.endpoint.clone() }).observe(seconds);
        {
            let mut per_widget = self.per_widget.lock().unwrap_or_else(|p| p.into_inner());
            let stats = per_widget.entry(labels.widget.clone()).or_default();
            stats.requests += 1;
            stats.errors += u64::from(labels.status >= 500);
            if stats.recent.len() == RECENT {
                stats.recent.pop_front();
            }
            stats.recent.push_back(seconds * 1000.0);
        }
        self.requests.get_or_create(&labels).inc();
    }

    /// Requests, errors (status ≥ 500) and recent latency percentiles of `widget`.
    pub fn widget_summary(&self, widget: &str) -> (u64, u64, Option<Percentiles>) {
        let per_widget = self.per_widget.lock().unwrap_or_else(|p| p.into_inner());
        let Some(stats) = per_widget.get(widget) else { return (0, 0, None) };
        let mut sorted: Vec<f64> = stats.recent.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
        let percentiles = (!sorted.is_empty()).then(|| Percentiles { p50_ms: at(0.50), p90_ms: at(0.90), p99_ms: at(0.99) });
        (stats.requests, stats.errors, percentiles)
    }

    /// The text exposition, with the worker gauges brought up to date from `workers`.
    pub fn encode(&self, workers: impl IntoIterator<Item = WorkerSample>) -> String {
        for sample in workers {
            let widget = WidgetLabels { widget: sample.widget.clone() };
            let restarts = self.restarts.get_or_create(&widget);
            // The supervisor keeps the true count; the counter catches up to it.
            restarts.inc_by(sample.restarts.saturating_sub(restarts.get()));
            self.inflight.get_or_create(&widget).set(sample.inflight as i64);
            for (kind, bytes) in [("rss", sample.rss), ("heap", sample.heap)] {
                self.memory.get_or_create(&MemoryLabels { widget: sample.widget.clone(), kind }).set(bytes as i64);
            }
        }
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Endpoint names come from widget code and folder names from whoever deploys: a quote,
    /// a backslash or a newline in them must not let a widget write metric lines of its own.
    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::default();
        let endpoint = "x\"} 1\nwbe_fake_metric{a=\"b\\".to_owned();
        let labels = RequestLabels { widget: "w".into(), endpoint, method: "GET".into(), status: 200 };
        metrics.record(labels, Duration::from_millis(1));
        let text = metrics.encode(std::iter::empty());
        assert!(!text.lines().any(|line| line.starts_with("wbe_fake_metric")), "{text}");
        assert!(text.contains(r#"endpoint="x\"} 1\nwbe_fake_metric{a=\"b\\""#), "{text}");
    }
}
