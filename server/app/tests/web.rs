//! The web port (`web_listen`) and Classify's emotion timeline, end to end: the real server
//! with its gRPC and web listeners on 127.0.0.1:0.
//!
//! - The timeline of a Classify request equals the interim windows a StreamClassify stream of
//!   the same audio sends (times, labels and scores), and a request without one is answered
//!   as before.
//! - The web port serves the page and the same services over gRPC-Web (HTTP/1.1, spoken here
//!   by hand), with the gRPC port's statuses, admin check and metrics.
//! - The page itself in headless Chromium (`clients/web/tests/e2e.mjs`, driven by
//!   playwright-core): upload a fixture, wait for the result, compare the label and the
//!   number of timeline windows with the unary Classify answer, check that the charts were
//!   drawn, upload a bad file and find the server's message, record from Chromium's fake
//!   microphone, and keep screenshots (`$CARGO_TARGET_DIR/test-artifacts/web.png`, the path
//!   is printed). `scripts/install-web-test.sh` (run by `scripts/test.sh`) installs what it
//!   needs and names it in `PROSODIA_NODE`, `PROSODIA_CHROMIUM` and `PROSODIA_WEB_DIR`;
//!   without node, Chromium or playwright-core the test prints why and passes without
//!   running, but a binary that is named and missing fails.
//!
//! Models here are served by an in-test backend (`mean`) whose probabilities depend on the
//! features it is given, so equal labels and scores are a real check; the browser test uses
//! the bundled model, so its screenshot shows a real answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prosodia_dsp::FeatureConfig;
use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_proto::pb::stream_classify_request::Message;
use prosodia_proto::pb::stream_classify_response::Result as R;
use prosodia_server::repository::ModelManifest;
use prosodia_server::runner::{Backend, Batch, ModelRunner, RunnerError, TensorInfo};
use prosodia_server::{Config, ServerBuilder};
use prosodia_tests::{fixture, read, shared_dir};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;

const LABELS: [&str; 6] = ["angry", "disgust", "fear", "happy", "neutral", "sad"];
/// How long the browser run may take before it is killed and the test fails.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(240);

/// Probabilities from the feature matrix: class `i` scores `exp(4 sin(1.7 m_i + i))`, where
/// `m_i` is the mean over frames of feature column `i`.
struct MeanRunner;

impl ModelRunner for MeanRunner {
    fn inputs(&self) -> Vec<TensorInfo> {
        vec![TensorInfo { name: "features".into(), dtype: "f32".into(), shape: vec![-1, -1, -1] }]
    }
    fn outputs(&self) -> Vec<TensorInfo> {
        vec![TensorInfo { name: "probabilities".into(), dtype: "f32".into(), shape: vec![-1, 6] }]
    }
    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, RunnerError> {
        let mut out = Vec::new();
        for item in 0..batch.n {
            let t = batch.lengths[item];
            let base = item * batch.t * batch.f;
            for class in 0..6 {
                let col = class % batch.f;
                let mean =
                    (0..t).map(|r| f64::from(batch.data[base + r * batch.f + col])).sum::<f64>()
                        / t as f64;
                out.push((4.0 * (1.7 * mean + class as f64).sin()).exp() as f32);
            }
        }
        Ok(out)
    }
}

struct MeanBackend;

impl Backend for MeanBackend {
    fn name(&self) -> &str {
        "mean"
    }
    fn version(&self) -> &str {
        "test"
    }
    fn load(&self, _: &Path, _: &ModelManifest) -> Result<Box<dyn ModelRunner>, RunnerError> {
        Ok(Box::new(MeanRunner))
    }
}

/// Writes `<root>/mean-model/1/` with a `[streaming]` section of 2 s windows every 0.5 s.
fn write_model(root: &Path) {
    let dir = root.join("mean-model").join("1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.onnx"), b"not a real network").unwrap();
    std::fs::write(dir.join("features.toml"), FeatureConfig::seed().to_toml().unwrap()).unwrap();
    let labels: Vec<String> = LABELS.iter().map(|l| format!("{l:?}")).collect();
    std::fs::write(
        dir.join("model.toml"),
        format!(
            "labels = [{}]\nbackend = \"mean\"\nextractor = \"frames\"\n\
             [streaming]\nwindow_seconds = 2.0\nhop_seconds = 0.5\n",
            labels.join(", ")
        ),
    )
    .unwrap();
}

