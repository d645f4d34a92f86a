//! Compiling C plugins with the system C compiler and locating built Rust plugins, for tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a plugin could not be built or found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The compiler could not be started.
    #[error("cannot run the C compiler {compiler:?}: {source}")]
    Spawn {
        /// The compiler command.
        compiler: String,
        /// The error from the OS.
        source: std::io::Error,
    },
    /// The compiler ran and failed.
    #[error("{compiler} failed on {source_file}:\n{stderr}")]
    Compile {
        /// The compiler command.
        compiler: String,
        /// The C file.
        source_file: PathBuf,
        /// The compiler's diagnostics.
        stderr: String,
    },
    /// Moving the library into place failed.
    #[error("installing {path}: {source}")]
    Io {
        /// The destination.
        path: PathBuf,
        /// The error from the OS.
        source: std::io::Error,
    },
    /// A Rust plugin library was not found next to the test binary.
    #[error("{0} not found next to the test binary; build the plugin crate first")]
    NotFound(String),
}

/// The directory holding `prosodia_plugin.h`.
pub fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/include")
}

/// The C example plugin's source (`plugins/examples/c_energy_zcr/energy_zcr.c`).
pub fn c_energy_zcr_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/c_energy_zcr/energy_zcr.c")
}

/// Compiles `source` into the shared library `output` with `$CC` (default `cc`), strict
/// warnings, and `-D` `defines`. The library is written next to `output` and renamed into
/// place, so a host never sees a half-written file.
pub fn build_c_plugin(
    source: &Path,
    output: &Path,
    defines: &[&str],
) -> Result<PathBuf, BuildError> {
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let partial = output.with_extension("partial");
    let mut cmd = Command::new(&compiler);
    cmd.args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-I"])
        .arg(include_dir())
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg(source)
        .arg("-o")
        .arg(&partial)
        .arg("-lm");
    let out =
        cmd.output().map_err(|source| BuildError::Spawn { compiler: compiler.clone(), source })?;
    if !out.status.success() {
        return Err(BuildError::Compile {
            compiler,
            source_file: source.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    std::fs::rename(&partial, output)
        .map_err(|source| BuildError::Io { path: output.to_path_buf(), source })?;
    Ok(output.to_path_buf())
}

/// Finds the cdylib of Rust crate `lib_name` (e.g. `prosodia_features_cpu_plugin`) built in the same
/// target directory as the running test binary (`target/<profile>/deps` or its parent).
pub fn rust_plugin_library(lib_name: &str) -> Result<PathBuf, BuildError> {
    let file =
        format!("{}{lib_name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let exe = std::env::current_exe()
        .map_err(|source| BuildError::Io { path: PathBuf::from("current_exe"), source })?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(&file))
        .find(|p| p.is_file())
        .ok_or(BuildError::NotFound(file))
}
