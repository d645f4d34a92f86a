//! Scale-out: `deploy/scale-out.sh` starts two replicas of this build's `prosodia-server`
//! (the bundled model) behind nginx, and one replica is killed with SIGKILL while clients
//! keep calling through nginx.
//!
//! * The Rust client's retry policy (`prosodia_proto::retry`, what `prosodia classify` uses):
//!   no unary Classify fails, calls go on succeeding after the kill, and the calls that were
//!   in flight on the dead replica (nginx answers them 502, i.e. UNAVAILABLE) were retried.
//!   A StreamClassify stream open on the killed replica ends with a non-OK status, which
//!   `retry::stream_cut_off` reports as UNAVAILABLE; it is not resent.
//! * The Python client (its service-config retry policy): the same steady unary load, no
//!   failed call.
//!
//! Needs nginx (scripts/test.sh installs Debian's when missing and root; NGINX=PATH names one)
//! and, for the Python test, `PROSODIA_PYTHON` (scripts/install-python-clients.sh); a test
//! whose tool is absent prints `SKIPPED: why` and passes without running. The tests take the
//! machine's cores for a few seconds each, so they run one at a time. Timings are printed,
//! never asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_proto::retry::{self, RetryPolicy};
use prosodia_tests::{fixture, read};
use tonic::transport::{Channel, Endpoint};

/// One test at a time: each runs two replicas and nginx on the machine's cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// Concurrent unary callers.
const CALLERS: usize = 4;
/// Steady load before the kill, and after it.
const BEFORE_KILL: Duration = Duration::from_secs(3);
const AFTER_KILL: Duration = Duration::from_secs(4);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// nginx from `NGINX`, `PATH` or /usr/sbin; `None` (after printing why) when there is none.
fn nginx() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NGINX").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "NGINX={} does not exist", path.display());
        return Some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file());
    if found.is_none() {
        println!(
            "SKIPPED: nginx is not installed (scripts/test.sh installs it with apt-get when run \
             as root; or set NGINX=PATH)"
        );
    }
    found
}

/// `n` free loopback ports (bound together, so distinct, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -{sig} {pid} failed");
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

struct Replica {
    pid: u32,
    metrics: SocketAddr,
}

/// `deploy/scale-out.sh` running: the replicas and nginx as it printed them.
struct Deployment {
    script: Child,
    replicas: Vec<Replica>,
    nginx: SocketAddr,
    prefix: PathBuf,
    _stdout: std::thread::JoinHandle<()>,
}

impl Deployment {
    fn start(nginx: &Path, replicas: usize) -> Self {
        let ports = free_ports(2 * replicas + 1);
        let (grpc, rest) = ports.split_at(replicas);
        let (metrics, front) = rest.split_at(replicas);
        let list = |ports: &[u16]| ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        let mut script = Command::new("bash")
            .arg(repo_root().join("deploy/scale-out.sh"))
            .args(["--replica-ports", &list(grpc), "--metrics-ports", &list(metrics)])
            .args(["--port", &front[0].to_string(), "--workers", "1"])
            .env("PROSODIA_SERVER_BIN", env!("CARGO_BIN_EXE_prosodia-server"))
            .env("NGINX", nginx)
            .env("KEEP", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting deploy/scale-out.sh");
        // The script's lines until `ready`, then keep draining (it prints nothing more).
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout: ChildStdout = script.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line == "ready" => break,
                Ok(line) => {
                    println!("scale-out: {line}");
                    lines.push(line);
                }
                Err(e) => {
                    let _ = script.kill();
                    panic!("deploy/scale-out.sh did not get ready ({e}); it printed {lines:?}");
                }
            }
        }
        let field = |line: &str, i: usize| line.split_whitespace().nth(i).unwrap().to_owned();
        let replicas: Vec<Replica> = lines
            .iter()
            .filter(|l| l.starts_with("replica "))
            .map(|l| Replica {
                pid: field(l, 4).parse().unwrap(),
                metrics: field(l, 6).parse().unwrap(),
            })
            .collect();
        let nginx_line = lines.iter().find(|l| l.starts_with("nginx ")).expect("no nginx line");
        assert_eq!(replicas.len(), grpc.len(), "{lines:?}");
        Self {
            script,
            replicas,
            nginx: field(nginx_line, 1).parse().unwrap(),
            prefix: PathBuf::from(field(nginx_line, 5)),
            _stdout: reader,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.nginx)
    }

    /// The replicas' answers as nginx logged them: replica address -> calls.
    fn answered_by(&self) -> BTreeMap<String, usize> {
        // The access log is flushed every second.
        std::thread::sleep(Duration::from_millis(1500));
        let log = std::fs::read_to_string(self.prefix.join("logs/access.log")).unwrap_or_default();
        let mut by = BTreeMap::new();
        for line in log.lines() {
            *by.entry(line.split_whitespace().last().unwrap_or("").to_owned()).or_default() += 1;
        }
        by
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        // SIGTERM lets the script stop its replicas and nginx and remove its directory.
        let _ = Command::new("kill").args(["-TERM", &self.script.id().to_string()]).status();
        let _ = self.script.wait();
    }
}

