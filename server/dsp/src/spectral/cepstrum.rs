//! MFCCs (orthonormal DCT-II of the log-mel spectrum, `librosa.feature.mfcc(S=..., dct_type=2,
//! norm="ortho")`) and their deltas (`librosa.feature.delta(mode="interp")`).

use crate::Matrix;
use crate::error::{Error, ErrorKind, Result};

/// A planned orthonormal DCT-II keeping the first `n_mfcc` coefficients of `n_mels` inputs.
///
/// The basis matrix is built once in [`Mfcc::new`]:
/// `c_k(n) = s_k · cos(π k (2n + 1) / (2 n_mels))` with `s_0 = √(1/n_mels)` and
/// `s_k = √(2/n_mels)` otherwise (scipy's `dct(type=2, norm="ortho")`).
#[derive(Debug, Clone, PartialEq)]
pub struct Mfcc {
    n_mels: usize,
    n_mfcc: usize,
    /// Transposed basis, `n_mels × stride`: row `i` holds every coefficient's weight for band
    /// `i` (zero-padded to `stride`, a multiple of 8), so a frame is a sum of `n_mels` short
    /// vector updates, which LLVM vectorises without a scalar tail.
    basis_t: Vec<f32>,
    stride: usize,
}

impl Mfcc {
    /// Plans the transform; `1 ≤ n_mfcc ≤ n_mels`, otherwise [`ErrorKind::InvalidConfig`].
    pub fn new(n_mels: usize, n_mfcc: usize) -> Result<Self> {
        if n_mels == 0 || n_mfcc == 0 || n_mfcc > n_mels {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("MFCC: n_mfcc = {n_mfcc} must be in 1..=n_mels ({n_mels})"),
            ));
        }
        let n = n_mels as f64;
        let stride = n_mfcc.next_multiple_of(8);
        let mut basis_t = vec![0.0f32; stride * n_mels];
        for (i, row) in basis_t.chunks_exact_mut(stride).enumerate() {
            for (k, w) in row.iter_mut().take(n_mfcc).enumerate() {
                let scale = if k == 0 { (1.0 / n).sqrt() } else { (2.0 / n).sqrt() };
                let arg = std::f64::consts::PI * k as f64 * (2 * i + 1) as f64 / (2.0 * n);
                *w = (scale * arg.cos()) as f32;
            }
        }
        Ok(Self { n_mels, n_mfcc, basis_t, stride })
    }

    /// Input width (mel bands).
    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// Output width (coefficients).
    pub fn n_mfcc(&self) -> usize {
        self.n_mfcc
    }

    /// MFCCs of a log-mel matrix (frames × `n_mels` → frames × `n_mfcc`); allocating form of
    /// [`Mfcc::mfcc_into`].
    pub fn mfcc(&self, logmel_db: &Matrix) -> Result<Matrix> {
        let mut out = Matrix::default();
        self.mfcc_into(logmel_db, &mut out)?;
        Ok(out)
    }

    /// MFCCs into `out` (reshaped, allocation reused). Fails with
    /// [`ErrorKind::InvalidConfig`] when the input does not have `n_mels` columns.
    pub fn mfcc_into(&self, logmel_db: &Matrix, out: &mut Matrix) -> Result<()> {
        if logmel_db.cols != self.n_mels || logmel_db.data.len() != logmel_db.rows * logmel_db.cols
        {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("MFCC expects {} mel bands per frame, got {}", self.n_mels, logmel_db.cols),
            ));
        }
        out.reshape_for(logmel_db.rows, self.n_mfcc);
        let mut acc = vec![0.0f32; self.stride];
        for (src, dst) in
            logmel_db.data.chunks_exact(self.n_mels).zip(out.data.chunks_exact_mut(self.n_mfcc))
        {
            acc.fill(0.0);
            for (&x, b) in src.iter().zip(self.basis_t.chunks_exact(self.stride)) {
                for (d, &w) in acc.iter_mut().zip(b) {
                    *d += w * x;
                }
            }
            dst.copy_from_slice(&acc[..self.n_mfcc]);
        }
        Ok(())
    }
}

/// The Savitzky–Golay weights that take the `order`-th derivative of a degree-`order`
/// least-squares polynomial fitted over `width` points, applied as a correlation:
/// `order! · q(u_j) / Σ q(u)²`, where `q` is the monic polynomial of degree `order`
/// orthogonal (on the points `u = -h..=h`) to all lower degrees.
fn derivative_weights(width: usize, order: usize) -> Vec<f64> {
    let h = (width / 2) as f64;
    let u: Vec<f64> = (0..width).map(|j| j as f64 - h).collect();
    // Gram–Schmidt over the monomials gives the orthogonal polynomials' values on the grid.
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(order + 1);
    for d in 0..=order {
        let mut q: Vec<f64> = u.iter().map(|&x| x.powi(d as i32)).collect();
        for p in &basis {
            let num: f64 = q.iter().zip(p).map(|(a, b)| a * b).sum();
            let den: f64 = p.iter().map(|b| b * b).sum();
            for (a, b) in q.iter_mut().zip(p) {
                *a -= num / den * b;
            }
        }
        basis.push(q);
    }
    let q = &basis[order];
    let norm: f64 = q.iter().map(|b| b * b).sum();
    let factorial: f64 = (1..=order).map(|k| k as f64).product();
    q.iter().map(|b| factorial * b / norm).collect()
}

