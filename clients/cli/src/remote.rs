//! `prosodia classify` and `prosodia stream`: clients of a running `prosodia-server`.
//!
//! Both print JSON lines on standard output. `classify` sends each file whole (encoded, as it
//! is on disk) and prints one line per file. `stream` decodes the file locally with
//! `prosodia-dsp`, mixes it down to mono f32, and sends it over `StreamClassify` as raw
//! `f32le` chunks, at real-time pace unless `--fast`, printing every window, utterance and
//! summary line as it arrives.
//!
//! Unary calls (`Classify`, and `GetModel` for a plot) and connecting are retried on
//! `UNAVAILABLE` with capped exponential backoff, `--retries` times (default 4; see
//! [`prosodia_proto::retry`]): a replica that is down, restarting or full, behind a balancer
//! or not, costs a short wait instead of a failed file. A `StreamClassify` stream is never
//! resent: one that breaks ends with its status, and a stream cut off by an HTTP/2 reset
//! without any gRPC status (what nginx sends when the replica behind it dies) is reported as
//! `UNAVAILABLE`, with the reset as its `cause`.
//!
//! `classify --plot PNG` (one file) also draws the file: waveform, log-mel spectrogram and F0
//! computed locally with `prosodia-dsp` and the model's feature configuration (from
//! `Models.GetModel`; the `seed` preset if the server does not say), with silence trimming
//! off so every panel shares the file's own time axis; and the emotion timeline, streamed
//! from the server as interim window results over raw PCM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use prosodia_dsp::FeatureConfig;
use prosodia_dsp::decode::{DecodeLimits, decode};
use prosodia_dsp::pipeline::Extractor;
use prosodia_dsp::preprocess::mixdown;
use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_proto::pb::models_client::ModelsClient;
use prosodia_proto::retry::{self, DEFAULT_RETRIES, RetryPolicy};
use serde_json::{Map, Value, json};
use tonic::transport::{Channel, Endpoint};

use crate::plot::{self, ClassifyFigure, PlotSize, WindowScores};

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
    /// Retries of a call (and of connecting) that fails with UNAVAILABLE, with exponential
    /// backoff from 100 ms to 2 s; 0 sends each call once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRIES)]
    retries: u32,
    /// Also draw the file (waveform, mel spectrogram, F0, emotion timeline) to this PNG;
    /// only with a single FILE.
    #[arg(long, value_name = "PNG")]
    plot: Option<PathBuf>,
    /// Size of the --plot figure in pixels.
    #[arg(long = "plot-size", value_name = "WxH", default_value = "1600x1200", requires = "plot")]
    plot_size: PlotSize,
    /// Timeline window in seconds for --plot (default: the model's, shortened for clips
    /// shorter than two model windows).
    #[arg(long, requires = "plot")]
    window: Option<f64>,
    /// Timeline hop in seconds for --plot (default: the model's, or a quarter of a shortened
    /// window).
    #[arg(long, requires = "plot")]
    hop: Option<f64>,
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
    /// Retries of connecting while the server is UNAVAILABLE (the stream itself is never
    /// resent).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRIES)]
    retries: u32,
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

/// Tells the user about a retry, on standard error.
fn report_retry(what: &str) -> impl FnMut(&tonic::Status, u32, Duration) + '_ {
    move |status, n, wait| {
        eprintln!(
            "prosodia: {what}: {:?} ({}); retry {n} in {} ms",
            status.code(),
            status.message(),
            wait.as_millis()
        );
    }
}

/// Connects to `server`, retrying refused or failed connections as `policy` says.
async fn connect_channel(server: &str, policy: &RetryPolicy) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(server.to_owned())
        .with_context(|| format!("{server:?} is not a valid server URL"))?;
    let what = format!("connecting to {server}");
    policy
        .call_notify(
            || async {
                endpoint.connect().await.map_err(|e| {
                    // The whole chain: "transport error: tcp connect error: Connection refused".
                    tonic::Status::unavailable(format!("{:#}", anyhow::Error::from(e)))
                })
            },
            report_retry(&what),
        )
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))
        .with_context(|| what.clone())
}

