//! The trainer library's one error type.

use std::fmt;
use std::path::Path;

/// What went wrong, in a form callers can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading or writing a file or directory failed.
    Io,
    /// A corpus directory, file name or manifest line does not follow the expected layout.
    Corpus,
    /// Decoding or feature extraction failed for a clip.
    Features,
    /// A feature-cache entry is unreadable or from another format version.
    Cache,
    /// A split cannot be made (too few clips or speakers, bad fractions).
    Split,
    /// Model construction, training or loading failed.
    Model,
    /// Writing the exported model (ONNX graph, TOML metadata) failed.
    Export,
    /// An argument or configuration value is out of range or inconsistent.
    InvalidArgument,
}

impl ErrorKind {
    /// A short stable name, used as the message prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "i/o error",
            ErrorKind::Corpus => "corpus error",
            ErrorKind::Features => "feature extraction failed",
            ErrorKind::Cache => "feature cache error",
            ErrorKind::Split => "split error",
            ErrorKind::Model => "model error",
            ErrorKind::Export => "export error",
            ErrorKind::InvalidArgument => "invalid argument",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from the trainer library: a kind plus a message naming the file or value at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// Builds an error of `kind` with a human-readable `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// An [`ErrorKind::Io`] error that names the path.
    pub fn io(path: &Path, err: &std::io::Error) -> Self {
        Self::new(ErrorKind::Io, format!("{}: {err}", path.display()))
    }

    /// The kind, for matching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Attaches a path to an I/O result.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`ErrorKind::Io`] naming `path`.
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(path.as_ref(), &e))
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
