//! Preprocessing: everything between decoded audio and analysis.
//!
//! [`preprocess`] applies the steps of [`config::Preprocess`](crate::config::Preprocess) in a
//! fixed order: mixdown to mono → resampling → peak normalisation → silence trimming →
//! optional noise reduction. The order matters: resampling before normalising means the peak
//! is measured on the signal that is analysed (resampling can move peaks slightly), and
//! trimming after normalising keeps the trim threshold, which is relative to the loudest
//! frame anyway, independent of recording level. Noise reduction comes last so that its noise
//! floor is estimated on exactly the samples that are analysed.
//!
//! Each step is also a public function, usable on its own:
//!
//! * [`mixdown`] averages channels, as `librosa.load(mono=True)` does.
//! * [`Resampler`] / [`resample`] convert whole clips with rubato's FFT resampler, and
//!   [`StreamResampler`] converts live streams chunk by chunk; both compensate their filter
//!   delay, so a click at time `t` stays at time `t`, and both produce
//!   `round(len · to / from)` samples.
//! * [`peak_normalize`] scales the peak to 1.
//! * [`trim_interval`] / [`trim`] reproduce `librosa.effects.trim` exactly, reusing
//!   [`framing::rms`] for the frame energies.
//! * [`reduce_noise`] is a spectral gate (off unless configured).
//!
//! [`Preprocessor`] keeps a planned [`Resampler`] per source rate, for callers that process
//! many clips: planning the FFT filter costs more than running it on a short clip.

mod noise;
mod resample;

use std::collections::HashMap;

pub use noise::{noise_window_len, reduce_noise};
pub use resample::{Resampler, StreamResampler, resample, resampled_len};

use crate::audio::Audio;
use crate::config::{FeatureConfig, Normalize, Preprocess};
use crate::error::{Error, ErrorKind, Result};
use crate::framing;

/// Averages all channels into one (`librosa.to_mono`). No channels gives an empty signal.
pub fn mixdown(audio: &Audio) -> Vec<f32> {
    let mut out = Vec::new();
    mixdown_into(audio, &mut out);
    out
}

/// [`mixdown`] writing into a caller buffer (cleared first). Channels of unequal length are
/// mixed over the shortest one, so the result never reads past a channel's end.
pub fn mixdown_into(audio: &Audio, out: &mut Vec<f32>) {
    out.clear();
    let Some(first) = audio.channels.first() else {
        return;
    };
    if audio.channels.len() == 1 {
        out.extend_from_slice(first);
        return;
    }
    let len = audio.channels.iter().map(Vec::len).min().unwrap_or(0);
    out.extend_from_slice(&first[..len]);
    for ch in &audio.channels[1..] {
        for (o, &v) in out.iter_mut().zip(&ch[..len]) {
            *o += v;
        }
    }
    // Sum then divide, as NumPy's mean does, so the result matches librosa to the last bit
    // for two channels.
    let n = audio.channels.len() as f32;
    for o in out.iter_mut() {
        *o /= n;
    }
}

/// The largest absolute sample (0 for empty input; NaN samples are ignored).
///
/// Sixteen independent running maxima, merged at the end: one running maximum is a chain of
/// dependent compares the compiler cannot vectorise, and measured 7–10× slower on a 3 s clip. The
/// maximum does not depend on the order, so the result is the same.
pub fn peak_abs(y: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [0.0f32; LANES];
    let blocks = y.chunks_exact(LANES);
    let rest = blocks.remainder();
    for block in blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            let a = v.abs();
            if a > *lane {
                *lane = a;
            }
        }
    }
    lanes.iter().chain(rest).fold(0.0f32, |m, &v| if v.abs() > m { v.abs() } else { m })
}

/// Scales by the reciprocal of the largest absolute sample so the peak becomes 1.0 (within an
/// ulp), and returns that peak. All-zero (or empty) input is left unchanged and returns 0.
///
/// librosa divides by the peak; multiplying by `1 / peak` differs from that by at most one ulp
/// on some samples (about one in twenty), far below anything a feature can resolve, and is
/// several times cheaper: a vector division is slow on every x86 core, and this runs on every
/// sample of every clip and stream window the server classifies.
pub fn peak_normalize(y: &mut [f32]) -> f32 {
    let peak = peak_abs(y);
    if peak > 0.0 && peak.is_finite() {
        let scale = 1.0 / peak;
        for v in y.iter_mut() {
            *v *= scale;
        }
    }
    peak
}

