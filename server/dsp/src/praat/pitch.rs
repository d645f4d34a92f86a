//! Boersma's (1993) autocorrelation pitch tracker: per-frame candidates, then a Viterbi path.

use std::cell::RefCell;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::interp::{maximise_brent, sinc_interpolate};
use super::{Pitch, PitchParams};
use crate::{Error, ErrorKind, Result};

/// Taps per side of the sinc that measures a candidate's strength at its parabolic peak.
const STRENGTH_DEPTH: usize = 30;
/// Taps per side of the sinc maximised to refine a candidate (Praat's "sinc70").
const REFINE_DEPTH_FAST: usize = 70;
/// The "sinc700" reconstruction, for very accurate analyses and very short lags.
const REFINE_DEPTH_ACCURATE: usize = 700;

thread_local! {
    /// FFT plans for the frame autocorrelations, shared by every call on this thread.
    static PLANNER: RefCell<RealFftPlanner<f32>> = RefCell::new(RealFftPlanner::new());
}

/// One frame's candidates, unvoiced first, kept in fixed-stride arrays across frames.
struct Candidates {
    stride: usize,
    count: Vec<usize>,
    freq: Vec<f64>,
    strength: Vec<f64>,
}

pub(crate) fn pitch_ac(samples: &[f32], sample_rate: u32, params: &PitchParams) -> Result<Pitch> {
    validate(sample_rate, params)?;
    if let Some(i) = samples.iter().position(|s| !s.is_finite()) {
        return Err(Error::new(ErrorKind::NonFiniteSamples, format!("sample {i} is not finite")));
    }
    let fs = f64::from(sample_rate);
    let dx = 1.0 / fs;
    let floor = params.floor_hz;
    // Frequencies above Nyquist cannot be represented, so the ceiling is clipped there.
    let ceiling = params.ceiling_hz.min(0.5 * fs);
    let (periods, interpolation_depth) =
        if params.very_accurate { (6.0, 0.25) } else { (3.0, 0.5) };
    let refine_depth = if params.very_accurate { REFINE_DEPTH_ACCURATE } else { REFINE_DEPTH_FAST };
    let dt = if params.time_step > 0.0 { params.time_step } else { periods / floor / 4.0 };
    let window_duration = periods / floor;

    let n = samples.len();
    let duration = n as f64 * dx;
    let too_short = || {
        Error::new(
            ErrorKind::TooShort,
            format!(
                "pitch analysis needs at least {:.1} ms of audio ({} periods of the {floor} Hz floor), got {:.1} ms",
                window_duration * 1e3,
                periods,
                duration * 1e3
            ),
        )
    };
    // Window length in samples is made even, as a centred window around the frame's two
    // middle samples.
    let nsamp_window_raw = (window_duration / dx).floor() as usize;
    let half_window = (nsamp_window_raw / 2).saturating_sub(1);
    let nwin = 2 * half_window;
    if nwin < 4 || duration < window_duration {
        return Err(too_short());
    }
    let num_frames = ((duration - window_duration) / dt).floor() as usize + 1;
    // Frames are centred on the signal, as in Praat's short-term analysis grid.
    let t1 = 0.5 * duration - 0.5 * (num_frames as f64 - 1.0) * dt;

    let nsamp_period = (fs / floor).floor() as usize;
    let half_period = nsamp_period / 2 + 1;
    let brent_ixmax = (nwin as f64 * interpolation_depth).floor() as usize;
    let max_lag = ((nwin as f64 / periods).floor() as usize + 2).min(nwin);
    let max_candidates = params.max_candidates.max(2);
    let octave_cost = params.octave_cost;
    let voicing_threshold = params.voicing_threshold;

    // Peaks are searched below max_lag and refined with at most REFINE_DEPTH taps beyond
    // them, so lags past `used_lag` never reach any result: they are neither computed nor
    // protected from circular wrap-around, which keeps the FFT short.
    let tap_depth = if params.very_accurate {
        REFINE_DEPTH_ACCURATE
    } else {
        REFINE_DEPTH_FAST.max(STRENGTH_DEPTH)
    };
    let used_lag = (max_lag + tap_depth + 2).min(brent_ixmax);
    let nfft = fft_size(nwin + used_lag + 1);
    // The autocorrelations run in f32: rustfft's SIMD paths hold twice as many f32 lanes,
    // and the normalised correlation only needs ~1e-6 to place a peak within 1e-6 of a
    // sample (the parity tests bound the effect). Plans are cached per thread, since most
    // clips share one length.
    let (fwd, inv) = PLANNER.with(|p| {
        let mut p = p.borrow_mut();
        (p.plan_fft_forward(nfft), p.plan_fft_inverse(nfft))
    });
    let mut time_buf = fwd.make_input_vec();
    let mut spec = fwd.make_output_vec();
    let mut scratch_f = fwd.make_scratch_vec();
    let mut scratch_i = inv.make_scratch_vec();

    let window: Vec<f64> = if params.very_accurate {
        let imid = 0.5 * (nwin as f64 + 1.0);
        let edge = (-12.0f64).exp();
        (1..=nwin)
            .map(|i| {
                let p = (i as f64 - imid) / (nwin as f64 + 1.0);
                ((-48.0 * p * p).exp() - edge) / (1.0 - edge)
            })
            .collect()
    } else {
        (1..=nwin)
            .map(|i| {
                0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (nwin as f64 + 1.0)).cos()
            })
            .collect()
    };
    // The window's own autocorrelation, normalised at lag 0: dividing by it undoes the
    // taper's decay with lag (Boersma 1993, eq. 9).
    let mut window_r = vec![0.0; brent_ixmax + 1];
    let window32: Vec<f32> = window.iter().map(|&w| w as f32).collect();
    autocorrelate(&window32, &fwd, &inv, &mut time_buf, &mut spec, &mut scratch_f, &mut scratch_i);
    let w0 = f64::from(time_buf[0]);
    for (dst, &v) in window_r.iter_mut().zip(&time_buf) {
        *dst = f64::from(v) / w0;
    }

    let x = samples;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let global_peak = x.iter().fold(0.0f64, |m, &v| m.max((f64::from(v) - mean).abs()));
    let inv_window_r: Vec<f64> =
        window_r.iter().map(|&w| if w > 0.0 { 1.0 / w } else { 0.0 }).collect();

    let mut cands = Candidates {
        stride: max_candidates,
        count: vec![1; num_frames],
        freq: vec![0.0; num_frames * max_candidates],
        strength: vec![0.0; num_frames * max_candidates],
    };
    let mut intensity = vec![0.0; num_frames];
    let mut frame = vec![0.0f32; nwin];
    // r over lags -brent_ixmax..=brent_ixmax, so that the sinc can look to negative lags.
    let mut r = vec![0.0; 2 * brent_ixmax + 1];
    let mut peak_lag = vec![0usize; max_candidates];

    if global_peak > 0.0 {
        for (iframe, inten) in intensity.iter_mut().enumerate() {
            let t = t1 + iframe as f64 * dt;
            // Praat's "low index" of t, 0-based: sample k sits at (k + 0.5) dx.
            let left = (t / dx - 0.5).floor() as isize;
            let right = left + 1;

            // The local mean spans one longest period each side, so that a DC offset or slow
            // drift does not masquerade as periodicity.
            let m_lo = (right - nsamp_period as isize).max(0) as usize;
            let m_hi = ((left + nsamp_period as isize) as usize).min(n - 1);
            let local_mean = if m_lo <= m_hi {
                x[m_lo..=m_hi].iter().map(|&v| f64::from(v)).sum::<f64>()
                    / (2 * nsamp_period) as f64
            } else {
                0.0
            };
            let start = right - half_window as isize;
            if start >= 0 && start as usize + nwin <= n {
                let seg = &x[start as usize..start as usize + nwin];
                for ((f, &v), &w) in frame.iter_mut().zip(seg).zip(&window) {
                    *f = ((f64::from(v) - local_mean) * w) as f32;
                }
            } else {
                for (j, f) in frame.iter_mut().enumerate() {
                    let k = start + j as isize;
                    *f = if k >= 0 && (k as usize) < n {
                        ((f64::from(x[k as usize]) - local_mean) * window[j]) as f32
                    } else {
                        0.0
                    };
                }
            }
            // The local peak over half a longest period each side of the centre sets the
            // silence criterion.
            let p_lo = half_window.saturating_sub(half_period);
            let p_hi = (half_window + half_period).min(nwin);
            let local_peak =
                frame[p_lo..p_hi].iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
            *inten = (local_peak / global_peak).min(1.0);

            autocorrelate(
                &frame,
                &fwd,
                &inv,
                &mut time_buf,
                &mut spec,
                &mut scratch_f,
                &mut scratch_i,
            );
            let ac0 = f64::from(time_buf[0]);
            if ac0 <= 0.0 {
                continue;
            }
            let inv_ac0 = 1.0 / ac0;
            for lag in 0..=used_lag {
                let v = f64::from(time_buf[lag]) * inv_ac0 * inv_window_r[lag];
                r[brent_ixmax + lag] = v;
                r[brent_ixmax - lag] = v;
            }

            let base = iframe * cands.stride;
            let freq = &mut cands.freq[base..base + cands.stride];
            let strength = &mut cands.strength[base..base + cands.stride];
            let mut count = 1usize;
            let rr = |lag: usize| r[brent_ixmax + lag];
            let mut i = 2;
            while i < max_lag && i < brent_ixmax {
                let (rm, r0, rp) = (rr(i - 1), rr(i), rr(i + 1));
                if r0 > 0.5 * voicing_threshold && r0 > rm && r0 >= rp {
                    let dr = 0.5 * (rp - rm);
                    let d2r = 2.0 * r0 - rm - rp;
                    let lag = i as f64 + dr / d2r;
                    let f = fs / lag;
                    let mut s = sinc_interpolate(&r, lag + brent_ixmax as f64, STRENGTH_DEPTH);
                    // Short windows can push the normalised correlation above 1; reflecting
                    // keeps such peaks from outranking perfect periodicity.
                    if s > 1.0 {
                        s = 1.0 / s;
                    }
                    let place = if count < max_candidates {
                        count += 1;
                        Some(count - 1)
                    } else {
                        // Replace the weakest, where higher frequencies get a small bonus so
                        // that a perfectly periodic signal is not read an octave low.
                        let mut weakest = 2.0;
                        let mut place = None;
                        for c in 1..max_candidates {
                            let ls = strength[c] - octave_cost * (floor / freq[c]).log2();
                            if ls < weakest {
                                weakest = ls;
                                place = Some(c);
                            }
                        }
                        if s - octave_cost * (floor / f).log2() <= weakest { None } else { place }
                    };
                    if let Some(p) = place {
                        freq[p] = f;
                        strength[p] = s;
                        peak_lag[p] = i;
                    }
                }
                i += 1;
            }

            // Refine each candidate that could end up voiced by maximising the sinc
            // reconstruction within one sample of its peak; candidates far above the ceiling
            // are unvoiced whatever their exact position, so they skip the expensive step.
            let min_refine_lag = fs / ceiling - 1.5;
            for c in 1..count {
                let il = peak_lag[c];
                if (il as f64) < min_refine_lag {
                    continue;
                }
                let depth = if freq[c] > 0.3 * fs { REFINE_DEPTH_ACCURATE } else { refine_depth };
                let centre = (il + brent_ixmax) as f64;
                let (xm, ym) = maximise_brent(
                    |xx| sinc_interpolate(&r, xx, depth),
                    centre - 1.0,
                    centre + 1.0,
                    1e-10,
                );
                let lag = xm - brent_ixmax as f64;
                if lag > 0.0 {
                    freq[c] = fs / lag;
                }
                strength[c] = if ym > 1.0 { 1.0 / ym } else { ym };
            }
            cands.count[iframe] = count;
        }
    }

    let f0 = viterbi(&cands, &intensity, params, ceiling, dt);
    let strength =
        f0.iter().enumerate().map(|(i, &(c, _))| cands.strength[i * cands.stride + c]).collect();
    Ok(Pitch {
        time_step: dt,
        first_frame_time: t1,
        duration,
        ceiling_hz: ceiling,
        f0_hz: f0.iter().map(|&(_, f)| f).collect(),
        strength,
        intensity,
    })
}

