//! The server's error type. Every failure inside the server is one of these variants; only
//! [`crate::status`] turns them into gRPC statuses.

use crate::runner::RunnerError;

/// Anything that can go wrong while serving a request or starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Decoding, preprocessing or feature extraction refused the audio or failed.
    #[error(transparent)]
    Dsp(#[from] prosodia_dsp::Error),
    /// A request field is missing or out of range; the message names the field.
    #[error("{0}")]
    InvalidRequest(String),
    /// No model (or version, or plugin) of that name exists.
    #[error("{0}")]
    NotFound(String),
    /// The model exists but cannot serve now (not loaded, loading, failed to load).
    #[error("{0}")]
    ModelUnavailable(String),
    /// A model failed while running, or returned output of the wrong shape.
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// Too many requests are already waiting for a worker.
    #[error("server busy: {0}")]
    Busy(String),
    /// A per-client limit was reached: too many concurrent streams, or a stream longer than
    /// the server accepts.
    #[error("{0}")]
    LimitExceeded(String),
    /// The client went quiet for longer than the server waits (a stream's idle timeout).
    #[error("{0}")]
    Timeout(String),
    /// Nobody waits for the result any more (the request's deadline passed or its client went
    /// away), so the work stopped early; the client never sees this status.
    #[error("{0}")]
    Cancelled(String),
    /// The request is valid but the system is not in a state to perform it (e.g. reloading a
    /// built-in plugin).
    #[error("{0}")]
    Precondition(String),
    /// The call needs credentials that were missing or wrong (the admin token).
    #[error("{0}")]
    Unauthenticated(String),
    /// The call is disabled by the server's configuration; the message says how to enable it.
    #[error("{0}")]
    PermissionDenied(String),
    /// An operation the server does not support (yet).
    #[error("{0}")]
    Unsupported(String),
    /// The server configuration is invalid; the message names the key.
    #[error("{0}")]
    Config(String),
    /// The model repository or a model folder could not be read.
    #[error("{0}")]
    Repository(String),
    /// A bug or an unexpected failure of the runtime (a worker panicked, a lock was poisoned).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
