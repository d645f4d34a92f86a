//! The host's error type: a kind to match on plus a message that names the library, the
//! plugin and what to do about it.

use std::fmt;

use prosodia_plugin_api::{ErrorCode, PluginError};

/// What went wrong while loading, checking or calling a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HostErrorKind {
    /// Reading the plugin directory or copying a library failed.
    Io,
    /// A plugin file or directory is writable by every user; it is refused.
    InsecurePermissions,
    /// The dynamic loader could not open the library.
    Load,
    /// The library does not export `prosodia_plugin_v1`.
    NoEntrySymbol,
    /// The library was built for an ABI version this host does not speak.
    AbiVersion,
    /// The descriptor or a function table is malformed (null, missing functions, bad strings).
    InvalidDescriptor,
    /// Two libraries in the plugin directory declare the same plugin name.
    DuplicateName,
    /// No plugin of that name is registered.
    NotFound,
    /// The plugin is of the other kind (an extractor where a backend was asked for, or the
    /// reverse), or a reload changed its name or kind.
    WrongKind,
    /// The plugin cannot be reloaded (it is built in).
    NotReloadable,
    /// A freshly loaded library failed its smoke call; the old one keeps serving.
    SmokeTest,
    /// The plugin returned an error code; [`HostError::plugin_code`] has it.
    Plugin,
    /// A built-in plugin panicked (dynamic Rust plugins report [`ErrorCode::Panic`] instead).
    Panicked,
    /// The plugin's output does not match its declaration (count, width or rows).
    OutputShape,
    /// The plugin's output contains NaN or infinity.
    NonFiniteOutput,
}

impl HostErrorKind {
    /// A short stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            HostErrorKind::Io => "i/o error",
            HostErrorKind::InsecurePermissions => "insecure permissions",
            HostErrorKind::Load => "cannot load library",
            HostErrorKind::NoEntrySymbol => "no entry symbol",
            HostErrorKind::AbiVersion => "incompatible ABI version",
            HostErrorKind::InvalidDescriptor => "invalid plugin descriptor",
            HostErrorKind::DuplicateName => "duplicate plugin name",
            HostErrorKind::NotFound => "plugin not found",
            HostErrorKind::WrongKind => "wrong plugin kind",
            HostErrorKind::NotReloadable => "not reloadable",
            HostErrorKind::SmokeTest => "smoke test failed",
            HostErrorKind::Plugin => "plugin error",
            HostErrorKind::Panicked => "plugin panicked",
            HostErrorKind::OutputShape => "output does not match declaration",
            HostErrorKind::NonFiniteOutput => "non-finite plugin output",
        }
    }
}

impl fmt::Display for HostErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from the plugin host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct HostError {
    kind: HostErrorKind,
    message: String,
    plugin_code: Option<ErrorCode>,
}

impl HostError {
    /// Builds an error of `kind`.
    pub fn new(kind: HostErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), plugin_code: None }
    }

    /// A [`HostErrorKind::Plugin`] error from plugin `name`.
    pub fn from_plugin(name: &str, error: PluginError) -> Self {
        Self {
            kind: HostErrorKind::Plugin,
            message: format!("plugin {name:?}: {}: {}", error.code, error.message),
            plugin_code: Some(error.code),
        }
    }

    /// The kind, for matching.
    pub fn kind(&self) -> HostErrorKind {
        self.kind
    }

    /// The message without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The plugin's own error code, for [`HostErrorKind::Plugin`] errors.
    pub fn plugin_code(&self) -> Option<ErrorCode> {
        self.plugin_code
    }

    /// Prefixes the message with context (keeps kind and code).
    pub(crate) fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}
