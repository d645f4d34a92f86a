//! Glottal pulses by waveform cross-correlation, walking outwards from the middle of each
//! voiced stretch of a pitch contour.

use super::Pitch;

/// Upper bound on the pulses one walk may add per voiced stretch, a guard against a
/// degenerate contour making the walk crawl.
const MAX_STEPS_PER_INTERVAL: usize = 1 << 20;

pub(crate) fn point_process_periodic_cc(
    samples: &[f32],
    sample_rate: u32,
    pitch: &Pitch,
) -> Vec<f64> {
    let n = samples.len();
    if n < 2
        || sample_rate == 0
        || pitch.f0_hz.is_empty()
        || pitch.time_step.is_nan()
        || pitch.time_step <= 0.0
    {
        return Vec::new();
    }
    if samples.iter().any(|v| !v.is_finite()) {
        return Vec::new();
    }
    let sound = Sound { x: samples, dx: 1.0 / f64::from(sample_rate) };
    let global_peak = samples.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    let mut points: Vec<f64> = Vec::new();
    let mut added_right = f64::NEG_INFINITY;
    let mut t = 0.0;

    while let Some((tleft, tright)) = voiced_interval_after(pitch, t) {
        // Start at the largest excursion near the middle of the stretch, where the contour
        // is most reliable, and walk out to both ends.
        let tmid = 0.5 * (tleft + tright);
        let Some(f0mid) = pitch_value_at(pitch, tmid) else {
            t = tright;
            continue;
        };
        let tstart = sound.find_extremum(tmid - 0.5 / f0mid, tmid + 0.5 / f0mid);
        points.push(tstart);

        let mut tmax = tstart;
        for _ in 0..MAX_STEPS_PER_INTERVAL {
            let Some(f0) = pitch_value_at(pitch, tmax) else { break };
            let (corr, tnew, peak) =
                sound.max_correlation(tmax, 1.0 / f0, tmax - 1.25 / f0, tmax - 0.8 / f0);
            // Without any correlation maximum the period is skipped rather than guessed.
            tmax = if corr == -1.0 { tmax - 1.0 / f0 } else { tnew };
            if tmax < tleft {
                if corr > 0.7 && peak > 0.023333 * global_peak && tmax - added_right > 0.8 / f0 {
                    points.push(tmax);
                }
                break;
            }
            if corr > 0.3
                && (peak == 0.0 || peak > 0.01 * global_peak)
                && tmax - added_right > 0.8 / f0
            {
                // The distance check keeps a short unvoiced gap from being filled twice.
                points.push(tmax);
            }
        }
        tmax = tstart;
        for _ in 0..MAX_STEPS_PER_INTERVAL {
            let Some(f0) = pitch_value_at(pitch, tmax) else { break };
            let (corr, tnew, peak) =
                sound.max_correlation(tmax, 1.0 / f0, tmax + 0.8 / f0, tmax + 1.25 / f0);
            tmax = if corr == -1.0 { tmax + 1.0 / f0 } else { tnew };
            if tmax > tright {
                if corr > 0.7 && peak > 0.023333 * global_peak {
                    points.push(tmax);
                    added_right = tmax;
                }
                break;
            }
            if corr > 0.3 && (peak == 0.0 || peak > 0.01 * global_peak) {
                points.push(tmax);
                added_right = tmax;
            }
        }
        t = tright;
    }
    points.retain(|p| p.is_finite());
    points.sort_by(f64::total_cmp);
    points.dedup();
    points
}

/// Unvoiced frames hold 0 (and NaN is never voiced).
fn is_voiced(f: f64) -> bool {
    f > 0.0
}

/// The next voiced stretch of frames at or after `after`, as a time interval in which each
/// voiced frame counts whole.
fn voiced_interval_after(p: &Pitch, after: f64) -> Option<(f64, f64)> {
    let nf = p.f0_hz.len();
    let (x1, dt) = (p.first_frame_time, p.time_step);
    let hi = ((after - x1) / dt).ceil();
    if hi.is_nan() || hi >= nf as f64 {
        return None;
    }
    let mut ileft = hi.max(0.0) as usize;
    while ileft < nf && !is_voiced(p.f0_hz[ileft]) {
        ileft += 1;
    }
    if ileft >= nf {
        return None;
    }
    let mut iright = ileft;
    while iright + 1 < nf && p.f0_hz[iright + 1] > 0.0 {
        iright += 1;
    }
    let tleft = x1 + ileft as f64 * dt - 0.5 * dt;
    let tright = x1 + iright as f64 * dt + 0.5 * dt;
    if tleft >= p.duration - 0.5 * dt {
        return None;
    }
    Some((tleft.max(0.0), tright.min(p.duration)))
}

