//! The registry: built-in and dynamic plugins by name, handles that follow hot swaps.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use prosodia_plugin_api::wrap::panic_message;
use prosodia_plugin_api::{
    BackendPlugin, BackendSpec, Batch, ExtractorPlugin, ExtractorSpec, FeatureExtractor,
    FeatureMatrix, ModelBackend, OutputLayout, PluginError, PluginKind,
};

use crate::error::{HostError, HostErrorKind};
use crate::library::Library;
use crate::security::check_not_world_writable;

/// Where a registered plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Compiled into the host binary.
    Builtin,
    /// Loaded from this library file (the host runs a private copy of it).
    Library(PathBuf),
}

/// What the registry knows about one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Registry name.
    pub name: String,
    /// Version string the plugin declares.
    pub version: String,
    /// Extractor or backend.
    pub kind: PluginKind,
    /// Built in or loaded from a file.
    pub origin: Origin,
    /// ABI major and minor version the plugin was built for.
    pub abi: (u32, u32),
}

type CreateExtractor = fn(&str) -> Result<Box<dyn FeatureExtractor>, PluginError>;
type LoadBackend = fn(&Path, &str) -> Result<Box<dyn ModelBackend>, PluginError>;

/// A plugin compiled into the host, registered through the same traits as a library.
#[derive(Clone)]
pub struct Builtin {
    info: PluginInfo,
    factory: BuiltinFactory,
}

#[derive(Clone, Copy)]
enum BuiltinFactory {
    Extractor(CreateExtractor),
    Backend(LoadBackend),
}

fn create_boxed<T: ExtractorPlugin>(
    config: &str,
) -> Result<Box<dyn FeatureExtractor>, PluginError> {
    Ok(Box::new(T::create(config)?))
}

fn load_boxed<T: BackendPlugin>(
    path: &Path,
    config: &str,
) -> Result<Box<dyn ModelBackend>, PluginError> {
    Ok(Box::new(T::load(path, config)?))
}

impl Builtin {
    fn info(name: &str, version: &str, kind: PluginKind) -> PluginInfo {
        PluginInfo {
            name: name.to_string(),
            version: version.to_string(),
            kind,
            origin: Origin::Builtin,
            abi: (prosodia_plugin_api::abi::ABI_MAJOR, prosodia_plugin_api::abi::ABI_MINOR),
        }
    }

    /// A built-in feature extractor.
    pub fn extractor<T: ExtractorPlugin>() -> Self {
        Self {
            info: Self::info(T::NAME, T::VERSION, PluginKind::FeatureExtractor),
            factory: BuiltinFactory::Extractor(create_boxed::<T>),
        }
    }

    /// A built-in model backend.
    pub fn backend<T: BackendPlugin>() -> Self {
        Self {
            info: Self::info(T::NAME, T::VERSION, PluginKind::ModelBackend),
            factory: BuiltinFactory::Backend(load_boxed::<T>),
        }
    }
}

/// One generation of a registered plugin.
struct Loaded {
    info: Arc<PluginInfo>,
    generation: u64,
    source: Source,
}

enum Source {
    Builtin(BuiltinFactory),
    Dynamic(Arc<Library>),
}

impl Loaded {
    fn create_extractor(&self, config: &str) -> Result<Box<dyn FeatureExtractor>, HostError> {
        let name = &self.info.name;
        let result = contain(name, || match &self.source {
            Source::Builtin(BuiltinFactory::Extractor(create)) => create(config),
            Source::Dynamic(lib) => {
                lib.create_extractor(config).map(|e| Box::new(e) as Box<dyn FeatureExtractor>)
            }
            Source::Builtin(BuiltinFactory::Backend(_)) => {
                Err(PluginError::internal("not an extractor"))
            }
        })?;
        result.map_err(|e| HostError::from_plugin(name, e))
    }

