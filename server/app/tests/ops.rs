//! Operations: Prometheus metrics, request ids, the admin token and graceful shutdown, each
//! against the real server on 127.0.0.1:0.
//!
//! Models are served by an in-test backend (`ops`) that returns fixed probabilities after
//! sleeping for the model's `delay` (read from the model folder), so the shutdown tests have a
//! request that is reliably still running.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prosodia_dsp::FeatureConfig;
use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_proto::pb::models_client::ModelsClient;
use prosodia_server::config::Secret;
use prosodia_server::repository::ModelManifest;
use prosodia_server::runner::{Backend, Batch, ModelRunner, RunnerError, TensorInfo};
use prosodia_server::{Config, ServerBuilder};
use prosodia_tests::{fixture, read};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;

const LABELS: [&str; 6] = ["angry", "disgust", "fear", "happy", "neutral", "sad"];

/// Runs started so far, across every runner of one server.
type Started = Arc<AtomicUsize>;

struct SleepyRunner {
    delay: Duration,
    started: Started,
}

impl ModelRunner for SleepyRunner {
    fn inputs(&self) -> Vec<TensorInfo> {
        Vec::new()
    }
    fn outputs(&self) -> Vec<TensorInfo> {
        Vec::new()
    }
    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, RunnerError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        Ok([0.1, 0.05, 0.05, 0.6, 0.1, 0.1].repeat(batch.n))
    }
}

struct SleepyBackend {
    started: Started,
}

impl Backend for SleepyBackend {
    fn name(&self) -> &str {
        "ops"
    }
    fn version(&self) -> &str {
        "test"
    }
    fn load(
        &self,
        model_path: &Path,
        _manifest: &ModelManifest,
    ) -> Result<Box<dyn ModelRunner>, RunnerError> {
        let ms: u64 = std::fs::read_to_string(model_path.with_file_name("delay_ms"))
            .map(|s| s.trim().parse().unwrap())
            .unwrap_or(0);
        Ok(Box::new(SleepyRunner {
            delay: Duration::from_millis(ms),
            started: self.started.clone(),
        }))
    }
}

fn write_model(root: &Path, name: &str, delay_ms: u64) {
    let dir = root.join(name).join("1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.onnx"), b"not a real network").unwrap();
    std::fs::write(dir.join("delay_ms"), delay_ms.to_string()).unwrap();
    std::fs::write(dir.join("features.toml"), FeatureConfig::seed().to_toml().unwrap()).unwrap();
    let labels: Vec<String> = LABELS.iter().map(|l| format!("{l:?}")).collect();
    std::fs::write(
        dir.join("model.toml"),
        format!("labels = [{}]\nbackend = \"ops\"\nextractor = \"frames\"\n", labels.join(", ")),
    )
    .unwrap();
}

struct TestServer {
    addr: SocketAddr,
    metrics: SocketAddr,
    started: Started,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<prosodia_server::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with models `fast` (default) and `slow` (its runner sleeps `slow_ms`), metrics
    /// on their own port, and `tweak` applied to the configuration.
    async fn start(slow_ms: u64, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), "fast", 0);
        write_model(dir.path(), "slow", slow_ms);
        let mut config = Config {
            models: Some(dir.path().to_path_buf()),
            default_model: Some("fast".into()),
            workers: 2,
            ..Config::default()
        };
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = metrics_listener.local_addr().unwrap();
        let started = Started::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = ServerBuilder::new(config)
            .backend(Arc::new(SleepyBackend { started: started.clone() }))
            .metrics_listener(metrics_listener);
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Self { addr, metrics, started, stop: Some(stop), task: Some(task), _dir: dir }
    }

    async fn channel(&self) -> Channel {
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr)).unwrap();
        // The server loads its models before it accepts, so retry briefly.
        for _ in 0..100 {
            if let Ok(c) = endpoint.connect().await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        endpoint.connect().await.unwrap()
    }

    async fn emotion(&self) -> EmotionClient<Channel> {
        EmotionClient::new(self.channel().await)
    }

    async fn models(&self) -> ModelsClient<Channel> {
        ModelsClient::new(self.channel().await)
    }

    /// The metrics exposition, fetched with a bare HTTP/1.0 request.
    async fn scrape(&self) -> String {
        let mut stream = tokio::net::TcpStream::connect(self.metrics).await.unwrap();
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n").await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"));
        body.to_owned()
    }

    fn trigger_stop(&mut self) {
        if let Some(s) = self.stop.take() {
            s.send(()).unwrap();
        }
    }

    /// Stops the server and checks it shut down cleanly.
    async fn stop(mut self) {
        self.trigger_stop();
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

/// The value of the sample line `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn classify_request(model: &str) -> pb::ClassifyRequest {
    let audio = pb::Audio {
        source: Some(pb::audio::Source::Encoded(read(&fixture("tess/OAF_back_happy.wav")))),
    };
    pb::ClassifyRequest { audio: Some(audio), model: model.into(), ..Default::default() }
}

