//! The feature configuration: one serde/TOML type that names the whole pipeline.
//!
//! The trainer writes it next to every model and the server reads it back, so a model is
//! always served with exactly the front end it was trained on. Every field has a default;
//! unknown keys are rejected so a typo cannot silently fall back to a default.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Loudness normalisation applied before analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    /// Divide by the largest absolute sample so the peak is 1.0.
    #[default]
    Peak,
    /// Leave levels as recorded.
    None,
}

/// Spectral-gating noise reduction (off unless present in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoiseReduction {
    /// A bin is kept when it exceeds the noise estimate by this many dB.
    pub threshold_db: f32,
    /// How far gated bins are attenuated, in dB (positive number).
    pub reduction_db: f32,
    /// Quantile of frame energies taken as the noise floor estimate (0..1).
    pub noise_quantile: f32,
}

impl Default for NoiseReduction {
    fn default() -> Self {
        Self { threshold_db: 6.0, reduction_db: 24.0, noise_quantile: 0.1 }
    }
}

/// The preprocessing steps, applied in this order: mixdown, resample, normalise, trim,
/// noise reduction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Preprocess {
    /// Average all channels into one (always on in practice: every feature is mono).
    pub mono: bool,
    /// Resample to this rate in Hz; `None` analyses at the file's own rate.
    pub resample_hz: Option<u32>,
    /// Loudness normalisation.
    pub normalize: Normalize,
    /// Trim leading and trailing audio quieter than this many dB below the peak frame
    /// (`librosa.effects.trim(top_db=...)`); `None` keeps everything.
    pub trim_top_db: Option<f32>,
    /// Optional spectral-gating noise reduction.
    pub noise_reduction: Option<NoiseReduction>,
}

impl Default for Preprocess {
    fn default() -> Self {
        Self {
            mono: true,
            resample_hz: Some(48_000),
            normalize: Normalize::Peak,
            trim_top_db: Some(40.0),
            noise_reduction: None,
        }
    }
}

/// Analysis window shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// Periodic Hann window (librosa's `"hann"`).
    #[default]
    Hann,
}

/// Short-time Fourier transform parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Stft {
    /// FFT size in samples.
    pub n_fft: usize,
    /// Window length in samples (≤ `n_fft`; zero-padded to `n_fft`, centred).
    pub win_length: usize,
    /// Hop between frames in samples.
    pub hop_length: usize,
    /// Window shape.
    pub window: Window,
}

impl Default for Stft {
    fn default() -> Self {
        Self { n_fft: 2048, win_length: 2048, hop_length: 512, window: Window::Hann }
    }
}

/// Mel filterbank and cepstrum parameters (Slaney scale and area normalisation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mel {
    /// Number of mel bands.
    pub n_mels: usize,
    /// Lowest band edge in Hz.
    pub fmin_hz: f32,
    /// Highest band edge in Hz; `None` means Nyquist.
    pub fmax_hz: Option<f32>,
    /// Number of MFCCs (DCT-II, orthonormal) kept from the log-mel spectrum.
    pub n_mfcc: usize,
    /// Window width for MFCC deltas (odd, ≥ 3; librosa's default is 9).
    pub delta_width: usize,
}

impl Default for Mel {
    fn default() -> Self {
        Self { n_mels: 128, fmin_hz: 0.0, fmax_hz: None, n_mfcc: 13, delta_width: 9 }
    }
}

/// Praat-style pitch analysis range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pitch {
    /// Pitch floor in Hz (also sets Praat's automatic time step, 0.75 / floor).
    pub floor_hz: f64,
    /// Pitch ceiling in Hz.
    pub ceiling_hz: f64,
}

impl Default for Pitch {
    fn default() -> Self {
        Self { floor_hz: 50.0, ceiling_hz: 500.0 }
    }
}

/// One per-frame feature stream; a model's input is these concatenated per frame, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameFeature {
    /// Log-mel spectrum, `n_mels` columns.
    LogmelDb,
    /// MFCCs, `n_mfcc` columns.
    Mfcc,
    /// First-order MFCC deltas, `n_mfcc` columns.
    MfccDelta,
    /// Second-order MFCC deltas, `n_mfcc` columns.
    MfccDelta2,
    /// Frame RMS energy, 1 column.
    Rms,
    /// Zero-crossing rate, 1 column.
    Zcr,
    /// Spectral centroid in Hz, 1 column.
    SpectralCentroid,
    /// 85 % spectral rolloff in Hz, 1 column.
    SpectralRolloff,
    /// Onset strength (spectral flux), 1 column.
    OnsetStrength,
}

