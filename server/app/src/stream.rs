//! StreamClassify: classifying audio while it arrives.
//!
//! Each stream is one tokio task (spawned by [`start`]) that reads client messages and
//! answers through a bounded channel. The task owns a [`Session`], the stream's whole state.
//! For each audio message the task itself parses the bytes, resamples and runs the
//! voice-activity detector (microseconds for a 20 ms chunk); only when a window or an
//! utterance became complete is the session moved onto the worker pool
//! ([`crate::work::Workers`]), which classifies them, and then moved back. A real-time stream
//! thus crosses threads once per window hop, not fifty times a second.
//!
//! **Audio.** Raw PCM (`s16le`/`f32le`, any rate and channel count the decoder accepts) is
//! parsed incrementally by [`RawPcmStream`]: frames may be split across chunks, and a chunk
//! with a non-finite `f32` sample is refused (INVALID_ARGUMENT naming the sample). Channels
//! are averaged to mono. An encoded container is buffered and decoded once, at half-close,
//! by the same decoder Classify uses (so every container Classify accepts works, and bad
//! bytes get the same error); windows and utterances for it are all computed then.
//!
//! **Windows.** Window `k` covers input samples `[k·H, k·H + W)` with `W = round(window ·
//! rate)` and `H = round(hop · rate)` at the input's own rate, so its start and end seconds
//! are exact in input-sample time. Window audio is resampled incrementally to the model's
//! feature rate with `prosodia-dsp`'s stream (sinc) resampler and then goes through the
//! model's feature configuration and runner. A window is analysed as soon as its last
//! resampled sample exists; with interim results on it is sent as a WindowResult. A window
//! that is silent or too short for the front end (e.g. trimmed away) is skipped.
//!
//! **Utterances.** A simple energy VAD on the mono input: frames of [`VAD_FRAME_SECONDS`],
//! speech when the frame RMS is at least [`VAD_FLOOR_DBFS`] (dB relative to full scale),
//! within [`VAD_RANGE_DB`] of the loudest frame so far, and at least [`VAD_SNR_DB`] above
//! the quietest frame so far. The relative parts let quiet recordings be heard (RAVDESS
//! speech sits around -45 dBFS) without taking a loud recording's background for speech:
//! the range mirrors Classify's trimming (40 dB below the clip's peak), and the margin over
//! the quietest frame is a noise floor that needs no calibration. The absolute floor is
//! Classify's silence floor, so a frame the VAD calls speech is never audio Classify would
//! refuse as silent. A stream that starts with speech, with no quieter frame yet, is heard
//! from its first pause on (the pre-roll still classifies the audio before it).
//! an utterance starts after [`VAD_START_SECONDS`] of consecutive speech frames (at the first
//! of them) and ends after [`VAD_END_SECONDS`] of consecutive non-speech frames (at the first
//! of those); one running past [`MAX_UTTERANCE_SECONDS`] is cut there. The audio classified
//! for an utterance runs from up to [`VAD_PRE_ROLL_SECONDS`] before its start (never before
//! the previous cut) to the point where its end was detected (or the end of the stream), and
//! goes through exactly the path of Classify (`emotion::classify_audio` on the input-rate
//! audio: same preprocessing, trimming, features and runner). A single utterance with less
//! than a second of leading and [`VAD_END_SECONDS`] of trailing silence is therefore
//! classified on the whole stream, bit for bit as Classify would. If the VAD finds no
//! utterance at all, the whole stream (when it is at most [`MAX_UTTERANCE_SECONDS`] and
//! `max_audio_seconds` long; only that much audio is kept while waiting for speech) is
//! classified as one utterance at half-close, so a silent or too-short stream ends with the
//! same INVALID_ARGUMENT as Classify.
//!
//! **End.** After the client half-closes, the final utterance (if speech is still going on)
//! is sent, then a StreamSummary, then the stream ends OK.
//!
//! **Limits and statuses.** `max_streams` concurrent streams (one more: RESOURCE_EXHAUSTED
//! at once); `max_stream_seconds` of audio per stream (RESOURCE_EXHAUSTED when passed; for an
//! encoded stream also `max_message_bytes` of buffered bytes); `stream_idle_timeout_seconds`
//! without a client message ends the stream with DEADLINE_EXCEEDED. Protocol errors (no
//! config first, a second config, a bad window or hop) are INVALID_ARGUMENT; an unknown model
//! is NOT_FOUND. When the client goes away the task stops, and so does the chunk in progress on
//! the worker pool, at its next window or utterance ([`crate::work::checkpoint`]). The
//! server's per-request deadline (`request_timeout_seconds`) only bounds the start of a
//! stream (tonic applies it to the response headers), so long streams are bounded by the
//! idle timeout and `max_stream_seconds` instead.

use std::sync::Arc;

use prosodia_dsp::decode::{DecodeLimits, RawPcmStream, decode};
use prosodia_dsp::preprocess::{StreamResampler, mixdown};
use prosodia_dsp::{Audio, ErrorKind};
use prosodia_proto::pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use tracing::Instrument;

use crate::emotion::{ResponseStream, classify_audio, raw_format, scored};
use crate::error::{Error, Result};
use crate::repository::LoadedModel;
use crate::server::AppState;

