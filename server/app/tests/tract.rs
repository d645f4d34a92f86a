//! End to end with a real ONNX network: the server on 127.0.0.1:0 with the built-in tract
//! backend, serving a small random-weight classifier made by `prosodia-onnx` (the same
//! `[N, T, F]` + lengths → probabilities contract a trained model has).

#![cfg(feature = "tract")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use prosodia_dsp::FeatureConfig;
use prosodia_dsp::decode::{DecodeLimits, decode};
use prosodia_dsp::pipeline::Extractor;
use prosodia_onnx::{TestModelConfig, test_classifier};
use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_proto::pb::models_client::ModelsClient;
use prosodia_server::{Config, ServerBuilder};
use prosodia_tests::{fixture, read};

const LABELS: &str = r#"["angry", "disgust", "fear", "happy", "neutral", "sad"]"#;

fn write_model(root: &Path, name: &str, features: usize) {
    let dir = root.join(name).join("1");
    std::fs::create_dir_all(&dir).unwrap();
    let onnx =
        test_classifier(&TestModelConfig { features, ..TestModelConfig::default() }).unwrap();
    std::fs::write(dir.join("model.onnx"), onnx).unwrap();
    std::fs::write(dir.join("features.toml"), FeatureConfig::seed().to_toml().unwrap()).unwrap();
    std::fs::write(
        dir.join("model.toml"),
        format!("labels = {LABELS}\nbackend = \"tract\"\nextractor = \"frames\"\n"),
    )
    .unwrap();
}

#[tokio::test]
async fn classify_runs_an_onnx_model_through_tract() {
    let dir = tempfile::tempdir().unwrap();
    let width = FeatureConfig::seed().frame_width();
    write_model(dir.path(), "cnn", width);
    write_model(dir.path(), "wrong-width", 8);
    let config = Config {
        models: Some(dir.path().to_path_buf()),
        default_model: Some("cnn".into()),
        workers: 2,
        ..Config::default()
    };
    let server = ServerBuilder::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();

    // The server's answer equals running the same network on features computed here.
    let onnx = test_classifier(&TestModelConfig { features: width, ..TestModelConfig::default() })
        .unwrap();
    let local = prosodia_backend_tract::TractBackend::from_bytes(&onnx).unwrap();
    let mut extractor = Extractor::new(FeatureConfig::seed()).unwrap();
    let mut emotion = EmotionClient::new(channel.clone());
    for name in ["OAF_back_angry.wav", "OAF_back_happy.wav"] {
        let bytes = read(&fixture(&format!("tess/{name}")));
        let audio = pb::Audio { source: Some(pb::audio::Source::Encoded(bytes.clone())) };
        let resp = emotion
            .classify(pb::ClassifyRequest { audio: Some(audio), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.model, "cnn");
        assert_eq!(resp.scores.len(), 6);
        let sum: f32 = resp.scores.iter().map(|s| s.probability).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
        let best =
            resp.scores.iter().max_by(|a, b| a.probability.total_cmp(&b.probability)).unwrap();
        assert_eq!(best.label, resp.label);

        let decoded = decode(&bytes, &DecodeLimits::default()).unwrap();
        let (signal, rate) = extractor.preprocess(&decoded).unwrap();
        let spectral = extractor.spectral(&signal, rate).unwrap();
        let m = extractor.frame_matrix(&spectral);
        let expected = local.run(&m.data, 1, m.rows, m.cols, &[m.rows as i64]).unwrap();
        for (s, e) in resp.scores.iter().zip(&expected) {
            assert!(
                (s.probability - e).abs() < 1e-4,
                "{name}: server {:?} vs local {expected:?}",
                resp.scores
            );
        }
    }

    let mut models = ModelsClient::new(channel);
    let info = models
        .get_model(pb::GetModelRequest { name: "cnn".into(), version: 1 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.backend, "tract");
    let features = info.inputs.iter().find(|t| t.name == "features").expect("features input");
    assert_eq!(features.shape.last().copied(), Some(width as i64));
    let list = models.list_models(pb::ListModelsRequest {}).await.unwrap().into_inner();
    let wrong = list.models.iter().find(|m| m.name == "wrong-width").unwrap();
    assert_eq!(wrong.versions[0].state(), pb::ModelState::Failed);
    assert!(
        wrong.versions[0].message.contains("8 features per frame"),
        "{}",
        wrong.versions[0].message
    );
    let plugins =
        models.list_plugins(pb::ListPluginsRequest {}).await.unwrap().into_inner().plugins;
    assert!(plugins.iter().any(|p| p.name == "tract" && p.kind() == pb::PluginKind::ModelBackend));

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
