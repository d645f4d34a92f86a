//! The crate's error type and its mapping onto the plugin ABI's codes.

use prosodia_plugin_api::{ErrorCode, PluginError};

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No CUDA driver, no GPU, or no NVRTC: the extractor cannot run on this machine.
    Unavailable,
    /// The configuration asks for something this extractor does not do.
    Unsupported,
    /// The configuration is invalid.
    InvalidConfig,
    /// The audio cannot be processed (too short, not finite, wrong rate).
    InvalidInput,
    /// NVRTC rejected a kernel.
    Compile,
    /// A CUDA call failed.
    Device,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorKind::Unavailable => "CUDA unavailable",
            ErrorKind::Unsupported => "unsupported by the CUDA extractor",
            ErrorKind::InvalidConfig => "invalid configuration",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Compile => "kernel compilation failed",
            ErrorKind::Device => "CUDA error",
        })
    }
}

/// An error from the CUDA extractor: a kind plus a message with the details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The details, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<Error> for PluginError {
    /// Unavailable and unsupported both become [`ErrorCode::Unsupported`], as the ONNX
    /// Runtime backend reports a missing runtime library: the host then keeps another
    /// extractor.
    fn from(e: Error) -> Self {
        let code = match e.kind {
            ErrorKind::Unavailable | ErrorKind::Unsupported => ErrorCode::Unsupported,
            ErrorKind::InvalidConfig => ErrorCode::InvalidArgument,
            ErrorKind::InvalidInput => ErrorCode::InvalidInput,
            ErrorKind::Compile | ErrorKind::Device => ErrorCode::Internal,
        };
        PluginError::new(code, e.to_string())
    }
}
