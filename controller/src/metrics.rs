//! Prometheus metrics of the controller, served as text at `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry as PromRegistry, TextEncoder,
};

/// Latency buckets in seconds, from 1 ms to 2 minutes.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];

/// Every metric the controller exports.
pub struct Metrics {
    registry: PromRegistry,
    /// HTTP requests by route and status.
    pub requests: IntCounterVec,
    /// HTTP request latency by route (for streams: until the response starts).
    pub latency: HistogramVec,
    /// Time from dispatch to the worker's first message, by model.
    pub ttft: HistogramVec,
    /// Generation time from dispatch to the last token, by model.
    pub generation: HistogramVec,
    /// Tokens generated, by model.
    pub tokens: IntCounterVec,
    /// Generations whose prompt a worker's prefix cache served in part, by model.
    pub prefix_cache_hits: IntCounterVec,
    /// Prompt tokens the workers' prefix caches saved prefilling, by model.
    pub prefix_cache_tokens: IntCounterVec,
    /// Calls to a worker that failed before its first token.
    pub dispatch_failures: IntCounter,
    /// Requests retried on another worker.
    pub retries: IntCounter,
    /// Times a worker's circuit breaker opened (`arena_worker_circuit_open_total`).
    pub circuit_opened: IntCounter,
    worker_in_flight: IntGaugeVec,
    worker_queue: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = PromRegistry::new_custom(Some("arena".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency until the response starts",
            )
            .buckets(BUCKETS.to_vec()),
            &["route"],
        )?;
        let ttft = HistogramVec::new(
            HistogramOpts::new(
                "time_to_first_token_seconds",
                "Dispatch to the worker's first message",
            )
            .buckets(BUCKETS.to_vec()),
            &["model"],
        )?;
        let generation = HistogramVec::new(
            HistogramOpts::new("generation_duration_seconds", "Dispatch to the last token")
                .buckets(BUCKETS.to_vec()),
            &["model"],
        )?;
        let tokens = IntCounterVec::new(
            Opts::new("generated_tokens_total", "Tokens generated"),
            &["model"],
        )?;
        let prefix_cache_hits = IntCounterVec::new(
            Opts::new(
                "prefix_cache_hits_total",
                "Generations whose prompt a worker's prefix cache served in part",
            ),
            &["model"],
        )?;
        let prefix_cache_tokens = IntCounterVec::new(
            Opts::new(
                "prefix_cache_tokens_saved_total",
                "Prompt tokens the workers' prefix caches saved prefilling",
            ),
            &["model"],
        )?;
        let dispatch_failures = IntCounter::new(
            "dispatch_failures_total",
            "Worker calls that failed before the first token",
        )?;
        let retries = IntCounter::new(
            "dispatch_retries_total",
            "Requests retried on another worker",
        )?;
        let circuit_opened = IntCounter::new(
            "worker_circuit_open_total",
            "Times a worker's circuit breaker opened after repeated failures or timeouts",
        )?;
        let worker_in_flight = IntGaugeVec::new(
            Opts::new(
                "worker_in_flight",
                "Requests this controller has running on a worker",
            ),
            &["worker"],
        )?;
        let worker_queue = IntGaugeVec::new(
            Opts::new("worker_queue_length", "Queue length a worker last reported"),
            &["worker"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(ttft.clone()))?;
        registry.register(Box::new(generation.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(prefix_cache_hits.clone()))?;
        registry.register(Box::new(prefix_cache_tokens.clone()))?;
        registry.register(Box::new(dispatch_failures.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(circuit_opened.clone()))?;
        registry.register(Box::new(worker_in_flight.clone()))?;
        registry.register(Box::new(worker_queue.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            ttft,
            generation,
            tokens,
            prefix_cache_hits,
            prefix_cache_tokens,
            dispatch_failures,
            retries,
            circuit_opened,
            worker_in_flight,
            worker_queue,
        })
    }

    /// The text exposition, with the per-worker gauges set from `workers` (id, requests in
    /// flight, queue length) as they are now.
    pub fn render(&self, workers: impl IntoIterator<Item = (String, usize, u32)>) -> String {
        self.worker_in_flight.reset();
        self.worker_queue.reset();
        for (id, in_flight, queue_length) in workers {
            self.worker_in_flight
                .with_label_values(&[&id])
                .set(in_flight as i64);
            self.worker_queue
                .with_label_values(&[&id])
                .set(i64::from(queue_length));
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!("encoding metrics failed: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Counts every request by its route pattern (not its raw path, to bound label values).
pub async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics.requests.with_label_values(&[&route, &status]).inc();
    metrics
        .latency
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    response
}
