//! The plugin conformance suite: one contract, written once, run against every
//! feature-extractor plugin — built in, Rust cdylib, or C library — through the same
//! [`PluginHost`](prosodia_plugin_host::PluginHost) the server uses.
//!
//! [`check_extractor`] runs every check and reports all failures at once rather than
//! stopping at the first: declared shapes are honoured, outputs are finite, a batch gives the
//! same numbers as its utterances one by one, an empty batch or an empty utterance is an
//! error (not a crash), many threads may call one handle at once and get the sequential
//! answers, and destroying handles frees everything the library reports as live. The
//! [`build`] module compiles C plugins and finds Rust plugin libraries for tests.

pub mod build;
mod suite;

pub use suite::{Failures, Report, check_extractor, test_signal};
