//! The Node client (`clients/node`) against the real server: its own tests, run with
//! `node --test` as a subprocess against a server on 127.0.0.1:0.
//!
//! `scripts/install-node-clients.sh` (which `scripts/test.sh` runs) installs the client's
//! dependencies and names `PROSODIA_NODE` (the node binary, else `node` on `PATH`) and
//! `PROSODIA_NODE_DIR` (the package, else `clients/node` in this checkout). Without node or
//! without the installed dependencies the test prints why and passes without running; a
//! binary that is named but missing fails.
//!
//! As in `clients.rs` (whose scaffolding is copied here, trimmed, so the two files can change
//! independently), models are served by a small in-test backend that returns fixed
//! probabilities (argmax "happy"), so this checks the client and the wire, not a network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prosodia_dsp::FeatureConfig;
use prosodia_server::repository::ModelManifest;
use prosodia_server::runner::{Backend, Batch, ModelRunner, RunnerError, TensorInfo};
use prosodia_server::{Config, ServerBuilder};
use prosodia_tests::shared_dir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const LABELS: [&str; 6] = ["angry", "disgust", "fear", "happy", "neutral", "sad"];
/// The probabilities the fixed runner returns.
const PROBS: [f32; 6] = [0.1, 0.05, 0.05, 0.6, 0.1, 0.1];
/// The argmax of [`PROBS`].
const EXPECTED_LABEL: &str = "happy";
const DEFAULT_MODEL: &str = "frames-model";
/// How long the node run may take before it is killed and the test fails.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// The server tests of `clients/node/tests/server.test.js` that must run and pass; a
/// renamed or skipped one fails this test rather than going unnoticed.
const SERVER_TESTS: [&str; 9] = [
    "health reports SERVING for the server and the Emotion service",
    "listModels lists the repository with its default",
    "classify a TESS fixture, by path and by bytes",
    "every bad fixture is refused with INVALID_ARGUMENT and a message",
    "an unknown model is NOT_FOUND, naming it",
    "extractFeatures gives 46 named finite features",
    "stream a TESS fixture as raw PCM chunks",
    "a stream with a bad window is refused with INVALID_ARGUMENT",
    "the example prints one line per file and fails for a bad one",
];

struct FixedRunner;

impl ModelRunner for FixedRunner {
    fn inputs(&self) -> Vec<TensorInfo> {
        vec![TensorInfo { name: "features".into(), dtype: "f32".into(), shape: vec![-1, -1, -1] }]
    }
    fn outputs(&self) -> Vec<TensorInfo> {
        vec![TensorInfo { name: "probabilities".into(), dtype: "f32".into(), shape: vec![-1, 6] }]
    }
    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, RunnerError> {
        Ok(PROBS.repeat(batch.n))
    }
}

struct FixedBackend;

impl Backend for FixedBackend {
    fn name(&self) -> &str {
        "fixed"
    }
    fn version(&self) -> &str {
        "test"
    }
    fn load(&self, _: &Path, _: &ModelManifest) -> Result<Box<dyn ModelRunner>, RunnerError> {
        Ok(Box::new(FixedRunner))
    }
}

