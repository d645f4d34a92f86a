//! A small row-major matrix used for frame features (rows are frames).

/// A dense row-major `rows × cols` matrix of f32; for frame features each row is one frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matrix {
    /// Number of rows (frames).
    pub rows: usize,
    /// Number of columns (bins, mel bands, coefficients).
    pub cols: usize,
    /// `rows * cols` values, row after row.
    pub data: Vec<f32>,
}

impl Matrix {
    /// A zero-filled matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self { rows, cols, data: vec![0.0; rows * cols] }
    }

    /// Resizes in place to `rows × cols`, reusing the allocation; contents are unspecified
    /// (zero where newly grown).
    pub fn reshape_for(&mut self, rows: usize, cols: usize) {
        self.rows = rows;
        self.cols = cols;
        self.data.resize(rows * cols, 0.0);
    }

    /// Row `r` as a slice.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Row `r` as a mutable slice.
    pub fn row_mut(&mut self, r: usize) -> &mut [f32] {
        &mut self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Iterates over rows.
    pub fn iter_rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.cols.max(1)).take(self.rows)
    }

    /// Column `c` copied out (one value per frame).
    pub fn column(&self, c: usize) -> Vec<f32> {
        (0..self.rows).map(|r| self.data[r * self.cols + c]).collect()
    }

    /// Rows as nested vectors (for JSON output and tests).
    pub fn to_rows(&self) -> Vec<Vec<f32>> {
        self.iter_rows().map(<[f32]>::to_vec).collect()
    }
}