impl FrameFeature {
    /// The stable name used in JSON output, model metadata and feature listings.
    pub fn name(self) -> &'static str {
        match self {
            FrameFeature::LogmelDb => "logmel_db",
            FrameFeature::Mfcc => "mfcc",
            FrameFeature::MfccDelta => "mfcc_delta",
            FrameFeature::MfccDelta2 => "mfcc_delta2",
            FrameFeature::Rms => "rms",
            FrameFeature::Zcr => "zcr",
            FrameFeature::SpectralCentroid => "spectral_centroid",
            FrameFeature::SpectralRolloff => "spectral_rolloff",
            FrameFeature::OnsetStrength => "onset_strength",
        }
    }

    /// Columns this stream contributes under `config`.
    pub fn width(self, config: &FeatureConfig) -> usize {
        match self {
            FrameFeature::LogmelDb => config.mel.n_mels,
            FrameFeature::Mfcc | FrameFeature::MfccDelta | FrameFeature::MfccDelta2 => {
                config.mel.n_mfcc
            }
            _ => 1,
        }
    }
}

/// The complete description of a feature pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureConfig {
    /// A name for humans and logs (`"seed"`, `"speech"`, or anything).
    pub name: String,
    /// Preprocessing before analysis.
    pub preprocess: Preprocess,
    /// STFT shared by every spectral feature.
    pub stft: Stft,
    /// Mel and MFCC parameters.
    pub mel: Mel,
    /// Pitch range for Praat-style voice features.
    pub pitch: Pitch,
    /// Spectral rolloff fraction (librosa's `roll_percent`).
    pub rolloff_percent: f32,
    /// The per-frame features a model consumes, in column order.
    pub frame_features: Vec<FrameFeature>,
    /// Per-utterance normalisation of the frame matrix (omitted from TOML when `none`).
    #[serde(skip_serializing_if = "FrameNorm::is_none")]
    pub frame_norm: FrameNorm,
}

/// Per-utterance normalisation of each frame-matrix column, applied after extraction.
///
/// Subtracting each clip's own column means (cepstral mean normalisation, for MFCCs) removes
/// what is constant over a clip, such as the speaker's vocal tract and the channel, which is
/// what a speaker-independent model should not learn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FrameNorm {
    /// Frames as extracted.
    #[default]
    None,
    /// Each column minus its mean over the clip's frames.
    Mean,
    /// Each column minus its mean, divided by its standard deviation over the clip.
    MeanVar,
}

impl FrameNorm {
    /// Whether this is [`FrameNorm::None`].
    pub fn is_none(&self) -> bool {
        *self == FrameNorm::None
    }
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self::seed()
    }
}

impl FeatureConfig {
    /// The case study's pipeline: 48 kHz, n_fft 2048, hop 512, 128 mels, 13 MFCCs.
    pub fn seed() -> Self {
        Self {
            name: "seed".into(),
            preprocess: Preprocess::default(),
            stft: Stft::default(),
            mel: Mel::default(),
            pitch: Pitch::default(),
            rolloff_percent: 0.85,
            frame_norm: FrameNorm::None,
            frame_features: vec![
                FrameFeature::Mfcc,
                FrameFeature::MfccDelta,
                FrameFeature::Rms,
                FrameFeature::Zcr,
                FrameFeature::SpectralCentroid,
                FrameFeature::SpectralRolloff,
                FrameFeature::OnsetStrength,
            ],
        }
    }

    /// A common speech front end: 16 kHz, 25 ms windows (400) in a 512 FFT, 10 ms hop, 40 mels.
    pub fn speech() -> Self {
        Self {
            name: "speech".into(),
            preprocess: Preprocess { resample_hz: Some(16_000), ..Preprocess::default() },
            stft: Stft { n_fft: 512, win_length: 400, hop_length: 160, window: Window::Hann },
            mel: Mel { n_mels: 40, ..Mel::default() },
            pitch: Pitch::default(),
            rolloff_percent: 0.85,
            frame_features: vec![FrameFeature::LogmelDb],
            frame_norm: FrameNorm::None,
        }
    }

