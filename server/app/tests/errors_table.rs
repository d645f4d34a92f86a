//! The bad-input table of `docs/errors.md`, checked against the real server.
//!
//! The test reads the table from the document itself, builds the request each row names (by
//! its case id), sends it to a real server on 127.0.0.1:0 and asserts the row's gRPC code and
//! message. So the document cannot drift from the server: a changed message fails here with
//! the row as it should now read. After every case a good Classify must still succeed. At the
//! end every row must have run, every case this file knows must have a row, and every file in
//! `shared/fixtures/bad/` must have a unary and a streamed row.
//!
//! Models are served by an in-test backend with fixed probabilities: the statuses under test
//! come from decoding, validation and the stream protocol, not from a trained network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prosodia_dsp::FeatureConfig;
use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_proto::pb::stream_classify_request::Message;
use prosodia_server::repository::ModelManifest;
use prosodia_server::runner::{Backend, Batch, ModelRunner, RunnerError, TensorInfo};
use prosodia_server::{Config, ServerBuilder};
use prosodia_tests::{fixture, fixtures_in, read};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// The limits the table's server runs with (stated in docs/errors.md): small, so oversize
/// cases cost little, yet above every fixture (the largest is 96,044 bytes, the longest
/// 4.1 s as its header claims).
const MAX_MESSAGE_BYTES: usize = 131_072;
const MAX_AUDIO_SECONDS: f64 = 5.0;
const MAX_STREAM_SECONDS: f64 = 6.0;
const MODEL: &str = "test-model";

const LABELS: [&str; 6] = ["angry", "disgust", "fear", "happy", "neutral", "sad"];
/// Argmax "happy": what the good Classify between cases must answer.
const PROBS: [f32; 6] = [0.1, 0.05, 0.05, 0.6, 0.1, 0.1];

struct FixedRunner;

impl ModelRunner for FixedRunner {
    fn inputs(&self) -> Vec<TensorInfo> {
        vec![TensorInfo { name: "features".into(), dtype: "f32".into(), shape: vec![-1, -1, -1] }]
    }
    fn outputs(&self) -> Vec<TensorInfo> {
        vec![TensorInfo { name: "probabilities".into(), dtype: "f32".into(), shape: vec![-1, 6] }]
    }
    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, RunnerError> {
        Ok(PROBS.repeat(batch.n))
    }
}

struct FixedBackend;

impl Backend for FixedBackend {
    fn name(&self) -> &str {
        "fixed"
    }
    fn version(&self) -> &str {
        "test"
    }
    fn load(&self, _: &Path, _: &ModelManifest) -> Result<Box<dyn ModelRunner>, RunnerError> {
        Ok(Box::new(FixedRunner))
    }
}

struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<prosodia_server::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// One model, `test-model` version 1 (the default), with the table's limits.
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join(MODEL).join("1");
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(model.join("model.onnx"), b"not a real network").unwrap();
        std::fs::write(model.join("features.toml"), FeatureConfig::seed().to_toml().unwrap())
            .unwrap();
        let labels: Vec<String> = LABELS.iter().map(|l| format!("{l:?}")).collect();
        std::fs::write(
            model.join("model.toml"),
            format!(
                "labels = [{}]\nbackend = \"fixed\"\nextractor = \"frames\"\n\
                 [streaming]\nwindow_seconds = 2.0\nhop_seconds = 0.5\n",
                labels.join(", ")
            ),
        )
        .unwrap();
        let config = Config {
            models: Some(dir.path().to_path_buf()),
            default_model: Some(MODEL.into()),
            workers: 2,
            max_message_bytes: MAX_MESSAGE_BYTES,
            max_audio_seconds: MAX_AUDIO_SECONDS,
            max_stream_seconds: MAX_STREAM_SECONDS,
            ..Config::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = ServerBuilder::new(config).backend(Arc::new(FixedBackend));
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

// ---------------------------------------------------------------------------------------
// The table.

/// One row of the table.
#[derive(Debug, Clone)]
struct Row {
    line: usize,
    id: String,
    input: String,
    rpc: String,
    code: String,
    matching: String,
    message: String,
}

impl Row {
    /// The row as it should read for `status` (printed when the server disagrees).
    fn corrected(&self, status: &Status) -> String {
        format!(
            "| `{}` | {} | {} | {} | exact | {} |",
            self.id,
            self.input,
            self.rpc,
            code_name(status.code()),
            code_span(status.message())
        )
    }
}

fn doc_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors.md")
}

