//! The model directory: everything the server needs to serve a model, and the trainer needs
//! to evaluate it again.
//!
//! ```text
//! models/<name>/<version>/
//!   model.toml     labels in output order, backend, extractor, input shape, standardisation
//!   features.toml  the prosodia-dsp FeatureConfig the model was trained on
//!   model.bpk      burn weights (burnpack), for `prosodia-train eval` and fine-tuning
//!   model.onnx     the exported graph (see `export`)
//!   report.json    test-set evaluation (top-level `accuracy`, `macro_f1`)
//!   report.md      the same for people
//! ```

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::Device;
use burn::store::ModuleRecord;
use prosodia_dsp::FeatureConfig;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::labels::{Emotion, LabelMap};
use crate::model::Arch;
use crate::standardize::Standardizer;
use crate::train::{EpochLog, Net, TrainConfig};

/// Version of the `model.toml` layout.
pub const MODEL_FORMAT: u32 = 1;

/// File names inside a model directory.
pub mod files {
    /// Model metadata.
    pub const MODEL_TOML: &str = "model.toml";
    /// Feature configuration.
    pub const FEATURES_TOML: &str = "features.toml";
    /// burn weights.
    pub const WEIGHTS: &str = "model.bpk";
    /// ONNX graph.
    pub const ONNX: &str = "model.onnx";
    /// Evaluation report (JSON).
    pub const REPORT_JSON: &str = "report.json";
    /// Evaluation report (Markdown).
    pub const REPORT_MD: &str = "report.md";
}

/// What the model reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// `frames` (frame matrices, `[N, T, F]` plus lengths) or `utterance` (the 46 features).
    pub kind: String,
    /// Columns per frame (`F`).
    pub width: usize,
    /// Fewest frames the graph accepts; shorter inputs must be zero-padded to it.
    pub min_frames: usize,
}

/// How the model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Split description (`random`, `speaker`, `speaker fold 2/5`).
    pub split: String,
    /// Label mapping used.
    pub label_map: LabelMap,
    /// Clips in train / validation / test.
    pub sizes: [usize; 3],
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Mean seconds per training batch.
    pub seconds_per_batch: f64,
    /// Per-epoch history.
    pub history: Vec<EpochLog>,
}

/// `model.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Layout version ([`MODEL_FORMAT`]).
    pub format: u32,
    /// Model name (`models/<name>/<version>`).
    pub name: String,
    /// Model version.
    pub version: String,
    /// Architecture.
    pub arch: Arch,
    /// Class names in output order.
    pub labels: Vec<String>,
    /// Inference backend the ONNX graph is meant for.
    pub backend: String,
    /// Feature extractor plugin to run before it.
    pub extractor: String,
    /// One line for people (shown by the server's `GetModel`).
    #[serde(default)]
    pub description: String,
    /// The ONNX file, if exported.
    pub onnx: Option<String>,
    /// The burn weights file.
    pub weights: String,
    /// The feature configuration file.
    pub features: String,
    /// Input description.
    pub input: InputSpec,
    /// Standardisation (already folded into the ONNX graph; needed to run the burn weights).
    pub standardization: Standardizer,
    /// Default streaming window and hop for the server.
    #[serde(default)]
    pub streaming: Streaming,
    /// The held-out evaluation, in the shape the server reports.
    #[serde(default)]
    pub evaluation: Option<Evaluation>,
    /// Training record.
    pub training: TrainingInfo,
}

/// The `[streaming]` table: the server's default window and hop for this model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Streaming {
    /// Window length in seconds.
    pub window_seconds: f64,
    /// Hop between windows in seconds.
    pub hop_seconds: f64,
}

impl Default for Streaming {
    /// Three-second windows every second: about the length of one corpus sentence.
    fn default() -> Self {
        Self { window_seconds: 3.0, hop_seconds: 1.0 }
    }
}

