//! Opening a plugin library and calling it through the raw ABI: the only module of the host
//! with `unsafe` code.
//!
//! [`Library`] owns the loaded object and a checked copy of its descriptor: the ABI version
//! is read first (those two fields never move), then the kind, strings and every function
//! pointer of the table. [`DynamicExtractor`] and [`DynamicBackend`] wrap plugin handles in
//! the same safe traits built-in plugins implement; each holds an `Arc<Library>`, so a library
//! is unloaded only after its last handle was destroyed.

#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use prosodia_plugin_api::abi::{
    self, BackendInfo, BackendVTable, EntryFn, ExtractorInfo, ExtractorVTable, FeatureOutput,
    PluginDescriptor, RawBackend, RawBatch, RawExtractor, RawF32Slice, RawStr, TensorInfo,
};
use prosodia_plugin_api::{
    BackendSpec, Batch, DType, ErrorCode, ExtractorSpec, FeatureExtractor, FeatureMatrix,
    ModelBackend, OutputLayout, PluginError, PluginKind, TensorSpec,
};

use crate::error::{HostError, HostErrorKind};

/// The function table of a checked library.
#[derive(Clone, Copy)]
enum Table {
    Extractor(ExtractorVTable),
    Backend(BackendVTable),
}

/// A loaded, checked plugin library.
pub(crate) struct Library {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) kind: PluginKind,
    pub(crate) abi: (u32, u32),
    last_error: unsafe extern "C" fn() -> RawStr,
    live_objects: Option<unsafe extern "C" fn() -> u64>,
    table: Table,
    /// The private copy the library was loaded from; removed on drop.
    copy: Option<PathBuf>,
    /// Dropped last: unloads the library after every handle is gone.
    _lib: libloading::Library,
}