/// Splits a table line into its cells (`\|` is a literal bar, as in GitHub markdown).
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cell).trim().to_owned()),
            _ => cell.push(c),
        }
    }
    out.push(cell.trim().to_owned());
    out
}

/// The text of a markdown code span: `` `x` `` or ``` `` x`y `` ``` (CommonMark: one space
/// of padding on each side is stripped when both are present).
fn unspan(cell: &str) -> Option<String> {
    let ticks = cell.chars().take_while(|&c| c == '`').count();
    if ticks == 0 || cell.len() < 2 * ticks {
        return None;
    }
    let fence = &cell[..ticks];
    let inner = cell[ticks..].strip_suffix(fence)?;
    if inner.ends_with('`') {
        return None;
    }
    let stripped = inner.strip_prefix(' ').and_then(|s| s.strip_suffix(' '));
    Some(match stripped {
        Some(s) if !s.trim().is_empty() => s.to_owned(),
        _ => inner.to_owned(),
    })
}

/// `text` as a markdown code span, fenced with enough backticks.
fn code_span(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    if longest > 0 { format!("{fence} {text} {fence}") } else { format!("`{text}`") }
}

/// The rows of the one table whose header starts with `| case |`.
fn parse_table(text: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut in_table = false;
    let mut tables = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if !t.starts_with('|') {
            in_table = false;
            continue;
        }
        let c = cells(t);
        if c.first().map(String::as_str) == Some("case") {
            assert_eq!(
                c,
                ["case", "input", "RPC", "code", "match", "message"],
                "docs/errors.md line {}: the table's columns",
                i + 1
            );
            in_table = true;
            tables += 1;
            continue;
        }
        if !in_table || c.iter().all(|x| x.chars().all(|ch| ch == '-' || ch == ':')) {
            continue;
        }
        assert_eq!(c.len(), 6, "docs/errors.md line {}: six cells expected: {line}", i + 1);
        let id = unspan(&c[0]).unwrap_or_else(|| c[0].clone());
        rows.push(Row {
            line: i + 1,
            id,
            input: c[1].clone(),
            rpc: c[2].clone(),
            code: c[3].clone(),
            matching: c[4].clone(),
            message: c[5].clone(),
        });
    }
    assert_eq!(tables, 1, "docs/errors.md must hold exactly one `| case | ...` table");
    rows
}

fn code_name(code: Code) -> &'static str {
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

