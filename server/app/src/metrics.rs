//! Prometheus metrics, served on their own HTTP port (`metrics_listen`) as `GET /metrics`.
//!
//! # What is measured
//!
//! | metric | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `prosodia_requests_total` | counter | `rpc`, `code` | finished RPCs by method and gRPC code (`OK`, `INVALID_ARGUMENT`, …) |
//! | `prosodia_requests_in_flight` | gauge | | RPCs started and not yet finished |
//! | `prosodia_queue_duration_seconds` | histogram | | time a request waited for a worker |
//! | `prosodia_worker_jobs_total` | counter | | jobs handed to the CPU worker pool (a Classify, a stream's ready windows, ...) |
//! | `prosodia_stage_duration_seconds` | histogram | `stage` | CPU time per stage: `decode`, `extract`, `infer` |
//! | `prosodia_batch_size` | histogram | `model` | inputs per inference call (1 per unary request until dynamic batching) |
//! | `prosodia_active_streams` | gauge | | open StreamClassify streams |
//! | `prosodia_models_loaded` | gauge | | model versions loaded and ready |
//!
//! `rpc` is `package.Service/Method` for the methods the server knows (read from the compiled
//! descriptors of its services) and `unknown` for anything else, so a client cannot grow the
//! label set by calling made-up paths. The request counter and in-flight gauge are kept by
//! [`crate::rpc`], the middleware in front of every service; the code comes from the
//! `grpc-status` of the response headers (errors) or trailers (successes and late errors).
//!
//! # Why `prometheus-client`
//!
//! It is the Prometheus project's own Rust client: it gets the exposition details right
//! (escaping, histogram `_bucket`/`_sum`/`_count` with `le="+Inf"`, counter `_total`
//! suffixes), it is small (no runtime, no global registry) and lock-free on the hot path
//! (atomics; families take a read lock). A hand-written registry would be about as long as
//! this module and would need its own format tests. The registry is per server rather than
//! global, so several servers in one process (the integration tests) count separately. The
//! body is the OpenMetrics text format (the standardised Prometheus text format, which
//! Prometheus negotiates and scrapes natively), served with its content type.
//!
//! # Hooks for other modules
//!
//! [`Metrics::observe_batch`] for a batcher, [`Metrics::stream_started`] (a guard that counts
//! a stream as active until dropped) for StreamClassify, [`Metrics::observe_timings`] for any
//! handler that fills a `Timings` message.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use prosodia_proto::pb;
use prost::Message as _;
use tokio::net::TcpListener;
use tonic::Code;

use crate::error::{Error, Result};

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The label value for an RPC path the server does not serve.
pub const UNKNOWN_RPC: &str = "unknown";

/// A processing stage of a request.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Stage {
    /// Decoding the request audio.
    decode,
    /// Feature extraction.
    extract,
    /// Model inference.
    infer,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    rpc: String,
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: Stage,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s, doubling.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 9))
}

/// The server's metrics; one per server, shared through [`crate::server::AppState`].
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    known_rpcs: HashSet<String>,
    requests: Family<RequestLabels, Counter>,
    in_flight: Gauge,
    queue: Histogram,
    worker_jobs: Counter,
    stages: HistogramFamily<StageLabels>,
    batch: HistogramFamily<ModelLabels>,
    active_streams: Gauge,
    models_loaded: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered (and zero).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("prosodia");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Finished RPCs by method and gRPC status code",
            requests.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "RPCs started and not yet finished",
            in_flight.clone(),
        );
        let queue = latency_histogram();
        registry.register(
            "queue_duration_seconds",
            "Time requests waited for a CPU worker",
            queue.clone(),
        );
        let worker_jobs = Counter::default();
        registry.register("worker_jobs", "Jobs handed to the CPU worker pool", worker_jobs.clone());
        let stages: HistogramFamily<StageLabels> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "stage_duration_seconds",
            "Time spent per processing stage (decode, extract, infer)",
            stages.clone(),
        );
        let batch: HistogramFamily<ModelLabels> =
            Family::new_with_constructor(batch_histogram as fn() -> Histogram);
        registry.register("batch_size", "Inputs per inference call, by model", batch.clone());
        let active_streams = Gauge::default();
        registry.register("active_streams", "Open StreamClassify streams", active_streams.clone());
        let models_loaded = Gauge::default();
        registry.register(
            "models_loaded",
            "Model versions loaded and ready to serve",
            models_loaded.clone(),
        );
        Self {
            registry,
            known_rpcs: known_rpcs(),
            requests,
            in_flight,
            queue,
            worker_jobs,
            stages,
            batch,
            active_streams,
            models_loaded,
        }
    }

    /// The `rpc` label for a request path such as `/prosodia.v1.Emotion/Classify`.
    pub fn rpc_label(&self, path: &str) -> String {
        let method = path.strip_prefix('/').unwrap_or(path);
        if self.known_rpcs.contains(method) { method.to_owned() } else { UNKNOWN_RPC.to_owned() }
    }

    /// Counts an RPC as in flight until the returned guard is finished or dropped.
    pub fn request_started(&self, rpc: String) -> RequestGuard {
        self.in_flight.inc();
        RequestGuard {
            requests: self.requests.clone(),
            in_flight: self.in_flight.clone(),
            rpc,
            done: false,
        }
    }

    /// The counter of jobs handed to the worker pool, for [`crate::work::Workers`] to count.
    pub fn worker_jobs(&self) -> Counter {
        self.worker_jobs.clone()
    }

    /// RPCs in flight now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    /// Records one inference call over `size` inputs for `model`.
    pub fn observe_batch(&self, model: &str, size: usize) {
        self.batch.get_or_create(&ModelLabels { model: model.to_owned() }).observe(size as f64);
    }

    /// Records the time a request waited for a worker.
    pub fn observe_queue(&self, wait: Duration) {
        self.queue.observe(wait.as_secs_f64());
    }

    /// Records the time one stage took.
    pub fn observe_stage(&self, stage: Stage, took: Duration) {
        self.stages.get_or_create(&StageLabels { stage }).observe(took.as_secs_f64());
    }

    /// Records a response's `Timings` (milliseconds): queue, decode and extract always, infer
    /// when it ran (`inference_ms > 0`).
    pub fn observe_timings(&self, t: &pb::Timings) {
        let s = |ms: f64| ms.max(0.0) / 1e3;
        self.queue.observe(s(t.queue_ms));
        self.stages.get_or_create(&StageLabels { stage: Stage::decode }).observe(s(t.decode_ms));
        self.stages.get_or_create(&StageLabels { stage: Stage::extract }).observe(s(t.extract_ms));
        if t.inference_ms > 0.0 {
            self.stages
                .get_or_create(&StageLabels { stage: Stage::infer })
                .observe(s(t.inference_ms));
        }
    }

    /// Counts a StreamClassify stream as active until the guard is dropped.
    pub fn stream_started(&self) -> StreamGuard {
        self.active_streams.inc();
        StreamGuard { gauge: self.active_streams.clone() }
    }

    /// Sets the number of loaded model versions.
    pub fn set_models_loaded(&self, n: usize) {
        self.models_loaded.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The exposition, in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| Error::Internal(format!("encoding metrics: {e}")))?;
        Ok(out)
    }
}

