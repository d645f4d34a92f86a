//! StreamClassify end to end: the real server on 127.0.0.1:0, driven by the generated tonic
//! client, streaming the shared TESS fixtures.
//!
//! Two in-test backends serve the models: `fixed` returns constant probabilities (so these
//! tests check timing, ordering and statuses), and `mean` derives its probabilities from the
//! per-column means of the feature matrix it is given, so its label depends on the audio and
//! "the stream's final label equals Classify's label" is a real check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prosodia_dsp::FeatureConfig;
use prosodia_dsp::decode::{DecodeLimits, decode};
use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_proto::pb::stream_classify_request::Message;
use prosodia_proto::pb::stream_classify_response::Result as R;
use prosodia_server::repository::ModelManifest;
use prosodia_server::runner::{Backend, Batch, ModelRunner, RunnerError, TensorInfo};
use prosodia_server::{Config, ServerBuilder};
use prosodia_tests::{fixture, fixtures_in, read};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status};

const LABELS: [&str; 6] = ["angry", "disgust", "fear", "happy", "neutral", "sad"];
/// The probabilities the fixed runner returns (argmax: "happy").
const PROBS: [f32; 6] = [0.1, 0.05, 0.05, 0.6, 0.1, 0.1];

/// Constant probabilities.
struct FixedRunner;

/// Probabilities from the feature matrix: class `i` scores `exp(4 sin(1.7 m_i + i))`, where
/// `m_i` is the mean over frames of feature column `i`.
struct MeanRunner;

fn info() -> (Vec<TensorInfo>, Vec<TensorInfo>) {
    (
        vec![TensorInfo { name: "features".into(), dtype: "f32".into(), shape: vec![-1, -1, -1] }],
        vec![TensorInfo { name: "probabilities".into(), dtype: "f32".into(), shape: vec![-1, 6] }],
    )
}

impl ModelRunner for FixedRunner {
    fn inputs(&self) -> Vec<TensorInfo> {
        info().0
    }
    fn outputs(&self) -> Vec<TensorInfo> {
        info().1
    }
    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, RunnerError> {
        Ok(PROBS.repeat(batch.n))
    }
}

impl ModelRunner for MeanRunner {
    fn inputs(&self) -> Vec<TensorInfo> {
        info().0
    }
    fn outputs(&self) -> Vec<TensorInfo> {
        info().1
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

struct TestBackend(&'static str);

impl Backend for TestBackend {
    fn name(&self) -> &str {
        self.0
    }
    fn version(&self) -> &str {
        "test"
    }
    fn load(&self, _: &Path, _: &ModelManifest) -> Result<Box<dyn ModelRunner>, RunnerError> {
        Ok(if self.0 == "mean" { Box::new(MeanRunner) } else { Box::new(FixedRunner) })
    }
}

fn write_model(root: &Path, name: &str, backend: &str) {
    let dir = root.join(name).join("1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.onnx"), b"not a real network").unwrap();
    std::fs::write(dir.join("features.toml"), FeatureConfig::seed().to_toml().unwrap()).unwrap();
    let labels: Vec<String> = LABELS.iter().map(|l| format!("{l:?}")).collect();
    std::fs::write(
        dir.join("model.toml"),
        format!(
            "labels = [{}]\nbackend = \"{backend}\"\nextractor = \"frames\"\n\
             [streaming]\nwindow_seconds = 2.0\nhop_seconds = 0.5\n",
            labels.join(", ")
        ),
    )
    .unwrap();
}

struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<prosodia_server::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Models `fixed-model` (the default) and `mean-model`, with `tweak` applied.
    async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), "fixed-model", "fixed");
        write_model(dir.path(), "mean-model", "mean");
        let mut config = Config {
            models: Some(dir.path().to_path_buf()),
            default_model: Some("fixed-model".into()),
            workers: 2,
            ..Config::default()
        };
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = ServerBuilder::new(config)
            .backend(Arc::new(TestBackend("fixed")))
            .backend(Arc::new(TestBackend("mean")));
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Self { addr, stop: Some(stop), task: Some(task), _dir: dir }
    }

    async fn emotion(&self) -> EmotionClient<Channel> {
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr)).unwrap();
        EmotionClient::new(endpoint.connect().await.unwrap())
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            s.send(()).unwrap();
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

