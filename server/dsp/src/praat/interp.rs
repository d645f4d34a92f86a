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
    // sin(pi (x - k)) only changes sign from one tap to the next.
    let s = (PI * frac).sin();

    let mut sum = 0.0;
    // Left taps: distance a = pi (x - k) grows by pi per step; the taper width spans
    // x - left + 1 samples so that its zero falls one sample beyond the last tap.
    {
        let width = x - left as f64 + 1.0;
        let step = PI / width;
        let (mut sn, mut cs) = (PI * frac / width).sin_cos();
        let (ds, dc) = step.sin_cos();
        let mut a = PI * frac;
        let mut sign = s;
        let mut k = midleft;
        loop {
            sum += y[k] * (sign / a) * 0.5 * (1.0 + cs);
            if k == left {
                break;
            }
            k -= 1;
            a += PI;
            sign = -sign;
            let c2 = cs * dc - sn * ds;
            sn = sn * dc + cs * ds;
            cs = c2;
        }
    }
    {
        let d0 = 1.0 - frac;
        let width = right as f64 - x + 1.0;
        let step = PI / width;
        let (mut sn, mut cs) = (PI * d0 / width).sin_cos();
        let (ds, dc) = step.sin_cos();
        let mut a = PI * d0;
        let mut sign = s; // sin(pi (1 - frac)) == sin(pi frac)
        for &v in &y[midright..=right] {
            sum += v * (sign / a) * 0.5 * (1.0 + cs);
            a += PI;
            sign = -sign;
            let c2 = cs * dc - sn * ds;
            sn = sn * dc + cs * ds;
            cs = c2;
        }
    }
    sum
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
