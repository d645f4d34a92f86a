//! The model repository: what is on disk, what is loaded, and each version's state.
//!
//! Layout, one folder per model and one per version (a positive integer):
//!
//! ```text
//! models/
//!   seed-cnn-lstm/
//!     1/
//!       model.onnx     the network
//!       features.toml  the FeatureConfig it was trained with (prosodia_dsp::FeatureConfig)
//!       model.toml     labels, backend, extractor, streaming defaults, evaluation
//! ```
//!
//! `model.toml` is read into [`ModelManifest`]. Unknown keys are ignored so the trainer can add
//! metadata without breaking older servers. The registry keeps every version found with its
//! state; loading reads the files and asks the named [`Backend`] for a runner: one given to
//! [`Repository::new`] (tests use in-process backends), else the backend plugin of that name
//! in the [`PluginHost`]. A model whose extractor is not the built-in `cpu` gets an
//! [`ExtractorHandle`] from the host. Loading and unloading change only this registry; the
//! health service is updated by the caller.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use prosodia_dsp::FeatureConfig;
use serde::{Deserialize, Serialize};

use prosodia_plugin_host::{ExtractorHandle, Origin, PluginHost};

use crate::error::{Error, Result};
use crate::plugins::{BUILTIN_EXTRACTOR, HostBackend};
use crate::runner::{Backend, Batch, ModelRunner};

/// Which features a model consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// The frame matrix of the feature configuration, `[1, frames, width]`.
    #[default]
    Frames,
    /// The 46 utterance features, `[1, 1, 46]`.
    Utterance,
}

impl InputKind {
    /// The name used in `model.toml` and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Frames => "frames",
            InputKind::Utterance => "utterance",
        }
    }
}

/// Streaming defaults of a model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamingDefaults {
    /// Window length in seconds.
    pub window_seconds: f64,
    /// Hop between windows in seconds.
    pub hop_seconds: f64,
}

impl Default for StreamingDefaults {
    fn default() -> Self {
        Self { window_seconds: 3.0, hop_seconds: 1.0 }
    }
}

/// Evaluation metrics of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ClassMetrics {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// Examples of the class.
    pub support: u64,
}

/// How the model scored on held-out data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Evaluation {
    /// Data set and split.
    pub dataset: String,
    /// Accuracy in [0, 1].
    pub accuracy: f64,
    /// Macro-averaged F1 in [0, 1].
    pub macro_f1: f64,
    /// Examples evaluated.
    pub examples: u64,
    /// Per-class metrics by label.
    pub per_class: BTreeMap<String, ClassMetrics>,
}

/// A declared tensor in `model.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TensorDecl {
    /// Name in the model file.
    pub name: String,
    /// Element type (`f32`).
    pub dtype: String,
    /// Dimensions, -1 for dynamic.
    pub shape: Vec<i64>,
}

/// The contents of `model.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    /// Labels in the model's output order.
    pub labels: Vec<String>,
    /// Backend name (`tract`, `ort`, or a plugin's name).
    #[serde(default = "default_backend")]
    pub backend: String,
    /// The feature-extractor plugin that feeds the model (`cpu`, the built-in one, by default).
    #[serde(default = "default_extractor")]
    pub extractor: String,
    /// What the model reads from the extractor.
    #[serde(default)]
    pub input: InputDecl,
    /// Free-form description.
    #[serde(default)]
    pub description: String,
    /// Streaming window and hop defaults.
    #[serde(default)]
    pub streaming: StreamingDefaults,
    /// Declared inputs (informational; the backend's own report wins when it has one).
    #[serde(default)]
    pub inputs: Vec<TensorDecl>,
    /// Declared outputs.
    #[serde(default)]
    pub outputs: Vec<TensorDecl>,
    /// Evaluation report.
    #[serde(default)]
    pub evaluation: Option<Evaluation>,
    /// Options passed to the backend plugin as its configuration (e.g. ONNX Runtime's
    /// `intra_threads`); empty for tract.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub backend_options: toml::Table,
}

fn default_backend() -> String {
    "tract".to_owned()
}

fn default_extractor() -> String {
    BUILTIN_EXTRACTOR.to_owned()
}

/// The `[input]` table of `model.toml`: which features the model reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InputDecl {
    /// Frame matrices or the 46 utterance features.
    pub kind: InputKind,
    /// Columns per frame the model was trained on; 0 leaves the check to the backend.
    pub width: usize,
    /// Fewest frames the model accepts; the trainer's graphs pad shorter inputs themselves.
    pub min_frames: usize,
}