fn tess(name: &str) -> PathBuf {
    fixture(&format!("tess/{name}"))
}

/// The mono samples of a fixture as s16le bytes (TESS is 16-bit, so this is lossless) and
/// their rate.
fn s16le(path: &Path) -> (Vec<u8>, u32, usize) {
    let audio = decode(&read(path), &DecodeLimits::default()).unwrap();
    assert_eq!(audio.channels.len(), 1);
    let samples = &audio.channels[0];
    let bytes = samples
        .iter()
        .flat_map(|&s| ((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes())
        .collect();
    (bytes, audio.sample_rate, samples.len())
}

fn config_msg(config: pb::StreamConfig) -> pb::StreamClassifyRequest {
    pb::StreamClassifyRequest { message: Some(Message::Config(config)) }
}

fn audio_msg(bytes: &[u8]) -> pb::StreamClassifyRequest {
    pb::StreamClassifyRequest { message: Some(Message::Audio(bytes.to_vec())) }
}

fn raw_config(rate: u32, encoding: pb::PcmEncoding) -> pb::StreamConfig {
    pb::StreamConfig {
        format: Some(pb::stream_config::Format::Raw(pb::RawFormat {
            encoding: encoding as i32,
            sample_rate: rate,
            channels: 1,
        })),
        interim_results: true,
        ..Default::default()
    }
}

fn encoded_config() -> pb::StreamConfig {
    pb::StreamConfig {
        format: Some(pb::stream_config::Format::Encoded(pb::EncodedFormat {})),
        interim_results: true,
        ..Default::default()
    }
}

/// Sends `messages` as fast as possible, half-closes, and collects every answer (or the
/// status the stream ended with, whether it came before or after the response headers).
async fn run_stream(
    client: &mut EmotionClient<Channel>,
    messages: Vec<pb::StreamClassifyRequest>,
) -> Result<Vec<pb::StreamClassifyResponse>, Status> {
    let mut inbound = client.stream_classify(tokio_stream::iter(messages)).await?.into_inner();
    let mut out = Vec::new();
    while let Some(m) = inbound.message().await? {
        out.push(m);
    }
    Ok(out)
}

/// `config`, then `bytes` in chunks of `chunk` bytes.
fn chunked(config: pb::StreamConfig, bytes: &[u8], chunk: usize) -> Vec<pb::StreamClassifyRequest> {
    std::iter::once(config_msg(config)).chain(bytes.chunks(chunk).map(audio_msg)).collect()
}

struct Answers {
    windows: Vec<pb::WindowResult>,
    utterances: Vec<pb::UtteranceResult>,
    summary: pb::StreamSummary,
}

/// Splits the answers by kind, checking the summary comes last and exactly once.
fn split(answers: Vec<pb::StreamClassifyResponse>) -> Answers {
    let n = answers.len();
    let mut a =
        Answers { windows: Vec::new(), utterances: Vec::new(), summary: Default::default() };
    for (i, m) in answers.into_iter().enumerate() {
        match m.result.unwrap() {
            R::Window(w) => a.windows.push(w),
            R::Utterance(u) => a.utterances.push(u),
            R::Summary(s) => {
                assert_eq!(i, n - 1, "the summary is the last message");
                a.summary = s;
            }
        }
    }
    assert!(!a.summary.model.is_empty(), "a summary was sent");
    a
}

async fn classify(
    client: &mut EmotionClient<Channel>,
    model: &str,
    path: &Path,
) -> Result<pb::ClassifyResponse, Status> {
    let audio = pb::Audio { source: Some(pb::audio::Source::Encoded(read(path))) };
    client
        .classify(pb::ClassifyRequest {
            model: model.into(),
            audio: Some(audio),
            model_version: 0,
            timeline: None,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Windows are `window` long, start every `hop` (in whole input samples), cover the audio
/// from its start, and stop at the last one that fits.
fn check_windows(windows: &[pb::WindowResult], window: f64, hop: f64, rate: u32, frames: usize) {
    let win = (window * f64::from(rate)).round() as usize;
    let step = (hop * f64::from(rate)).round() as usize;
    let expected = (frames - win) / step + 1;
    assert_eq!(windows.len(), expected, "one window per hop that fits in {frames} frames");
    let duration = frames as f64 / f64::from(rate);
    for (k, w) in windows.iter().enumerate() {
        let start = (k * step) as f64 / f64::from(rate);
        assert!((w.start_seconds - start).abs() < 1e-9, "window {k} starts at {}", w.start_seconds);
        assert!(
            (w.end_seconds - w.start_seconds - win as f64 / f64::from(rate)).abs() < 1e-9,
            "window {k} lasts {}",
            w.end_seconds - w.start_seconds
        );
        assert!((w.end_seconds - w.start_seconds - window).abs() < 0.5 / f64::from(rate));
        assert!(w.end_seconds <= duration + 1e-9);
        assert_eq!(w.scores.len(), 6);
    }
    for pair in windows.windows(2) {
        let d = pair[1].start_seconds - pair[0].start_seconds;
        assert!((d - hop).abs() < 1.0 / f64::from(rate), "windows step by the hop: {d}");
    }
}

#[tokio::test]
async fn raw_s16_stream_in_20_ms_chunks_gives_exact_windows_and_the_classify_label() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.emotion().await;
    let path = tess("OAF_back_happy.wav");
    let (bytes, rate, frames) = s16le(&path);
    // 20 ms of samples plus one byte, so frames split across chunks.
    let chunk = (f64::from(rate) * 0.02).round() as usize * 2 + 1;
    let config = pb::StreamConfig {
        window_seconds: 1.0,
        hop_seconds: 0.25,
        ..raw_config(rate, pb::PcmEncoding::S16le)
    };
    let a = split(run_stream(&mut client, chunked(config, &bytes, chunk)).await.unwrap());
    check_windows(&a.windows, 1.0, 0.25, rate, frames);
    assert!(a.windows.iter().all(|w| w.label == "happy"));

    let unary = classify(&mut client, "", &path).await.unwrap();
    assert_eq!(a.utterances.len(), 1, "{:?}", a.utterances);
    let u = &a.utterances[0];
    assert_eq!(u.index, 0);
    assert_eq!(u.label, unary.label);
    let duration = frames as f64 / f64::from(rate);
    assert!(u.start_seconds > 0.0 && u.start_seconds < 0.5, "speech starts at {}", u.start_seconds);
    assert!(u.end_seconds > 1.0 && u.end_seconds <= duration, "speech ends at {}", u.end_seconds);
    assert_eq!(a.summary.label, unary.label);
    assert_eq!(a.summary.utterances, 1);
    assert!((a.summary.audio_seconds - duration).abs() < 1e-9);
    assert_eq!((a.summary.model.as_str(), a.summary.model_version), ("fixed-model", 1));
    server.stop().await;
}

#[tokio::test]
async fn encoded_wav_stream_gives_the_same_windows_and_label() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.emotion().await;
    let path = tess("YAF_bath_sad.wav");
    let (_, rate, frames) = s16le(&path);
    // Window and hop 0: the model's defaults from model.toml (2.0 s, 0.5 s).
    let a = split(
        run_stream(&mut client, chunked(encoded_config(), &read(&path), 4000)).await.unwrap(),
    );
    check_windows(&a.windows, 2.0, 0.5, rate, frames);
    let unary = classify(&mut client, "", &path).await.unwrap();
    assert_eq!(a.utterances.len(), 1);
    assert_eq!(a.utterances[0].label, unary.label);
    assert_eq!(a.summary.label, unary.label);
    server.stop().await;
}

#[tokio::test]
async fn final_label_follows_the_audio_exactly_as_classify_does() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.emotion().await;
    let mut labels = std::collections::BTreeSet::new();
    for name in [
        "OAF_back_angry.wav",
        "OAF_back_fear.wav",
        "OAF_back_neutral.wav",
        "YAF_bath_happy.wav",
        "YAF_bath_ps.wav",
        "YAF_bath_disgust.wav",
    ] {
        let path = tess(name);
        let unary = classify(&mut client, "mean-model", &path).await.unwrap();
        labels.insert(unary.label.clone());
        let (bytes, rate, _) = s16le(&path);
        let config = pb::StreamConfig {
            model: "mean-model".into(),
            interim_results: false,
            ..raw_config(rate, pb::PcmEncoding::S16le)
        };
        let chunk = (f64::from(rate) * 0.02).round() as usize * 2;
        let a = split(run_stream(&mut client, chunked(config, &bytes, chunk)).await.unwrap());
        assert!(a.windows.is_empty(), "interim results are off");
        assert_eq!(a.utterances.len(), 1, "{name}");
        assert_eq!(a.utterances[0].label, unary.label, "{name}");
        assert_eq!(a.summary.label, unary.label, "{name}");
        for (s, u) in a.utterances[0].scores.iter().zip(&unary.scores) {
            assert_eq!(s.label, u.label);
            assert!((s.probability - u.probability).abs() < 1e-6, "{name}: {s:?} vs {u:?}");
        }
    }
    // Otherwise the label comparison above would prove nothing.
    assert!(labels.len() >= 2, "the mean backend gives one label for every file: {labels:?}");
    server.stop().await;
}

#[tokio::test]
async fn two_utterances_separated_by_silence_are_reported_in_order() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.emotion().await;
    let (mut bytes, rate, first) = s16le(&tess("OAF_back_angry.wav"));
    let gap = rate as usize; // one second of digital silence
    bytes.extend(std::iter::repeat_n(0u8, gap * 2));
    let (second, _, n2) = s16le(&tess("YAF_bath_fear.wav"));
    bytes.extend(second);
    let config =
        pb::StreamConfig { model: "mean-model".into(), ..raw_config(rate, pb::PcmEncoding::S16le) };
    let a = split(run_stream(&mut client, chunked(config, &bytes, 1000)).await.unwrap());
    assert_eq!(a.utterances.len(), 2, "{:?}", a.utterances);
    let secs = |n: usize| n as f64 / f64::from(rate);
    let (u0, u1) = (&a.utterances[0], &a.utterances[1]);
    assert_eq!((u0.index, u1.index), (0, 1));
    assert!(u0.end_seconds <= secs(first), "first ends in the first clip: {}", u0.end_seconds);
    assert!(
        u1.start_seconds >= secs(first + gap),
        "second starts after the gap: {}",
        u1.start_seconds
    );
    assert!(u1.end_seconds <= secs(first + gap + n2));
    assert_eq!(a.summary.utterances, 2);
    // The summary is the duration-weighted mean of the two.
    let w0 = u0.end_seconds - u0.start_seconds;
    let w1 = u1.end_seconds - u1.start_seconds;
    for i in 0..6 {
        let expected = (w0 * f64::from(u0.scores[i].probability)
            + w1 * f64::from(u1.scores[i].probability))
            / (w0 + w1);
        assert!((f64::from(a.summary.scores[i].probability) - expected).abs() < 1e-5);
    }
    server.stop().await;
}

#[tokio::test]
async fn every_bad_fixture_ends_the_stream_with_the_classify_status_and_the_server_keeps_serving() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.emotion().await;
    let bad = fixtures_in("bad");
    assert_eq!(bad.len(), 10, "expected the 10 bad fixtures");
    for path in &bad {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let unary = classify(&mut client, "", path).await.unwrap_err();
        let err = run_stream(&mut client, chunked(encoded_config(), &read(path), 1000))
            .await
            .expect_err(&name);
        assert_ne!(err.code(), Code::Ok);
        assert_eq!(err.code(), unary.code(), "{name}: stream {err:?} vs classify {unary:?}");
        let expected = match name.as_str() {
            "silence_3s.wav" => "silent",
            "empty.wav" => "empty",
            "tiny_5ms.wav" => "too short",
            "nan_inf_f32.wav" => "finite",
            "text.wav" => "text",
            "random_bytes.wav" => "unrecognised",
            _ => "",
        };
        assert!(
            err.message().to_lowercase().contains(expected) && err.message().len() > 20,
            "{name}: the status does not name the problem: {}",
            err.message()
        );
        // The server still answers a good stream.
        let good = tess("OAF_back_angry.wav");
        let a = split(
            run_stream(&mut client, chunked(encoded_config(), &read(&good), 8192)).await.unwrap(),
        );
        assert_eq!(a.summary.utterances, 1, "after {name}");
    }
    server.stop().await;
}