/// VAD frame length in seconds.
pub(crate) const VAD_FRAME_SECONDS: f64 = 0.010;
/// A VAD frame quieter than this many dBFS (RMS) is never speech.
pub(crate) const VAD_FLOOR_DBFS: f64 = -60.0;
/// A VAD frame more than this many dB below the loudest frame so far is not speech.
pub(crate) const VAD_RANGE_DB: f64 = 40.0;
/// A VAD frame less than this many dB above the quietest frame so far is not speech.
pub(crate) const VAD_SNR_DB: f64 = 10.0;
/// Consecutive speech needed to start an utterance, in seconds.
pub(crate) const VAD_START_SECONDS: f64 = 0.100;
/// Consecutive non-speech that ends an utterance (the hangover), in seconds.
pub(crate) const VAD_END_SECONDS: f64 = 0.500;
/// Audio before an utterance's start that is classified with it, in seconds.
pub(crate) const VAD_PRE_ROLL_SECONDS: f64 = 1.0;
/// Longest utterance; a longer one is cut and the next starts when speech is detected again.
pub(crate) const MAX_UTTERANCE_SECONDS: f64 = 60.0;
/// Shortest analysis window accepted, in seconds (the front end's minimum clip length).
const MIN_WINDOW_SECONDS: f64 = 0.1;
/// Responses buffered for a slow reader before the stream waits for it.
const RESPONSE_BUFFER: usize = 32;
/// Most audio bytes handed to the worker pool in one job (chunks already received are
/// batched up to this, see [`serve`]).
const JOB_BYTES: usize = 1 << 20;

/// Starts a StreamClassify stream: takes a stream permit (RESOURCE_EXHAUSTED when all are
/// taken) and spawns the task that serves it.
pub(crate) fn start(
    state: Arc<AppState>,
    inbound: Streaming<pb::StreamClassifyRequest>,
) -> Result<ResponseStream> {
    let permit = state.streams.permits.clone().try_acquire_owned().map_err(|_| {
        Error::LimitExceeded(format!(
            "the server is already serving its limit of {} streams; retry later",
            state.streams.max_streams
        ))
    })?;
    let active = state.metrics.stream_started();
    let (tx, rx) = mpsc::channel(RESPONSE_BUFFER);
    let task = async move {
        // Both are released when the stream's task ends, however it ends.
        let (_permit, _active) = (permit, active);
        match serve(&state, inbound, &tx).await {
            Ok(()) | Err(Stop::Gone) => {}
            Err(Stop::Failed(e)) => {
                // The client may be gone too; nothing more to do then.
                let _ = tx.send(Err(Status::from(e))).await;
            }
            Err(Stop::Unreadable(status)) => {
                let _ = tx.send(Err(status)).await;
            }
        }
    };
    tokio::spawn(task.instrument(tracing::Span::current()));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// Why a stream task stopped early.
enum Stop {
    /// The client went away (disconnected, reset, or stopped reading).
    Gone,
    /// The stream failed; the client gets this error as the final status.
    Failed(Error),
    /// tonic could not read the client's next message; the client gets tonic's status.
    Unreadable(Status),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

type Tx = mpsc::Sender<Result<pb::StreamClassifyResponse, Status>>;

/// Waits for the next client message: `Ok(None)` at half-close.
async fn next(
    state: &AppState,
    inbound: &mut Streaming<pb::StreamClassifyRequest>,
    tx: &Tx,
) -> Result<Option<pb::StreamClassifyRequest>, Stop> {
    let idle = state.streams.idle_timeout;
    tokio::select! {
        () = tx.closed() => Err(Stop::Gone),
        r = tokio::time::timeout(idle, inbound.message()) => match r {
            Err(_) => Err(Stop::Failed(Error::Timeout(format!(
                "no message from the client for {:.1} s (stream_idle_timeout_seconds)",
                idle.as_secs_f64()
            )))),
            Ok(r) => r.map_err(unreadable),
        },
    }
}

/// The client's next message if it has already arrived, without waiting.
async fn ready(
    inbound: &mut Streaming<pb::StreamClassifyRequest>,
) -> Option<Result<Option<pb::StreamClassifyRequest>, Stop>> {
    // `Streaming::message` only takes a message when it is complete, so dropping it while
    // pending loses nothing.
    tokio::select! {
        biased;
        r = inbound.message() => Some(r.map_err(unreadable)),
        () = std::future::ready(()) => None,
    }
}

fn unreadable(status: Status) -> Stop {
    tracing::info!(code = ?status.code(), message = status.message(), "the client's side of the stream failed");
    // Either the client reset the stream (it will not read this status), or tonic refused a
    // message it could not read, e.g. one over `max_message_bytes`: that client must get the
    // status, as a unary call would, not an OK end.
    Stop::Unreadable(status)
}

/// Waits for `work` unless the client goes away first; then `work` is dropped, which
/// abandons its job on the worker pool (it stops at its next checkpoint).
async fn until_gone<T>(tx: &Tx, work: impl Future<Output = T>) -> Result<T, Stop> {
    tokio::select! {
        r = work => Ok(r),
        () = tx.closed() => Err(Stop::Gone),
    }
}

async fn send_all(tx: &Tx, responses: Vec<pb::StreamClassifyResponse>) -> Result<(), Stop> {
    for r in responses {
        tx.send(Ok(r)).await.map_err(|_| Stop::Gone)?;
    }
    Ok(())
}

async fn serve(
    state: &Arc<AppState>,
    mut inbound: Streaming<pb::StreamClassifyRequest>,
    tx: &Tx,
) -> Result<(), Stop> {
    use pb::stream_classify_request::Message;
    let config = match next(state, &mut inbound, tx).await? {
        Some(pb::StreamClassifyRequest { message: Some(Message::Config(c)) }) => c,
        Some(_) => {
            return Err(Error::InvalidRequest(
                "first message must be a StreamConfig (the `config` field)".into(),
            )
            .into());
        }
        None => {
            return Err(Error::InvalidRequest(
                "first message must be a StreamConfig; the stream closed without one".into(),
            )
            .into());
        }
    };
    let mut session = Box::new(Session::new(state, &config)?);
    tracing::info!(
        model = %session.model.name,
        version = session.model.version,
        window = session.window_seconds,
        hop = session.hop_seconds,
        "stream started"
    );
    // A message read while batching audio, handled on the next turn.
    let mut lookahead = None;
    loop {
        let message = match lookahead.take() {
            Some(m) => m,
            None => next(state, &mut inbound, tx).await,
        }?;
        match message {
            None => break,
            Some(pb::StreamClassifyRequest { message: Some(Message::Audio(bytes)) }) => {
                // Chunks that arrived while the previous job waited for a worker go into this
                // job too: one job per chunk would let a stream fall ever further behind
                // whenever the queue wait is longer than a chunk's duration.
                let mut size = bytes.len();
                let mut chunks = vec![bytes];
                while size < JOB_BYTES {
                    match ready(&mut inbound).await {
                        None => break,
                        Some(Ok(Some(pb::StreamClassifyRequest {
                            message: Some(Message::Audio(more)),
                        }))) => {
                            size += more.len();
                            chunks.push(more);
                        }
                        Some(other) => {
                            lookahead = Some(other);
                            break;
                        }
                    }
                }
                let mut failed = None;
                for chunk in &chunks {
                    if let Err(e) = session.take(chunk) {
                        failed = Some(e);
                        break;
                    }
                }
                let (out, error) = if session.has_work() {
                    let job = state.workers.run(move || {
                        let mut s = session;
                        let (out, error) = s.run_ready();
                        Ok((s, out, error))
                    });
                    let (back, out, error) = until_gone(tx, job).await??.0;
                    session = back;
                    (out, error)
                } else {
                    // Nothing to classify (no event, or windows without interim results).
                    session.run_ready()
                };
                // A failure classifying an earlier chunk comes before one parsing a later.
                failed = error.or(failed);
                send_all(tx, out).await?;
                if let Some(e) = failed {
                    return Err(e.into());
                }
            }
            Some(pb::StreamClassifyRequest { message: Some(Message::Config(_)) }) => {
                return Err(Error::InvalidRequest(
                    "a second StreamConfig was sent; only the first message may be a config".into(),
                )
                .into());
            }
            Some(pb::StreamClassifyRequest { message: None }) => {
                return Err(Error::InvalidRequest(
                    "a stream message carries neither config nor audio".into(),
                )
                .into());
            }
        }
    }
    let job = state.workers.run(move || {
        let mut s = session;
        let out = s.finish()?;
        Ok((out, s.audio_seconds(), s.utterances.len()))
    });
    let (out, audio_seconds, utterances) = until_gone(tx, job).await??.0;
    send_all(tx, out).await?;
    tracing::info!(audio_seconds, utterances, "stream finished");
    Ok(())
}

/// A growing buffer of samples of which only a suffix is kept: `data[i]` is sample
/// `offset + i` of the stream.
#[derive(Debug, Default)]
struct Tape {
    offset: u64,
    data: Vec<f32>,
}

impl Tape {
    /// One past the last sample held.
    fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }

    /// Samples `[a, b)` of the stream, clamped to what is held.
    fn slice(&self, a: u64, b: u64) -> &[f32] {
        let lo = a.saturating_sub(self.offset).min(self.data.len() as u64) as usize;
        let hi = b.saturating_sub(self.offset).min(self.data.len() as u64) as usize;
        &self.data[lo..hi.max(lo)]
    }

    /// Forgets samples before `keep_from`, in steps of at least `min_step` samples so the
    /// shifting stays linear in the stream length.
    fn discard_before(&mut self, keep_from: u64, min_step: u64) {
        let drop = keep_from.saturating_sub(self.offset).min(self.data.len() as u64);
        if drop >= min_step.max(1) {
            self.data.drain(..drop as usize);
            self.offset += drop;
        }
    }
}

/// A VAD decision: an utterance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ended {
    /// First sample of the utterance's speech.
    speech_start: u64,
    /// One past its last speech sample.
    speech_end: u64,
    /// Where the end was detected (the end of the audio classified with it).
    cut: u64,
}

