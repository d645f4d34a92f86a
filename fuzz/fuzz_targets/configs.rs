//! The feature-configuration, `model.toml` and server-configuration parsers (see
//! `bodies/configs.rs`).
#![no_main]

#[path = "../bodies/configs.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
