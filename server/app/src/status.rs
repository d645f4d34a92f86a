//! The one place where errors become gRPC statuses.
//!
//! Services return [`crate::Error`] internally and call `?` at the RPC edge, which goes through
//! the `From` impl below. Messages name the problem in words the client can act on; internal
//! details stay in the server log.

use prosodia_dsp::ErrorKind;
use tonic::{Code, Status};

use crate::error::Error;
use crate::runner::RunnerErrorKind;

/// The gRPC code for an error.
pub fn code(err: &Error) -> Code {
    match err {
        Error::Dsp(e) => match e.kind() {
            ErrorKind::TooLong => Code::ResourceExhausted,
            ErrorKind::Internal => Code::Internal,
            // Everything else is about the audio or a request field (raw PCM format): the
            // client can fix it.
            _ => Code::InvalidArgument,
        },
        Error::InvalidRequest(_) => Code::InvalidArgument,
        Error::NotFound(_) => Code::NotFound,
        Error::ModelUnavailable(_) | Error::Busy(_) => Code::Unavailable,
        Error::LimitExceeded(_) => Code::ResourceExhausted,
        Error::Timeout(_) => Code::DeadlineExceeded,
        Error::Cancelled(_) => Code::Cancelled,
        Error::Runner(e) => match e.kind() {
            RunnerErrorKind::InvalidInput => Code::InvalidArgument,
            RunnerErrorKind::Unsupported => Code::FailedPrecondition,
            RunnerErrorKind::Internal => Code::Internal,
        },
        Error::Unsupported(_) => Code::Unimplemented,
        Error::Unauthenticated(_) => Code::Unauthenticated,
        Error::PermissionDenied(_) => Code::PermissionDenied,
        Error::Precondition(_) | Error::Config(_) | Error::Repository(_) => {
            Code::FailedPrecondition
        }
        Error::Internal(_) => Code::Internal,
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let code = code(&err);
        if code == Code::Internal {
            tracing::error!(error = %err, "request failed");
        } else {
            tracing::info!(code = ?code, error = %err, "request refused");
        }
        Status::new(code, err.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn audio_problems_are_invalid_argument_and_length_is_resource_exhausted() {
        let e = Error::Dsp(prosodia_dsp::Error::new(ErrorKind::Malformed, "truncated header"));
        let s = Status::from(e);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("truncated header"), "{}", s.message());
        let e = Error::Dsp(prosodia_dsp::Error::new(ErrorKind::TooLong, "700 s"));
        assert_eq!(Status::from(e).code(), Code::ResourceExhausted);
        assert_eq!(code(&Error::NotFound("x".into())), Code::NotFound);
        assert_eq!(code(&Error::LimitExceeded("x".into())), Code::ResourceExhausted);
        assert_eq!(code(&Error::Timeout("x".into())), Code::DeadlineExceeded);
    }
}