/// One value of a Prometheus text page from `addr`, or `None` if it cannot be read.
fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut page = String::new();
    stream.read_to_string(&mut page).ok()?;
    page.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn channel(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned()).unwrap().connect().await.unwrap()
}

/// Opens a StreamClassify stream of raw PCM (silence with a tone, at real-time pace, for up
/// to a minute) and returns what it ended with: the number of results received, and the
/// final status (`None` if it ended cleanly).
fn open_stream(
    runtime: &tokio::runtime::Runtime,
    channel: Channel,
) -> tokio::task::JoinHandle<(usize, Option<tonic::Status>)> {
    runtime.spawn(async move {
        use pb::stream_classify_request::Message;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let config = pb::StreamConfig {
            model: String::new(),
            model_version: 0,
            format: Some(pb::stream_config::Format::Raw(pb::RawFormat {
                encoding: pb::PcmEncoding::F32le as i32,
                sample_rate: 16_000,
                channels: 1,
            })),
            window_seconds: 1.0,
            hop_seconds: 0.5,
            interim_results: true,
        };
        tx.send(pb::StreamClassifyRequest { message: Some(Message::Config(config)) })
            .await
            .unwrap();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for chunk in 0..3000u32 {
                tick.tick().await;
                let data: Vec<u8> = (0..320u32)
                    .map(|i| {
                        let t = f64::from(chunk * 320 + i) / 16_000.0;
                        (0.3 * (2.0 * std::f64::consts::PI * 220.0 * t).sin()) as f32
                    })
                    .flat_map(f32::to_le_bytes)
                    .collect();
                let msg = pb::StreamClassifyRequest { message: Some(Message::Audio(data)) };
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
        });
        let mut client = EmotionClient::new(channel);
        let mut inbound =
            match client.stream_classify(tokio_stream::wrappers::ReceiverStream::new(rx)).await {
                Ok(r) => r.into_inner(),
                Err(status) => return (0, Some(status)),
            };
        let mut results = 0;
        loop {
            match inbound.message().await {
                Ok(Some(_)) => results += 1,
                Ok(None) => return (results, None),
                Err(status) => return (results, Some(status)),
            }
        }
    })
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    /// Calls that started after the kill and succeeded.
    ok_after_kill: AtomicU64,
    retries: AtomicU64,
    failures: Mutex<Vec<String>>,
    retried_because: Mutex<BTreeMap<String, u64>>,
    labels: Mutex<BTreeMap<String, u64>>,
}

