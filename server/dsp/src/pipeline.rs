//! The whole front end in one object: audio in, model input and utterance features out.
//!
//! [`Extractor`] owns everything that is expensive to set up (FFT plans, mel filterbanks,
//! resamplers), planned once per sample rate and reused, so it is meant to live for many
//! calls. It is `Send` but keeps scratch state behind `&mut self`; parallel callers keep one
//! per thread (rayon's `map_init`, a thread-local, or a pool). The same object serves the
//! trainer, the CLI and the server, which is what guarantees that a model is served with the
//! features it was trained on.

use std::collections::HashMap;

use crate::config::FeatureConfig;
use crate::config::{FrameFeature, FrameNorm};
use crate::error::{Error, ErrorKind, Result};
use crate::praat::{self, VoiceReport};
use crate::preprocess::{Preprocessor, peak_abs};
use crate::spectral::{SpectralAnalyzer, SpectralFeatures};
use crate::utterance::{self, UtteranceFeatures};
use crate::{Audio, Matrix};

/// Checks applied to every clip before analysis, so junk is refused with a reason rather
/// than turned into meaningless features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guards {
    /// Clips shorter than this (after preprocessing) are refused as too short.
    pub min_duration_secs: f64,
    /// Clips whose peak is below this level (dBFS, before normalisation) are refused as silent.
    pub silence_peak_dbfs: f64,
}

impl Default for Guards {
    fn default() -> Self {
        // 0.1 s holds two 50 Hz pitch periods' worth of frames; -60 dBFS is far below speech
        // yet well above the ±1 LSB dither of a "silent" 16-bit recording.
        Self { min_duration_secs: 0.1, silence_peak_dbfs: -60.0 }
    }
}

/// Everything computed for one clip.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The preprocessed mono signal the features were computed on.
    pub signal: Vec<f32>,
    /// Its sample rate.
    pub sample_rate: u32,
    /// Spectral and time-domain frame features.
    pub spectral: SpectralFeatures,
    /// Praat pitch, jitter and shimmer.
    pub voice: VoiceReport,
    /// The 46 utterance features.
    pub utterance: UtteranceFeatures,
}

/// The configured front end; see the module docs.
pub struct Extractor {
    config: FeatureConfig,
    guards: Guards,
    preprocessor: Preprocessor,
    /// Keyed by sample rate and whether the tempo is estimated (frame matrices never need it).
    analyzers: HashMap<(u32, bool), SpectralAnalyzer>,
    /// The spectral features of the last [`Extractor::frames`] call, kept so the next call
    /// reuses their buffers instead of allocating a dozen matrices per clip.
    frames_scratch: SpectralFeatures,
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extractor")
            .field("config", &self.config.name)
            .field("guards", &self.guards)
            .finish()
    }
}

impl Extractor {
    /// Validates `config` and prepares the pipeline.
    pub fn new(config: FeatureConfig) -> Result<Self> {
        Self::with_guards(config, Guards::default())
    }

    /// Like [`Extractor::new`] with explicit input guards.
    pub fn with_guards(config: FeatureConfig, guards: Guards) -> Result<Self> {
        config.validate()?;
        let preprocessor = Preprocessor::from_config(&config);
        Ok(Self {
            config,
            guards,
            preprocessor,
            analyzers: HashMap::new(),
            frames_scratch: SpectralFeatures::default(),
        })
    }

    /// The configuration this extractor implements.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// Refuses silent clips, then preprocesses and refuses clips left too short.
    pub fn preprocess(&mut self, audio: &Audio) -> Result<(Vec<f32>, u32)> {
        self.check_input(audio)?;
        let (y, sr) = self.preprocessor.run(audio)?;
        self.check_length(y.len() as f64 / f64::from(sr), " after trimming silence")?;
        Ok((y, sr))
    }

    /// [`Extractor::preprocess`] on audio the caller no longer needs, which saves copying a
    /// mono clip's samples (see [`Preprocessor::run_owned`]).
    pub fn preprocess_owned(&mut self, audio: Audio) -> Result<(Vec<f32>, u32)> {
        self.check_input(&audio)?;
        let (y, sr) = self.preprocessor.run_owned(audio)?;
        self.check_length(y.len() as f64 / f64::from(sr), " after trimming silence")?;
        Ok((y, sr))
    }

    /// The guards that apply before preprocessing: silence and length.
    fn check_input(&self, audio: &Audio) -> Result<()> {
        let peak = audio.channels.iter().map(|c| peak_abs(c)).fold(0.0, f32::max);
        let peak_dbfs = 20.0 * f64::from(peak).max(1e-12).log10();
        if peak_dbfs < self.guards.silence_peak_dbfs {
            return Err(Error::new(
                ErrorKind::NoAudio,
                format!(
                    "the audio is silent: its peak is {peak_dbfs:.1} dBFS, below the {:.0} dBFS floor",
                    self.guards.silence_peak_dbfs
                ),
            ));
        }
        self.check_length(audio.duration_secs(), "")
    }