#[tokio::test]
async fn raw_stream_errors_name_the_problem() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.emotion().await;
    // A NaN sample in an f32 stream.
    let mut samples = vec![0.1f32; 4000];
    samples[1234] = f32::NAN;
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let config = raw_config(16_000, pb::PcmEncoding::F32le);
    let err = run_stream(&mut client, chunked(config.clone(), &bytes, 999)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("NaN") && err.message().contains("1234"), "{}", err.message());
    // A stream ending mid-frame.
    let err =
        run_stream(&mut client, chunked(config.clone(), &[0u8; 4001], 1000)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("mid-frame"), "{}", err.message());
    // No encoding.
    let err = run_stream(
        &mut client,
        chunked(raw_config(16_000, pb::PcmEncoding::Unspecified), &[0; 8], 8),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("encoding"), "{}", err.message());
    server.stop().await;
}

#[tokio::test]
async fn protocol_errors_are_invalid_argument_and_an_unknown_model_is_not_found() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.emotion().await;
    let cfg = || raw_config(16_000, pb::PcmEncoding::S16le);
    let cases: Vec<(&str, Vec<pb::StreamClassifyRequest>, Code, &str)> = vec![
        (
            "audio first",
            vec![audio_msg(&[0; 32])],
            Code::InvalidArgument,
            "first message must be a StreamConfig",
        ),
        ("nothing at all", vec![], Code::InvalidArgument, "first message must be a StreamConfig"),
        (
            "two configs",
            vec![config_msg(cfg()), audio_msg(&[0; 32]), config_msg(cfg())],
            Code::InvalidArgument,
            "second StreamConfig",
        ),
        (
            "hop > window",
            vec![config_msg(pb::StreamConfig { window_seconds: 1.0, hop_seconds: 1.5, ..cfg() })],
            Code::InvalidArgument,
            "hop_seconds",
        ),
        (
            "negative window",
            vec![config_msg(pb::StreamConfig { window_seconds: -1.0, ..cfg() })],
            Code::InvalidArgument,
            "window_seconds",
        ),
        (
            "no format",
            vec![config_msg(pb::StreamConfig::default())],
            Code::InvalidArgument,
            "format",
        ),
        (
            "unknown model",
            vec![config_msg(pb::StreamConfig { model: "nope".into(), ..cfg() })],
            Code::NotFound,
            "nope",
        ),
        ("config only", vec![config_msg(cfg())], Code::InvalidArgument, "empty"),
    ];
    for (what, messages, code, text) in cases {
        let err = run_stream(&mut client, messages).await.expect_err(what);
        assert_eq!(err.code(), code, "{what}: {err:?}");
        assert!(err.message().contains(text), "{what}: {}", err.message());
    }
    server.stop().await;
}

