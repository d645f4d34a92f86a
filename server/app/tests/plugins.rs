//! Plugins in the real server: a backend library swapped under continuous concurrent
//! Classify calls (by ReloadPlugin and by the file watcher) with zero failed requests, the
//! CPU extractor loaded as a library in place of the built-in one giving the same answers,
//! and broken libraries that are reported without taking anything down.
//!
//! The backend is `tests/plugins/fixed_backend.c`, compiled here with `cc`: it puts 0.5 on
//! class `WINNER` whatever the input, so a rebuild with another winner and version is
//! visible in every response. A test without a C compiler prints why and returns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prosodia_dsp::FeatureConfig;
use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_proto::pb::models_client::ModelsClient;
use prosodia_server::{Config, ServerBuilder};
use prosodia_tests::{fixture, read};
use tokio::sync::oneshot;
use tonic::transport::Channel;

const LABELS: [&str; 6] = ["angry", "disgust", "fear", "happy", "neutral", "sad"];
const TOKEN: &str = "plugin-test-token";
const CLIENTS: usize = 6;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Compiles the fixed backend as `name` `version` answering `winner` into `output`, through
/// a temporary file renamed into place (a watcher never sees half a library). `None` (after
/// printing why) when there is no C compiler.
fn build_backend(output: &Path, version: &str, winner: usize, extra: &[&str]) -> Option<()> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let partial = output.with_extension("partial");
    let result = Command::new(&cc)
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-I"])
        .arg(repo_root().join("plugins/api/include"))
        .arg(format!("-DPLUGIN_VERSION=\"{version}\""))
        .arg(format!("-DWINNER={winner}"))
        .args(extra)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins/fixed_backend.c"))
        .arg("-o")
        .arg(&partial)
        .arg("-lm")
        .output();
    match result {
        Err(e) => {
            println!("skipping: cannot run the C compiler {cc:?}: {e}");
            None
        }
        Ok(out) => {
            assert!(out.status.success(), "cc failed:\n{}", String::from_utf8_lossy(&out.stderr));
            std::fs::rename(&partial, output).unwrap();
            Some(())
        }
    }
}

/// A model folder whose backend is `backend` (the fixed backend ignores the file's bytes).
fn write_model(root: &Path, name: &str, backend: &str) {
    let dir = root.join(name).join("1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.onnx"), b"read by no one").unwrap();
    std::fs::write(dir.join("features.toml"), FeatureConfig::speech().to_toml().unwrap()).unwrap();
    let labels: Vec<String> = LABELS.iter().map(|l| format!("{l:?}")).collect();
    std::fs::write(
        dir.join("model.toml"),
        format!("labels = [{}]\nbackend = \"{backend}\"\n", labels.join(", ")),
    )
    .unwrap();
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<prosodia_server::Result<()>>,
}

impl Server {
    async fn start(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ServerBuilder::new(config).serve(listener, async {
            let _ = stopped.await;
        }));
        Self { addr, stop: Some(stop), task }
    }

    async fn channel(&self) -> Channel {
        let endpoint = Channel::from_shared(format!("http://{}", self.addr)).unwrap();
        for _ in 0..200 {
            if let Ok(c) = endpoint.connect().await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        endpoint.connect().await.unwrap()
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

fn classify_request(model: &str, audio: &[u8]) -> pb::ClassifyRequest {
    pb::ClassifyRequest {
        model: model.into(),
        audio: Some(pb::Audio { source: Some(pb::audio::Source::Encoded(audio.to_vec())) }),
        ..Default::default()
    }
}

fn admin<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    request
}

async fn plugin(models: &mut ModelsClient<Channel>, name: &str) -> Option<pb::PluginInfo> {
    let list = models.list_plugins(pb::ListPluginsRequest {}).await.unwrap().into_inner();
    list.plugins.into_iter().find(|p| p.name == name)
}

/// What the concurrent clients saw.
#[derive(Default)]
struct Tally {
    failures: Vec<String>,
    before: usize,
    after: usize,
}

/// Runs [`CLIENTS`] clients that classify `audio` back to back until `stop`; each checks the
/// label is `old` until it first sees `new`, and `new` from then on.
fn spawn_clients(
    channel: Channel,
    audio: Arc<Vec<u8>>,
    old: &'static str,
    new: &'static str,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Tally>> {
    (0..CLIENTS)
        .map(|c| {
            let (channel, audio, stop) = (channel.clone(), Arc::clone(&audio), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut client = EmotionClient::new(channel);
                let mut tally = Tally::default();
                while !stop.load(Ordering::SeqCst) {
                    match client.classify(classify_request("fixed", &audio)).await {
                        Err(s) => tally.failures.push(format!("client {c}: {s:?}")),
                        Ok(r) => match r.into_inner().label.as_str() {
                            l if l == old && tally.after == 0 => tally.before += 1,
                            l if l == new => tally.after += 1,
                            l => tally.failures.push(format!(
                                "client {c}: label {l} after {} new answers",
                                tally.after
                            )),
                        },
                    }
                }
                tally
            })
        })
        .collect()
}

