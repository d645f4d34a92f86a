//! The plugin host: finds, loads, checks and serves Prosodia plugins, built in or dynamic.
//!
//! A [`PluginHost`] keeps a registry of plugins by name. Built-in plugins (compiled into the
//! server, like the CPU feature extractor) register through the same
//! [`prosodia_plugin_api`] traits as libraries, so the host works with no plugin directory;
//! a library in the directory with the same name replaces the built-in one.
//!
//! Loading a library ([`PluginHost::load_library`], the directory scan, and
//! [`PluginHost::reload`]) always follows the same path: refuse world-writable files and
//! directories; copy the file to a fresh private path (glibc does not unload a library whose
//! thread-locals have destructors, so reopening the same path can return the old code); open
//! it; read the ABI version from the descriptor before anything else and refuse a different
//! major or a newer minor, naming both; check the descriptor and function table; run a smoke
//! call; and only then publish it. Publishing swaps an `Arc` under a lock, so new requests
//! switch atomically while running calls finish on the instance they hold; the old library is
//! unloaded when its last instance is dropped. A failed reload leaves the old version serving.
//!
//! Callers hold an [`ExtractorHandle`] or [`BackendHandle`]: a configured instance that
//! follows swaps and validates every result: the declared shapes, and finite values (a NaN
//! from a plugin becomes [`HostErrorKind::NonFiniteOutput`], never a prediction). Errors are
//! [`HostError`] with a [`HostErrorKind`]; a plugin's own error code is kept alongside.

mod error;
mod host;
mod library;
mod security;

pub use error::{HostError, HostErrorKind};
pub use host::{
    BackendHandle, Builtin, ExtractorHandle, HostBuilder, Origin, PluginHost, PluginInfo, Served,
};
