//! The clients against the real server: the Python package's own tests
//! (`clients/python/tests`) and grpcurl, each run as a subprocess against a server on
//! 127.0.0.1:0.
//!
//! The tools come from `scripts/install-python-clients.sh` (which `scripts/test.sh` runs):
//! `PROSODIA_PYTHON` names the interpreter with the `prosodia` package installed,
//! `PROSODIA_GRPCURL` the grpcurl binary (else `grpcurl` on `PATH`). A test whose tool is
//! absent prints why and passes without running; a tool that is named but missing fails.
//!
//! As in `grpc.rs`, models are served by a small in-test backend that returns fixed
//! probabilities (argmax "happy"), so these tests check the clients and the wire, not a
//! trained network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prosodia_dsp::FeatureConfig;
use prosodia_server::repository::ModelManifest;
use prosodia_server::runner::{Backend, Batch, ModelRunner, RunnerError, TensorInfo};
use prosodia_server::{Config, ServerBuilder};
use prosodia_tests::{fixture, read, shared_dir};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const LABELS: [&str; 6] = ["angry", "disgust", "fear", "happy", "neutral", "sad"];
/// The probabilities the fixed runner returns.
const PROBS: [f32; 6] = [0.1, 0.05, 0.05, 0.6, 0.1, 0.1];
/// The argmax of [`PROBS`].
const EXPECTED_LABEL: &str = "happy";
const DEFAULT_MODEL: &str = "frames-model";
/// How long one client run may take before it is killed and the test fails.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

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

