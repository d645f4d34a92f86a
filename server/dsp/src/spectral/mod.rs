//! The spectral front end: one STFT, every spectral feature derived from it, matching
//! librosa 0.11 number for number.
//!
//! # Design
//!
//! Each stage is a small planned object or a free function, usable on its own and checked
//! against librosa in `tests/tests/spectral_parity.rs`:
//!
//! * [`Stft`] — `librosa.stft(center=True, pad_mode="constant", window="hann")` then `|X|²`:
//!   a periodic Hann of `win_length` zero-padded, centred, to `n_fft`, a planned real FFT
//!   (`realfft`), frames centred by `n_fft / 2` zeros on each side.
//! * [`MelFilterbank`] — `librosa.filters.mel` (Slaney scale, Slaney area normalisation),
//!   stored sparsely so only each triangle's non-zero bins are touched;
//!   [`power_to_db`] — `librosa.power_to_db` in place.
//! * [`Mfcc`] — orthonormal DCT-II of the log-mel spectrum as a precomputed basis;
//!   [`delta`] — `librosa.feature.delta(mode="interp")`, Savitzky–Golay of any order.
//! * [`spectral_centroid`], [`spectral_rolloff`] — on the magnitude `√power`, as the reference
//!   calls them; [`onset_strength`] / [`onset_strength_from_db`] — librosa's spectral-flux
//!   envelope; [`tempo`] / [`TempoEstimator`] — librosa's autocorrelation-tempogram estimate.
//!
//! [`SpectralAnalyzer`] ties them together. Everything that depends only on the sample rate
//! and the [`FeatureConfig`] — FFT plans, windows, the filterbank, the DCT basis, the tempo
//! prior — is built once in [`SpectralAnalyzer::new`]; [`SpectralAnalyzer::analyze_into`]
//! then runs one STFT and derives log-mel, MFCCs and deltas, centroid and rolloff from it,
//! plus RMS and ZCR from [`crate::framing`], reusing the caller's buffers.
//!
//! **The onset envelope's STFT.** `librosa.onset.onset_strength(y, sr, n_fft, hop_length,
//! n_mels)` computes its own mel spectrogram with `win_length = n_fft` (it passes no window
//! length), `fmin = 0`, `fmax = sr/2`, then `power_to_db(ref=1.0)` (ref=1.0 is librosa's
//! default here; a `ref=np.max` would only shift every value by a constant, which the
//! difference cancels). When the configuration's `win_length == n_fft` and its mel range is
//! the default 0 Hz–Nyquist (the seed configuration), that is exactly the log-mel the analyzer
//! already has, so the onset envelope costs one pass over it. Otherwise (the speech
//! configuration, 400-sample windows in a 512 FFT) the analyzer plans a second STFT with a
//! full `n_fft` window, and a second filterbank only if the mel range differs, so the envelope
//! and tempo stay identical to librosa's rather than silently using a different window.
//!
//! Precision: the STFT, filterbank, dB conversion and DCT run in f32 like librosa (which rounds
//! its f64 FFT to complex64 and works in float32 from there); the centroid's totals, the onset
//! mean and the tempogram's frame average use f64. On the reference fixtures every feature
//! agrees with librosa far inside the parity test's tolerances, except that a rolloff sitting
//! exactly on the 85 % threshold can land one bin over (4 of ~31,000 frames).
//!
//! Speed: hot loops are written as element-wise maps, which LLVM vectorises, and reductions
//! with independent accumulators; [`power_to_db`] uses a branch-free polynomial `log10`
//! accurate to about 2 ulp for the same reason. The centroid's magnitudes use `f32::sqrt`,
//! which release builds vectorise (the tests' `opt-level = 2` does not). The FFTs dominate what remains: the STFT and the tempogram (one
//! 1536-point FFT per onset frame at 48 kHz / hop 512) are each about a third of
//! [`SpectralAnalyzer::analyze_into`]; [`SpectralAnalyzer::with_tempo`] can skip the latter.