/// `librosa.feature.delta(data, width, order, axis=-1, mode="interp")` over frames (rows):
/// a Savitzky–Golay derivative of order `order` with polynomial order `order`.
/// Allocating form of [`delta_into`].
pub fn delta(data: &Matrix, width: usize, order: usize) -> Result<Matrix> {
    let mut out = Matrix::default();
    delta_into(data, width, order, &mut out)?;
    Ok(out)
}

/// [`delta`] into `out` (reshaped to the shape of `data`, allocation reused).
///
/// Interior frames `t` with a full window get the weighted sum of frames `t-h..=t+h`
/// (`h = width / 2`). With `mode="interp"` scipy fits one polynomial to the first (last)
/// `width` frames and evaluates its derivative at the edge frames; because the fit has degree
/// `order`, its `order`-th derivative is constant, so every edge frame equals frame `h`
/// (frame `n-1-h`). Errors: [`ErrorKind::InvalidConfig`] unless `width` is odd and ≥ 3 and
/// `1 ≤ order < width`; [`ErrorKind::TooShort`] when there are fewer than `width` frames
/// (librosa refuses those too).
pub fn delta_into(data: &Matrix, width: usize, order: usize, out: &mut Matrix) -> Result<()> {
    if width < 3 || width.is_multiple_of(2) {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("delta width {width} must be odd and ≥ 3"),
        ));
    }
    if order == 0 || order >= width {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("delta order {order} must be in 1..width ({width})"),
        ));
    }
    let (n, cols) = (data.rows, data.cols);
    if n < width {
        return Err(Error::new(
            ErrorKind::TooShort,
            format!("deltas need at least {width} frames, the signal has {n}"),
        ));
    }
    if data.data.len() != n * cols {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            "delta: matrix data does not match its shape",
        ));
    }
    out.reshape_for(n, cols);
    if cols == 0 {
        return Ok(());
    }
    let weights: Vec<f32> =
        derivative_weights(width, order).into_iter().map(|w| w as f32).collect();
    let h = width / 2;
    for t in h..n - h {
        let dst = &mut out.data[t * cols..(t + 1) * cols];
        dst.fill(0.0);
        for (j, &w) in weights.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            let src = &data.data[(t + j - h) * cols..(t + j - h + 1) * cols];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d += w * s;
            }
        }
    }
    for t in 0..h {
        out.data.copy_within(h * cols..(h + 1) * cols, t * cols);
    }
    let last = n - 1 - h;
    for t in last + 1..n {
        out.data.copy_within(last * cols..(last + 1) * cols, t * cols);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_order_weights_are_the_regression_slope() {
        let w = derivative_weights(9, 1);
        let denom: f64 = (-4..=4).map(|j: i32| f64::from(j * j)).sum();
        for (j, v) in w.iter().enumerate() {
            assert!((v - (j as f64 - 4.0) / denom).abs() < 1e-12);
        }
    }

    #[test]
    fn deltas_of_polynomials() {
        // Column 0: 3t + 1 (slope 3); column 1: 0.5 t² (second derivative 1).
        let n = 20;
        let mut m = Matrix::zeros(n, 2);
        for t in 0..n {
            let x = t as f32;
            m.row_mut(t).copy_from_slice(&[3.0 * x + 1.0, 0.5 * x * x]);
        }
        let d1 = delta(&m, 9, 1).expect("delta");
        let d2 = delta(&m, 9, 2).expect("delta2");
        for t in 0..n {
            assert!((d1.row(t)[0] - 3.0).abs() < 1e-4, "t {t}: {}", d1.row(t)[0]);
            assert!((d2.row(t)[1] - 1.0).abs() < 1e-4, "t {t}: {}", d2.row(t)[1]);
            assert!(d2.row(t)[0].abs() < 1e-4);
        }
        // Interior first derivative of t²/2 is t; edges repeat the first/last full window.
        assert!((d1.row(10)[1] - 10.0).abs() < 1e-3);
        assert!((d1.row(0)[1] - 4.0).abs() < 1e-3);
        assert!((d1.row(n - 1)[1] - (n as f32 - 5.0)).abs() < 1e-3);
    }

    #[test]
    fn delta_refuses_short_and_bad_widths() {
        let m = Matrix::zeros(5, 3);
        assert_eq!(delta(&m, 9, 1).map(|_| ()).map_err(|e| e.kind()), Err(ErrorKind::TooShort));
        assert_eq!(
            delta(&m, 4, 1).map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::InvalidConfig)
        );
        assert_eq!(
            delta(&m, 3, 3).map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::InvalidConfig)
        );
    }
}
