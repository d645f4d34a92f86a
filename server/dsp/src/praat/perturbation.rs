//! Local jitter and shimmer over a pulse train, with Praat's period and amplitude guards.

/// Whether the interval between pulses `i` and `i + 1` is a usable period: within the period
/// bounds and not wildly different from both of its neighbours.
fn is_period(t: &[f64], i: usize, pmin: f64, pmax: f64, factor: f64) -> bool {
    let n = t.len();
    if i + 1 >= n {
        return false;
    }
    let interval = t[i + 1] - t[i];
    if interval <= 0.0 || interval < pmin || interval > pmax {
        return false;
    }
    if !factor.is_finite() || factor < 1.0 {
        return true;
    }
    let ratio = |other: f64| {
        if other > 0.0 {
            let r = interval / other;
            Some(if r < 1.0 { 1.0 / r } else { r })
        } else {
            None
        }
    };
    let prev = if i >= 1 { ratio(t[i] - t[i - 1]) } else { None };
    let next = if i + 2 < n { ratio(t[i + 2] - t[i + 1]) } else { None };
    // A period is rejected only when it disagrees with every neighbour it has.
    !matches!((prev, next), (Some(a), Some(b)) if a > factor && b > factor)
}

/// The pair of consecutive periods around pulse `i` passes the bounds and ratio test.
fn period_pair_ok(t: &[f64], i: usize, pmin: f64, pmax: f64, factor: f64) -> Option<(f64, f64)> {
    let p1 = t[i] - t[i - 1];
    let p2 = t[i + 1] - t[i];
    let ratio = if p1 > p2 { p1 / p2 } else { p2 / p1 };
    let ok =
        pmin == pmax || (p1 >= pmin && p1 <= pmax && p2 >= pmin && p2 <= pmax && ratio <= factor);
    ok.then_some((p1, p2))
}

fn mean_period(t: &[f64], pmin: f64, pmax: f64, factor: f64) -> Option<f64> {
    let (mut sum, mut count) = (0.0, 0usize);
    for i in 0..t.len().saturating_sub(1) {
        if is_period(t, i, pmin, pmax, factor) {
            sum += t[i + 1] - t[i];
            count += 1;
        }
    }
    (count > 0).then(|| sum / count as f64)
}

pub(crate) fn jitter_local(t: &[f64], pmin: f64, pmax: f64, factor: f64) -> Option<f64> {
    if t.len() < 3 || t.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut periods = t.len() - 1;
    let mut sum = 0.0;
    for i in 1..t.len() - 1 {
        match period_pair_ok(t, i, pmin, pmax, factor) {
            Some((p1, p2)) => sum += (p1 - p2).abs(),
            None => periods -= 1,
        }
    }
    if periods < 2 {
        return None;
    }
    let mean = mean_period(t, pmin, pmax, factor)?;
    let j = sum / (periods - 1) as f64 / mean;
    j.is_finite().then_some(j)
}

/// Root-mean-square of the signal under an asymmetric Hann window centred on `tmid`,
/// normalised by the window's own energy, so the measure does not depend on the period.
fn hann_windowed_rms(
    x: &[f32],
    dx: f64,
    tmid: f64,
    width_left: f64,
    width_right: f64,
) -> Option<f64> {
    let n = x.len() as isize;
    let imin = (((tmid - width_left) / dx - 0.5).ceil() as isize).max(0);
    let imax = (((tmid + width_right) / dx - 0.5).floor() as isize).min(n - 1);
    if imax - imin + 1 < 3 {
        return None;
    }
    let (mut sum, mut wsum) = (0.0, 0.0);
    // The window's cosine advances by a fixed phase per sample on each side of the centre,
    // so it is rotated as a phasor (restarted where the side changes) instead of calling
    // cos per sample; the drift over one window is a few ulp.
    let mut side: Option<bool> = None;
    let (mut cs, mut sn, mut dc, mut ds) = (1.0f64, 0.0f64, 1.0f64, 0.0f64);
    for i in imin..=imax {
        let t = (i as f64 + 0.5) * dx;
        let left = t < tmid;
        if side != Some(left) {
            side = Some(left);
            let width = if left { width_left } else { width_right };
            (sn, cs) = (std::f64::consts::PI * (t - tmid) / width).sin_cos();
            (ds, dc) = (std::f64::consts::PI * dx / width).sin_cos();
        }
        let w = 0.5 + 0.5 * cs;
        let v = f64::from(x[i as usize]) * w;
        sum += v * v;
        wsum += w * w;
        (cs, sn) = (cs * dc - sn * ds, sn * dc + cs * ds);
    }
    (wsum > 0.0).then(|| (sum / wsum).sqrt())
}

pub(crate) fn shimmer_local(
    samples: &[f32],
    sample_rate: u32,
    t: &[f64],
    pmin: f64,
    pmax: f64,
    period_factor: f64,
    amplitude_factor: f64,
) -> Option<f64> {
    if t.len() < 3 || sample_rate == 0 || samples.is_empty() || t.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let x = samples;
    let dx = 1.0 / f64::from(sample_rate);
    // One amplitude per pulse whose two adjacent periods are usable, measured over the
    // central fifth of each period so that neighbouring pulses do not leak in.
    let mut amps: Vec<(f64, f64)> = Vec::with_capacity(t.len());
    for i in 1..t.len() - 1 {
        let amp = period_pair_ok(t, i, pmin, pmax, period_factor)
            .and_then(|(p1, p2)| hann_windowed_rms(x, dx, t[i], 0.2 * p1, 0.2 * p2))
            .filter(|a| *a > 0.0 && a.is_finite());
        if let Some(a) = amp {
            amps.push((t[i], a));
        }
    }
    let (mut num, mut count) = (0.0, 0usize);
    for w in amps.windows(2) {
        let (ta, a1) = w[0];
        let (tb, a2) = w[1];
        let p = tb - ta;
        if pmin == pmax || (p >= pmin && p <= pmax) {
            let f = if a1 > a2 { a1 / a2 } else { a2 / a1 };
            if f <= amplitude_factor {
                num += (a1 - a2).abs();
                count += 1;
            }
        }
    }
    if count < 1 {
        return None;
    }
    let num = num / count as f64;
    let den = amps.iter().map(|a| a.1).sum::<f64>() / amps.len() as f64;
    if den == 0.0 {
        return None;
    }
    let s = num / den;
    s.is_finite().then_some(s)
}
