//! The raw C ABI, version 1: constants, `#[repr(C)]` structs and function tables.
//!
//! Everything here mirrors `include/prosodia_plugin.h` field for field (a test compiles the
//! header and compares every `sizeof`/`offsetof` and constant). Rules that keep the ABI stable:
//!
//! * A library exports one symbol, [`ENTRY_SYMBOL`], of type [`EntryFn`], returning a pointer
//!   to a [`PluginDescriptor`] that lives as long as the library.
//! * The first two fields of the descriptor are the ABI major and minor version and never
//!   move. A host refuses a library whose major differs from its own or whose minor is newer.
//! * Within a major version, new fields are only appended to the end of a table, and every
//!   table starts with its own size so a host can tell which fields a plugin provides.
//! * Objects are opaque handles created and destroyed by the plugin; buffers are a pointer
//!   plus a length; every fallible call returns a status code (0 = OK, otherwise an
//!   [`crate::ErrorCode`]) and leaves a message that the host reads back on the same thread
//!   with [`PluginDescriptor::last_error`] before its next call into the plugin.
//! * Every function may be called from any thread, and `extract`/`run` may run concurrently
//!   on one handle; `destroy` is called once, after every other call on that handle returned.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_void};
use std::marker::{PhantomData, PhantomPinned};

/// ABI major version: a host only loads plugins with exactly this major version.
pub const ABI_MAJOR: u32 = 1;
/// ABI minor version: a host loads plugins with this minor version or an older one.
pub const ABI_MINOR: u32 = 0;
/// The name of the one symbol every plugin library exports.
pub const ENTRY_SYMBOL: &str = "prosodia_plugin_v1";

/// Status code of a successful call.
pub const STATUS_OK: i32 = 0;

/// [`PluginDescriptor::kind`] of a feature extractor.
pub const KIND_FEATURE_EXTRACTOR: u32 = 1;
/// [`PluginDescriptor::kind`] of a model backend.
pub const KIND_MODEL_BACKEND: u32 = 2;

/// [`ExtractorInfo::layout`]: one row per frame.
pub const LAYOUT_FRAMES: u32 = 1;
/// [`ExtractorInfo::layout`]: one row per utterance.
pub const LAYOUT_VECTOR: u32 = 2;

/// [`TensorInfo::dtype`]: 32-bit float.
pub const DTYPE_F32: u32 = 1;
/// [`TensorInfo::dtype`]: 64-bit signed integer.
pub const DTYPE_I64: u32 = 2;
/// [`TensorInfo::dtype`]: 32-bit signed integer.
pub const DTYPE_I32: u32 = 3;

/// A dimension of unknown size in [`TensorInfo::dims`] (batch, time).
pub const DIM_DYNAMIC: i64 = -1;

/// A borrowed UTF-8 string: pointer plus length in bytes, not NUL-terminated
/// (`ProsodiaStr`). A null pointer with length 0 is the empty string.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawStr {
    /// First byte, or null when `len` is 0.
    pub ptr: *const c_char,
    /// Length in bytes.
    pub len: usize,
}

impl RawStr {
    /// The empty string.
    pub const EMPTY: RawStr = RawStr { ptr: std::ptr::null(), len: 0 };

    /// Borrows a string with static lifetime (usable in statics).
    pub const fn from_static(s: &'static str) -> Self {
        RawStr { ptr: s.as_ptr().cast(), len: s.len() }
    }

    /// Borrows `s`; the result is valid only while `s` is alive and unchanged.
    pub fn borrowed(s: &str) -> Self {
        RawStr { ptr: s.as_ptr().cast(), len: s.len() }
    }

    /// Reads the string back.
    ///
    /// # Safety
    /// `ptr` must be null with `len == 0`, or point to `len` readable bytes that stay valid
    /// and unchanged for `'a`.
    pub unsafe fn as_str<'a>(self) -> Result<&'a str, std::str::Utf8Error> {
        if self.ptr.is_null() || self.len == 0 {
            return Ok("");
        }
        // SAFETY: guaranteed by the caller.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) };
        std::str::from_utf8(bytes)
    }
}

/// A borrowed slice of f32 samples (`ProsodiaF32Slice`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawF32Slice {
    /// First sample, or null when `len` is 0.
    pub ptr: *const f32,
    /// Number of samples.
    pub len: usize,
}

/// A row-major matrix owned by the plugin (`ProsodiaMatrix`): `rows * cols` floats.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawMatrix {
    /// First value, or null when the matrix is empty.
    pub data: *const f32,
    /// Rows (frames, or 1 for a vector output).
    pub rows: usize,
    /// Columns (the declared width).
    pub cols: usize,
}

/// Opaque feature-extractor handle (`ProsodiaExtractor`), created by
/// [`ExtractorVTable::create`] and released by [`ExtractorVTable::destroy`].
#[repr(C)]
pub struct RawExtractor {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Opaque model-backend handle (`ProsodiaBackend`), created by [`BackendVTable::load`] and
/// released by [`BackendVTable::destroy`].
#[repr(C)]
pub struct RawBackend {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// What an extractor declares about its output (`ProsodiaExtractorInfo`). The pointers are
/// owned by the handle and stay valid until it is destroyed.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ExtractorInfo {
    /// The sample rate the extractor expects, in Hz (0: any rate).
    pub sample_rate: u32,
    /// [`LAYOUT_FRAMES`] or [`LAYOUT_VECTOR`].
    pub layout: u32,
    /// Number of output columns.
    pub width: usize,
    /// `width` column names.
    pub column_names: *const RawStr,
}

/// The result of one `extract` call (`ProsodiaFeatureOutput`): one matrix per utterance.
/// Filled by the plugin, handed back with [`ExtractorVTable::release_output`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FeatureOutput {
    /// `count` matrices, in batch order.
    pub items: *const RawMatrix,
    /// Number of matrices (equals the batch size).
    pub count: usize,
    /// Plugin-private pointer that owns the memory.
    pub owner: *mut c_void,
}

