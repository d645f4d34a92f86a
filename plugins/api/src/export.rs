//! The generic `extern "C"` shims behind [`export_plugin!`](crate::export_plugin).
//!
//! Each shim is generic over the plugin type, so a Rust plugin gets a complete function
//! table by naming its type; every shim goes through [`wrap`], so errors
//! become codes and panics are contained. Handles are `Box`es turned into raw pointers;
//! outputs own their matrices until `release_output`. [`live_objects`] counts both, per
//! copy of this crate (one per plugin library).

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::abi::{
    ABI_MAJOR, ABI_MINOR, BackendInfo, BackendVTable, ExtractorInfo, ExtractorVTable,
    FeatureOutput, PluginDescriptor, RawBackend, RawBatch, RawExtractor, RawF32Slice, RawMatrix,
    RawStr, TensorInfo,
};
use crate::traits::{BackendPlugin, ExtractorPlugin};
use crate::types::{
    BackendSpec, Batch, ExtractorSpec, FeatureMatrix, PluginError, PluginKind, TensorSpec,
    check_batch,
};
use crate::wrap::{last_error, wrap, wrap_void};

static LIVE_OBJECTS: AtomicU64 = AtomicU64::new(0);

/// Live handles plus unreleased outputs created through these shims (in this library).
pub fn live_objects() -> u64 {
    LIVE_OBJECTS.load(Ordering::SeqCst)
}

extern "C" fn live_objects_c() -> u64 {
    live_objects()
}

/// Reads a borrowed string argument.
///
/// # Safety
/// `s` must satisfy [`RawStr::as_str`]'s contract for the duration of the call.
unsafe fn arg_str<'a>(s: RawStr, what: &str) -> Result<&'a str, PluginError> {
    // SAFETY: forwarded from the caller.
    unsafe { s.as_str() }
        .map_err(|e| PluginError::invalid_argument(format!("{what} is not UTF-8: {e}")))
}

fn null(what: &str) -> PluginError {
    PluginError::invalid_argument(format!("{what} is a null pointer"))
}

struct ExtractorBox<T> {
    inner: T,
    spec: ExtractorSpec,
    names: Vec<RawStr>,
}

struct OutputBox {
    _matrices: Vec<FeatureMatrix>,
    views: Vec<RawMatrix>,
}

unsafe extern "C" fn extractor_create<T: ExtractorPlugin>(
    config_toml: RawStr,
    out: *mut *mut RawExtractor,
) -> i32 {
    wrap(|| {
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: the host passes a valid string for the duration of the call.
        let config = unsafe { arg_str(config_toml, "configuration") }?;
        let inner = T::create(config)?;
        let spec = inner.spec().clone();
        // The names point into `spec`'s heap buffers, which do not move with the box.
        let names = spec.columns.iter().map(|c| RawStr::borrowed(c)).collect();
        let boxed = Box::new(ExtractorBox { inner, spec, names });
        LIVE_OBJECTS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: `out` is non-null and points to writable storage per the ABI contract.
        unsafe { *out = Box::into_raw(boxed).cast() };
        Ok(())
    })
}

unsafe extern "C" fn extractor_destroy<T: ExtractorPlugin>(handle: *mut RawExtractor) {
    wrap_void(|| {
        if !handle.is_null() {
            // SAFETY: `handle` came from `extractor_create::<T>` and is destroyed once.
            drop(unsafe { Box::from_raw(handle.cast::<ExtractorBox<T>>()) });
            LIVE_OBJECTS.fetch_sub(1, Ordering::SeqCst);
        }
    });
}

unsafe extern "C" fn extractor_info<T: ExtractorPlugin>(
    handle: *const RawExtractor,
    out: *mut ExtractorInfo,
) -> i32 {
    wrap(|| {
        if handle.is_null() || out.is_null() {
            return Err(null("handle or out"));
        }
        // SAFETY: a live handle from `extractor_create::<T>`.
        let this = unsafe { &*handle.cast::<ExtractorBox<T>>() };
        let info = ExtractorInfo {
            sample_rate: this.spec.sample_rate,
            layout: this.spec.layout.as_raw(),
            width: this.names.len(),
            column_names: this.names.as_ptr(),
        };
        // SAFETY: `out` is non-null and writable.
        unsafe { out.write(info) };
        Ok(())
    })
}

