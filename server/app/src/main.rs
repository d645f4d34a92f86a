//! The `prosodia-server` binary: reads the configuration, starts logging, binds the listen
//! address and serves until SIGINT or SIGTERM, then drains for at most
//! `shutdown_grace_seconds` and exits.

use anyhow::Context;
use clap::Parser;
use prosodia_server::{Args, Config, ServerBuilder, telemetry};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = Config::load(&args)?;
    telemetry::init(&config)?;
    if config.models.is_none() {
        config.models = bundled_models();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        ServerBuilder::new(config).serve(listener, shutdown_signal()).await?;
        anyhow::Ok(())
    });
    // `serve` has already waited out the shutdown grace period: work still running (requests
    // abandoned after it) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}

/// The repository to serve when none is configured: `./models` when run from a checkout (the
/// bundled default model lives there), else the checkout this binary was built from.
fn bundled_models() -> Option<std::path::PathBuf> {
    let built_from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let found = [std::path::PathBuf::from("models"), built_from].into_iter().find(|p| p.is_dir());
    match &found {
        Some(dir) => {
            tracing::info!(models = %dir.display(), "no --models given; serving the bundled repository")
        }
        None => tracing::warn!(
            "no --models given and no bundled models/ folder found; Classify needs a model"
        ),
    }
    found
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT"),
        () = term => tracing::info!("received SIGTERM"),
    }
}
