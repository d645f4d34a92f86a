//! The `prosodia.v1.Emotion` service: Classify, ExtractFeatures, and the StreamClassify entry
//! point (the stream itself lives in `stream.rs`).
//!
//! Each handler does only cheap work on the executor (validating fields, resolving the model)
//! and hands decoding, extraction and inference to [`crate::work::Workers`] as one job, so a
//! request holds one worker for its whole CPU phase and timings are measured where the work
//! happens.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use prosodia_dsp::decode::{DecodeLimits, PcmEncoding, RawPcmFormat, decode, decode_raw};
use prosodia_dsp::pipeline::Extractor;
use prosodia_dsp::utterance::NAMES;
use prosodia_dsp::{Audio, ErrorKind, FeatureConfig, Matrix};
use prosodia_proto::pb;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::batch::Batcher;
use crate::error::{Error, Result};
use crate::plugins::runner_error;
use crate::repository::{FeatureProfile, InputKind, LoadedModel};
use crate::runner::{Batch, normalize_probabilities};
use crate::server::AppState;
use crate::work::with_extractor;

/// The Emotion service.
#[derive(Debug, Clone)]
pub struct EmotionService {
    state: Arc<AppState>,
    seed: Arc<FeatureProfile>,
    speech: Arc<FeatureProfile>,
}

impl EmotionService {
    /// A service over the shared server state.
    pub fn new(state: Arc<AppState>) -> Result<Self> {
        Ok(Self {
            state,
            seed: Arc::new(FeatureProfile::new(FeatureConfig::seed())?),
            speech: Arc::new(FeatureProfile::new(FeatureConfig::speech())?),
        })
    }

    fn profile_for(&self, req: &pb::ExtractFeaturesRequest) -> Result<Arc<FeatureProfile>> {
        if !req.model.is_empty() {
            if !req.preset.is_empty() {
                return Err(Error::InvalidRequest("set either model or preset, not both".into()));
            }
            return Ok(self.state.repo.ready(&req.model, req.model_version)?.features);
        }
        match req.preset.as_str() {
            "" | "seed" => Ok(self.seed.clone()),
            "speech" => Ok(self.speech.clone()),
            other => Err(Error::InvalidRequest(format!(
                "preset {other:?} is unknown; use \"seed\" or \"speech\", or name a model"
            ))),
        }
    }

    async fn classify_inner(&self, req: pb::ClassifyRequest) -> Result<pb::ClassifyResponse> {
        let started = Instant::now();
        let name = self.state.model_name(&req.model)?;
        let model = self.state.repo.ready(&name, req.model_version)?;
        let audio = req.audio.ok_or_else(missing_audio)?;
        let limits = self.state.limits.clone();
        // Checked before queueing, so a bad window costs no worker time.
        let windowing = match &req.timeline {
            Some(t) => Some(crate::stream::resolve_windowing(
                &model,
                t.window_seconds,
                t.hop_seconds,
                limits.max_duration_secs,
            )?),
            None => None,
        };
        let m = model.clone();
        let policy = self.state.batching;
        let (mut out, queue) = self
            .state
            .workers
            .run(move || classify_job(&m, audio, &limits, !policy.enabled(), windowing))
            .await?;
        let mut batch_size = 1;
        if let Some((data, frames, width)) = out.pending.take() {
            let batcher = model.batcher.get_or_init(|| {
                Batcher::spawn(
                    Arc::clone(&model.runner),
                    model.manifest.labels.len(),
                    policy,
                    self.state.workers.clone(),
                )
            });
            let submitted = Instant::now();
            let batched = batcher.run(data, frames, width).await?;
            let probs = normalize_probabilities(&batched.scores, model.manifest.labels.len())?;
            (out.label, out.scores) = scored(&model.manifest.labels, &probs);
            out.timings.inference_ms = ms(submitted.elapsed());
            batch_size = batched.batch_size;
        }
        let mut timings = out.timings;
        timings.queue_ms = ms(queue);
        timings.total_ms = ms(started.elapsed());
        self.state.metrics.observe_timings(&timings);
        self.state.metrics.observe_batch(&model.name, batch_size);
        tracing::info!(model = %model.name, version = model.version, label = %out.label, "classified");
        Ok(pb::ClassifyResponse {
            label: out.label,
            scores: out.scores,
            model: model.name.clone(),
            model_version: model.version,
            audio_duration_seconds: out.duration,
            timings: Some(timings),
            timeline: out.timeline,
        })
    }