impl Default for InputDecl {
    fn default() -> Self {
        Self { kind: InputKind::Frames, width: 0, min_frames: 1 }
    }
}

impl ModelManifest {
    /// `[backend_options]` as the TOML text a backend plugin is configured with.
    pub fn backend_options_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(&self.backend_options)
    }

    /// Parses and checks `model.toml` text.
    pub fn from_toml(text: &str) -> Result<Self> {
        let mut m: Self =
            toml::from_str(text).map_err(|e| Error::Repository(format!("model.toml: {e}")))?;
        // Manifests written before extractor plugins named the input kind in `extractor`.
        for (legacy, kind) in [("frames", InputKind::Frames), ("utterance", InputKind::Utterance)] {
            if m.extractor == legacy {
                m.extractor = default_extractor();
                m.input.kind = kind;
            }
        }
        if m.labels.len() < 2 {
            return Err(Error::Repository(format!(
                "model.toml: labels has {} entries; a classifier needs at least 2",
                m.labels.len()
            )));
        }
        let s = m.streaming;
        if !(s.window_seconds > 0.0 && s.hop_seconds > 0.0 && s.hop_seconds <= s.window_seconds) {
            return Err(Error::Repository(format!(
                "model.toml: streaming window {} s / hop {} s must be positive with hop ≤ window",
                s.window_seconds, s.hop_seconds
            )));
        }
        Ok(m)
    }
}

/// A feature configuration with the key the worker threads cache extractors under.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureProfile {
    /// The configuration.
    pub config: FeatureConfig,
    /// Its normalised TOML: equal configurations share one cached extractor per thread.
    pub key: String,
}

impl FeatureProfile {
    /// Wraps a configuration after validating it.
    pub fn new(config: FeatureConfig) -> Result<Self> {
        config.validate()?;
        let key = config.to_toml()?;
        Ok(Self { config, key })
    }
}

/// Load state of one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// On disk, not loaded.
    Unloaded,
    /// Being loaded.
    Loading,
    /// Serving.
    Ready,
    /// Loading failed.
    Failed,
}

/// A loaded model version, everything a request needs.
#[derive(Clone)]
pub struct LoadedModel {
    /// Model name.
    pub name: String,
    /// Version.
    pub version: u32,
    /// `model.toml`.
    pub manifest: Arc<ModelManifest>,
    /// `features.toml`.
    pub features: Arc<FeatureProfile>,
    /// The runner.
    pub runner: Arc<dyn ModelRunner>,
    /// The extractor plugin feeding the model; `None` for the built-in CPU extractor, which
    /// requests call directly.
    pub extractor: Option<Arc<ExtractorHandle>>,
    /// The dynamic batcher of this version, started by its first batched request.
    pub batcher: Arc<std::sync::OnceLock<crate::batch::Batcher>>,
}

impl LoadedModel {
    /// Brings the model onto the current version of its plugins and runs one inference on a
    /// silent input, so a plugin swap is paid for (and checked) here, not by a request.
    pub fn warm(&self) -> Result<()> {
        self.runner.warm()?;
        let width = match &self.extractor {
            Some(ex) => ex.spec().map_err(|e| crate::plugins::runner_error(&e))?.width(),
            None => model_width(&self.manifest, &self.features),
        };
        let frames = self.manifest.input.min_frames.max(1);
        let data = vec![0.0; frames * width];
        let lengths = [frames];
        let batch = Batch { data: &data, n: 1, t: frames, f: width, lengths: &lengths };
        let probs = self.runner.run(&batch)?;
        crate::runner::normalize_probabilities(&probs, self.manifest.labels.len())?;
        Ok(())
    }
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("name", &self.name)
            .field("version", &self.version)
            .finish()
    }
}

/// One version's entry in the registry.
#[derive(Debug, Clone)]
pub struct VersionEntry {
    /// The version folder.
    pub dir: PathBuf,
    /// Current state.
    pub state: State,
    /// Why loading failed, or other detail.
    pub message: String,
    /// `model.toml`, once read.
    pub manifest: Option<Arc<ModelManifest>>,
    /// `features.toml`, once read.
    pub features: Option<Arc<FeatureProfile>>,
    /// The loaded model, when ready.
    pub loaded: Option<LoadedModel>,
}

type Versions = BTreeMap<u32, VersionEntry>;

/// Every model's versions, newest first, as [`Repository::snapshot`] returns them.
pub type Snapshot = Vec<(String, Vec<(u32, VersionEntry)>)>;

