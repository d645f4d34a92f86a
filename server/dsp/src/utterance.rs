//! The case study's 46 utterance-level features, reduced from frame and voice features.
//!
//! The reduction is deliberately separate from the analysis: [`summarize`] takes the
//! already-computed frame streams, so the server, the trainer and the CLI reduce exactly the
//! same numbers whichever extractor produced them. Definitions, with `y` the preprocessed mono
//! signal at rate `sr`, frame streams on the configuration's STFT grid (n_fft / hop, centred),
//! and "std" the population standard deviation (numpy's default, `ddof = 0`):
//!
//! | name | definition |
//! | --- | --- |
//! | `duration_sec` | `len(y) / sr` |
//! | `sample_rate` | `sr` |
//! | `mean_amplitude` | mean of `abs(y)` |
//! | `peak_amplitude` | max of `abs(y)` |
//! | `rms_mean`, `rms_std` | mean and std of frame RMS (`librosa.feature.rms`) |
//! | `intensity_db_mean` | mean of `20 log10(rms + 1e-10)` |
//! | `tempo_bpm` | `librosa.feature.tempo` of the onset envelope |
//! | `zcr_mean`, `zcr_std` | mean and std of the frame zero-crossing rate |
//! | `pitch_mean`, `pitch_median`, `pitch_std` | over voiced Praat pitch frames (F0 > 0); 0 if none |
//! | `pitch_variation` | `100 * pitch_std / pitch_mean`; 0 if no voiced frame |
//! | `voiced_ratio` | voiced frames / all pitch frames; 0 if there are no frames |
//! | `jitter` | Praat jitter (local), 0 when undefined |
//! | `shimmer` | Praat shimmer (local), 0 when undefined |
//! | `mfcc_mean_i`, `mfcc_std_i` | mean and std over frames of MFCC `i`, for i in 0..13 |
//! | `spectral_centroid_mean` | mean of the frame spectral centroid (Hz) |
//! | `spectral_rolloff_mean` | mean of the frame 85 % rolloff (Hz) |
//! | `spectral_flux_mean` | mean of the onset-strength envelope |
//!
//! These are the definitions of `shared/bench/seed_features.py`, which wrote the case study's
//! pseudocode with librosa and Parselmouth.

use crate::Matrix;
use crate::preprocess::peak_abs;

/// Number of utterance features.
pub const COUNT: usize = 46;

/// MFCCs summarised (the case study's 13).
pub const N_MFCC: usize = 13;

/// The 46 feature names, in output order.
pub const NAMES: [&str; COUNT] = [
    "duration_sec",
    "sample_rate",
    "mean_amplitude",
    "peak_amplitude",
    "rms_mean",
    "rms_std",
    "intensity_db_mean",
    "tempo_bpm",
    "zcr_mean",
    "zcr_std",
    "pitch_mean",
    "pitch_median",
    "pitch_std",
    "pitch_variation",
    "voiced_ratio",
    "jitter",
    "shimmer",
    "mfcc_mean_0",
    "mfcc_std_0",
    "mfcc_mean_1",
    "mfcc_std_1",
    "mfcc_mean_2",
    "mfcc_std_2",
    "mfcc_mean_3",
    "mfcc_std_3",
    "mfcc_mean_4",
    "mfcc_std_4",
    "mfcc_mean_5",
    "mfcc_std_5",
    "mfcc_mean_6",
    "mfcc_std_6",
    "mfcc_mean_7",
    "mfcc_std_7",
    "mfcc_mean_8",
    "mfcc_std_8",
    "mfcc_mean_9",
    "mfcc_std_9",
    "mfcc_mean_10",
    "mfcc_std_10",
    "mfcc_mean_11",
    "mfcc_std_11",
    "mfcc_mean_12",
    "mfcc_std_12",
    "spectral_centroid_mean",
    "spectral_rolloff_mean",
    "spectral_flux_mean",
];

/// The 46 values, in the order of [`NAMES`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UtteranceFeatures {
    /// Values in [`NAMES`] order.
    pub values: [f64; COUNT],
}

impl UtteranceFeatures {
    /// The value of a named feature.
    pub fn get(&self, name: &str) -> Option<f64> {
        NAMES.iter().position(|n| *n == name).map(|i| self.values[i])
    }

    /// `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        NAMES.iter().copied().zip(self.values.iter().copied())
    }
}

/// Everything the reduction reads; all frame streams share the STFT grid.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The preprocessed mono signal.
    pub signal: &'a [f32],
    /// Its sample rate.
    pub sample_rate: u32,
    /// Frame RMS.
    pub rms: &'a [f32],
    /// Frame zero-crossing rate.
    pub zcr: &'a [f32],
    /// MFCCs, frames × at least 13 coefficients.
    pub mfcc: &'a Matrix,
    /// Frame spectral centroid in Hz.
    pub centroid: &'a [f32],
    /// Frame spectral rolloff in Hz.
    pub rolloff: &'a [f32],
    /// Onset-strength envelope.
    pub onset_strength: &'a [f32],
    /// Tempo estimate in BPM.
    pub tempo_bpm: f32,
    /// Praat pitch track, 0 where unvoiced.
    pub f0_hz: &'a [f64],
    /// Praat jitter (local), if defined.
    pub jitter_local: Option<f64>,
    /// Praat shimmer (local), if defined.
    pub shimmer_local: Option<f64>,
}

