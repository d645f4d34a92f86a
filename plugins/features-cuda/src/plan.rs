//! Everything the kernels need that depends only on the configuration, computed on the host
//! with the CPU extractor's own code, and the layout of one packed batch.

use prosodia_dsp::config::{FrameFeature, FrameNorm};
use prosodia_dsp::spectral::{MelFilterbank, Mfcc, Stft, delta};
use prosodia_dsp::{FeatureConfig, Matrix};

use crate::error::{Error, ErrorKind};

/// The largest n_fft the radix-2 kernel handles (2·n_fft floats of shared memory, 32 KiB).
pub const RADIX2_MAX: usize = 4096;
/// The largest n_fft the direct-DFT kernel handles (n_fft floats of shared memory, 48 KiB).
pub const DFT_MAX: usize = 12_288;

/// Which power-spectrum kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FftKind {
    /// Shared-memory radix-2 FFT of `2^log2n` points.
    Radix2 {
        /// log2(n_fft).
        log2n: u32,
    },
    /// Direct DFT with an exact twiddle table.
    Dft,
}

/// A sparse mel filterbank as the `mel_db` kernel reads it: per band (first bin, length,
/// offset into `weights`).
#[derive(Debug, Clone, PartialEq)]
pub struct SparseMel {
    /// `3 · n_mels` values.
    pub spans: Vec<u32>,
    /// Every band's non-zero weights, back to back.
    pub weights: Vec<f32>,
}

impl SparseMel {
    /// The non-zero span of each row of the CPU filterbank's dense matrix: the same spans the
    /// CPU extractor stores, so both multiply exactly the same weights.
    pub fn from_filterbank(mel: &MelFilterbank) -> Self {
        let dense = mel.to_dense();
        let mut spans = Vec::with_capacity(3 * dense.rows);
        let mut weights = Vec::new();
        for r in 0..dense.rows {
            let row = dense.row(r);
            let first = row.iter().position(|&w| w > 0.0);
            let last = row.iter().rposition(|&w| w > 0.0);
            let (a, len) = match (first, last) {
                (Some(a), Some(b)) => (a, b + 1 - a),
                _ => (0, 0),
            };
            spans.extend([a as u32, len as u32, weights.len() as u32]);
            weights.extend_from_slice(&row[a..a + len]);
        }
        Self { spans, weights }
    }
}

/// Where the onset envelope's log-mel spectrogram comes from (librosa computes it with a
/// full n_fft window and a 0 Hz–Nyquist filterbank whatever the configuration says; see
/// `prosodia_dsp::spectral`).
#[derive(Debug, Clone, PartialEq)]
pub enum OnsetPlan {
    /// The main log-mel is exactly the onset input.
    SharedLogmel,
    /// The main power spectrum through its own filterbank.
    SharedPower {
        /// The 0 Hz–Nyquist filterbank.
        mel: SparseMel,
    },
    /// A second power spectrum with a full window, through the main filterbank or its own.
    OwnStft {
        /// The full n_fft-point Hann window.
        window: Vec<f32>,
        /// Its own filterbank when the configured mel range is not 0 Hz–Nyquist.
        mel: Option<SparseMel>,
    },
}

/// One frame-matrix block: which feature, from which column, how wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// The feature.
    pub feature: FrameFeature,
    /// First output column.
    pub col: usize,
    /// Columns.
    pub width: usize,
}

/// The host-side plan for one configuration and sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The rate every utterance is at.
    pub sample_rate: u32,
    /// FFT size.
    pub n_fft: usize,
    /// Hop between frames.
    pub hop: usize,
    /// `n_fft / 2 + 1`.
    pub n_bins: usize,
    /// Mel bands.
    pub n_mels: usize,
    /// MFCCs kept.
    pub n_mfcc: usize,
    /// The power-spectrum kernel.
    pub fft: FftKind,
    /// The main analysis window (n_fft values).
    pub window: Vec<f32>,
    /// `cos(2πm/n_fft)`, m < n_fft.
    pub tw_cos: Vec<f32>,
    /// `sin(2πm/n_fft)`, m < n_fft.
    pub tw_sin: Vec<f32>,
    /// The configured filterbank.
    pub mel: SparseMel,
    /// The onset envelope's input.
    pub onset: OnsetPlan,
    /// The DCT-II basis, `n_mfcc × n_mels`.
    pub dct: Vec<f32>,
    /// First-order delta weights (`delta_width` values).
    pub delta1: Vec<f32>,
    /// Second-order delta weights, when the configuration asks for second deltas.
    pub delta2: Option<Vec<f32>>,
    /// Delta window.
    pub delta_width: usize,
    /// Spectral rolloff fraction.
    pub rolloff_percent: f32,
    /// Hz per FFT bin.
    pub bin_hz: f64,
    /// Onset envelope delay in frames, `1 + n_fft / (2·hop)`.
    pub onset_shift: usize,
    /// The output blocks in column order.
    pub blocks: Vec<Block>,
    /// Output width.
    pub width: usize,
    /// Normalisation mode for the `normalize_columns` kernel (0 none, 1 mean, 2 mean/var).
    pub norm_mode: u32,
}