unsafe extern "C" fn extractor_extract<T: ExtractorPlugin>(
    handle: *const RawExtractor,
    utterances: *const RawF32Slice,
    count: usize,
    sample_rate: u32,
    out: *mut FeatureOutput,
) -> i32 {
    wrap(|| {
        if handle.is_null() || out.is_null() {
            return Err(null("handle or out"));
        }
        if utterances.is_null() && count > 0 {
            return Err(null("utterances"));
        }
        // SAFETY: a live handle from `extractor_create::<T>`.
        let this = unsafe { &*handle.cast::<ExtractorBox<T>>() };
        let raw: &[RawF32Slice] =
            if count == 0 { &[] } else { unsafe { std::slice::from_raw_parts(utterances, count) } };
        let mut batch = Vec::with_capacity(count);
        for (i, u) in raw.iter().enumerate() {
            if u.len == 0 {
                batch.push(&[][..]);
            } else if u.ptr.is_null() {
                return Err(null(&format!("utterance {i}")));
            } else {
                // SAFETY: the host passes `len` readable samples valid for the call.
                batch.push(unsafe { std::slice::from_raw_parts(u.ptr, u.len) });
            }
        }
        check_batch(&this.spec, &batch, sample_rate)?;
        let matrices = this.inner.extract(&batch, sample_rate)?;
        let views = matrices
            .iter()
            .map(|m| RawMatrix { data: m.data.as_ptr(), rows: m.rows, cols: m.cols })
            .collect::<Vec<_>>();
        let boxed = Box::new(OutputBox { _matrices: matrices, views });
        let output = FeatureOutput {
            items: boxed.views.as_ptr(),
            count: boxed.views.len(),
            owner: Box::into_raw(boxed).cast::<c_void>(),
        };
        LIVE_OBJECTS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: `out` is non-null and writable.
        unsafe { out.write(output) };
        Ok(())
    })
}

unsafe extern "C" fn extractor_release_output(
    _handle: *const RawExtractor,
    out: *mut FeatureOutput,
) {
    wrap_void(|| {
        if out.is_null() {
            return;
        }
        // SAFETY: `out` was filled by `extractor_extract` and is released once.
        let output = unsafe { &mut *out };
        if !output.owner.is_null() {
            drop(unsafe { Box::from_raw(output.owner.cast::<OutputBox>()) });
            LIVE_OBJECTS.fetch_sub(1, Ordering::SeqCst);
        }
        *output = FeatureOutput::EMPTY;
    });
}

/// The function table of extractor `T` (used by [`plugin_descriptor!`](crate::plugin_descriptor)).
pub const fn extractor_vtable<T: ExtractorPlugin>() -> ExtractorVTable {
    ExtractorVTable {
        struct_size: size_of::<ExtractorVTable>(),
        create: Some(extractor_create::<T>),
        destroy: Some(extractor_destroy::<T>),
        info: Some(extractor_info::<T>),
        extract: Some(extractor_extract::<T>),
        release_output: Some(extractor_release_output),
    }
}

/// The descriptor of extractor `T` pointing at `vtable`.
pub const fn extractor_descriptor<T: ExtractorPlugin>(
    vtable: &'static ExtractorVTable,
) -> PluginDescriptor {
    PluginDescriptor {
        abi_major: ABI_MAJOR,
        abi_minor: ABI_MINOR,
        kind: PluginKind::FeatureExtractor.as_raw(),
        reserved: 0,
        name: RawStr::from_static(T::NAME),
        version: RawStr::from_static(T::VERSION),
        last_error: Some(last_error),
        live_objects: Some(live_objects_c),
        extractor: vtable,
        backend: std::ptr::null(),
    }
}

struct BackendBox<T> {
    inner: T,
    spec: BackendSpec,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
}

fn tensor_infos(specs: &[TensorSpec]) -> Vec<TensorInfo> {
    specs
        .iter()
        .map(|t| TensorInfo {
            name: RawStr::borrowed(&t.name),
            dtype: t.dtype.as_raw(),
            rank: u32::try_from(t.shape.len()).unwrap_or(u32::MAX),
            dims: t.shape.as_ptr(),
        })
        .collect()
}

