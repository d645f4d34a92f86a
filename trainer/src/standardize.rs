//! Per-column standardisation (scikit-learn's `StandardScaler`), fitted on training data only.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Column means and standard deviations; `apply` maps `x` to `(x - mean) / std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Per-column mean.
    pub mean: Vec<f32>,
    /// Per-column population standard deviation (1 where a column is constant, as
    /// scikit-learn does, so a constant column maps to 0 rather than NaN).
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits on `rows`, each of `width` values. Accumulates in f64 (Welford), so millions of
    /// frames lose no precision.
    pub fn fit<'a>(width: usize, rows: impl IntoIterator<Item = &'a [f32]>) -> Result<Self> {
        let mut n = 0u64;
        let mut mean = vec![0f64; width];
        let mut m2 = vec![0f64; width];
        for row in rows {
            if row.len() != width {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!("standardizer: row of {} values, expected {width}", row.len()),
                ));
            }
            n += 1;
            let nf = n as f64;
            for ((m, s), &x) in mean.iter_mut().zip(m2.iter_mut()).zip(row) {
                let x = f64::from(x);
                let d = x - *m;
                *m += d / nf;
                *s += d * (x - *m);
            }
        }
        if n == 0 {
            return Err(Error::new(ErrorKind::InvalidArgument, "standardizer: no rows to fit on"));
        }
        let std = m2
            .iter()
            .map(|&s| {
                let sd = (s / n as f64).sqrt();
                if sd.is_finite() && sd > 1e-12 { sd as f32 } else { 1.0 }
            })
            .collect();
        Ok(Self { mean: mean.iter().map(|&m| m as f32).collect(), std })
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.mean.len()
    }

    /// Standardises one or more rows in place (`values.len()` a multiple of the width).
    pub fn apply(&self, values: &mut [f32]) {
        let w = self.width().max(1);
        for row in values.chunks_exact_mut(w) {
            for ((x, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *x = (*x - m) / s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_and_apply() {
        let rows = [[1.0f32, 5.0], [3.0, 5.0]];
        let s = Standardizer::fit(2, rows.iter().map(|r| r.as_slice())).unwrap();
        assert_eq!(s.mean, vec![2.0, 5.0]);
        assert_eq!(s.std, vec![1.0, 1.0]);
        let mut v = vec![3.0, 5.0, 1.0, 6.0];
        s.apply(&mut v);
        assert_eq!(v, vec![1.0, 0.0, -1.0, 1.0]);
        assert!(Standardizer::fit(2, std::iter::empty()).is_err());
        assert!(Standardizer::fit(3, rows.iter().map(|r| r.as_slice())).is_err());
    }
}
