//! `prosodia classify` and `prosodia stream`: clients of a running `prosodia-server`.
//!
//! Both print JSON lines on standard output. `classify` sends each file whole (encoded, as it
//! is on disk) and prints one line per file. `stream` decodes the file locally with
//! `prosodia-dsp`, mixes it down to mono f32, and sends it over `StreamClassify` as raw
//! `f32le` chunks, at real-time pace unless `--fast`, printing every window, utterance and
//! summary line as it arrives.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use prosodia_dsp::decode::{DecodeLimits, decode};
use prosodia_dsp::preprocess::mixdown;
use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use serde_json::{Map, Value, json};
use tonic::transport::{Channel, Endpoint};

/// The server a command talks to when `--server` is not given.
const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Arguments of `prosodia classify`.
#[derive(Debug, clap::Args)]
pub(crate) struct ClassifyArgs {
    /// Server address.
    #[arg(long, env = "PROSODIA_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// Model name (default: the server's default model).
    #[arg(long, default_value = "")]
    model: String,
    /// Audio files (any container the server decodes).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Arguments of `prosodia stream`.
#[derive(Debug, clap::Args)]
pub(crate) struct StreamArgs {
    /// Server address.
    #[arg(long, env = "PROSODIA_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// Model name (default: the server's default model).
    #[arg(long, default_value = "")]
    model: String,
    /// Milliseconds of audio per message.
    #[arg(long = "chunk-ms", default_value_t = 20.0)]
    chunk_ms: f64,
    /// Send as fast as possible instead of at real-time pace.
    #[arg(long)]
    fast: bool,
    /// Analysis window in seconds (default: the model's).
    #[arg(long)]
    window: Option<f64>,
    /// Hop between windows in seconds (default: the model's).
    #[arg(long)]
    hop: Option<f64>,
    /// Print only utterance results and the summary.
    #[arg(long = "no-interim")]
    no_interim: bool,
    /// The audio file to stream.
    file: PathBuf,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting tokio")
}

async fn connect(server: &str) -> anyhow::Result<EmotionClient<Channel>> {
    let endpoint = Endpoint::from_shared(server.to_owned())
        .with_context(|| format!("{server:?} is not a valid server URL"))?;
    let channel = endpoint.connect().await.with_context(|| format!("connecting to {server}"))?;
    Ok(EmotionClient::new(channel).max_decoding_message_size(64 << 20))
}

fn scores(scores: &[pb::ClassScore]) -> Value {
    let map: Map<String, Value> =
        scores.iter().map(|s| (s.label.clone(), json!(s.probability))).collect();
    Value::Object(map)
}

fn status_json(path: &Path, status: &tonic::Status) -> Value {
    json!({
        "path": path.display().to_string(),
        "error": status.message(),
        "code": format!("{:?}", status.code()),
    })
}

/// Runs `prosodia classify`; exit code 1 if any file failed.
pub(crate) fn classify(args: ClassifyArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let mut client = connect(&args.server).await?;
        let mut failed = false;
        for path in &args.files {
            let line = match std::fs::read(path) {
                Err(e) => {
                    failed = true;
                    json!({ "path": path.display().to_string(), "error": format!("reading: {e}") })
                }
                Ok(bytes) => {
                    let request = pb::ClassifyRequest {
                        model: args.model.clone(),
                        audio: Some(pb::Audio { source: Some(pb::audio::Source::Encoded(bytes)) }),
                        model_version: 0,
                        timeline: None,
                    };
                    match client.classify(request).await {
                        Ok(r) => {
                            let r = r.into_inner();
                            json!({
                                "path": path.display().to_string(),
                                "label": r.label,
                                "scores": scores(&r.scores),
                                "model": r.model,
                                "model_version": r.model_version,
                                "audio_duration_seconds": r.audio_duration_seconds,
                            })
                        }
                        Err(status) => {
                            failed = true;
                            status_json(path, &status)
                        }
                    }
                }
            };
            println!("{line}");
        }
        Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
    })
}

/// One server answer as a JSON line.
fn response_json(r: pb::StreamClassifyResponse) -> Option<Value> {
    use pb::stream_classify_response::Result as R;
    Some(match r.result? {
        R::Window(w) => json!({
            "type": "window",
            "start_seconds": w.start_seconds,
            "end_seconds": w.end_seconds,
            "label": w.label,
            "scores": scores(&w.scores),
        }),
        R::Utterance(u) => json!({
            "type": "utterance",
            "index": u.index,
            "start_seconds": u.start_seconds,
            "end_seconds": u.end_seconds,
            "label": u.label,
            "scores": scores(&u.scores),
        }),
        R::Summary(s) => json!({
            "type": "summary",
            "audio_seconds": s.audio_seconds,
            "utterances": s.utterances,
            "label": s.label,
            "scores": scores(&s.scores),
            "model": s.model,
            "model_version": s.model_version,
        }),
    })
}

/// Runs `prosodia stream`; exit code 1 if the server ended the stream with an error.
pub(crate) fn stream(args: StreamArgs) -> anyhow::Result<ExitCode> {
    if !(args.chunk_ms.is_finite() && args.chunk_ms > 0.0) {
        bail!("--chunk-ms must be a positive number of milliseconds");
    }
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let audio =
        decode(&bytes, &DecodeLimits { max_duration_secs: 24.0 * 3600.0, ..Default::default() })
            .with_context(|| format!("decoding {}", args.file.display()))?;
    let rate = audio.sample_rate;
    let samples = mixdown(&audio);
    drop(audio);
    let per_chunk = ((args.chunk_ms / 1e3 * f64::from(rate)).round() as usize).max(1);
    let pace = Duration::from_secs_f64(per_chunk as f64 / f64::from(rate));
    let config = pb::StreamConfig {
        model: args.model.clone(),
        model_version: 0,
        format: Some(pb::stream_config::Format::Raw(pb::RawFormat {
            encoding: pb::PcmEncoding::F32le as i32,
            sample_rate: rate,
            channels: 1,
        })),
        window_seconds: args.window.unwrap_or(0.0),
        hop_seconds: args.hop.unwrap_or(0.0),
        interim_results: !args.no_interim,
    };
    let fast = args.fast;
    runtime()?.block_on(async move {
        let mut client = connect(&args.server).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let sender = tokio::spawn(async move {
            use pb::stream_classify_request::Message;
            let first = pb::StreamClassifyRequest { message: Some(Message::Config(config)) };
            if tx.send(first).await.is_err() {
                return;
            }
            let mut ticks = tokio::time::interval(pace);
            for chunk in samples.chunks(per_chunk) {
                if !fast {
                    ticks.tick().await;
                }
                let data: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
                let msg = pb::StreamClassifyRequest { message: Some(Message::Audio(data)) };
                if tx.send(msg).await.is_err() {
                    return; // the server ended the stream
                }
            }
            // Dropping `tx` half-closes the stream.
        });
        let result = async {
            let mut inbound = client
                .stream_classify(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await?
                .into_inner();
            while let Some(r) = inbound.message().await? {
                if let Some(line) = response_json(r) {
                    println!("{line}");
                }
            }
            Ok::<(), tonic::Status>(())
        }
        .await;
        sender.abort();
        match result {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(status) => {
                println!("{}", status_json(&args.file, &status));
                eprintln!("prosodia: the stream failed: {:?}: {}", status.code(), status.message());
                Ok(ExitCode::from(1))
            }
        }
    })
}