impl FeatureOutput {
    /// An empty output for the host to pass in.
    pub const EMPTY: FeatureOutput =
        FeatureOutput { items: std::ptr::null(), count: 0, owner: std::ptr::null_mut() };
}

/// The feature-extractor function table (`ProsodiaExtractorVTable`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ExtractorVTable {
    /// `sizeof(ProsodiaExtractorVTable)` as the plugin was compiled.
    pub struct_size: usize,
    /// Creates an extractor from a TOML configuration (empty string: defaults).
    pub create:
        Option<unsafe extern "C" fn(config_toml: RawStr, out: *mut *mut RawExtractor) -> i32>,
    /// Destroys a handle and everything it owns.
    pub destroy: Option<unsafe extern "C" fn(extractor: *mut RawExtractor)>,
    /// Describes the output; the pointers stay valid for the handle's lifetime.
    pub info: Option<
        unsafe extern "C" fn(extractor: *const RawExtractor, out: *mut ExtractorInfo) -> i32,
    >,
    /// Extracts features from `count` mono utterances at `sample_rate` Hz.
    pub extract: Option<
        unsafe extern "C" fn(
            extractor: *const RawExtractor,
            utterances: *const RawF32Slice,
            count: usize,
            sample_rate: u32,
            out: *mut FeatureOutput,
        ) -> i32,
    >,
    /// Frees an output filled by a successful `extract`.
    pub release_output:
        Option<unsafe extern "C" fn(extractor: *const RawExtractor, out: *mut FeatureOutput)>,
}

/// Declaration of one model input or output tensor (`ProsodiaTensorInfo`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: RawStr,
    /// One of the `DTYPE_*` constants.
    pub dtype: u32,
    /// Number of dimensions.
    pub rank: u32,
    /// `rank` sizes; [`DIM_DYNAMIC`] for a dimension fixed only at run time.
    pub dims: *const i64,
}

/// What a backend declares (`ProsodiaBackendInfo`); pointers valid for the handle's life.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BackendInfo {
    /// Input declarations.
    pub inputs: *const TensorInfo,
    /// Number of inputs.
    pub n_inputs: usize,
    /// Output declarations.
    pub outputs: *const TensorInfo,
    /// Number of outputs.
    pub n_outputs: usize,
    /// Number of classes in the `[N, classes]` probability output.
    pub num_classes: usize,
}

/// A padded batch for a backend (`ProsodiaBatch`): `n * t * f` floats, row-major `[N, T, F]`,
/// plus the number of valid frames of each item.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawBatch {
    /// `n * t * f` values.
    pub data: *const f32,
    /// Items in the batch.
    pub n: usize,
    /// Padded frames per item.
    pub t: usize,
    /// Features per frame.
    pub f: usize,
    /// `n` valid lengths, each in `1..=t`.
    pub lengths: *const usize,
}

/// The model-backend function table (`ProsodiaBackendVTable`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BackendVTable {
    /// `sizeof(ProsodiaBackendVTable)` as the plugin was compiled.
    pub struct_size: usize,
    /// Loads a model file with a TOML configuration.
    pub load: Option<
        unsafe extern "C" fn(
            model_path: RawStr,
            config_toml: RawStr,
            out: *mut *mut RawBackend,
        ) -> i32,
    >,
    /// Destroys a handle and everything it owns.
    pub destroy: Option<unsafe extern "C" fn(backend: *mut RawBackend)>,
    /// Describes inputs and outputs; pointers stay valid for the handle's lifetime.
    pub info:
        Option<unsafe extern "C" fn(backend: *const RawBackend, out: *mut BackendInfo) -> i32>,
    /// Runs a batch, writing `n * num_classes` probabilities into the caller's buffer.
    pub run: Option<
        unsafe extern "C" fn(
            backend: *const RawBackend,
            batch: *const RawBatch,
            out: *mut f32,
            out_len: usize,
        ) -> i32,
    >,
}

/// The entry point's result (`ProsodiaPluginDescriptor`), static for the library's lifetime.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginDescriptor {
    /// [`ABI_MAJOR`] the plugin was built for. Never moves.
    pub abi_major: u32,
    /// [`ABI_MINOR`] the plugin was built for. Never moves.
    pub abi_minor: u32,
    /// [`KIND_FEATURE_EXTRACTOR`] or [`KIND_MODEL_BACKEND`].
    pub kind: u32,
    /// Zero.
    pub reserved: u32,
    /// Plugin name (the registry key).
    pub name: RawStr,
    /// Plugin version, free-form (semantic versioning recommended).
    pub version: RawStr,
    /// The message of the last failed call on the calling thread; valid until the next call
    /// into the plugin on that thread.
    pub last_error: Option<unsafe extern "C" fn() -> RawStr>,
    /// Number of live handles and unreleased outputs (for leak checks).
    pub live_objects: Option<unsafe extern "C" fn() -> u64>,
    /// The extractor table when `kind` is [`KIND_FEATURE_EXTRACTOR`], else null.
    pub extractor: *const ExtractorVTable,
    /// The backend table when `kind` is [`KIND_MODEL_BACKEND`], else null.
    pub backend: *const BackendVTable,
}

// SAFETY: a descriptor and the tables it points to are immutable statics of the library;
// the raw pointers only ever point at such read-only data.
unsafe impl Sync for PluginDescriptor {}
// SAFETY: as above.
unsafe impl Send for PluginDescriptor {}

/// The type of the [`ENTRY_SYMBOL`] function.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginDescriptor;