/// Mean and population standard deviation; (0, 0) for an empty series.
fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let (mut n, mut sum) = (0usize, 0.0);
    for v in values.clone() {
        n += 1;
        sum += v;
    }
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = sum / n as f64;
    let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    (mean, var.sqrt())
}

fn mean_std_f32(values: &[f32]) -> (f64, f64) {
    mean_std(values.iter().map(|&v| f64::from(v)))
}

/// Median of a non-empty slice (sorted in place), numpy's definition for even lengths.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { 0.5 * (values[n / 2 - 1] + values[n / 2]) }
}

/// Reduces frame and voice features to the 46 utterance features.
pub fn summarize(inputs: &Inputs<'_>) -> UtteranceFeatures {
    let mut v = [0.0f64; COUNT];
    let y = inputs.signal;
    let sr = f64::from(inputs.sample_rate);
    v[0] = if sr > 0.0 { y.len() as f64 / sr } else { 0.0 };
    v[1] = sr;
    let (mean_abs, _) = mean_std(y.iter().map(|&s| f64::from(s.abs())));
    v[2] = mean_abs;
    v[3] = peak_abs(y).into();
    (v[4], v[5]) = mean_std_f32(inputs.rms);
    v[6] = mean_std(inputs.rms.iter().map(|&r| 20.0 * (f64::from(r) + 1e-10).log10())).0;
    v[7] = f64::from(inputs.tempo_bpm);
    (v[8], v[9]) = mean_std_f32(inputs.zcr);

    let mut voiced: Vec<f64> =
        inputs.f0_hz.iter().copied().filter(|f| f.is_finite() && *f > 0.0).collect();
    if !voiced.is_empty() {
        let (mean, std) = mean_std(voiced.iter().copied());
        v[10] = mean;
        v[11] = median(&mut voiced);
        v[12] = std;
        v[13] = if mean > 0.0 { std / mean * 100.0 } else { 0.0 };
        let frames = inputs.f0_hz.iter().filter(|f| f.is_finite()).count();
        v[14] = voiced.len() as f64 / frames as f64;
    }
    v[15] = inputs.jitter_local.filter(|j| j.is_finite()).unwrap_or(0.0);
    v[16] = inputs.shimmer_local.filter(|s| s.is_finite()).unwrap_or(0.0);

    let m = inputs.mfcc;
    for i in 0..N_MFCC.min(m.cols) {
        let (mean, std) = mean_std((0..m.rows).map(|r| f64::from(m.data[r * m.cols + i])));
        v[17 + 2 * i] = mean;
        v[18 + 2 * i] = std;
    }
    v[43] = mean_std_f32(inputs.centroid).0;
    v[44] = mean_std_f32(inputs.rolloff).0;
    v[45] = mean_std_f32(inputs.onset_strength).0;
    UtteranceFeatures { values: v }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_46() {
        let mut sorted = NAMES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), COUNT);
    }

    #[test]
    fn summary_of_known_series() {
        let y = [0.5f32, -1.0, 0.25, 0.0];
        let mfcc = Matrix { rows: 2, cols: 13, data: (0..26).map(|i| i as f32).collect() };
        let f0 = [0.0, 100.0, 200.0, 0.0, 300.0];
        let inputs = Inputs {
            signal: &y,
            sample_rate: 4,
            rms: &[1.0, 3.0],
            zcr: &[0.5, 0.5],
            mfcc: &mfcc,
            centroid: &[100.0, 300.0],
            rolloff: &[1.0],
            onset_strength: &[2.0, 4.0],
            tempo_bpm: 120.0,
            f0_hz: &f0,
            jitter_local: None,
            shimmer_local: Some(0.1),
        };
        let f = summarize(&inputs);
        assert_eq!(f.get("duration_sec"), Some(1.0));
        assert_eq!(f.get("mean_amplitude"), Some(0.4375));
        assert_eq!(f.get("peak_amplitude"), Some(1.0));
        assert_eq!(f.get("rms_mean"), Some(2.0));
        assert_eq!(f.get("rms_std"), Some(1.0));
        assert_eq!(f.get("pitch_median"), Some(200.0));
        assert_eq!(f.get("voiced_ratio"), Some(0.6));
        assert_eq!(f.get("jitter"), Some(0.0));
        assert_eq!(f.get("mfcc_mean_1"), Some(7.5));
        assert_eq!(f.get("mfcc_std_1"), Some(6.5));
        assert_eq!(f.get("spectral_flux_mean"), Some(3.0));
        let pstd = (20000.0f64 / 3.0).sqrt();
        assert!((f.get("pitch_variation").unwrap_or(0.0) - pstd / 200.0 * 100.0).abs() < 1e-9);
    }
}