/// F0 at time `t`, linearly interpolated between voiced frames; `None` when the nearest frame
/// is unvoiced or `t` lies outside the sound.
pub(crate) fn pitch_value_at(p: &Pitch, t: f64) -> Option<f64> {
    if !(t >= 0.0 && t <= p.duration) {
        return None;
    }
    let nf = p.f0_hz.len() as isize;
    let ireal = (t - p.first_frame_time) / p.time_step;
    let ileft = ireal.floor();
    let mut phase = ireal - ileft;
    let ileft = ileft as isize;
    let (near, far) = if phase < 0.5 {
        (ileft, ileft + 1)
    } else {
        phase = 1.0 - phase;
        (ileft + 1, ileft)
    };
    if near < 0 || near >= nf {
        return None;
    }
    let fnear = p.f0_hz[near as usize];
    if !is_voiced(fnear) {
        return None;
    }
    if far < 0 || far >= nf {
        return Some(fnear);
    }
    let ffar = p.f0_hz[far as usize];
    if !is_voiced(ffar) {
        return Some(fnear);
    }
    Some(fnear + phase * (ffar - fnear))
}

/// A mono signal on Praat's sample grid: sample `k` (0-based) sits at `(k + 0.5) dx`.
struct Sound<'a> {
    x: &'a [f32],
    dx: f64,
}

/// Dot product in f32 lanes, returned as f64.
///
/// This is the pulse finder's inner loop (one period against every shift of up to half a
/// period), so it runs in 16 independent f32 accumulators that the compiler maps onto SIMD
/// registers; each accumulator sums at most `len / 16` products and the lanes are combined in
/// f64, which keeps the relative error near 1e-7 — far below what moves a correlation
/// maximum by a measurable fraction of a sample.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (u, v) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] += u[k] * v[k];
        }
    }
    let mut tail = 0.0f64;
    for (&u, &v) in ra.iter().zip(rb) {
        tail += f64::from(u) * f64::from(v);
    }
    acc.iter().map(|&v| f64::from(v)).sum::<f64>() + tail
}