/// The energy VAD described in the module docs, on input-rate samples.
#[derive(Debug)]
struct Vad {
    frame: usize,
    /// Mean square of the floor; factors below the loudest and above the quietest frame.
    floor_ms: f64,
    range_factor: f64,
    snr_factor: f64,
    /// Mean squares of the loudest and the quietest frame so far.
    peak_ms: f64,
    quietest_ms: f64,
    start_frames: u64,
    end_frames: u64,
    max_frames: u64,
    sum: f64,
    filled: usize,
    frames_done: u64,
    loud_run: u64,
    quiet_run: u64,
    speech_start: Option<u64>,
}

impl Vad {
    fn new(rate: u32) -> Self {
        let frames = |secs: f64| (secs / VAD_FRAME_SECONDS).round().max(1.0) as u64;
        Self {
            frame: (VAD_FRAME_SECONDS * f64::from(rate)).round().max(1.0) as usize,
            floor_ms: 10f64.powf(VAD_FLOOR_DBFS / 10.0),
            range_factor: 10f64.powf(-VAD_RANGE_DB / 10.0),
            snr_factor: 10f64.powf(VAD_SNR_DB / 10.0),
            peak_ms: 0.0,
            quietest_ms: f64::INFINITY,
            start_frames: frames(VAD_START_SECONDS),
            end_frames: frames(VAD_END_SECONDS),
            max_frames: frames(MAX_UTTERANCE_SECONDS),
            sum: 0.0,
            filled: 0,
            frames_done: 0,
            loud_run: 0,
            quiet_run: 0,
            speech_start: None,
        }
    }

