//! Dynamic batching against the real server: concurrent Classify requests share model calls,
//! every answer goes back to the request it belongs to, padding never reaches a valid frame,
//! and on the bundled model a batched answer equals the unbatched one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prosodia_dsp::FeatureConfig;
use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_server::repository::ModelManifest;
use prosodia_server::runner::{Backend, Batch, ModelRunner, RunnerError, TensorInfo};
use prosodia_server::{Config, ServerBuilder};
use prosodia_tests::{fixtures_in, read};
use tokio::sync::oneshot;
use tonic::transport::Channel;

const LABELS: [&str; 6] = ["angry", "disgust", "fear", "happy", "neutral", "sad"];

/// What the recording backend saw of each model call.
#[derive(Debug, Default)]
struct Seen {
    batch_sizes: Vec<usize>,
    problems: Vec<String>,
}

/// Puts 0.5 on class `valid frames % 6` of each item, and checks the padding is zero.
struct LengthRunner {
    seen: Arc<Mutex<Seen>>,
}

impl ModelRunner for LengthRunner {
    fn inputs(&self) -> Vec<TensorInfo> {
        vec![TensorInfo { name: "features".into(), dtype: "f32".into(), shape: vec![-1, -1, -1] }]
    }
    fn outputs(&self) -> Vec<TensorInfo> {
        vec![TensorInfo { name: "probabilities".into(), dtype: "f32".into(), shape: vec![-1, 6] }]
    }
    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, RunnerError> {
        let mut seen = self.seen.lock().unwrap();
        seen.batch_sizes.push(batch.n);
        let mut out = Vec::with_capacity(batch.n * 6);
        for (i, &len) in batch.lengths.iter().enumerate() {
            let item = &batch.data[i * batch.t * batch.f..(i + 1) * batch.t * batch.f];
            if item[len * batch.f..].iter().any(|&v| v != 0.0) {
                seen.problems.push(format!("item {i}: padding after frame {len} is not zero"));
            }
            if item[..len * batch.f].iter().all(|&v| v == 0.0) {
                seen.problems.push(format!("item {i}: its {len} valid frames are all zero"));
            }
            out.extend((0..6).map(|c| if c == len % 6 { 0.5 } else { 0.1 }));
        }
        Ok(out)
    }
}

struct LengthBackend {
    seen: Arc<Mutex<Seen>>,
}

impl Backend for LengthBackend {
    fn name(&self) -> &str {
        "lengths"
    }
    fn version(&self) -> &str {
        "test"
    }
    fn load(&self, _: &Path, _: &ModelManifest) -> Result<Box<dyn ModelRunner>, RunnerError> {
        Ok(Box::new(LengthRunner { seen: Arc::clone(&self.seen) }))
    }
}

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<prosodia_server::Result<()>>,
}

async fn start(server: ServerBuilder) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    Server { addr, stop, task }
}

impl Server {
    async fn client(&self) -> EmotionClient<Channel> {
        let endpoint = Channel::from_shared(format!("http://{}", self.addr)).unwrap();
        for _ in 0..200 {
            if let Ok(c) = endpoint.connect().await {
                return EmotionClient::new(c);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        EmotionClient::new(endpoint.connect().await.unwrap())
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// Classifies every clip at once, each on its own connection, in clip order.
async fn classify_all(
    server: &Server,
    model: &str,
    clips: &[Vec<u8>],
) -> Vec<pb::ClassifyResponse> {
    let mut tasks = Vec::new();
    for clip in clips {
        let mut client = server.client().await;
        let request = pb::ClassifyRequest {
            model: model.into(),
            audio: Some(pb::Audio { source: Some(pb::audio::Source::Encoded(clip.clone())) }),
            ..Default::default()
        };
        tasks.push(tokio::spawn(async move { client.classify(request).await }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap().unwrap().into_inner());
    }
    out
}

/// Clips of different lengths.
fn clips() -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = fixtures_in("ravdess");
    files.extend(fixtures_in("tess"));
    files.iter().take(12).map(|p| read(p)).collect()
}

fn batching(config: Config, size: usize, delay_ms: f64) -> Config {
    Config { max_batch_size: size, max_batch_delay_ms: delay_ms, workers: 2, ..config }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_model_calls_and_get_their_own_answers() {
    let dir = tempfile::tempdir().unwrap();
    let version = dir.path().join("lengths").join("1");
    std::fs::create_dir_all(&version).unwrap();
    std::fs::write(version.join("model.onnx"), b"unused").unwrap();
    std::fs::write(version.join("features.toml"), FeatureConfig::speech().to_toml().unwrap())
        .unwrap();
    let labels: Vec<String> = LABELS.iter().map(|l| format!("{l:?}")).collect();
    std::fs::write(
        version.join("model.toml"),
        format!("labels = [{}]\nbackend = \"lengths\"\n", labels.join(", ")),
    )
    .unwrap();
    let clips = clips();
    let base = Config { models: Some(dir.path().to_path_buf()), ..Config::default() };

    let seen_alone = Arc::new(Mutex::new(Seen::default()));
    let alone = start(
        ServerBuilder::new(batching(base.clone(), 1, 0.0))
            .backend(Arc::new(LengthBackend { seen: Arc::clone(&seen_alone) })),
    )
    .await;
    let expected = classify_all(&alone, "lengths", &clips).await;
    alone.stop().await;
    assert!(seen_alone.lock().unwrap().batch_sizes.iter().all(|&n| n == 1));

    let seen = Arc::new(Mutex::new(Seen::default()));
    // A long delay so that the concurrent requests surely meet in a batch.
    let batched = start(
        ServerBuilder::new(batching(base, 8, 300.0))
            .backend(Arc::new(LengthBackend { seen: Arc::clone(&seen) })),
    )
    .await;
    let got = classify_all(&batched, "lengths", &clips).await;
    batched.stop().await;

    let seen = seen.lock().unwrap();
    assert!(seen.problems.is_empty(), "{:?}", seen.problems);
    assert!(seen.batch_sizes.iter().all(|&n| n <= 8), "{:?}", seen.batch_sizes);
    assert!(
        seen.batch_sizes.iter().any(|&n| n > 1),
        "no request was batched: {:?}",
        seen.batch_sizes
    );
    assert_eq!(seen.batch_sizes.iter().sum::<usize>(), clips.len());
    let distinct: std::collections::BTreeSet<&str> =
        expected.iter().map(|r| r.label.as_str()).collect();
    assert!(distinct.len() > 1, "the clips must give different answers: {distinct:?}");
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g.label, e.label, "clip {i} got another request's answer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_answers_equal_unbatched_ones_on_the_bundled_model() {
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let clips: Vec<Vec<u8>> = clips().into_iter().take(6).collect();
    let base = Config { models: Some(bundled), ..Config::default() };

    let alone = start(ServerBuilder::new(batching(base.clone(), 1, 0.0))).await;
    let expected = classify_all(&alone, "", &clips).await;
    alone.stop().await;
    let batched = start(ServerBuilder::new(batching(base, 8, 300.0))).await;
    let got = classify_all(&batched, "", &clips).await;
    batched.stop().await;

    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g.label, e.label, "clip {i}");
        for (gs, es) in g.scores.iter().zip(&e.scores) {
            assert!(
                (gs.probability - es.probability).abs() < 1e-4,
                "clip {i} {}: batched {} vs alone {}",
                gs.label,
                gs.probability,
                es.probability
            );
        }
    }
}