fn validate(sample_rate: u32, p: &PitchParams) -> Result<()> {
    let bad = |m: String| Err(Error::new(ErrorKind::InvalidConfig, m));
    if sample_rate == 0 {
        return bad("sample rate must be positive".into());
    }
    if !(p.floor_hz.is_finite() && p.floor_hz > 0.0) {
        return bad(format!("pitch floor must be positive, got {}", p.floor_hz));
    }
    if !(p.ceiling_hz.is_finite() && p.ceiling_hz > p.floor_hz) {
        return bad(format!("pitch ceiling {} must exceed the floor {}", p.ceiling_hz, p.floor_hz));
    }
    if !(p.time_step.is_finite() && p.time_step >= 0.0) {
        return bad(format!("time step must be 0 (auto) or positive, got {}", p.time_step));
    }
    if p.floor_hz * 4.0 > f64::from(sample_rate) {
        return bad(format!(
            "pitch floor {} Hz is too high for {} Hz audio",
            p.floor_hz, sample_rate
        ));
    }
    let costs = [
        p.silence_threshold,
        p.voicing_threshold,
        p.octave_cost,
        p.octave_jump_cost,
        p.voiced_unvoiced_cost,
    ];
    if costs.iter().any(|c| !c.is_finite()) {
        return bad("pitch thresholds and costs must be finite".into());
    }
    Ok(())
}

