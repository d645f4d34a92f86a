//! A deliberately faulty feature-extractor plugin for the host's tests, written the way any
//! Rust plugin is: implement the traits, call `export_plugin!`, no `unsafe`.
//!
//! It returns one row `[mean, rms]` per utterance. The configuration chooses a fault:
//! `mode = "ok"` (default), `"panic"` (panics in `extract`), `"panic_on_create"`,
//! `"nan"` (returns NaN) or `"error"` (returns an internal error). The smoke call uses the
//! default, so a faulty mode only shows once a handle is configured with it — exactly the
//! case the host's per-call containment exists for.

use prosodia_plugin_api::{
    ExtractorPlugin, ExtractorSpec, FeatureExtractor, FeatureMatrix, OutputLayout, PluginError,
    check_batch,
};

/// Which fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Behave.
    Ok,
    /// Panic inside `extract`.
    Panic,
    /// Return NaN values.
    Nan,
    /// Return an error.
    Error,
}

/// The test extractor.
#[derive(Debug)]
pub struct TestExtractor {
    mode: Mode,
    spec: ExtractorSpec,
}

impl FeatureExtractor for TestExtractor {
    fn spec(&self) -> &ExtractorSpec {
        &self.spec
    }

    fn extract(
        &self,
        batch: &[&[f32]],
        sample_rate: u32,
    ) -> Result<Vec<FeatureMatrix>, PluginError> {
        check_batch(&self.spec, batch, sample_rate)?;
        match self.mode {
            Mode::Panic => panic!("rust_test plugin: deliberate panic in extract"),
            Mode::Error => return Err(PluginError::internal("rust_test plugin: deliberate error")),
            Mode::Ok | Mode::Nan => {}
        }
        batch
            .iter()
            .map(|u| {
                let n = u.len() as f32;
                let mean = u.iter().sum::<f32>() / n;
                let rms = (u.iter().map(|v| v * v).sum::<f32>() / n).sqrt();
                let row =
                    if self.mode == Mode::Nan { vec![mean, f32::NAN] } else { vec![mean, rms] };
                FeatureMatrix::new(1, 2, row)
            })
            .collect()
    }
}

impl ExtractorPlugin for TestExtractor {
    const NAME: &'static str = "rust_test";
    const VERSION: &'static str = match option_env!("PROSODIA_TEST_PLUGIN_VERSION") {
        Some(v) => v,
        None => "0.1.0",
    };

    fn create(config_toml: &str) -> Result<Self, PluginError> {
        let mode = match config_toml.trim() {
            "" | "mode = \"ok\"" => Mode::Ok,
            "mode = \"panic\"" => Mode::Panic,
            "mode = \"nan\"" => Mode::Nan,
            "mode = \"error\"" => Mode::Error,
            "mode = \"panic_on_create\"" => panic!("rust_test plugin: deliberate panic in create"),
            other => {
                return Err(PluginError::invalid_argument(format!(
                    "unknown configuration {other:?}"
                )));
            }
        };
        let spec = ExtractorSpec {
            sample_rate: 0,
            layout: OutputLayout::Vector,
            columns: vec!["mean".into(), "rms".into()],
        };
        Ok(Self { mode, spec })
    }
}

prosodia_plugin_api::export_plugin!(extractor: TestExtractor);
