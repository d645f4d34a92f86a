//! [`CpuExtractor`]: configuration, the extractor pool and error mapping.

use std::sync::{Mutex, PoisonError};

use prosodia_dsp::pipeline::Extractor;
use prosodia_dsp::{ErrorKind, FeatureConfig};
use prosodia_plugin_api::{
    ErrorCode, ExtractorPlugin, ExtractorSpec, FeatureExtractor, FeatureMatrix, OutputLayout,
    PluginError, check_batch,
};

/// Which features the extractor returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// The configured frame features, one row per frame.
    #[default]
    Frames,
    /// The 46 utterance features, one row per utterance.
    Utterance,
}

/// The CPU feature extractor plugin (see the crate docs).
pub struct CpuExtractor {
    config: FeatureConfig,
    output: Output,
    spec: ExtractorSpec,
    /// Idle DSP extractors; a call takes one (or builds one) and puts it back.
    pool: Mutex<Vec<Extractor>>,
}

impl std::fmt::Debug for CpuExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuExtractor")
            .field("config", &self.config.name)
            .field("output", &self.output)
            .finish()
    }
}

fn dsp_error(e: prosodia_dsp::Error) -> PluginError {
    let code = match e.kind() {
        ErrorKind::InvalidConfig => ErrorCode::InvalidArgument,
        ErrorKind::Internal => ErrorCode::Internal,
        _ => ErrorCode::InvalidInput,
    };
    PluginError::new(code, e.to_string())
}

impl CpuExtractor {
    /// An extractor for `config` producing `output`.
    pub fn new(config: FeatureConfig, output: Output) -> Result<Self, PluginError> {
        // Building one extractor validates the configuration up front.
        let first = Extractor::new(config.clone()).map_err(dsp_error)?;
        let (layout, columns) = match output {
            Output::Frames => (OutputLayout::Frames, config.frame_column_names()),
            Output::Utterance => (
                OutputLayout::Vector,
                prosodia_dsp::utterance::NAMES.iter().map(|n| n.to_string()).collect(),
            ),
        };
        let spec = ExtractorSpec {
            sample_rate: config.preprocess.resample_hz.unwrap_or(0),
            layout,
            columns,
        };
        Ok(Self { config, output, spec, pool: Mutex::new(vec![first]) })
    }

    /// Parses the plugin configuration: a feature configuration plus an optional
    /// `output = "frames" | "utterance"` key. The empty string selects the `seed` preset.
    pub fn from_toml(text: &str) -> Result<Self, PluginError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e| PluginError::invalid_argument(format!("configuration: {e}")))?;
        let output = match table.remove("output") {
            None => Output::Frames,
            Some(toml::Value::String(s)) if s == "frames" => Output::Frames,
            Some(toml::Value::String(s)) if s == "utterance" => Output::Utterance,
            Some(other) => {
                return Err(PluginError::invalid_argument(format!(
                    "output = {other} is not \"frames\" or \"utterance\""
                )));
            }
        };
        let config: FeatureConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e| PluginError::invalid_argument(format!("feature configuration: {e}")))?;
        config.validate().map_err(dsp_error)?;
        Self::new(config, output)
    }

    /// The feature configuration.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    fn one(
        &self,
        dsp: &mut Extractor,
        signal: &[f32],
        rate: u32,
    ) -> Result<FeatureMatrix, PluginError> {
        match self.output {
            Output::Frames => {
                let m = dsp.frames(signal, rate).map_err(dsp_error)?;
                FeatureMatrix::new(m.rows, m.cols, m.data)
            }
            Output::Utterance => {
                let u = dsp.utterance(signal, rate).map_err(dsp_error)?;
                FeatureMatrix::new(1, u.values.len(), u.values.iter().map(|&v| v as f32).collect())
            }
        }
    }
}

impl FeatureExtractor for CpuExtractor {
    fn spec(&self) -> &ExtractorSpec {
        &self.spec
    }

    fn extract(
        &self,
        batch: &[&[f32]],
        sample_rate: u32,
    ) -> Result<Vec<FeatureMatrix>, PluginError> {
        check_batch(&self.spec, batch, sample_rate)?;
        let pooled = self.pool.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut dsp = match pooled {
            Some(e) => e,
            None => Extractor::new(self.config.clone()).map_err(dsp_error)?,
        };
        let result = batch.iter().map(|u| self.one(&mut dsp, u, sample_rate)).collect();
        self.pool.lock().unwrap_or_else(PoisonError::into_inner).push(dsp);
        result
    }
}

impl ExtractorPlugin for CpuExtractor {
    const NAME: &'static str = "cpu";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn create(config_toml: &str) -> Result<Self, PluginError> {
        Self::from_toml(config_toml)
    }
}
