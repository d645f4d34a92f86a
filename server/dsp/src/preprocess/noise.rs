//! Spectral-gating noise reduction.
//!
//! The signal is analysed with a Hann-windowed STFT (window = the smallest power of two of
//! at least 25 ms, so 25–50 ms at any rate, hop a quarter window). For each frequency bin the
//! noise floor is the `noise_quantile` quantile, over time, of that bin's level: stationary
//! noise is present in every frame, speech only in some, so a low quantile sees the noise.
//!
//! Levels are compared after a small time–frequency average of the power (±1 bin, ±2
//! frames). A single STFT bin of noise fluctuates by many dB from frame to frame (its
//! magnitude is Rayleigh-distributed), so gating raw bins would let most noise bins through
//! and leave isolated survivors that sound like "musical noise"; the local average is a much
//! steadier estimate of whether a region holds more than noise. Bins more than
//! `threshold_db` above their floor keep gain 1, the rest get `-reduction_db`, and the gain
//! mask is then smoothed over time and frequency so that it never switches abruptly.
//!
//! Resynthesis uses the same window again and divides the overlap-added frames by the summed
//! squared window at every sample, so a mask of all ones returns the input to rounding error,
//! including at the clip edges.

use realfft::RealFftPlanner;
use realfft::num_complex::Complex;

use crate::config::NoiseReduction;
use crate::error::{Error, ErrorKind, Result};

/// Shortest analysis window, in seconds.
const MIN_WINDOW_S: f64 = 0.025;
/// Half-widths of the power average used for the gate decision (bins, frames).
const STAT_HALF_FREQ: usize = 1;
const STAT_HALF_TIME: usize = 2;
/// Half-widths of the triangular smoothing applied to the gain mask (bins, frames).
const MASK_HALF_FREQ: usize = 2;
const MASK_HALF_TIME: usize = 3;
/// Level floor, so silence has a finite dB value.
const POWER_FLOOR: f64 = 1e-20;

/// The STFT window length used for a sample rate: the smallest power of two ≥ 25 ms.
pub fn noise_window_len(sample_rate: u32) -> usize {
    let min = (f64::from(sample_rate) * MIN_WINDOW_S).ceil().max(4.0) as usize;
    min.next_power_of_two()
}

/// Reduces stationary background noise by spectral gating (see the module documentation).
///
/// Returns a signal of the same length. Empty input returns empty output; parameters outside
/// their ranges (quantile not in (0, 1), non-finite or negative dB values) or a zero sample
/// rate give [`ErrorKind::InvalidConfig`].
pub fn reduce_noise(y: &[f32], sample_rate: u32, params: &NoiseReduction) -> Result<Vec<f32>> {
    if sample_rate == 0 {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            "noise reduction needs a positive sample rate",
        ));
    }
    let in_range = params.noise_quantile > 0.0
        && params.noise_quantile < 1.0
        && params.threshold_db.is_finite()
        && params.reduction_db.is_finite()
        && params.reduction_db >= 0.0;
    if !in_range {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "noise reduction parameters out of range: quantile {} must be in (0, 1), threshold_db {} finite, \
                 reduction_db {} finite and ≥ 0",
                params.noise_quantile, params.threshold_db, params.reduction_db
            ),
        ));
    }
    if y.is_empty() {
        return Ok(Vec::new());
    }

    let n = noise_window_len(sample_rate);
    let hop = n / 4;
    let bins = n / 2 + 1;
    // Periodic Hann: with hop n/4 its squares sum to a constant, so interior samples are
    // weighted evenly; the explicit per-sample normalisation below also covers the edges.
    let window: Vec<f64> = (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
        .collect();

    // Centre the first frame on sample 0 and run past the end so every sample sits in the
    // interior of several frames.
    let pad = n / 2;
    let frames = (y.len() + 2 * pad).saturating_sub(n) / hop + 2;
    let padded_len = (frames - 1) * hop + n;
    let mut padded = vec![0.0f64; padded_len];
    for (p, &v) in padded[pad..pad + y.len()].iter_mut().zip(y) {
        *p = f64::from(v);
    }

    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(n);
    let ifft = planner.plan_fft_inverse(n);
    let mut time_buf = fft.make_input_vec();
    let mut spec_buf = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    let mut scratch_inv = ifft.make_scratch_vec();

    // Forward STFT, frames × bins.
    let mut spec = vec![Complex::new(0.0f64, 0.0); frames * bins];
    for t in 0..frames {
        let start = t * hop;
        for (i, b) in time_buf.iter_mut().enumerate() {
            *b = padded[start + i] * window[i];
        }
        fft.process_with_scratch(&mut time_buf, &mut spec_buf, &mut scratch)
            .map_err(|e| Error::new(ErrorKind::Internal, format!("noise reduction FFT: {e}")))?;
        spec[t * bins..(t + 1) * bins].copy_from_slice(&spec_buf);
    }

    // Decision statistic: locally averaged power, in dB.
    let power: Vec<f64> = spec.iter().map(|c| c.norm_sqr()).collect();
    let avg = box_average(&power, frames, bins, STAT_HALF_TIME, STAT_HALF_FREQ);
    let level_db: Vec<f64> = avg.iter().map(|&p| 10.0 * p.max(POWER_FLOOR).log10()).collect();

    // Per-bin noise floor: the requested quantile over time.
    let q = f64::from(params.noise_quantile);
    let mut column = Vec::with_capacity(frames);
    let mut floor_db = vec![0.0f64; bins];
    for (f, fl) in floor_db.iter_mut().enumerate() {
        column.clear();
        column.extend((0..frames).map(|t| level_db[t * bins + f]));
        *fl = quantile(&mut column, q);
    }

    // Hard gate, then smoothing so the gain glides between 1 and the reduction.
    let reduced_gain = 10f64.powf(-f64::from(params.reduction_db) / 20.0);
    let threshold = f64::from(params.threshold_db);
    let mut mask = vec![1.0f64; frames * bins];
    for t in 0..frames {
        for f in 0..bins {
            if level_db[t * bins + f] <= floor_db[f] + threshold {
                mask[t * bins + f] = reduced_gain;
            }
        }
    }
    let mask = triangle_smooth(&mask, frames, bins, MASK_HALF_TIME, MASK_HALF_FREQ);

    // Inverse STFT with weighted overlap-add.
    let mut out = vec![0.0f64; padded_len];
    let mut wsum = vec![0.0f64; padded_len];
    let scale = 1.0 / n as f64; // realfft's inverse is unnormalised
    for t in 0..frames {
        for (f, s) in spec_buf.iter_mut().enumerate() {
            *s = spec[t * bins + f] * mask[t * bins + f];
        }
        // The DC and Nyquist bins of a real signal's spectrum are real; rounding in the mask
        // product cannot make them complex, but realfft insists, so pin them.
        spec_buf[0].im = 0.0;
        spec_buf[bins - 1].im = 0.0;
        ifft.process_with_scratch(&mut spec_buf, &mut time_buf, &mut scratch_inv).map_err(|e| {
            Error::new(ErrorKind::Internal, format!("noise reduction inverse FFT: {e}"))
        })?;
        let start = t * hop;
        for i in 0..n {
            out[start + i] += time_buf[i] * scale * window[i];
            wsum[start + i] += window[i] * window[i];
        }
    }
    Ok(out[pad..pad + y.len()]
        .iter()
        .zip(&wsum[pad..pad + y.len()])
        .map(|(&v, &w)| if w > 1e-12 { (v / w) as f32 } else { 0.0 })
        .collect())
}

