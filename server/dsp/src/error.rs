//! The one error type of the DSP crate.

use std::fmt;

/// What went wrong, in a form callers can match on (the server maps these to gRPC codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The bytes are not in any container or codec we decode (or one we refuse by name).
    UnsupportedFormat,
    /// The container or stream is recognised but broken: truncated, lying header, bad field.
    Malformed,
    /// The input decodes to no samples at all.
    NoAudio,
    /// The samples contain NaN or infinity.
    NonFiniteSamples,
    /// The audio is longer than the configured limit.
    TooLong,
    /// The audio is too short for the requested analysis.
    TooShort,
    /// A feature configuration or argument is out of range or inconsistent.
    InvalidConfig,
    /// An internal component (resampler, FFT planner) failed in a way the caller cannot fix.
    Internal,
}

impl ErrorKind {
    /// A short stable name, used as a prefix in messages and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnsupportedFormat => "unsupported format",
            ErrorKind::Malformed => "malformed audio",
            ErrorKind::NoAudio => "no audio",
            ErrorKind::NonFiniteSamples => "non-finite samples",
            ErrorKind::TooLong => "audio too long",
            ErrorKind::TooShort => "audio too short",
            ErrorKind::InvalidConfig => "invalid configuration",
            ErrorKind::Internal => "internal error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from decoding, preprocessing or feature extraction: a kind plus a message that
/// names the problem in words a client can act on.
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

    /// The kind, for matching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
