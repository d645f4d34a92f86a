//! End-to-end tests: the real server on 127.0.0.1:0, driven by the generated tonic clients.
//!
//! Models are served by a small in-test backend (`fixed`) that records the input shape it
//! was given and returns fixed probabilities, so these tests check the server's plumbing
//! (decode → features → runner → response, errors → status codes), not a trained network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use prosodia_dsp::FeatureConfig;
use prosodia_dsp::utterance::NAMES;
use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_proto::pb::models_client::ModelsClient;
use prosodia_server::repository::ModelManifest;
use prosodia_server::runner::{
    Backend, Batch, ModelRunner, RunnerError, RunnerErrorKind, TensorInfo,
};
use prosodia_server::{Config, ServerBuilder};
use prosodia_tests::{fixture, fixtures_in, read};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const LABELS: [&str; 6] = ["angry", "disgust", "fear", "happy", "neutral", "sad"];
/// The probabilities the fixed runner returns (argmax: "happy").
const PROBS: [f32; 6] = [0.1, 0.05, 0.05, 0.6, 0.1, 0.1];

/// The last `[t, f]` shape the fixed runner saw.
type Seen = Arc<Mutex<Option<(usize, usize)>>>;

struct FixedRunner {
    seen: Seen,
}

impl ModelRunner for FixedRunner {
    fn inputs(&self) -> Vec<TensorInfo> {
        vec![TensorInfo { name: "features".into(), dtype: "f32".into(), shape: vec![-1, -1, -1] }]
    }
    fn outputs(&self) -> Vec<TensorInfo> {
        vec![TensorInfo { name: "probabilities".into(), dtype: "f32".into(), shape: vec![-1, 6] }]
    }
    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, RunnerError> {
        if batch.data.iter().any(|v| !v.is_finite()) {
            return Err(RunnerError::new(RunnerErrorKind::InvalidInput, "non-finite feature"));
        }
        *self.seen.lock().unwrap() = Some((batch.t, batch.f));
        Ok(PROBS.repeat(batch.n))
    }
}

struct FixedBackend {
    seen: Seen,
}

impl Backend for FixedBackend {
    fn name(&self) -> &str {
        "fixed"
    }
    fn version(&self) -> &str {
        "test"
    }
    fn load(
        &self,
        model_path: &Path,
        manifest: &ModelManifest,
    ) -> Result<Box<dyn ModelRunner>, RunnerError> {
        assert_eq!(manifest.labels.len(), 6);
        if !model_path.exists() {
            return Err(RunnerError::new(
                RunnerErrorKind::Internal,
                format!("{} is missing", model_path.display()),
            ));
        }
        Ok(Box::new(FixedRunner { seen: self.seen.clone() }))
    }
}

/// Writes `<root>/<name>/<version>/` with the given backend and extractor.
fn write_model(root: &Path, name: &str, version: u32, backend: &str, extractor: &str) {
    let dir = root.join(name).join(version.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.onnx"), b"not a real network").unwrap();
    std::fs::write(dir.join("features.toml"), FeatureConfig::seed().to_toml().unwrap()).unwrap();
    let labels: Vec<String> = LABELS.iter().map(|l| format!("{l:?}")).collect();
    std::fs::write(
        dir.join("model.toml"),
        format!(
            "labels = [{}]\nbackend = \"{backend}\"\nextractor = \"{extractor}\"\ndescription = \"test model\"\n\
             [streaming]\nwindow_seconds = 2.0\nhop_seconds = 0.5\n\
             [evaluation]\ndataset = \"tess-test\"\naccuracy = 0.9\nmacro_f1 = 0.88\nexamples = 60\n\
             [evaluation.per_class.happy]\nprecision = 0.9\nrecall = 0.8\nf1 = 0.85\nsupport = 10\n",
            labels.join(", ")
        ),
    )
    .unwrap();
}

struct TestServer {
    addr: SocketAddr,
    seen: Seen,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<prosodia_server::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with models `frames-model` (v1, v2), `utt-model` and `broken` (a backend
    /// that does not exist), with `tweak` applied to the configuration.
    async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), "frames-model", 1, "fixed", "frames");
        write_model(dir.path(), "frames-model", 2, "fixed", "frames");
        write_model(dir.path(), "utt-model", 1, "fixed", "utterance");
        write_model(dir.path(), "broken", 1, "tract-not-built-in", "frames");
        let mut config = Config {
            models: Some(dir.path().to_path_buf()),
            default_model: Some("frames-model".into()),
            workers: 2,
            // LoadModel/UnloadModel/ReloadPlugin are tested here without a token; the admin
            // token itself is tested in ops.rs.
            allow_unauthenticated_admin: true,
            ..Config::default()
        };
        tweak(&mut config);
        let seen: Seen = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server =
            ServerBuilder::new(config).backend(Arc::new(FixedBackend { seen: seen.clone() }));
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Self { addr, seen, stop: Some(stop), task: Some(task), _dir: dir }
    }

    async fn channel(&self) -> Channel {
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr)).unwrap();
        endpoint.connect().await.unwrap()
    }

    async fn emotion(&self) -> EmotionClient<Channel> {
        EmotionClient::new(self.channel().await).max_decoding_message_size(64 << 20)
    }

    async fn models(&self) -> ModelsClient<Channel> {
        ModelsClient::new(self.channel().await)
    }

    /// Stops the server and checks it shut down cleanly.
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            s.send(()).unwrap();
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

