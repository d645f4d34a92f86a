//! Fuzz body: the TOML parsers that read operator-written files.
//!
//! The same text goes to the feature-configuration parser (`prosodia_dsp::FeatureConfig`,
//! what `features.toml`, model manifests and the plugins' config strings hold), the
//! `model.toml` parser (`prosodia_server::repository::ModelManifest`) and the server's own
//! configuration file (`prosodia_server::Config`, then its validation). A configuration the
//! parser accepts must also be usable: it either builds an extractor that analyses a short
//! tone without panicking and with finite features, or the extractor refuses it with an
//! error. That second half is where a missing bound (a zero FFT size, a band above Nyquist)
//! would show up.

use prosodia_dsp::FeatureConfig;
use prosodia_dsp::pipeline::Extractor;
use prosodia_server::Config;
use prosodia_server::repository::ModelManifest;

/// Half a second of a 220 Hz tone with a little deterministic noise, at 16 kHz.
fn probe_signal() -> Vec<f32> {
    let mut seed = 0x2545_f491_u32;
    (0..8000)
        .map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let noise = (seed as f32 / u32::MAX as f32 - 0.5) * 0.01;
            (i as f32 * 220.0 * std::f32::consts::TAU / 16_000.0).sin() * 0.5 + noise
        })
        .collect()
}

/// Runs one input.
pub(crate) fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let features = FeatureConfig::from_toml(text)
        .ok()
        .and_then(|config| Extractor::new(config).ok())
        .and_then(|mut extractor| extractor.utterance(&probe_signal(), 16_000).ok());
    if let Some(features) = features {
        assert!(
            features.values.iter().all(|v| v.is_finite()),
            "an accepted configuration gave non-finite features: {text:?}"
        );
    }
    let _ = ModelManifest::from_toml(text);
    if let Ok(config) = Config::from_toml(text) {
        let _ = config.validate();
    }
}