/// Keeps an RPC counted as in flight; [`RequestGuard::finish`] records its code. Dropped
/// unfinished (the client went away before the status was sent), it counts as CANCELLED.
#[derive(Debug)]
pub struct RequestGuard {
    requests: Family<RequestLabels, Counter>,
    in_flight: Gauge,
    rpc: String,
    done: bool,
}

impl RequestGuard {
    /// Records the RPC as finished with `code`.
    pub fn finish(mut self, code: Code) {
        self.record(code);
    }

    fn record(&mut self, code: Code) {
        if self.done {
            return;
        }
        self.done = true;
        self.in_flight.dec();
        let rpc = std::mem::take(&mut self.rpc);
        self.requests.get_or_create(&RequestLabels { rpc, code: code_name(code) }).inc();
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.record(Code::Cancelled);
    }
}

/// Counts one StreamClassify stream as active while alive.
#[derive(Debug)]
#[must_use = "the stream counts as active only while the guard lives"]
pub struct StreamGuard {
    gauge: Gauge,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// The canonical upper-case name of a gRPC code, as Prometheus exporters label it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// `package.Service/Method` for every method of the services the server registers.
fn known_rpcs() -> HashSet<String> {
    let sets = [
        pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut out = HashSet::new();
    for bytes in sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(bytes) else { continue };
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let service_name = service.name.unwrap_or_default();
                for method in service.method {
                    let mut name = String::new();
                    if !package.is_empty() {
                        let _ = write!(name, "{package}.");
                    }
                    let _ = write!(name, "{service_name}/{}", method.name.unwrap_or_default());
                    out.insert(name);
                }
            }
        }
    }
    out
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                match metrics.encode() {
                    Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
                    Err(e) => {
                        tracing::error!(error = %e, "metrics scrape failed");
                        (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                    }
                }
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Internal(format!("metrics server: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_family_and_counts_by_rpc_and_code() {
        let m = Metrics::new();
        let rpc = m.rpc_label("/prosodia.v1.Emotion/Classify");
        assert_eq!(rpc, "prosodia.v1.Emotion/Classify");
        assert_eq!(m.rpc_label("/prosodia.v1.Emotion/Nope"), UNKNOWN_RPC);
        assert_eq!(m.rpc_label("/grpc.health.v1.Health/Check"), "grpc.health.v1.Health/Check");
        m.request_started(rpc.clone()).finish(Code::Ok);
        m.request_started(rpc).finish(Code::InvalidArgument);
        drop(m.request_started("x".into()));
        m.observe_batch("m", 1);
        m.observe_stage(Stage::decode, Duration::from_millis(3));
        let guard = m.stream_started();
        m.set_models_loaded(3);
        let text = m.encode().unwrap();
        drop(guard);
        for line in [
            "prosodia_requests_total{rpc=\"prosodia.v1.Emotion/Classify\",code=\"OK\"} 1",
            "prosodia_requests_total{rpc=\"prosodia.v1.Emotion/Classify\",code=\"INVALID_ARGUMENT\"} 1",
            "prosodia_requests_total{rpc=\"x\",code=\"CANCELLED\"} 1",
            "prosodia_requests_in_flight 0",
            "prosodia_batch_size_count{model=\"m\"} 1",
            "prosodia_active_streams 1",
            "prosodia_models_loaded 3",
            "# TYPE prosodia_queue_duration_seconds histogram",
            "# TYPE prosodia_stage_duration_seconds histogram",
            "prosodia_stage_duration_seconds_count{stage=\"decode\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(m.encode().unwrap().contains("prosodia_active_streams 0"));
    }
}
