//! [`OrtConfig`]: where the runtime library is, which execution provider, how many threads.

use std::path::PathBuf;

/// The environment variable naming the ONNX Runtime shared library
/// (`scripts/install-onnxruntime.sh` prints a suitable value).
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Provider {
    /// ONNX Runtime's CPU execution provider.
    #[default]
    Cpu,
    /// The CUDA execution provider on GPU `device_id`. When the loaded library has no CUDA
    /// support, loading fails with [`crate::ErrorKind::Unavailable`] if `required`, and falls
    /// back to the CPU otherwise ([`crate::OrtBackend::provider`] tells which is in use).
    Cuda {
        /// The CUDA device ordinal.
        device_id: i32,
        /// Fail rather than fall back to the CPU.
        required: bool,
    },
}

/// How to load and run a model with ONNX Runtime.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrtConfig {
    /// The ONNX Runtime shared library; `None` reads [`DYLIB_ENV`], and failing that asks the
    /// system loader for `libonnxruntime.so`. One process loads one library: the first
    /// backend created decides, and a later one naming another file fails.
    pub library_path: Option<PathBuf>,
    /// The execution provider.
    pub provider: Provider,
    /// Threads used within one operator; 0 lets ONNX Runtime choose (one per core).
    pub intra_threads: usize,
    /// Threads used to run independent operators in parallel; 0 or 1 runs them in sequence.
    pub inter_threads: usize,
    /// Sessions kept for concurrent calls (an ONNX Runtime session runs one call at a
    /// time); 0 means 1.
    pub sessions: usize,
}

/// The TOML form of [`OrtConfig`]: every key optional, unknown keys rejected.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TomlConfig {
    library_path: Option<PathBuf>,
    provider: Option<String>,
    device_id: i32,
    cuda_required: bool,
    intra_threads: usize,
    inter_threads: usize,
    sessions: usize,
}

impl OrtConfig {
    /// Parses a TOML configuration; the empty string gives the defaults.
    ///
    /// ```toml
    /// library_path = "/opt/onnxruntime/lib/libonnxruntime.so"  # default: $ORT_DYLIB_PATH
    /// provider = "cuda"        # "cpu" (default) or "cuda"
    /// device_id = 0
    /// cuda_required = false    # fail instead of falling back to the CPU
    /// intra_threads = 4        # 0: ONNX Runtime's default
    /// inter_threads = 1
    /// sessions = 2             # concurrent calls served at once
    /// ```
    pub fn from_toml(text: &str) -> Result<Self, crate::Error> {
        let invalid = |m: String| crate::Error::new(crate::ErrorKind::InvalidConfig, m);
        let raw: TomlConfig = toml::from_str(text)
            .map_err(|e| invalid(format!("bad ONNX Runtime configuration: {e}")))?;
        let provider = match raw.provider.as_deref().unwrap_or("cpu") {
            "cpu" => Provider::Cpu,
            "cuda" => Provider::Cuda { device_id: raw.device_id, required: raw.cuda_required },
            other => {
                return Err(invalid(format!(
                    "unknown provider `{other}`: expected \"cpu\" or \"cuda\""
                )));
            }
        };
        Ok(Self {
            library_path: raw.library_path,
            provider,
            intra_threads: raw.intra_threads,
            inter_threads: raw.inter_threads,
            sessions: raw.sessions,
        })
    }
}