    fn load_backend(&self, model: &Path, config: &str) -> Result<Box<dyn ModelBackend>, HostError> {
        let name = &self.info.name;
        let result = contain(name, || match &self.source {
            Source::Builtin(BuiltinFactory::Backend(load)) => load(model, config),
            Source::Dynamic(lib) => {
                lib.load_backend(model, config).map(|b| Box::new(b) as Box<dyn ModelBackend>)
            }
            Source::Builtin(BuiltinFactory::Extractor(_)) => {
                Err(PluginError::internal("not a backend"))
            }
        })?;
        result.map_err(|e| HostError::from_plugin(name, e))
    }
}

/// Runs a call into a plugin, turning a panic (possible only from built-ins: dynamic Rust
/// plugins catch their own) into an error.
fn contain<R>(name: &str, f: impl FnOnce() -> R) -> Result<R, HostError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        HostError::new(
            HostErrorKind::Panicked,
            format!("plugin {name:?} panicked: {}", panic_message(payload.as_ref())),
        )
    })
}

/// A registry entry: the current generation, swapped atomically on reload.
struct Slot {
    kind: PluginKind,
    current: RwLock<Arc<Loaded>>,
    /// Serialises reloads of this plugin.
    swap: Mutex<()>,
}

impl Slot {
    fn current(&self) -> Arc<Loaded> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn replace(&self, loaded: Arc<Loaded>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = loaded;
    }
}

struct Inner {
    plugin_dir: Option<PathBuf>,
    /// Private copies of loaded libraries (see [`PluginHost::reload`]).
    scratch: tempfile::TempDir,
    slots: RwLock<HashMap<String, Arc<Slot>>>,
    generation: AtomicU64,
    load_errors: Mutex<Vec<(PathBuf, HostError)>>,
    /// Every library ever loaded, to count those still resident.
    libraries: Mutex<Vec<Weak<Library>>>,
}

/// Configures a [`PluginHost`].
#[derive(Default)]
pub struct HostBuilder {
    plugin_dir: Option<PathBuf>,
    builtins: Vec<Builtin>,
}

impl HostBuilder {
    /// A builder with no plugin directory and no built-ins.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans `dir` for plugin libraries when the host is built.
    pub fn plugin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.plugin_dir = Some(dir.into());
        self
    }

    /// Registers a built-in plugin; a library of the same name in the plugin directory
    /// replaces it.
    pub fn builtin(mut self, builtin: Builtin) -> Self {
        self.builtins.push(builtin);
        self
    }

    /// Registers the built-ins, then loads every library in the plugin directory.
    ///
    /// Fails when the directory cannot be read or is world-writable. A library that fails to
    /// load is skipped and reported by [`PluginHost::load_errors`] (and logged).
    pub fn build(self) -> Result<PluginHost, HostError> {
        let scratch =
            tempfile::Builder::new().prefix("prosodia-plugins-").tempdir().map_err(|e| {
                HostError::new(HostErrorKind::Io, format!("creating a scratch directory: {e}"))
            })?;
        let host = PluginHost {
            inner: Arc::new(Inner {
                plugin_dir: self.plugin_dir,
                scratch,
                slots: RwLock::new(HashMap::new()),
                generation: AtomicU64::new(0),
                load_errors: Mutex::new(Vec::new()),
                libraries: Mutex::new(Vec::new()),
            }),
        };
        for builtin in self.builtins {
            let loaded = Loaded {
                info: Arc::new(builtin.info),
                generation: host.next_generation(),
                source: Source::Builtin(builtin.factory),
            };
            host.install(loaded);
        }
        if host.inner.plugin_dir.is_some() {
            host.scan()?;
        }
        Ok(host)
    }
}

/// The plugin registry: built-in and dynamic plugins by name, with atomic hot swap.
///
/// Cloning is cheap and shares the registry.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plugins = self.plugins();
        f.debug_list().entries(plugins.iter().map(|p| format!("{} {}", p.name, p.version))).finish()
    }
}

impl PluginHost {
    /// A [`HostBuilder`].
    pub fn builder() -> HostBuilder {
        HostBuilder::new()
    }

