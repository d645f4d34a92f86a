//! The crate's error type.

use std::fmt;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The ONNX Runtime library could not be loaded (missing, unreadable, too old), or a
    /// requested execution provider is not available in it.
    Unavailable,
    /// The model file could not be read.
    Io,
    /// The model is not valid ONNX, or does not follow the Prosodia model contract.
    InvalidModel,
    /// The configuration is invalid.
    InvalidConfig,
    /// The batch does not fit the model: wrong shape, width, lengths or values.
    InvalidInput,
    /// Inference itself failed.
    Inference,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Unavailable => "ONNX Runtime unavailable",
            ErrorKind::Io => "I/O error",
            ErrorKind::InvalidModel => "invalid model",
            ErrorKind::InvalidConfig => "invalid configuration",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Inference => "inference failed",
        })
    }
}

/// An error from the ONNX Runtime backend: a kind plus a message with the details.
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
