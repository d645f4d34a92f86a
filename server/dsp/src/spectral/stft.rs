//! The short-time Fourier transform: librosa's `stft(center=True, pad_mode="constant",
//! window="hann")` followed by `|X|²`.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::error::{Error, ErrorKind, Result};
use crate::{Matrix, config, framing};

/// Periodic Hann window of `n` points, `0.5 - 0.5·cos(2πi/n)` (scipy's
/// `get_window("hann", n, fftbins=True)`, which librosa uses).
pub fn hann_periodic(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos()).collect()
}

/// A planned power-spectrogram STFT.
///
/// The window is a periodic Hann of `win_length` points zero-padded, centred, to `n_fft`
/// (librosa's `pad_center`); frames are centred on `t·hop_length` by padding the signal with
/// `n_fft / 2` zeros on each side, so there are `1 + len / hop_length` frames (integer
/// division, for `len > 0`). The FFT is planned once in [`Stft::new`]; every call reuses it.
#[derive(Clone)]
pub struct Stft {
    n_fft: usize,
    win_length: usize,
    hop_length: usize,
    /// Offset of the window's first non-zero span inside the `n_fft` frame.
    win_start: usize,
    /// The `win_length` window values (the rest of the `n_fft` frame is zero).
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for Stft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stft")
            .field("n_fft", &self.n_fft)
            .field("win_length", &self.win_length)
            .field("hop_length", &self.hop_length)
            .finish_non_exhaustive()
    }
}

impl Stft {
    /// Plans an STFT. `n_fft ≥ 2`, `1 ≤ win_length ≤ n_fft`, `hop_length ≥ 1`, otherwise an
    /// [`ErrorKind::InvalidConfig`] error.
    pub fn new(n_fft: usize, win_length: usize, hop_length: usize) -> Result<Self> {
        if n_fft < 2 || win_length == 0 || win_length > n_fft || hop_length == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "STFT n_fft {n_fft}, win_length {win_length}, hop_length {hop_length}: need n_fft ≥ 2, 1 ≤ win_length ≤ n_fft, hop_length ≥ 1"
                ),
            ));
        }
        let window = hann_periodic(win_length).into_iter().map(|w| w as f32).collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        Ok(Self { n_fft, win_length, hop_length, win_start: (n_fft - win_length) / 2, window, fft })
    }

    /// Plans the STFT a [`config::Stft`] describes.
    pub fn from_config(c: &config::Stft) -> Result<Self> {
        match c.window {
            config::Window::Hann => Self::new(c.n_fft, c.win_length, c.hop_length),
        }
    }

    /// FFT size.
    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    /// Window length (≤ `n_fft`).
    pub fn win_length(&self) -> usize {
        self.win_length
    }

    /// Hop between frames in samples.
    pub fn hop_length(&self) -> usize {
        self.hop_length
    }

    /// Frequency bins per frame, `n_fft / 2 + 1`.
    pub fn n_bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// The full `n_fft`-point analysis window (zero outside the centred `win_length` span).
    pub fn window(&self) -> Vec<f32> {
        let mut w = vec![0.0; self.n_fft];
        w[self.win_start..self.win_start + self.win_length].copy_from_slice(&self.window);
        w
    }

    /// Frames produced for `len` samples: `1 + len / hop_length`, or 0 for an empty signal.
    pub fn num_frames(&self, len: usize) -> usize {
        if len == 0 { 0 } else { framing::centered_frame_count(len, self.n_fft, self.hop_length) }
    }

    /// Power spectrogram `|X|²`, frames × `n_bins` (allocating form of [`Stft::power_into`]).
    pub fn power(&self, y: &[f32]) -> Matrix {
        let mut out = Matrix::default();
        self.power_into(y, &mut out);
        out
    }

    /// Power spectrogram `|X|²` into `out`, reshaped to frames × `n_bins` (its allocation is
    /// reused). An empty signal gives zero frames. The FFT buffers are allocated once per call
    /// and reused across frames.
    pub fn power_into(&self, y: &[f32], out: &mut Matrix) {
        let n_frames = self.num_frames(y.len());
        let n_bins = self.n_bins();
        out.reshape_for(n_frames, n_bins);
        if n_frames == 0 {
            return;
        }
        let mut frame = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let half = (self.n_fft / 2) as isize;
        let len = y.len() as isize;
        for (t, row) in out.data.chunks_exact_mut(n_bins).enumerate() {
            frame.fill(0.0);
            // Window position i reads signal sample t·hop + i - n_fft/2 (zero outside).
            let first = (t * self.hop_length + self.win_start) as isize - half;
            let lo = (-first).clamp(0, self.win_length as isize) as usize;
            let hi = (len - first).clamp(0, self.win_length as isize) as usize;
            if lo < hi {
                let src = &y[(first + lo as isize) as usize..(first + hi as isize) as usize];
                let dst = &mut frame[self.win_start + lo..self.win_start + hi];
                for ((d, &s), &w) in dst.iter_mut().zip(src).zip(&self.window[lo..hi]) {
                    *d = s * w;
                }
            }
            // Lengths come from the plan itself, so the transform cannot fail; a zero row is
            // the safe answer should it ever do so.
            if self.fft.process_with_scratch(&mut frame, &mut spectrum, &mut scratch).is_err() {
                row.fill(0.0);
                continue;
            }
            for (p, c) in row.iter_mut().zip(&spectrum) {
                *p = power(*c);
            }
        }
    }
}

#[inline]
fn power(c: Complex<f32>) -> f32 {
    c.re * c.re + c.im * c.im
}