/// The real server with its gRPC, web and metrics ports on 127.0.0.1:0.
struct TestServer {
    addr: SocketAddr,
    web: SocketAddr,
    metrics: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<prosodia_server::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// The in-test `mean-model`, or with `bundled` the repository's `models/` (real model).
    async fn start(bundled: bool) -> Self {
        let (models, dir) = if bundled {
            (Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"), None)
        } else {
            let dir = tempfile::tempdir().unwrap();
            write_model(dir.path());
            (dir.path().to_path_buf(), Some(dir))
        };
        let config = Config { models: Some(models), workers: 2, ..Config::default() };
        let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
        let (listener, web, metrics) =
            (bind().await.unwrap(), bind().await.unwrap(), bind().await.unwrap());
        let addr = listener.local_addr().unwrap();
        let web_addr = web.local_addr().unwrap();
        let metrics_addr = metrics.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = ServerBuilder::new(config)
            .backend(Arc::new(MeanBackend))
            .web_listener(web)
            .metrics_listener(metrics);
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            web: web_addr,
            metrics: metrics_addr,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    async fn emotion(&self) -> EmotionClient<Channel> {
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr)).unwrap();
        EmotionClient::new(endpoint.connect().await.unwrap())
    }

    /// Stops the server and checks that both ports shut down cleanly.
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            s.send(()).unwrap();
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), t).await.unwrap().unwrap().unwrap();
        }
    }
}

fn encoded(bytes: Vec<u8>) -> pb::Audio {
    pb::Audio { source: Some(pb::audio::Source::Encoded(bytes)) }
}

fn classify_request(bytes: Vec<u8>, timeline: Option<(f64, f64)>) -> pb::ClassifyRequest {
    pb::ClassifyRequest {
        audio: Some(encoded(bytes)),
        timeline: timeline.map(|(window_seconds, hop_seconds)| pb::TimelineOptions {
            window_seconds,
            hop_seconds,
        }),
        ..Default::default()
    }
}

/// The interim windows of an encoded StreamClassify stream of `bytes`.
async fn stream_windows(
    client: &mut EmotionClient<Channel>,
    bytes: &[u8],
    window_seconds: f64,
    hop_seconds: f64,
) -> Vec<pb::WindowResult> {
    let config = pb::StreamConfig {
        format: Some(pb::stream_config::Format::Encoded(pb::EncodedFormat {})),
        window_seconds,
        hop_seconds,
        interim_results: true,
        ..Default::default()
    };
    let mut messages = vec![pb::StreamClassifyRequest { message: Some(Message::Config(config)) }];
    // Chunks of odd sizes, as a client would send them.
    messages.extend(
        bytes
            .chunks(7919)
            .map(|c| pb::StreamClassifyRequest { message: Some(Message::Audio(c.to_vec())) }),
    );
    let mut responses =
        client.stream_classify(tokio_stream::iter(messages)).await.unwrap().into_inner();
    let mut windows = Vec::new();
    while let Some(r) = responses.message().await.unwrap() {
        if let Some(R::Window(w)) = r.result {
            windows.push(w);
        }
    }
    windows
}