fn dsp(e: prosodia_dsp::Error) -> Error {
    Error::new(ErrorKind::InvalidConfig, e.to_string())
}

impl Plan {
    /// Plans `config` at `sample_rate` Hz.
    pub fn new(config: &FeatureConfig, sample_rate: u32) -> Result<Self, Error> {
        config.validate().map_err(dsp)?;
        let s = &config.stft;
        let m = &config.mel;
        let fft = if s.n_fft.is_power_of_two() && s.n_fft <= RADIX2_MAX {
            FftKind::Radix2 { log2n: s.n_fft.trailing_zeros() }
        } else if s.n_fft <= DFT_MAX {
            FftKind::Dft
        } else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("stft.n_fft = {} exceeds the CUDA kernels' limit of {DFT_MAX}", s.n_fft),
            ));
        };
        let sr = f64::from(sample_rate);
        let window = Stft::from_config(s).map_err(dsp)?.window();
        let n = s.n_fft as f64;
        let angle = |i: usize| std::f64::consts::TAU * i as f64 / n;
        let tw_cos = (0..s.n_fft).map(|i| angle(i).cos() as f32).collect();
        let tw_sin = (0..s.n_fft).map(|i| angle(i).sin() as f32).collect();
        let fmax = m.fmax_hz.map(f64::from);
        let main_mel =
            MelFilterbank::new(sr, s.n_fft, m.n_mels, f64::from(m.fmin_hz), fmax).map_err(dsp)?;
        let onset_mel = || {
            MelFilterbank::new(sr, s.n_fft, m.n_mels, 0.0, None)
                .map(|f| SparseMel::from_filterbank(&f))
                .map_err(dsp)
        };
        // The same decision as prosodia_dsp's SpectralAnalyzer.
        let default_range = m.fmin_hz == 0.0 && fmax.is_none_or(|f| f == sr / 2.0);
        let onset = match (s.win_length == s.n_fft, default_range) {
            (true, true) => OnsetPlan::SharedLogmel,
            (true, false) => OnsetPlan::SharedPower { mel: onset_mel()? },
            (false, shared_mel) => OnsetPlan::OwnStft {
                window: Stft::new(s.n_fft, s.n_fft, s.hop_length).map_err(dsp)?.window(),
                mel: if shared_mel { None } else { Some(onset_mel()?) },
            },
        };
        let mut blocks = Vec::new();
        let mut col = 0;
        for &feature in &config.frame_features {
            let width = feature.width(config);
            blocks.push(Block { feature, col, width });
            col += width;
        }
        let norm_mode = match config.frame_norm {
            FrameNorm::None => 0,
            FrameNorm::Mean => 1,
            FrameNorm::MeanVar => 2,
        };
        Ok(Self {
            sample_rate,
            n_fft: s.n_fft,
            hop: s.hop_length,
            n_bins: s.n_fft / 2 + 1,
            n_mels: m.n_mels,
            n_mfcc: m.n_mfcc,
            fft,
            window,
            tw_cos,
            tw_sin,
            mel: SparseMel::from_filterbank(&main_mel),
            onset,
            dct: dct_basis(m.n_mels, m.n_mfcc)?,
            delta1: delta_weights(m.delta_width, 1)?,
            delta2: if config.frame_features.contains(&FrameFeature::MfccDelta2) {
                Some(delta_weights(m.delta_width, 2)?)
            } else {
                None
            },
            delta_width: m.delta_width,
            rolloff_percent: config.rolloff_percent,
            bin_hz: sr / n,
            onset_shift: 1 + s.n_fft / (2 * s.hop_length),
            blocks,
            width: col,
            norm_mode,
        })
    }

    /// Whether any output block is one of `features`.
    pub fn needs(&self, features: &[FrameFeature]) -> bool {
        self.blocks.iter().any(|b| features.contains(&b.feature))
    }
}