const CLASSIFY_OK: &str =
    "prosodia_requests_total{rpc=\"prosodia.v1.Emotion/Classify\",code=\"OK\"}";
const CLASSIFY_INVALID: &str =
    "prosodia_requests_total{rpc=\"prosodia.v1.Emotion/Classify\",code=\"INVALID_ARGUMENT\"}";

#[tokio::test]
async fn metrics_count_requests_by_rpc_and_code_and_time_each_stage() {
    let server = TestServer::start(0, |c| c.admin_token = Some(Secret::new("m3trics"))).await;
    let mut client = server.emotion().await;
    let before = server.scrape().await;
    assert_eq!(sample(&before, CLASSIFY_OK), None, "{before}");
    assert_eq!(sample(&before, "prosodia_models_loaded"), Some(2.0), "{before}");
    assert_eq!(sample(&before, "prosodia_active_streams"), Some(0.0), "{before}");

    client.classify(classify_request("")).await.unwrap();
    client.classify(classify_request("")).await.unwrap();
    let err = client.classify(pb::ClassifyRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = client.classify(classify_request("no-such-model")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let after = server.scrape().await;
    assert_eq!(sample(&after, CLASSIFY_OK), Some(2.0), "{after}");
    assert_eq!(sample(&after, CLASSIFY_INVALID), Some(1.0), "{after}");
    let not_found =
        "prosodia_requests_total{rpc=\"prosodia.v1.Emotion/Classify\",code=\"NOT_FOUND\"}";
    assert_eq!(sample(&after, not_found), Some(1.0), "{after}");
    // The scrape itself is not a gRPC request and nothing is left in flight.
    assert_eq!(sample(&after, "prosodia_requests_in_flight"), Some(0.0), "{after}");
    assert_eq!(sample(&after, "prosodia_batch_size_count{model=\"fast\"}"), Some(2.0), "{after}");
    assert_eq!(sample(&after, "prosodia_queue_duration_seconds_count"), Some(2.0), "{after}");
    for stage in ["decode", "extract", "infer"] {
        let series = format!("prosodia_stage_duration_seconds_count{{stage=\"{stage}\"}}");
        assert_eq!(sample(&after, &series), Some(2.0), "{series} in\n{after}");
    }

    // Unloading a model shows in the loaded-models gauge.
    let mut models = server.models().await;
    let mut req = tonic::Request::new(pb::UnloadModelRequest { name: "slow".into(), version: 0 });
    req.metadata_mut().insert("authorization", "Bearer m3trics".parse().unwrap());
    models.unload_model(req).await.unwrap();
    let unloaded = server.scrape().await;
    assert_eq!(sample(&unloaded, "prosodia_models_loaded"), Some(1.0), "{unloaded}");
    drop((client, models));
    server.stop().await;
}

#[tokio::test]
async fn metrics_listen_from_the_configuration_is_served() {
    // Pick a free port, then hand the address to the configuration rather than a listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config { metrics_listen: Some(port), ..Config::default() };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(ServerBuilder::new(config).serve(listener, async {
        let _ = stopped.await;
    }));
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(port).await {
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await.unwrap();
            s.read_to_string(&mut body).await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(body.contains("\nprosodia_requests_in_flight 0\n"), "{body}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    // The metrics port is closed with the server.
    assert!(tokio::net::TcpStream::connect(port).await.is_err());
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let server = TestServer::start(0, |_| {}).await;
    let mut client = server.emotion().await;
    let mut req = tonic::Request::new(classify_request(""));
    req.metadata_mut().insert("x-request-id", "ops-test-42".parse().unwrap());
    let resp = client.classify(req).await.unwrap();
    assert_eq!(resp.metadata().get("x-request-id").unwrap(), "ops-test-42");

    // Errors carry it too.
    let mut req = tonic::Request::new(pb::ClassifyRequest::default());
    req.metadata_mut().insert("x-request-id", "ops-test-43".parse().unwrap());
    let err = client.classify(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.metadata().get("x-request-id").unwrap(), "ops-test-43");

    // Without one (or with an unusable one) the server makes a fresh id per request.
    let a = client.classify(classify_request("")).await.unwrap();
    let a = a.metadata().get("x-request-id").unwrap().to_str().unwrap().to_owned();
    let mut req = tonic::Request::new(classify_request(""));
    req.metadata_mut().insert("x-request-id", "with space".parse().unwrap());
    let b = client.classify(req).await.unwrap();
    let b = b.metadata().get("x-request-id").unwrap().to_str().unwrap().to_owned();
    assert!(!a.is_empty() && !b.is_empty());
    assert_ne!(a, b);
    assert_ne!(b, "with space");
    drop(client);
    server.stop().await;
}

fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    if let Some(t) = token {
        req.metadata_mut().insert("authorization", t.parse().unwrap());
    }
    req
}

