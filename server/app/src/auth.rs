//! Who may call the Models service's mutating calls (LoadModel, UnloadModel, ReloadPlugin).
//!
//! Three modes, from the configuration (see [`crate::config`]):
//!
//! - **Token** (`admin_token` or `admin_token_file` set): the call needs the metadata
//!   `authorization: Bearer <token>`; a missing, malformed or wrong token is UNAUTHENTICATED.
//!   The token is compared in constant time (`subtle`), so response timing does not reveal
//!   how much of a guess was right (only whether its length was).
//! - **Open** (no token, `allow_unauthenticated_admin = true`): anyone may call them; for
//!   development or a network where every client is trusted.
//! - **Closed** (the default: no token, `allow_unauthenticated_admin = false`): the calls are
//!   refused with PERMISSION_DENIED, with a message saying how to enable them.
//!
//! Read-only calls (ListModels, GetModel, ListPlugins) and the Emotion service never need a
//! token. Send the token only over TLS (`tls_cert`/`tls_key`) or a trusted network: gRPC
//! metadata is plain text otherwise.

use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;

use crate::config::{Config, Secret};
use crate::error::{Error, Result};

/// The access policy for mutating admin calls.
#[derive(Debug, Clone)]
pub enum AdminAccess {
    /// A bearer token is required.
    Token(Secret),
    /// No authentication (`allow_unauthenticated_admin = true`).
    Open,
    /// Mutating calls are disabled.
    Closed,
}

impl AdminAccess {
    /// The policy `config` asks for (reads `admin_token_file` if set).
    pub fn from_config(config: &Config) -> Result<Self> {
        match config.resolve_admin_token()? {
            Some(token) => {
                if config.allow_unauthenticated_admin {
                    tracing::warn!(
                        "admin_token is set, so allow_unauthenticated_admin = true is ignored"
                    );
                }
                Ok(Self::Token(token))
            }
            None if config.allow_unauthenticated_admin => {
                tracing::warn!(
                    "allow_unauthenticated_admin = true: anyone who can reach the server may load and unload models"
                );
                Ok(Self::Open)
            }
            None => Ok(Self::Closed),
        }
    }

    /// Checks that a request for the mutating call `rpc` (e.g. `"LoadModel"`) may proceed.
    pub fn check(&self, metadata: &MetadataMap, rpc: &str) -> Result<()> {
        let expected = match self {
            Self::Open => return Ok(()),
            Self::Closed => {
                return Err(Error::PermissionDenied(format!(
                    "{rpc} is disabled: this server has no admin token. Start it with \
                     --admin-token (or PROSODIA_ADMIN_TOKEN, admin_token, admin_token_file) and \
                     send metadata `authorization: Bearer <token>`, or set \
                     allow_unauthenticated_admin = true on a trusted network"
                )));
            }
            Self::Token(t) => t,
        };
        let Some(value) = metadata.get("authorization") else {
            return Err(Error::Unauthenticated(format!(
                "{rpc} needs the admin token: send metadata `authorization: Bearer <token>`"
            )));
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(presented) = presented else {
            return Err(Error::Unauthenticated(format!(
                "{rpc}: the authorization metadata must be `Bearer <token>`"
            )));
        };
        if bool::from(presented.as_bytes().ct_eq(expected.expose().as_bytes())) {
            Ok(())
        } else {
            Err(Error::Unauthenticated(format!("{rpc}: the admin token is not valid")))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn with_auth(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    #[test]
    fn tokens_are_checked_and_the_scheme_is_case_insensitive() {
        let access = AdminAccess::Token(Secret::new("t0ken"));
        access.check(&with_auth("Bearer t0ken"), "LoadModel").unwrap();
        access.check(&with_auth("bearer t0ken"), "LoadModel").unwrap();
        for bad in ["Bearer t0ke", "Bearer t0ken2", "Basic t0ken", "t0ken"] {
            let err = access.check(&with_auth(bad), "LoadModel").unwrap_err();
            assert!(matches!(err, Error::Unauthenticated(_)), "{bad}: {err}");
        }
        let err = access.check(&MetadataMap::new(), "LoadModel").unwrap_err();
        assert!(err.to_string().contains("Bearer"), "{err}");
        let err = AdminAccess::Closed.check(&with_auth("Bearer t0ken"), "UnloadModel").unwrap_err();
        assert!(matches!(err, Error::PermissionDenied(_)), "{err}");
        AdminAccess::Open.check(&MetadataMap::new(), "ReloadPlugin").unwrap();
    }
}