/// Swaps the backend while the clients run (`swap` rebuilds and triggers the reload), then
/// lets every client see the new version a few times and checks nobody failed.
async fn swap_under_load(
    server: &Server,
    audio: Vec<u8>,
    swap: impl std::future::Future<Output = ()>,
) -> Vec<Tally> {
    let stop = Arc::new(AtomicBool::new(false));
    let channel = server.channel().await;
    let mut models = ModelsClient::new(channel.clone());
    let progress = |models: &mut ModelsClient<Channel>| {
        let mut m = models.clone();
        async move { plugin(&mut m, "c_fixed").await.map(|p| p.version).unwrap_or_default() }
    };
    assert_eq!(progress(&mut models).await, "1.0.0");
    let clients = spawn_clients(channel, Arc::new(audio), "happy", "sad", Arc::clone(&stop));
    // Let the old version serve a while before the swap.
    tokio::time::sleep(Duration::from_millis(300)).await;
    swap.await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while progress(&mut models).await != "2.0.0" {
        assert!(Instant::now() < deadline, "the new version never registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Keep the load on long enough for every client to get several new answers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut tallies = Vec::new();
    for c in clients {
        tallies.push(c.await.unwrap());
    }
    tallies
}

fn check_tallies(tallies: &[Tally]) {
    let failures: Vec<&String> = tallies.iter().flat_map(|t| &t.failures).collect();
    assert!(failures.is_empty(), "{} failed requests: {failures:?}", failures.len());
    let before: usize = tallies.iter().map(|t| t.before).sum();
    assert!(before > 0, "no request was answered by the old version");
    for (i, t) in tallies.iter().enumerate() {
        assert!(t.after > 0, "client {i} never got an answer from the new version");
    }
    println!(
        "{} requests by 1.0.0, {} by 2.0.0, 0 failed",
        before,
        tallies.iter().map(|t| t.after).sum::<usize>()
    );
}

fn config(models: &Path, plugins: &Path) -> Config {
    Config {
        models: Some(models.to_path_buf()),
        plugin_dir: Some(plugins.to_path_buf()),
        admin_token: Some(prosodia_server::config::Secret::new(TOKEN)),
        workers: 2,
        ..Config::default()
    }
}

fn short_clip() -> Vec<u8> {
    read(&fixture("ravdess/03-01-01-01-01-01-01.wav"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_plugin_swaps_a_backend_under_load_without_failures() {
    let plugins = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    let library = plugins.path().join("libc_fixed.so");
    if build_backend(&library, "1.0.0", 3, &[]).is_none() {
        return;
    }
    write_model(models.path(), "fixed", "c_fixed");
    let server = Server::start(config(models.path(), plugins.path())).await;
    let mut admin_client = ModelsClient::new(server.channel().await);

    let lib = library.clone();
    let mut reloader = admin_client.clone();
    let tallies = swap_under_load(&server, short_clip(), async move {
        build_backend(&lib, "2.0.0", 5, &[]).unwrap();
        let reply = reloader
            .reload_plugin(admin(pb::ReloadPluginRequest { name: "c_fixed".into() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.plugin.unwrap().version, "2.0.0");
    })
    .await;
    check_tallies(&tallies);

    // A broken rebuild is refused and the working version keeps serving.
    std::fs::write(&library, b"this is not a shared library").unwrap();
    let refused = admin_client
        .reload_plugin(admin(pb::ReloadPluginRequest { name: "c_fixed".into() }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("old version keeps serving"), "{}", refused.message());
    let mut emotion = EmotionClient::new(server.channel().await);
    let still = emotion.classify(classify_request("fixed", &short_clip())).await.unwrap();
    assert_eq!(still.into_inner().label, "sad");

    // Built-in and unknown plugins, and callers without the token.
    let builtin = admin_client
        .reload_plugin(admin(pb::ReloadPluginRequest { name: "tract".into() }))
        .await
        .unwrap_err();
    assert_eq!(builtin.code(), tonic::Code::FailedPrecondition, "{builtin:?}");
    let unknown = admin_client
        .reload_plugin(admin(pb::ReloadPluginRequest { name: "nope".into() }))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
    let anonymous = admin_client
        .reload_plugin(pb::ReloadPluginRequest { name: "c_fixed".into() })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated, "{anonymous:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_swaps_a_changed_library_without_failures() {
    let plugins = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    let library = plugins.path().join("libc_fixed.so");
    if build_backend(&library, "1.0.0", 3, &[]).is_none() {
        return;
    }
    write_model(models.path(), "fixed", "c_fixed");
    let config = Config { plugin_watch_seconds: 0.1, ..config(models.path(), plugins.path()) };
    let server = Server::start(config).await;
    let lib = library.clone();
    let tallies = swap_under_load(&server, short_clip(), async move {
        build_backend(&lib, "2.0.0", 5, &[]).unwrap();
    })
    .await;
    check_tallies(&tallies);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_faulty_plugins_are_reported_and_contained() {
    let plugins = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    if build_backend(&plugins.path().join("libc_fixed.so"), "1.0.0", 3, &[]).is_none() {
        return;
    }
    build_backend(
        &plugins.path().join("libc_nan.so"),
        "1.0.0",
        3,
        &["-DFAULT_NAN", "-DPLUGIN_NAME=\"c_nan\""],
    )
    .unwrap();
    std::fs::write(plugins.path().join("libgarbage.so"), b"\x7fELF but not really").unwrap();
    write_model(models.path(), "fixed", "c_fixed");
    write_model(models.path(), "nan", "c_nan");
    write_model(models.path(), "missing", "no_such_backend");
    let server = Server::start(config(models.path(), plugins.path())).await;
    let channel = server.channel().await;
    let mut models_client = ModelsClient::new(channel.clone());

    let garbage = plugin(&mut models_client, "libgarbage").await.expect("garbage listed");
    assert!(!garbage.ready);
    assert!(garbage.message.contains("libgarbage.so"), "{}", garbage.message);
    let tract = plugin(&mut models_client, "tract").await.expect("tract listed");
    assert!(tract.builtin && tract.ready);
    let cpu = plugin(&mut models_client, "cpu").await.expect("cpu listed");
    assert!(cpu.builtin);
    assert_eq!(cpu.kind, i32::from(pb::PluginKind::FeatureExtractor));

    let mut emotion = EmotionClient::new(channel);
    let nan = emotion.classify(classify_request("nan", &short_clip())).await.unwrap_err();
    assert_eq!(nan.code(), tonic::Code::Internal, "{nan:?}");
    assert!(nan.message().contains("c_nan"), "{}", nan.message());
    let missing = emotion.classify(classify_request("missing", &short_clip())).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::Unavailable, "{missing:?}");
    assert!(missing.message().contains("no_such_backend"), "{}", missing.message());
    let fine = emotion.classify(classify_request("fixed", &short_clip())).await.unwrap();
    assert_eq!(fine.into_inner().label, "happy");
    server.stop().await;
}

/// The CPU extractor's own library (`prosodia-features-cpu-plugin`), built by cargo beside
/// this test binary.
fn cpu_plugin_library() -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let file = "libprosodia_features_cpu_plugin.so";
    let found = exe.ancestors().skip(1).take(2).map(|d| d.join(file)).find(|p| p.is_file());
    if found.is_none() {
        println!("skipping: {file} was not built next to {}", exe.display());
    }
    found
}

async fn classify_scores(server: &Server, audio: &[u8]) -> pb::ClassifyResponse {
    let mut emotion = EmotionClient::new(server.channel().await);
    emotion.classify(classify_request("", audio)).await.unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_extractor_library_replaces_the_builtin_with_the_same_answers() {
    let Some(library) = cpu_plugin_library() else { return };
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(&library, plugins.path().join("libcpu.so")).unwrap();
    let bundled = repo_root().join("models");
    let audio = read(&fixture("tess/OAF_back_angry.wav"));

    let builtin =
        Server::start(Config { models: Some(bundled.clone()), ..Config::default() }).await;
    let expected = classify_scores(&builtin, &audio).await;
    builtin.stop().await;

    let dynamic = Server::start(config(&bundled, plugins.path())).await;
    let mut models = ModelsClient::new(dynamic.channel().await);
    let cpu = plugin(&mut models, "cpu").await.unwrap();
    assert!(!cpu.builtin && cpu.ready, "{cpu:?}");
    assert!(cpu.path.ends_with("libcpu.so"), "{}", cpu.path);
    let got = classify_scores(&dynamic, &audio).await;
    dynamic.stop().await;

    assert_eq!(got.label, expected.label);
    for (g, e) in got.scores.iter().zip(&expected.scores) {
        assert_eq!(g.label, e.label);
        assert!((g.probability - e.probability).abs() < 1e-5, "{g:?} vs {e:?}");
    }
}