/// The registry of models and versions; cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct Repository {
    root: Option<PathBuf>,
    backends: Arc<BTreeMap<String, Arc<dyn Backend>>>,
    plugins: PluginHost,
    models: Arc<RwLock<BTreeMap<String, Versions>>>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("root", &self.root)
            .field("backends", &self.backends.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::Internal("model registry lock poisoned".to_owned())
}

impl Repository {
    /// A registry over `root` (none: no models) whose models run on `backends` or, for names
    /// not among them, on the backend plugins of `plugins`.
    pub fn new(
        root: Option<PathBuf>,
        backends: Vec<Arc<dyn Backend>>,
        plugins: PluginHost,
    ) -> Self {
        let backends = backends.into_iter().map(|b| (b.name().to_owned(), b)).collect();
        Self {
            root,
            backends: Arc::new(backends),
            plugins,
            models: Arc::new(RwLock::new(BTreeMap::new())),
        }
    }

    /// The in-process backends given to [`Repository::new`] (not the plugins).
    pub fn backends(&self) -> Vec<Arc<dyn Backend>> {
        self.backends.values().cloned().collect()
    }

    /// Every loaded model version.
    pub fn loaded_models(&self) -> Vec<LoadedModel> {
        self.models
            .read()
            .map(|m| m.values().flat_map(|v| v.values().filter_map(|e| e.loaded.clone())).collect())
            .unwrap_or_default()
    }

    fn backend(&self, name: &str) -> Option<Arc<dyn Backend>> {
        self.backends.get(name).cloned().or_else(|| {
            HostBackend::find(&self.plugins, name).map(|b| Arc::new(b) as Arc<dyn Backend>)
        })
    }

    /// The extractor plugin for `manifest` (`None`: the built-in CPU extractor, called
    /// directly). The plugin is configured with `features.toml`, plus `output = "utterance"`
    /// for models that read utterance features.
    fn extractor(
        &self,
        manifest: &ModelManifest,
        features: &FeatureProfile,
        dir: &Path,
    ) -> Result<Option<Arc<ExtractorHandle>>> {
        let builtin = manifest.extractor == BUILTIN_EXTRACTOR
            && self.plugins.info(BUILTIN_EXTRACTOR).is_ok_and(|i| i.origin == Origin::Builtin);
        if builtin {
            return Ok(None);
        }
        let mut config = String::new();
        if manifest.input.kind == InputKind::Utterance {
            config.push_str("output = \"utterance\"\n");
        }
        config.push_str(&features.key);
        let handle = self.plugins.extractor(&manifest.extractor, &config).map_err(|e| {
            Error::Repository(format!(
                "extractor {:?} named in {}: {e}",
                manifest.extractor,
                dir.join("model.toml").display()
            ))
        })?;
        Ok(Some(Arc::new(handle)))
    }

    /// Scans the root for `<name>/<version>/` folders, adding new ones as unloaded. Versions
    /// already known keep their state.
    pub fn scan(&self) -> Result<()> {
        let Some(root) = &self.root else { return Ok(()) };
        let found =
            scan_dir(root).map_err(|e| Error::Repository(format!("model repository: {e}")))?;
        let mut models = self.models.write().map_err(poisoned)?;
        for (name, versions) in found {
            let entry = models.entry(name).or_default();
            for (version, dir) in versions {
                entry.entry(version).or_insert_with(|| VersionEntry {
                    dir,
                    state: State::Unloaded,
                    message: String::new(),
                    manifest: None,
                    features: None,
                    loaded: None,
                });
            }
        }
        Ok(())
    }

