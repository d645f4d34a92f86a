//! Unary `Emotion/Classify` load: closed loop (a fixed number of clients, each sending its next
//! request when the previous answer arrives) or open loop (requests scheduled at a fixed rate,
//! whatever the answers do).
//!
//! **Connections.** `channels` HTTP/2 connections are opened lazily (a refused connection
//! shows up as an UNAVAILABLE answer per request, counted, instead of failing the run);
//! client `i` uses connection `i mod channels`.
//!
//! **Open loop.** A scheduler computes each request's intended send time (fixed interval or
//! exponential gaps) and starts it then, holding one of `concurrency` in-flight permits. A
//! request that starts more than [`LATE_TOLERANCE`] after its intended time (the scheduler
//! fell behind, or every permit was taken) is still sent and counted as `late`; its latency is
//! measured from the intended time, so a stalled server cannot hide the queueing it caused
//! (coordinated omission).
//!
//! **Windows.** Requests that *start* during the warm-up are sent but not recorded; the
//! measured window starts after it and lasts `duration`. Answers still in flight when the
//! window closes are awaited and recorded.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tonic::transport::{Channel, Endpoint};

use crate::stats::{Percentiles, SplitMix};
use crate::{Error, Result};

/// A request that starts this much after its intended time counts as late.
pub const LATE_TOLERANCE: Duration = Duration::from_millis(1);

/// How an open loop spaces its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Exponential gaps (a Poisson process).
    Poisson,
    /// Exactly `1 / rate` apart.
    Fixed,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct UnaryConfig {
    /// Server URL, e.g. `http://127.0.0.1:50051`.
    pub addr: String,
    /// Separate HTTP/2 connections.
    pub channels: usize,
    /// Closed loop: concurrent clients. Open loop: the most requests in flight.
    pub concurrency: usize,
    /// Open loop at this many requests per second; `None` runs a closed loop.
    pub rate: Option<f64>,
    /// Spacing of open-loop requests.
    pub arrival: Arrival,
    /// Model to name in each request (empty: the server's default).
    pub model: String,
    /// Sent before measuring starts.
    pub warmup: Duration,
    /// Length of the measured window.
    pub duration: Duration,
    /// The encoded files to send, in turn.
    pub payloads: Vec<Arc<Vec<u8>>>,
}

/// The server's own account of where its time went (from `ClassifyResponse.timings`), in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSplit {
    /// Waiting for a worker.
    pub queue: Percentiles,
    /// Decoding.
    pub decode: Percentiles,
    /// Preprocessing and features.
    pub extract: Percentiles,
    /// The model.
    pub infer: Percentiles,
    /// Everything, receipt to reply.
    pub total: Percentiles,
}

/// The result of one unary run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnaryReport {
    /// `closed` or `open`.
    pub mode: String,
    /// Clients (closed) or in-flight cap (open).
    pub concurrency: usize,
    /// HTTP/2 connections.
    pub channels: usize,
    /// Open-loop target rate, requests per second.
    pub rate: Option<f64>,
    /// Measured window, seconds (wall clock from its start to the last recorded answer).
    pub seconds: f64,
    /// Requests recorded (answered, successfully or not) in the window.
    pub requests: u64,
    /// Successful answers.
    pub ok: u64,
    /// Failed requests by gRPC code name.
    pub errors: BTreeMap<String, u64>,
    /// Open loop: requests started more than [`LATE_TOLERANCE`] after their intended time.
    pub late: u64,
    /// Successful answers per second of the measured window.
    pub throughput_rps: f64,
    /// Client-side latency of successful requests, ms.
    pub latency_ms: Percentiles,
    /// Server-reported split of successful requests (absent when the server sends none).
    pub server_ms: Option<ServerSplit>,
    /// Labels answered, with counts.
    pub labels: BTreeMap<String, u64>,
    /// The first error message seen, to tell what went wrong without a second run.
    pub first_error: Option<String>,
}

impl UnaryReport {
    /// Total failed requests.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// What one worker saw.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
    timings: [Vec<f64>; 5],
    labels: BTreeMap<String, u64>,
    late: u64,
    last_answer: Option<Instant>,
}

impl Tally {
    fn record(
        &mut self,
        result: std::result::Result<pb::ClassifyResponse, tonic::Status>,
        us: u64,
    ) {
        self.last_answer = Some(Instant::now());
        match result {
            Ok(r) => {
                self.latencies_us.push(us);
                *self.labels.entry(r.label).or_default() += 1;
                if let Some(t) = r.timings {
                    for (v, x) in self.timings.iter_mut().zip([
                        t.queue_ms,
                        t.decode_ms,
                        t.extract_ms,
                        t.inference_ms,
                        t.total_ms,
                    ]) {
                        v.push(x);
                    }
                }
            }
            Err(status) => {
                *self.errors.entry(format!("{:?}", status.code())).or_default() += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!("{:?}: {}", status.code(), status.message()));
                }
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        for (a, b) in self.timings.iter_mut().zip(other.timings) {
            a.extend(b);
        }
        for (k, v) in other.labels {
            *self.labels.entry(k).or_default() += v;
        }
        self.late += other.late;
        self.last_answer = self.last_answer.max(other.last_answer);
    }
}