/// The `q` quantile of `v` with linear interpolation between order statistics (NumPy's
/// default), reordering `v`.
fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Mean over a `(2·ht+1) × (2·hf+1)` box around each cell of a frames × bins grid, the box
/// clipped at the edges.
fn box_average(x: &[f64], frames: usize, bins: usize, ht: usize, hf: usize) -> Vec<f64> {
    let weights_t = vec![1.0; 2 * ht + 1];
    let weights_f = vec![1.0; 2 * hf + 1];
    separable_smooth(x, frames, bins, &weights_t, &weights_f)
}

/// Triangular-kernel average over ±`ht` frames and ±`hf` bins (edges renormalised).
fn triangle_smooth(x: &[f64], frames: usize, bins: usize, ht: usize, hf: usize) -> Vec<f64> {
    let tri =
        |h: usize| -> Vec<f64> { (0..=2 * h).map(|i| (h + 1 - i.abs_diff(h)) as f64).collect() };
    separable_smooth(x, frames, bins, &tri(ht), &tri(hf))
}

/// Weighted moving average along time then frequency with centred kernels of odd length;
/// near the edges the weights present are renormalised so a constant stays constant.
fn separable_smooth(x: &[f64], frames: usize, bins: usize, kt: &[f64], kf: &[f64]) -> Vec<f64> {
    let ht = kt.len() / 2;
    let hf = kf.len() / 2;
    let mut tmp = vec![0.0f64; x.len()];
    for t in 0..frames {
        let lo = t.saturating_sub(ht);
        let hi = (t + ht).min(frames - 1);
        for f in 0..bins {
            let (mut acc, mut wsum) = (0.0, 0.0);
            for u in lo..=hi {
                let w = kt[u + ht - t];
                acc += w * x[u * bins + f];
                wsum += w;
            }
            tmp[t * bins + f] = acc / wsum;
        }
    }
    let mut out = vec![0.0f64; x.len()];
    for t in 0..frames {
        let row = &tmp[t * bins..(t + 1) * bins];
        for f in 0..bins {
            let lo = f.saturating_sub(hf);
            let hi = (f + hf).min(bins - 1);
            let (mut acc, mut wsum) = (0.0, 0.0);
            for g in lo..=hi {
                let w = kf[g + hf - f];
                acc += w * row[g];
                wsum += w;
            }
            out[t * bins + f] = acc / wsum;
        }
    }
    out
}