/// Writes `<root>/<name>/<version>/` for the fixed backend.
fn write_model(root: &Path, name: &str, version: u32, extractor: &str) {
    let dir = root.join(name).join(version.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.onnx"), b"not a real network").unwrap();
    std::fs::write(dir.join("features.toml"), FeatureConfig::seed().to_toml().unwrap()).unwrap();
    let labels: Vec<String> = LABELS.iter().map(|l| format!("{l:?}")).collect();
    std::fs::write(
        dir.join("model.toml"),
        format!(
            "labels = [{}]\nbackend = \"fixed\"\nextractor = \"{extractor}\"\n\
             description = \"test model\"\n[streaming]\nwindow_seconds = 2.0\nhop_seconds = 0.5\n",
            labels.join(", ")
        ),
    )
    .unwrap();
}

/// The real server on 127.0.0.1:0 in its own runtime, so the test thread can block on
/// subprocesses while it serves.
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
        write_model(dir.path(), DEFAULT_MODEL, 1, "frames");
        write_model(dir.path(), DEFAULT_MODEL, 2, "frames");
        write_model(dir.path(), "utt-model", 1, "utterance");
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

/// What a finished subprocess printed.
struct Output {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` (feeding it `stdin`), killing it and failing the test after
/// [`CLIENT_TIMEOUT`].
fn run(cmd: &mut Command, stdin: Option<Vec<u8>>) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let feeder = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || pipe.write_all(&bytes))
    });
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
    if let Some(f) = feeder {
        f.join().unwrap().unwrap();
    }
    Output {
        success: status.success(),
        code: status.code(),
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    }
}

/// The tool named by `env`, else (with `fallback`) the first `fallback` on `PATH`. `None`
/// (after printing why) when there is none; a named path that does not exist fails the test.
fn tool(env: &str, fallback: Option<&str>) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{env}={} does not exist", path.display());
        return Some(path);
    }
    let found = fallback.and_then(|name| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let hint = match fallback {
            Some(name) => format!("{env} is not set and there is no {name} on PATH"),
            None => format!("{env} is not set"),
        };
        println!("SKIPPED: {hint}; run scripts/install-python-clients.sh (scripts/test.sh does)");
    }
    found
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn python_client_tests_pass_against_the_real_server() {
    let Some(python) = tool("PROSODIA_PYTHON", None) else { return };
    let server = TestServer::start();
    let out = run(
        Command::new(&python)
            .args(["-m", "unittest", "discover", "-s", "tests", "-v"])
            .current_dir(repo_root().join("clients/python"))
            .env("PROSODIA_ADDR", server.addr.to_string())
            .env("PROSODIA_EXPECT_LABEL", EXPECTED_LABEL)
            .env("PROSODIA_SHARED", shared_dir())
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        None,
    );
    // unittest reports on stderr; show it with --nocapture.
    println!("{}{}", out.stdout, out.stderr);
    assert!(out.success, "the Python client tests failed (exit {:?})", out.code);

    let ran: usize = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("Ran ")?.split_whitespace().next()?.parse().ok())
        .expect("unittest printed no 'Ran N tests' line");
    assert!(ran >= 10, "only {ran} Python tests ran");
    // With a server, only streaming may skip, and only while the server lacks it (the test
    // prints "SKIP <test>: <reason>" when it skips).
    let skipped: usize = out
        .stderr
        .lines()
        .filter_map(|l| l.split("skipped=").nth(1)?.trim_end_matches(')').parse().ok())
        .next()
        .unwrap_or(0);
    let stream_skips: Vec<&str> =
        out.stderr.lines().filter(|l| l.contains("SKIP test_stream_a_tess_fixture: ")).collect();
    assert!(skipped <= 1, "{skipped} Python tests skipped though a server was given");
    if skipped == 1 {
        assert!(
            stream_skips.len() == 1 && stream_skips[0].contains("UNIMPLEMENTED"),
            "a test other than streaming-while-unimplemented skipped"
        );
        println!("NOTE: the Python stream test skipped: the server answers UNIMPLEMENTED");
    }
    server.stop();
}

/// Base64 (standard alphabet, padded), for grpcurl's JSON form of `bytes`.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_the_rfc_4648_examples() {
    let cases = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")];
    for (plain, encoded) in cases {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
}

#[test]
fn grpcurl_lists_describes_classifies_and_checks_health() {
    let Some(grpcurl) = tool("PROSODIA_GRPCURL", Some("grpcurl")) else { return };
    let server = TestServer::start();
    let addr = server.addr.to_string();
    let grpcurl = |args: &[&str], stdin: Option<Vec<u8>>| {
        let mut cmd = Command::new(&grpcurl);
        cmd.arg("-plaintext");
        let (flags, rest) = args.split_at(args.iter().position(|a| *a == "ADDR").unwrap());
        cmd.args(flags).arg(&addr).args(&rest[1..]);
        let out = run(&mut cmd, stdin);
        println!("$ grpcurl -plaintext {}\n{}{}", args.join(" "), out.stdout, out.stderr);
        out
    };

    let out = grpcurl(&["ADDR", "list"], None);
    assert!(out.success, "{}", out.stderr);
    let services: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    for service in ["prosodia.v1.Emotion", "prosodia.v1.Models", "grpc.health.v1.Health"] {
        assert!(services.contains(&service), "list misses {service}: {services:?}");
    }

    let out = grpcurl(&["ADDR", "describe", "prosodia.v1.Emotion"], None);
    assert!(out.success, "{}", out.stderr);
    assert!(out.stdout.contains("prosodia.v1.Emotion is a service"), "{}", out.stdout);
    for rpc in ["rpc Classify", "rpc StreamClassify", "rpc ExtractFeatures"] {
        assert!(out.stdout.contains(rpc), "describe misses {rpc}");
    }

    let audio = base64(&read(&fixture("tess/OAF_back_happy.wav")));
    let request = format!(r#"{{"audio":{{"encoded":"{audio}"}}}}"#);
    let out = grpcurl(&["-d", "@", "ADDR", "prosodia.v1.Emotion/Classify"], Some(request.into()));
    assert!(out.success, "{}", out.stderr);
    let reply: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(reply["label"], EXPECTED_LABEL, "{reply}");
    assert_eq!(reply["model"], DEFAULT_MODEL);
    assert_eq!(reply["modelVersion"], 2);
    let labels: Vec<&str> =
        reply["scores"].as_array().unwrap().iter().map(|s| s["label"].as_str().unwrap()).collect();
    assert_eq!(labels, LABELS);

    let request = format!(r#"{{"model":"no-such-model","audio":{{"encoded":"{audio}"}}}}"#);
    let out = grpcurl(&["-d", "@", "ADDR", "prosodia.v1.Emotion/Classify"], Some(request.into()));
    assert!(!out.success, "an unknown model was accepted");
    assert!(out.stderr.contains("Code: NotFound"), "{}", out.stderr);

    for service in ["", "prosodia.v1.Emotion"] {
        let body = format!(r#"{{"service":"{service}"}}"#);
        let out = grpcurl(&["-d", &body, "ADDR", "grpc.health.v1.Health/Check"], None);
        assert!(out.success, "{}", out.stderr);
        let reply: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(reply["status"], "SERVING", "{service:?}");
    }
    server.stop();
}