impl Drop for Library {
    fn drop(&mut self) {
        if let Some(copy) = &self.copy {
            let _ = std::fs::remove_file(copy);
        }
    }
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> HostError {
    HostError::new(HostErrorKind::InvalidDescriptor, format!("{}: {what}", path.display()))
}

#[cfg(unix)]
fn open(path: &Path) -> Result<libloading::Library, libloading::Error> {
    use libloading::os::unix::{Library as UnixLibrary, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: loading a library runs its initialisers; plugins are trusted code by design
    // (the host only refuses files other users could have written).
    unsafe { UnixLibrary::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map(Into::into)
}

#[cfg(not(unix))]
fn open(path: &Path) -> Result<libloading::Library, libloading::Error> {
    // SAFETY: as above.
    unsafe { libloading::Library::new(path) }
}

impl Library {
    /// Loads `load_path` (a private copy when `copy` is true, removed when the library is
    /// dropped), finds the entry symbol and checks the descriptor. `shown` names the library
    /// in messages.
    pub(crate) fn open(load_path: &Path, shown: &Path, copy: bool) -> Result<Library, HostError> {
        let lib = open(load_path).map_err(|e| {
            HostError::new(HostErrorKind::Load, format!("{}: {e}", shown.display()))
        })?;
        let entry: EntryFn = {
            // SAFETY: the symbol's type is fixed by the ABI.
            let symbol = unsafe { lib.get::<EntryFn>(abi::ENTRY_SYMBOL) }.map_err(|e| {
                HostError::new(
                    HostErrorKind::NoEntrySymbol,
                    format!(
                        "{} does not export `{}`, so it is not a Prosodia plugin (or was built for another ABI \
                         major version): {e}",
                        shown.display(),
                        abi::ENTRY_SYMBOL
                    ),
                )
            })?;
            *symbol
        };
        // SAFETY: the entry point takes no arguments; its result is checked below.
        let descriptor = unsafe { entry() };
        // SAFETY: the pointer is checked for null and read while `lib` is loaded.
        let checked = unsafe { check_descriptor(descriptor, shown) }?;
        Ok(Library {
            name: checked.name,
            version: checked.version,
            kind: checked.kind,
            abi: checked.abi,
            last_error: checked.last_error,
            live_objects: checked.live_objects,
            table: checked.table,
            copy: copy.then(|| load_path.to_path_buf()),
            _lib: lib,
        })
    }

    /// The plugin's message for the last failed call on this thread.
    fn last_error(&self) -> String {
        // SAFETY: the function is from the checked descriptor; the string is copied at once.
        let raw = unsafe { (self.last_error)() };
        match unsafe { raw.as_str() } {
            Ok("") => "(the plugin gave no message)".to_string(),
            Ok(s) => s.to_string(),
            Err(_) => "(the plugin's message is not UTF-8)".to_string(),
        }
    }

    /// A [`PluginError`] for status `rc` with the plugin's message.
    fn error(&self, rc: i32) -> PluginError {
        PluginError::new(ErrorCode::from_raw(rc), self.last_error())
    }

    /// Live handles and outputs the plugin reports, if it reports them.
    pub(crate) fn live_objects(&self) -> Option<u64> {
        // SAFETY: the function is from the checked descriptor.
        self.live_objects.map(|f| unsafe { f() })
    }

    /// Creates an extractor instance.
    pub(crate) fn create_extractor(
        self: &Arc<Self>,
        config_toml: &str,
    ) -> Result<DynamicExtractor, PluginError> {
        let Table::Extractor(vt) = self.table else {
            return Err(PluginError::invalid_argument(format!(
                "{} is not a feature extractor",
                self.name
            )));
        };
        let (Some(create), Some(info)) = (vt.create, vt.info) else {
            return Err(PluginError::internal("checked table lost a function"));
        };
        let mut raw: *mut RawExtractor = std::ptr::null_mut();
        // SAFETY: the string outlives the call; `raw` is writable.
        let rc = unsafe { create(RawStr::borrowed(config_toml), &mut raw) };
        if rc != abi::STATUS_OK {
            return Err(self.error(rc));
        }
        let Some(handle) = NonNull::new(raw) else {
            return Err(PluginError::internal("create succeeded but returned a null handle"));
        };
        // From here on dropping `this` destroys the handle.
        let mut this = DynamicExtractor {
            lib: Arc::clone(self),
            vt,
            handle,
            spec: ExtractorSpec {
                sample_rate: 0,
                layout: OutputLayout::Frames,
                columns: Vec::new(),
            },
        };
        let mut out = std::mem::MaybeUninit::<ExtractorInfo>::uninit();
        // SAFETY: a live handle; `out` is writable.
        let rc = unsafe { info(handle.as_ptr(), out.as_mut_ptr()) };
        if rc != abi::STATUS_OK {
            return Err(self.error(rc));
        }
        // SAFETY: the plugin filled `out` on success.
        let info = unsafe { out.assume_init() };
        this.spec = read_extractor_info(&info)?;
        Ok(this)
    }

    /// Loads a model with a backend plugin.
    pub(crate) fn load_backend(
        self: &Arc<Self>,
        model_path: &Path,
        config_toml: &str,
    ) -> Result<DynamicBackend, PluginError> {
        let Table::Backend(vt) = self.table else {
            return Err(PluginError::invalid_argument(format!(
                "{} is not a model backend",
                self.name
            )));
        };
        let (Some(load), Some(info)) = (vt.load, vt.info) else {
            return Err(PluginError::internal("checked table lost a function"));
        };
        let path = model_path.to_str().ok_or_else(|| {
            PluginError::invalid_argument(format!("model path {model_path:?} is not UTF-8"))
        })?;
        let mut raw: *mut RawBackend = std::ptr::null_mut();
        // SAFETY: the strings outlive the call; `raw` is writable.
        let rc = unsafe { load(RawStr::borrowed(path), RawStr::borrowed(config_toml), &mut raw) };
        if rc != abi::STATUS_OK {
            return Err(self.error(rc));
        }
        let Some(handle) = NonNull::new(raw) else {
            return Err(PluginError::internal("load succeeded but returned a null handle"));
        };
        let mut this = DynamicBackend {
            lib: Arc::clone(self),
            vt,
            handle,
            spec: BackendSpec { inputs: Vec::new(), outputs: Vec::new(), num_classes: 0 },
        };
        let mut out = std::mem::MaybeUninit::<BackendInfo>::uninit();
        // SAFETY: a live handle; `out` is writable.
        let rc = unsafe { info(handle.as_ptr(), out.as_mut_ptr()) };
        if rc != abi::STATUS_OK {
            return Err(self.error(rc));
        }
        // SAFETY: the plugin filled `out` on success; pointers are valid for the handle's life.
        let info = unsafe { out.assume_init() };
        this.spec = unsafe { read_backend_info(&info) }?;
        Ok(this)
    }
}

struct Checked {
    name: String,
    version: String,
    kind: PluginKind,
    abi: (u32, u32),
    last_error: unsafe extern "C" fn() -> RawStr,
    live_objects: Option<unsafe extern "C" fn() -> u64>,
    table: Table,
}

/// Checks a descriptor: version first, then everything else.
///
/// # Safety
/// `d` must be null or point to memory of the loaded library.
unsafe fn check_descriptor(d: *const PluginDescriptor, path: &Path) -> Result<Checked, HostError> {
    if d.is_null() {
        return Err(invalid(path, "the entry point returned a null descriptor"));
    }
    // The two version fields are the only ones whose position is fixed across majors.
    // SAFETY: non-null pointer into the library.
    let (major, minor) = unsafe { ((*d).abi_major, (*d).abi_minor) };
    if major != abi::ABI_MAJOR || minor > abi::ABI_MINOR {
        return Err(HostError::new(
            HostErrorKind::AbiVersion,
            format!(
                "{} was built for plugin ABI {major}.{minor}, but this host speaks ABI {}.{} (it loads {}.0 through \
                 {}.{}); rebuild the plugin against this host's prosodia_plugin.h / prosodia-plugin-api",
                path.display(),
                abi::ABI_MAJOR,
                abi::ABI_MINOR,
                abi::ABI_MAJOR,
                abi::ABI_MAJOR,
                abi::ABI_MINOR
            ),
        ));
    }
    // SAFETY: same major version, so the layout is ours.
    let d = unsafe { &*d };
    let kind = PluginKind::from_raw(d.kind)
        .ok_or_else(|| invalid(path, format!("unknown plugin kind {}", d.kind)))?;
    // SAFETY: descriptor strings are static data of the library.
    let name = unsafe { d.name.as_str() }.map_err(|_| invalid(path, "plugin name is not UTF-8"))?;
    let version =
        unsafe { d.version.as_str() }.map_err(|_| invalid(path, "plugin version is not UTF-8"))?;
    if name.is_empty()
        || name.len() > 128
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(invalid(
            path,
            format!("plugin name {name:?} must be 1..=128 printable characters, no spaces"),
        ));
    }
    let last_error = d.last_error.ok_or_else(|| invalid(path, "last_error is null"))?;
    let table = match kind {
        PluginKind::FeatureExtractor => {
            if d.extractor.is_null() {
                return Err(invalid(path, "feature extractor without an extractor table"));
            }
            // SAFETY: non-null pointer into the library; size checked before copying.
            let size = unsafe { (*d.extractor).struct_size };
            if size < size_of::<ExtractorVTable>() {
                return Err(invalid(path, format!("extractor table of {size} bytes is too small")));
            }
            let vt = unsafe { *d.extractor };
            if vt.create.is_none()
                || vt.destroy.is_none()
                || vt.info.is_none()
                || vt.extract.is_none()
                || vt.release_output.is_none()
            {
                return Err(invalid(path, "the extractor table has a null function"));
            }
            Table::Extractor(vt)
        }
        PluginKind::ModelBackend => {
            if d.backend.is_null() {
                return Err(invalid(path, "model backend without a backend table"));
            }
            // SAFETY: as above.
            let size = unsafe { (*d.backend).struct_size };
            if size < size_of::<BackendVTable>() {
                return Err(invalid(path, format!("backend table of {size} bytes is too small")));
            }
            let vt = unsafe { *d.backend };
            if vt.load.is_none() || vt.destroy.is_none() || vt.info.is_none() || vt.run.is_none() {
                return Err(invalid(path, "the backend table has a null function"));
            }
            Table::Backend(vt)
        }
        _ => return Err(invalid(path, format!("unsupported plugin kind {kind}"))),
    };
    Ok(Checked {
        name: name.to_string(),
        version: version.to_string(),
        kind,
        abi: (major, minor),
        last_error,
        live_objects: d.live_objects,
        table,
    })
}

fn read_extractor_info(info: &ExtractorInfo) -> Result<ExtractorSpec, PluginError> {
    let layout = OutputLayout::from_raw(info.layout)
        .ok_or_else(|| PluginError::internal(format!("unknown output layout {}", info.layout)))?;
    if info.width == 0 || info.column_names.is_null() {
        return Err(PluginError::internal("the extractor declares no output columns"));
    }
    // SAFETY: the plugin declares `width` names valid for the handle's lifetime.
    let names = unsafe { std::slice::from_raw_parts(info.column_names, info.width) };
    let columns = names
        .iter()
        .map(|n| unsafe { n.as_str() }.map(str::to_string))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PluginError::internal("a column name is not UTF-8"))?;
    Ok(ExtractorSpec { sample_rate: info.sample_rate, layout, columns })
}

/// # Safety
/// The pointers in `info` must be valid as the ABI promises.
unsafe fn read_tensors(ptr: *const TensorInfo, n: usize) -> Result<Vec<TensorSpec>, PluginError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(PluginError::internal("null tensor declarations"));
    }
    // SAFETY: per the caller.
    let raw = unsafe { std::slice::from_raw_parts(ptr, n) };
    raw.iter()
        .map(|t| {
            let name = unsafe { t.name.as_str() }
                .map_err(|_| PluginError::internal("tensor name is not UTF-8"))?;
            let dtype = DType::from_raw(t.dtype)
                .ok_or_else(|| PluginError::internal(format!("unknown dtype {}", t.dtype)))?;
            let shape = if t.rank == 0 {
                Vec::new()
            } else if t.dims.is_null() {
                return Err(PluginError::internal(format!("tensor {name} has null dims")));
            } else {
                unsafe { std::slice::from_raw_parts(t.dims, t.rank as usize) }.to_vec()
            };
            Ok(TensorSpec { name: name.to_string(), dtype, shape })
        })
        .collect()
}

