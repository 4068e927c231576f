//! [`WebhookMetrics`]: counters of the webhook, rendered as Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency bucket bounds, in seconds.
const LATENCY_BOUNDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Statuses counted by name; anything else counts as `other`.
const STATUSES: [u16; 13] = [
    200, 400, 401, 404, 405, 406, 413, 415, 500, 503, 504, 408, 429,
];

/// Counters, shared by every connection. All updates are relaxed atomics: they are statistics.
#[derive(Debug, Default)]
pub struct WebhookMetrics {
    requests_by_status: [AtomicU64; STATUSES.len()],
    requests_other: AtomicU64,
    indicators_received: AtomicU64,
    bytes_received: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BOUNDS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl WebhookMetrics {
    pub(crate) fn record(&self, status: u16, latency: Duration) {
        match STATUSES.iter().position(|&s| s == status) {
            Some(index) => self.requests_by_status[index].fetch_add(1, Ordering::Relaxed),
            None => self.requests_other.fetch_add(1, Ordering::Relaxed),
        };
        let seconds = latency.as_secs_f64();
        for (bound, bucket) in LATENCY_BOUNDS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(crate) fn add_received(&self, indicators: u64, bytes: u64) {
        self.indicators_received
            .fetch_add(indicators, Ordering::Relaxed);
        self.bytes_received.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Requests answered with `status` so far.
    pub fn requests(&self, status: u16) -> u64 {
        STATUSES
            .iter()
            .position(|&s| s == status)
            .map_or(0, |index| {
                self.requests_by_status[index].load(Ordering::Relaxed)
            })
    }

    /// Indicators accepted (answered 200) so far.
    pub fn indicators_received(&self) -> u64 {
        self.indicators_received.load(Ordering::Relaxed)
    }

    /// Request body bytes (as sent, before decompression) of accepted requests.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received.load(Ordering::Relaxed)
    }

    /// The counters in the Prometheus text format.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP ti_webhook_requests_total Webhook requests by HTTP status.\n");
        out.push_str("# TYPE ti_webhook_requests_total counter\n");
        for (status, counter) in STATUSES.iter().zip(&self.requests_by_status) {
            let _ = writeln!(
                out,
                "ti_webhook_requests_total{{status=\"{status}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "ti_webhook_requests_total{{status=\"other\"}} {}",
            self.requests_other.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP ti_webhook_indicators_received_total Indicators accepted by the webhook.\n",
        );
        out.push_str("# TYPE ti_webhook_indicators_received_total counter\n");
        let _ = writeln!(
            out,
            "ti_webhook_indicators_received_total {}",
            self.indicators_received()
        );
        out.push_str(
            "# HELP ti_webhook_bytes_received_total Body bytes of accepted requests, as sent.\n",
        );
        out.push_str("# TYPE ti_webhook_bytes_received_total counter\n");
        let _ = writeln!(
            out,
            "ti_webhook_bytes_received_total {}",
            self.bytes_received()
        );
        out.push_str("# HELP ti_webhook_request_duration_seconds Time from request to response.\n");
        out.push_str("# TYPE ti_webhook_request_duration_seconds histogram\n");
        for (bound, bucket) in LATENCY_BOUNDS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "ti_webhook_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "ti_webhook_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "ti_webhook_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "ti_webhook_request_duration_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let metrics = WebhookMetrics::default();
        metrics.record(200, Duration::from_micros(300));
        metrics.record(401, Duration::from_millis(30));
        metrics.record(418, Duration::from_secs(9));
        metrics.add_received(3, 120);
        assert_eq!(metrics.requests(200), 1);
        assert_eq!(metrics.requests(401), 1);
        let text = metrics.render_prometheus();
        assert!(
            text.contains("ti_webhook_requests_total{status=\"200\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ti_webhook_requests_total{status=\"other\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ti_webhook_indicators_received_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains("ti_webhook_request_duration_seconds_bucket{le=\"0.0005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ti_webhook_request_duration_seconds_bucket{le=\"0.05\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("ti_webhook_request_duration_seconds_count 3\n"),
            "{text}"
        );
    }
}
