//! The `prosodia.v1.Models` service: the repository's contents, loading and unloading, and
//! the plugin list.
//!
//! Loading reads files and builds a runner, so it runs on the blocking pool; every change of
//! a model's state is followed by an update of its health status. LoadModel, UnloadModel and
//! ReloadPlugin first pass [`crate::auth::AdminAccess::check`]; the other calls are open.

use std::sync::Arc;

use prosodia_proto::pb;
use tonic::{Request, Response, Status};

use crate::error::{Error, Result};
use crate::repository::{State, VersionEntry};
use crate::runner::TensorInfo;
use crate::server::AppState;

/// The Models service.
#[derive(Debug, Clone)]
pub struct ModelsService {
    state: Arc<AppState>,
}

impl ModelsService {
    /// A service over the shared server state.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    /// The in-process backends (tests register them), then every plugin of the host.
    fn plugins(&self) -> Vec<pb::PluginInfo> {
        let mut out: Vec<pb::PluginInfo> = self
            .state
            .repo
            .backends()
            .iter()
            .map(|b| pb::PluginInfo {
                name: b.name().to_owned(),
                kind: pb::PluginKind::ModelBackend.into(),
                version: b.version().to_owned(),
                builtin: true,
                path: String::new(),
                ready: true,
                message: String::new(),
            })
            .collect();
        out.extend(crate::plugins::plugin_list(&self.state.plugins));
        out
    }
}

fn state(s: State) -> pb::ModelState {
    match s {
        State::Unloaded => pb::ModelState::Unloaded,
        State::Loading => pb::ModelState::Loading,
        State::Ready => pb::ModelState::Ready,
        State::Failed => pb::ModelState::Failed,
    }
}

fn status(version: u32, e: &VersionEntry) -> pb::ModelVersionStatus {
    pb::ModelVersionStatus { version, state: state(e.state).into(), message: e.message.clone() }
}

fn tensors(t: Vec<TensorInfo>) -> Vec<pb::TensorSpec> {
    t.into_iter().map(|t| pb::TensorSpec { name: t.name, dtype: t.dtype, shape: t.shape }).collect()
}

/// Everything known about a version, from whatever has been read so far.
fn info(name: &str, version: u32, e: &VersionEntry) -> pb::ModelInfo {
    let mut out = pb::ModelInfo {
        name: name.to_owned(),
        version,
        status: Some(status(version, e)),
        ..pb::ModelInfo::default()
    };
    if let Some(m) = &e.manifest {
        out.labels.clone_from(&m.labels);
        out.backend.clone_from(&m.backend);
        out.extractor.clone_from(&m.extractor);
        out.input_kind = m.input.kind.as_str().to_owned();
        out.description.clone_from(&m.description);
        out.stream_window_seconds = m.streaming.window_seconds;
        out.stream_hop_seconds = m.streaming.hop_seconds;
        let decl = |d: &[crate::repository::TensorDecl]| {
            d.iter()
                .map(|t| pb::TensorSpec {
                    name: t.name.clone(),
                    dtype: t.dtype.clone(),
                    shape: t.shape.clone(),
                })
                .collect()
        };
        out.inputs = decl(&m.inputs);
        out.outputs = decl(&m.outputs);
        out.evaluation = m.evaluation.as_ref().map(|ev| pb::EvaluationReport {
            dataset: ev.dataset.clone(),
            accuracy: ev.accuracy,
            macro_f1: ev.macro_f1,
            examples: ev.examples,
            per_class: m
                .labels
                .iter()
                .filter_map(|l| ev.per_class.get(l).map(|c| (l, c)))
                .map(|(l, c)| pb::ClassMetrics {
                    label: l.clone(),
                    precision: c.precision,
                    recall: c.recall,
                    f1: c.f1,
                    support: c.support,
                })
                .collect(),
        });
    }
    if let Some(loaded) = &e.loaded {
        // The backend's own report of the loaded model wins over the declaration.
        let (inputs, outputs) = (loaded.runner.inputs(), loaded.runner.outputs());
        if !inputs.is_empty() {
            out.inputs = tensors(inputs);
        }
        if !outputs.is_empty() {
            out.outputs = tensors(outputs);
        }
    }
    if let Some(f) = &e.features {
        out.feature_config = Some(pb::FeatureConfiguration {
            name: f.config.name.clone(),
            toml: f.key.clone(),
            frame_columns: f.config.frame_column_names(),
        });
    }
    out
}