#[tokio::test]
async fn timeline_windows_are_the_stream_classify_interim_windows() {
    let server = TestServer::start(false).await;
    let mut client = server.emotion().await;
    let files = [
        fixture("tess/OAF_back_angry.wav"), // 24,414 Hz: resampled to the model's 48 kHz
        fixture("ravdess/03-01-05-02-01-01-01.wav"), // 48 kHz
        fixture("formats/happy_stereo_44k.wav"), // stereo: averaged to mono
    ];
    // (window, hop): explicit values, and 0/0 for the model's defaults (2 s every 0.5 s).
    for (window, hop) in [(1.0, 0.25), (0.0, 0.0)] {
        let mut labels = std::collections::BTreeSet::new();
        let mut windows = 0;
        for path in &files {
            let bytes = read(path);
            let resp = client
                .classify(classify_request(bytes.clone(), Some((window, hop))))
                .await
                .unwrap()
                .into_inner();
            let streamed = stream_windows(&mut client, &bytes, window, hop).await;
            let what = format!("{} with window {window} / hop {hop}", path.display());
            assert_eq!(
                resp.timeline, streamed,
                "{what}: timeline differs from the stream's windows"
            );
            windows += resp.timeline.len();
            if let [a, b, ..] = resp.timeline.as_slice() {
                let step = b.start_seconds - a.start_seconds;
                let expected_hop = if hop == 0.0 { 0.5 } else { hop };
                assert!((step - expected_hop).abs() < 1e-3, "{what}: windows {step} s apart");
            }
            for w in &resp.timeline {
                assert_eq!(w.scores.len(), LABELS.len());
                let sum: f32 = w.scores.iter().map(|s| s.probability).sum();
                assert!((sum - 1.0).abs() < 1e-4, "{what}: window scores sum to {sum}");
                labels.insert(w.label.clone());
            }
        }
        // TESS clips (1.5 s) are shorter than the default 2 s window; the others are not.
        assert!(windows >= 6, "window {window} / hop {hop}: only {windows} windows in all");
        // The windows are classified on their own audio, not copied from the whole clip.
        assert!(labels.len() >= 2, "every window of every file got the same label: {labels:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn classify_without_a_timeline_is_unchanged_and_options_are_checked() {
    let server = TestServer::start(false).await;
    let mut client = server.emotion().await;
    let bytes = read(&fixture("tess/YAF_bath_happy.wav"));
    let plain = client.classify(classify_request(bytes.clone(), None)).await.unwrap().into_inner();
    let with = client
        .classify(classify_request(bytes.clone(), Some((1.0, 0.25))))
        .await
        .unwrap()
        .into_inner();
    assert!(plain.timeline.is_empty(), "a timeline nobody asked for: {:?}", plain.timeline);
    assert!(!with.timeline.is_empty());
    assert_eq!((&plain.label, &plain.scores), (&with.label, &with.scores));
    assert_eq!(plain.audio_duration_seconds, with.audio_duration_seconds);

    // Audio shorter than one window: an empty timeline, not an error.
    let short = client
        .classify(classify_request(bytes.clone(), Some((10.0, 1.0))))
        .await
        .unwrap()
        .into_inner();
    assert!(short.timeline.is_empty());
    assert_eq!(short.label, plain.label);

    for (window, hop, needle) in [
        (0.05, 0.01, "window_seconds"),
        (1.0, 2.0, "hop_seconds"),
        (1.0, -1.0, "hop_seconds"),
        (f64::NAN, 0.5, "window_seconds"),
        (1e6, 1.0, "window_seconds"),
        // About 1,400 windows: over the limit, refused before any is classified.
        (0.1, 0.001, "limit of 1000"),
    ] {
        let err = client
            .classify(classify_request(bytes.clone(), Some((window, hop))))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{window}/{hop}: {err:?}");
        assert!(err.message().contains(needle), "{window}/{hop}: {}", err.message());
    }

    // Long windows at a small hop: under the window limit but over the audio limit.
    let tone: Vec<u8> =
        (0..48_000 * 20).flat_map(|i| (0.3 * (i as f32 * 0.05).sin()).to_le_bytes()).collect();
    let raw = pb::Audio {
        source: Some(pb::audio::Source::Raw(pb::RawAudio {
            encoding: pb::PcmEncoding::F32le as i32,
            sample_rate: 48_000,
            channels: 1,
            data: tone,
        })),
    };
    let request = pb::ClassifyRequest {
        audio: Some(raw),
        timeline: Some(pb::TimelineOptions { window_seconds: 5.0, hop_seconds: 0.02 }),
        ..Default::default()
    };
    let err = client.classify(request).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("limit of 3600 s"), "{}", err.message());
    server.stop().await;
}

/// One HTTP/1.1 exchange on a fresh connection: (status, lower-cased headers, body with any
/// chunked encoding removed).
async fn http(addr: SocketAddr, request: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), conn.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no end of headers");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        let mut out = Vec::new();
        let mut rest = body.as_slice();
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").into_bytes()
}

/// A gRPC-Web call over HTTP/1.1: (the message frames, the grpc-status from the trailers
/// frame or else the headers, grpc-message).
async fn grpc_web(addr: SocketAddr, path: &str, message: &[u8]) -> (Vec<Vec<u8>>, i32, String) {
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    body.extend_from_slice(message);
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
         content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let (status, headers, body) = http(addr, &request).await;
    assert_eq!(status, 200, "HTTP status of {path}");
    let mut messages = Vec::new();
    let mut trailers = String::new();
    let mut rest = body.as_slice();
    while !rest.is_empty() {
        let flag = rest[0];
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        let payload = &rest[5..5 + len];
        if flag & 0x80 != 0 {
            trailers = String::from_utf8(payload.to_vec()).unwrap();
        } else {
            messages.push(payload.to_vec());
        }
        rest = &rest[5 + len..];
    }
    let from_trailers = |name: &str| {
        trailers.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_owned())
        })
    };
    let code = from_trailers("grpc-status")
        .or_else(|| header(&headers, "grpc-status").map(str::to_owned))
        .expect("no grpc-status in the trailers or headers")
        .parse()
        .unwrap();
    let message = from_trailers("grpc-message")
        .or_else(|| header(&headers, "grpc-message").map(str::to_owned))
        .unwrap_or_default();
    (messages, code, message)
}

