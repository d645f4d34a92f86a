//! The bundled default model (`models/` at the repository root), served the way the README's
//! first command serves it: the real server on 127.0.0.1:0, the built-in tract backend, the
//! model the trainer wrote. This is the test that catches train/serve skew: a feature
//! configuration, label order or standardisation that differs between `prosodia-train` and
//! the server shows up here as wrong labels on real clips.
//!
//! The fixtures come from the same corpora as the model's training data, so the agreement
//! measured here is a health check of the serving path, not an accuracy figure (those are in
//! the model's `report.md`, on held-out clips).

#![cfg(feature = "tract")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_proto::pb::models_client::ModelsClient;
use prosodia_server::{Config, ServerBuilder};
use prosodia_tests::{fixtures_in, read};

fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// The class a fixture's file name says, in the trainer's six-class map (`None`: dropped).
fn truth(path: &Path) -> Option<&'static str> {
    let stem = path.file_stem()?.to_str()?;
    if let Some(emotion) = stem.rsplit('_').next().filter(|_| stem.contains('_')) {
        // TESS: <SPK>_<word>_<emotion>
        return match emotion.to_ascii_lowercase().as_str() {
            "angry" => Some("angry"),
            "disgust" => Some("disgust"),
            "fear" => Some("fear"),
            "happy" => Some("happy"),
            "neutral" => Some("neutral"),
            "sad" => Some("sad"),
            _ => None,
        };
    }
    // RAVDESS: 03-01-EE-II-SS-RR-AA
    match stem.split('-').nth(2)? {
        "01" => Some("neutral"),
        "03" => Some("happy"),
        "04" => Some("sad"),
        "05" => Some("angry"),
        "06" => Some("fear"),
        "07" => Some("disgust"),
        _ => None,
    }
}

#[tokio::test]
async fn bundled_model_serves_real_clips_through_the_server() {
    let root = bundled();
    assert!(root.is_dir(), "the bundled model repository {} is missing", root.display());
    let config = Config { models: Some(root), workers: 2, ..Config::default() };
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

    // Exactly one model is bundled, so it is the default; it is ready and reports its
    // held-out evaluation.
    let mut models = ModelsClient::new(channel.clone());
    let list = models.list_models(pb::ListModelsRequest::default()).await.unwrap().into_inner();
    assert_eq!(list.models.len(), 1, "one bundled model: {list:?}");
    let name = list.default_model.clone();
    assert!(!name.is_empty());
    let info = models
        .get_model(pb::GetModelRequest { name: name.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.labels, ["angry", "disgust", "fear", "happy", "neutral", "sad"]);
    assert_eq!(info.extractor, "cpu");
    assert_eq!(info.input_kind, "frames");
    let eval = info.evaluation.expect("the bundled model carries its evaluation");
    assert!(eval.accuracy > 0.5 && eval.macro_f1 > 0.5, "{eval:?}");

    let mut emotion = EmotionClient::new(channel);
    let (mut scored, mut right) = (0, 0);
    let mut wrong = Vec::new();
    for dir in ["tess", "ravdess"] {
        for path in fixtures_in(dir) {
            let Some(want) = truth(&path) else { continue };
            let response = emotion
                .classify(pb::ClassifyRequest {
                    model: String::new(),
                    audio: Some(pb::Audio {
                        source: Some(pb::audio::Source::Encoded(read(&path))),
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(response.model, name);
            let total: f32 = response.scores.iter().map(|s| s.probability).sum();
            assert!((total - 1.0).abs() < 1e-3, "{}: probabilities sum to {total}", path.display());
            scored += 1;
            if response.label == want {
                right += 1;
            } else {
                wrong.push(format!("{} → {}", path.display(), response.label));
            }
        }
    }
    assert!(scored >= 20, "only {scored} labelled fixtures");
    // A serving path that disagrees with training gets most of these wrong; the trained
    // model gets nearly all of them right (they are clips of its corpora).
    assert!(right * 10 >= scored * 8, "{right}/{scored} right; wrong: {wrong:#?}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