/// # Safety
/// The pointers in `info` must be valid as the ABI promises.
unsafe fn read_backend_info(info: &BackendInfo) -> Result<BackendSpec, PluginError> {
    if info.num_classes == 0 {
        return Err(PluginError::internal("the backend declares zero classes"));
    }
    Ok(BackendSpec {
        inputs: unsafe { read_tensors(info.inputs, info.n_inputs) }?,
        outputs: unsafe { read_tensors(info.outputs, info.n_outputs) }?,
        num_classes: info.num_classes,
    })
}

/// A feature extractor living in a loaded library.
pub(crate) struct DynamicExtractor {
    lib: Arc<Library>,
    vt: ExtractorVTable,
    handle: NonNull<RawExtractor>,
    spec: ExtractorSpec,
}

// SAFETY: the ABI requires every function to be callable from any thread and `extract` to be
// safe to run concurrently on one handle; the handle itself is only destroyed in `Drop`.
unsafe impl Send for DynamicExtractor {}
// SAFETY: as above.
unsafe impl Sync for DynamicExtractor {}

impl Drop for DynamicExtractor {
    fn drop(&mut self) {
        if let Some(destroy) = self.vt.destroy {
            // SAFETY: the handle is live and destroyed exactly once, after all calls returned
            // (`&mut self` proves no call is in flight).
            unsafe { destroy(self.handle.as_ptr()) };
        }
    }
}