    fn check_length(&self, secs: f64, when: &str) -> Result<()> {
        if secs < self.guards.min_duration_secs {
            return Err(Error::new(
                ErrorKind::TooShort,
                format!(
                    "the audio lasts {:.1} ms{when}; at least {:.0} ms is needed",
                    secs * 1e3,
                    self.guards.min_duration_secs * 1e3
                ),
            ));
        }
        Ok(())
    }

    fn analyzer(&mut self, sample_rate: u32, tempo: bool) -> Result<&mut SpectralAnalyzer> {
        // A small map: one entry per distinct rate seen (one when resampling is on) and use.
        let key = (sample_rate, tempo);
        if !self.analyzers.contains_key(&key) {
            let a = SpectralAnalyzer::new(sample_rate, &self.config)?.with_tempo(tempo);
            self.analyzers.insert(key, a);
        }
        self.analyzers
            .get_mut(&key)
            .ok_or_else(|| Error::new(ErrorKind::Internal, "spectral analyzer cache"))
    }

    /// Spectral and time-domain frame features of an already preprocessed signal.
    pub fn spectral(&mut self, signal: &[f32], sample_rate: u32) -> Result<SpectralFeatures> {
        self.analyzer(sample_rate, true)?.analyze(signal)
    }

    /// Praat voice analysis of an already preprocessed signal.
    pub fn voice(&self, signal: &[f32], sample_rate: u32) -> Result<VoiceReport> {
        praat::analyse_voice(
            signal,
            sample_rate,
            self.config.pitch.floor_hz,
            self.config.pitch.ceiling_hz,
        )
    }

    /// Full analysis of decoded audio: preprocessing, frame, voice and utterance features.
    pub fn analyze(&mut self, audio: &Audio) -> Result<Analysis> {
        let (signal, sample_rate) = self.preprocess(audio)?;
        self.analyze_signal(signal, sample_rate)
    }

    /// [`Extractor::analyze`] on audio the caller no longer needs: a mono clip's samples are
    /// preprocessed in their own buffer instead of being copied first. Same result.
    pub fn analyze_owned(&mut self, audio: Audio) -> Result<Analysis> {
        let (signal, sample_rate) = self.preprocess_owned(audio)?;
        self.analyze_signal(signal, sample_rate)
    }

    /// Full analysis of a signal that is already preprocessed.
    pub fn analyze_signal(&mut self, signal: Vec<f32>, sample_rate: u32) -> Result<Analysis> {
        let spectral = self.spectral(&signal, sample_rate)?;
        let voice = self.voice(&signal, sample_rate)?;
        let utterance = summarize(&signal, sample_rate, &spectral, &voice);
        Ok(Analysis { signal, sample_rate, spectral, voice, utterance })
    }

    /// The 46 utterance features of a preprocessed signal.
    pub fn utterance(&mut self, signal: &[f32], sample_rate: u32) -> Result<UtteranceFeatures> {
        let spectral = self.spectral(signal, sample_rate)?;
        let voice = self.voice(signal, sample_rate)?;
        Ok(summarize(signal, sample_rate, &spectral, &voice))
    }

    /// The model's input for a preprocessed signal: the configured frame features
    /// concatenated per frame, in `config.frame_features` order. The tempo (an utterance
    /// feature that costs about as much as the STFT) is not estimated.
    pub fn frames(&mut self, signal: &[f32], sample_rate: u32) -> Result<Matrix> {
        let mut spectral = std::mem::take(&mut self.frames_scratch);
        let analyzed = self.analyzer(sample_rate, false)?.analyze_into(signal, &mut spectral);
        let matrix = analyzed.map(|()| self.frame_matrix(&spectral));
        self.frames_scratch = spectral;
        matrix
    }

    /// Assembles the model input from already computed spectral features.
    pub fn frame_matrix(&self, s: &SpectralFeatures) -> Matrix {
        let rows = s.logmel_db.rows;
        let mut out = Matrix::zeros(rows, self.config.frame_width());
        let mut col = 0;
        for feature in &self.config.frame_features {
            match feature {
                FrameFeature::LogmelDb => copy_block(&mut out, col, &s.logmel_db),
                FrameFeature::Mfcc => copy_block(&mut out, col, &s.mfcc),
                FrameFeature::MfccDelta => copy_block(&mut out, col, &s.mfcc_delta),
                FrameFeature::MfccDelta2 => {
                    if let Some(d2) = &s.mfcc_delta2 {
                        copy_block(&mut out, col, d2);
                    }
                }
                FrameFeature::Rms => copy_column(&mut out, col, &s.rms),
                FrameFeature::Zcr => copy_column(&mut out, col, &s.zcr),
                FrameFeature::SpectralCentroid => copy_column(&mut out, col, &s.centroid),
                FrameFeature::SpectralRolloff => copy_column(&mut out, col, &s.rolloff),
                FrameFeature::OnsetStrength => copy_column(&mut out, col, &s.onset_strength),
            }
            col += feature.width(&self.config);
        }
        normalize_columns(&mut out, self.config.frame_norm);
        out
    }
}