unsafe extern "C" fn backend_load<T: BackendPlugin>(
    model_path: RawStr,
    config_toml: RawStr,
    out: *mut *mut RawBackend,
) -> i32 {
    wrap(|| {
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: the host passes valid strings for the duration of the call.
        let path = unsafe { arg_str(model_path, "model path") }?;
        let config = unsafe { arg_str(config_toml, "configuration") }?;
        let inner = T::load(Path::new(path), config)?;
        let spec = inner.spec().clone();
        // Pointers into `spec`'s heap buffers stay valid when the box moves them.
        let inputs = tensor_infos(&spec.inputs);
        let outputs = tensor_infos(&spec.outputs);
        let boxed = Box::new(BackendBox { inner, spec, inputs, outputs });
        LIVE_OBJECTS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: `out` is non-null and writable.
        unsafe { *out = Box::into_raw(boxed).cast() };
        Ok(())
    })
}

unsafe extern "C" fn backend_destroy<T: BackendPlugin>(handle: *mut RawBackend) {
    wrap_void(|| {
        if !handle.is_null() {
            // SAFETY: `handle` came from `backend_load::<T>` and is destroyed once.
            drop(unsafe { Box::from_raw(handle.cast::<BackendBox<T>>()) });
            LIVE_OBJECTS.fetch_sub(1, Ordering::SeqCst);
        }
    });
}

unsafe extern "C" fn backend_info<T: BackendPlugin>(
    handle: *const RawBackend,
    out: *mut BackendInfo,
) -> i32 {
    wrap(|| {
        if handle.is_null() || out.is_null() {
            return Err(null("handle or out"));
        }
        // SAFETY: a live handle from `backend_load::<T>`.
        let this = unsafe { &*handle.cast::<BackendBox<T>>() };
        let info = BackendInfo {
            inputs: this.inputs.as_ptr(),
            n_inputs: this.inputs.len(),
            outputs: this.outputs.as_ptr(),
            n_outputs: this.outputs.len(),
            num_classes: this.spec.num_classes,
        };
        // SAFETY: `out` is non-null and writable.
        unsafe { out.write(info) };
        Ok(())
    })
}

unsafe extern "C" fn backend_run<T: BackendPlugin>(
    handle: *const RawBackend,
    batch: *const RawBatch,
    out: *mut f32,
    out_len: usize,
) -> i32 {
    wrap(|| {
        if handle.is_null() || batch.is_null() || out.is_null() {
            return Err(null("handle, batch or out"));
        }
        // SAFETY: a live handle from `backend_load::<T>`; `batch` is valid for the call.
        let this = unsafe { &*handle.cast::<BackendBox<T>>() };
        let raw = unsafe { &*batch };
        let total = raw.n.checked_mul(raw.t).and_then(|x| x.checked_mul(raw.f));
        let Some(total) = total else {
            return Err(PluginError::invalid_input("batch shape overflows"));
        };
        if (raw.data.is_null() && total > 0) || (raw.lengths.is_null() && raw.n > 0) {
            return Err(null("batch data or lengths"));
        }
        // SAFETY: the host passes `n*t*f` values and `n` lengths valid for the call.
        let data = if total == 0 {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(raw.data, total) }
        };
        let lengths = if raw.n == 0 {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(raw.lengths, raw.n) }
        };
        let batch = Batch::new(data, raw.n, raw.t, raw.f, lengths)?;
        let expected = raw.n * this.spec.num_classes;
        if out_len != expected {
            return Err(PluginError::invalid_argument(format!(
                "output buffer holds {out_len} values, the batch needs {expected}"
            )));
        }
        let probs = this.inner.run(&batch)?;
        if probs.len() != expected {
            return Err(PluginError::internal(format!(
                "backend returned {} values for {} items × {} classes",
                probs.len(),
                raw.n,
                this.spec.num_classes
            )));
        }
        // SAFETY: `out` holds `out_len == expected` writable values.
        unsafe { std::slice::from_raw_parts_mut(out, expected) }.copy_from_slice(&probs);
        Ok(())
    })
}

