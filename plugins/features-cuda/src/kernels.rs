//! The CUDA C sources, their entry points, and NVRTC compilation cached per GPU architecture.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, PoisonError};

use cudarc::nvrtc::{CompileOptions, Ptx};

use crate::error::{Error, ErrorKind};

/// Text prepended to every kernel file (helpers and constants).
pub const COMMON: &str = include_str!("../kernels/common.cuh");

/// One `.cu` file: its name, source and the `extern "C"` kernels it defines.
#[derive(Debug, Clone, Copy)]
pub struct KernelFile {
    /// File name under `kernels/`.
    pub name: &'static str,
    /// Its source text (without [`COMMON`]).
    pub source: &'static str,
    /// Kernel entry points it must define.
    pub entries: &'static [&'static str],
}

/// Every kernel file, in pipeline order.
pub const FILES: &[KernelFile] = &[
    KernelFile {
        name: "spectrum.cu",
        source: include_str!("../kernels/spectrum.cu"),
        entries: &["stft_power_radix2", "stft_power_dft"],
    },
    KernelFile {
        name: "mel.cu",
        source: include_str!("../kernels/mel.cu"),
        entries: &["mel_db", "utt_max", "db_floor"],
    },
    KernelFile {
        name: "cepstrum.cu",
        source: include_str!("../kernels/cepstrum.cu"),
        entries: &["dct_mfcc", "delta"],
    },
    KernelFile {
        name: "framing.cu",
        source: include_str!("../kernels/framing.cu"),
        entries: &["rms_zcr"],
    },
    KernelFile {
        name: "spectral.cu",
        source: include_str!("../kernels/spectral.cu"),
        entries: &["centroid_rolloff", "onset_flux"],
    },
    KernelFile {
        name: "assemble.cu",
        source: include_str!("../kernels/assemble.cu"),
        entries: &["copy_columns", "column_stats", "normalize_columns"],
    },
];

/// Whether the NVRTC library can be opened (`libnvrtc.so*` on the loader's search path).
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to open the library by its candidate names and closes it again.
    #[allow(unsafe_code)]
    let present = unsafe { cudarc::nvrtc::sys::is_culib_present() };
    present
}

/// NVRTC's version, when the library can be opened.
pub fn nvrtc_version() -> Option<(i32, i32)> {
    if !nvrtc_present() {
        return None;
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present (checked above); both pointers are valid for writes.
    #[allow(unsafe_code)]
    let status = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    (status == cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS).then_some((major, minor))
}

/// The virtual architecture NVRTC targets for a device of compute capability `major.minor`
/// (`compute_90` for an H100). cudarc takes a `&'static str`; the handful of distinct values
/// a process ever sees are interned once.
pub fn arch_name(major: i32, minor: i32) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let name = format!("compute_{major}{minor}");
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = names.iter().find(|n| **n == name) {
        return found;
    }
    let leaked: &'static str = Box::leak(name.into_boxed_str());
    names.push(leaked);
    leaked
}

/// Compiles one file for `arch` (`compute_XY`) to PTX. Never panics: a missing NVRTC library
/// is an [`ErrorKind::Unavailable`] error.
pub fn compile_file(file: &KernelFile, arch: &'static str) -> Result<Ptx, Error> {
    if !nvrtc_present() {
        return Err(Error::new(
            ErrorKind::Unavailable,
            "the NVRTC library (libnvrtc.so.12) is not on the loader's search path; \
             scripts/install-nvrtc.sh installs one and prints the directory for LD_LIBRARY_PATH",
        ));
    }
    let source = format!("{COMMON}\n{}", file.source);
    let options = CompileOptions {
        arch: Some(arch),
        // IEEE division and square root: the parity target is the CPU extractor.
        prec_div: Some(true),
        prec_sqrt: Some(true),
        ftz: Some(false),
        name: Some(file.name.to_string()),
        ..CompileOptions::default()
    };
    let compiled =
        catch_unwind(AssertUnwindSafe(|| cudarc::nvrtc::compile_ptx_with_opts(&source, options)));
    match compiled {
        Ok(Ok(ptx)) => Ok(ptx),
        Ok(Err(e)) => Err(Error::new(
            ErrorKind::Compile,
            format!("NVRTC failed on kernels/{} for {arch}: {e:?}", file.name),
        )),
        Err(_) => Err(Error::new(
            ErrorKind::Unavailable,
            format!("NVRTC panicked compiling kernels/{} for {arch}", file.name),
        )),
    }
}

/// Every file compiled for `arch`, from the process-wide cache when an earlier extractor on
/// a GPU of the same architecture already compiled them (NVRTC takes about a second).
pub fn compile_all(arch: &'static str) -> Result<Vec<Ptx>, Error> {
    static CACHE: Mutex<Option<HashMap<&'static str, Vec<Ptx>>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let map = cache.get_or_insert_with(HashMap::new);
    if let Some(ptx) = map.get(arch) {
        return Ok(ptx.clone());
    }
    let ptx = FILES.iter().map(|f| compile_file(f, arch)).collect::<Result<Vec<_>, _>>()?;
    map.insert(arch, ptx.clone());
    Ok(ptx)
}