/// The CPU extractor's DCT-II basis, read back by transforming the identity: row `i` of
/// `mfcc(I)` is band `i`'s weight in every coefficient. Returned as `n_mfcc × n_mels`.
pub fn dct_basis(n_mels: usize, n_mfcc: usize) -> Result<Vec<f32>, Error> {
    let mut identity = Matrix::zeros(n_mels, n_mels);
    for i in 0..n_mels {
        identity.row_mut(i)[i] = 1.0;
    }
    let out = Mfcc::new(n_mels, n_mfcc).map_err(dsp)?.mfcc(&identity).map_err(dsp)?;
    let mut basis = vec![0.0f32; n_mfcc * n_mels];
    for i in 0..n_mels {
        for k in 0..n_mfcc {
            basis[k * n_mels + i] = out.row(i)[k];
        }
    }
    Ok(basis)
}

/// The CPU extractor's Savitzky–Golay delta weights, read back from `delta` of the identity:
/// the centre row of `delta(I)` holds weight `j` in column `j`.
pub fn delta_weights(width: usize, order: usize) -> Result<Vec<f32>, Error> {
    let mut identity = Matrix::zeros(width, width);
    for i in 0..width {
        identity.row_mut(i)[i] = 1.0;
    }
    let out = delta(&identity, width, order).map_err(dsp)?;
    Ok(out.row(width / 2).to_vec())
}

/// One batch packed for the device: offsets of every utterance's samples and frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `n + 1` sample offsets.
    pub sample_off: Vec<u32>,
    /// `n + 1` frame offsets (rows of every per-frame matrix).
    pub frame_off: Vec<u32>,
}

impl Layout {
    /// Utterances.
    pub fn len(&self) -> usize {
        self.sample_off.len() - 1
    }

    /// Whether the batch is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples in the batch.
    pub fn samples(&self) -> usize {
        self.sample_off.last().copied().unwrap_or(0) as usize
    }

    /// Frames in the batch.
    pub fn frames(&self) -> usize {
        self.frame_off.last().copied().unwrap_or(0) as usize
    }

    /// Frames of utterance `i`.
    pub fn frames_of(&self, i: usize) -> usize {
        (self.frame_off[i + 1] - self.frame_off[i]) as usize
    }

