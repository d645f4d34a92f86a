//! Global tempo estimation, `librosa.feature.tempo(onset_envelope=..., sr, hop_length)` with
//! its defaults (`start_bpm=120, std_bpm=1, ac_size=8 s, max_tempo=320, aggregate=np.mean`).

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::stft::hann_periodic;
use crate::error::{Error, ErrorKind, Result};

/// Prior centre in BPM (`start_bpm`).
const START_BPM: f64 = 120.0;
/// Prior width in octaves (`std_bpm`).
const STD_BPM: f64 = 1.0;
/// Autocorrelation window in seconds (`ac_size`).
const AC_SIZE_S: f64 = 8.0;
/// Tempi at or above this are excluded (`max_tempo`).
const MAX_TEMPO: f64 = 320.0;

/// A planned tempo estimator for one sample rate and hop.
///
/// librosa builds the autocorrelation tempogram — for every onset frame `t`, the Hann-windowed
/// (`win` = `⌊⌊8·sr⌋ / hop⌋` frames) stretch of the envelope centred on `t` (the envelope
/// padded with `win/2` linear ramps down to 0 at both ends), autocorrelated over lags
/// `0..win`, divided by its maximum (lag 0) — averages it over frames, and picks
/// `argmax_k log1p(1e6·tg[k]) + prior[k]` over the lag's tempo `60·sr/(hop·k)`, with a
/// log₂-normal prior around 120 BPM and everything at or above 320 BPM excluded.
///
/// Because the inverse FFT is linear, the frame average is taken in the frequency domain:
/// each frame costs one forward real FFT of at least `2·win - 1` points (an exact, not
/// circular, autocorrelation), and one inverse FFT serves the whole clip. The per-frame FFTs
/// run in f32 (as librosa's do); the frame average and the inverse FFT run in f64.
#[derive(Clone)]
pub struct TempoEstimator {
    win: usize,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    ifft: Arc<dyn ComplexToReal<f64>>,
    /// Tempo of each lag (index 0 is infinite).
    bpms: Vec<f64>,
    /// Log prior per lag, `-inf` where excluded.
    log_prior: Vec<f64>,
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    mean_power: Vec<Complex<f64>>,
    ac: Vec<f64>,
    inverse_scratch: Vec<Complex<f64>>,
    padded: Vec<f32>,
}

impl std::fmt::Debug for TempoEstimator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TempoEstimator")
            .field("win", &self.win)
            .field("fft_len", &self.frame.len())
            .finish_non_exhaustive()
    }
}

/// `Σ x²` in f64 with four independent accumulators.
fn sum_of_squares(x: &[f32]) -> f64 {
    let mut acc = [0.0f64; 4];
    let quads = x.chunks_exact(4);
    let rest: f64 = quads.remainder().iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    for q in quads {
        for (a, &v) in acc.iter_mut().zip(q) {
            *a += f64::from(v) * f64::from(v);
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + rest
}

/// The smallest `2^a` or `3·2^a` that is ≥ n: rustfft's fastest sizes (measured: a 1536-point
/// real FFT takes about half the time of a 1500-point one).
fn next_fast_len(n: usize) -> usize {
    let pow2 = n.max(1).next_power_of_two();
    let three = 3 * (n.div_ceil(3)).max(1).next_power_of_two();
    pow2.min(three)
}

impl TempoEstimator {
    /// Plans for onset envelopes sampled every `hop_length` samples at `sample_rate` Hz.
    /// Fails with [`ErrorKind::InvalidConfig`] when the 8 s autocorrelation window would be
    /// shorter than two frames (or either argument is zero).
    pub fn new(sample_rate: u32, hop_length: usize) -> Result<Self> {
        if sample_rate == 0 || hop_length == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "tempo: sample rate and hop must be positive",
            ));
        }
        let sr = f64::from(sample_rate);
        // time_to_frames: int(8.0 · sr) // hop.
        let win = (AC_SIZE_S * sr) as usize / hop_length;
        if win < 2 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "tempo: hop {hop_length} at {sample_rate} Hz leaves fewer than 2 frames in 8 s"
                ),
            ));
        }
        let n_fft = next_fast_len(2 * win - 1);
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let ifft = RealFftPlanner::<f64>::new().plan_fft_inverse(n_fft);
        let mut bpms = vec![f64::INFINITY; win];
        for (k, b) in bpms.iter_mut().enumerate().skip(1) {
            *b = 60.0 * sr / (hop_length as f64 * k as f64);
        }
        let mut log_prior: Vec<f64> = bpms
            .iter()
            .map(|&b| -0.5 * ((b.log2() - START_BPM.log2()) / STD_BPM).powi(2))
            .collect();
        // np.argmax(bpms < max_tempo): the first lag slower than 320 BPM (0 if none).
        let max_idx = bpms.iter().position(|&b| b < MAX_TEMPO).unwrap_or(0);
        for p in &mut log_prior[..max_idx] {
            *p = f64::NEG_INFINITY;
        }
        Ok(Self {
            win,
            window: hann_periodic(win).into_iter().map(|w| w as f32).collect(),
            frame: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            mean_power: ifft.make_input_vec(),
            ac: ifft.make_output_vec(),
            inverse_scratch: ifft.make_scratch_vec(),
            fft,
            ifft,
            bpms,
            log_prior,
            padded: Vec::new(),
        })
    }

    /// Autocorrelation window length in onset frames.
    pub fn win_length(&self) -> usize {
        self.win
    }

    /// The tempo in BPM of an onset envelope. An empty or all-zero envelope has a flat
    /// tempogram, so the prior alone decides (the lag nearest 120 BPM on a log scale), which is
    /// what librosa returns for silence.
    pub fn estimate(&mut self, onset_env: &[f32]) -> f32 {
        let win = self.win;
        let half = win / 2;
        let n = onset_env.len();
        // np.pad(mode="linear_ramp", end_values=0): ramps from 0 up to (excluding) the edge value.
        self.padded.clear();
        self.padded.resize(n + 2 * half, 0.0);
        if let (Some(&first), Some(&last)) = (onset_env.first(), onset_env.last()) {
            for i in 0..half {
                self.padded[i] = (f64::from(first) * i as f64 / half as f64) as f32;
                self.padded[n + half + i] =
                    (f64::from(last) * (half - 1 - i) as f64 / half as f64) as f32;
            }
        }
        self.padded[half..half + n].copy_from_slice(onset_env);
        self.mean_power.fill(Complex::new(0.0, 0.0));
        for t in 0..n {
            // util.frame(hop=1) then [:n]: frame t is padded[t .. t + win] (zero past the end).
            let end = (t + win).min(self.padded.len());
            let src = &self.padded[t..end];
            self.frame.fill(0.0);
            for ((d, &s), &w) in self.frame.iter_mut().zip(src).zip(&self.window) {
                *d = s * w;
            }
            let energy = sum_of_squares(&self.frame[..win]);
            if energy == 0.0 {
                continue;
            }
            if self
                .fft
                .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch)
                .is_err()
            {
                continue;
            }
            // util.normalize(norm=inf): divide by the largest |ac|, which is lag 0 (the energy);
            // below float32's tiny the divisor is 1.
            let scale = if energy < f64::from(f32::MIN_POSITIVE) { 1.0 } else { 1.0 / energy };
            for (m, c) in self.mean_power.iter_mut().zip(&self.spectrum) {
                m.re += f64::from(c.re * c.re + c.im * c.im) * scale;
            }
        }
        // Mean over frames and the 1/N of the unnormalised inverse FFT in one factor.
        let denom = n.max(1) as f64 * self.frame.len() as f64;
        for m in &mut self.mean_power {
            m.re /= denom;
        }
        if self
            .ifft
            .process_with_scratch(&mut self.mean_power, &mut self.ac, &mut self.inverse_scratch)
            .is_err()
        {
            self.ac.fill(0.0);
        }
        let mut best = (f64::NEG_INFINITY, 0usize);
        for k in 0..win {
            let score = (1e6 * self.ac[k].max(0.0)).ln_1p() + self.log_prior[k];
            if score > best.0 {
                best = (score, k);
            }
        }
        self.bpms[best.1] as f32
    }
}