/// Per-class metrics in the `[evaluation.per_class.<label>]` tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalClass {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// Clips of the class.
    pub support: usize,
}

/// The `[evaluation]` table: the headline of `report.json`, read by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// What was scored (corpora, split, part).
    pub dataset: String,
    /// Accuracy.
    pub accuracy: f64,
    /// Macro F1.
    pub macro_f1: f64,
    /// Clips scored.
    pub examples: usize,
    /// Per-class metrics by label.
    pub per_class: std::collections::BTreeMap<String, EvalClass>,
}

impl Evaluation {
    /// The headline of `report`, scored on `dataset`.
    pub fn from_report(report: &crate::eval::Report, dataset: String) -> Self {
        Self {
            dataset,
            accuracy: report.accuracy,
            macro_f1: report.macro_f1,
            examples: report.n,
            per_class: report
                .per_class
                .iter()
                .map(|c| {
                    (
                        c.label.clone(),
                        EvalClass {
                            precision: c.precision,
                            recall: c.recall,
                            f1: c.f1,
                            support: c.support,
                        },
                    )
                })
                .collect(),
        }
    }
}

impl ModelMeta {
    /// Labels for the six classes in output order.
    pub fn default_labels() -> Vec<String> {
        Emotion::ALL.iter().map(|e| e.name().to_string()).collect()
    }
}

/// A trained model in memory.
#[derive(Debug)]
pub struct SavedModel {
    /// Metadata.
    pub meta: ModelMeta,
    /// Feature configuration.
    pub features: FeatureConfig,
    /// The network (inference mode, plain flex device).
    pub net: Net,
}

/// Writes `model.toml`, `features.toml` and the weights into `dir` (created if needed).
pub fn save(dir: &Path, meta: &ModelMeta, features: &FeatureConfig, net: &Net) -> Result<()> {
    std::fs::create_dir_all(dir).at(dir)?;
    let export = |e: String| Error::new(ErrorKind::Export, e);
    let toml = toml::to_string_pretty(meta).map_err(|e| export(format!("model.toml: {e}")))?;
    let header = "# Written by prosodia-train. Labels are in model output order.\n";
    write(&dir.join(files::MODEL_TOML), &format!("{header}{toml}"))?;
    let ft = features.to_toml().map_err(|e| export(e.to_string()))?;
    write(&dir.join(files::FEATURES_TOML), &ft)?;
    let weights = dir.join(&meta.weights);
    net.clone().save_file(&weights).map_err(|e| export(format!("{}: {e:?}", weights.display())))?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).at(path)
}

/// Reads a model directory written by [`save`].
pub fn load(dir: &Path) -> Result<SavedModel> {
    let bad = |m: String| Error::new(ErrorKind::Model, m);
    let meta_path = dir.join(files::MODEL_TOML);
    let text = std::fs::read_to_string(&meta_path).at(&meta_path)?;
    let meta: ModelMeta =
        toml::from_str(&text).map_err(|e| bad(format!("{}: {e}", meta_path.display())))?;
    if meta.format != MODEL_FORMAT {
        return Err(bad(format!(
            "{}: format {} (expected {MODEL_FORMAT})",
            meta_path.display(),
            meta.format
        )));
    }
    let features_path: PathBuf = dir.join(&meta.features);
    let ft = std::fs::read_to_string(&features_path).at(&features_path)?;
    let features = FeatureConfig::from_toml(&ft)
        .map_err(|e| bad(format!("{}: {e}", features_path.display())))?;
    let device = Device::flex();
    let weights = dir.join(&meta.weights);
    let record =
        ModuleRecord::load(&weights).map_err(|e| bad(format!("{}: {e:?}", weights.display())))?;
    let net = Net::new(meta.arch, meta.input.width, &device)
        .try_load_record(record)
        .map_err(|e| bad(format!("{}: {e:?}", weights.display())))?
        .valid();
    Ok(SavedModel { meta, features, net })
}
