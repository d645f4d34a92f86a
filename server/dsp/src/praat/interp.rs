//! Windowed-sinc interpolation and Brent's one-dimensional maximiser.
//!
//! Boersma (1993) refines autocorrelation peaks by maximising a band-limited reconstruction
//! of the sampled autocorrelation: a sinc kernel tapered by a raised cosine that reaches
//! zero just beyond `depth` samples on each side. The kernel is evaluated here with
//! recurrences (the sinc numerator only alternates in sign, the taper is a rotating phasor)
//! so that one evaluation costs no transcendental calls per tap; this matters because the
//! maximiser evaluates it a dozen times for every candidate of every frame.

use std::f64::consts::PI;

/// Value of the sequence `y` (sample `k` at abscissa `k`) at the real abscissa `x`,
/// reconstructed with a raised-cosine-tapered sinc of at most `depth` taps per side.
///
/// Near the ends the depth shrinks to the samples that exist, and below two taps the
/// reconstruction degrades to linear, so the function is defined for every `x`.
pub(crate) fn sinc_interpolate(y: &[f64], x: f64, depth: usize) -> f64 {
    let n = y.len();
    if n == 0 {
        return 0.0;
    }
    if !x.is_finite() || x <= 0.0 {
        return y[0];
    }
    let last = (n - 1) as f64;
    if x >= last {
        return y[n - 1];
    }
    let midleft = x.floor() as usize;
    let frac = x - midleft as f64;
    if frac == 0.0 {
        return y[midleft];
    }
    let midright = midleft + 1;
    let depth = depth.min(midright).min(n - 1 - midleft);
    if depth <= 1 {
        // Too close to an edge for a meaningful kernel: the two neighbours are all we have.
        return y[midleft] + frac * (y[midright] - y[midleft]);
    }
    let left = midright - depth;
    let right = midleft + depth;
    // sin(pi (x - k)) only changes sign from one tap to the next, and
    // sin(pi (1 - frac)) == sin(pi frac), so both sides share it.
    let s = (PI * frac).sin();
    let lefts = &y[left..=midleft];
    let rights = &y[midright..=right];
    side_sum(depth, |j| lefts[depth - 1 - j], frac, s)
        + side_sum(depth, |j| rights[j], 1.0 - frac, s)
}

/// One side of the tapered-sinc sum: taps `j = 0..depth` at distance `delta + j` samples
/// from `x`, with values `tap(j)`. The taper's width spans `delta + depth` samples so that
/// its zero falls one sample beyond the last tap.
///
/// The taps run in four independent lanes (tap `j` in lane `j % 4`), so that the divisions
/// of neighbouring taps do not wait on each other, and the sign of the sinc numerator is
/// constant per lane. Each lane's taper cosine advances by the three-term recurrence
/// `cos(φ + 4θ) = 2 cos 4θ · cos φ − cos(φ − 4θ)`, one multiply and one subtract per tap;
/// over the few dozen steps of a lane its rounding error stays near 1e-14.
#[inline(always)]
fn side_sum(depth: usize, tap: impl Fn(usize) -> f64, delta: f64, s: f64) -> f64 {
    let theta = PI / (delta + depth as f64);
    // Lane l starts at phase (delta + l) θ and `prev` holds the phase one lane step
    // (4θ) earlier; all of them are rotations of two sin/cos pairs.
    let (s1, c1) = theta.sin_cos();
    let (s2, c2) = (2.0 * s1 * c1, c1 * c1 - s1 * s1);
    let (s4, c4) = (2.0 * s2 * c2, c2 * c2 - s2 * s2);
    let two_cos4 = 2.0 * c4;
    let (mut sv, mut cv) = (delta * theta).sin_cos();
    let mut cur = [0.0f64; 4];
    let mut prev = [0.0f64; 4];
    for l in 0..4 {
        cur[l] = cv;
        // cos(φ − 4θ) = cos φ cos 4θ + sin φ sin 4θ
        prev[l] = cv * c4 + sv * s4;
        (cv, sv) = (cv * c1 - sv * s1, sv * c1 + cv * s1);
    }
    let mut a = [PI * delta, PI * (delta + 1.0), PI * (delta + 2.0), PI * (delta + 3.0)];
    let sign = [s, -s, s, -s];
    let mut acc = [0.0f64; 4];
    let chunks = depth / 4;
    for m in 0..chunks {
        for l in 0..4 {
            acc[l] += tap(4 * m + l) * (sign[l] / a[l]) * (1.0 + cur[l]);
        }
        for l in 0..4 {
            let next = two_cos4 * cur[l] - prev[l];
            prev[l] = cur[l];
            cur[l] = next;
            a[l] += 4.0 * PI;
        }
    }
    for l in 0..depth % 4 {
        acc[l] += tap(4 * chunks + l) * (sign[l] / a[l]) * (1.0 + cur[l]);
    }
    0.5 * ((acc[0] + acc[1]) + (acc[2] + acc[3]))
}

