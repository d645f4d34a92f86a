//! `prosodia classify` and `prosodia stream` end to end: the real binary against a real
//! server on 127.0.0.1:0 serving an in-test model with fixed probabilities.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use prosodia_server::repository::ModelManifest;
use prosodia_server::runner::{Backend, Batch, ModelRunner, RunnerError, TensorInfo};
use prosodia_server::{Config, ServerBuilder};
use serde_json::Value;

fn shared() -> PathBuf {
    std::env::var_os("PROSODIA_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

struct Fixed;

impl ModelRunner for Fixed {
    fn inputs(&self) -> Vec<TensorInfo> {
        Vec::new()
    }
    fn outputs(&self) -> Vec<TensorInfo> {
        Vec::new()
    }
    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, RunnerError> {
        Ok([0.1, 0.7, 0.2].repeat(batch.n))
    }
}

impl Backend for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }
    fn version(&self) -> &str {
        "test"
    }
    fn load(&self, _: &Path, _: &ModelManifest) -> Result<Box<dyn ModelRunner>, RunnerError> {
        Ok(Box::new(Fixed))
    }
}

/// Starts a server with one model, `m`, whose label is always "calm"; returns its URL.
async fn server(dir: &Path) -> String {
    server_on(dir, "127.0.0.1:0").await
}

/// [`server`] on `addr`.
async fn server_on(dir: &Path, addr: &str) -> String {
    let v = dir.join("m").join("1");
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("model.onnx"), b"-").unwrap();
    std::fs::write(v.join("features.toml"), prosodia_dsp::FeatureConfig::seed().to_toml().unwrap())
        .unwrap();
    std::fs::write(
        v.join("model.toml"),
        "labels = [\"angry\", \"calm\", \"sad\"]\nbackend = \"fixed\"\n",
    )
    .unwrap();
    let config = Config { models: Some(dir.to_path_buf()), workers: 2, ..Config::default() };
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        ServerBuilder::new(config).backend(Arc::new(Fixed)).serve(listener, std::future::pending()),
    );
    format!("http://{addr}")
}

async fn prosodia(args: Vec<String>) -> (i32, Vec<Value>, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_prosodia")).args(&args).output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (out.status.code().unwrap_or(-1), lines, String::from_utf8(out.stderr).unwrap())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_prints_one_line_per_file_and_fails_for_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let url = server(dir.path()).await;
    let good = shared().join("fixtures/tess/OAF_back_angry.wav");
    let bad = shared().join("fixtures/bad/text.wav");
    let args = ["classify", "--server", &url, good.to_str().unwrap(), bad.to_str().unwrap()];
    let (code, lines, stderr) = prosodia(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(code, 1, "one file failed: {stderr}");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["label"], "calm");
    assert_eq!(lines[0]["model"], "m");
    assert!(lines[0]["scores"]["calm"].as_f64().unwrap() > 0.6);
    assert_eq!(lines[1]["code"], "InvalidArgument");
    assert!(lines[1]["error"].as_str().unwrap().contains("text"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_prints_windows_utterances_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let url = server(dir.path()).await;
    let good = shared().join("fixtures/tess/OAF_back_happy.wav");
    let args = [
        "stream",
        "--server",
        &url,
        "--fast",
        "--window",
        "1.0",
        "--hop",
        "0.5",
        good.to_str().unwrap(),
    ];
    let (code, lines, stderr) = prosodia(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(code, 0, "{stderr}");
    let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    // 2.0009 s of audio: windows start at 0.0, 0.5 and 1.0 (the last ends at 2.0 s).
    assert_eq!(kinds.iter().filter(|k| **k == "window").count(), 3, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "utterance").count(), 1, "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"summary"));
    let summary = lines.last().unwrap();
    assert_eq!(summary["label"], "calm");
    assert_eq!(summary["utterances"], 1);
    assert!((summary["audio_seconds"].as_f64().unwrap() - 2.0).abs() < 0.01);

    // An unknown model ends the stream with NOT_FOUND and exit code 1.
    let args = ["stream", "--server", &url, "--fast", "--model", "nope", good.to_str().unwrap()];
    let (code, lines, _) = prosodia(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(code, 1);
    assert_eq!(lines.last().unwrap()["code"], "NotFound");
}

/// A loopback address where nothing listens (bound, then released).
fn unused_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn retry_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("Unavailable") && l.contains("; retry ")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_retries_an_unavailable_server_as_many_times_as_told() {
    let url = format!("http://{}", unused_addr());
    let good = shared().join("fixtures/tess/OAF_back_angry.wav");
    for (retries, expected) in [("2", 2), ("0", 0)] {
        let args = ["classify", "--server", &url, "--retries", retries, good.to_str().unwrap()];
        let (code, lines, stderr) = prosodia(args.iter().map(|s| s.to_string()).collect()).await;
        println!("--retries {retries}:\n{stderr}");
        assert_eq!(code, 2, "no server: {stderr}");
        assert!(lines.is_empty());
        let retried = retry_lines(&stderr);
        assert_eq!(retried.len(), expected, "--retries {retries}: {retried:?}");
        for (n, line) in retried.iter().enumerate() {
            assert!(line.contains(&format!("; retry {} in ", n + 1)), "{line}");
        }
        assert!(stderr.contains(&format!("connecting to {url}")), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_succeeds_when_the_server_comes_up_during_the_retries() {
    use std::io::{BufRead, BufReader};
    let addr = unused_addr();
    let good = shared().join("fixtures/tess/OAF_back_angry.wav");
    let mut child = Command::new(env!("CARGO_BIN_EXE_prosodia"))
        .args(["classify", "--server", &format!("http://{addr}"), "--retries", "10"])
        .arg(&good)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Start the server once the client has been refused and says it will retry.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        (line, stderr)
    });
    let (first, mut stderr) = first.await.unwrap();
    assert!(first.contains("; retry 1 in "), "the client did not retry: {first:?}");
    let dir = tempfile::tempdir().unwrap();
    server_on(dir.path(), &addr).await;
    let out = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
        let out = child.wait_with_output().unwrap();
        (out, rest)
    });
    let (out, rest) = out.await.unwrap();
    println!("{first}{rest}");
    assert!(out.status.success(), "{first}{rest}");
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["label"], "calm", "{line}");
}
