//! The CPU feature extractor: [`prosodia_dsp`]'s pipeline behind the plugin ABI.
//!
//! Linked into the server it is the built-in extractor (registered with
//! `Builtin::extractor::<CpuExtractor>()`); the sibling crate `prosodia-features-cpu-plugin`
//! (`cdylib/`) exports the same type as a loadable library named `cpu`, which is how the
//! conformance suite and the boundary benchmark exercise the dynamic path. The export lives in
//! that cdylib-only crate because a `#[no_mangle]` entry symbol in an rlib ends up in every
//! binary linking it, and two built-in plugins would collide. This crate is a thin wrapper: configuration
//! parsing, a pool of DSP extractors (they keep FFT plans and scratch buffers behind
//! `&mut self`, while plugins must accept concurrent calls), and error mapping.
//!
//! The configuration is a [`FeatureConfig`](prosodia_dsp::FeatureConfig) in TOML plus one
//! optional key, `output = "frames"` (default: the configured frame features, one row per
//! frame) or `output = "utterance"` (the 46 named utterance features, one row). Audio must
//! already be mono at `preprocess.resample_hz`; preprocessing happens before extraction.

mod extractor;

pub use extractor::{CpuExtractor, Output};