    /// A preset by name (`seed` or `speech`).
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "seed" => Some(Self::seed()),
            "speech" => Some(Self::speech()),
            _ => None,
        }
    }

    /// Parses TOML and validates the result.
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: Self = toml::from_str(text).map_err(|e| {
            Error::new(ErrorKind::InvalidConfig, format!("feature configuration: {e}"))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Serialises to TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| {
            Error::new(ErrorKind::Internal, format!("serialising feature configuration: {e}"))
        })
    }

    /// Total columns of the frame matrix a model receives.
    pub fn frame_width(&self) -> usize {
        self.frame_features.iter().map(|f| f.width(self)).sum()
    }

    /// Column names of the frame matrix, e.g. `mfcc_0`, ..., `rms`.
    pub fn frame_column_names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.frame_width());
        for f in &self.frame_features {
            let w = f.width(self);
            if w == 1 {
                names.push(f.name().to_string());
            } else {
                names.extend((0..w).map(|i| format!("{}_{i}", f.name())));
            }
        }
        names
    }

    /// Checks every range and relation; the message names the offending key.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::new(ErrorKind::InvalidConfig, msg));
        let s = &self.stft;
        if !(16..=65_536).contains(&s.n_fft) {
            return bad(format!("stft.n_fft = {} is outside 16..=65536", s.n_fft));
        }
        if s.win_length == 0 || s.win_length > s.n_fft {
            return bad(format!(
                "stft.win_length = {} must be in 1..=n_fft ({})",
                s.win_length, s.n_fft
            ));
        }
        if s.hop_length == 0 || s.hop_length > s.n_fft {
            return bad(format!(
                "stft.hop_length = {} must be in 1..=n_fft ({})",
                s.hop_length, s.n_fft
            ));
        }
        if let Some(hz) = self.preprocess.resample_hz
            && !(1_000..=384_000).contains(&hz)
        {
            return bad(format!("preprocess.resample_hz = {hz} is outside 1000..=384000"));
        }
        if let Some(db) = self.preprocess.trim_top_db
            && !(db.is_finite() && db > 0.0)
        {
            return bad(format!("preprocess.trim_top_db = {db} must be a positive number"));
        }
        if let Some(nr) = self.preprocess.noise_reduction {
            if !(nr.noise_quantile > 0.0 && nr.noise_quantile < 1.0) {
                return bad(format!(
                    "preprocess.noise_reduction.noise_quantile = {} must be in (0, 1)",
                    nr.noise_quantile
                ));
            }
            if !(nr.threshold_db.is_finite()
                && nr.reduction_db.is_finite()
                && nr.reduction_db >= 0.0)
            {
                return bad(
                    "preprocess.noise_reduction thresholds must be finite, reduction_db ≥ 0".into(),
                );
            }
        }
        let m = &self.mel;
        if m.n_mels == 0 || m.n_mels > 512 {
            return bad(format!("mel.n_mels = {} is outside 1..=512", m.n_mels));
        }
        if m.n_mfcc == 0 || m.n_mfcc > m.n_mels {
            return bad(format!("mel.n_mfcc = {} must be in 1..=n_mels ({})", m.n_mfcc, m.n_mels));
        }
        if m.delta_width < 3 || m.delta_width.is_multiple_of(2) {
            return bad(format!("mel.delta_width = {} must be odd and ≥ 3", m.delta_width));
        }
        if !(m.fmin_hz.is_finite() && m.fmin_hz >= 0.0) {
            return bad(format!("mel.fmin_hz = {} must be ≥ 0", m.fmin_hz));
        }
        if let Some(fmax) = m.fmax_hz
            && !(fmax.is_finite() && fmax > m.fmin_hz)
        {
            return bad(format!("mel.fmax_hz = {fmax} must exceed fmin_hz ({})", m.fmin_hz));
        }
        let p = &self.pitch;
        if !(p.floor_hz.is_finite()
            && p.floor_hz >= 10.0
            && p.ceiling_hz > p.floor_hz
            && p.ceiling_hz <= 5_000.0)
        {
            return bad(format!(
                "pitch floor/ceiling = {}/{} Hz must satisfy 10 ≤ floor < ceiling ≤ 5000",
                p.floor_hz, p.ceiling_hz
            ));
        }
        if !(self.rolloff_percent > 0.0 && self.rolloff_percent < 1.0) {
            return bad(format!("rolloff_percent = {} must be in (0, 1)", self.rolloff_percent));
        }
        if self.frame_features.is_empty() {
            return bad("frame_features is empty: name at least one frame feature".into());
        }
        Ok(())
    }
}