/// The non-silent interval `[start, end)` of `y`, in samples, exactly as
/// `librosa.effects.trim(y, top_db, ref=np.max, frame_length, hop_length)` returns it.
///
/// Frame energies are [`framing::rms`] on librosa's centred grid; a frame is non-silent when
/// `10·log10(max(rms², 1e-10)) − 10·log10(max(max(rms)², 1e-10)) > −top_db`. The interval runs
/// from the first non-silent frame's start (`frame · hop`) to the end of the last one
/// (`(frame + 1) · hop`, capped at the length). When no frame is non-silent (only possible
/// for `top_db ≤ 0`) it is `(0, 0)`. Note that, as in librosa, an all-zero signal is *not*
/// silent: every frame equals the (zero) reference. Empty input, or a zero frame or hop
/// length, gives `(0, y.len())`: nothing can be judged.
pub fn trim_interval(
    y: &[f32],
    top_db: f32,
    frame_length: usize,
    hop_length: usize,
) -> (usize, usize) {
    if y.is_empty() || frame_length == 0 || hop_length == 0 {
        return (0, y.len());
    }
    let rms = framing::rms(y, frame_length, hop_length);
    // librosa squares the float32 RMS before taking logs; do the same, then compare in f64.
    let db = |r: f32| -> f64 { 10.0 * f64::from(r * r).max(1e-10).log10() };
    let reference = rms.iter().fold(0.0f32, |m, &r| m.max(r));
    let ref_db = db(reference);
    let threshold = -f64::from(top_db);
    let nonsilent = |r: &f32| db(*r) - ref_db > threshold;
    let Some(first) = rms.iter().position(nonsilent) else {
        return (0, 0);
    };
    let last = rms.iter().rposition(nonsilent).unwrap_or(first);
    let start = (first * hop_length).min(y.len());
    let end = ((last + 1) * hop_length).min(y.len());
    (start, end.max(start))
}

/// `y` without its leading and trailing silence (see [`trim_interval`]).
pub fn trim(y: &[f32], top_db: f32, frame_length: usize, hop_length: usize) -> &[f32] {
    let (start, end) = trim_interval(y, top_db, frame_length, hop_length);
    &y[start..end]
}

/// Runs the configured preprocessing chain on `audio` and returns the mono samples and their
/// sample rate.
///
/// `frame_length` and `hop_length` are the analysis STFT's `n_fft` and hop: trimming uses
/// them so its frames coincide with the analysis frames. Multi-channel audio with
/// `cfg.mono == false` is rejected with [`ErrorKind::InvalidConfig`], since every feature
/// downstream is mono. This plans a fresh resampler per call; use [`Preprocessor`] when
/// processing many clips.
pub fn preprocess(
    audio: &Audio,
    cfg: &Preprocess,
    frame_length: usize,
    hop_length: usize,
) -> Result<(Vec<f32>, u32)> {
    run_chain(audio, cfg, frame_length, hop_length, |from, to, y| resample(y, from, to))
}

/// The chain shared by [`preprocess`] and [`Preprocessor::run`]; `resample_with` is how a
/// resampler for `(from, to)` is obtained and run.
fn run_chain(
    audio: &Audio,
    cfg: &Preprocess,
    frame_length: usize,
    hop_length: usize,
    resample_with: impl FnMut(u32, u32, &[f32]) -> Result<Vec<f32>>,
) -> Result<(Vec<f32>, u32)> {
    check_input(audio, cfg)?;
    let mono = mixdown(audio);
    run_chain_on_mono(mono, audio.sample_rate, cfg, frame_length, hop_length, resample_with)
}