    /// Checks a batch as the CPU extractor would (finite samples, enough frames for the
    /// deltas) and lays it out. Offsets are 32-bit on the device, so a batch holds fewer than
    /// 2^32 samples and frames.
    pub fn new(plan: &Plan, batch: &[&[f32]]) -> Result<Self, Error> {
        let invalid = |m: String| Error::new(ErrorKind::InvalidInput, m);
        let mut sample_off = Vec::with_capacity(batch.len() + 1);
        let mut frame_off = Vec::with_capacity(batch.len() + 1);
        let (mut samples, mut frames) = (0u64, 0u64);
        sample_off.push(0);
        frame_off.push(0);
        for (i, u) in batch.iter().enumerate() {
            if u.is_empty() {
                return Err(invalid(format!("utterance {i} has no samples")));
            }
            if u.iter().any(|v| !v.is_finite()) {
                return Err(invalid(format!("utterance {i} contains NaN or infinity")));
            }
            let f = prosodia_dsp::framing::centered_frame_count(u.len(), plan.n_fft, plan.hop);
            if f < plan.delta_width {
                return Err(invalid(format!(
                    "utterance {i}: {} samples give {f} frames at hop {}; MFCC deltas need at least {}",
                    u.len(),
                    plan.hop,
                    plan.delta_width
                )));
            }
            samples += u.len() as u64;
            frames += f as u64;
            if samples >= u64::from(u32::MAX) || frames >= u64::from(u32::MAX) {
                return Err(invalid(format!(
                    "the batch is too large for one device call ({samples} samples, {frames} frames by utterance {i}); split it"
                )));
            }
            sample_off.push(samples as u32);
            frame_off.push(frames as u32);
        }
        Ok(Self { sample_off, frame_off })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn sparse_mel_rebuilds_the_dense_filterbank() {
        let fb = MelFilterbank::new(16_000.0, 512, 40, 0.0, None).unwrap();
        let sparse = SparseMel::from_filterbank(&fb);
        let dense = fb.to_dense();
        for m in 0..40 {
            let (first, len, off) = (
                sparse.spans[3 * m] as usize,
                sparse.spans[3 * m + 1] as usize,
                sparse.spans[3 * m + 2] as usize,
            );
            let mut row = vec![0.0f32; dense.cols];
            row[first..first + len].copy_from_slice(&sparse.weights[off..off + len]);
            assert_eq!(row, dense.row(m), "band {m}");
        }
    }

    #[test]
    fn dct_basis_is_orthonormal_dct_ii() {
        let (n_mels, n_mfcc) = (40, 13);
        let basis = dct_basis(n_mels, n_mfcc).unwrap();
        for k in 0..n_mfcc {
            let scale = if k == 0 { (1.0 / 40.0f64).sqrt() } else { (2.0 / 40.0f64).sqrt() };
            for i in 0..n_mels {
                let want =
                    scale * (std::f64::consts::PI * k as f64 * (2 * i + 1) as f64 / 80.0).cos();
                assert!((f64::from(basis[k * n_mels + i]) - want).abs() < 1e-6, "k {k} i {i}");
            }
        }
    }

    #[test]
    fn delta_weights_are_the_regression_slope() {
        let w = delta_weights(9, 1).unwrap();
        for (j, v) in w.iter().enumerate() {
            assert!((f64::from(*v) - (j as f64 - 4.0) / 60.0).abs() < 1e-7, "{w:?}");
        }
        // Second-order weights annihilate lines and give 1 on t²/2.
        let w2 = delta_weights(9, 2).unwrap();
        let on = |f: &dyn Fn(f64) -> f64| -> f64 {
            w2.iter().enumerate().map(|(j, &w)| f64::from(w) * f(j as f64 - 4.0)).sum()
        };
        assert!(on(&|u| 3.0 * u + 1.0).abs() < 1e-5);
        assert!((on(&|u| 0.5 * u * u) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn plans_choose_the_kernel_and_onset_source_like_the_cpu() {
        let seed = Plan::new(&FeatureConfig::seed(), 48_000).unwrap();
        assert_eq!(seed.fft, FftKind::Radix2 { log2n: 11 });
        assert_eq!(seed.onset, OnsetPlan::SharedLogmel);
        assert_eq!(seed.width, FeatureConfig::seed().frame_width());
        assert_eq!(seed.onset_shift, 3);
        let speech = Plan::new(&FeatureConfig::speech(), 16_000).unwrap();
        assert!(matches!(speech.onset, OnsetPlan::OwnStft { mel: None, .. }));
        let mut odd = FeatureConfig::speech();
        odd.stft.n_fft = 600;
        odd.stft.win_length = 600;
        odd.mel.fmin_hz = 50.0;
        let p = Plan::new(&odd, 16_000).unwrap();
        assert_eq!(p.fft, FftKind::Dft);
        assert!(matches!(p.onset, OnsetPlan::SharedPower { .. }));
        let mut huge = FeatureConfig::seed();
        huge.stft.n_fft = 16_384;
        huge.stft.win_length = 16_384;
        let err = Plan::new(&huge, 48_000).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    }

    #[test]
    fn layout_counts_frames_like_the_cpu_and_refuses_what_it_refuses() {
        let plan = Plan::new(&FeatureConfig::speech(), 16_000).unwrap();
        let (a, b) = (vec![0.1f32; 16_000], vec![0.2f32; 4_321]);
        let layout = Layout::new(&plan, &[&a, &b]).unwrap();
        assert_eq!(layout.sample_off, vec![0, 16_000, 20_321]);
        assert_eq!(layout.frames_of(0), 1 + 16_000 / 160);
        assert_eq!(layout.frames_of(1), 1 + 4_321 / 160);
        let short = vec![0.1f32; 160 * 7];
        assert_eq!(Layout::new(&plan, &[&a, &short]).unwrap_err().kind(), ErrorKind::InvalidInput);
        let nan = vec![f32::NAN; 16_000];
        let err = Layout::new(&plan, &[&nan]).unwrap_err();
        assert!(err.message().contains("NaN"), "{err}");
    }
}