#[tokio::test]
async fn admin_calls_need_the_bearer_token_and_read_only_calls_stay_open() {
    let server = TestServer::start(0, |c| c.admin_token = Some(Secret::new("correct-horse"))).await;
    let mut models = server.models().await;
    let load = || pb::LoadModelRequest { name: "fast".into(), version: 0 };
    let unload = || pb::UnloadModelRequest { name: "fast".into(), version: 0 };
    let reload = || pb::ReloadPluginRequest { name: "ops".into() };

    for token in [None, Some("Bearer wrong-horse"), Some("correct-horse"), Some("Basic x")] {
        let err = models.load_model(with_token(load(), token)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{token:?}: {err:?}");
        let err = models.unload_model(with_token(unload(), token)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{token:?}: {err:?}");
        let err = models.reload_plugin(with_token(reload(), token)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{token:?}: {err:?}");
    }
    let err = models.load_model(with_token(load(), None)).await.unwrap_err();
    assert!(err.message().contains("authorization: Bearer"), "{}", err.message());

    let right = Some("Bearer correct-horse");
    let resp = models.unload_model(with_token(unload(), right)).await.unwrap().into_inner();
    assert_eq!(resp.unloaded_versions, vec![1]);
    let resp = models.load_model(with_token(load(), right)).await.unwrap().into_inner();
    assert_eq!(resp.model.unwrap().name, "fast");
    // Past authentication, ReloadPlugin reaches its own check (built-ins cannot be reloaded).
    let err = models.reload_plugin(with_token(reload(), right)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Read-only calls need no token.
    models.list_models(pb::ListModelsRequest::default()).await.unwrap();
    models
        .get_model(pb::GetModelRequest { name: "fast".into(), ..Default::default() })
        .await
        .unwrap();
    models.list_plugins(pb::ListPluginsRequest::default()).await.unwrap();
    drop(models);
    server.stop().await;
}

#[tokio::test]
async fn admin_token_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "from-a-file\n").unwrap();
    let server = TestServer::start(0, |c| c.admin_token_file = Some(path)).await;
    let mut models = server.models().await;
    let unload = || pb::UnloadModelRequest { name: "fast".into(), version: 0 };
    let err = models.unload_model(with_token(unload(), Some("Bearer x"))).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    models.unload_model(with_token(unload(), Some("Bearer from-a-file"))).await.unwrap();
    drop(models);
    server.stop().await;
}

#[tokio::test]
async fn without_a_token_admin_calls_are_denied_unless_explicitly_allowed() {
    let server = TestServer::start(0, |_| {}).await;
    let mut models = server.models().await;
    let err = models
        .load_model(pb::LoadModelRequest { name: "fast".into(), version: 0 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("--admin-token"), "{}", err.message());
    assert!(err.message().contains("allow_unauthenticated_admin"), "{}", err.message());
    let err = models
        .unload_model(pb::UnloadModelRequest { name: "fast".into(), version: 0 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    models.list_models(pb::ListModelsRequest::default()).await.unwrap();
    drop(models);
    server.stop().await;

    let server = TestServer::start(0, |c| c.allow_unauthenticated_admin = true).await;
    let mut models = server.models().await;
    models.unload_model(pb::UnloadModelRequest { name: "fast".into(), version: 0 }).await.unwrap();
    models.load_model(pb::LoadModelRequest { name: "fast".into(), version: 0 }).await.unwrap();
    drop(models);
    server.stop().await;
}

/// Waits until the slow runner has started `n` runs.
async fn wait_for_runs(started: &Started, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while started.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "the slow request never reached the runner");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish_and_refuses_new_connections() {
    let mut server = TestServer::start(1500, |c| c.shutdown_grace_seconds = 30.0).await;
    let mut client = server.emotion().await;
    let in_flight = tokio::spawn(async move { client.classify(classify_request("slow")).await });
    wait_for_runs(&server.started, 1).await;

    server.trigger_stop();
    // The listening socket closes at once, while the slow request is still running.
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        // Until the accept loop notices the signal, connections may still be taken (or, racing
        // the close, reset); after that the kernel refuses them.
        match tokio::net::TcpStream::connect(server.addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "new connections are still not refused after shutdown began: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    assert!(!in_flight.is_finished(), "the slow request should still be running");

    let resp = in_flight.await.unwrap().expect("the request in flight completes").into_inner();
    assert_eq!(resp.label, "happy");
    assert_eq!(resp.model, "slow");
    let task = server.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_gives_up_on_requests_after_the_grace_period() {
    let mut server = TestServer::start(3000, |c| c.shutdown_grace_seconds = 0.3).await;
    let mut client = server.emotion().await;
    let in_flight = tokio::spawn(async move { client.classify(classify_request("slow")).await });
    wait_for_runs(&server.started, 1).await;

    let stopping = Instant::now();
    server.trigger_stop();
    let task = server.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(4), task)
        .await
        .expect("the server returns once the grace period is over")
        .unwrap()
        .unwrap();
    let took = stopping.elapsed();
    assert!(took >= Duration::from_millis(300), "returned before the grace period: {took:?}");
    assert!(!in_flight.is_finished(), "the slow request was still running");
    in_flight.abort();
}

#[tokio::test]
async fn open_streams_show_in_the_active_streams_gauge_until_they_end() {
    let server = TestServer::start(0, |_| {}).await;
    let mut client = server.emotion().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::StreamClassifyRequest>(4);
    let config = pb::StreamConfig {
        format: Some(pb::stream_config::Format::Raw(pb::RawFormat {
            encoding: pb::PcmEncoding::S16le.into(),
            sample_rate: 16_000,
            channels: 1,
        })),
        ..Default::default()
    };
    tx.send(pb::StreamClassifyRequest {
        message: Some(pb::stream_classify_request::Message::Config(config)),
    })
    .await
    .unwrap();
    let mut responses = client
        .stream_classify(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let open = server.scrape().await;
    assert_eq!(sample(&open, "prosodia_active_streams"), Some(1.0), "{open}");
    // Half-close with no audio: the stream ends (with an error: nothing to classify).
    drop(tx);
    while let Ok(Some(_)) = responses.message().await {}
    let mut closed = String::new();
    for _ in 0..100 {
        closed = server.scrape().await;
        if sample(&closed, "prosodia_active_streams") == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sample(&closed, "prosodia_active_streams"), Some(0.0), "{closed}");
    drop(client);
    server.stop().await;
}

/// A stream sent at real-time pace hands work to the worker pool when a window is ready,
/// not for every 20 ms chunk: parsing, resampling and voice activity run on the stream's own
/// task. Before that, each chunk was a job (a thread hand-off 50 times a second per stream).
#[tokio::test]
async fn a_real_time_stream_runs_one_worker_job_per_window_not_per_chunk() {
    use pb::stream_classify_request::Message;
    use pb::stream_classify_response::Result as R;
    let server = TestServer::start(0, |_| {}).await;
    let mut client = server.emotion().await;
    let audio = prosodia_dsp::decode::decode(
        &read(&fixture("tess/OAF_back_angry.wav")),
        &prosodia_dsp::decode::DecodeLimits::default(),
    )
    .unwrap();
    let rate = audio.sample_rate;
    let bytes: Vec<u8> = audio.channels[0]
        .iter()
        .flat_map(|&s| ((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes())
        .collect();
    let chunk_bytes = 2 * (rate as usize / 50);
    let before = sample(&server.scrape().await, "prosodia_worker_jobs_total").unwrap();

    let (tx, rx) = tokio::sync::mpsc::channel::<pb::StreamClassifyRequest>(4);
    let config = pb::StreamConfig {
        format: Some(pb::stream_config::Format::Raw(pb::RawFormat {
            encoding: pb::PcmEncoding::S16le.into(),
            sample_rate: rate,
            channels: 1,
        })),
        interim_results: true,
        window_seconds: 1.0,
        hop_seconds: 0.25,
        ..Default::default()
    };
    tx.send(pb::StreamClassifyRequest { message: Some(Message::Config(config)) }).await.unwrap();
    let mut responses = client
        .stream_classify(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let chunks = bytes.chunks(chunk_bytes).count();
    let sender = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for chunk in bytes.chunks(chunk_bytes) {
            tick.tick().await;
            let message = Message::Audio(chunk.to_vec());
            tx.send(pb::StreamClassifyRequest { message: Some(message) }).await.unwrap();
        }
    });
    let (mut windows, mut utterances) = (0, 0);
    while let Some(m) = responses.message().await.unwrap() {
        match m.result.unwrap() {
            R::Window(_) => windows += 1,
            R::Utterance(_) => utterances += 1,
            R::Summary(_) => {}
        }
    }
    sender.await.unwrap();
    let jobs = sample(&server.scrape().await, "prosodia_worker_jobs_total").unwrap() - before;
    println!("{chunks} chunks, {windows} windows, {utterances} utterances: {jobs} worker jobs");
    assert!(windows >= 2, "the clip gives several windows: {windows}");
    // One job per chunk that completed a window (at most one per window), one at the end.
    assert!(jobs >= 1.0, "nothing ran on the worker pool");
    assert!(
        jobs <= f64::from(windows + 1),
        "{jobs} worker jobs for {windows} windows and {chunks} chunks"
    );
    drop(client);
    server.stop().await;
}

/// Logs that go to a file or a collector (stderr not a terminal) are plain text: no colour
/// escape codes for a log pipeline to store or choke on.
#[test]
fn text_logs_to_a_pipe_carry_no_colour_codes() {
    use std::io::BufRead;

    let models = tempfile::tempdir().unwrap();
    let mut child = prosodia_tests::logging_command(env!("CARGO_BIN_EXE_prosodia-server"))
        .args(["--listen", "127.0.0.1:0", "--log", "info"])
        .arg("--models")
        .arg(models.path())
        .spawn()
        .expect("starting prosodia-server");
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let done = line.contains("prosodia-server listening");
        seen.push(line);
        if done || seen.len() > 200 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.iter().any(|l| l.contains("prosodia-server listening")),
        "no listening line: {seen:?}"
    );
    assert!(seen.iter().all(|l| !l.contains('\u{1b}')), "escape codes in the log: {seen:?}");
}