/// Applies a per-utterance column normalisation in place (statistics in f64).
fn normalize_columns(m: &mut Matrix, norm: FrameNorm) {
    if norm == FrameNorm::None || m.rows == 0 {
        return;
    }
    let (rows, cols) = (m.rows, m.cols);
    for c in 0..cols {
        let column = || m.data.iter().skip(c).step_by(cols).map(|&v| f64::from(v));
        let mean = column().sum::<f64>() / rows as f64;
        let scale = match norm {
            FrameNorm::MeanVar => {
                let var = column().map(|v| (v - mean) * (v - mean)).sum::<f64>() / rows as f64;
                // A constant column stays at zero rather than blowing up.
                if var > 1e-12 { 1.0 / var.sqrt() } else { 1.0 }
            }
            _ => 1.0,
        };
        for v in m.data.iter_mut().skip(c).step_by(cols) {
            *v = ((f64::from(*v) - mean) * scale) as f32;
        }
    }
}

fn copy_block(out: &mut Matrix, col: usize, block: &Matrix) {
    let cols = out.cols;
    for r in 0..out.rows.min(block.rows) {
        let dst = &mut out.data[r * cols + col..r * cols + col + block.cols];
        dst.copy_from_slice(block.row(r));
    }
}

fn copy_column(out: &mut Matrix, col: usize, values: &[f32]) {
    let cols = out.cols;
    for (r, &v) in values.iter().enumerate().take(out.rows) {
        out.data[r * cols + col] = v;
    }
}

/// Reduces computed features to the 46 utterance features.
pub fn summarize(
    signal: &[f32],
    sample_rate: u32,
    spectral: &SpectralFeatures,
    voice: &VoiceReport,
) -> UtteranceFeatures {
    utterance::summarize(&utterance::Inputs {
        signal,
        sample_rate,
        rms: &spectral.rms,
        zcr: &spectral.zcr,
        mfcc: &spectral.mfcc,
        centroid: &spectral.centroid,
        rolloff: &spectral.rolloff,
        onset_strength: &spectral.onset_strength,
        tempo_bpm: spectral.tempo_bpm,
        f0_hz: &voice.pitch.f0_hz,
        jitter_local: voice.jitter_local,
        shimmer_local: voice.shimmer_local,
    })
}

#[cfg(test)]
mod frame_norm_tests {
    use super::*;

    fn matrix() -> Matrix {
        // Column 0 varies, column 1 is constant.
        Matrix { rows: 4, cols: 2, data: vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0, 6.0, 5.0] }
    }

    #[test]
    fn mean_removes_each_columns_clip_mean() {
        let mut m = matrix();
        normalize_columns(&mut m, FrameNorm::Mean);
        assert_eq!(m.data, vec![-2.0, 0.0, -1.0, 0.0, 0.0, 0.0, 3.0, 0.0]);
    }

    #[test]
    fn meanvar_gives_unit_variance_and_leaves_constant_columns_at_zero() {
        let mut m = matrix();
        normalize_columns(&mut m, FrameNorm::MeanVar);
        let col0: Vec<f64> = m.data.iter().step_by(2).map(|&v| f64::from(v)).collect();
        let var = col0.iter().map(|v| v * v).sum::<f64>() / 4.0;
        assert!((var - 1.0).abs() < 1e-6, "variance {var}");
        assert!(m.data.iter().skip(1).step_by(2).all(|&v| v == 0.0));
    }

    #[test]
    fn none_is_the_identity_and_is_left_out_of_toml() {
        let mut m = matrix();
        normalize_columns(&mut m, FrameNorm::None);
        assert_eq!(m, matrix());
        let toml = FeatureConfig::seed().to_toml().unwrap_or_default();
        assert!(!toml.contains("frame_norm"), "{toml}");
        let mut c = FeatureConfig::seed();
        c.frame_norm = FrameNorm::MeanVar;
        let back = FeatureConfig::from_toml(&c.to_toml().unwrap_or_default());
        assert_eq!(back.ok().map(|b| b.frame_norm), Some(FrameNorm::MeanVar));
    }
}
