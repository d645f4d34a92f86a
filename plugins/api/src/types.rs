//! The safe types a plugin and the host exchange: errors, declarations, inputs and outputs.

use std::fmt;

use crate::abi;

/// Why a plugin call failed; the value is the status code on the C ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A configuration or argument is invalid (bad TOML, null pointer, unknown model file).
    InvalidArgument,
    /// The input cannot be processed: empty batch, empty utterance, wrong rate or shape.
    InvalidInput,
    /// The plugin does not support the request.
    Unsupported,
    /// The plugin failed internally.
    Internal,
    /// The plugin panicked; the call was contained and failed.
    Panic,
}

impl ErrorCode {
    /// The status code on the C ABI (never 0).
    pub const fn as_raw(self) -> i32 {
        match self {
            ErrorCode::InvalidArgument => 1,
            ErrorCode::InvalidInput => 2,
            ErrorCode::Unsupported => 3,
            ErrorCode::Internal => 4,
            ErrorCode::Panic => 5,
        }
    }

    /// Reads a nonzero status code back; unknown codes become [`ErrorCode::Internal`].
    pub const fn from_raw(code: i32) -> Self {
        match code {
            1 => ErrorCode::InvalidArgument,
            2 => ErrorCode::InvalidInput,
            3 => ErrorCode::Unsupported,
            5 => ErrorCode::Panic,
            _ => ErrorCode::Internal,
        }
    }

    /// A short stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid argument",
            ErrorCode::InvalidInput => "invalid input",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Internal => "internal error",
            ErrorCode::Panic => "plugin panicked",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error returned by a plugin: a code plus a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
}

impl PluginError {
    /// Builds an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// An [`ErrorCode::InvalidArgument`] error.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// An [`ErrorCode::InvalidInput`] error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    /// An [`ErrorCode::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for PluginError {}

/// Which table a plugin library provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PluginKind {
    /// Turns audio into features.
    FeatureExtractor,
    /// Turns features into class probabilities.
    ModelBackend,
}

impl PluginKind {
    /// The `KIND_*` constant on the ABI.
    pub const fn as_raw(self) -> u32 {
        match self {
            PluginKind::FeatureExtractor => abi::KIND_FEATURE_EXTRACTOR,
            PluginKind::ModelBackend => abi::KIND_MODEL_BACKEND,
        }
    }

    /// Reads a `KIND_*` constant back.
    pub const fn from_raw(kind: u32) -> Option<Self> {
        match kind {
            abi::KIND_FEATURE_EXTRACTOR => Some(PluginKind::FeatureExtractor),
            abi::KIND_MODEL_BACKEND => Some(PluginKind::ModelBackend),
            _ => None,
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::FeatureExtractor => "feature extractor",
            PluginKind::ModelBackend => "model backend",
        })
    }
}

/// The shape of an extractor's per-utterance output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputLayout {
    /// A frame matrix: one row per frame, the declared columns.
    Frames,
    /// One row of the declared columns per utterance.
    Vector,
}

impl OutputLayout {
    /// The `LAYOUT_*` constant on the ABI.
    pub const fn as_raw(self) -> u32 {
        match self {
            OutputLayout::Frames => abi::LAYOUT_FRAMES,
            OutputLayout::Vector => abi::LAYOUT_VECTOR,
        }
    }

    /// Reads a `LAYOUT_*` constant back.
    pub const fn from_raw(layout: u32) -> Option<Self> {
        match layout {
            abi::LAYOUT_FRAMES => Some(OutputLayout::Frames),
            abi::LAYOUT_VECTOR => Some(OutputLayout::Vector),
            _ => None,
        }
    }
}

/// What a feature extractor declares up front, before any audio is seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractorSpec {
    /// The rate every utterance must be at, in Hz; 0 accepts any rate.
    pub sample_rate: u32,
    /// Frame matrix or one vector per utterance.
    pub layout: OutputLayout,
    /// Column names; their count is the output width.
    pub columns: Vec<String>,
}

impl ExtractorSpec {
    /// Number of output columns.
    pub fn width(&self) -> usize {
        self.columns.len()
    }
}

/// A dense row-major matrix of features for one utterance (rows are frames; a vector output
/// is one row).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureMatrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows * cols` values, row after row.
    pub data: Vec<f32>,
}

impl FeatureMatrix {
    /// Builds a matrix, checking that `data` holds `rows * cols` values.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self, PluginError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(PluginError::internal(format!(
                "matrix of {rows}×{cols} needs {} values, got {}",
                rows.saturating_mul(cols),
                data.len()
            )));
        }
        Ok(Self { rows, cols, data })
    }

    /// Column `c` copied out.
    pub fn column(&self, c: usize) -> Vec<f32> {
        (0..self.rows).map(|r| self.data[r * self.cols + c]).collect()
    }
}

/// Checks an extractor batch against its declaration: not empty, no empty utterance, the
/// declared sample rate. Plugins call this first; the generated ABI shims call it too.
pub fn check_batch(
    spec: &ExtractorSpec,
    batch: &[&[f32]],
    sample_rate: u32,
) -> Result<(), PluginError> {
    if batch.is_empty() {
        return Err(PluginError::invalid_input("empty batch: pass at least one utterance"));
    }
    if let Some(i) = batch.iter().position(|u| u.is_empty()) {
        return Err(PluginError::invalid_input(format!("utterance {i} has no samples")));
    }
    if spec.sample_rate != 0 && sample_rate != spec.sample_rate {
        return Err(PluginError::invalid_input(format!(
            "audio is at {sample_rate} Hz but the extractor is configured for {} Hz",
            spec.sample_rate
        )));
    }
    if sample_rate == 0 {
        return Err(PluginError::invalid_input("sample rate is 0 Hz"));
    }
    Ok(())
}