impl Sound<'_> {
    fn index_real(&self, t: f64) -> f64 {
        t / self.dx - 0.5
    }

    /// Time of the largest absolute excursion in `[tmin, tmax]`, refined by a parabola.
    fn find_extremum(&self, tmin: f64, tmax: f64) -> f64 {
        let n = self.x.len() as isize;
        let imin = (self.index_real(tmin).floor() as isize).max(0);
        let imax = (self.index_real(tmax).ceil() as isize).min(n - 1);
        let fallback = 0.5 * (tmin + tmax);
        if imax < imin {
            return fallback;
        }
        let (imin, imax) = (imin as usize, imax as usize);
        let seg: Vec<f64> = self.x[imin..=imax].iter().map(|&v| f64::from(v)).collect();
        let time = |i: f64| (imin as f64 + i + 0.5) * self.dx;
        match seg.len() {
            1 => return time(0.0),
            2 => {
                let (a, b) = (seg[0].abs(), seg[1].abs());
                return time(if a > b {
                    0.0
                } else if a < b {
                    1.0
                } else {
                    0.5
                });
            }
            _ => {}
        }
        let (mut lo, mut hi) = (0usize, 0usize);
        for (i, &v) in seg.iter().enumerate() {
            if v < seg[lo] {
                lo = i;
            }
            if v > seg[hi] {
                hi = i;
            }
        }
        if seg[lo] == seg[hi] {
            return time(0.5 * (seg.len() as f64 - 1.0));
        }
        let e = if seg[lo].abs() > seg[hi].abs() { lo } else { hi };
        if e == 0 || e == seg.len() - 1 {
            return time(e as f64);
        }
        let (l, m, r) = (seg[e - 1], seg[e], seg[e + 1]);
        let d = 2.0 * m - l - r;
        let off = if d != 0.0 { 0.5 * (r - l) / d } else { 0.0 };
        time(e as f64 + off)
    }

    /// Correlates one period centred at `t1` with windows whose centres range over
    /// `[tmin2, tmax2]`; returns (correlation, time of the best match, peak of that window),
    /// correlation -1 when there is no local maximum.
    fn max_correlation(&self, t1: f64, window: f64, tmin2: f64, tmax2: f64) -> (f64, f64, f64) {
        let n = self.x.len() as isize;
        let half = 0.5 * window;
        let nearest = |t: f64| (self.index_real(t) + 0.5).floor() as isize;
        let ileft1 = nearest(t1 - half);
        let iright1 = nearest(t1 + half);
        let ileft2min = self.index_real(tmin2 - half).floor() as isize;
        let ileft2max = self.index_real(tmax2 - half).ceil() as isize;
        let len = iright1 - ileft1;
        if len < 0 || ileft2max < ileft2min {
            return (-1.0, t1, 0.0);
        }
        // Every window inside the sound: the reference window's energy is fixed and the
        // moving window's energy can be updated sample by sample.
        let inside = ileft1 >= 0 && iright1 < n && ileft2min >= 0 && ileft2max + len < n;
        let (mut norm1_fixed, mut norm2_run) = (0.0, 0.0);
        if inside {
            let a = &self.x[ileft1 as usize..=iright1 as usize];
            norm1_fixed = a.iter().map(|&u| f64::from(u) * f64::from(u)).sum::<f64>();
            let b = &self.x[ileft2min as usize..=(ileft2min + len) as usize];
            norm2_run = b.iter().map(|&u| f64::from(u) * f64::from(u)).sum::<f64>();
        }
        let (mut r2, mut r3) = (0.0, 0.0);
        let (mut r1_best, mut r3_best) = (0.0, 0.0);
        let mut best = -1.0f64;
        let mut ir = 0.0;
        let mut peak_at: Option<isize> = None;
        for ileft2 in ileft2min..=ileft2max {
            let off = ileft2 - ileft1;
            let (norm1, norm2, product) = if inside {
                if ileft2 > ileft2min {
                    let old = f64::from(self.x[(ileft2 - 1) as usize]);
                    let new = f64::from(self.x[(ileft2 + len) as usize]);
                    norm2_run = (norm2_run - old * old + new * new).max(0.0);
                }
                let a = &self.x[ileft1 as usize..=iright1 as usize];
                let b = &self.x[ileft2 as usize..=(ileft2 + len) as usize];
                (norm1_fixed, norm2_run, dot(a, b))
            } else {
                // Samples outside the sound are skipped pairwise, as if it were cut there.
                let lo = ileft1.max(0).max(-off);
                let hi = iright1.min(n - 1).min(n - 1 - off);
                let (mut n1, mut n2, mut pr) = (0.0, 0.0, 0.0);
                if lo <= hi {
                    let a = &self.x[lo as usize..=hi as usize];
                    let b = &self.x[(lo + off) as usize..=(hi + off) as usize];
                    for (&u, &v) in a.iter().zip(b) {
                        let (u, v) = (f64::from(u), f64::from(v));
                        n1 += u * u;
                        n2 += v * v;
                        pr += u * v;
                    }
                }
                (n1, n2, pr)
            };
            let r1 = r2;
            r2 = r3;
            r3 = if product != 0.0 && norm1 * norm2 > 0.0 {
                product / (norm1 * norm2).sqrt()
            } else {
                0.0
            };
            if r2 > best && r2 >= r1 && r2 >= r3 {
                r1_best = r1;
                best = r2;
                r3_best = r3;
                ir = (ileft2 - 1) as f64;
                // Praat reports the peak of the window being scanned when the maximum is
                // recognised, one sample past the maximum itself.
                peak_at = Some(ileft2);
            }
        }
        let peak = peak_at.map_or(0.0, |ileft2| {
            let off = ileft2 - ileft1;
            let lo = (ileft1 + off).max(0);
            let hi = (iright1 + off).min(n - 1);
            if lo > hi {
                0.0
            } else {
                self.x[lo as usize..=hi as usize]
                    .iter()
                    .fold(0.0f64, |m, &v| m.max(f64::from(v).abs()))
            }
        });
        if best > -1.0 {
            let d2r = 2.0 * best - r1_best - r3_best;
            if d2r != 0.0 {
                let dr = 0.5 * (r3_best - r1_best);
                best += 0.5 * dr * dr / d2r;
                ir += dr / d2r;
            }
            (best, t1 + (ir - ileft1 as f64) * self.dx, peak)
        } else {
            (-1.0, t1, peak)
        }
    }
}