    /// The earliest sample a future utterance (or the current one) can start at.
    fn earliest_start(&self, total: u64) -> u64 {
        match self.speech_start {
            Some(s) => s,
            None => total.saturating_sub((self.start_frames + 1) * self.frame as u64),
        }
    }

    fn push(&mut self, samples: &[f32], ended: &mut Vec<Ended>) {
        for &s in samples {
            self.sum += f64::from(s) * f64::from(s);
            self.filled += 1;
            if self.filled == self.frame {
                let ms = self.sum / self.frame as f64;
                self.peak_ms = self.peak_ms.max(ms);
                self.quietest_ms = self.quietest_ms.min(ms);
                let loud = ms >= self.floor_ms.max(self.peak_ms * self.range_factor)
                    && ms >= self.quietest_ms * self.snr_factor;
                self.sum = 0.0;
                self.filled = 0;
                self.frames_done += 1;
                if let Some(e) = self.on_frame(loud) {
                    ended.push(e);
                }
            }
        }
    }

    /// Advances the state machine by one frame (frame `frames_done - 1`).
    fn on_frame(&mut self, loud: bool) -> Option<Ended> {
        let f = self.frame as u64;
        let end = self.frames_done * f;
        match self.speech_start {
            None => {
                self.loud_run = if loud { self.loud_run + 1 } else { 0 };
                if self.loud_run >= self.start_frames {
                    self.speech_start = Some(end - self.loud_run * f);
                    self.quiet_run = 0;
                }
                None
            }
            Some(start) => {
                self.quiet_run = if loud { 0 } else { self.quiet_run + 1 };
                let too_long = end - start >= self.max_frames * f;
                if self.quiet_run >= self.end_frames || too_long {
                    self.speech_start = None;
                    self.loud_run = 0;
                    return Some(Ended {
                        speech_start: start,
                        speech_end: end - self.quiet_run * f,
                        cut: end,
                    });
                }
                None
            }
        }
    }

    /// At the end of the stream (`total` samples): the utterance still going on, if any.
    fn finish(&mut self, total: u64) -> Option<Ended> {
        let start = self.speech_start.take()?;
        let speech_end = if self.quiet_run > 0 {
            (self.frames_done - self.quiet_run) * self.frame as u64
        } else {
            total
        };
        Some(Ended { speech_start: start, speech_end: speech_end.max(start), cut: total })
    }
}

/// Where a stream's bytes go.
#[derive(Debug)]
enum Input {
    /// Raw PCM, parsed as it arrives.
    Raw(Option<RawPcmStream>),
    /// An encoded container, buffered until half-close.
    Encoded(Vec<u8>),
}

/// Something that became ready while audio was added, in stream order.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// Window `k` is complete.
    Window(u64),
    /// An utterance ended; classify `[from, ended.cut)`.
    Utterance { ended: Ended, from: u64 },
    /// No utterance was found: classify the whole stream.
    WholeStream,
}

/// The analysis state once the input rate is known.
#[derive(Debug)]
struct Core {
    rate: u32,
    feature_rate: u32,
    /// Mono input-rate audio (for the VAD and utterances).
    native: Tape,
    resampler: StreamResampler,
    /// Mono audio at the feature rate (for windows).
    resampled: Tape,
    /// Window and hop in input samples.
    win: u64,
    hop: u64,
    /// Index of the next window to analyse.
    next_window: u64,
    vad: Vad,
    /// Where the last utterance's audio ended (nothing before it belongs to a later one).
    last_cut: u64,
    /// Streams no longer than this many samples keep all audio until an utterance is found,
    /// for the whole-stream fallback. Bounded by the longest utterance, so a long stream
    /// without speech holds at most that much audio.
    fallback_max: u64,
}

impl Core {
    /// The analysis state for mono input at `rate` with the given (already checked) window
    /// and hop, for `model`'s feature rate.
    fn new(
        model: &LoadedModel,
        rate: u32,
        window_seconds: f64,
        hop_seconds: f64,
        max_audio_seconds: f64,
    ) -> Result<Self> {
        let feature_rate = model.features.config.preprocess.resample_hz.unwrap_or(rate);
        let samples = |secs: f64| (secs * f64::from(rate)).round().max(1.0) as u64;
        Ok(Self {
            rate,
            feature_rate,
            native: Tape::default(),
            resampler: StreamResampler::new(rate, feature_rate)?,
            resampled: Tape::default(),
            win: samples(window_seconds),
            hop: samples(hop_seconds),
            next_window: 0,
            vad: Vad::new(rate),
            last_cut: 0,
            fallback_max: (max_audio_seconds.min(MAX_UTTERANCE_SECONDS) * f64::from(rate)).floor()
                as u64,
        })
    }

    fn total(&self) -> u64 {
        self.native.end()
    }

    /// The resampled index of input sample `i`.
    fn to_feature(&self, i: u64) -> u64 {
        if self.rate == self.feature_rate {
            return i;
        }
        (i as f64 * f64::from(self.feature_rate) / f64::from(self.rate)).round() as u64
    }

    /// Adds mono input samples; returns the windows and utterances that became ready.
    fn push(&mut self, mono: &[f32], events: &mut Vec<(u64, Event)>) -> Result<()> {
        self.native.data.extend_from_slice(mono);
        self.resampler.push_into(mono, &mut self.resampled.data)?;
        let mut ended = Vec::new();
        self.vad.push(mono, &mut ended);
        self.utterance_events(&ended, events);
        self.window_events(events);
        Ok(())
    }