impl ModelsService {
    async fn load(&self, name: String, version: u32) -> Result<pb::ModelInfo> {
        let repo = self.state.repo.clone();
        let n = name.clone();
        let loaded = tokio::task::spawn_blocking(move || repo.load(&n, version))
            .await
            .map_err(|e| Error::Internal(format!("model loader failed: {e}")));
        self.state.update_model_health(&name).await;
        let loaded = loaded??;
        let (v, entry) = self.state.repo.entry(&name, loaded.version)?;
        Ok(info(&name, v, &entry))
    }
}

#[tonic::async_trait]
impl pb::models_server::Models for ModelsService {
    async fn list_models(
        &self,
        _request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let snapshot = self.state.repo.snapshot()?;
        let models = snapshot
            .into_iter()
            .map(|(name, versions)| pb::ModelSummary {
                name,
                versions: versions.iter().map(|(v, e)| status(*v, e)).collect(),
            })
            .collect();
        let default_model = self.state.model_name("").unwrap_or_default();
        Ok(Response::new(pb::ListModelsResponse { models, default_model }))
    }

    async fn get_model(
        &self,
        request: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::ModelInfo>, Status> {
        let req = request.into_inner();
        let repo = self.state.repo.clone();
        let name = req.name.clone();
        let (version, entry) =
            tokio::task::spawn_blocking(move || repo.describe(&req.name, req.version))
                .await
                .map_err(|e| Error::Internal(format!("reading model: {e}")))??;
        Ok(Response::new(info(&name, version, &entry)))
    }

    async fn load_model(
        &self,
        request: Request<pb::LoadModelRequest>,
    ) -> Result<Response<pb::LoadModelResponse>, Status> {
        self.state.admin.check(request.metadata(), "LoadModel")?;
        let req = request.into_inner();
        if req.name.is_empty() {
            return Err(
                Error::InvalidRequest("name is empty: name the model to load".into()).into()
            );
        }
        let model = self.load(req.name, req.version).await?;
        Ok(Response::new(pb::LoadModelResponse { model: Some(model) }))
    }

    async fn unload_model(
        &self,
        request: Request<pb::UnloadModelRequest>,
    ) -> Result<Response<pb::UnloadModelResponse>, Status> {
        self.state.admin.check(request.metadata(), "UnloadModel")?;
        let req = request.into_inner();
        let unloaded_versions = self.state.repo.unload(&req.name, req.version)?;
        self.state.update_model_health(&req.name).await;
        tracing::info!(model = %req.name, versions = ?unloaded_versions, "model unloaded");
        Ok(Response::new(pb::UnloadModelResponse { unloaded_versions }))
    }

    async fn list_plugins(
        &self,
        _request: Request<pb::ListPluginsRequest>,
    ) -> Result<Response<pb::ListPluginsResponse>, Status> {
        Ok(Response::new(pb::ListPluginsResponse { plugins: self.plugins() }))
    }

    async fn reload_plugin(
        &self,
        request: Request<pb::ReloadPluginRequest>,
    ) -> Result<Response<pb::ReloadPluginResponse>, Status> {
        self.state.admin.check(request.metadata(), "ReloadPlugin")?;
        let name = request.into_inner().name;
        let state = Arc::clone(&self.state);
        let plugin =
            tokio::task::spawn_blocking(move || crate::plugins::reload_plugin(&state, &name))
                .await
                .map_err(|e| Error::Internal(format!("reload task failed: {e}")))??;
        tracing::info!(plugin = %plugin.name, version = %plugin.version, "plugin reloaded");
        Ok(Response::new(pb::ReloadPluginResponse { plugin: Some(plugin) }))
    }
}
