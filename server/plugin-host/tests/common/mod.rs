//! Test helpers: compile C plugins, find the Rust test plugin's cdylib.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The C example extractor's source.
pub fn energy_zcr_source() -> PathBuf {
    repo().join("plugins/examples/c_energy_zcr/energy_zcr.c")
}

/// A C test plugin in `tests/plugins/`.
pub fn test_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins").join(name)
}

/// Compiles `source` into `output` with `-D` `defines`, writing a temporary file and renaming
/// it into place so a loader never sees a half-written library.
pub fn build_c(source: &Path, output: &Path, defines: &[&str]) -> anyhow::Result<PathBuf> {
    let partial = output.with_extension("partial");
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-I"])
        .arg(repo().join("plugins/api/include"))
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg(source)
        .arg("-o")
        .arg(&partial)
        .arg("-lm")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "compiling {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, output)?;
    Ok(output.to_path_buf())
}

/// The cdylib of a Rust crate built as a dev-dependency (next to the test binary).
pub fn rust_cdylib(lib_name: &str) -> anyhow::Result<PathBuf> {
    let file = format!("lib{lib_name}.so");
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join(&file))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("{file} not found next to {}", exe.display()))
}

/// A mono test tone.
pub fn tone(rate: u32, secs: f32) -> Vec<f32> {
    (0..(rate as f32 * secs) as usize)
        .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 200.0 * i as f32 / rate as f32).sin())
        .collect()
}