    /// Ends the input: flushes the resampler and the VAD.
    fn finish(&mut self, events: &mut Vec<(u64, Event)>) -> Result<()> {
        self.resampler.finish_into(&mut self.resampled.data)?;
        let ended: Vec<Ended> = self.vad.finish(self.total()).into_iter().collect();
        self.utterance_events(&ended, events);
        self.window_events(events);
        Ok(())
    }

    fn utterance_events(&mut self, ended: &[Ended], events: &mut Vec<(u64, Event)>) {
        let pre_roll = (VAD_PRE_ROLL_SECONDS * f64::from(self.rate)).round() as u64;
        for &e in ended {
            let from = e.speech_start.saturating_sub(pre_roll).max(self.last_cut);
            self.last_cut = e.cut;
            events.push((e.cut, Event::Utterance { ended: e, from }));
        }
    }

    fn window_events(&mut self, events: &mut Vec<(u64, Event)>) {
        loop {
            let start = self.next_window * self.hop;
            let end = start + self.win;
            if end > self.total() || self.to_feature(end) > self.resampled.end() {
                break;
            }
            events.push((end, Event::Window(self.next_window)));
            self.next_window += 1;
        }
    }

    /// Forgets audio no later window or utterance needs.
    fn discard(&mut self, found_utterance: bool) {
        let step = u64::from(self.rate);
        let total = self.total();
        let keep_native = if !found_utterance && total <= self.fallback_max {
            0
        } else {
            let pre_roll = (VAD_PRE_ROLL_SECONDS * f64::from(self.rate)).round() as u64;
            self.vad.earliest_start(total).saturating_sub(pre_roll).max(self.last_cut)
        };
        self.native.discard_before(keep_native, step);
        let next = self.to_feature(self.next_window * self.hop);
        self.resampled.discard_before(next, u64::from(self.feature_rate));
    }

    fn seconds(&self, i: u64) -> f64 {
        i as f64 / f64::from(self.rate)
    }
}

/// The whole state of one stream; see the module docs.
#[derive(Debug)]
pub(crate) struct Session {
    model: LoadedModel,
    interim: bool,
    window_seconds: f64,
    hop_seconds: f64,
    input: Input,
    /// Limits for decoding (durations are the stream limit).
    limits: DecodeLimits,
    /// Longest audio classified as one piece (Classify's limit), for the fallback.
    max_audio_seconds: f64,
    core: Option<Core>,
    /// Each utterance's duration in seconds and probabilities.
    utterances: Vec<(f64, Vec<f32>)>,
    /// Windows and utterances that became ready, one group per chunk, not yet classified.
    ready: Vec<Vec<(u64, Event)>>,
}

impl Session {
    /// Checks `config` and resolves the model; errors are the stream's final status.
    fn new(state: &AppState, config: &pb::StreamConfig) -> Result<Self> {
        let name = state.model_name(&config.model)?;
        let model = state.repo.ready(&name, config.model_version)?;
        let (window_seconds, hop_seconds) = resolve_windowing(
            &model,
            config.window_seconds,
            config.hop_seconds,
            state.limits.max_duration_secs,
        )?;
        let stream_secs = state.streams.max_stream_seconds;
        let limits = DecodeLimits {
            max_duration_secs: stream_secs,
            max_input_bytes: state.limits.max_input_bytes,
            ..state.limits.clone()
        };
        let mut session = Self {
            model,
            interim: config.interim_results,
            window_seconds,
            hop_seconds,
            input: Input::Encoded(Vec::new()),
            limits,
            max_audio_seconds: state.limits.max_duration_secs,
            core: None,
            utterances: Vec::new(),
            ready: Vec::new(),
        };
        match &config.format {
            Some(pb::stream_config::Format::Raw(raw)) => {
                let format =
                    raw_format(raw.encoding, raw.sample_rate, raw.channels, &session.limits)?;
                // Raw bytes are bounded by the duration limit, not the message size.
                let raw_limits =
                    DecodeLimits { max_input_bytes: usize::MAX, ..session.limits.clone() };
                let parser = RawPcmStream::new(format, &raw_limits)?;
                session.core = Some(session.core_for(format.sample_rate)?);
                session.input = Input::Raw(Some(parser));
            }
            Some(pb::stream_config::Format::Encoded(_)) => {}
            None => {
                return Err(Error::InvalidRequest(
                    "config.format is unset: set config.raw (PCM format) or config.encoded".into(),
                ));
            }
        }
        Ok(session)
    }

    fn core_for(&self, rate: u32) -> Result<Core> {
        Core::new(&self.model, rate, self.window_seconds, self.hop_seconds, self.max_audio_seconds)
    }

    /// Seconds of audio received so far.
    fn audio_seconds(&self) -> f64 {
        self.core.as_ref().map_or(0.0, |c| c.seconds(c.total()))
    }

    /// Adds one chunk of bytes: parses it and advances the resampler and the voice-activity
    /// detector, queuing the windows and utterances that became ready for
    /// [`run_ready`](Self::run_ready). Cheap (tens of microseconds for a 20 ms chunk), so the
    /// stream's task calls it directly; only classification goes to the worker pool.
    fn take(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.input {
            Input::Encoded(buffer) => {
                let len = buffer.len().saturating_add(bytes.len());
                if len > self.limits.max_input_bytes {
                    return Err(Error::LimitExceeded(format!(
                        "the encoded stream is {len} bytes, over the limit of {} bytes (max_message_bytes); \
                         stream raw PCM for longer audio",
                        self.limits.max_input_bytes
                    )));
                }
                buffer.extend_from_slice(bytes);
                Ok(())
            }
            Input::Raw(parser) => {
                let parser = parser
                    .as_mut()
                    .ok_or_else(|| Error::Internal("raw stream already finished".into()))?;
                let mut mono = Vec::new();
                parser.push_mono(bytes, &mut mono)?;
                self.queue(&mono)
            }
        }
    }

