//! The gRPC handlers of a real in-process server fed arbitrary requests (see
//! `bodies/requests.rs`).
#![no_main]

use std::sync::OnceLock;

#[path = "../bodies/requests.rs"]
mod body;

static HARNESS: OnceLock<body::Harness> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let harness = HARNESS.get_or_init(|| {
        body::Harness::start(concat!(env!("CARGO_MANIFEST_DIR"), "/../models").into())
    });
    harness.run(data);
});