    fn next_generation(&self) -> u64 {
        self.inner.generation.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn slot(&self, name: &str) -> Result<Arc<Slot>, HostError> {
        let slots = self.inner.slots.read().unwrap_or_else(PoisonError::into_inner);
        slots.get(name).cloned().ok_or_else(|| {
            let mut known: Vec<&str> = slots.keys().map(String::as_str).collect();
            known.sort_unstable();
            HostError::new(
                HostErrorKind::NotFound,
                format!("no plugin named {name:?} (registered: {known:?})"),
            )
        })
    }

    /// Inserts or replaces the slot for `loaded`'s name.
    fn install(&self, loaded: Loaded) -> Arc<PluginInfo> {
        let info = Arc::clone(&loaded.info);
        let mut slots = self.inner.slots.write().unwrap_or_else(PoisonError::into_inner);
        match slots.get(&info.name) {
            Some(slot) if slot.kind == info.kind => slot.replace(Arc::new(loaded)),
            _ => {
                let slot = Slot {
                    kind: info.kind,
                    current: RwLock::new(Arc::new(loaded)),
                    swap: Mutex::new(()),
                };
                slots.insert(info.name.clone(), Arc::new(slot));
            }
        }
        info
    }

    /// Loads every library in the plugin directory (see [`HostBuilder::build`]).
    fn scan(&self) -> Result<(), HostError> {
        let Some(dir) = self.inner.plugin_dir.clone() else { return Ok(()) };
        check_not_world_writable(&dir)?;
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            HostError::new(
                HostErrorKind::Io,
                format!("reading plugin directory {}: {e}", dir.display()),
            )
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == std::env::consts::DLL_EXTENSION) && p.is_file()
            })
            .collect();
        paths.sort();
        let mut seen: HashMap<String, PathBuf> = HashMap::new();
        for path in paths {
            let result = self.open_checked(&path).and_then(|lib| {
                if let Some(first) = seen.get(&lib.name) {
                    return Err(HostError::new(
                        HostErrorKind::DuplicateName,
                        format!(
                            "{} declares plugin {:?}, already loaded from {}; remove one of them",
                            path.display(),
                            lib.name,
                            first.display()
                        ),
                    ));
                }
                seen.insert(lib.name.clone(), path.clone());
                Ok(self.install(lib_loaded(self.next_generation(), lib, &path)))
            });
            match result {
                Ok(info) => {
                    tracing::info!(plugin = %info.name, version = %info.version, path = %path.display(), "loaded plugin")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipped plugin library");
                    self.inner
                        .load_errors
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((path, e));
                }
            }
        }
        Ok(())
    }

    /// Copies `path` to a fresh private file, loads it, checks the ABI and runs the smoke call.
    fn open_checked(&self, path: &Path) -> Result<Arc<Library>, HostError> {
        check_not_world_writable(path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            check_not_world_writable(parent)?;
        }
        // A fresh path per load: glibc never unloads a library whose thread-locals have
        // destructors, so reopening the same path could hand back the old code.
        let file_name =
            path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let copy =
            self.inner.scratch.path().join(format!("{}-{file_name}", self.next_generation()));
        std::fs::copy(path, &copy).map_err(|e| {
            HostError::new(
                HostErrorKind::Io,
                format!("copying {} to {}: {e}", path.display(), copy.display()),
            )
        })?;
        let lib = match Library::open(&copy, path, true) {
            Ok(lib) => Arc::new(lib),
            Err(e) => {
                let _ = std::fs::remove_file(&copy);
                return Err(e);
            }
        };
        {
            let mut libraries = self.inner.libraries.lock().unwrap_or_else(PoisonError::into_inner);
            libraries.retain(|w| w.strong_count() > 0);
            libraries.push(Arc::downgrade(&lib));
        }
        smoke_test(&lib).map_err(|e| {
            HostError::new(
                HostErrorKind::SmokeTest,
                format!("{} (plugin {:?} {}): {}", path.display(), lib.name, lib.version, e),
            )
        })?;
        Ok(lib)
    }

    /// Loads one library (outside the plugin directory too) and registers it, replacing a
    /// built-in or dynamic plugin of the same name atomically.
    pub fn load_library(&self, path: impl AsRef<Path>) -> Result<Arc<PluginInfo>, HostError> {
        let path = path.as_ref();
        let lib = self.open_checked(path)?;
        if let Ok(slot) = self.slot(&lib.name) {
            if slot.kind != lib.kind {
                return Err(HostError::new(
                    HostErrorKind::WrongKind,
                    format!(
                        "{} is a {} but {:?} is registered as a {}",
                        path.display(),
                        lib.kind,
                        lib.name,
                        slot.kind
                    ),
                ));
            }
            let _guard = slot.swap.lock().unwrap_or_else(PoisonError::into_inner);
            let loaded = lib_loaded(self.next_generation(), lib, path);
            let info = Arc::clone(&loaded.info);
            slot.replace(Arc::new(loaded));
            return Ok(info);
        }
        Ok(self.install(lib_loaded(self.next_generation(), lib, path)))
    }

    /// Hot-swaps plugin `name` from its library file.
    ///
    /// The file is copied to a fresh path, loaded, checked and smoke-tested; only then do new
    /// requests switch to it, atomically. Calls already running finish on the old instance,
    /// which is destroyed (and its library unloaded) when the last of them returns. If
    /// anything fails, the old plugin keeps serving and the error says why.
    pub fn reload(&self, name: &str) -> Result<Arc<PluginInfo>, HostError> {
        let slot = self.slot(name)?;
        let _guard = slot.swap.lock().unwrap_or_else(PoisonError::into_inner);
        let current = slot.current();
        let Origin::Library(path) = &current.info.origin else {
            return Err(HostError::new(
                HostErrorKind::NotReloadable,
                format!(
                    "plugin {name:?} is built in; load a library with the same name to replace it"
                ),
            ));
        };
        let path = path.clone();
        let lib = self
            .open_checked(&path)
            .map_err(|e| e.context(format!("reloading {name:?}, old version keeps serving")))?;
        if lib.name != name || lib.kind != slot.kind {
            return Err(HostError::new(
                HostErrorKind::WrongKind,
                format!(
                    "reloading {name:?}: {} now declares the {} {:?}; the old version keeps serving",
                    path.display(),
                    lib.kind,
                    lib.name
                ),
            ));
        }
        let loaded = lib_loaded(self.next_generation(), lib, &path);
        let info = Arc::clone(&loaded.info);
        slot.replace(Arc::new(loaded));
        tracing::info!(plugin = %name, version = %info.version, "reloaded plugin");
        Ok(info)
    }

    /// Every registered plugin, sorted by name.
    pub fn plugins(&self) -> Vec<Arc<PluginInfo>> {
        let slots = self.inner.slots.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = slots.values().map(|s| Arc::clone(&s.current().info)).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The current registration of `name`.
    pub fn info(&self, name: &str) -> Result<Arc<PluginInfo>, HostError> {
        Ok(Arc::clone(&self.slot(name)?.current().info))
    }

    /// Plugin libraries the host still holds, old generations included: after a reload the
    /// old library is held until the calls and handles using it are done, then closed. (glibc
    /// may keep a closed Rust library mapped, which is why reloads use fresh copies.)
    pub fn resident_libraries(&self) -> usize {
        let libraries = self.inner.libraries.lock().unwrap_or_else(PoisonError::into_inner);
        libraries.iter().filter(|w| w.strong_count() > 0).count()
    }

    /// Libraries in the plugin directory that were skipped, with the reason.
    pub fn load_errors(&self) -> Vec<(PathBuf, HostError)> {
        self.inner.load_errors.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Live handles and unreleased outputs reported by the current library of `name`
    /// (`None` for built-ins and libraries that do not report).
    pub fn live_objects(&self, name: &str) -> Result<Option<u64>, HostError> {
        Ok(match &self.slot(name)?.current().source {
            Source::Dynamic(lib) => lib.live_objects(),
            Source::Builtin(_) => None,
        })
    }

    fn slot_of_kind(&self, name: &str, kind: PluginKind) -> Result<Arc<Slot>, HostError> {
        let slot = self.slot(name)?;
        if slot.kind != kind {
            return Err(HostError::new(
                HostErrorKind::WrongKind,
                format!("plugin {name:?} is a {}, not a {kind}", slot.kind),
            ));
        }
        Ok(slot)
    }

    /// A feature extractor of plugin `name` configured with `config_toml`; it follows hot
    /// swaps of the plugin (see [`ExtractorHandle`]).
    pub fn extractor(&self, name: &str, config_toml: &str) -> Result<ExtractorHandle, HostError> {
        let slot = self.slot_of_kind(name, PluginKind::FeatureExtractor)?;
        let loaded = slot.current();
        let instance = Arc::new(Instance {
            value: loaded.create_extractor(config_toml)?,
            generation: loaded.generation,
            info: Arc::clone(&loaded.info),
            _plugin: loaded,
        });
        Ok(ExtractorHandle {
            inner: Swappable::new(slot, instance),
            config: config_toml.to_string(),
        })
    }

    /// A model backend of plugin `name` with `model_path` loaded; it follows hot swaps of the
    /// plugin (the model is loaded again by the new version on the first call after a swap).
    pub fn backend(
        &self,
        name: &str,
        model_path: &Path,
        config_toml: &str,
    ) -> Result<BackendHandle, HostError> {
        let slot = self.slot_of_kind(name, PluginKind::ModelBackend)?;
        let loaded = slot.current();
        let value = loaded.load_backend(model_path, config_toml)?;
        validate_backend_spec(&loaded.info.name, value.spec())?;
        let instance = Arc::new(Instance {
            value,
            generation: loaded.generation,
            info: Arc::clone(&loaded.info),
            _plugin: loaded,
        });
        Ok(BackendHandle {
            inner: Swappable::new(slot, instance),
            model_path: model_path.to_path_buf(),
            config: config_toml.to_string(),
        })
    }
}

fn lib_loaded(generation: u64, lib: Arc<Library>, path: &Path) -> Loaded {
    let info = PluginInfo {
        name: lib.name.clone(),
        version: lib.version.clone(),
        kind: lib.kind,
        origin: Origin::Library(path.to_path_buf()),
        abi: lib.abi,
    };
    Loaded { info: Arc::new(info), generation, source: Source::Dynamic(lib) }
}

/// The smoke call of a freshly loaded library: an extractor is created with its defaults and
/// must turn half a second of a tone into output matching its declaration; a backend has no
/// model to load yet, so its descriptor and table checks are its smoke test.
fn smoke_test(lib: &Arc<Library>) -> Result<(), HostError> {
    if lib.kind != PluginKind::FeatureExtractor {
        return Ok(());
    }
    let extractor = lib.create_extractor("").map_err(|e| HostError::from_plugin(&lib.name, e))?;
    let rate = match extractor.spec().sample_rate {
        0 => 16_000,
        r => r,
    };
    let tone: Vec<f32> = (0..rate / 2)
        .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 220.0 * i as f32 / rate as f32).sin())
        .collect();
    let out =
        extractor.extract(&[&tone], rate).map_err(|e| HostError::from_plugin(&lib.name, e))?;
    validate_features(&lib.name, extractor.spec(), 1, &out)
}