#[tokio::test]
async fn the_web_port_serves_the_page_and_the_services_over_grpc_web() {
    let server = TestServer::start(false).await;

    let (status, headers, body) = http(server.web, &get("/")).await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").unwrap().starts_with("text/html"));
    assert!(header(&headers, "content-security-policy").unwrap().contains("default-src 'self'"));
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("<title>Prosodia") && html.contains("app.js"), "{html}");
    let (status, headers, body) = http(server.web, &get("/app.js")).await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").unwrap().starts_with("text/javascript"));
    assert!(String::from_utf8(body).unwrap().contains("/prosodia.v1.Emotion/Classify"));
    assert_eq!(http(server.web, &get("/nope")).await.0, 404);

    // Classify through gRPC-Web answers exactly what the gRPC port answers.
    let bytes = read(&fixture("tess/OAF_back_fear.wav"));
    let request = classify_request(bytes.clone(), Some((1.0, 0.25)));
    let (messages, code, message) =
        grpc_web(server.web, "/prosodia.v1.Emotion/Classify", &request.encode_to_vec()).await;
    assert_eq!(code, 0, "{message}");
    assert_eq!(messages.len(), 1);
    let web = pb::ClassifyResponse::decode(messages[0].as_slice()).unwrap();
    let mut client = server.emotion().await;
    let grpc = client.classify(request).await.unwrap().into_inner();
    assert_eq!(
        (&web.label, &web.scores, &web.timeline),
        (&grpc.label, &grpc.scores, &grpc.timeline)
    );
    assert!(!web.timeline.is_empty());

    // Bad audio: the gRPC status and its message, as on the gRPC port.
    let bad = classify_request(read(&fixture("bad/empty.wav")), None);
    let (messages, code, message) =
        grpc_web(server.web, "/prosodia.v1.Emotion/Classify", &bad.encode_to_vec()).await;
    assert!(messages.is_empty());
    assert_eq!(code, Code::InvalidArgument as i32);
    assert!(!message.is_empty());

    // The admin check guards the Models service here too.
    let load = pb::LoadModelRequest { name: "mean-model".into(), ..Default::default() };
    let (_, code, message) =
        grpc_web(server.web, "/prosodia.v1.Models/LoadModel", &load.encode_to_vec()).await;
    assert_eq!(code, Code::PermissionDenied as i32, "{message}");

    // And the web port's RPCs are counted like the gRPC port's.
    let (status, _, body) = http(server.metrics, &get("/metrics")).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    for line in [
        "prosodia_requests_total{rpc=\"prosodia.v1.Emotion/Classify\",code=\"OK\"} 2",
        "prosodia_requests_total{rpc=\"prosodia.v1.Emotion/Classify\",code=\"INVALID_ARGUMENT\"} 1",
        "prosodia_requests_total{rpc=\"prosodia.v1.Models/LoadModel\",code=\"PERMISSION_DENIED\"} 1",
    ] {
        assert!(text.contains(line), "metrics lack {line}:\n{text}");
    }
    server.stop().await;
}

/// A program named by `var` (which must then exist), else `name` found on `PATH`; `None`
/// (after printing why) when there is none.
fn program(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{var}={} does not exist", path.display());
        return Some(path);
    }
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file());
    if found.is_none() {
        println!(
            "SKIPPED: {var} is not set and there is no {} on PATH; run \
             scripts/install-web-test.sh (scripts/test.sh does)",
            names.join(" or ")
        );
    }
    found
}

/// `clients/web` (or `PROSODIA_WEB_DIR`) with playwright-core installed; `None` (after
/// printing why) if it is not.
fn web_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PROSODIA_WEB_DIR").filter(|p| !p.is_empty()).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/web"),
        PathBuf::from,
    );
    if !dir.join("node_modules/playwright-core/package.json").is_file() {
        println!(
            "SKIPPED: playwright-core is not installed in {}; run scripts/install-web-test.sh \
             (scripts/test.sh does)",
            dir.display()
        );
        return None;
    }
    Some(dir)
}