/// Refuses audio the chain cannot process: a zero sample rate, or several channels with mono
/// mixdown off.
fn check_input(audio: &Audio, cfg: &Preprocess) -> Result<()> {
    if audio.sample_rate == 0 {
        return Err(Error::new(ErrorKind::InvalidConfig, "audio has a sample rate of 0 Hz"));
    }
    if !cfg.mono && audio.channels.len() > 1 {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "preprocess.mono = false with {} channels: every feature is computed on mono audio, \
                 so enable mono mixdown",
                audio.channels.len()
            ),
        ));
    }
    Ok(())
}

/// The mono signal of `audio`, taking a single channel's buffer over instead of copying it.
fn into_mono(mut audio: Audio) -> Vec<f32> {
    if audio.channels.len() == 1 {
        audio.channels.pop().unwrap_or_default()
    } else {
        mixdown(&audio)
    }
}

/// The chain after mixdown: resampling, normalisation, trimming, noise reduction.
fn run_chain_on_mono(
    mut y: Vec<f32>,
    mut rate: u32,
    cfg: &Preprocess,
    frame_length: usize,
    hop_length: usize,
    mut resample_with: impl FnMut(u32, u32, &[f32]) -> Result<Vec<f32>>,
) -> Result<(Vec<f32>, u32)> {
    if let Some(to) = cfg.resample_hz
        && to != rate
    {
        y = resample_with(rate, to, &y)?;
        rate = to;
    }
    match cfg.normalize {
        Normalize::Peak => {
            peak_normalize(&mut y);
        }
        Normalize::None => {}
    }
    if let Some(top_db) = cfg.trim_top_db {
        let (start, end) = trim_interval(&y, top_db, frame_length, hop_length);
        y.truncate(end);
        y.drain(..start);
    }
    if let Some(nr) = cfg.noise_reduction.as_ref() {
        y = reduce_noise(&y, rate, nr)?;
    }
    Ok((y, rate))
}

/// A reusable [`preprocess`]: the same configuration for many clips, with one planned
/// [`Resampler`] kept per source rate.
#[derive(Debug)]
pub struct Preprocessor {
    cfg: Preprocess,
    frame_length: usize,
    hop_length: usize,
    resamplers: HashMap<u32, Resampler>,
}

impl Preprocessor {
    /// A preprocessor for `cfg`, trimming on frames of `frame_length` every `hop_length`
    /// samples (the analysis STFT's `n_fft` and hop).
    pub fn new(cfg: Preprocess, frame_length: usize, hop_length: usize) -> Self {
        Self { cfg, frame_length, hop_length, resamplers: HashMap::new() }
    }

    /// A preprocessor for a whole feature configuration (its preprocessing and STFT framing).
    pub fn from_config(config: &FeatureConfig) -> Self {
        Self::new(config.preprocess.clone(), config.stft.n_fft, config.stft.hop_length)
    }

    /// The preprocessing configuration.
    pub fn config(&self) -> &Preprocess {
        &self.cfg
    }

    /// Runs the chain on `audio` (see [`preprocess`]), reusing resamplers planned earlier.
    pub fn run(&mut self, audio: &Audio) -> Result<(Vec<f32>, u32)> {
        check_input(audio, &self.cfg)?;
        self.run_on_mono(mixdown(audio), audio.sample_rate)
    }

    /// [`Preprocessor::run`] on audio the caller no longer needs: a mono clip's samples are
    /// processed in their own buffer rather than copied first (the same result).
    pub fn run_owned(&mut self, audio: Audio) -> Result<(Vec<f32>, u32)> {
        check_input(&audio, &self.cfg)?;
        let rate = audio.sample_rate;
        self.run_on_mono(into_mono(audio), rate)
    }

    fn run_on_mono(&mut self, mono: Vec<f32>, rate: u32) -> Result<(Vec<f32>, u32)> {
        let resamplers = &mut self.resamplers;
        let (frame_length, hop_length) = (self.frame_length, self.hop_length);
        run_chain_on_mono(mono, rate, &self.cfg, frame_length, hop_length, |from, to, y| {
            // Only the target rate is fixed per configuration, so the source rate is the key.
            let r = match resamplers.entry(from) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(Resampler::new(from, to)?),
            };
            r.process(y)
        })
    }
}