/// Checks an extractor's output against its declaration, and that every value is finite.
fn validate_features(
    name: &str,
    spec: &ExtractorSpec,
    count: usize,
    out: &[FeatureMatrix],
) -> Result<(), HostError> {
    let shape = |msg: String| {
        Err(HostError::new(HostErrorKind::OutputShape, format!("plugin {name:?}: {msg}")))
    };
    if out.len() != count {
        return shape(format!("returned {} results for a batch of {count}", out.len()));
    }
    for (i, m) in out.iter().enumerate() {
        if m.cols != spec.width() {
            return shape(format!("utterance {i}: {} columns, declared {}", m.cols, spec.width()));
        }
        if m.rows.checked_mul(m.cols) != Some(m.data.len()) {
            return shape(format!(
                "utterance {i}: {}×{} matrix with {} values",
                m.rows,
                m.cols,
                m.data.len()
            ));
        }
        if spec.layout == OutputLayout::Vector && m.rows != 1 {
            return shape(format!("utterance {i}: vector output with {} rows", m.rows));
        }
        if let Some(j) = first_non_finite(&m.data) {
            let (r, c) = (j / m.cols.max(1), j % m.cols.max(1));
            return Err(HostError::new(
                HostErrorKind::NonFiniteOutput,
                format!(
                    "plugin {name:?} returned {} for utterance {i}, frame {r}, column {:?}",
                    m.data[j],
                    spec.columns.get(c).map_or("?", String::as_str)
                ),
            ));
        }
    }
    Ok(())
}