/// Maximises `f` on `[a, b]` with Brent's method (golden section plus successive parabolic
/// interpolation, Brent 1973) to absolute tolerance `tol`; returns `(x, f(x))`.
pub(crate) fn maximise_brent(
    mut f: impl FnMut(f64) -> f64,
    a: f64,
    b: f64,
    tol: f64,
) -> (f64, f64) {
    const GOLDEN: f64 = 0.381_966_011_250_105_1; // (3 - sqrt 5) / 2
    const SQRT_EPS: f64 = 1.490_116_119_384_765_6e-8;
    const MAX_ITER: usize = 60;
    let (mut lo, mut hi) = (a.min(b), a.max(b));
    let mut x = lo + GOLDEN * (hi - lo);
    let (mut w, mut v) = (x, x);
    // Minimise the negation so the textbook update rules apply unchanged.
    let mut fx = -f(x);
    let (mut fw, mut fv) = (fx, fx);
    let mut d: f64 = 0.0;
    let mut e: f64 = 0.0;
    for _ in 0..MAX_ITER {
        let m = 0.5 * (lo + hi);
        let tol1 = SQRT_EPS * x.abs() + tol / 3.0;
        let tol2 = 2.0 * tol1;
        if (x - m).abs() <= tol2 - 0.5 * (hi - lo) {
            break;
        }
        let mut use_golden = true;
        if e.abs() > tol1 {
            let r = (x - w) * (fx - fv);
            let mut q = (x - v) * (fx - fw);
            let mut p = (x - v) * q - (x - w) * r;
            q = 2.0 * (q - r);
            if q > 0.0 {
                p = -p;
            } else {
                q = -q;
            }
            let e_prev = e;
            e = d;
            if p.abs() < (0.5 * q * e_prev).abs() && p > q * (lo - x) && p < q * (hi - x) {
                d = p / q;
                let u = x + d;
                if u - lo < tol2 || hi - u < tol2 {
                    d = if x < m { tol1 } else { -tol1 };
                }
                use_golden = false;
            }
        }
        if use_golden {
            e = if x < m { hi - x } else { lo - x };
            d = GOLDEN * e;
        }
        let u = if d.abs() >= tol1 {
            x + d
        } else if d > 0.0 {
            x + tol1
        } else {
            x - tol1
        };
        let fu = -f(u);
        if fu <= fx {
            if u < x {
                hi = x;
            } else {
                lo = x;
            }
            v = w;
            fv = fw;
            w = x;
            fw = fx;
            x = u;
            fx = fu;
        } else {
            if u < x {
                lo = u;
            } else {
                hi = u;
            }
            if fu <= fw || w == x {
                v = w;
                fv = fw;
                w = u;
                fw = fu;
            } else if fu <= fv || v == x || v == w {
                v = u;
                fv = fu;
            }
        }
    }
    (x, -fx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinc_reproduces_samples_and_band_limited_signal() {
        let y: Vec<f64> = (0..400).map(|k| (0.05 * k as f64).sin()).collect();
        assert_eq!(sinc_interpolate(&y, 17.0, 70), y[17]);
        let v = sinc_interpolate(&y, 200.37, 70);
        assert!((v - (0.05 * 200.37f64).sin()).abs() < 1e-4, "{v}");
        // Edges never index out of bounds.
        let _ = sinc_interpolate(&y, 0.5, 70);
        let _ = sinc_interpolate(&y, 398.5, 70);
        let _ = sinc_interpolate(&y, -3.0, 70);
        let _ = sinc_interpolate(&y, 1e9, 70);
        let _ = sinc_interpolate(&[], 1.0, 70);
    }

    #[test]
    fn brent_finds_parabola_peak() {
        let (x, fx) = maximise_brent(|x| 3.0 - (x - 1.234).powi(2), 0.0, 2.0, 1e-10);
        assert!((x - 1.234).abs() < 1e-6 && (fx - 3.0).abs() < 1e-10);
    }
}