    async fn extract_inner(
        &self,
        req: pb::ExtractFeaturesRequest,
    ) -> Result<pb::ExtractFeaturesResponse> {
        let started = Instant::now();
        let profile = self.profile_for(&req)?;
        let audio = req.audio.ok_or_else(missing_audio)?;
        let limits = self.state.limits.clone();
        let frames = req.include_frames;
        let (mut resp, queue) =
            self.state.workers.run(move || extract_job(&profile, audio, &limits, frames)).await?;
        if let Some(t) = resp.timings.as_mut() {
            t.queue_ms = ms(queue);
            t.total_ms = ms(started.elapsed());
            self.state.metrics.observe_timings(t);
        }
        Ok(resp)
    }
}

fn missing_audio() -> Error {
    Error::InvalidRequest("audio is missing: set audio.encoded (a file) or audio.raw (PCM)".into())
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Decodes request audio (blocking).
pub fn decode_audio(audio: pb::Audio, limits: &DecodeLimits) -> Result<Audio> {
    match audio.source {
        Some(pb::audio::Source::Encoded(bytes)) => Ok(decode(&bytes, limits)?),
        Some(pb::audio::Source::Raw(raw)) => {
            let format = raw_format(raw.encoding, raw.sample_rate, raw.channels, limits)?;
            Ok(decode_raw(&raw.data, &format, limits)?)
        }
        None => Err(missing_audio()),
    }
}

/// Checks and converts the raw PCM fields of a request against `limits`. The messages name
/// the request field: the decoder's own checks of a format would call it an "invalid
/// configuration", which reads as the server's fault.
pub fn raw_format(
    encoding: i32,
    sample_rate: u32,
    channels: u32,
    limits: &DecodeLimits,
) -> Result<RawPcmFormat> {
    let encoding = match pb::PcmEncoding::try_from(encoding) {
        Ok(pb::PcmEncoding::S16le) => PcmEncoding::S16Le,
        Ok(pb::PcmEncoding::F32le) => PcmEncoding::F32Le,
        Ok(pb::PcmEncoding::Unspecified) => {
            return Err(Error::InvalidRequest(
                "raw.encoding is unset: use PCM_ENCODING_S16LE or PCM_ENCODING_F32LE".into(),
            ));
        }
        Err(_) => {
            return Err(Error::InvalidRequest(format!(
                "raw.encoding {encoding} is not a known encoding"
            )));
        }
    };
    let max_rate = limits.max_sample_rate;
    if sample_rate == 0 {
        return Err(Error::InvalidRequest(format!(
            "raw.sample_rate is 0: set the PCM sample rate in Hz (1 to {max_rate})"
        )));
    }
    if sample_rate > max_rate {
        return Err(Error::InvalidRequest(format!(
            "raw.sample_rate = {sample_rate} Hz is above the {max_rate} Hz accepted"
        )));
    }
    let max_channels = limits.max_channels;
    if channels == 0 {
        return Err(Error::InvalidRequest(format!(
            "raw.channels is 0: set the number of interleaved channels (1 to {max_channels})"
        )));
    }
    let channels = u16::try_from(channels)
        .ok()
        .filter(|&c| usize::from(c) <= max_channels)
        .ok_or_else(|| {
            Error::InvalidRequest(format!(
                "raw.channels = {channels} is more than the {max_channels} accepted"
            ))
        })?;
    Ok(RawPcmFormat { encoding, sample_rate, channels })
}

struct Classified {
    label: String,
    scores: Vec<pb::ClassScore>,
    duration: f64,
    timings: pb::Timings,
    /// The model input `(values, frames, width)` when inference is left to the batcher.
    pending: Option<(Vec<f32>, usize, usize)>,
    /// The emotion timeline, when the request asked for one.
    timeline: Vec<pb::WindowResult>,
}

fn no_frames() -> Error {
    prosodia_dsp::Error::new(ErrorKind::TooShort, "the audio yields no analysis frames").into()
}

/// The model input for decoded audio: `(values, frames, width)`.
fn model_input(model: &LoadedModel, audio: Cow<'_, Audio>) -> Result<(Vec<f32>, usize, usize)> {
    // Audio the caller is done with is preprocessed in place (no copy of a mono clip).
    let preprocess = |ex: &mut Extractor, audio: Cow<'_, Audio>| match audio {
        Cow::Owned(a) => ex.preprocess_owned(a),
        Cow::Borrowed(a) => ex.preprocess(a),
    };
    if let Some(plugin) = &model.extractor {
        // Plugins take mono audio at the configuration's rate: the server preprocesses.
        let (signal, rate) = with_extractor(&model.features, |ex| Ok(preprocess(ex, audio)?))?;
        let out = plugin.extract(&[&signal], rate).map_err(|e| runner_error(&e))?;
        let m =
            out.into_iter().next().filter(|m| m.rows > 0 && m.cols > 0).ok_or_else(no_frames)?;
        return Ok((m.data, m.rows, m.cols));
    }
    with_extractor(&model.features, |ex| match model.manifest.input.kind {
        InputKind::Frames => {
            let (signal, rate) = preprocess(ex, audio)?;
            let m = ex.frames(&signal, rate)?;
            if m.rows == 0 || m.cols == 0 {
                return Err(no_frames());
            }
            Ok((m.data, m.rows, m.cols))
        }
        InputKind::Utterance => {
            let a = match audio {
                Cow::Owned(a) => ex.analyze_owned(a)?,
                Cow::Borrowed(a) => ex.analyze(a)?,
            };
            let values: Vec<f32> = a.utterance.values.iter().map(|&v| v as f32).collect();
            Ok((values, 1, NAMES.len()))
        }
    })
}