/// Opens a stream whose request side stays open; returns the sender and the answers.
async fn open(
    client: &mut EmotionClient<Channel>,
    config: pb::StreamConfig,
) -> Result<
    (mpsc::Sender<pb::StreamClassifyRequest>, tonic::Streaming<pb::StreamClassifyResponse>),
    Status,
> {
    let (tx, rx) = mpsc::channel(16);
    tx.send(config_msg(config)).await.unwrap();
    let inbound = client.stream_classify(ReceiverStream::new(rx)).await?.into_inner();
    Ok((tx, inbound))
}

#[tokio::test]
async fn streams_over_the_concurrency_limit_are_resource_exhausted_until_one_ends() {
    let server = TestServer::start(|c| c.max_streams = 1).await;
    let mut client = server.emotion().await;
    let (bytes, rate, _) = s16le(&tess("OAF_back_angry.wav"));
    let cfg = raw_config(rate, pb::PcmEncoding::S16le);
    let (tx, mut first) = open(&mut client, cfg.clone()).await.unwrap();
    let err = match open(&mut client, cfg.clone()).await {
        Ok((_tx, mut s)) => s.message().await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("1 streams"), "{}", err.message());
    // The first stream is unaffected; once it ends, its slot is free again.
    tx.send(audio_msg(&bytes)).await.unwrap();
    drop(tx);
    let mut answers = Vec::new();
    while let Some(m) = first.message().await.unwrap() {
        answers.push(m);
    }
    assert_eq!(split(answers).summary.utterances, 1);
    let a = split(run_stream(&mut client, chunked(cfg, &bytes, 4096)).await.unwrap());
    assert_eq!(a.summary.utterances, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_goes_away_frees_its_stream() {
    let server = TestServer::start(|c| c.max_streams = 1).await;
    let mut client = server.emotion().await;
    let (bytes, rate, _) = s16le(&tess("OAF_back_angry.wav"));
    let cfg = raw_config(rate, pb::PcmEncoding::S16le);
    let (tx, inbound) = open(&mut client, cfg.clone()).await.unwrap();
    tx.send(audio_msg(&bytes[..20_000])).await.unwrap();
    // Disconnect without half-closing: drop both directions.
    drop(inbound);
    drop(tx);
    let mut freed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(a) = run_stream(&mut client, chunked(cfg.clone(), &bytes, 4096)).await {
            assert_eq!(split(a).summary.utterances, 1);
            freed = true;
            break;
        }
    }
    assert!(freed, "the abandoned stream still holds the only slot");
    server.stop().await;
}

#[tokio::test]
async fn an_idle_stream_ends_with_deadline_exceeded() {
    let server = TestServer::start(|c| c.stream_idle_timeout_seconds = 0.3).await;
    let mut client = server.emotion().await;
    let (_tx, mut inbound) =
        open(&mut client, raw_config(16_000, pb::PcmEncoding::S16le)).await.unwrap();
    let started = std::time::Instant::now();
    let err = inbound.message().await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("no message"), "{}", err.message());
    assert!(started.elapsed() < Duration::from_secs(5));
    server.stop().await;
}

