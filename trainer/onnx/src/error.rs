//! The crate's error type.

use std::fmt;

/// What went wrong while building a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A value name was empty where one is required.
    EmptyName,
    /// A value (input, initializer or node output) was defined twice.
    DuplicateName,
    /// A node input or graph output names a value that is not defined yet.
    UndefinedValue,
    /// A tensor's data length does not match its shape.
    TensorSize,
    /// The graph lacks inputs or outputs.
    Incomplete,
    /// A model configuration is invalid (zero sizes and the like).
    InvalidConfig,
}

/// An error from building a graph: a kind plus a message naming the value involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::EmptyName => "empty name",
            ErrorKind::DuplicateName => "duplicate name",
            ErrorKind::UndefinedValue => "undefined value",
            ErrorKind::TensorSize => "tensor size mismatch",
            ErrorKind::Incomplete => "incomplete graph",
            ErrorKind::InvalidConfig => "invalid configuration",
        })
    }
}
