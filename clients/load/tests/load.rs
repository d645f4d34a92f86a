//! The load generator against the real server (bundled model, 127.0.0.1:0) and against a
//! closed port. Timings are never asserted: only that requests flow, failures are counted and
//! the report is coherent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prosodia_load::{
    Arrival, StreamLoadConfig, UnaryConfig, UnaryReport, decode_mono, run_streams, run_unary,
};
use prosodia_server::{Config, ServerBuilder};

fn fixture() -> Option<PathBuf> {
    let shared = std::env::var_os("PROSODIA_SHARED").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    );
    let path = shared.join("fixtures/ravdess/03-01-01-01-01-01-01.wav");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipping: fixture {} is missing", path.display());
        None
    }
}

/// Starts the server with the bundled model; returns its URL and the stop handle.
async fn start_server() -> (String, tokio::sync::oneshot::Sender<()>) {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let config = Config { models: Some(models), workers: 2, ..Config::default() };
    let server = ServerBuilder::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    (format!("http://{addr}"), stop)
}

fn config(addr: String, payload: Vec<u8>) -> UnaryConfig {
    UnaryConfig {
        addr,
        channels: 2,
        concurrency: 2,
        rate: None,
        arrival: Arrival::Poisson,
        model: String::new(),
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(1),
        payloads: vec![Arc::new(payload)],
    }
}

/// The JSON round-trips and has the fields the benchmark script reads.
fn check_json(report: &UnaryReport) {
    let text = serde_json::to_string(report).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in ["requests", "errors", "throughput_rps", "latency_ms"] {
        assert!(value.get(key).is_some(), "{key} missing from {text}");
    }
    let back: UnaryReport = serde_json::from_value(value).unwrap();
    assert_eq!(
        (back.requests, back.ok, &back.errors),
        (report.requests, report.ok, &report.errors)
    );
    assert_eq!(back.latency_ms.count, report.latency_ms.count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_and_open_loops_against_the_real_server() {
    let Some(path) = fixture() else { return };
    let (addr, stop) = start_server().await;
    let cfg = config(addr, std::fs::read(&path).unwrap());

    let closed = run_unary(&cfg).await.unwrap();
    assert_eq!(closed.error_count(), 0, "{closed:?}");
    assert!(closed.requests > 0 && closed.ok == closed.requests, "{closed:?}");
    assert!(closed.latency_ms.is_ordered() && closed.latency_ms.p50 > 0.0, "{closed:?}");
    assert_eq!(closed.labels.values().sum::<u64>(), closed.ok);
    let split = closed.server_ms.expect("the server reports its timings");
    assert!(split.decode.count == closed.ok && split.infer.p50 > 0.0, "{split:?}");
    check_json(&closed);

    let open = run_unary(&UnaryConfig { rate: Some(20.0), concurrency: 8, ..cfg }).await.unwrap();
    assert_eq!(open.mode, "open");
    assert_eq!(open.error_count(), 0, "{open:?}");
    assert!(open.requests > 0 && open.latency_ms.is_ordered(), "{open:?}");
    check_json(&open);
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_counted_as_errors() {
    // Bind, learn the port, close it: nothing listens there now.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = config(format!("http://127.0.0.1:{port}"), b"RIFF not really".to_vec());
    cfg.warmup = Duration::ZERO;
    cfg.duration = Duration::from_millis(500);
    let report = run_unary(&cfg).await.unwrap();
    assert_eq!(report.ok, 0, "{report:?}");
    assert!(report.error_count() > 0, "{report:?}");
    assert_eq!(report.requests, report.error_count());
    assert!(report.errors.contains_key("Unavailable"), "{:?}", report.errors);
    assert!(report.first_error.is_some());
    check_json(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_time_streams_get_interim_results() {
    let Some(path) = fixture() else { return };
    let (addr, stop) = start_server().await;
    let (samples, rate) = decode_mono(&path).unwrap();
    let cfg = StreamLoadConfig {
        addr,
        channels: 1,
        streams: 2,
        samples: Arc::new(samples),
        sample_rate: rate,
        chunk_ms: 20.0,
        window_seconds: 1.0,
        hop_seconds: 0.5,
        model: String::new(),
        warmup: Duration::from_millis(500),
        duration: Duration::from_millis(1500),
        threshold: Duration::from_secs(10),
    };
    let report = run_streams(&cfg).await.unwrap();
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(report.windows_received > 0, "{report:?}");
    assert!(report.interim_latency_ms.is_ordered(), "{report:?}");
    assert_eq!(report.interim_latency_ms.count, report.windows_received);
    let text = serde_json::to_string(&report).unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(&text).unwrap()["streams"] == 2);
    let _ = stop.send(());
}