    /// Advances the resampler and the voice-activity detector over mono input-rate samples,
    /// queuing the windows and utterances that became ready.
    fn queue(&mut self, mono: &[f32]) -> Result<()> {
        let mut events = Vec::new();
        self.core_mut()?.push(mono, &mut events)?;
        self.ready.push(events);
        Ok(())
    }

    /// The analysis state, which exists once the stream's sample rate is known.
    fn core_mut(&mut self) -> Result<&mut Core> {
        self.core.as_mut().ok_or_else(|| Error::Internal("stream has no sample rate".into()))
    }

    /// Whether [`run_ready`](Self::run_ready) has a model to run: an utterance, or a window
    /// when interim results are on. Otherwise it only forgets audio, which is cheap.
    fn has_work(&self) -> bool {
        self.ready.iter().flatten().any(|(_, e)| self.interim || !matches!(e, Event::Window(_)))
    }

    /// Classifies what [`take`](Self::take) queued, chunk by chunk in stream order. Blocking.
    /// Returns the responses, and the error that stopped it, if any: the responses of the
    /// chunks before the error are still sent.
    fn run_ready(&mut self) -> (Vec<pb::StreamClassifyResponse>, Option<Error>) {
        let mut out = Vec::new();
        for events in std::mem::take(&mut self.ready) {
            match self.run(events) {
                Ok(more) => out.extend(more),
                Err(e) => return (out, Some(e)),
            }
        }
        self.discard();
        (out, None)
    }

    /// [`run_ready`](Self::run_ready) where no partial result is sent: any error fails all.
    fn run_queued(&mut self) -> Result<Vec<pb::StreamClassifyResponse>> {
        match self.run_ready() {
            (out, None) => Ok(out),
            (_, Some(e)) => Err(e),
        }
    }

    /// Half-close: decodes a buffered container, flushes, and returns the last utterance
    /// results and the summary. Blocking.
    fn finish(&mut self) -> Result<Vec<pb::StreamClassifyResponse>> {
        // Normally empty: the stream's task runs what each message made ready.
        let mut out = self.run_queued()?;
        match std::mem::replace(&mut self.input, Input::Raw(None)) {
            Input::Encoded(bytes) => {
                let audio = decode(&bytes, &self.limits)?;
                drop(bytes);
                self.core = Some(self.core_for(audio.sample_rate)?);
                let mono = mixdown(&audio);
                drop(audio);
                self.queue(&mono)?;
                out.extend(self.run_queued()?);
            }
            Input::Raw(Some(parser)) => {
                parser.finish()?;
            }
            Input::Raw(None) => return Err(Error::Internal("stream finished twice".into())),
        }
        let mut events = Vec::new();
        self.core_mut()?.finish(&mut events)?;
        out.extend(self.run(events)?);
        let whole_stream = self.utterances.is_empty()
            && self.core.as_ref().is_some_and(|c| c.total() <= c.fallback_max);
        if whole_stream {
            out.extend(self.run(vec![(0, Event::WholeStream)])?);
        }
        out.push(self.summary());
        Ok(out)
    }

    /// Classifies the ready events in stream order.
    fn run(&mut self, mut events: Vec<(u64, Event)>) -> Result<Vec<pb::StreamClassifyResponse>> {
        use pb::stream_classify_response::Result as R;
        events.sort_by_key(|(at, _)| *at);
        let mut out = Vec::new();
        let labels = &self.model.manifest.labels;
        for (_, event) in events {
            crate::work::checkpoint()?;
            let core = self
                .core
                .as_ref()
                .ok_or_else(|| Error::Internal("stream has no sample rate".into()))?;
            match event {
                Event::Window(k) => {
                    if !self.interim {
                        continue;
                    }
                    if let Some(w) = window_result(&self.model, core, k)? {
                        out.push(pb::StreamClassifyResponse { result: Some(R::Window(w)) });
                    }
                }
                Event::Utterance { ended, from } => {
                    let samples = core.native.slice(from, ended.cut);
                    let audio = Audio::mono(samples.to_vec(), core.rate);
                    let Some(probs) = skip_unanalysable(classify_audio(&self.model, audio))? else {
                        continue;
                    };
                    let (start, end) =
                        (core.seconds(ended.speech_start), core.seconds(ended.speech_end));
                    out.push(utterance(&mut self.utterances, labels, start, end, probs));
                }
                Event::WholeStream => {
                    let total = core.total();
                    let audio = Audio::mono(core.native.slice(0, total).to_vec(), core.rate);
                    // Exactly Classify's answer, errors included.
                    let probs = classify_audio(&self.model, audio)?;
                    let end = core.seconds(total);
                    out.push(utterance(&mut self.utterances, labels, 0.0, end, probs));
                }
            }
        }
        Ok(out)
    }

    /// Forgets the audio that no later window or utterance needs. Only once every queued
    /// event has run: the detector's state is already past all of them.
    fn discard(&mut self) {
        let found = !self.utterances.is_empty();
        if let Some(core) = self.core.as_mut() {
            core.discard(found);
        }
    }

