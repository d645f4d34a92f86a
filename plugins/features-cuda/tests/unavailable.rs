//! The unavailable path: with no driver (every CI machine) or no such GPU, creating the
//! extractor is a clear error, through the Rust API, the plugin trait and a loaded plugin
//! library alike, never a panic. Configurations the kernels do not cover are refused the
//! same way on every machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use prosodia_features_cuda::{CudaExtractor, ErrorKind, driver_present};
use prosodia_plugin_api::{ErrorCode, ExtractorPlugin};
use prosodia_plugin_conformance::build;
use prosodia_plugin_host::{HostErrorKind, PluginHost};

#[test]
fn missing_driver_is_a_clear_unavailable_error() {
    if driver_present() {
        eprintln!(
            "SKIPPED: this machine has a CUDA driver; the missing-driver path cannot run here"
        );
        return;
    }
    let err = CudaExtractor::from_toml("").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("no CUDA driver"), "{err}");
    assert!(err.message().contains("cpu"), "the message names the fallback: {err}");
    let plugin_err = <CudaExtractor as ExtractorPlugin>::create("").unwrap_err();
    assert_eq!(plugin_err.code, ErrorCode::Unsupported, "{plugin_err}");
}

#[test]
fn a_device_that_does_not_exist_is_unavailable_on_every_machine() {
    // No driver: "no CUDA driver"; a driver: "no CUDA device 4096".
    let err = CudaExtractor::from_toml("device = 4096").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("CUDA"), "{err}");
}

#[test]
fn unsupported_configurations_are_refused_before_touching_cuda() {
    for (config, needle) in [
        ("output = \"utterance\"", "Praat"),
        ("[preprocess]\nresample_hz = 16000\n[stft]\nn_fft = 16384\nwin_length = 16384", "n_fft"),
    ] {
        let err = CudaExtractor::from_toml(config).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{config}: {err}");
        assert!(err.message().contains(needle), "{config}: {err}");
    }
    for bad in ["device = -1", "output = 3", "[stft]\nn_fft = 1", "nonsense = 1"] {
        let err = CudaExtractor::from_toml(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{bad}: {err}");
    }
}

/// The host smoke-tests a library by creating an extractor with its defaults: without a GPU
/// the library is refused with the plugin's own reason (and the built-in CPU extractor keeps
/// serving); with a GPU it loads, and a missing device is the ABI's `UNSUPPORTED`.
#[test]
fn the_plugin_library_reports_itself_unavailable_through_the_host() -> anyhow::Result<()> {
    let lib = build::rust_plugin_library("prosodia_features_cuda_plugin")?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("libprosodia_features_cuda_plugin.so");
    std::fs::copy(&lib, &path)?;
    let host = PluginHost::builder().build()?;
    if !driver_present() {
        let err = host.load_library(&path).unwrap_err();
        assert_eq!(err.kind(), HostErrorKind::SmokeTest, "{err}");
        assert!(err.to_string().contains("no CUDA driver"), "{err}");
        assert!(host.info("cuda").is_err(), "a refused library must not be registered");
        return Ok(());
    }
    let info = host.load_library(&path)?;
    assert_eq!(info.name, "cuda");
    let Err(err) = host.extractor("cuda", "device = 4096") else {
        panic!("creating a `cuda` extractor on device 4096 succeeded");
    };
    assert_eq!(err.kind(), HostErrorKind::Plugin, "{err}");
    assert_eq!(err.plugin_code(), Some(ErrorCode::Unsupported), "{err}");
    assert!(err.to_string().contains("no CUDA device 4096"), "{err}");
    Ok(())
}
