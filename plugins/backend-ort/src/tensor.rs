//! Declarations of the model's inputs and outputs.

/// The element type of a model input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DType {
    /// 32-bit float.
    #[default]
    F32,
    /// 64-bit signed integer.
    I64,
}

/// A model input or output: name, element type and shape (`-1` for a dynamic dimension).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TensorInfo {
    /// The tensor's name in the model.
    pub name: String,
    /// The element type.
    pub dtype: DType,
    /// The shape, outermost first; `-1` marks a dimension chosen per call (batch, time).
    pub shape: Vec<i64>,
}