/// Classifies scores: every label with its probability, plus the argmax label.
pub(crate) fn scored(labels: &[String], probs: &[f32]) -> (String, Vec<pb::ClassScore>) {
    let best = probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
    let scores = labels
        .iter()
        .zip(probs)
        .map(|(label, &probability)| pb::ClassScore { label: label.clone(), probability })
        .collect();
    (labels.get(best).cloned().unwrap_or_default(), scores)
}

/// Decodes and extracts, then runs the model too when `infer` (else leaves the input in
/// `pending` for the batcher); with `windowing` (window and hop seconds), also classifies
/// the timeline's windows.
fn classify_job(
    model: &LoadedModel,
    audio: pb::Audio,
    limits: &DecodeLimits,
    infer: bool,
    windowing: Option<(f64, f64)>,
) -> Result<Classified> {
    let t0 = Instant::now();
    let audio = decode_audio(audio, limits)?;
    let duration = audio.duration_secs();
    let t1 = Instant::now();
    crate::work::checkpoint()?;
    let timeline_audio = windowing.map(|w| (audio.clone(), w));
    let (data, t, f) = model_input(model, Cow::Owned(audio))?;
    crate::work::checkpoint()?;
    // After the whole clip's features, so bad audio gets Classify's own error first.
    let timeline = match timeline_audio {
        Some((audio, (window, hop))) => crate::stream::timeline(model, &audio, window, hop)?,
        None => Vec::new(),
    };
    let t2 = Instant::now();
    let mut out = Classified {
        label: String::new(),
        scores: Vec::new(),
        duration,
        timings: pb::Timings {
            decode_ms: ms(t1 - t0),
            extract_ms: ms(t2 - t1),
            ..Default::default()
        },
        pending: None,
        timeline,
    };
    if infer {
        let probs = run_model(model, &data, t, f)?;
        out.timings.inference_ms = ms(t2.elapsed());
        (out.label, out.scores) = scored(&model.manifest.labels, &probs);
    } else {
        out.pending = Some((data, t, f));
    }
    Ok(out)
}

/// Runs the model on one `[1, t, f]` input and returns its probabilities, checked and
/// rescaled to sum to one.
fn run_model(model: &LoadedModel, data: &[f32], t: usize, f: usize) -> Result<Vec<f32>> {
    let lengths = [t];
    let batch = Batch { data, n: 1, t, f, lengths: &lengths };
    batch.check()?;
    let raw = model.runner.run(&batch)?;
    Ok(normalize_probabilities(&raw, model.manifest.labels.len())?)
}