/// Index of the first NaN or infinite value. Every output of every call passes through here,
/// so the common all-finite case is a branch-free pass the compiler vectorises (`v * 0` is 0
/// for finite `v` and NaN otherwise); only a tainted chunk is searched element by element.
fn first_non_finite(data: &[f32]) -> Option<usize> {
    const LANES: usize = 16;
    let chunks = data.chunks_exact(LANES);
    let tail_start = data.len() - chunks.remainder().len();
    for (k, chunk) in chunks.enumerate() {
        let mut acc = [0.0f32; LANES];
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += v * 0.0;
        }
        if acc.iter().any(|a| a.is_nan()) {
            return chunk.iter().position(|v| !v.is_finite()).map(|j| k * LANES + j);
        }
    }
    data[tail_start..].iter().position(|v| !v.is_finite()).map(|j| tail_start + j)
}

fn validate_backend_spec(name: &str, spec: &BackendSpec) -> Result<(), HostError> {
    if spec.num_classes == 0 {
        return Err(HostError::new(
            HostErrorKind::OutputShape,
            format!("plugin {name:?} declares zero classes"),
        ));
    }
    Ok(())
}

/// A plugin instance of one generation.
struct Instance<T: ?Sized> {
    value: Box<T>,
    generation: u64,
    info: Arc<PluginInfo>,
    /// Keeps the generation (and its library) alive while the instance exists; declared
    /// last so the instance is destroyed before its library can be unloaded.
    _plugin: Arc<Loaded>,
}

