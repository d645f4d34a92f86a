//! Slaney mel filterbank (`librosa.filters.mel(htk=False, norm="slaney")`) and
//! `librosa.power_to_db`.

use crate::Matrix;
use crate::error::{Error, ErrorKind, Result};

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hz → mel on the Slaney (Auditory Toolbox) scale: linear below 1 kHz, logarithmic above
/// (`librosa.hz_to_mel(htk=False)`).
pub fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ { MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step() } else { hz / F_SP }
}

/// Mel → Hz on the Slaney scale, the inverse of [`hz_to_mel`] (`librosa.mel_to_hz(htk=False)`).
pub fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// `n` frequencies evenly spaced on the Slaney mel scale from `fmin` to `fmax` inclusive
/// (`librosa.mel_frequencies(htk=False)`).
pub fn mel_frequencies(n: usize, fmin: f64, fmax: f64) -> Vec<f64> {
    let (lo, hi) = (hz_to_mel(fmin), hz_to_mel(fmax));
    match n {
        0 => Vec::new(),
        1 => vec![mel_to_hz(lo)],
        _ => {
            let step = (hi - lo) / (n - 1) as f64;
            // numpy's linspace: start + i·step, with the last point exactly `stop`.
            (0..n).map(|i| mel_to_hz(if i == n - 1 { hi } else { lo + i as f64 * step })).collect()
        }
    }
}

/// Sum of `a[i]·b[i]` with eight independent f32 accumulators (shorter dependency chains;
/// LLVM also vectorises it at `opt-level = 3`).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// A planned mel filterbank stored sparsely: each triangular filter keeps only its non-zero
/// span of FFT bins, so applying it costs about two multiply-adds per bin instead of
/// `n_mels` per bin.
///
/// Weights are computed in f64 exactly as `librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax,
/// htk=False, norm="slaney")` does (triangles between Slaney-mel-spaced edges, each scaled by
/// `2 / (f[i+2] - f[i])` so its area is constant), then stored as f32 like librosa's default
/// dtype.
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilterbank {
    n_fft: usize,
    n_bins: usize,
    /// Per filter: first bin and the offset/length of its weights in `weights`.
    spans: Vec<Span>,
    weights: Vec<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    first_bin: usize,
    offset: usize,
    len: usize,
}