#[tokio::test]
async fn a_stream_past_the_length_limit_is_resource_exhausted() {
    let server = TestServer::start(|c| c.max_stream_seconds = 1.0).await;
    let mut client = server.emotion().await;
    let (bytes, rate, _) = s16le(&tess("OAF_back_sad.wav"));
    let err =
        run_stream(&mut client, chunked(raw_config(rate, pb::PcmEncoding::S16le), &bytes, 4096))
            .await
            .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let path = tess("OAF_back_sad.wav");
    let err =
        run_stream(&mut client, chunked(encoded_config(), &read(&path), 4096)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_quiet_recording_looped_is_split_into_one_utterance_per_repeat() {
    // RAVDESS speech peaks near -28 dBFS and mostly sits between -40 and -60 dBFS: an
    // absolute -40 dBFS detector heard nothing, kept the whole stream for the fallback and
    // classified it in one piece at the end.
    let server = TestServer::start(|_| {}).await;
    let mut client = server.emotion().await;
    let (clip, rate, frames) = s16le(&fixture("ravdess/03-01-01-01-01-01-01.wav"));
    let repeats = 3;
    let bytes = clip.repeat(repeats);
    let config = pb::StreamConfig {
        model: "mean-model".into(),
        interim_results: false,
        ..raw_config(rate, pb::PcmEncoding::S16le)
    };
    let a = split(run_stream(&mut client, chunked(config, &bytes, 1920)).await.unwrap());
    assert_eq!(a.utterances.len(), repeats, "{:?}", a.utterances);
    let clip_seconds = frames as f64 / f64::from(rate);
    for (k, u) in a.utterances.iter().enumerate() {
        let (from, to) = (k as f64 * clip_seconds, (k + 1) as f64 * clip_seconds);
        assert!(
            u.start_seconds > from && u.end_seconds < to,
            "utterance {k} ({} to {} s) lies inside repeat {k} ({from} to {to} s)",
            u.start_seconds,
            u.end_seconds
        );
    }
    assert_eq!(a.summary.utterances as usize, repeats);
    server.stop().await;
}
