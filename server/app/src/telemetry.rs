//! Logging setup: `tracing` with an `EnvFilter`, text or JSON lines. Each RPC runs in a span
//! with its request id (see [`crate::rpc`]), so every line a request logs carries it.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::error::{Error, Result};

/// Installs the global subscriber for `config.log` (`RUST_LOG` is not read: the filter comes
/// from the configuration, `--log` or `PROSODIA_LOG`).
pub fn init(config: &Config) -> Result<()> {
    let filter = EnvFilter::try_new(&config.log)
        .map_err(|e| Error::Config(format!("log = {:?}: {e}", config.log)))?;
    // Colour codes only on a terminal: a log file or a collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = if config.log_json { builder.json().try_init() } else { builder.try_init() };
    result.map_err(|e| Error::Internal(format!("installing the log subscriber: {e}")))
}