impl MelFilterbank {
    /// Plans `n_mels` filters over the `n_fft / 2 + 1` bins of an `n_fft`-point FFT at
    /// `sample_rate` Hz, from `fmin` to `fmax` (`None`: Nyquist). Filters that fall between
    /// bins are all-zero, as in librosa (which only warns).
    pub fn new(
        sample_rate: f64,
        n_fft: usize,
        n_mels: usize,
        fmin: f64,
        fmax: Option<f64>,
    ) -> Result<Self> {
        let fmax = fmax.unwrap_or(sample_rate / 2.0);
        if !(sample_rate.is_finite() && sample_rate > 0.0) || n_fft < 2 || n_mels == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "mel filterbank: sample rate {sample_rate}, n_fft {n_fft}, n_mels {n_mels} must all be positive"
                ),
            ));
        }
        if !(fmin.is_finite() && fmin >= 0.0 && fmax.is_finite() && fmax > fmin) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("mel filterbank: need 0 ≤ fmin ({fmin}) < fmax ({fmax})"),
            ));
        }
        let n_bins = n_fft / 2 + 1;
        // np.fft.rfftfreq(n_fft, 1/sr): k / (n_fft · (1/sr)).
        let d = 1.0 / sample_rate;
        let bin_hz: Vec<f64> = (0..n_bins).map(|k| k as f64 / (n_fft as f64 * d)).collect();
        let edges = mel_frequencies(n_mels + 2, fmin, fmax);
        let mut spans = Vec::with_capacity(n_mels);
        let mut weights = Vec::new();
        let mut row = vec![0.0f32; n_bins];
        for i in 0..n_mels {
            let (f0, f1, f2) = (edges[i], edges[i + 1], edges[i + 2]);
            let (lower_width, upper_width) = (f1 - f0, f2 - f1);
            let enorm = 2.0 / (f2 - f0);
            for (w, &f) in row.iter_mut().zip(&bin_hz) {
                let lower = -(f0 - f) / lower_width;
                let upper = (f2 - f) / upper_width;
                *w = (0.0f64.max(lower.min(upper)) * enorm) as f32;
            }
            let first = row.iter().position(|&w| w > 0.0);
            let last = row.iter().rposition(|&w| w > 0.0);
            let span = match (first, last) {
                (Some(a), Some(b)) => {
                    let offset = weights.len();
                    weights.extend_from_slice(&row[a..=b]);
                    Span { first_bin: a, offset, len: b + 1 - a }
                }
                _ => Span { first_bin: 0, offset: weights.len(), len: 0 },
            };
            spans.push(span);
        }
        Ok(Self { n_fft, n_bins, spans, weights })
    }

    /// Number of mel bands.
    pub fn n_mels(&self) -> usize {
        self.spans.len()
    }

    /// FFT size the filterbank was planned for.
    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    /// Frequency bins expected per input frame, `n_fft / 2 + 1`.
    pub fn n_bins(&self) -> usize {
        self.n_bins
    }

    /// Stored (non-zero-span) weights in total, for inspection.
    pub fn nonzero_len(&self) -> usize {
        self.weights.len()
    }

    /// The dense `n_mels × n_bins` weight matrix, as `librosa.filters.mel` returns it.
    pub fn to_dense(&self) -> Matrix {
        let mut m = Matrix::zeros(self.n_mels(), self.n_bins);
        for (i, s) in self.spans.iter().enumerate() {
            m.row_mut(i)[s.first_bin..s.first_bin + s.len]
                .copy_from_slice(&self.weights[s.offset..s.offset + s.len]);
        }
        m
    }

    /// Mel spectrogram of a power spectrogram (frames × `n_bins` → frames × `n_mels`);
    /// allocating form of [`MelFilterbank::apply_into`].
    pub fn apply(&self, power: &Matrix) -> Result<Matrix> {
        let mut out = Matrix::default();
        self.apply_into(power, &mut out)?;
        Ok(out)
    }

    /// Mel spectrogram into `out` (reshaped to frames × `n_mels`, allocation reused). Fails with
    /// [`ErrorKind::InvalidConfig`] when `power` does not have `n_bins` columns.
    pub fn apply_into(&self, power: &Matrix, out: &mut Matrix) -> Result<()> {
        if power.cols != self.n_bins || power.data.len() != power.rows * power.cols {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "mel filterbank expects {} bins per frame, got {}",
                    self.n_bins, power.cols
                ),
            ));
        }
        let n_mels = self.n_mels();
        out.reshape_for(power.rows, n_mels);
        for (src, dst) in
            power.data.chunks_exact(self.n_bins).zip(out.data.chunks_exact_mut(n_mels.max(1)))
        {
            for (d, s) in dst.iter_mut().zip(&self.spans) {
                *d = dot(
                    &self.weights[s.offset..s.offset + s.len],
                    &src[s.first_bin..s.first_bin + s.len],
                );
            }
        }
        Ok(())
    }
}

/// `log10(x)` for finite `x > 0`, branch-free so the dB loop vectorises: Cephes' `logf`
/// (mantissa reduced to `[√½, √2)`, degree-9 polynomial; within about 2 ulp of the exact
/// value, like numpy's float32 `log10`) times `log10(e)`.
#[inline]
fn log10(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // in [0.5, 1)
    let small = m < SQRT_HALF;
    let e = (exponent - i32::from(small)) as f32;
    let m = if small { m + m } else { m } - 1.0;
    let z = m * m;
    let mut y = 7.037_683_6e-2_f32;
    for c in [
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_5e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ] {
        y = y * m + c;
    }
    y = y * m * z;
    y += -2.121_944_4e-4 * e;
    y += -0.5 * z;
    let ln = m + y + 0.693_359_4 * e;
    ln * std::f32::consts::LOG10_E
}

