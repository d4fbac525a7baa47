//! Request counts and latency histograms by route and status.

use axum::http::{Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone)]
struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new([
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
    }
}

/// One label set's counter and histogram, shared with the families (both are handles on
/// the same atomics), so a request updates them without building labels or hashing them
/// into the families again.
#[derive(Clone)]
struct Resolved {
    method: Method,
    status: StatusCode,
    requests: Counter,
    duration: Histogram,
}

/// The HTTP metrics, registered once in the app's registry.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RequestLabels, Histogram, LatencyBuckets>,
    /// Handles already resolved, by route template, then (method, status): a handful each.
    resolved: Arc<RwLock<HashMap<String, Vec<Resolved>>>>,
}

impl HttpMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(LatencyBuckets),
            resolved: Arc::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            metrics.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route and status",
            metrics.duration.clone(),
        );
        metrics
    }

    /// Counts and times one request under its route template (not its raw path, so ids in
    /// paths do not explode the label space).
    pub(crate) fn observe(
        &self,
        method: &Method,
        route: &str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let seconds = elapsed.as_secs_f64();
        let find = |list: &Vec<Resolved>| {
            list.iter()
                .find(|r| r.status == status && r.method == *method)
                .cloned()
        };
        let known = self
            .resolved
            .read()
            .ok()
            .and_then(|map| map.get(route).and_then(find));
        let handles = match known {
            Some(handles) => handles,
            None => self.resolve(method, route, status),
        };
        handles.requests.inc();
        handles.duration.observe(seconds);
    }

    /// The handles of a label set not seen before, kept for the next request.
    fn resolve(&self, method: &Method, route: &str, status: StatusCode) -> Resolved {
        let labels = RequestLabels {
            method: method.as_str().to_string(),
            route: route.to_string(),
            status: status.as_u16(),
        };
        let handles = Resolved {
            method: method.clone(),
            status,
            requests: self.requests.get_or_create(&labels).clone(),
            duration: self.duration.get_or_create(&labels).clone(),
        };
        if let Ok(mut map) = self.resolved.write() {
            let list = map.entry(labels.route).or_default();
            if !list
                .iter()
                .any(|r| r.status == status && r.method == *method)
            {
                list.push(handles.clone());
            }
        }
        handles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn resolved_handles_count_into_the_registered_families() {
        let mut registry = Registry::default();
        let metrics = HttpMetrics::register(&mut registry);
        let ms = Duration::from_millis(3);
        for _ in 0..3 {
            metrics.observe(&Method::GET, "/v1/articles", StatusCode::OK, ms);
        }
        metrics.observe(&Method::GET, "/v1/articles", StatusCode::NOT_FOUND, ms);
        metrics.observe(&Method::POST, "/v1/articles", StatusCode::OK, ms);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encode");
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with(needle))
                .map(str::to_string)
                .unwrap_or_default()
        };
        assert_eq!(
            line(r#"http_requests_total{method="GET",route="/v1/articles",status="200"}"#)
                .rsplit(' ')
                .next(),
            Some("3")
        );
        assert!(
            line(r#"http_requests_total{method="GET",route="/v1/articles",status="404"}"#)
                .ends_with(" 1")
        );
        assert!(
            line(r#"http_requests_total{method="POST",route="/v1/articles",status="200"}"#)
                .ends_with(" 1")
        );
        assert!(
            line(r#"http_request_duration_seconds_count{method="GET",route="/v1/articles",status="200"}"#)
                .ends_with(" 3")
        );
    }
}
