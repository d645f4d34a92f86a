//! The admin token never reaches the logs. Every log line the process writes, at TRACE for
//! every target (the server's, tonic's, h2's and hyper's), is captured while the server starts
//! with a token and answers management calls carrying the right token, a wrong one and a
//! malformed header; then the captured text is searched for the token.
//!
//! One test per binary: it installs the process-wide log subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prosodia_proto::pb;
use prosodia_proto::pb::models_client::ModelsClient;
use prosodia_server::config::Secret;
use prosodia_server::{Config, ServerBuilder};
use tokio::sync::oneshot;
use tonic::transport::Channel;

const TOKEN: &str = "s3cret-Token-5c1f0e";

/// A log writer appending to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn with_auth<T>(message: T, value: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", value.parse().unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_is_never_logged() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .unwrap();

    let config = Config { admin_token: Some(Secret::new(TOKEN)), ..Config::default() };
    tracing::info!(?config, "starting with this configuration");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(ServerBuilder::new(config).serve(listener, async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    let mut models = ModelsClient::new(channel);
    let load = || pb::LoadModelRequest { name: "no-such-model".into(), version: 0 };
    let right = format!("Bearer {TOKEN}");
    let almost = format!("Bearer {TOKEN}x");
    let unscheme = TOKEN.to_owned();
    for value in [right.as_str(), almost.as_str(), unscheme.as_str()] {
        let status = models.load_model(with_auth(load(), value)).await.unwrap_err();
        let expected =
            if value == right { tonic::Code::NotFound } else { tonic::Code::Unauthenticated };
        assert_eq!(status.code(), expected, "{value}: {status:?}");
        assert!(
            !status.message().contains(TOKEN),
            "a status message carries the token: {status:?}"
        );
        let status = models
            .reload_plugin(with_auth(pb::ReloadPluginRequest { name: "cpu".into() }, value))
            .await
            .unwrap_err();
        assert!(
            !status.message().contains(TOKEN),
            "a status message carries the token: {status:?}"
        );
    }
    drop(models);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    let lines = logs.lines().count();
    println!("captured {lines} log lines");
    // The capture worked: the server's own lines and the transport's TRACE lines are there.
    assert!(logs.contains("prosodia-server listening"), "no server lines captured");
    assert!(logs.contains("TRACE"), "no TRACE lines captured");
    assert!(logs.contains("<redacted>"), "the configuration line is missing");
    for (i, line) in logs.lines().enumerate() {
        assert!(!line.contains(TOKEN), "log line {i} carries the token: {line}");
    }
}