/// The model's probabilities for decoded audio, computed exactly as [`Classify`] does after
/// decoding (same preprocessing, features and runner call). Blocking; StreamClassify calls
/// it on the worker pool for every window and utterance.
///
/// [`Classify`]: pb::emotion_server::Emotion::classify
pub(crate) fn classify_audio(model: &LoadedModel, audio: Audio) -> Result<Vec<f32>> {
    let (data, t, f) = model_input(model, Cow::Owned(audio))?;
    run_model(model, &data, t, f)
}

fn matrix(name: &str, m: &Matrix, columns: Vec<String>, step: f64, first: f64) -> pb::FrameMatrix {
    pb::FrameMatrix {
        name: name.to_owned(),
        rows: u32::try_from(m.rows).unwrap_or(u32::MAX),
        cols: u32::try_from(m.cols).unwrap_or(u32::MAX),
        column_names: columns,
        data: m.data.clone(),
        frame_step_seconds: step,
        first_frame_seconds: first,
    }
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}_{i}")).collect()
}

fn extract_job(
    profile: &FeatureProfile,
    audio: pb::Audio,
    limits: &DecodeLimits,
    include_frames: bool,
) -> Result<pb::ExtractFeaturesResponse> {
    let t0 = Instant::now();
    let audio = decode_audio(audio, limits)?;
    let duration = audio.duration_secs();
    let t1 = Instant::now();
    crate::work::checkpoint()?;
    with_extractor(profile, |ex| {
        let a = ex.analyze_owned(audio)?;
        let features = a
            .utterance
            .iter()
            .map(|(name, value)| pb::Feature { name: name.to_owned(), value })
            .collect();
        let mut frames = Vec::new();
        if include_frames {
            let config = ex.config();
            let step = config.stft.hop_length as f64 / f64::from(a.sample_rate.max(1));
            let s = &a.spectral;
            frames.push(matrix(
                "model_input",
                &ex.frame_matrix(s),
                config.frame_column_names(),
                step,
                0.0,
            ));
            frames.push(matrix(
                "logmel_db",
                &s.logmel_db,
                numbered("logmel_db", s.logmel_db.cols),
                step,
                0.0,
            ));
            frames.push(matrix("mfcc", &s.mfcc, numbered("mfcc", s.mfcc.cols), step, 0.0));
            let p = &a.voice.pitch;
            let f0 = Matrix {
                rows: p.f0_hz.len(),
                cols: 1,
                data: p.f0_hz.iter().map(|&v| v as f32).collect(),
            };
            frames.push(matrix(
                "pitch",
                &f0,
                vec!["f0_hz".to_owned()],
                p.time_step,
                p.first_frame_time,
            ));
        }
        let t2 = Instant::now();
        Ok(pb::ExtractFeaturesResponse {
            features,
            frames,
            feature_config: ex.config().name.clone(),
            sample_rate: a.sample_rate,
            audio_duration_seconds: duration,
            timings: Some(pb::Timings {
                decode_ms: ms(t1 - t0),
                extract_ms: ms(t2 - t1),
                inference_ms: 0.0,
                queue_ms: 0.0,
                total_ms: 0.0,
            }),
        })
    })
}

/// The response stream type of StreamClassify.
pub type ResponseStream =
    Pin<Box<dyn Stream<Item = Result<pb::StreamClassifyResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::emotion_server::Emotion for EmotionService {
    async fn classify(
        &self,
        request: Request<pb::ClassifyRequest>,
    ) -> Result<Response<pb::ClassifyResponse>, Status> {
        Ok(Response::new(self.classify_inner(request.into_inner()).await?))
    }

    type StreamClassifyStream = ResponseStream;

    async fn stream_classify(
        &self,
        request: Request<Streaming<pb::StreamClassifyRequest>>,
    ) -> Result<Response<Self::StreamClassifyStream>, Status> {
        let stream = crate::stream::start(self.state.clone(), request.into_inner())?;
        Ok(Response::new(stream))
    }

    async fn extract_features(
        &self,
        request: Request<pb::ExtractFeaturesRequest>,
    ) -> Result<Response<pb::ExtractFeaturesResponse>, Status> {
        Ok(Response::new(self.extract_inner(request.into_inner()).await?))
    }
}
