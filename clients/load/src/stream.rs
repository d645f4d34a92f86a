//! Real-time `Emotion/StreamClassify` load: `streams` concurrent streams, each sending raw mono
//! `f32le` PCM in fixed chunks at real-time pace (the clip looped), with interim results on.
//!
//! **Interim latency.** The server analyses window `k` (input samples `[k·H, k·H + W)`) as
//! soon as its last sample has arrived, so the chunk that completes it is the first whose
//! cumulative sample count reaches `k·H + W`. Each stream records the send time of every chunk;
//! when a WindowResult arrives, its `end_seconds` gives the end sample, hence the completing
//! chunk, and the latency is the arrival time minus that chunk's send time. Windows that end
//! during the warm-up are not recorded.
//!
//! Streams start spread evenly over one hop, as independent callers would, rather than all
//! completing their windows in the same instant. A stream "holds" when it ended without an
//! error, got every window it should have, and all its recorded latencies were below the
//! threshold.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::ReceiverStream;

use crate::stats::Percentiles;
use crate::unary::channels;
use crate::{Error, Result};

/// What to run.
#[derive(Debug, Clone)]
pub struct StreamLoadConfig {
    /// Server URL.
    pub addr: String,
    /// Separate HTTP/2 connections (stream `i` uses connection `i mod channels`).
    pub channels: usize,
    /// Concurrent streams.
    pub streams: usize,
    /// Mono samples to send (looped).
    pub samples: Arc<Vec<f32>>,
    /// Their sample rate.
    pub sample_rate: u32,
    /// Audio per message, milliseconds.
    pub chunk_ms: f64,
    /// Analysis window, seconds (sent explicitly, so the expected window count is known).
    pub window_seconds: f64,
    /// Hop between windows, seconds; stream starts are spread over one hop.
    pub hop_seconds: f64,
    /// Model name (empty: default).
    pub model: String,
    /// Audio time, from each stream's start, whose windows are not recorded.
    pub warmup: Duration,
    /// Audio time recorded after the warm-up.
    pub duration: Duration,
    /// A stream holds when every recorded interim latency is below this.
    pub threshold: Duration,
}

/// The result of one streaming run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    /// Concurrent streams.
    pub streams: usize,
    /// HTTP/2 connections.
    pub channels: usize,
    /// Audio per message, ms.
    pub chunk_ms: f64,
    /// Threshold for "holding", ms.
    pub threshold_ms: f64,
    /// Streams that ended OK with every window on time.
    pub streams_under_threshold: usize,
    /// Streams that failed, by gRPC code name.
    pub errors: BTreeMap<String, u64>,
    /// First error message seen.
    pub first_error: Option<String>,
    /// Interim (WindowResult) latency over all streams, ms.
    pub interim_latency_ms: Percentiles,
    /// Windows expected in the measured span, over all streams.
    pub windows_expected: u64,
    /// Windows received in the measured span.
    pub windows_received: u64,
    /// Chunks sent more than one chunk late (the sender fell behind real time).
    pub late_chunks: u64,
}

struct StreamOutcome {
    latencies_us: Vec<u64>,
    windows: u64,
    expected: u64,
    late_chunks: u64,
    error: Option<tonic::Status>,
}

/// Runs `streams` concurrent real-time streams.
pub async fn run_streams(config: &StreamLoadConfig) -> Result<StreamReport> {
    if config.samples.is_empty() || config.sample_rate == 0 {
        return Err(Error::Config("no audio to stream".into()));
    }
    if !(config.chunk_ms.is_finite() && config.chunk_ms > 0.0) {
        return Err(Error::Config(format!("chunk {} ms must be positive", config.chunk_ms)));
    }
    if !(config.hop_seconds > 0.0 && config.window_seconds >= config.hop_seconds) {
        return Err(Error::Config(format!(
            "window {} s and hop {} s: need 0 < hop <= window",
            config.window_seconds, config.hop_seconds
        )));
    }
    let conns = channels(&config.addr, config.channels.min(config.streams.max(1)))?;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(config.streams);
    for i in 0..config.streams {
        let channel = conns[i % conns.len()].clone();
        let cfg = config.clone();
        let offset = Duration::from_secs_f64(cfg.hop_seconds)
            .mul_f64(i as f64 / config.streams.max(1) as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until((start + offset).into()).await;
            one_stream(channel, &cfg).await
        }));
    }
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_error = None;
    let (mut held, mut expected, mut received, mut late_chunks) = (0, 0, 0, 0);
    let limit_us = config.threshold.as_micros() as u64;
    for t in tasks {
        let outcome = match t.await {
            Ok(o) => o,
            Err(e) => {
                *errors.entry("ClientPanic".into()).or_default() += 1;
                first_error.get_or_insert_with(|| format!("a stream task failed: {e}"));
                continue;
            }
        };
        expected += outcome.expected;
        received += outcome.windows;
        late_chunks += outcome.late_chunks;
        match &outcome.error {
            Some(status) => {
                *errors.entry(format!("{:?}", status.code())).or_default() += 1;
                first_error
                    .get_or_insert_with(|| format!("{:?}: {}", status.code(), status.message()));
            }
            None => {
                if outcome.windows >= outcome.expected
                    && outcome.latencies_us.iter().all(|&us| us < limit_us)
                {
                    held += 1;
                }
            }
        }
        latencies.extend(outcome.latencies_us);
    }
    Ok(StreamReport {
        streams: config.streams,
        channels: conns.len(),
        chunk_ms: config.chunk_ms,
        threshold_ms: config.threshold.as_secs_f64() * 1e3,
        streams_under_threshold: held,
        errors,
        first_error,
        interim_latency_ms: Percentiles::from_micros(&mut latencies),
        windows_expected: expected,
        windows_received: received,
        late_chunks,
    })
}

