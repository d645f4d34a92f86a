//! `prosodia-load`: command-line front end of the load generator (see the library docs).
//!
//! JSON goes to stdout (and to `--json FILE`), the human table to stderr, so
//! `prosodia-load ... > run.json` keeps both.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use prosodia_load::{
    Arrival, StreamLoadConfig, UnaryConfig, decode_mono, run_streams, run_unary, stream_table,
    unary_table,
};
use serde_json::json;

/// Load generator for prosodia-server's Classify and StreamClassify.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Server URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// HTTP/2 connections (default: one per client, at most 64).
    #[arg(long)]
    channels: Option<usize>,
    /// Closed loop: concurrent clients. Open loop: most requests in flight.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Run these concurrency levels one after another (e.g. 1,8,32,128) instead of one.
    #[arg(long, value_delimiter = ',')]
    levels: Vec<usize>,
    /// Measured seconds per level.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds before each level.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Open loop at this many requests per second (default: closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Open-loop spacing.
    #[arg(long, value_enum, default_value = "poisson")]
    arrival: Arrival,
    /// Model name (default: the server's default model).
    #[arg(long, default_value = "")]
    model: String,
    /// Streaming mode: run these numbers of concurrent real-time streams (e.g. 100,300,500).
    #[arg(long, value_delimiter = ',')]
    streams: Vec<usize>,
    /// Streaming: milliseconds of audio per message.
    #[arg(long = "chunk-ms", default_value_t = 20.0)]
    chunk_ms: f64,
    /// Streaming: analysis window, seconds.
    #[arg(long, default_value_t = 3.0)]
    window: f64,
    /// Streaming: hop between windows, seconds.
    #[arg(long, default_value_t = 1.0)]
    hop: f64,
    /// Streaming: a stream holds when all its interim latencies are below this.
    #[arg(long = "threshold-ms", default_value_t = 100.0)]
    threshold_ms: f64,
    /// A name for this run, copied into the JSON (e.g. "rust" or "python").
    #[arg(long, default_value = "")]
    label: String,
    /// Also write the JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Tokio worker threads for the generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Audio files (sent encoded, in turn; streaming uses the first, decoded locally).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("--{what} {s} is not a duration"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("starting tokio")?;
    let (warmup, duration) = (secs(args.warmup, "warmup")?, secs(args.duration, "duration")?);
    let mut doc = json!({
        "label": args.label,
        "addr": args.addr,
        "files": args.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "generator_threads": args.threads,
    });
    if args.streams.is_empty() {
        let payloads = args
            .files
            .iter()
            .map(|p| {
                std::fs::read(p).map(Arc::new).with_context(|| format!("reading {}", p.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let levels =
            if args.levels.is_empty() { vec![args.concurrency] } else { args.levels.clone() };
        let mut reports = Vec::new();
        for c in levels {
            if c == 0 {
                bail!("concurrency levels must be at least 1");
            }
            let config = UnaryConfig {
                addr: args.addr.clone(),
                channels: args.channels.unwrap_or(c.min(64)),
                concurrency: c,
                rate: args.rate,
                arrival: args.arrival,
                model: args.model.clone(),
                warmup,
                duration,
                payloads: payloads.clone(),
            };
            let report = runtime.block_on(run_unary(&config))?;
            eprint!("{}", unary_table(std::slice::from_ref(&report)));
            reports.push(report);
        }
        eprintln!("\n{}", unary_table(&reports));
        doc["unary"] = serde_json::to_value(&reports)?;
    } else {
        let (samples, rate) = decode_mono(&args.files[0])?;
        let samples = Arc::new(samples);
        let mut reports = Vec::new();
        for &n in &args.streams {
            let config = StreamLoadConfig {
                addr: args.addr.clone(),
                channels: args.channels.unwrap_or(n.min(64)),
                streams: n,
                samples: samples.clone(),
                sample_rate: rate,
                chunk_ms: args.chunk_ms,
                window_seconds: args.window,
                hop_seconds: args.hop,
                model: args.model.clone(),
                warmup,
                duration,
                threshold: secs(args.threshold_ms / 1e3, "threshold-ms")?,
            };
            let report = runtime.block_on(run_streams(&config))?;
            eprint!("{}", stream_table(std::slice::from_ref(&report)));
            reports.push(report);
        }
        eprintln!("\n{}", stream_table(&reports));
        doc["streams"] = serde_json::to_value(&reports)?;
    }
    let text = serde_json::to_string_pretty(&doc)?;
    if let Some(path) = &args.json {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{text}");
    Ok(())
}
