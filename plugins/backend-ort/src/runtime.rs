//! Loading the ONNX Runtime library once per process, without panicking when it is missing.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;

use crate::config::DYLIB_ENV;
use crate::{Error, ErrorKind};

/// The library file and environment of this process, once loaded.
static RUNTIME: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// The library to load: the configured path, else `$ORT_DYLIB_PATH`, else the system's.
pub(crate) fn library_path(configured: Option<&Path>) -> PathBuf {
    if let Some(path) = configured {
        return path.to_owned();
    }
    match std::env::var_os(DYLIB_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(format!(
            "{}onnxruntime{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        )),
    }
}

/// Returns the process's ONNX Runtime environment, loading `path` the first time.
///
/// `ort` loads the library into a process-wide slot and panics in some failure paths, so
/// the load runs under `catch_unwind` and every failure becomes an
/// [`ErrorKind::Unavailable`] error naming the file tried.
pub(crate) fn environment(path: &Path) -> Result<Environment, Error> {
    let mut slot = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((loaded, env)) = slot.as_ref() {
        if same_file(loaded, path) {
            return Ok(env.clone());
        }
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "ONNX Runtime is already loaded from {} in this process; cannot also load {}",
                loaded.display(),
                path.display()
            ),
        ));
    }
    let hint = format!(
        "(set {DYLIB_ENV} to the path of libonnxruntime; scripts/install-onnxruntime.sh installs one and prints it)"
    );
    if path.is_absolute() && !path.exists() {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!("ONNX Runtime library {} does not exist {hint}", path.display()),
        ));
    }
    let loaded = catch_unwind(AssertUnwindSafe(|| {
        let builder = ort::init_from(path).map_err(|e| e.to_string())?;
        builder.with_name("prosodia").build().map_err(|e| e.to_string())
    }));
    let env = match loaded {
        Ok(Ok(env)) => env,
        Ok(Err(message)) => {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("cannot load ONNX Runtime from {}: {message} {hint}", path.display()),
            ));
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("loading ONNX Runtime from {} panicked: {message} {hint}", path.display()),
            ));
        }
    };
    *slot = Some((path.to_owned(), env.clone()));
    Ok(env)
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}