fn encoded(path: &Path) -> pb::Audio {
    pb::Audio { source: Some(pb::audio::Source::Encoded(read(path))) }
}

fn tess() -> std::path::PathBuf {
    fixture("tess/OAF_back_happy.wav")
}

async fn health(channel: Channel, service: &str) -> Result<ServingStatus, tonic::Status> {
    let mut client = HealthClient::new(channel);
    let resp = client.check(HealthCheckRequest { service: service.to_owned() }).await?;
    Ok(resp.into_inner().status())
}

#[tokio::test]
async fn extract_features_returns_the_46_named_features_and_frames() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.emotion().await;
    let resp = client
        .extract_features(pb::ExtractFeaturesRequest {
            audio: Some(encoded(&tess())),
            include_frames: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = resp.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, NAMES.to_vec());
    assert!(resp.features.iter().all(|f| f.value.is_finite()));
    let get = |n: &str| resp.features.iter().find(|f| f.name == n).map(|f| f.value).unwrap();
    assert_eq!(get("sample_rate"), 48_000.0);
    assert!(get("pitch_mean") > 100.0 && get("pitch_mean") < 400.0, "pitch {}", get("pitch_mean"));
    assert_eq!(resp.feature_config, "seed");
    assert_eq!(resp.sample_rate, 48_000);
    assert!(resp.audio_duration_seconds > 1.0 && resp.audio_duration_seconds < 3.0);
    let timings = resp.timings.unwrap();
    assert!(timings.total_ms >= timings.decode_ms + timings.extract_ms);

    let by_name = |n: &str| resp.frames.iter().find(|m| m.name == n).unwrap();
    let input = by_name("model_input");
    assert_eq!(input.cols as usize, FeatureConfig::seed().frame_width());
    assert_eq!(input.column_names, FeatureConfig::seed().frame_column_names());
    assert!(input.rows > 10);
    assert_eq!(input.data.len(), (input.rows * input.cols) as usize);
    assert!((input.frame_step_seconds - 512.0 / 48_000.0).abs() < 1e-12);
    assert_eq!(by_name("logmel_db").cols, 128);
    assert_eq!(by_name("mfcc").cols, 13);
    assert_eq!(by_name("pitch").column_names, vec!["f0_hz".to_owned()]);

    // The speech preset analyses at 16 kHz.
    let resp = client
        .extract_features(pb::ExtractFeaturesRequest {
            audio: Some(encoded(&tess())),
            preset: "speech".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.sample_rate, 16_000);
    assert!(resp.frames.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn raw_pcm_gives_the_same_features_as_the_wav() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.emotion().await;
    let (samples, rate) = prosodia_tests::load_pcm16_mono(&tess());
    let data: Vec<u8> =
        samples.iter().flat_map(|s| ((s * 32768.0).round() as i16).to_le_bytes()).collect();
    let raw = pb::Audio {
        source: Some(pb::audio::Source::Raw(pb::RawAudio {
            encoding: pb::PcmEncoding::S16le.into(),
            sample_rate: rate,
            channels: 1,
            data,
        })),
    };
    let from_raw = client
        .extract_features(pb::ExtractFeaturesRequest {
            audio: Some(raw.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let from_wav = client
        .extract_features(pb::ExtractFeaturesRequest {
            audio: Some(encoded(&tess())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(from_raw.features, from_wav.features);

    // An unset encoding is refused by name.
    let mut bad = raw;
    if let Some(pb::audio::Source::Raw(r)) = bad.source.as_mut() {
        r.encoding = pb::PcmEncoding::Unspecified.into();
    }
    let err = client
        .extract_features(pb::ExtractFeaturesRequest { audio: Some(bad), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("encoding"), "{}", err.message());

    // So is a request without audio.
    let err = client.extract_features(pb::ExtractFeaturesRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("audio is missing"), "{}", err.message());
    server.stop().await;
}

#[tokio::test]
async fn every_bad_fixture_is_refused_with_a_reason_and_the_server_keeps_serving() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.emotion().await;
    let bad = fixtures_in("bad");
    assert_eq!(bad.len(), 10, "expected the 10 bad fixtures");
    for path in &bad {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap().to_owned();
        for classify in [false, true] {
            let result = if classify {
                client
                    .classify(pb::ClassifyRequest {
                        audio: Some(encoded(path)),
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            } else {
                client
                    .extract_features(pb::ExtractFeaturesRequest {
                        audio: Some(encoded(path)),
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            };
            let err = match result {
                Ok(()) => panic!("{name}: accepted"),
                Err(e) => e,
            };
            println!("{name}: {:?} {}", err.code(), err.message());
            assert_eq!(err.code(), Code::InvalidArgument, "{name}: {}", err.message());
            let expected = match name.as_str() {
                "silence_3s.wav" => "silent",
                "empty.wav" => "empty",
                "tiny_5ms.wav" => "too short",
                "nan_inf_f32.wav" => "finite",
                "text.wav" => "text",
                "random_bytes.wav" => "unrecognised",
                _ => "",
            };
            assert!(
                err.message().to_lowercase().contains(expected) && err.message().len() > 20,
                "{name}: message does not name the problem: {}",
                err.message()
            );
        }
    }
    // Still serving: a good request succeeds on the same connection.
    let ok = client
        .classify(pb::ClassifyRequest { audio: Some(encoded(&tess())), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.label, "happy");
    server.stop().await;
}

#[tokio::test]
async fn classify_runs_the_model_on_the_configured_features() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.emotion().await;
    let resp = client
        .classify(pb::ClassifyRequest { audio: Some(encoded(&tess())), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.label, "happy");
    assert_eq!(resp.model, "frames-model");
    assert_eq!(resp.model_version, 2, "the newest version serves by default");
    let labels: Vec<&str> = resp.scores.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, LABELS.to_vec());
    let sum: f32 = resp.scores.iter().map(|s| s.probability).sum();
    assert!((sum - 1.0).abs() < 1e-5);
    assert!(resp.audio_duration_seconds > 1.0);
    let t = resp.timings.unwrap();
    assert!(t.total_ms >= t.decode_ms + t.extract_ms + t.inference_ms);
    let (frames, width) = server.seen.lock().unwrap().unwrap();
    assert_eq!(width, FeatureConfig::seed().frame_width());
    assert!(frames > 10);

    // A pinned version and the utterance extractor.
    let resp = client
        .classify(pb::ClassifyRequest {
            model: "utt-model".into(),
            model_version: 1,
            audio: Some(encoded(&tess())),
            timeline: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((resp.model.as_str(), resp.model_version), ("utt-model", 1));
    assert_eq!(*server.seen.lock().unwrap(), Some((1, NAMES.len())));

    // Unknown models and versions are NOT_FOUND, a failed model UNAVAILABLE with its reason.
    let err = client
        .classify(pb::ClassifyRequest {
            model: "nope".into(),
            audio: Some(encoded(&tess())),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("frames-model"), "lists the models: {}", err.message());
    let err = client
        .classify(pb::ClassifyRequest {
            model: "frames-model".into(),
            model_version: 9,
            audio: Some(encoded(&tess())),
            timeline: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .classify(pb::ClassifyRequest {
            model: "broken".into(),
            audio: Some(encoded(&tess())),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("tract-not-built-in"), "{}", err.message());
    server.stop().await;
}

#[tokio::test]
async fn audio_over_the_duration_limit_is_resource_exhausted() {
    let server = TestServer::start(|c| c.max_audio_seconds = 0.5).await;
    let mut client = server.emotion().await;
    let err = client
        .extract_features(pb::ExtractFeaturesRequest {
            audio: Some(encoded(&tess())),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    assert!(err.message().contains("limit"), "{}", err.message());
    server.stop().await;
}

#[tokio::test]
async fn models_can_be_listed_described_unloaded_and_loaded_with_health_following() {
    let server = TestServer::start(|_| {}).await;
    let mut models = server.models().await;
    let list = models.list_models(pb::ListModelsRequest {}).await.unwrap().into_inner();
    let names: Vec<&str> = list.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["broken", "frames-model", "utt-model"]);
    assert_eq!(list.default_model, "frames-model");
    let fm = &list.models[1];
    assert_eq!(fm.versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(fm.versions[0].state(), pb::ModelState::Ready);
    assert_eq!(fm.versions[1].state(), pb::ModelState::Unloaded);
    let broken = &list.models[0].versions[0];
    assert_eq!(broken.state(), pb::ModelState::Failed);
    assert!(broken.message.contains("not available"), "{}", broken.message);

    let info = models
        .get_model(pb::GetModelRequest { name: "frames-model".into(), version: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.version, 2);
    assert_eq!(info.labels, LABELS.to_vec());
    assert_eq!((info.backend.as_str(), info.extractor.as_str()), ("fixed", "cpu"));
    assert_eq!(info.input_kind, "frames");
    assert_eq!((info.stream_window_seconds, info.stream_hop_seconds), (2.0, 0.5));
    let fc = info.feature_config.unwrap();
    assert_eq!(fc.name, "seed");
    assert_eq!(fc.frame_columns, FeatureConfig::seed().frame_column_names());
    assert_eq!(FeatureConfig::from_toml(&fc.toml).unwrap(), FeatureConfig::seed());
    assert_eq!(info.inputs[0].shape, [-1, -1, -1]);
    let ev = info.evaluation.unwrap();
    assert_eq!((ev.accuracy, ev.macro_f1, ev.examples), (0.9, 0.88, 60));
    assert_eq!(ev.per_class.len(), 1);
    assert_eq!(ev.per_class[0].label, "happy");
    let err = models
        .get_model(pb::GetModelRequest { name: "nope".into(), version: 0 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let ch = server.channel().await;
    assert_eq!(health(ch.clone(), "").await.unwrap(), ServingStatus::Serving);
    assert_eq!(health(ch.clone(), "prosodia.v1.Emotion").await.unwrap(), ServingStatus::Serving);
    assert_eq!(health(ch.clone(), "prosodia.v1.Models").await.unwrap(), ServingStatus::Serving);
    assert_eq!(
        health(ch.clone(), "prosodia.v1.Model/frames-model").await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(
        health(ch.clone(), "prosodia.v1.Model/broken").await.unwrap(),
        ServingStatus::NotServing
    );
    assert_eq!(health(ch.clone(), "unknown").await.unwrap_err().code(), Code::NotFound);

    let unloaded = models
        .unload_model(pb::UnloadModelRequest { name: "frames-model".into(), version: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unloaded.unloaded_versions, [2]);
    assert_eq!(
        health(ch.clone(), "prosodia.v1.Model/frames-model").await.unwrap(),
        ServingStatus::NotServing
    );
    let err = server
        .emotion()
        .await
        .classify(pb::ClassifyRequest { audio: Some(encoded(&tess())), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("LoadModel"), "{}", err.message());

    let loaded = models
        .load_model(pb::LoadModelRequest { name: "frames-model".into(), version: 1 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(loaded.model.unwrap().status.unwrap().state(), pb::ModelState::Ready);
    assert_eq!(
        health(ch.clone(), "prosodia.v1.Model/frames-model").await.unwrap(),
        ServingStatus::Serving
    );
    let resp = server
        .emotion()
        .await
        .classify(pb::ClassifyRequest { audio: Some(encoded(&tess())), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.model_version, 1);

    let err = models
        .load_model(pb::LoadModelRequest { name: "broken".into(), version: 0 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    let plugins =
        models.list_plugins(pb::ListPluginsRequest {}).await.unwrap().into_inner().plugins;
    let names: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["fixed", "cpu", "tract"]);
    let err =
        models.reload_plugin(pb::ReloadPluginRequest { name: "fixed".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    server.stop().await;
}

#[tokio::test]
async fn reflection_lists_the_services_in_v1_and_v1alpha() {
    use tonic_reflection::pb::{v1, v1alpha};
    let server = TestServer::start(|_| {}).await;
    let expected = ["grpc.health.v1.Health", "prosodia.v1.Emotion", "prosodia.v1.Models"];

    let mut client =
        v1::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let req = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut stream =
        client.server_reflection_info(tokio_stream::iter([req])).await.unwrap().into_inner();
    let msg = stream.message().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        msg.message_response
    else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for e in expected {
        assert!(names.iter().any(|n| n == e), "v1 misses {e}: {names:?}");
    }

    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let req = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "prosodia.v1.Emotion".into(),
            ),
        ),
    };
    let mut stream =
        client.server_reflection_info(tokio_stream::iter([req])).await.unwrap().into_inner();
    let msg = stream.message().await.unwrap().unwrap();
    let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        msg.message_response
    else {
        panic!("unexpected reflection answer");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    server.stop().await;
}