/// Element type of a model tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
}

impl DType {
    /// The `DTYPE_*` constant on the ABI.
    pub const fn as_raw(self) -> u32 {
        match self {
            DType::F32 => abi::DTYPE_F32,
            DType::I64 => abi::DTYPE_I64,
            DType::I32 => abi::DTYPE_I32,
        }
    }

    /// Reads a `DTYPE_*` constant back.
    pub const fn from_raw(dtype: u32) -> Option<Self> {
        match dtype {
            abi::DTYPE_F32 => Some(DType::F32),
            abi::DTYPE_I64 => Some(DType::I64),
            abi::DTYPE_I32 => Some(DType::I32),
            _ => None,
        }
    }
}

/// Declaration of a model input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Tensor name in the model.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimension sizes; [`abi::DIM_DYNAMIC`] (-1) where fixed only at run time.
    pub shape: Vec<i64>,
}

/// What a model backend declares after loading a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// Model inputs (the first one receives the `[N, T, F]` batch).
    pub inputs: Vec<TensorSpec>,
    /// Model outputs (the first one is the `[N, classes]` probabilities).
    pub outputs: Vec<TensorSpec>,
    /// Number of classes per item.
    pub num_classes: usize,
}

/// A padded batch of frame matrices: `[N, T, F]` row-major, and each item's valid length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Batch<'a> {
    /// `n * t * f` values.
    pub data: &'a [f32],
    /// Items.
    pub n: usize,
    /// Padded frames per item.
    pub t: usize,
    /// Features per frame.
    pub f: usize,
    /// Valid frames of each item (`n` entries, each in `1..=t`).
    pub lengths: &'a [usize],
}

impl<'a> Batch<'a> {
    /// Builds a batch, checking every size.
    pub fn new(
        data: &'a [f32],
        n: usize,
        t: usize,
        f: usize,
        lengths: &'a [usize],
    ) -> Result<Self, PluginError> {
        let batch = Self { data, n, t, f, lengths };
        batch.check()?;
        Ok(batch)
    }

    /// Checks sizes: non-empty, `data.len() == n*t*f`, `n` lengths each in `1..=t`.
    pub fn check(&self) -> Result<(), PluginError> {
        if self.n == 0 || self.t == 0 || self.f == 0 {
            return Err(PluginError::invalid_input(format!(
                "batch shape [{}, {}, {}] has an empty dimension",
                self.n, self.t, self.f
            )));
        }
        let expected = self.n.checked_mul(self.t).and_then(|x| x.checked_mul(self.f));
        if expected != Some(self.data.len()) {
            return Err(PluginError::invalid_input(format!(
                "batch shape [{}, {}, {}] does not match {} values",
                self.n,
                self.t,
                self.f,
                self.data.len()
            )));
        }
        if self.lengths.len() != self.n {
            return Err(PluginError::invalid_input(format!(
                "{} lengths for a batch of {}",
                self.lengths.len(),
                self.n
            )));
        }
        if let Some(i) = self.lengths.iter().position(|&l| l == 0 || l > self.t) {
            return Err(PluginError::invalid_input(format!(
                "length {} of item {i} is outside 1..={}",
                self.lengths[i], self.t
            )));
        }
        Ok(())
    }

    /// Valid frames of item `i` as a `[len, f]` row-major slice.
    pub fn item(&self, i: usize) -> &'a [f32] {
        let start = i * self.t * self.f;
        &self.data[start..start + self.lengths[i] * self.f]
    }
}

/// Checks a padded model-backend batch before it reaches an inference engine: `n × t × f`
/// finite values, `f` equal to the model's feature `width`, and one length in `1..=t` per item.
/// The message names the first problem found; backends wrap it in their own error type.
pub fn check_padded_batch(
    features: &[f32],
    n: usize,
    t: usize,
    f: usize,
    lengths: &[i64],
    width: usize,
) -> Result<(), String> {
    let bad = |m: String| Err(m);
    if n == 0 || t == 0 {
        return bad(format!("empty batch: n = {n}, t = {t}"));
    }
    if f != width {
        return bad(format!("feature width mismatch: the model expects F = {width}, got {f}"));
    }
    match n.checked_mul(t).and_then(|nt| nt.checked_mul(f)) {
        Some(len) if len == features.len() => {}
        expected => {
            return bad(format!(
                "features hold {} values, expected n × t × f = {n} × {t} × {f} ({expected:?})",
                features.len()
            ));
        }
    }
    if lengths.len() != n {
        return bad(format!("{} lengths for a batch of {n}", lengths.len()));
    }
    if let Some((i, &l)) = lengths.iter().enumerate().find(|&(_, &l)| l < 1 || l as u64 > t as u64)
    {
        return bad(format!("item {i} has length {l}; lengths must be in 1..={t}"));
    }
    if let Some(pos) = features.iter().position(|v| !v.is_finite()) {
        return bad(format!(
            "feature value {} at item {}, frame {} is not finite",
            features[pos],
            pos / (t * f),
            pos / f % t
        ));
    }
    Ok(())
}