    /// Model names, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        Ok(self.models.read().map_err(poisoned)?.keys().cloned().collect())
    }

    /// A snapshot of every model's versions, sorted by name, versions newest first.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let models = self.models.read().map_err(poisoned)?;
        Ok(models
            .iter()
            .map(|(n, v)| (n.clone(), v.iter().rev().map(|(k, e)| (*k, e.clone())).collect()))
            .collect())
    }

    /// Resolves `version` (0: newest on disk) of `name` to a concrete version and its entry.
    pub fn entry(&self, name: &str, version: u32) -> Result<(u32, VersionEntry)> {
        let models = self.models.read().map_err(poisoned)?;
        let versions = models.get(name).ok_or_else(|| not_found(name, &models))?;
        let found = if version == 0 {
            versions.iter().next_back()
        } else {
            versions.get_key_value(&version)
        };
        match found {
            Some((v, e)) => Ok((*v, e.clone())),
            None => Err(Error::NotFound(format!(
                "model {name:?} has no version {version}; versions: {}",
                versions.keys().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// The loaded model for a request: version 0 picks the newest *ready* version.
    pub fn ready(&self, name: &str, version: u32) -> Result<LoadedModel> {
        let models = self.models.read().map_err(poisoned)?;
        let versions = models.get(name).ok_or_else(|| not_found(name, &models))?;
        let pick = if version == 0 {
            versions.values().rev().find_map(|e| e.loaded.clone())
        } else {
            versions
                .get(&version)
                .ok_or_else(|| Error::NotFound(format!("model {name:?} has no version {version}")))?
                .loaded
                .clone()
        };
        pick.ok_or_else(|| {
            let states: Vec<String> = versions
                .iter()
                .map(|(v, e)| {
                    let detail = if e.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", e.message)
                    };
                    format!("version {v} {:?}{detail}", e.state)
                })
                .collect();
            Error::ModelUnavailable(format!(
                "model {name:?} is not loaded ({}); call Models.LoadModel",
                states.join("; ")
            ))
        })
    }

    fn set(&self, name: &str, version: u32, f: impl FnOnce(&mut VersionEntry)) -> Result<()> {
        let mut models = self.models.write().map_err(poisoned)?;
        if let Some(e) = models.get_mut(name).and_then(|v| v.get_mut(&version)) {
            f(e);
        }
        Ok(())
    }

    /// Loads one version (blocking: reads files and builds the runner). The state goes to
    /// `Loading`, then `Ready` or `Failed` with the reason; a failed load returns the error.
    pub fn load(&self, name: &str, version: u32) -> Result<LoadedModel> {
        self.scan()?;
        let (version, entry) = self.entry(name, version)?;
        self.set(name, version, |e| {
            e.state = State::Loading;
            e.message.clear();
        })?;
        match self.load_dir(name, version, &entry.dir) {
            Ok(loaded) => {
                let l = loaded.clone();
                self.set(name, version, move |e| {
                    e.state = State::Ready;
                    e.manifest = Some(l.manifest.clone());
                    e.features = Some(l.features.clone());
                    e.loaded = Some(l);
                })?;
                tracing::info!(model = name, version, "model loaded");
                Ok(loaded)
            }
            Err(err) => {
                let message = err.to_string();
                tracing::warn!(model = name, version, error = %message, "model failed to load");
                self.set(name, version, |e| {
                    e.state = State::Failed;
                    e.message = message;
                    e.loaded = None;
                })?;
                Err(err)
            }
        }
    }

    /// Reads the manifest and features of a version without loading it (for GetModel).
    pub fn describe(&self, name: &str, version: u32) -> Result<(u32, VersionEntry)> {
        let (version, mut entry) = self.entry(name, version)?;
        if entry.manifest.is_none() {
            entry.manifest = read_manifest(&entry.dir).ok().map(Arc::new);
        }
        if entry.features.is_none() {
            entry.features = read_features(&entry.dir).ok().map(Arc::new);
        }
        Ok((version, entry))
    }

    fn load_dir(&self, name: &str, version: u32, dir: &Path) -> Result<LoadedModel> {
        let manifest = read_manifest(dir)?;
        let features = read_features(dir)?;
        let backend = self.backend(&manifest.backend).ok_or_else(|| {
            let mut available: Vec<String> = self.backends.keys().cloned().collect();
            available.extend(
                self.plugins
                    .plugins()
                    .iter()
                    .filter(|p| p.kind == prosodia_plugin_api::PluginKind::ModelBackend)
                    .map(|p| p.name.clone()),
            );
            Error::Repository(format!(
                "backend {:?} named in {} is not available in this server (available: {})",
                manifest.backend,
                dir.join("model.toml").display(),
                if available.is_empty() { "none".to_owned() } else { available.join(", ") }
            ))
        })?;
        let extractor = self.extractor(&manifest, &features, dir)?;
        let runner = backend.load(&dir.join("model.onnx"), &manifest)?;
        let produced = match &extractor {
            Some(ex) => ex
                .spec()
                .map_err(|e| Error::Repository(format!("extractor {:?}: {e}", manifest.extractor)))?
                .width(),
            None => model_width(&manifest, &features),
        };
        check_width(runner.as_ref(), &manifest, &features, produced)?;
        Ok(LoadedModel {
            name: name.to_owned(),
            version,
            manifest: Arc::new(manifest),
            features: Arc::new(features),
            runner: Arc::from(runner),
            extractor,
            batcher: Arc::default(),
        })
    }

    /// Unloads `version` of `name` (0: every loaded version), returning the versions unloaded.
    pub fn unload(&self, name: &str, version: u32) -> Result<Vec<u32>> {
        let mut models = self.models.write().map_err(poisoned)?;
        let versions = models
            .get_mut(name)
            .ok_or_else(|| Error::NotFound(format!("no model named {name:?}")))?;
        if version != 0 && !versions.contains_key(&version) {
            return Err(Error::NotFound(format!("model {name:?} has no version {version}")));
        }
        let mut unloaded = Vec::new();
        for (v, e) in versions.iter_mut() {
            if (version == 0 || *v == version) && e.loaded.take().is_some() {
                e.state = State::Unloaded;
                e.message.clear();
                unloaded.push(*v);
            }
        }
        Ok(unloaded)
    }

    /// Whether any version of `name` is ready.
    pub fn is_serving(&self, name: &str) -> bool {
        self.models
            .read()
            .map(|m| m.get(name).is_some_and(|v| v.values().any(|e| e.loaded.is_some())))
            .unwrap_or(false)
    }
}

/// The columns the built-in extractor gives `manifest`'s model per frame.
fn model_width(manifest: &ModelManifest, features: &FeatureProfile) -> usize {
    match manifest.input.kind {
        InputKind::Frames => features.config.frame_width(),
        InputKind::Utterance => prosodia_dsp::utterance::COUNT,
    }
}

/// Refuses a model whose declared feature width (`[input] width` in `model.toml`, or the last
/// dimension of the backend's 3-D input) differs from the `produced` width of its extractor,
/// so the mismatch surfaces at load, not per request.
fn check_width(
    runner: &dyn ModelRunner,
    manifest: &ModelManifest,
    features: &FeatureProfile,
    produced: usize,
) -> Result<()> {
    let from_backend = runner
        .inputs()
        .iter()
        .find(|t| t.shape.len() == 3)
        .and_then(|t| t.shape.last().copied())
        .and_then(|w| usize::try_from(w).ok())
        .filter(|&w| w > 0);
    let declared = [
        ("model.toml's [input] width", Some(manifest.input.width).filter(|&w| w > 0)),
        ("the model's input", from_backend),
    ];
    for (source, width) in declared {
        if let Some(w) = width.filter(|&w| w != produced) {
            return Err(Error::Repository(format!(
                "{source} has {w} features per frame but extractor {:?} with feature configuration {:?} \
                 produces {produced} for {} input",
                manifest.extractor,
                features.config.name,
                manifest.input.kind.as_str()
            )));
        }
    }
    Ok(())
}

fn not_found(name: &str, models: &BTreeMap<String, Versions>) -> Error {
    let known: Vec<&str> = models.keys().map(String::as_str).collect();
    Error::NotFound(format!(
        "no model named {name:?}; available: {}",
        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
    ))
}

fn read_manifest(dir: &Path) -> Result<ModelManifest> {
    let path = dir.join("model.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Repository(format!("reading {}: {e}", path.display())))?;
    ModelManifest::from_toml(&text)
        .map_err(|e| Error::Repository(format!("{}: {e}", dir.display())))
}

fn read_features(dir: &Path) -> Result<FeatureProfile> {
    let path = dir.join("features.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Repository(format!("reading {}: {e}", path.display())))?;
    let config = FeatureConfig::from_toml(&text)
        .map_err(|e| Error::Repository(format!("{}: {e}", path.display())))?;
    FeatureProfile::new(config)
}

/// `<name>/<version>/` folders under `root`; other files and non-numeric folders are skipped.
fn scan_dir(root: &Path) -> Result<BTreeMap<String, BTreeMap<u32, PathBuf>>> {
    let read = |p: &Path| {
        std::fs::read_dir(p).map_err(|e| Error::Repository(format!("reading {}: {e}", p.display())))
    };
    let mut out = BTreeMap::new();
    for model in read(root)?.flatten() {
        let path = model.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if !path.is_dir() || name.starts_with('.') {
            continue;
        }
        let mut versions = BTreeMap::new();
        for v in read(&path)?.flatten() {
            let vp = v.path();
            let parsed =
                vp.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok());
            if let Some(version) = parsed.filter(|v| *v > 0)
                && vp.is_dir()
            {
                versions.insert(version, vp);
            }
        }
        if !versions.is_empty() {
            out.insert(name, versions);
        }
    }
    Ok(out)
}
