//! Prosodia's plugin ABI: how feature extractors and model backends written in any language
//! plug into the server, and the safe Rust layer over it.
//!
//! The boundary is plain C so a plugin can be built by any compiler and any Rust version:
//! [`abi`] holds `#[repr(C)]` tables of `extern "C"` functions, opaque handles in
//! create/destroy pairs, buffers as pointer plus length and errors as a status code plus a
//! message the host reads back per thread. A library exports one versioned entry symbol,
//! `prosodia_plugin_v1`, returning a [`abi::PluginDescriptor`] (ABI major/minor, name,
//! version, kind, function table); the host refuses a different major or a newer minor.
//! `include/prosodia_plugin.h` is the same ABI for C, checked against these definitions by a
//! test.
//!
//! Rust plugins never touch the raw ABI: they implement [`FeatureExtractor`] or
//! [`ModelBackend`] (plus [`ExtractorPlugin`]/[`BackendPlugin`] for name, version and
//! constructor) and call [`export_plugin!`]. The generated shims validate arguments, run
//! every call through [`wrap::wrap`] (errors become codes, panics are caught and fail only
//! that request) and count live objects for leak checks. The host wraps loaded libraries in
//! the same traits, so built-in and dynamic plugins are used alike.

pub mod abi;
pub mod export;
mod traits;
mod types;
pub mod wrap;

pub use traits::{BackendPlugin, ExtractorPlugin, FeatureExtractor, ModelBackend};
pub use types::{
    BackendSpec, Batch, DType, ErrorCode, ExtractorSpec, FeatureMatrix, OutputLayout, PluginError,
    PluginKind, TensorSpec, check_batch, check_padded_batch,
};