impl FeatureExtractor for DynamicExtractor {
    fn spec(&self) -> &ExtractorSpec {
        &self.spec
    }

    fn extract(
        &self,
        batch: &[&[f32]],
        sample_rate: u32,
    ) -> Result<Vec<FeatureMatrix>, PluginError> {
        let (Some(extract), Some(release)) = (self.vt.extract, self.vt.release_output) else {
            return Err(PluginError::internal("checked table lost a function"));
        };
        let slices: Vec<RawF32Slice> =
            batch.iter().map(|u| RawF32Slice { ptr: u.as_ptr(), len: u.len() }).collect();
        let mut out = FeatureOutput::EMPTY;
        // SAFETY: a live handle; `slices` and the samples outlive the call; `out` is writable.
        let rc = unsafe {
            extract(self.handle.as_ptr(), slices.as_ptr(), slices.len(), sample_rate, &mut out)
        };
        if rc != abi::STATUS_OK {
            return Err(self.lib.error(rc));
        }
        // Copy the matrices out, then always hand the output back.
        let copied = copy_output(&out);
        // SAFETY: `out` was filled by a successful extract and is released once.
        unsafe { release(self.handle.as_ptr(), &mut out) };
        copied
    }
}

fn copy_output(out: &FeatureOutput) -> Result<Vec<FeatureMatrix>, PluginError> {
    if out.count == 0 {
        return Ok(Vec::new());
    }
    if out.items.is_null() {
        return Err(PluginError::internal("extract succeeded but returned null items"));
    }
    // SAFETY: the plugin returned `count` matrices valid until release.
    let items = unsafe { std::slice::from_raw_parts(out.items, out.count) };
    items
        .iter()
        .map(|m| {
            let len = m.rows.checked_mul(m.cols).ok_or_else(|| {
                PluginError::internal(format!("matrix of {}×{} overflows", m.rows, m.cols))
            })?;
            let data = if len == 0 {
                Vec::new()
            } else if m.data.is_null() {
                return Err(PluginError::internal("a non-empty output matrix has null data"));
            } else {
                // SAFETY: `rows * cols` values valid until release.
                unsafe { std::slice::from_raw_parts(m.data, len) }.to_vec()
            };
            Ok(FeatureMatrix { rows: m.rows, cols: m.cols, data })
        })
        .collect()
}