/// Why `status` does not match `row`, if it does not.
fn mismatch(row: &Row, status: &Status) -> Option<String> {
    let want_code = row.code.trim_matches('`');
    if code_name(status.code()) != want_code {
        return Some(format!("code {} instead of {want_code}", code_name(status.code())));
    }
    let Some(want) = unspan(&row.message) else {
        return Some("the message cell is not a code span".into());
    };
    let got = status.message();
    match row.matching.as_str() {
        "exact" if got == want => None,
        "prefix" if got.starts_with(&want) => None,
        "exact" | "prefix" => Some(format!("message {got:?}")),
        other => Some(format!("match must be `exact` or `prefix`, not {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------
// The cases.

/// How a case is sent.
enum Call {
    Classify(pb::ClassifyRequest),
    Extract(pb::ExtractFeaturesRequest),
    /// These messages, then half-close.
    Stream(Vec<pb::StreamClassifyRequest>),
    /// These messages without half-closing; after the status arrives, keep sending audio.
    StreamKeepSending(Vec<pb::StreamClassifyRequest>),
}

impl Call {
    fn rpc(&self) -> &'static str {
        match self {
            Call::Classify(_) => "Classify",
            Call::Extract(_) => "ExtractFeatures",
            Call::Stream(_) | Call::StreamKeepSending(_) => "StreamClassify",
        }
    }
}

/// Every case id that is not a fixture's (`<file>/<variant>`); each must have a row.
const CASES: &[&str] = &[
    "missing-audio/classify",
    "missing-audio/extract",
    "oversize-message/classify",
    "oversize-message/extract",
    "oversize-message/stream",
    "oversize-encoded-stream/stream",
    "too-long-wav/classify",
    "too-long-raw/classify",
    "too-long-raw/stream",
    "too-long-wav/stream",
    "raw-rate-0/classify",
    "raw-rate-0/stream",
    "raw-rate-absurd/classify",
    "raw-rate-absurd/stream",
    "raw-channels-0/classify",
    "raw-channels-0/stream",
    "raw-channels-17/classify",
    "raw-channels-huge/classify",
    "raw-encoding-unset/classify",
    "raw-encoding-unset/stream",
    "raw-encoding-unknown/classify",
    "raw-s16-odd-bytes/classify",
    "raw-s16-odd-bytes/stream",
    "raw-f32-partial-frame/classify",
    "raw-f32-partial-frame/stream",
    "raw-nan/classify",
    "raw-nan/stream",
    "raw-empty/classify",
    "raw-empty/stream",
    "encoded-empty/stream",
    "unknown-model/classify",
    "unknown-model/extract",
    "unknown-model/stream",
    "unknown-version/classify",
    "unknown-version/stream",
    "unknown-preset/extract",
    "model-and-preset/extract",
    "first-message-audio/stream",
    "no-messages/stream",
    "empty-message/stream",
    "two-configs/stream",
    "format-unset/stream",
    "window-too-short/stream",
    "window-nan/stream",
    "window-too-long/stream",
    "hop-negative/stream",
    "hop-over-window/stream",
    "send-after-error/stream",
];

/// Variants of a bad fixture: `<file>/<variant>`.
const FIXTURE_VARIANTS: &[&str] = &["classify", "extract", "stream", "classify-raw", "stream-raw"];

fn encoded(bytes: Vec<u8>) -> Option<pb::Audio> {
    Some(pb::Audio { source: Some(pb::audio::Source::Encoded(bytes)) })
}

fn raw(encoding: pb::PcmEncoding, sample_rate: u32, channels: u32, data: Vec<u8>) -> pb::Audio {
    pb::Audio {
        source: Some(pb::audio::Source::Raw(pb::RawAudio {
            encoding: encoding.into(),
            sample_rate,
            channels,
            data,
        })),
    }
}

fn classify(audio: pb::Audio) -> Call {
    Call::Classify(pb::ClassifyRequest { audio: Some(audio), ..Default::default() })
}

fn config_msg(config: pb::StreamConfig) -> pb::StreamClassifyRequest {
    pb::StreamClassifyRequest { message: Some(Message::Config(config)) }
}

fn audio_msg(bytes: &[u8]) -> pb::StreamClassifyRequest {
    pb::StreamClassifyRequest { message: Some(Message::Audio(bytes.to_vec())) }
}

fn raw_config(encoding: pb::PcmEncoding, sample_rate: u32, channels: u32) -> pb::StreamConfig {
    pb::StreamConfig {
        format: Some(pb::stream_config::Format::Raw(pb::RawFormat {
            encoding: encoding.into(),
            sample_rate,
            channels,
        })),
        ..Default::default()
    }
}

fn encoded_config() -> pb::StreamConfig {
    pb::StreamConfig {
        format: Some(pb::stream_config::Format::Encoded(pb::EncodedFormat {})),
        ..Default::default()
    }
}

/// `config`, then `bytes` in `chunk`-byte audio messages, then half-close.
fn stream(config: pb::StreamConfig, bytes: &[u8], chunk: usize) -> Call {
    Call::Stream(
        std::iter::once(config_msg(config)).chain(bytes.chunks(chunk).map(audio_msg)).collect(),
    )
}

fn s16le(samples: impl IntoIterator<Item = i16>) -> Vec<u8> {
    samples.into_iter().flat_map(i16::to_le_bytes).collect()
}

fn f32le(samples: &[f32]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// A quiet 440 Hz tone (about -12 dBFS) of `seconds` at `rate`, as 16-bit samples.
fn tone(seconds: f64, rate: u32) -> Vec<i16> {
    let n = (seconds * f64::from(rate)).round() as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
        })
        .collect()
}

/// A 16-bit mono PCM WAV file.
fn wav_s16(rate: u32, samples: &[i16]) -> Vec<u8> {
    let data = s16le(samples.iter().copied());
    let mut out = Vec::with_capacity(44 + data.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// The format and data bytes of a WAV fixture, for sending its samples as raw PCM: walks the
/// RIFF chunks (the fixtures' headers are plain; only 16-bit integer and 32-bit float occur).
fn wav_as_raw(bytes: &[u8]) -> Option<(pb::PcmEncoding, u32, u32, Vec<u8>)> {
    let mut at = 12;
    let mut format = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        match id {
            b"fmt " if body.len() >= 16 => {
                let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                let tag = u16_at(0);
                let channels = u32::from(u16_at(2));
                let rate = u32::from_le_bytes(body[4..8].try_into().ok()?);
                let encoding = match (tag, u16_at(14)) {
                    (1, 16) => pb::PcmEncoding::S16le,
                    (3, 32) => pb::PcmEncoding::F32le,
                    _ => return None,
                };
                format = Some((encoding, rate, channels));
            }
            b"data" => {
                let (encoding, rate, channels) = format?;
                return Some((encoding, rate, channels, body.to_vec()));
            }
            _ => {}
        }
        at += 8 + len + len % 2;
    }
    None
}

/// The request of a fixture case `<file>/<variant>`.
fn fixture_case(file: &str, variant: &str) -> Option<Call> {
    let path = fixture(&format!("bad/{file}"));
    if !path.is_file() {
        return None;
    }
    let bytes = read(&path);
    Some(match variant {
        "classify" => {
            Call::Classify(pb::ClassifyRequest { audio: encoded(bytes), ..Default::default() })
        }
        "extract" => Call::Extract(pb::ExtractFeaturesRequest {
            audio: encoded(bytes),
            ..Default::default()
        }),
        "stream" => stream(encoded_config(), &bytes, 1000),
        "classify-raw" => {
            let (encoding, rate, channels, data) = wav_as_raw(&bytes)?;
            classify(raw(encoding, rate, channels, data))
        }
        "stream-raw" => {
            let (encoding, rate, channels, data) = wav_as_raw(&bytes)?;
            stream(raw_config(encoding, rate, channels), &data, 1000)
        }
        _ => return None,
    })
}

/// The request of case `id`, or `None` for an id this file does not know.
fn build(id: &str) -> Option<Call> {
    use pb::PcmEncoding::{F32le, S16le};
    if let Some((file, variant)) = id.split_once('/')
        && file.ends_with(".wav")
    {
        return fixture_case(file, variant);
    }
    if !CASES.contains(&id) {
        return None;
    }
    let s16 = |rate: u32, channels: u32, data: Vec<u8>| raw(S16le, rate, channels, data);
    let speech = || s16le(tone(1.0, 16_000));
    let raw16k = || raw_config(S16le, 16_000, 1);
    let nan_samples = || {
        let mut samples = vec![0.1f32; 4000];
        samples[1234] = f32::NAN;
        f32le(&samples)
    };
    // Just over the message limit once framed as a request.
    let oversize = || vec![0u8; MAX_MESSAGE_BYTES + 1];
    let good_wav = || read(&fixture("tess/OAF_back_happy.wav"));
    Some(match id {
        "missing-audio/classify" => Call::Classify(pb::ClassifyRequest::default()),
        "missing-audio/extract" => Call::Extract(pb::ExtractFeaturesRequest::default()),
        "oversize-message/classify" => {
            classify(pb::Audio { source: Some(pb::audio::Source::Encoded(oversize())) })
        }
        "oversize-message/extract" => Call::Extract(pb::ExtractFeaturesRequest {
            audio: encoded(oversize()),
            ..Default::default()
        }),
        "oversize-message/stream" => {
            Call::Stream(vec![config_msg(encoded_config()), audio_msg(&oversize())])
        }
        "oversize-encoded-stream/stream" => {
            let mut bytes = good_wav();
            bytes.extend(good_wav());
            stream(encoded_config(), &bytes, 16_384)
        }
        "too-long-wav/classify" => classify(pb::Audio {
            source: Some(pb::audio::Source::Encoded(wav_s16(8_000, &tone(6.0, 8_000)))),
        }),
        "too-long-raw/classify" => classify(s16(8_000, 1, s16le(tone(6.0, 8_000)))),
        "too-long-raw/stream" => {
            stream(raw_config(S16le, 8_000, 1), &s16le(tone(7.0, 8_000)), 16_000)
        }
        "too-long-wav/stream" => {
            stream(encoded_config(), &wav_s16(8_000, &tone(7.0, 8_000)), 16_384)
        }
        "raw-rate-0/classify" => classify(s16(0, 1, speech())),
        "raw-rate-0/stream" => stream(raw_config(S16le, 0, 1), &speech(), 3200),
        "raw-rate-absurd/classify" => classify(s16(1_000_000, 1, speech())),
        "raw-rate-absurd/stream" => stream(raw_config(S16le, 1_000_000, 1), &speech(), 3200),
        "raw-channels-0/classify" => classify(s16(16_000, 0, speech())),
        "raw-channels-0/stream" => stream(raw_config(S16le, 16_000, 0), &speech(), 3200),
        "raw-channels-17/classify" => classify(s16(16_000, 17, vec![0; 17 * 2 * 1600])),
        "raw-channels-huge/classify" => classify(s16(16_000, 70_000, speech())),
        "raw-encoding-unset/classify" => {
            classify(raw(pb::PcmEncoding::Unspecified, 16_000, 1, speech()))
        }
        "raw-encoding-unset/stream" => {
            stream(raw_config(pb::PcmEncoding::Unspecified, 16_000, 1), &speech(), 3200)
        }
        "raw-encoding-unknown/classify" => {
            let mut audio = s16(16_000, 1, speech());
            if let Some(pb::audio::Source::Raw(r)) = audio.source.as_mut() {
                r.encoding = 7;
            }
            classify(audio)
        }
        "raw-s16-odd-bytes/classify" => classify(s16(16_000, 1, vec![0; 4001])),
        "raw-s16-odd-bytes/stream" => stream(raw16k(), &[0; 4001], 1000),
        "raw-f32-partial-frame/classify" => classify(raw(F32le, 16_000, 2, vec![0; 4004])),
        "raw-f32-partial-frame/stream" => stream(raw_config(F32le, 16_000, 2), &[0; 4004], 1000),
        "raw-nan/classify" => classify(raw(F32le, 16_000, 1, nan_samples())),
        "raw-nan/stream" => stream(raw_config(F32le, 16_000, 1), &nan_samples(), 999),
        "raw-empty/classify" => classify(s16(16_000, 1, Vec::new())),
        "raw-empty/stream" => stream(raw16k(), &[], 1),
        "encoded-empty/stream" => stream(encoded_config(), &[], 1),
        "unknown-model/classify" => Call::Classify(pb::ClassifyRequest {
            model: "nope".into(),
            audio: encoded(good_wav()),
            model_version: 0,
            timeline: None,
        }),
        "unknown-model/extract" => Call::Extract(pb::ExtractFeaturesRequest {
            model: "nope".into(),
            audio: encoded(good_wav()),
            ..Default::default()
        }),
        "unknown-model/stream" => {
            stream(pb::StreamConfig { model: "nope".into(), ..raw16k() }, &speech(), 3200)
        }
        "unknown-version/classify" => Call::Classify(pb::ClassifyRequest {
            model: MODEL.into(),
            audio: encoded(good_wav()),
            model_version: 9,
            timeline: None,
        }),
        "unknown-version/stream" => stream(
            pb::StreamConfig { model: MODEL.into(), model_version: 9, ..raw16k() },
            &speech(),
            3200,
        ),
        "unknown-preset/extract" => Call::Extract(pb::ExtractFeaturesRequest {
            preset: "fast".into(),
            audio: encoded(good_wav()),
            ..Default::default()
        }),
        "model-and-preset/extract" => Call::Extract(pb::ExtractFeaturesRequest {
            model: MODEL.into(),
            preset: "speech".into(),
            audio: encoded(good_wav()),
            ..Default::default()
        }),
        "first-message-audio/stream" => Call::Stream(vec![audio_msg(&speech())]),
        "no-messages/stream" => Call::Stream(Vec::new()),
        "empty-message/stream" => {
            Call::Stream(vec![config_msg(raw16k()), pb::StreamClassifyRequest { message: None }])
        }
        "two-configs/stream" => {
            Call::Stream(vec![config_msg(raw16k()), audio_msg(&speech()), config_msg(raw16k())])
        }
        "format-unset/stream" => stream(pb::StreamConfig::default(), &speech(), 3200),
        "window-too-short/stream" => {
            stream(pb::StreamConfig { window_seconds: 0.05, ..raw16k() }, &speech(), 3200)
        }
        "window-nan/stream" => {
            stream(pb::StreamConfig { window_seconds: f64::NAN, ..raw16k() }, &speech(), 3200)
        }
        "window-too-long/stream" => {
            stream(pb::StreamConfig { window_seconds: 6.0, ..raw16k() }, &speech(), 3200)
        }
        "hop-negative/stream" => stream(
            pb::StreamConfig { window_seconds: 1.0, hop_seconds: -0.5, ..raw16k() },
            &speech(),
            3200,
        ),
        "hop-over-window/stream" => stream(
            pb::StreamConfig { window_seconds: 1.0, hop_seconds: 1.5, ..raw16k() },
            &speech(),
            3200,
        ),
        "send-after-error/stream" => Call::StreamKeepSending(vec![
            config_msg(raw_config(F32le, 16_000, 1)),
            audio_msg(&nan_samples()),
        ]),
        _ => return None,
    })
}

/// What sending a case produced: the final status (`Ok` means it was accepted), and for a
/// client that keeps sending after the error, how that went.
struct Outcome {
    result: Result<(), Status>,
    /// Responses received before the status.
    responses: usize,
    /// For `StreamKeepSending`: whether anything but end-of-stream followed the status.
    after_status: Option<String>,
}

async fn send(client: &mut EmotionClient<Channel>, call: Call) -> Outcome {
    let plain = |result: Result<(), Status>| Outcome { result, responses: 0, after_status: None };
    match call {
        Call::Classify(r) => plain(client.classify(r).await.map(|_| ())),
        Call::Extract(r) => plain(client.extract_features(r).await.map(|_| ())),
        Call::Stream(messages) => {
            let mut responses = 0;
            let result = async {
                let mut inbound =
                    client.stream_classify(tokio_stream::iter(messages)).await?.into_inner();
                while inbound.message().await?.is_some() {
                    responses += 1;
                }
                Ok(())
            }
            .await;
            Outcome { result, responses, after_status: None }
        }
        Call::StreamKeepSending(messages) => {
            let (tx, rx) = mpsc::channel(4);
            for m in messages {
                tx.send(m).await.unwrap();
            }
            let mut responses = 0;
            let mut inbound = match client.stream_classify(ReceiverStream::new(rx)).await {
                Ok(r) => r.into_inner(),
                Err(e) => return plain(Err(e)),
            };
            let status = loop {
                match inbound.message().await {
                    Ok(Some(_)) => responses += 1,
                    Ok(None) => return plain(Ok(())),
                    Err(e) => break e,
                }
            };
            // The server has ended the stream; a client that has not noticed keeps sending.
            // Nothing it sends may be answered. Sending may fail (the request side was reset)
            // or be swallowed; a bounded wait keeps a full buffer from hanging the test.
            let chunk = audio_msg(&f32le(&[0.1; 1600]));
            let mut sent = 0;
            for _ in 0..20 {
                match tokio::time::timeout(Duration::from_millis(100), tx.send(chunk.clone())).await
                {
                    Ok(Ok(())) => sent += 1,
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            drop(tx);
            let after = match tokio::time::timeout(Duration::from_secs(5), inbound.message()).await
            {
                Ok(Ok(None)) => None,
                Ok(Ok(Some(m))) => Some(format!("a response after the status: {m:?}")),
                Ok(Err(e)) => Some(format!("a second status: {e:?}")),
                Err(_) => Some("the response stream did not end".to_owned()),
            };
            println!(
                "send-after-error: {sent} chunks accepted by the client library after the status"
            );
            Outcome { result: Err(status), responses, after_status: after }
        }
    }
}

/// A good Classify on a TESS clip: the server is still serving.
async fn still_serving(client: &mut EmotionClient<Channel>) -> Result<(), String> {
    let audio = encoded(read(&fixture("tess/OAF_back_happy.wav")));
    let resp = client
        .classify(pb::ClassifyRequest { audio, ..Default::default() })
        .await
        .map_err(|e| format!("{:?} {}", e.code(), e.message()))?
        .into_inner();
    if resp.label == "happy" && resp.model == MODEL {
        Ok(())
    } else {
        Err(format!("unexpected answer {resp:?}"))
    }
}

#[tokio::test]
async fn every_row_of_the_bad_input_table_gets_its_status_and_the_server_keeps_serving() {
    let doc = std::fs::read_to_string(doc_path()).expect("docs/errors.md");
    let rows = parse_table(&doc);
    assert!(rows.len() > CASES.len(), "the table has only {} rows", rows.len());

    // Every row names a case this file can build, exactly once, and every case has a row.
    let mut ids = BTreeSet::new();
    for row in &rows {
        assert!(ids.insert(row.id.clone()), "docs/errors.md line {}: {} twice", row.line, row.id);
    }
    for case in CASES {
        assert!(ids.contains(*case), "docs/errors.md has no row for case {case}");
    }
    // A new bad fixture needs rows: at least unary and streamed.
    let bad = fixtures_in("bad");
    assert!(!bad.is_empty(), "no fixtures in shared/fixtures/bad");
    for path in &bad {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap();
        for variant in ["classify", "stream"] {
            let id = format!("{name}/{variant}");
            assert!(ids.contains(&id), "docs/errors.md has no row {id} for fixture bad/{name}");
        }
    }

    let server = TestServer::start().await;
    let mut client = server.emotion().await;
    still_serving(&mut client).await.expect("the server serves before any case");
    let mut failures = Vec::new();
    let mut exercised = BTreeSet::new();
    for row in &rows {
        let Some(call) = build(&row.id) else {
            let fixture_like = row
                .id
                .split_once('/')
                .is_some_and(|(f, v)| f.ends_with(".wav") && FIXTURE_VARIANTS.contains(&v));
            failures.push(format!(
                "line {}: no request for case {} ({})",
                row.line,
                row.id,
                if fixture_like { "no such fixture, or not a plain WAV" } else { "unknown id" }
            ));
            continue;
        };
        if call.rpc() != row.rpc {
            failures.push(format!(
                "line {}: {} is sent by {}, the table says {}",
                row.line,
                row.id,
                call.rpc(),
                row.rpc
            ));
        }
        let outcome = send(&mut client, call).await;
        exercised.insert(row.id.clone());
        match &outcome.result {
            Ok(()) => failures.push(format!(
                "line {}: {} was accepted ({} responses)",
                row.line, row.id, outcome.responses
            )),
            Err(status) => {
                if let Some(why) = mismatch(row, status) {
                    failures.push(format!(
                        "line {}: {}: {why}\n    should read: {}",
                        row.line,
                        row.id,
                        row.corrected(status)
                    ));
                }
            }
        }
        if let Some(after) = outcome.after_status {
            failures.push(format!("line {}: {}: {after}", row.line, row.id));
        }
        if let Err(e) = still_serving(&mut client).await {
            failures
                .push(format!("line {}: after {}, a good Classify failed: {e}", row.line, row.id));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows fail:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    assert_eq!(exercised, ids, "every row was sent");
    // A fresh connection works too.
    let mut fresh = server.emotion().await;
    still_serving(&mut fresh).await.expect("a new connection is served");
    server.stop().await;
}

#[test]
fn table_cells_and_code_spans_parse() {
    assert_eq!(cells("| a | b \\| c | `d` |"), ["a", "b | c", "`d`"]);
    assert_eq!(unspan("`plain`").as_deref(), Some("plain"));
    assert_eq!(unspan("`` has `tick` ``").as_deref(), Some("has `tick`"));
    assert_eq!(unspan("no span"), None);
    assert_eq!(unspan("`unclosed"), None);
    for text in ["plain", "has `tick` inside", "``double``"] {
        assert_eq!(unspan(&code_span(text)).as_deref(), Some(text), "{text}");
    }
    let row = Row {
        line: 1,
        id: "x".into(),
        input: String::new(),
        rpc: "Classify".into(),
        code: "INVALID_ARGUMENT".into(),
        matching: "prefix".into(),
        message: "`bad input:`".into(),
    };
    let status = |code, msg: &str| Status::new(code, msg.to_owned());
    assert_eq!(mismatch(&row, &status(Code::InvalidArgument, "bad input: 3 s")), None);
    assert!(mismatch(&row, &status(Code::NotFound, "bad input: 3 s")).is_some());
    assert!(mismatch(&row, &status(Code::InvalidArgument, "other")).is_some());
    let exact = Row { matching: "exact".into(), ..row };
    assert!(mismatch(&exact, &status(Code::InvalidArgument, "bad input: 3 s")).is_some());
    assert_eq!(mismatch(&exact, &status(Code::InvalidArgument, "bad input:")), None);
}
