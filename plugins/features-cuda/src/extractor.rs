//! [`CudaExtractor`]: configuration, availability, and the plugin traits.

use std::sync::{Mutex, PoisonError};

use prosodia_dsp::FeatureConfig;
use prosodia_plugin_api::{
    ExtractorPlugin, ExtractorSpec, FeatureExtractor, FeatureMatrix, OutputLayout, PluginError,
    check_batch,
};

use crate::error::{Error, ErrorKind};
use crate::gpu::{self, Gpu};
use crate::plan::{Layout, Plan};

/// The extractor's own configuration keys, next to the feature configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceOptions {
    /// The CUDA device ordinal (`device = 0`).
    pub device: usize,
}

/// The frames of one batch plus every utterance's column statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Extraction {
    /// One frame matrix per utterance, as [`FeatureExtractor::extract`] returns them.
    pub frames: Vec<FeatureMatrix>,
    /// Per utterance, `width` (mean, std) pairs of the features before any `frame_norm`,
    /// over that utterance's own frames.
    pub stats: Vec<Vec<(f32, f32)>>,
}

/// The CUDA feature extractor plugin (see the crate docs).
pub struct CudaExtractor {
    config: FeatureConfig,
    plan: Plan,
    spec: ExtractorSpec,
    gpu: Mutex<Gpu>,
    device_name: String,
    arch: &'static str,
}

impl std::fmt::Debug for CudaExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaExtractor")
            .field("config", &self.config.name)
            .field("device", &self.device_name)
            .finish()
    }
}

/// Parses the plugin configuration: a feature configuration in TOML plus the optional
/// `device` key, and `output = "frames"` (the only output this extractor has).
pub fn parse_config(text: &str) -> Result<(FeatureConfig, DeviceOptions), Error> {
    let invalid = |m: String| Error::new(ErrorKind::InvalidConfig, m);
    let mut table: toml::Table =
        text.parse().map_err(|e| invalid(format!("configuration: {e}")))?;
    match table.remove("output") {
        None => {}
        Some(toml::Value::String(s)) if s == "frames" => {}
        Some(toml::Value::String(s)) if s == "utterance" => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "output = \"utterance\" needs Praat pitch analysis, which runs on the CPU; use the `cpu` extractor",
            ));
        }
        Some(other) => {
            return Err(invalid(format!("output = {other} is not \"frames\" or \"utterance\"")));
        }
    }
    let device = match table.remove("device") {
        None => 0,
        Some(toml::Value::Integer(d)) if d >= 0 => d as usize,
        Some(other) => return Err(invalid(format!("device = {other} is not a device ordinal"))),
    };
    let config: FeatureConfig = toml::Value::Table(table)
        .try_into()
        .map_err(|e| invalid(format!("feature configuration: {e}")))?;
    config.validate().map_err(|e| invalid(e.to_string()))?;
    if config.preprocess.resample_hz.is_none() {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "the CUDA extractor plans its filterbank for one rate: set preprocess.resample_hz",
        ));
    }
    Ok((config, DeviceOptions { device }))
}

impl CudaExtractor {
    /// An extractor for `config` on CUDA device `options.device`. Fails with
    /// [`ErrorKind::Unavailable`] (never a panic) when there is no driver, no such GPU or no
    /// NVRTC, and with [`ErrorKind::Unsupported`] for configurations the kernels do not cover.
    pub fn new(config: FeatureConfig, options: DeviceOptions) -> Result<Self, Error> {
        let rate = config.preprocess.resample_hz.ok_or_else(|| {
            Error::new(ErrorKind::Unsupported, "preprocess.resample_hz must be set")
        })?;
        // Plan first: a configuration the kernels cannot run is refused the same way on
        // every machine, GPU or not.
        let plan = Plan::new(&config, rate)?;
        let ctx = gpu::open(options.device)?;
        let gpu = Gpu::new(ctx, &plan)?;
        let device_name = gpu.device_name();
        let arch = gpu.arch();
        let spec = ExtractorSpec {
            sample_rate: rate,
            layout: OutputLayout::Frames,
            columns: config.frame_column_names(),
        };
        Ok(Self { config, plan, spec, gpu: Mutex::new(gpu), device_name, arch })
    }

    /// Parses `text` ([`parse_config`]) and creates the extractor.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let (config, options) = parse_config(text)?;
        Self::new(config, options)
    }

    /// The feature configuration.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// The GPU's name as the driver reports it.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// The NVRTC target the kernels were compiled for (`compute_90` on an H100).
    pub fn arch(&self) -> &'static str {
        self.arch
    }

    /// The output width (columns per frame).
    pub fn width(&self) -> usize {
        self.plan.width
    }

    /// Extracts a batch and returns the per-utterance column statistics as well.
    pub fn extract_with_stats(
        &self,
        batch: &[&[f32]],
        sample_rate: u32,
    ) -> Result<Extraction, PluginError> {
        check_batch(&self.spec, batch, sample_rate)?;
        let layout = Layout::new(&self.plan, batch)?;
        let out = self
            .gpu
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .run(&self.plan, &layout, batch)?;
        let width = self.plan.width;
        let mut frames = Vec::with_capacity(batch.len());
        let mut stats = Vec::with_capacity(batch.len());
        for i in 0..layout.len() {
            let (a, b) =
                (layout.frame_off[i] as usize * width, layout.frame_off[i + 1] as usize * width);
            frames.push(FeatureMatrix::new(layout.frames_of(i), width, out.frames[a..b].to_vec())?);
            let s = &out.stats[i * width * 2..(i + 1) * width * 2];
            stats.push(s.chunks_exact(2).map(|p| (p[0], p[1])).collect());
        }
        Ok(Extraction { frames, stats })
    }
}

impl FeatureExtractor for CudaExtractor {
    fn spec(&self) -> &ExtractorSpec {
        &self.spec
    }

    fn extract(
        &self,
        batch: &[&[f32]],
        sample_rate: u32,
    ) -> Result<Vec<FeatureMatrix>, PluginError> {
        Ok(self.extract_with_stats(batch, sample_rate)?.frames)
    }
}

impl ExtractorPlugin for CudaExtractor {
    const NAME: &'static str = "cuda";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn create(config_toml: &str) -> Result<Self, PluginError> {
        Ok(Self::from_toml(config_toml)?)
    }
}