/// The hot-swap mechanics shared by both handle types: each call takes the current instance
/// (an `Arc`, so a swap never pulls it from under a running call) and replaces it with one
/// from the new generation when the plugin was swapped.
struct Swappable<T: ?Sized> {
    slot: Arc<Slot>,
    current: RwLock<Arc<Instance<T>>>,
    refresh: Mutex<()>,
}

impl<T: ?Sized> Swappable<T> {
    fn new(slot: Arc<Slot>, instance: Arc<Instance<T>>) -> Self {
        Self { slot, current: RwLock::new(instance), refresh: Mutex::new(()) }
    }

    fn cached(&self) -> Arc<Instance<T>> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn get(
        &self,
        create: impl FnOnce(&Loaded) -> Result<Box<T>, HostError>,
    ) -> Result<Arc<Instance<T>>, HostError> {
        let loaded = self.slot.current();
        let cached = self.cached();
        if cached.generation == loaded.generation {
            return Ok(cached);
        }
        let _guard = self.refresh.lock().unwrap_or_else(PoisonError::into_inner);
        let cached = self.cached();
        if cached.generation == loaded.generation {
            return Ok(cached);
        }
        let instance = Arc::new(Instance {
            value: create(&loaded)?,
            generation: loaded.generation,
            info: Arc::clone(&loaded.info),
            _plugin: Arc::clone(&loaded),
        });
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&instance);
        Ok(instance)
    }
}

/// A configured feature extractor that follows hot swaps of its plugin.
///
/// Calls may come from many threads at once. After [`PluginHost::reload`], the next call
/// creates an instance of the new version with the same configuration; calls running on the
/// old instance finish there.
pub struct ExtractorHandle {
    inner: Swappable<dyn FeatureExtractor>,
    config: String,
}

/// A result together with the plugin version that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Served<T> {
    /// The result.
    pub value: T,
    /// The plugin (name, version, origin) that answered.
    pub plugin: Arc<PluginInfo>,
}

impl ExtractorHandle {
    fn instance(&self) -> Result<Arc<Instance<dyn FeatureExtractor>>, HostError> {
        self.inner.get(|loaded| loaded.create_extractor(&self.config))
    }

    /// The output declaration of the current version.
    pub fn spec(&self) -> Result<ExtractorSpec, HostError> {
        Ok(self.instance()?.value.spec().clone())
    }