mod cepstrum;
mod features;
mod mel;
mod stft;
mod tempo;

pub use cepstrum::{Mfcc, delta, delta_into};
pub use features::{
    onset_strength, onset_strength_from_db, onset_strength_from_db_into, spectral_centroid,
    spectral_centroid_into, spectral_rolloff, spectral_rolloff_into,
};
pub use mel::{
    DEFAULT_AMIN, DEFAULT_TOP_DB, DbReference, MelFilterbank, hz_to_mel, mel_frequencies,
    mel_to_hz, power_to_db,
};
pub use stft::{Stft, hann_periodic};
pub use tempo::{TempoEstimator, tempo};

use crate::config::{FeatureConfig, FrameFeature};
use crate::error::{Error, ErrorKind, Result};
use crate::{Matrix, framing};

/// Every spectral and frame feature of one signal, frames as rows, all on the same centred
/// frame grid (`1 + len / hop_length` frames).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpectralFeatures {
    /// The power spectrogram `|X|²`, frames × `n_fft/2 + 1`; only kept when asked for
    /// ([`SpectralAnalyzer::keep_power`]).
    pub power: Option<Matrix>,
    /// Log-mel spectrum in dB (`power_to_db(ref=1, amin=1e-10, top_db=80)`), frames × `n_mels`.
    pub logmel_db: Matrix,
    /// MFCCs, frames × `n_mfcc`.
    pub mfcc: Matrix,
    /// First-order MFCC deltas, frames × `n_mfcc`.
    pub mfcc_delta: Matrix,
    /// Second-order MFCC deltas, only when asked for ([`SpectralAnalyzer::with_delta2`], on by
    /// default when the configuration's frame features include them).
    pub mfcc_delta2: Option<Matrix>,
    /// RMS energy per frame (frame length `n_fft`).
    pub rms: Vec<f32>,
    /// Zero-crossing rate per frame (frame length `n_fft`).
    pub zcr: Vec<f32>,
    /// Spectral centroid in Hz per frame.
    pub centroid: Vec<f32>,
    /// Spectral rolloff in Hz per frame.
    pub rolloff: Vec<f32>,
    /// Onset strength per frame.
    pub onset_strength: Vec<f32>,
    /// Global tempo estimate in BPM (0 when turned off with [`SpectralAnalyzer::with_tempo`]).
    pub tempo_bpm: f32,
}

impl SpectralFeatures {
    /// Number of frames.
    pub fn num_frames(&self) -> usize {
        self.logmel_db.rows
    }
}

/// How the onset envelope gets its log-mel spectrogram.
#[derive(Debug, Clone)]
enum OnsetSource {
    /// The main log-mel is exactly librosa's onset input (win = n_fft, mel 0 Hz–Nyquist).
    SharedLogmel,
    /// Same STFT (win = n_fft) but the configured mel range differs: own filterbank.
    SharedPower { mel: MelFilterbank },
    /// win ≠ n_fft: a second STFT with a full window, and an own filterbank when needed.
    OwnStft { stft: Stft, mel: Option<MelFilterbank> },
}

/// A planned, reusable spectral analysis for one sample rate and [`FeatureConfig`].
///
/// Plan once with [`SpectralAnalyzer::new`], then call [`SpectralAnalyzer::analyze`] or, on
/// hot paths, [`SpectralAnalyzer::analyze_into`] with a reused [`SpectralFeatures`] so no
/// per-call allocation grows after the first clip of a given length.
#[derive(Debug, Clone)]
pub struct SpectralAnalyzer {
    sample_rate: u32,
    n_fft: usize,
    hop_length: usize,
    delta_width: usize,
    rolloff_percent: f32,
    keep_power: bool,
    delta2: bool,
    tempo_on: bool,
    stft: Stft,
    mel: MelFilterbank,
    mfcc: Mfcc,
    onset: OnsetSource,
    tempo: TempoEstimator,
    power: Matrix,
    onset_power: Matrix,
    onset_logmel: Matrix,
    cumsum: Vec<f32>,
}

