//! Plugins in the server: the [`PluginHost`] that holds every feature extractor and model
//! backend, the adapter that lets the model repository run a backend plugin, and the watcher
//! that reloads libraries when their files change.
//!
//! The built-in CPU extractor (`cpu`) and tract backend (`tract`) register with the host
//! through the same traits as a library, so the server runs with no plugin directory; a
//! library in `plugin_dir` declaring the same name replaces the built-in one. Models name
//! their backend and extractor in `model.toml`; [`HostBackend`] turns the host's
//! [`BackendHandle`] into a [`ModelRunner`], and because handles follow hot swaps, a reload
//! switches every model on that backend without reloading the model entry. When the `cpu`
//! slot is still the built-in one, requests keep the server's direct DSP path (one cached
//! extractor per worker thread: the same code, without the copy through the ABI); any other
//! extractor, or a dynamic `cpu`, goes through the host.
//!
//! The watcher polls instead of using inotify: it checks a handful of files every
//! `plugin_watch_seconds`, works on every filesystem (network mounts, container volumes) and
//! needs no extra thread per directory. A file is reloaded once its size and modification
//! time have stayed the same for one whole interval, so a library still being copied in is
//! never opened half-written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prosodia_plugin_api::PluginKind;
use prosodia_plugin_host::{
    BackendHandle, Builtin, HostError, HostErrorKind, Origin, PluginHost, PluginInfo,
};
use prosodia_proto::pb;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::repository::ModelManifest;
use crate::runner::{Backend, Batch, ModelRunner, RunnerError, RunnerErrorKind, TensorInfo};
use crate::server::AppState;

/// The name of the built-in CPU feature extractor.
pub const BUILTIN_EXTRACTOR: &str = "cpu";

/// The host with the built-in plugins and, when configured, the libraries in `plugin_dir`.
///
/// A library that fails to load is skipped and reported by [`plugin_list`]; a plugin
/// directory that cannot be read (missing, world-writable) stops the server with the reason.
pub fn build_host(config: &Config) -> Result<PluginHost> {
    let mut builder =
        PluginHost::builder().builtin(Builtin::extractor::<prosodia_features_cpu::CpuExtractor>());
    #[cfg(feature = "tract")]
    {
        builder = builder.builtin(Builtin::backend::<prosodia_backend_tract::TractPlugin>());
    }
    if let Some(dir) = &config.plugin_dir {
        builder = builder.plugin_dir(dir);
    }
    let host = builder.build().map_err(|e| Error::Config(format!("plugin_dir: {e}")))?;
    for (path, e) in host.load_errors() {
        tracing::warn!(path = %path.display(), error = %e, "plugin library not loaded");
    }
    Ok(host)
}

/// Maps a host failure onto the server's runner errors: bad input stays the client's fault,
/// everything else (a panic, NaN, a wrong shape) is the plugin's.
pub fn runner_error(e: &HostError) -> RunnerError {
    let kind = match (e.kind(), e.plugin_code()) {
        (HostErrorKind::Plugin, Some(prosodia_plugin_api::ErrorCode::InvalidInput)) => {
            RunnerErrorKind::InvalidInput
        }
        (HostErrorKind::NotFound | HostErrorKind::WrongKind, _) => RunnerErrorKind::Unsupported,
        _ => RunnerErrorKind::Internal,
    };
    RunnerError::new(kind, e.to_string())
}

/// A backend plugin of the host, as the repository's [`Backend`].
#[derive(Clone)]
pub struct HostBackend {
    host: PluginHost,
    info: Arc<PluginInfo>,
}

impl HostBackend {
    /// The backend plugin `name`, if the host has one.
    pub fn find(host: &PluginHost, name: &str) -> Option<Self> {
        let info = host.info(name).ok()?;
        (info.kind == PluginKind::ModelBackend).then(|| Self { host: host.clone(), info })
    }
}

impl Backend for HostBackend {
    fn name(&self) -> &str {
        &self.info.name
    }