/// FFT length of at least `n` that rustfft transforms fast: the next power of two unless a
/// 2-3-5-smooth length is clearly shorter (powers of two run about 10 % faster per point).
fn fft_size(n: usize) -> usize {
    let n = n.max(2);
    let pow2 = n.next_power_of_two();
    let mut m = n;
    let smooth = loop {
        let mut k = m;
        for p in [2, 3, 5] {
            while k.is_multiple_of(p) {
                k /= p;
            }
        }
        if k == 1 {
            break m;
        }
        m += 1;
    };
    if (pow2 as f64) <= 1.15 * smooth as f64 { pow2 } else { smooth }
}

/// Linear autocorrelation of `frame` into `time_buf[..]` (unnormalised), through the power
/// spectrum.
#[allow(clippy::too_many_arguments)]
fn autocorrelate(
    frame: &[f32],
    fwd: &Arc<dyn RealToComplex<f32>>,
    inv: &Arc<dyn ComplexToReal<f32>>,
    time_buf: &mut [f32],
    spec: &mut [Complex<f32>],
    scratch_f: &mut [Complex<f32>],
    scratch_i: &mut [Complex<f32>],
) {
    time_buf[..frame.len()].copy_from_slice(frame);
    time_buf[frame.len()..].iter_mut().for_each(|v| *v = 0.0);
    // Sizes are fixed by construction, so the transforms cannot fail; a zeroed buffer is the
    // harmless fallback if they ever did.
    if fwd.process_with_scratch(time_buf, spec, scratch_f).is_err() {
        time_buf.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    for c in spec.iter_mut() {
        *c = Complex::new(c.re * c.re + c.im * c.im, 0.0);
    }
    if inv.process_with_scratch(spec, time_buf, scratch_i).is_err() {
        time_buf.iter_mut().for_each(|v| *v = 0.0);
    }
}

/// Chooses one candidate per frame maximising total strength minus transition costs;
/// returns `(candidate index, f0 or 0)` per frame.
fn viterbi(
    c: &Candidates,
    intensity: &[f64],
    p: &PitchParams,
    ceiling: f64,
    dt: f64,
) -> Vec<(usize, f64)> {
    let nf = c.count.len();
    if nf == 0 {
        return Vec::new();
    }
    let stride = c.stride;
    // Costs were tuned for a 10 ms step; scaling keeps the path's stiffness per second of
    // audio independent of the chosen step.
    let correction = 0.01 / dt;
    let jump_cost = p.octave_jump_cost * correction;
    let vu_cost = p.voiced_unvoiced_cost * correction;
    let voiced = |f: f64| f > 0.0 && f < ceiling;

    let mut delta = vec![f64::NEG_INFINITY; nf * stride];
    let mut psi = vec![0usize; nf * stride];
    let mut log_f = vec![0.0; nf * stride];
    for (i, &inten) in intensity.iter().enumerate() {
        // Quiet frames lean towards unvoiced: the weaker the local peak relative to the
        // silence threshold, the stronger the unvoiced candidate.
        let mut uv = if p.silence_threshold <= 0.0 {
            0.0
        } else {
            2.0 - inten / (p.silence_threshold / (1.0 + p.voicing_threshold))
        };
        uv = p.voicing_threshold + uv.max(0.0);
        for k in 0..c.count[i] {
            let f = c.freq[i * stride + k];
            let idx = i * stride + k;
            if voiced(f) {
                delta[idx] = c.strength[idx] - p.octave_cost * (ceiling / f).log2();
                log_f[idx] = f.log2();
            } else {
                delta[idx] = uv;
            }
        }
    }
    for i in 1..nf {
        let (prev, cur) = ((i - 1) * stride, i * stride);
        for k2 in 0..c.count[i] {
            let f2 = c.freq[cur + k2];
            let v2 = voiced(f2);
            let mut best = f64::NEG_INFINITY;
            let mut place = 0;
            for k1 in 0..c.count[i - 1] {
                let f1 = c.freq[prev + k1];
                let v1 = voiced(f1);
                let cost = match (v1, v2) {
                    (false, false) => 0.0,
                    (true, true) => jump_cost * (log_f[prev + k1] - log_f[cur + k2]).abs(),
                    _ => vu_cost,
                };
                let value = delta[prev + k1] - cost;
                if value > best {
                    best = value;
                    place = k1;
                }
            }
            delta[cur + k2] += best;
            psi[cur + k2] = place;
        }
    }
    let last = (nf - 1) * stride;
    let mut place = 0;
    for k in 1..c.count[nf - 1] {
        if delta[last + k] > delta[last + place] {
            place = k;
        }
    }
    let mut out = vec![(0usize, 0.0); nf];
    for i in (0..nf).rev() {
        let f = c.freq[i * stride + place];
        out[i] = (place, if voiced(f) { f } else { 0.0 });
        if i > 0 {
            place = psi[i * stride + place];
        }
    }
    out
}