fn emotion_client(channel: Channel) -> EmotionClient<Channel> {
    EmotionClient::new(channel).max_decoding_message_size(64 << 20)
}

async fn connect(server: &str, policy: &RetryPolicy) -> anyhow::Result<EmotionClient<Channel>> {
    Ok(emotion_client(connect_channel(server, policy).await?))
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
    if args.plot.is_some() && args.files.len() != 1 {
        bail!(
            "--plot draws one file: give exactly one FILE (got {}), or run classify once per file",
            args.files.len()
        );
    }
    let policy = RetryPolicy::with_retries(args.retries);
    runtime()?.block_on(async move {
        let channel = connect_channel(&args.server, &policy).await?;
        let client = emotion_client(channel.clone());
        let mut failed = false;
        for path in &args.files {
            let line = match std::fs::read(path) {
                Err(e) => {
                    failed = true;
                    if args.plot.is_some() {
                        eprintln!("prosodia: no plot written: reading {}: {e}", path.display());
                    }
                    json!({ "path": path.display().to_string(), "error": format!("reading: {e}") })
                }
                Ok(bytes) => {
                    // The plot decodes the file locally too; only then is a copy needed.
                    let local = args.plot.as_ref().map(|_| bytes.clone());
                    let request = pb::ClassifyRequest {
                        model: args.model.clone(),
                        audio: Some(pb::Audio { source: Some(pb::audio::Source::Encoded(bytes)) }),
                        model_version: 0,
                        timeline: None,
                    };
                    let what = path.display().to_string();
                    let reply = policy
                        .call_notify(
                            || {
                                let (mut client, request) = (client.clone(), request.clone());
                                async move { client.classify(request).await }
                            },
                            report_retry(&what),
                        )
                        .await;
                    match reply {
                        Ok(r) => {
                            let r = r.into_inner();
                            let mut line = json!({
                                "path": path.display().to_string(),
                                "label": r.label,
                                "scores": scores(&r.scores),
                                "model": r.model,
                                "model_version": r.model_version,
                                "audio_duration_seconds": r.audio_duration_seconds,
                            });
                            if let (Some(out), Some(bytes)) = (&args.plot, local) {
                                let plotted =
                                    plot_classify(&channel, &policy, &args, path, &bytes, &r).await;
                                match plotted {
                                    Ok(()) => line["plot"] = json!(out.display().to_string()),
                                    Err(e) => {
                                        failed = true;
                                        eprintln!("prosodia: no plot written: {e:#}");
                                    }
                                }
                            }
                            line
                        }
                        Err(status) => {
                            failed = true;
                            if args.plot.is_some() {
                                eprintln!(
                                    "prosodia: no plot written: the server refused {}: {}",
                                    path.display(),
                                    status.message()
                                );
                            }
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

/// Sends mono f32 `samples` over StreamClassify in chunks of `per_chunk` (one per `pace`
/// tick, or as fast as the server takes them without one), handing every answer to
/// `on_result` as it arrives.
async fn stream_pcm(
    client: &mut EmotionClient<Channel>,
    config: pb::StreamConfig,
    samples: Vec<f32>,
    per_chunk: usize,
    pace: Option<Duration>,
    mut on_result: impl FnMut(pb::StreamClassifyResponse),
) -> Result<(), tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let sender = tokio::spawn(async move {
        use pb::stream_classify_request::Message;
        let first = pb::StreamClassifyRequest { message: Some(Message::Config(config)) };
        if tx.send(first).await.is_err() {
            return;
        }
        let mut ticks = pace.map(tokio::time::interval);
        for chunk in samples.chunks(per_chunk.max(1)) {
            if let Some(ticks) = &mut ticks {
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
            on_result(r);
        }
        Ok(())
    }
    .await;
    sender.abort();
    result
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
    let pace = (!args.fast).then_some(pace);
    let policy = RetryPolicy::with_retries(args.retries);
    runtime()?.block_on(async move {
        let mut client = connect(&args.server, &policy).await?;
        let result = stream_pcm(&mut client, config, samples, per_chunk, pace, |r| {
            if let Some(line) = response_json(r) {
                println!("{line}");
            }
        })
        .await;
        match result {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(status) => {
                // A stream cut off without a gRPC status is reported as UNAVAILABLE, with
                // what tonic made of the reset as its cause.
                let (status, cause) = match retry::stream_cut_off(&status) {
                    Some(cut) => (cut, Some(format!("{:?}: {}", status.code(), status.message()))),
                    None => (status, None),
                };
                let mut line = status_json(&args.file, &status);
                if let Some(cause) = &cause {
                    line["cause"] = json!(cause);
                }
                println!("{line}");
                eprintln!("prosodia: the stream failed: {:?}: {}", status.code(), status.message());
                Ok(ExitCode::from(1))
            }
        }
    })
}

/// The timeline's window and hop in seconds: the user's if given, else the model's; a clip
/// shorter than two of the model's windows gets a window of half the clip (at least 0.5 s,
/// at most the clip) and a hop of a quarter window, so a short clip still shows a few
/// windows rather than one or none.
fn timeline_windowing(
    duration: f64,
    model: (f64, f64),
    user: (Option<f64>, Option<f64>),
) -> (f64, f64) {
    let (window, hop) = match user.0 {
        Some(w) => (w, model.1.min(w)),
        None if duration >= 2.0 * model.0 => model,
        None => {
            let w = (duration / 2.0).max(0.5).min(duration);
            (w, w / 4.0)
        }
    };
    (window, user.1.unwrap_or(hop))
}

/// The model's feature configuration and streaming defaults, from Models.GetModel; the
/// `seed` preset and 3 s / 1 s (the server's defaults) when the server cannot say.
async fn model_front_end(
    channel: &Channel,
    policy: &RetryPolicy,
    model: &str,
    version: u32,
) -> (FeatureConfig, (f64, f64), Option<String>) {
    let fallback = |why: String| (FeatureConfig::seed(), (3.0, 1.0), Some(why));
    let request = pb::GetModelRequest { name: model.to_owned(), version };
    let reply = policy
        .call_notify(
            || {
                let (mut client, request) = (ModelsClient::new(channel.clone()), request.clone());
                async move { client.get_model(request).await }
            },
            report_retry("Models.GetModel"),
        )
        .await;
    match reply {
        Err(status) => fallback(format!("Models.GetModel failed: {}", status.message())),
        Ok(info) => {
            let info = info.into_inner();
            let windowing = (info.stream_window_seconds, info.stream_hop_seconds);
            let windowing =
                if windowing.0 > 0.0 && windowing.1 > 0.0 { windowing } else { (3.0, 1.0) };
            let toml = info.feature_config.map(|c| c.toml).unwrap_or_default();
            match FeatureConfig::from_toml(&toml) {
                Ok(config) => (config, windowing, None),
                Err(e) => {
                    let (config, _, why) = fallback(format!("the model's features.toml: {e}"));
                    (config, windowing, why)
                }
            }
        }
    }
}

/// Draws the classify figure of one file that the server has just classified as `r`.
async fn plot_classify(
    channel: &Channel,
    policy: &RetryPolicy,
    args: &ClassifyArgs,
    path: &Path,
    bytes: &[u8],
    r: &pb::ClassifyResponse,
) -> anyhow::Result<()> {
    let Some(out) = &args.plot else { return Ok(()) };
    let (mut config, model_windowing, fallback) =
        model_front_end(channel, policy, &r.model, r.model_version).await;
    if let Some(why) = &fallback {
        eprintln!("prosodia: plotting with the seed feature preset ({why})");
    }
    // Untrimmed, so that the panels and the stream's windows share the file's time axis.
    config.preprocess.trim_top_db = None;
    let audio = decode(bytes, &DecodeLimits::default())
        .with_context(|| format!("decoding {} locally", path.display()))?;
    let (rate, samples) = (audio.sample_rate, mixdown(&audio));
    let duration = samples.len() as f64 / f64::from(rate);
    let analysis_config = config.clone();
    let analysis = tokio::task::spawn_blocking(move || {
        Extractor::new(analysis_config).and_then(|mut ex| ex.analyze(&audio))
    })
    .await
    .context("analysing the audio")?
    .with_context(|| format!("analysing {} locally", path.display()))?;

    let (window, hop) = timeline_windowing(duration, model_windowing, (args.window, args.hop));
    let stream_config = pb::StreamConfig {
        model: r.model.clone(),
        model_version: r.model_version,
        format: Some(pb::stream_config::Format::Raw(pb::RawFormat {
            encoding: pb::PcmEncoding::F32le as i32,
            sample_rate: rate,
            channels: 1,
        })),
        window_seconds: window,
        hop_seconds: hop,
        interim_results: true,
    };
    let labels: Vec<String> = r.scores.iter().map(|s| s.label.clone()).collect();
    let mut windows = Vec::new();
    let mut client = emotion_client(channel.clone());
    let per_chunk = (rate as usize / 2).max(1);
    stream_pcm(&mut client, stream_config, samples, per_chunk, None, |m| {
        if let Some(pb::stream_classify_response::Result::Window(w)) = m.result {
            let probabilities = labels
                .iter()
                .map(|l| w.scores.iter().find(|s| &s.label == l).map_or(0.0, |s| s.probability))
                .collect();
            windows.push(WindowScores {
                start: w.start_seconds,
                end: w.end_seconds,
                probabilities,
            });
        }
    })
    .await
    .map_err(|s| {
        anyhow::anyhow!("the emotion timeline stream failed: {:?}: {}", s.code(), s.message())
    })?;

    let confidence = r.scores.iter().find(|s| s.label == r.label).map_or(0.0, |s| s.probability);
    let subtitle = format!(
        "model {} v{}; features '{}'{} at {} Hz, untrimmed; timeline windows {:.2} s, hop {:.2} s",
        r.model,
        r.model_version,
        config.name,
        if fallback.is_some() { " (fallback)" } else { "" },
        analysis.sample_rate,
        window,
        hop
    );
    let figure = ClassifyFigure {
        name: plot::display_name(path),
        subtitle,
        analysis: &analysis,
        config: &config,
        labels,
        windows,
        label: r.label.clone(),
        confidence,
    };
    let png = plot::classify_png(&figure, args.plot_size)?;
    plot::write_png(out, &png)
}

#[cfg(test)]
mod tests {
    use super::timeline_windowing;

    #[test]
    fn short_clips_get_a_shorter_window_and_long_ones_the_models() {
        assert_eq!(timeline_windowing(10.0, (3.0, 1.0), (None, None)), (3.0, 1.0));
        assert_eq!(timeline_windowing(6.0, (3.0, 1.0), (None, None)), (3.0, 1.0));
        assert_eq!(timeline_windowing(4.0, (3.0, 1.0), (None, None)), (2.0, 0.5));
        assert_eq!(timeline_windowing(2.0, (3.0, 1.0), (None, None)), (1.0, 0.25));
        assert_eq!(timeline_windowing(0.6, (3.0, 1.0), (None, None)), (0.5, 0.125));
        assert_eq!(timeline_windowing(0.3, (3.0, 1.0), (None, None)), (0.3, 0.075));
        assert_eq!(timeline_windowing(2.0, (3.0, 1.0), (Some(0.5), None)), (0.5, 0.5));
        assert_eq!(timeline_windowing(2.0, (3.0, 1.0), (Some(2.0), Some(0.1))), (2.0, 0.1));
        assert_eq!(timeline_windowing(9.0, (3.0, 1.0), (None, Some(0.5))), (3.0, 0.5));
    }
}