    /// The StreamSummary: utterance probabilities weighted by utterance duration.
    fn summary(&self) -> pb::StreamClassifyResponse {
        let labels = &self.model.manifest.labels;
        let (label, scores) = if self.utterances.is_empty() {
            (String::new(), Vec::new())
        } else {
            let mut sum = vec![0.0f64; labels.len()];
            let mut weight = 0.0f64;
            for (w, probs) in &self.utterances {
                // A zero-length utterance still counts, with a tiny weight.
                let w = w.max(1e-9);
                weight += w;
                for (s, p) in sum.iter_mut().zip(probs) {
                    *s += w * f64::from(*p);
                }
            }
            let probs: Vec<f32> = sum.iter().map(|s| (s / weight) as f32).collect();
            scored(labels, &probs)
        };
        pb::StreamClassifyResponse {
            result: Some(pb::stream_classify_response::Result::Summary(pb::StreamSummary {
                audio_seconds: self.audio_seconds(),
                utterances: u32::try_from(self.utterances.len()).unwrap_or(u32::MAX),
                label,
                scores,
                model: self.model.name.clone(),
                model_version: self.model.version,
            })),
        }
    }
}

/// The window and hop a stream (or a Classify timeline) uses: the requested values, with 0
/// meaning the model's `[streaming]` defaults, checked against the front end's minimum and
/// the server's audio limit `max_window` (INVALID_ARGUMENT naming the field).
pub(crate) fn resolve_windowing(
    model: &LoadedModel,
    window: f64,
    hop: f64,
    max_window: f64,
) -> Result<(f64, f64)> {
    let defaults = model.manifest.streaming;
    let window_seconds = if window == 0.0 { defaults.window_seconds } else { window };
    if !(window_seconds.is_finite() && window_seconds >= MIN_WINDOW_SECONDS) {
        return Err(Error::InvalidRequest(format!(
            "window_seconds = {window_seconds} must be at least {MIN_WINDOW_SECONDS} s (0 uses the model's {} s)",
            defaults.window_seconds
        )));
    }
    if window_seconds > max_window {
        return Err(Error::InvalidRequest(format!(
            "window_seconds = {window_seconds} is longer than the server's audio limit of {max_window} s (max_audio_seconds)"
        )));
    }
    let hop_seconds = if hop == 0.0 { defaults.hop_seconds.min(window_seconds) } else { hop };
    if !(hop_seconds.is_finite() && hop_seconds > 0.0) {
        return Err(Error::InvalidRequest(format!(
            "hop_seconds = {hop_seconds} must be a positive number (0 uses the model's default)"
        )));
    }
    if hop_seconds > window_seconds {
        return Err(Error::InvalidRequest(format!(
            "hop_seconds = {hop_seconds} must not exceed window_seconds = {window_seconds}"
        )));
    }
    Ok((window_seconds, hop_seconds))
}

/// Classifies window `k` of `core`; `None` when the front end cannot analyse it (silent or
/// too short after trimming), which skips the window.
fn window_result(model: &LoadedModel, core: &Core, k: u64) -> Result<Option<pb::WindowResult>> {
    let start = k * core.hop;
    let end = start + core.win;
    let samples = core.resampled.slice(core.to_feature(start), core.to_feature(end));
    let audio = Audio::mono(samples.to_vec(), core.feature_rate);
    let Some(probs) = skip_unanalysable(classify_audio(model, audio))? else {
        return Ok(None);
    };
    let (label, scores) = scored(&model.manifest.labels, &probs);
    Ok(Some(pb::WindowResult {
        start_seconds: core.seconds(start),
        end_seconds: core.seconds(end),
        label,
        scores,
    }))
}

/// Most windows one Classify timeline may have, so one request cannot hold a worker for
/// thousands of model calls.
pub(crate) const MAX_TIMELINE_WINDOWS: u64 = 1000;
/// Most audio one Classify timeline may analyse, in seconds summed over its windows: long
/// windows at a small hop would otherwise make one request hold a worker for hours of audio
/// (a passed deadline stops a timeline between windows, see [`crate::work::checkpoint`], but
/// a client with a long deadline could still ask for that much).
pub(crate) const MAX_TIMELINE_AUDIO_SECONDS: f64 = 3600.0;

/// Classify's emotion timeline: the interim windows a StreamClassify stream of `audio` (with
/// this window and hop, already checked by [`resolve_windowing`]) would send, computed by the
/// same code on the whole decoded audio at once, as an encoded stream is at half-close.
/// Blocking. More than [`MAX_TIMELINE_WINDOWS`] windows is INVALID_ARGUMENT, before any is
/// classified.
pub(crate) fn timeline(
    model: &LoadedModel,
    audio: &Audio,
    window_seconds: f64,
    hop_seconds: f64,
) -> Result<Vec<pb::WindowResult>> {
    // The fallback bound only matters for utterances, which a timeline does not classify.
    let mut core = Core::new(model, audio.sample_rate, window_seconds, hop_seconds, 0.0)?;
    let mut events = Vec::new();
    core.push(&mixdown(audio), &mut events)?;
    core.finish(&mut events)?;
    let windows: Vec<u64> = events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Window(k) => Some(*k),
            _ => None,
        })
        .collect();
    if windows.len() as u64 > MAX_TIMELINE_WINDOWS {
        return Err(Error::InvalidRequest(format!(
            "the timeline would have {} windows of {window_seconds} s every {hop_seconds} s, more than \
             the limit of {MAX_TIMELINE_WINDOWS}; use a larger timeline.hop_seconds (at least {:.3} s for this audio)",
            windows.len(),
            audio.duration_secs() / MAX_TIMELINE_WINDOWS as f64
        )));
    }
    let analysed = windows.len() as f64 * core.win as f64 / f64::from(core.rate);
    if analysed > MAX_TIMELINE_AUDIO_SECONDS {
        return Err(Error::InvalidRequest(format!(
            "the timeline's {} windows of {window_seconds} s would analyse {analysed:.0} s of audio, \
             more than the limit of {MAX_TIMELINE_AUDIO_SECONDS} s; use a shorter \
             timeline.window_seconds or a larger timeline.hop_seconds",
            windows.len()
        )));
    }
    let mut out = Vec::with_capacity(windows.len());
    for k in windows {
        // Hundreds of windows can outlast the request's deadline: stop once it has passed.
        crate::work::checkpoint()?;
        if let Some(w) = window_result(model, &core, k)? {
            out.push(w);
        }
    }
    Ok(out)
}