/// `librosa.feature.tempo(onset_envelope=onset_env, sr=sample_rate, hop_length=hop_length)`:
/// plans a [`TempoEstimator`] and runs it once. Returns 0.0 when no 8 s window of at least two
/// frames can be formed (zero sample rate or hop, or a hop longer than 4 s of audio), where
/// librosa raises.
pub fn tempo(onset_env: &[f32], sample_rate: u32, hop_length: usize) -> f32 {
    match TempoEstimator::new(sample_rate, hop_length) {
        Ok(mut t) => t.estimate(onset_env),
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_lengths() {
        assert_eq!(next_fast_len(1499), 1536);
        assert_eq!(next_fast_len(1024), 1024);
        assert_eq!(next_fast_len(1025), 1536);
        assert_eq!(next_fast_len(1599), 2048);
        assert_eq!(next_fast_len(761), 768);
        assert_eq!(next_fast_len(1), 1);
    }

    #[test]
    fn silence_gives_the_prior_mode() {
        // 48 kHz, hop 512: lags near 120 BPM are 5625/47 ≈ 119.7 and 5625/46 ≈ 122.3.
        let bpm = tempo(&[0.0; 300], 48_000, 512);
        assert!((bpm - 5625.0 / 47.0).abs() < 1e-3, "{bpm}");
        assert_eq!(tempo(&[], 48_000, 512), bpm);
        assert_eq!(tempo(&[1.0; 10], 48_000, 0), 0.0);
    }

    #[test]
    fn pulse_train_tempo() {
        // Impulses every 24 frames at 48 kHz / hop 512 → 5625 / 24 = 234.4 BPM? The prior
        // prefers half that (lag 48, 117.2 BPM), which also matches the pulses.
        let mut env = vec![0.0f32; 900];
        for i in (0..900).step_by(24) {
            env[i] = 1.0;
        }
        let bpm = tempo(&env, 48_000, 512);
        assert!((bpm - 5625.0 / 48.0).abs() < 1e-3, "{bpm}");
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// Raw real-FFT throughput for the sizes this module and the STFT use
    /// (`cargo test -p prosodia-dsp fft_sizes -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn fft_sizes() {
        for n in [1500usize, 1536, 1600, 2048, 512] {
            let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
            let (mut x, mut y, mut s) =
                (fft.make_input_vec(), fft.make_output_vec(), fft.make_scratch_vec());
            let mut best = f64::INFINITY;
            for _ in 0..20 {
                let t0 = std::time::Instant::now();
                for _ in 0..100 {
                    x.fill(0.5);
                    let _ = fft.process_with_scratch(&mut x, &mut y, &mut s);
                }
                best = best.min(t0.elapsed().as_secs_f64() / 100.0);
            }
            println!("real FFT f32 {n:5}: {:.2} µs", best * 1e6);
        }
    }
}
