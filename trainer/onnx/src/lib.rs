//! A small ONNX graph writer for Prosodia's model export.
//!
//! The trainer exports its CNN–LSTM as an ONNX file that both inference backends (tract and
//! ONNX Runtime) load. Rather than depend on a protobuf compiler and a vendored
//! `onnx.proto`, [`proto`] declares the few ONNX messages we write as `prost` structs with
//! the field numbers of the ONNX specification, and [`GraphBuilder`] writes a graph node by
//! node, checking as it goes that every input is already defined and that no name is
//! defined twice, so a broken export fails in the trainer with the name at fault rather
//! than later in a backend. Files are opset 17, IR version 8, with symbolic batch and time
//! dimensions.
//!
//! [`blocks`] holds the graph pieces every Prosodia classifier needs, built so that padding
//! never leaks into an item's result (see its docs for the rules), and [`testmodel`] builds
//! small classifiers with deterministic weights for the tests of other crates.

pub mod blocks;
mod builder;
mod error;
pub mod proto;
pub mod testmodel;

pub use builder::{
    AttrValue, Dim, GraphBuilder, IR_VERSION, OPSET_VERSION, attr, tensor_f32, tensor_i64,
};
pub use error::{Error, ErrorKind};
pub use proto::{DataType, ModelProto};
pub use testmodel::{
    Arch, FEATURES_INPUT, LENGTHS_INPUT, PROBABILITIES_OUTPUT, TestModelConfig, test_classifier,
};