/// Records an utterance's duration and probabilities and builds its UtteranceResult.
fn utterance(
    utterances: &mut Vec<(f64, Vec<f32>)>,
    labels: &[String],
    start: f64,
    end: f64,
    probs: Vec<f32>,
) -> pb::StreamClassifyResponse {
    let (label, scores) = scored(labels, &probs);
    let index = u32::try_from(utterances.len()).unwrap_or(u32::MAX);
    utterances.push(((end - start).max(0.0), probs));
    pb::StreamClassifyResponse {
        result: Some(pb::stream_classify_response::Result::Utterance(pb::UtteranceResult {
            index,
            start_seconds: start,
            end_seconds: end,
            label,
            scores,
        })),
    }
}

/// Windows and utterances the front end cannot analyse (silent after all, or trimmed below
/// the minimum length) are skipped rather than ending the stream.
fn skip_unanalysable(r: Result<Vec<f32>>) -> Result<Option<Vec<f32>>> {
    match r {
        Ok(p) => Ok(Some(p)),
        Err(Error::Dsp(e)) if matches!(e.kind(), ErrorKind::NoAudio | ErrorKind::TooShort) => {
            tracing::debug!(error = %e, "skipping a piece of the stream");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tone(secs: f64, rate: u32, amp: f32) -> Vec<f32> {
        let n = (secs * f64::from(rate)) as usize;
        (0..n).map(|i| amp * (i as f32 * 0.07).sin()).collect()
    }

    #[test]
    fn vad_finds_two_utterances_with_the_documented_boundaries() {
        let rate = 16_000;
        let mut audio = tone(0.3, rate, 0.0);
        audio.extend(tone(1.0, rate, 0.5));
        audio.extend(tone(0.8, rate, 0.0)); // longer than the hangover
        audio.extend(tone(0.5, rate, 0.5));
        audio.extend(tone(0.2, rate, 0.0)); // shorter than the hangover
        let mut vad = Vad::new(rate);
        let mut ended = Vec::new();
        // Odd chunk sizes must not matter.
        for chunk in audio.chunks(333) {
            vad.push(chunk, &mut ended);
        }
        let s = |secs: f64| (secs * f64::from(rate)).round() as u64;
        assert_eq!(ended, vec![Ended { speech_start: s(0.3), speech_end: s(1.3), cut: s(1.8) }]);
        let last = vad.finish(audio.len() as u64).unwrap();
        assert_eq!(last, Ended { speech_start: s(2.1), speech_end: s(2.6), cut: s(2.8) });
    }

    #[test]
    fn short_blips_and_quiet_audio_are_not_speech() {
        let rate = 8_000;
        let mut audio = tone(0.05, rate, 0.5); // 50 ms: below the 100 ms start
        audio.extend(tone(1.0, rate, 0.001)); // -63 dBFS: below the floor
        audio.extend(tone(1.0, rate, 0.003)); // -53 dBFS: over the floor, 44 dB below the blip
        let mut vad = Vad::new(rate);
        let mut ended = Vec::new();
        vad.push(&audio, &mut ended);
        assert!(ended.is_empty());
        assert_eq!(vad.finish(audio.len() as u64), None);
    }

    #[test]
    fn background_noise_is_not_speech_but_speech_over_it_is() {
        // -50 dBFS noise (over the floor, within 40 dB of the speech) before -20 dBFS speech.
        let rate = 16_000;
        let mut audio = tone(0.6, rate, 0.0045);
        audio.extend(tone(1.0, rate, 0.14));
        let mut vad = Vad::new(rate);
        let mut ended = Vec::new();
        vad.push(&audio, &mut ended);
        assert!(ended.is_empty());
        let s = |secs: f64| (secs * f64::from(rate)).round() as u64;
        let last = vad.finish(audio.len() as u64).unwrap();
        assert_eq!(last, Ended { speech_start: s(0.6), speech_end: s(1.6), cut: s(1.6) });
    }

    #[test]
    fn quiet_speech_is_heard_relative_to_the_loudest_frame() {
        // A quiet recording (RAVDESS level): -50 dBFS speech between -80 dBFS pauses.
        let rate = 16_000;
        let mut audio = tone(0.5, rate, 0.0001);
        audio.extend(tone(1.0, rate, 0.0045));
        audio.extend(tone(1.0, rate, 0.0001));
        audio.extend(tone(0.4, rate, 0.0045));
        let mut vad = Vad::new(rate);
        let mut ended = Vec::new();
        vad.push(&audio, &mut ended);
        let s = |secs: f64| (secs * f64::from(rate)).round() as u64;
        assert_eq!(ended, vec![Ended { speech_start: s(0.5), speech_end: s(1.5), cut: s(2.0) }]);
        let last = vad.finish(audio.len() as u64).unwrap();
        assert_eq!(last, Ended { speech_start: s(2.5), speech_end: s(2.9), cut: s(2.9) });
    }

    #[test]
    fn tape_keeps_a_suffix_and_clamps() {
        let mut t = Tape::default();
        t.data.extend((0..10).map(|i| i as f32));
        t.discard_before(4, 2);
        assert_eq!((t.offset, t.end()), (4, 10));
        assert_eq!(t.slice(2, 6), &[4.0, 5.0]);
        assert_eq!(t.slice(9, 20), &[9.0]);
        t.discard_before(5, 2);
        assert_eq!(t.offset, 4, "steps below the minimum are deferred");
    }
}