    /// The plugin currently serving this handle.
    pub fn plugin(&self) -> Arc<PluginInfo> {
        Arc::clone(&self.inner.cached().info)
    }

    /// Extracts features (see [`FeatureExtractor::extract`]), checking the output against the
    /// declaration: one matrix per utterance, the declared width, finite values.
    pub fn extract(
        &self,
        batch: &[&[f32]],
        sample_rate: u32,
    ) -> Result<Vec<FeatureMatrix>, HostError> {
        Ok(self.extract_served(batch, sample_rate)?.value)
    }

    /// [`extract`](Self::extract), also naming the plugin version that answered.
    pub fn extract_served(
        &self,
        batch: &[&[f32]],
        sample_rate: u32,
    ) -> Result<Served<Vec<FeatureMatrix>>, HostError> {
        let instance = self.instance()?;
        let name = &instance.info.name;
        let out = contain(name, || instance.value.extract(batch, sample_rate))?
            .map_err(|e| HostError::from_plugin(name, e))?;
        validate_features(name, instance.value.spec(), batch.len(), &out)?;
        Ok(Served { value: out, plugin: Arc::clone(&instance.info) })
    }
}

/// A loaded model that follows hot swaps of its backend plugin.
pub struct BackendHandle {
    inner: Swappable<dyn ModelBackend>,
    model_path: PathBuf,
    config: String,
}

impl BackendHandle {
    fn instance(&self) -> Result<Arc<Instance<dyn ModelBackend>>, HostError> {
        self.inner.get(|loaded| {
            let value = loaded.load_backend(&self.model_path, &self.config)?;
            validate_backend_spec(&loaded.info.name, value.spec())?;
            Ok(value)
        })
    }

    /// Inputs, outputs and classes of the current version.
    pub fn spec(&self) -> Result<BackendSpec, HostError> {
        Ok(self.instance()?.value.spec().clone())
    }

    /// The plugin currently serving this handle.
    pub fn plugin(&self) -> Arc<PluginInfo> {
        Arc::clone(&self.inner.cached().info)
    }

    /// Runs a padded batch, returning `n * num_classes` finite probabilities.
    pub fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, HostError> {
        Ok(self.run_served(batch)?.value)
    }

    /// [`run`](Self::run), also naming the plugin version that answered.
    pub fn run_served(&self, batch: &Batch<'_>) -> Result<Served<Vec<f32>>, HostError> {
        let instance = self.instance()?;
        let name = &instance.info.name;
        batch.check().map_err(|e| HostError::from_plugin(name, e))?;
        let out = contain(name, || instance.value.run(batch))?
            .map_err(|e| HostError::from_plugin(name, e))?;
        let classes = instance.value.spec().num_classes;
        if out.len() != batch.n * classes {
            return Err(HostError::new(
                HostErrorKind::OutputShape,
                format!(
                    "plugin {name:?} returned {} values for {} items × {classes} classes",
                    out.len(),
                    batch.n
                ),
            ));
        }
        if let Some(j) = out.iter().position(|v| !v.is_finite()) {
            return Err(HostError::new(
                HostErrorKind::NonFiniteOutput,
                format!(
                    "plugin {name:?} returned {} for item {}, class {}",
                    out[j],
                    j / classes,
                    j % classes
                ),
            ));
        }
        Ok(Served { value: out, plugin: Arc::clone(&instance.info) })
    }
}

#[cfg(test)]
mod tests {
    use super::first_non_finite;

    #[test]
    fn first_non_finite_finds_the_first_bad_value_anywhere() {
        for len in [0usize, 1, 15, 16, 17, 100, 257] {
            let clean: Vec<f32> = (0..len).map(|i| i as f32 * 0.5 - 3.0).collect();
            assert_eq!(first_non_finite(&clean), None, "len {len}");
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                for at in [0, len / 2, len.saturating_sub(1)] {
                    if len == 0 {
                        continue;
                    }
                    let mut v = clean.clone();
                    v[at] = bad;
                    if at + 1 < len {
                        v[len - 1] = f32::NAN;
                    }
                    assert_eq!(first_non_finite(&v), Some(at), "len {len}, {bad} at {at}");
                }
            }
        }
    }
}