/// Where test artifacts go: `$CARGO_TARGET_DIR/test-artifacts` (else `target/` of this
/// checkout).
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"), PathBuf::from);
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd` to its end, killing it and failing after [`BROWSER_TIMEOUT`]: (success,
/// stdout and stderr together).
fn run(mut cmd: Command) -> (bool, String) {
    let what = format!("{cmd:?}");
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(out.reopen().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} ran longer than {BROWSER_TIMEOUT:?}:\n{}",
                std::fs::read_to_string(out.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.success(), std::fs::read_to_string(out.path()).unwrap())
}

/// The checked-in `clients/web/dist` is what `clients/web/build.sh` makes of the sources
/// (esbuild's output is deterministic), so the server never embeds a stale page.
#[test]
fn the_checked_in_page_is_built_from_its_sources() {
    let Some(node) = program("PROSODIA_NODE", &["node"]) else { return };
    let Some(dir) = web_dir() else { return };
    if !dir.join("node_modules/esbuild/package.json").is_file() {
        println!("SKIPPED: esbuild is not installed in {}", dir.display());
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&node);
    cmd.arg(dir.join("build.mjs")).arg(out.path());
    let (success, output) = run(cmd);
    assert!(success, "the page did not build:\n{output}");
    for asset in &prosodia_server::web::ASSETS {
        let name = if asset.path == "/" { "index.html" } else { &asset.path[1..] };
        let built = std::fs::read(out.path().join(name)).unwrap();
        assert!(
            built == asset.body,
            "clients/web/dist/{name} is stale: run `bash clients/web/build.sh` and commit dist/"
        );
    }
}

#[cfg(feature = "tract")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_classifies_a_file_in_headless_chromium() {
    let Some(node) = program("PROSODIA_NODE", &["node"]) else { return };
    let Some(chromium) = program("PROSODIA_CHROMIUM", &["chromium", "chromium-browser"]) else {
        return;
    };
    let Some(dir) = web_dir() else { return };
    let server = TestServer::start(true).await;

    // What the page must show: the unary Classify answer with the page's default timeline.
    // Canonical paths: Chromium's fake capture device does not open a path with "..".
    let canonical = |rel: &str| std::fs::canonicalize(fixture(rel)).unwrap();
    let good = canonical("tess/OAF_back_angry.wav");
    let expected = server
        .emotion()
        .await
        .classify(classify_request(read(&good), Some((1.0, 0.25))))
        .await
        .unwrap()
        .into_inner();
    assert!(!expected.timeline.is_empty());
    let screenshot = artifacts().join("web.png");
    let _ = std::fs::remove_file(&screenshot);

    let mut cmd = Command::new(&node);
    cmd.arg(dir.join("tests/e2e.mjs"))
        .current_dir(&dir)
        .env("PROSODIA_WEB_URL", format!("http://{}/", server.web))
        .env("PROSODIA_CHROMIUM", &chromium)
        .env("PROSODIA_FIXTURE", &good)
        .env("PROSODIA_BAD_FIXTURE", canonical("bad/silence_3s.wav"))
        .env("PROSODIA_EXPECT_LABEL", &expected.label)
        .env("PROSODIA_EXPECT_WINDOWS", expected.timeline.len().to_string())
        .env("PROSODIA_EXPECT_ERROR", "INVALID_ARGUMENT")
        .env("PROSODIA_SCREENSHOT", &screenshot)
        .env("PROSODIA_MIC_FIXTURE", canonical("tess/YAF_bath_happy.wav"))
        .env("PROSODIA_SHARED", shared_dir());
    let (success, output) = tokio::task::spawn_blocking(move || run(cmd)).await.unwrap();
    // Shown with --nocapture.
    println!("{output}");
    // The failing check first: CI logs keep only the tail of a long output.
    let failed_check = output.lines().rfind(|l| !l.starts_with("ok - ")).unwrap_or("");
    assert!(success, "the browser test failed: {failed_check}\n{output}");
    for check in [
        "the label equals Classify's",
        "the timeline has Classify's",
        "the waveform chart rendered",
        "the mel chart rendered",
        "the timeline chart rendered",
        "the error names the problem",
        "a microphone recording is classified",
        "no page or console errors",
    ] {
        assert!(
            output.lines().any(|l| l.starts_with("ok - ") && l.contains(check)),
            "the browser test did not pass {check:?}:\n{output}"
        );
    }
    assert!(screenshot.is_file(), "no screenshot at {}", screenshot.display());
    println!("web page screenshot: {}", screenshot.display());
    server.stop().await;
}