/// The `ref` of [`power_to_db`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DbReference {
    /// A fixed reference power (`ref=1.0` gives plain dB).
    Value(f32),
    /// The largest value in the matrix (`ref=np.max`).
    Max,
}

/// librosa's default `amin`: powers below it are clipped before the logarithm.
pub const DEFAULT_AMIN: f32 = 1e-10;

/// librosa's default `top_db`: values more than this far below the maximum are raised to it.
pub const DEFAULT_TOP_DB: f32 = 80.0;

/// `librosa.power_to_db` in place:
/// `10·log10(max(amin, S)) - 10·log10(max(amin, |ref|))`, then, if `top_db` is given, every
/// value raised to at least `max - top_db` (the maximum over the whole matrix).
///
/// Computed in f32 like librosa (an infinite power is treated as `f32::MAX`). An all-zero input becomes `10·log10(amin)` everywhere. A
/// non-positive or NaN `amin` is replaced by the smallest normal f32, and a negative or NaN
/// `top_db` disables clipping (librosa raises for both); an empty matrix is left alone.
pub fn power_to_db(s: &mut Matrix, reference: DbReference, amin: f32, top_db: Option<f32>) {
    power_to_db_slice(&mut s.data, reference, amin, top_db);
}

pub(crate) fn power_to_db_slice(
    data: &mut [f32],
    reference: DbReference,
    amin: f32,
    top_db: Option<f32>,
) {
    if data.is_empty() {
        return;
    }
    let amin = if amin > 0.0 { amin } else { f32::MIN_POSITIVE };
    let ref_value = match reference {
        DbReference::Value(v) => v.abs(),
        DbReference::Max => data.iter().copied().fold(f32::NEG_INFINITY, f32::max),
    };
    let offset = 10.0 * amin.max(ref_value).log10();
    // A plain map (vectorised), then the maximum in a separate pass.
    for v in data.iter_mut() {
        *v = 10.0 * log10(amin.max(*v).min(f32::MAX)) - offset;
    }
    let max_db = data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if let Some(top) = top_db.filter(|t| *t >= 0.0) {
        let floor = max_db - top;
        if floor.is_finite() {
            for v in data.iter_mut() {
                *v = v.max(floor);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_log10_is_within_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = 1e-10f32;
        while x < 1e12 {
            let exact = f64::from(x).log10();
            let err = (f64::from(log10(x)) - exact).abs() / exact.abs().max(1.0);
            worst = worst.max(err);
            x *= 1.000_37;
        }
        assert!(worst < 4.0 * f64::from(f32::EPSILON), "worst relative error {worst:e}");
        assert_eq!(log10(1.0), 0.0);
        assert!((log10(f32::MIN_POSITIVE) - f32::MIN_POSITIVE.log10()).abs() < 1e-4);
        assert!((log10(f32::MAX) - f32::MAX.log10()).abs() < 1e-4);
    }

    #[test]
    fn power_to_db_handles_silence_and_max_reference() {
        let mut m = Matrix::zeros(3, 4);
        power_to_db(&mut m, DbReference::Max, DEFAULT_AMIN, Some(DEFAULT_TOP_DB));
        assert!(m.data.iter().all(|&v| v == 0.0), "{:?}", m.data);
        let mut m = Matrix { rows: 1, cols: 3, data: vec![1.0, 1e-3, 1e-12] };
        power_to_db(&mut m, DbReference::Value(1.0), DEFAULT_AMIN, Some(DEFAULT_TOP_DB));
        assert!(
            (m.data[0]).abs() < 1e-6
                && (m.data[1] + 30.0).abs() < 1e-4
                && (m.data[2] + 80.0).abs() < 1e-4
        );
    }
}