impl SpectralAnalyzer {
    /// Validates `config` and plans every transform for audio at `sample_rate` Hz. Second-order
    /// deltas are computed when `config.frame_features` lists them; the power spectrogram is
    /// not kept unless [`SpectralAnalyzer::keep_power`] asks for it.
    pub fn new(sample_rate: u32, config: &FeatureConfig) -> Result<Self> {
        config.validate()?;
        if sample_rate == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "spectral analysis: sample rate is zero",
            ));
        }
        let sr = f64::from(sample_rate);
        let s = &config.stft;
        let m = &config.mel;
        let stft = Stft::from_config(s)?;
        let fmax = m.fmax_hz.map(f64::from);
        let mel = MelFilterbank::new(sr, s.n_fft, m.n_mels, f64::from(m.fmin_hz), fmax)?;
        let mfcc = Mfcc::new(m.n_mels, m.n_mfcc)?;
        // librosa's onset envelope uses fmin = 0 and fmax = sr/2 whatever the config says.
        let default_range = m.fmin_hz == 0.0 && fmax.is_none_or(|f| f == sr / 2.0);
        let onset_mel = || MelFilterbank::new(sr, s.n_fft, m.n_mels, 0.0, None);
        let onset = match (s.win_length == s.n_fft, default_range) {
            (true, true) => OnsetSource::SharedLogmel,
            (true, false) => OnsetSource::SharedPower { mel: onset_mel()? },
            (false, shared_mel) => OnsetSource::OwnStft {
                stft: Stft::new(s.n_fft, s.n_fft, s.hop_length)?,
                mel: if shared_mel { None } else { Some(onset_mel()?) },
            },
        };
        Ok(Self {
            sample_rate,
            n_fft: s.n_fft,
            hop_length: s.hop_length,
            delta_width: m.delta_width,
            rolloff_percent: config.rolloff_percent,
            keep_power: false,
            tempo_on: true,
            delta2: config.frame_features.contains(&FrameFeature::MfccDelta2),
            stft,
            mel,
            mfcc,
            onset,
            tempo: TempoEstimator::new(sample_rate, s.hop_length)?,
            power: Matrix::default(),
            onset_power: Matrix::default(),
            onset_logmel: Matrix::default(),
            cumsum: Vec::new(),
        })
    }

    /// Keep the power spectrogram in [`SpectralFeatures::power`] (off by default).
    pub fn keep_power(mut self, keep: bool) -> Self {
        self.keep_power = keep;
        self
    }

    /// Compute second-order deltas into [`SpectralFeatures::mfcc_delta2`].
    pub fn with_delta2(mut self, on: bool) -> Self {
        self.delta2 = on;
        self
    }

    /// Estimate the tempo (on by default). The tempogram costs about as much as the STFT, so a
    /// caller that only needs frame features can turn it off; [`SpectralFeatures::tempo_bpm`]
    /// is then 0.
    pub fn with_tempo(mut self, on: bool) -> Self {
        self.tempo_on = on;
        self
    }

    /// The sample rate this analyzer was planned for.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The main STFT.
    pub fn stft(&self) -> &Stft {
        &self.stft
    }

    /// The mel filterbank.
    pub fn mel_filterbank(&self) -> &MelFilterbank {
        &self.mel
    }

    /// True when the onset envelope needs its own STFT (`win_length ≠ n_fft`).
    pub fn onset_needs_own_stft(&self) -> bool {
        matches!(self.onset, OnsetSource::OwnStft { .. })
    }

    /// Frames produced for a signal of `len` samples.
    pub fn num_frames(&self, len: usize) -> usize {
        self.stft.num_frames(len)
    }

    /// Analyses `y`; allocating form of [`SpectralAnalyzer::analyze_into`].
    pub fn analyze(&mut self, y: &[f32]) -> Result<SpectralFeatures> {
        let mut out = SpectralFeatures::default();
        self.analyze_into(y, &mut out)?;
        Ok(out)
    }

    /// Analyses `y` into `out`, reusing its buffers.
    ///
    /// Errors: [`ErrorKind::NonFiniteSamples`] for NaN or infinite samples;
    /// [`ErrorKind::TooShort`] for an empty signal or one with fewer frames than the delta
    /// window (`mel.delta_width`, 9 by default: librosa refuses deltas there too). `out` is
    /// unspecified after an error.
    pub fn analyze_into(&mut self, y: &[f32], out: &mut SpectralFeatures) -> Result<()> {
        if y.is_empty() {
            return Err(Error::new(ErrorKind::TooShort, "spectral analysis of an empty signal"));
        }
        if y.iter().any(|v| !v.is_finite()) {
            return Err(Error::new(
                ErrorKind::NonFiniteSamples,
                "spectral analysis: the signal contains NaN or infinity",
            ));
        }
        let frames = self.stft.num_frames(y.len());
        if frames < self.delta_width {
            return Err(Error::new(
                ErrorKind::TooShort,
                format!(
                    "{} samples give {frames} frames at hop {}; MFCC deltas need at least {}",
                    y.len(),
                    self.hop_length,
                    self.delta_width
                ),
            ));
        }
        let sr = f64::from(self.sample_rate);
        let mut power = std::mem::take(&mut self.power);
        if let Some(p) = out.power.take() {
            power = p;
        }
        self.stft.power_into(y, &mut power);
        self.mel.apply_into(&power, &mut out.logmel_db)?;
        power_to_db(
            &mut out.logmel_db,
            DbReference::Value(1.0),
            DEFAULT_AMIN,
            Some(DEFAULT_TOP_DB),
        );
        self.mfcc.mfcc_into(&out.logmel_db, &mut out.mfcc)?;
        delta_into(&out.mfcc, self.delta_width, 1, &mut out.mfcc_delta)?;
        if self.delta2 {
            let mut d2 = out.mfcc_delta2.take().unwrap_or_default();
            delta_into(&out.mfcc, self.delta_width, 2, &mut d2)?;
            out.mfcc_delta2 = Some(d2);
        } else {
            out.mfcc_delta2 = None;
        }
        framing::rms_into(y, self.n_fft, self.hop_length, &mut out.rms);
        framing::zero_crossing_rate_into(y, self.n_fft, self.hop_length, &mut out.zcr);
        features::centroid_and_rolloff_into(
            &power,
            sr,
            self.n_fft,
            self.rolloff_percent,
            &mut out.centroid,
            &mut out.rolloff,
            &mut self.cumsum,
        );
        let onset_db = match &self.onset {
            OnsetSource::SharedLogmel => &out.logmel_db,
            OnsetSource::SharedPower { mel } => {
                mel.apply_into(&power, &mut self.onset_logmel)?;
                power_to_db(
                    &mut self.onset_logmel,
                    DbReference::Value(1.0),
                    DEFAULT_AMIN,
                    Some(DEFAULT_TOP_DB),
                );
                &self.onset_logmel
            }
            OnsetSource::OwnStft { stft, mel } => {
                stft.power_into(y, &mut self.onset_power);
                mel.as_ref()
                    .unwrap_or(&self.mel)
                    .apply_into(&self.onset_power, &mut self.onset_logmel)?;
                power_to_db(
                    &mut self.onset_logmel,
                    DbReference::Value(1.0),
                    DEFAULT_AMIN,
                    Some(DEFAULT_TOP_DB),
                );
                &self.onset_logmel
            }
        };
        onset_strength_from_db_into(onset_db, self.n_fft, self.hop_length, &mut out.onset_strength);
        out.tempo_bpm = if self.tempo_on { self.tempo.estimate(&out.onset_strength) } else { 0.0 };
        if self.keep_power {
            out.power = Some(power);
        } else {
            self.power = power;
        }
        Ok(())
    }
}