/// Opens `n` lazy connections to `addr`.
pub(crate) fn channels(addr: &str, n: usize) -> Result<Vec<Channel>> {
    let endpoint = Endpoint::from_shared(addr.to_owned())
        .map_err(|e| Error::Address(addr.to_owned(), e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    Ok((0..n.max(1)).map(|_| endpoint.connect_lazy()).collect())
}

fn request(model: &str, payload: &[u8]) -> pb::ClassifyRequest {
    pb::ClassifyRequest {
        model: model.to_owned(),
        audio: Some(pb::Audio { source: Some(pb::audio::Source::Encoded(payload.to_vec())) }),
        model_version: 0,
        timeline: None,
    }
}

fn client(channel: Channel) -> EmotionClient<Channel> {
    EmotionClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

/// Runs one unary load test.
pub async fn run_unary(config: &UnaryConfig) -> Result<UnaryReport> {
    if config.payloads.is_empty() {
        return Err(Error::Config("no audio to send".into()));
    }
    if config.concurrency == 0 {
        return Err(Error::Config("concurrency must be at least 1".into()));
    }
    if let Some(rate) = config.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(Error::Config(format!("rate {rate} must be a positive number")));
    }
    let conns = channels(&config.addr, config.channels)?;
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let tally = match config.rate {
        None => closed_loop(config, &conns, measure_from, end).await,
        Some(rate) => open_loop(config, &conns, rate, measure_from, end).await,
    };
    let last = tally.last_answer.unwrap_or(end).max(end);
    let seconds = last.saturating_duration_since(measure_from).as_secs_f64().max(1e-9);
    let mut latencies = tally.latencies_us;
    let ok = latencies.len() as u64;
    let server_ms = (!tally.timings[0].is_empty()).then(|| ServerSplit {
        queue: Percentiles::from_millis(&tally.timings[0]),
        decode: Percentiles::from_millis(&tally.timings[1]),
        extract: Percentiles::from_millis(&tally.timings[2]),
        infer: Percentiles::from_millis(&tally.timings[3]),
        total: Percentiles::from_millis(&tally.timings[4]),
    });
    let errors: u64 = tally.errors.values().sum();
    Ok(UnaryReport {
        mode: if config.rate.is_some() { "open" } else { "closed" }.to_owned(),
        concurrency: config.concurrency,
        channels: conns.len(),
        rate: config.rate,
        seconds,
        requests: ok + errors,
        ok,
        errors: tally.errors,
        late: tally.late,
        throughput_rps: ok as f64 / seconds,
        latency_ms: Percentiles::from_micros(&mut latencies),
        server_ms,
        labels: tally.labels,
        first_error: tally.first_error,
    })
}

async fn closed_loop(
    config: &UnaryConfig,
    conns: &[Channel],
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let mut tasks = Vec::with_capacity(config.concurrency);
    for i in 0..config.concurrency {
        let mut client = client(conns[i % conns.len()].clone());
        let payloads = config.payloads.clone();
        let model = config.model.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            // Clients start on different files so a multi-file run mixes them at every level.
            let mut next = i;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let payload = &payloads[next % payloads.len()];
                next += 1;
                let result = client.classify(request(&model, payload)).await;
                let us = sent.elapsed().as_micros() as u64;
                if sent >= measure_from {
                    tally.record(result.map(tonic::Response::into_inner), us);
                } else if result.is_err() {
                    // A refused connection fails at once; back off a little so a warm-up
                    // against a dead server does not spin.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            tally
        }));
    }
    join(tasks).await
}

async fn open_loop(
    config: &UnaryConfig,
    conns: &[Channel],
    rate: f64,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let permits = Arc::new(Semaphore::new(config.concurrency));
    let mut rng = SplitMix::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    );
    let mean_gap = 1.0 / rate;
    let mut intended = Instant::now();
    let mut tasks = Vec::new();
    let mut late = 0u64;
    let mut k = 0usize;
    while intended < end {
        tokio::time::sleep_until(intended.into()).await;
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let started = Instant::now();
        let measured = intended >= measure_from;
        if measured && started.saturating_duration_since(intended) > LATE_TOLERANCE {
            late += 1;
        }
        let mut client = client(conns[k % conns.len()].clone());
        let payload = config.payloads[k % config.payloads.len()].clone();
        let model = config.model.clone();
        let at = intended;
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let result = client.classify(request(&model, &payload)).await;
            drop(permit);
            if measured {
                tally.record(
                    result.map(tonic::Response::into_inner),
                    at.elapsed().as_micros() as u64,
                );
            }
            tally
        }));
        k += 1;
        let gap = match config.arrival {
            Arrival::Fixed => mean_gap,
            Arrival::Poisson => rng.exponential(mean_gap),
        };
        // A gap too long to represent is past the end of any run.
        match Duration::try_from_secs_f64(gap).ok().and_then(|g| intended.checked_add(g)) {
            Some(next) => intended = next,
            None => break,
        }
    }
    let mut tally = join(tasks).await;
    tally.late = late;
    tally
}

async fn join(tasks: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
    let mut total = Tally::default();
    for t in tasks {
        match t.await {
            Ok(tally) => total.merge(tally),
            Err(e) => {
                *total.errors.entry("ClientPanic".into()).or_default() += 1;
                total.first_error.get_or_insert_with(|| format!("a client task failed: {e}"));
            }
        }
    }
    total
}