async fn one_stream(channel: tonic::transport::Channel, cfg: &StreamLoadConfig) -> StreamOutcome {
    use pb::stream_classify_request::Message;
    let rate = f64::from(cfg.sample_rate);
    let per_chunk = ((cfg.chunk_ms / 1e3 * rate).round() as usize).max(1);
    let pace = Duration::from_secs_f64(per_chunk as f64 / rate);
    let total = ((cfg.warmup + cfg.duration).as_secs_f64() * rate) as usize;
    let chunks = total.div_ceil(per_chunk);
    // Send times of every chunk, shared with the receiver.
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::with_capacity(chunks)));
    let config = pb::StreamConfig {
        model: cfg.model.clone(),
        model_version: 0,
        format: Some(pb::stream_config::Format::Raw(pb::RawFormat {
            encoding: pb::PcmEncoding::F32le as i32,
            sample_rate: cfg.sample_rate,
            channels: 1,
        })),
        window_seconds: cfg.window_seconds,
        hop_seconds: cfg.hop_seconds,
        interim_results: true,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let samples = cfg.samples.clone();
    let sent_w = sent.clone();
    let sender = tokio::spawn(async move {
        let mut late = 0u64;
        if tx
            .send(pb::StreamClassifyRequest { message: Some(Message::Config(config)) })
            .await
            .is_err()
        {
            return late;
        }
        let mut ticks = tokio::time::interval(pace);
        let t0 = Instant::now();
        let mut pos = 0usize;
        for c in 0..chunks {
            ticks.tick().await;
            let now = Instant::now();
            if now.saturating_duration_since(t0 + pace.mul_f64(c as f64)) > pace {
                late += 1;
            }
            let n = per_chunk.min(total - c * per_chunk);
            let mut data = Vec::with_capacity(n * 4);
            for _ in 0..n {
                data.extend_from_slice(&samples[pos].to_le_bytes());
                pos = (pos + 1) % samples.len();
            }
            if let Ok(mut v) = sent_w.lock() {
                v.push(Instant::now());
            }
            if tx
                .send(pb::StreamClassifyRequest { message: Some(Message::Audio(data)) })
                .await
                .is_err()
            {
                break; // the server ended the stream
            }
        }
        late
        // Dropping `tx` half-closes the stream.
    });
    let mut client = EmotionClient::new(channel);
    let warmup_samples = cfg.warmup.as_secs_f64() * rate;
    let mut latencies_us = Vec::new();
    let mut windows = 0u64;
    let result: std::result::Result<(), tonic::Status> = async {
        let mut inbound = client.stream_classify(ReceiverStream::new(rx)).await?.into_inner();
        while let Some(r) = inbound.message().await? {
            let arrived = Instant::now();
            if let Some(pb::stream_classify_response::Result::Window(w)) = r.result {
                let end = (w.end_seconds * rate).round();
                if end <= warmup_samples {
                    continue;
                }
                windows += 1;
                let chunk = ((end as usize).div_ceil(per_chunk)).saturating_sub(1);
                let at = sent.lock().ok().and_then(|v| v.get(chunk).copied());
                if let Some(at) = at {
                    latencies_us.push(arrived.saturating_duration_since(at).as_micros() as u64);
                }
            }
        }
        Ok(())
    }
    .await;
    let late_chunks = match result {
        Ok(()) => sender.await.unwrap_or(0),
        Err(_) => {
            sender.abort();
            0
        }
    };
    // Windows whose end falls in the recorded span: ends k·H + W for k ≥ 0.
    let (w, h) = window_hop(cfg);
    let count_upto = |s: f64| if s < w { 0.0 } else { ((s - w) / h).floor() + 1.0 };
    let expected = (count_upto(total as f64 / rate) - count_upto(warmup_samples / rate)).max(0.0);
    StreamOutcome {
        latencies_us,
        windows,
        expected: expected as u64,
        late_chunks,
        error: result.err(),
    }
}

fn window_hop(cfg: &StreamLoadConfig) -> (f64, f64) {
    (cfg.window_seconds, cfg.hop_seconds)
}