#[test]
fn killing_a_replica_fails_no_unary_call_and_ends_its_stream_with_unavailable() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(nginx) = nginx() else { return };
    let started = Instant::now();
    let deployment = Deployment::start(&nginx, 2);
    println!("two replicas and nginx ready in {:.1} s", started.elapsed().as_secs_f64());
    let rt = runtime();
    let url = deployment.url();
    let audio = read(&fixture("tess/OAF_back_angry.wav"));

    // The stream first, so that exactly one replica holds it; find which from its metrics.
    let stream = open_stream(&rt, rt.block_on(channel(&url)));
    let deadline = Instant::now() + Duration::from_secs(30);
    let victim = loop {
        let holding: Vec<usize> = (0..deployment.replicas.len())
            .filter(|&i| {
                metric(deployment.replicas[i].metrics, "prosodia_active_streams") == Some(1.0)
            })
            .collect();
        if let [one] = holding[..] {
            break one;
        }
        assert!(Instant::now() < deadline, "no replica reports the stream: {holding:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let victim_pid = deployment.replicas[victim].pid;
    println!("the stream is on replica {} (pid {victim_pid})", victim + 1);

    // A steady unary load through nginx, one channel, CALLERS calls in flight.
    let tally = Arc::new(Tally::default());
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let policy = RetryPolicy::default();
    let load_end = Instant::now() + BEFORE_KILL + AFTER_KILL;
    let client = EmotionClient::new(rt.block_on(channel(&url)));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (tally, killed_at, client) = (tally.clone(), killed_at.clone(), client.clone());
            let request = pb::ClassifyRequest {
                audio: Some(pb::Audio { source: Some(pb::audio::Source::Encoded(audio.clone())) }),
                ..Default::default()
            };
            rt.spawn(async move {
                while Instant::now() < load_end {
                    let sent = Instant::now();
                    let reply = policy
                        .call_notify(
                            || {
                                let (mut client, request) = (client.clone(), request.clone());
                                async move { client.classify(request).await }
                            },
                            |status, _, _| {
                                tally.retries.fetch_add(1, Ordering::Relaxed);
                                let why = format!("{:?}: {}", status.code(), status.message());
                                *tally.retried_because.lock().unwrap().entry(why).or_default() += 1;
                            },
                        )
                        .await;
                    match reply {
                        Ok(r) => {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                            let after = killed_at.lock().unwrap().is_some_and(|k| sent > k);
                            if after {
                                tally.ok_after_kill.fetch_add(1, Ordering::Relaxed);
                            }
                            *tally
                                .labels
                                .lock()
                                .unwrap()
                                .entry(r.into_inner().label)
                                .or_default() += 1;
                        }
                        Err(status) => tally.failures.lock().unwrap().push(format!(
                            "{:?}: {}",
                            status.code(),
                            status.message()
                        )),
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(BEFORE_KILL);
    let ok_before = tally.ok.load(Ordering::Relaxed);
    signal(victim_pid, "KILL");
    *killed_at.lock().unwrap() = Some(Instant::now());
    println!("SIGKILL to replica {} after {ok_before} calls", victim + 1);
    for caller in callers {
        rt.block_on(caller).unwrap();
    }
    let (stream_results, stream_end) = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), stream).await })
        .expect("the stream on the killed replica did not end within 30 s")
        .unwrap();

    let failures = tally.failures.lock().unwrap().clone();
    let (ok, after, retries) = (
        tally.ok.load(Ordering::Relaxed),
        tally.ok_after_kill.load(Ordering::Relaxed),
        tally.retries.load(Ordering::Relaxed),
    );
    let seconds = (BEFORE_KILL + AFTER_KILL).as_secs_f64();
    println!(
        "unary: {ok} ok ({:.1}/s), {} failed, {after} sent after the kill and ok, {retries} retries",
        ok as f64 / seconds,
        failures.len()
    );
    println!("retried because: {:?}", tally.retried_because.lock().unwrap());
    println!("labels: {:?}", tally.labels.lock().unwrap());
    println!("answered by (nginx's log): {:?}", deployment.answered_by());

    assert!(!alive(victim_pid), "the killed replica (pid {victim_pid}) is still running");
    assert!(ok_before > 0, "no call succeeded before the kill");
    assert!(failures.is_empty(), "{} unary calls failed: {failures:?}", failures.len());
    assert!(after > 0, "no call sent after the kill succeeded");
    assert!(
        retries > 0,
        "no call was retried: the kill should have cut off calls in flight on the killed \
         replica (nginx answers those 502, UNAVAILABLE, and the client resends them)"
    );
    assert_eq!(tally.labels.lock().unwrap().len(), 1, "the same clip got different labels");

    // The stream: not resent, ended with a non-OK status that the client reports as
    // UNAVAILABLE (nginx resets it with INTERNAL_ERROR when its replica dies).
    let status = stream_end.expect("the stream on the killed replica ended as if complete");
    println!(
        "the stream ended after {stream_results} results with {:?}: {}",
        status.code(),
        status.message()
    );
    let reported = retry::stream_cut_off(&status).unwrap_or_else(|| status.clone());
    println!("reported as {:?}: {}", reported.code(), reported.message());
    assert_eq!(
        reported.code(),
        tonic::Code::Unavailable,
        "the stream on the killed replica ended with {:?}: {}",
        status.code(),
        status.message()
    );
}

/// The Python client through nginx: CALLERS threads classifying in a loop; the test kills a
/// replica once the script says it is running and tells it so on stdin.
const PYTHON_LOAD: &str = r#"
import json, sys, threading, time
import prosodia

target, path, after_kill = sys.argv[1], sys.argv[2], float(sys.argv[3])
audio = open(path, "rb").read()
client = prosodia.Client(target, timeout=60)
lock = threading.Lock()
tally = {"ok": 0, "ok_after_kill": 0, "failures": [], "labels": {}}
killed = threading.Event()
stop = threading.Event()

def caller():
    while not stop.is_set():
        after = killed.is_set()
        try:
            label = client.classify(audio).label
        except prosodia.ProsodiaError as e:
            with lock:
                tally["failures"].append(f"{e.code_name}: {e.message}")
            continue
        with lock:
            tally["ok"] += 1
            tally["ok_after_kill"] += after
            tally["labels"][label] = tally["labels"].get(label, 0) + 1

threads = [threading.Thread(target=caller) for _ in range(int(sys.argv[4]))]
for t in threads:
    t.start()
while tally["ok"] == 0 and not tally["failures"]:
    time.sleep(0.05)
print("running", flush=True)
sys.stdin.readline()  # the test killed a replica
killed.set()
time.sleep(after_kill)
stop.set()
for t in threads:
    t.join()
client.close()
print(json.dumps(tally), flush=True)
"#;

#[test]
fn the_python_client_loses_no_call_when_a_replica_dies() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(python) = std::env::var_os("PROSODIA_PYTHON").filter(|p| !p.is_empty()) else {
        println!(
            "SKIPPED: PROSODIA_PYTHON is not set; run scripts/install-python-clients.sh \
             (scripts/test.sh does)"
        );
        return;
    };
    let Some(nginx) = nginx() else { return };
    let deployment = Deployment::start(&nginx, 2);
    let mut load = Command::new(python)
        .args(["-c", PYTHON_LOAD, &deployment.nginx.to_string()])
        .arg(fixture("tess/OAF_back_angry.wav"))
        .args([&AFTER_KILL.as_secs_f64().to_string(), &CALLERS.to_string()])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the Python client");
    let mut out = BufReader::new(load.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "running", "the Python load did not start");
    std::thread::sleep(BEFORE_KILL);
    let victim = &deployment.replicas[0];
    signal(victim.pid, "KILL");
    println!("SIGKILL to replica 1 (pid {})", victim.pid);
    writeln!(load.stdin.take().unwrap(), "killed").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    let status = load.wait().unwrap();
    assert!(status.success(), "the Python load exited with {status}");
    let tally: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("the Python load printed {line:?}: {e}"));
    println!("python: {tally}");
    println!("answered by (nginx's log): {:?}", deployment.answered_by());

    assert!(!alive(victim.pid), "the killed replica is still running");
    let failures = tally["failures"].as_array().unwrap();
    assert!(failures.is_empty(), "{} Python calls failed: {failures:?}", failures.len());
    assert!(tally["ok"].as_u64().unwrap() > 0, "no Python call succeeded");
    assert!(tally["ok_after_kill"].as_u64().unwrap() > 0, "no call succeeded after the kill");
    assert_eq!(tally["labels"].as_object().unwrap().len(), 1, "different labels: {tally}");
}