/// The function table of backend `T`.
pub const fn backend_vtable<T: BackendPlugin>() -> BackendVTable {
    BackendVTable {
        struct_size: size_of::<BackendVTable>(),
        load: Some(backend_load::<T>),
        destroy: Some(backend_destroy::<T>),
        info: Some(backend_info::<T>),
        run: Some(backend_run::<T>),
    }
}

/// The descriptor of backend `T` pointing at `vtable`.
pub const fn backend_descriptor<T: BackendPlugin>(
    vtable: &'static BackendVTable,
) -> PluginDescriptor {
    PluginDescriptor {
        abi_major: ABI_MAJOR,
        abi_minor: ABI_MINOR,
        kind: PluginKind::ModelBackend.as_raw(),
        reserved: 0,
        name: RawStr::from_static(T::NAME),
        version: RawStr::from_static(T::VERSION),
        last_error: Some(last_error),
        live_objects: Some(live_objects_c),
        extractor: std::ptr::null(),
        backend: vtable,
    }
}

/// A `&'static PluginDescriptor` for a plugin type, without exporting a symbol (for plugins
/// linked into the host, and for tests).
///
/// ```
/// # use prosodia_plugin_api::*;
/// struct Silence(ExtractorSpec);
/// impl FeatureExtractor for Silence {
///     fn spec(&self) -> &ExtractorSpec { &self.0 }
///     fn extract(&self, batch: &[&[f32]], _rate: u32) -> Result<Vec<FeatureMatrix>, PluginError> {
///         Ok(batch.iter().map(|_| FeatureMatrix { rows: 1, cols: 1, data: vec![0.0] }).collect())
///     }
/// }
/// impl ExtractorPlugin for Silence {
///     const NAME: &'static str = "silence";
///     const VERSION: &'static str = "1.0.0";
///     fn create(_config: &str) -> Result<Self, PluginError> {
///         Ok(Silence(ExtractorSpec { sample_rate: 0, layout: OutputLayout::Vector, columns: vec!["zero".into()] }))
///     }
/// }
/// let descriptor = plugin_descriptor!(extractor: Silence);
/// assert_eq!(descriptor.abi_major, abi::ABI_MAJOR);
/// ```
#[macro_export]
macro_rules! plugin_descriptor {
    (extractor: $ty:ty) => {{
        static VTABLE: $crate::abi::ExtractorVTable = $crate::export::extractor_vtable::<$ty>();
        static DESCRIPTOR: $crate::abi::PluginDescriptor =
            $crate::export::extractor_descriptor::<$ty>(&VTABLE);
        &DESCRIPTOR
    }};
    (backend: $ty:ty) => {{
        static VTABLE: $crate::abi::BackendVTable = $crate::export::backend_vtable::<$ty>();
        static DESCRIPTOR: $crate::abi::PluginDescriptor =
            $crate::export::backend_descriptor::<$ty>(&VTABLE);
        &DESCRIPTOR
    }};
}

/// Exports a plugin type from a `cdylib` as the `prosodia_plugin_v1` entry symbol.
///
/// `export_plugin!(extractor: MyExtractor);` for an [`ExtractorPlugin`], or
/// `export_plugin!(backend: MyBackend);` for a [`BackendPlugin`]. The plugin crate itself
/// needs no `unsafe` code.
///
/// Invoke it once, in a crate whose only `crate-type` is `"cdylib"`. In an rlib the
/// `#[no_mangle]` entry symbol is linked into every binary that depends on the crate, so a
/// server linking two built-in plugins would fail with a duplicate `prosodia_plugin_v1`. To
/// ship a plugin both ways, keep the type in an rlib crate (registered as a built-in with
/// `prosodia_plugin_host::Builtin`) and export it from a thin cdylib crate, as
/// `plugins/features-cpu/cdylib` does.
#[macro_export]
macro_rules! export_plugin {
    ($kind:ident : $ty:ty) => {
        /// The Prosodia plugin entry point (ABI v1).
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn prosodia_plugin_v1() -> *const $crate::abi::PluginDescriptor {
            $crate::plugin_descriptor!($kind: $ty)
        }
    };
}