    fn version(&self) -> &str {
        &self.info.version
    }

    fn load(
        &self,
        model_path: &Path,
        manifest: &ModelManifest,
    ) -> Result<Box<dyn ModelRunner>, RunnerError> {
        let options = manifest.backend_options_toml().map_err(|e| {
            RunnerError::new(RunnerErrorKind::Unsupported, format!("[backend_options]: {e}"))
        })?;
        let handle = self
            .host
            .backend(&self.info.name, model_path, &options)
            .map_err(|e| runner_error(&e))?;
        Ok(Box::new(HostRunner { handle }))
    }
}

/// A model loaded by a backend plugin; follows hot swaps of the plugin.
struct HostRunner {
    handle: BackendHandle,
}

fn tensor_infos(specs: &[prosodia_plugin_api::TensorSpec]) -> Vec<TensorInfo> {
    specs
        .iter()
        .map(|t| TensorInfo {
            name: t.name.clone(),
            dtype: format!("{:?}", t.dtype).to_lowercase(),
            shape: t.shape.clone(),
        })
        .collect()
}

impl ModelRunner for HostRunner {
    fn inputs(&self) -> Vec<TensorInfo> {
        self.handle.spec().map(|s| tensor_infos(&s.inputs)).unwrap_or_default()
    }

    fn outputs(&self) -> Vec<TensorInfo> {
        self.handle.spec().map(|s| tensor_infos(&s.outputs)).unwrap_or_default()
    }

    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, RunnerError> {
        let batch = prosodia_plugin_api::Batch {
            data: batch.data,
            n: batch.n,
            t: batch.t,
            f: batch.f,
            lengths: batch.lengths,
        };
        self.handle.run(&batch).map_err(|e| runner_error(&e))
    }

    fn warm(&self) -> Result<(), RunnerError> {
        self.handle.spec().map(drop).map_err(|e| runner_error(&e))
    }
}

/// Every plugin the host knows, built-in ones first, then by name, followed by the libraries
/// in the plugin directory that could not be loaded (not ready, with the reason).
pub fn plugin_list(host: &PluginHost) -> Vec<pb::PluginInfo> {
    let mut out: Vec<pb::PluginInfo> = host.plugins().iter().map(|p| plugin_info(p)).collect();
    out.sort_by_key(|p| (!p.builtin, p.name.clone()));
    let loaded: Vec<String> = out.iter().map(|p| p.path.clone()).collect();
    out.extend(
        host.load_errors()
            .into_iter()
            .filter(|(path, _)| !loaded.contains(&path.display().to_string()))
            .map(|(path, e)| pb::PluginInfo {
                name: path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                kind: pb::PluginKind::Unspecified.into(),
                version: String::new(),
                builtin: false,
                path: path.display().to_string(),
                ready: false,
                message: e.to_string(),
            }),
    );
    out
}

/// One registered plugin as the API reports it.
pub fn plugin_info(p: &PluginInfo) -> pb::PluginInfo {
    let (builtin, path) = match &p.origin {
        Origin::Library(path) => (false, path.display().to_string()),
        _ => (true, String::new()),
    };
    let kind = match p.kind {
        PluginKind::FeatureExtractor => pb::PluginKind::FeatureExtractor,
        PluginKind::ModelBackend => pb::PluginKind::ModelBackend,
        _ => pb::PluginKind::Unspecified,
    };
    pb::PluginInfo {
        name: p.name.clone(),
        kind: kind.into(),
        version: p.version.clone(),
        builtin,
        path,
        ready: true,
        message: String::new(),
    }
}

