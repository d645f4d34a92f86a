//! Prosodia's default model backend: ONNX inference in pure Rust with tract.
//!
//! A Prosodia model takes a zero-padded feature batch `features` `[N, T, F]` (float32) and the
//! valid frame count of each item `lengths` `[N]` (int64), and returns `probabilities`
//! `[N, C]`. [`TractBackend::load`] reads the model, pins the input facts to
//! `[batch, time, F]` and `[batch]` with `batch` and `time` left symbolic, and optimises the
//! graph once; tract then resolves the symbols from each call's tensors, so one plan serves
//! every batch size and length with no per-shape compilation. The plan is immutable and
//! shared: [`TractBackend::run`] takes `&self` and may be called from many threads at once,
//! each call getting its own execution state. tract runs on the calling thread.
//!
//! Every argument is checked before inference, so bad shapes come back as an
//! [`ErrorKind::InvalidInput`] error naming the expected and received values, never as a
//! panic.

mod backend;
mod error;
mod plugin;
mod tensor;

pub use backend::TractBackend;
pub use error::{Error, ErrorKind};
pub use plugin::{TractPlugin, plugin_error};
pub use tensor::{DType, TensorInfo};

/// The name of the feature input every Prosodia model has.
pub const FEATURES_INPUT: &str = "features";
/// The name of the length input every Prosodia model has.
pub const LENGTHS_INPUT: &str = "lengths";
/// The name of the output every Prosodia model has.
pub const PROBABILITIES_OUTPUT: &str = "probabilities";

prosodia_plugin_api::export_plugin!(backend: TractPlugin);