/// A model backend living in a loaded library.
pub(crate) struct DynamicBackend {
    lib: Arc<Library>,
    vt: BackendVTable,
    handle: NonNull<RawBackend>,
    spec: BackendSpec,
}

// SAFETY: see `DynamicExtractor`.
unsafe impl Send for DynamicBackend {}
// SAFETY: see `DynamicExtractor`.
unsafe impl Sync for DynamicBackend {}

impl Drop for DynamicBackend {
    fn drop(&mut self) {
        if let Some(destroy) = self.vt.destroy {
            // SAFETY: live handle, destroyed once, no call in flight.
            unsafe { destroy(self.handle.as_ptr()) };
        }
    }
}

impl ModelBackend for DynamicBackend {
    fn spec(&self) -> &BackendSpec {
        &self.spec
    }

    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, PluginError> {
        let Some(run) = self.vt.run else {
            return Err(PluginError::internal("checked table lost a function"));
        };
        batch.check()?;
        let raw = RawBatch {
            data: batch.data.as_ptr(),
            n: batch.n,
            t: batch.t,
            f: batch.f,
            lengths: batch.lengths.as_ptr(),
        };
        let mut out = vec![0.0f32; batch.n * self.spec.num_classes];
        // SAFETY: a live handle; the batch and the output buffer outlive the call.
        let rc = unsafe { run(self.handle.as_ptr(), &raw, out.as_mut_ptr(), out.len()) };
        if rc != abi::STATUS_OK {
            return Err(self.lib.error(rc));
        }
        Ok(out)
    }
}