/// Hot-swaps plugin `name` from its file and brings every loaded model that uses it onto the
/// new version before returning (blocking: it loads libraries and models).
///
/// The host publishes the new library only after it loaded and passed its smoke call, so a
/// broken file leaves the old version serving and the error says why. Models are then warmed
/// on the new version here rather than on their next request, so no client pays for the
/// model load and a model the new version cannot load is reported to the caller.
pub fn reload_plugin(state: &AppState, name: &str) -> Result<pb::PluginInfo> {
    if state.repo.backends().iter().any(|b| b.name() == name) {
        return Err(Error::Precondition(format!(
            "backend {name:?} is compiled into this server and cannot be reloaded"
        )));
    }
    let info = state.plugins.reload(name).map_err(|e| match e.kind() {
        HostErrorKind::NotFound => Error::NotFound(e.to_string()),
        HostErrorKind::NotReloadable => Error::Precondition(e.to_string()),
        _ => Error::Precondition(format!("reload failed: {e}")),
    })?;
    let failures: Vec<String> = state
        .repo
        .loaded_models()
        .into_iter()
        .filter(|m| m.manifest.backend == name || m.manifest.extractor == name)
        .filter_map(|m| m.warm().err().map(|e| format!("{} version {}: {e}", m.name, m.version)))
        .collect();
    if !failures.is_empty() {
        return Err(Error::Precondition(format!(
            "plugin {name:?} was reloaded as version {}, but models using it fail on it: {}",
            info.version,
            failures.join("; ")
        )));
    }
    Ok(plugin_info(&info))
}

/// What the watcher last saw of a library file.
type Stamp = (u64, Option<SystemTime>);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()))
}

/// Polls the libraries of dynamic plugins (and the plugin directory for new ones) every
/// `interval` and reloads a library once it has changed and then stayed unchanged for one
/// interval. Runs until the server's runtime stops.
pub fn spawn_watcher(state: Arc<AppState>, dir: Option<PathBuf>, interval: Duration) {
    tokio::spawn(async move {
        // What is there at start-up was loaded (or refused) by the host already.
        let mut seen: HashMap<PathBuf, Stamp> = watched_files(&state, dir.as_deref())
            .into_iter()
            .filter_map(|(path, _)| stamp(&path).map(|s| (path, s)))
            .collect();
        let mut pending: HashMap<PathBuf, Stamp> = HashMap::new();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            for (path, name) in watched_files(&state, dir.as_deref()) {
                let Some(now) = stamp(&path) else { continue };
                if seen.get(&path) == Some(&now) && !pending.contains_key(&path) {
                    continue;
                }
                // New or changed: act once it has stayed the same for a whole interval.
                if pending.get(&path) != Some(&now) {
                    seen.insert(path.clone(), now);
                    pending.insert(path, now);
                    continue;
                }
                pending.remove(&path);
                let st = Arc::clone(&state);
                let p = path.clone();
                let result = tokio::task::spawn_blocking(move || match name {
                    Some(name) => reload_plugin(&st, &name).map(|i| i.version),
                    None => st
                        .plugins
                        .load_library(&p)
                        .map(|i| i.version.clone())
                        .map_err(|e| Error::Precondition(e.to_string())),
                })
                .await;
                match result {
                    Ok(Ok(version)) => {
                        tracing::info!(path = %path.display(), %version, "plugin file changed: loaded")
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(path = %path.display(), error = %e, "plugin file changed: not loaded")
                    }
                    Err(e) => tracing::error!(error = %e, "plugin watcher task failed"),
                }
            }
        }
    });
}

/// The files the watcher checks: each dynamic plugin's library (with its name) and, in the
/// plugin directory, libraries no plugin was loaded from (no name).
fn watched_files(state: &AppState, dir: Option<&Path>) -> Vec<(PathBuf, Option<String>)> {
    let mut files: Vec<(PathBuf, Option<String>)> = state
        .plugins
        .plugins()
        .iter()
        .filter_map(|p| match &p.origin {
            Origin::Library(path) => Some((path.clone(), Some(p.name.clone()))),
            _ => None,
        })
        .collect();
    if let Some(dir) = dir {
        let extension = std::env::consts::DLL_EXTENSION;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                if path.extension().is_some_and(|x| x == extension)
                    && !files.iter().any(|(p, _)| *p == path)
                {
                    files.push((path, None));
                }
            }
        }
    }
    files
}
