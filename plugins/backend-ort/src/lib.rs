//! Prosodia's ONNX Runtime model backend.
//!
//! Same contract and API as `prosodia-backend-tract` (a padded `features` `[N, T, F]` batch
//! plus `lengths` `[N]` in, `probabilities` `[N, C]` out), run by ONNX Runtime through the
//! `ort` crate. The runtime is a shared library loaded at run time (`ort`'s `load-dynamic`),
//! never downloaded or linked at build time, so this crate builds everywhere; the library is
//! found through [`OrtConfig::library_path`] or the `ORT_DYLIB_PATH` environment variable
//! (`scripts/install-onnxruntime.sh` installs the pinned version from the `onnxruntime`
//! Python wheel and prints its path). A missing or incompatible library is an
//! [`ErrorKind::Unavailable`] error naming the file tried, never a panic: `ort` panics in
//! some load paths, so loading runs under `catch_unwind`.
//!
//! The library is loaded once per process and shared by every backend. An ONNX Runtime
//! session runs one call at a time (`ort` requires `&mut`), so an [`OrtBackend`] keeps a
//! small pool of sessions ([`OrtConfig::sessions`]) and [`OrtBackend::run`] takes `&self`;
//! each call may itself use several threads ([`OrtConfig::intra_threads`]). The execution
//! provider is the CPU unless [`Provider::Cuda`] is asked for and present.

mod backend;
mod config;
mod error;
mod plugin;
mod runtime;
mod tensor;

pub use backend::OrtBackend;
pub use config::{DYLIB_ENV, OrtConfig, Provider};
pub use error::{Error, ErrorKind};
pub use plugin::{OrtPlugin, plugin_error};
pub use tensor::{DType, TensorInfo};

/// The name of the feature input every Prosodia model has.
pub const FEATURES_INPUT: &str = "features";
/// The name of the length input every Prosodia model has.
pub const LENGTHS_INPUT: &str = "lengths";
/// The name of the output every Prosodia model has.
pub const PROBABILITIES_OUTPUT: &str = "probabilities";

prosodia_plugin_api::export_plugin!(backend: OrtPlugin);