/// Writes `<root>/<name>/<version>/` for the fixed backend, with a `[streaming]` section.
fn write_model(root: &Path, name: &str, version: u32) {
    let dir = root.join(name).join(version.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.onnx"), b"not a real network").unwrap();
    std::fs::write(dir.join("features.toml"), FeatureConfig::seed().to_toml().unwrap()).unwrap();
    let labels: Vec<String> = LABELS.iter().map(|l| format!("{l:?}")).collect();
    std::fs::write(
        dir.join("model.toml"),
        format!(
            "labels = [{}]\nbackend = \"fixed\"\nextractor = \"frames\"\n\
             description = \"test model\"\n[streaming]\nwindow_seconds = 2.0\nhop_seconds = 0.5\n",
            labels.join(", ")
        ),
    )
    .unwrap();
}

/// The real server on 127.0.0.1:0 in its own runtime, so the test thread can block on the
/// node subprocess while it serves.
struct TestServer {
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<prosodia_server::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), DEFAULT_MODEL, 1);
        write_model(dir.path(), DEFAULT_MODEL, 2);
        let config = Config {
            models: Some(dir.path().to_path_buf()),
            default_model: Some(DEFAULT_MODEL.into()),
            workers: 2,
            ..Config::default()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = ServerBuilder::new(config).backend(Arc::new(FixedBackend));
        let task = runtime.spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Self { addr, runtime, stop: Some(stop), task: Some(task), _dir: dir }
    }

    /// Stops the server and checks it shut down cleanly.
    fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            s.send(()).unwrap();
        }
        if let Some(t) = self.task.take() {
            self.runtime.block_on(t).unwrap().unwrap();
        }
    }
}

/// Runs `cmd`, killing it and failing the test after [`CLIENT_TIMEOUT`]: (success, stdout,
/// stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            r.read_to_string(&mut s).map(|_| s)
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CLIENT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} ran longer than {CLIENT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.success(), out.join().unwrap().unwrap(), err.join().unwrap().unwrap())
}

/// The node binary: `PROSODIA_NODE`, else `node` on `PATH`; `None` (after printing why) if
/// there is none.
fn node() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PROSODIA_NODE").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "PROSODIA_NODE={} does not exist", path.display());
        return Some(path);
    }
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("node"))
        .find(|p| p.is_file());
    if found.is_none() {
        println!(
            "SKIPPED: PROSODIA_NODE is not set and there is no node on PATH; \
             run scripts/install-node-clients.sh (scripts/test.sh does)"
        );
    }
    found
}

/// The client package with its dependencies installed; `None` (after printing why) if they
/// are not.
fn package_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PROSODIA_NODE_DIR").filter(|p| !p.is_empty()).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/node"),
        PathBuf::from,
    );
    for dep in ["@grpc/grpc-js", "@grpc/proto-loader"] {
        if !dir.join("node_modules").join(dep).join("package.json").is_file() {
            println!(
                "SKIPPED: {dep} is not installed in {}; run scripts/install-node-clients.sh \
                 (scripts/test.sh does)",
                dir.display()
            );
            return None;
        }
    }
    Some(dir)
}

/// A count from the TAP summary (`# pass 12`).
fn tap_count(tap: &str, key: &str) -> usize {
    let prefix = format!("# {key} ");
    tap.lines()
        .filter(|l| !l.starts_with(' '))
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("node --test printed no '# {key} N' line"))
}

#[test]
fn node_client_tests_pass_against_the_real_server() {
    let Some(node) = node() else { return };
    let Some(dir) = package_dir() else { return };
    let server = TestServer::start();
    let (success, stdout, stderr) = run(Command::new(&node)
        .args(["--test", "--test-reporter=tap"])
        .current_dir(&dir)
        .env("PROSODIA_ADDR", server.addr.to_string())
        .env("PROSODIA_EXPECT_LABEL", EXPECTED_LABEL)
        .env("PROSODIA_SHARED", shared_dir()));
    // Shown with --nocapture.
    println!("{stdout}{stderr}");
    assert!(success, "the Node client tests failed");
    assert_eq!(tap_count(&stdout, "fail"), 0);
    assert_eq!(tap_count(&stdout, "skipped"), 0, "Node tests skipped though a server was given");
    assert_eq!(tap_count(&stdout, "cancelled"), 0);
    assert!(tap_count(&stdout, "pass") > SERVER_TESTS.len());
    // Every server test reported its own passing line (a nested `ok N - name`), not a skip.
    for name in SERVER_TESTS {
        let passed = stdout.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("ok ") && l.ends_with(&format!(" - {name}"))
        });
        assert!(passed, "the Node test {name:?} did not pass (or did not run)");
    }
    server.stop();
}
