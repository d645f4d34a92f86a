//! Fuzz body: the gRPC service handlers fed arbitrary requests.
//!
//! A real server (the bundled model, one worker, small limits) runs in-process on
//! `127.0.0.1:0`; each input becomes one Classify, ExtractFeatures or StreamClassify call
//! through the generated client, so the whole path is exercised: message decoding, the
//! request middleware, validation, decoding, feature extraction, the model and the stream
//! state machine. The last byte of the input picks the call and the five before it pick the
//! request's fields from a table of ordinary and hostile values (empty, unknown, NaN,
//! infinite, zero, huge); the rest is the audio, so the shared fixtures make useful seeds.
//! One selector instead sends the bytes as an encoded protobuf message, to reach fields no
//! table names. Any panic anywhere in the server aborts the fuzzer; after every call the
//! server must still answer a well-formed request, so a handler that wedges the service (a
//! lost worker, a leaked stream slot) is a finding too.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_server::{Config, ServerBuilder};
use prost::Message;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Channel;

/// The in-process server and a client channel to it.
pub(crate) struct Harness {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
}

/// Hostile and ordinary floating-point values for window and hop lengths.
const SECONDS: [f64; 8] = [0.0, -1.0, f64::NAN, f64::INFINITY, 0.25, 1.0, 1e12, 1e-9];
/// Model names: the default, the bundled one, an unknown one.
const MODELS: [&str; 4] = ["", "seed-cnn-lstm", "no-such-model", "seed-cnn-lstm\u{0}"];
/// Sample rates, including the refused ones.
const RATES: [u32; 8] = [0, 1, 8_000, 16_000, 44_100, 48_000, 384_000, u32::MAX];

impl Harness {
    /// Starts the server on the model repository `models`.
    pub(crate) fn start(models: PathBuf) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let config = Config {
            models: Some(models),
            workers: 1,
            max_audio_seconds: 20.0,
            max_stream_seconds: 20.0,
            max_message_bytes: 1 << 20,
            request_timeout_seconds: 20.0,
            stream_idle_timeout_seconds: 5.0,
            ..Config::default()
        };
        let addr: SocketAddr = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("local address");
            tokio::spawn(ServerBuilder::new(config).serve(listener, std::future::pending()));
            addr
        });
        let channel = runtime.block_on(async {
            let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .expect("endpoint")
                .timeout(Duration::from_secs(30));
            // The server starts in the background; retry until it listens.
            for _ in 0..200 {
                if let Ok(channel) = endpoint.connect().await {
                    return channel;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("the server did not start on {addr}");
        });
        Self { runtime, channel }
    }

    fn client(&self) -> EmotionClient<Channel> {
        EmotionClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }

    /// Runs one input.
    pub(crate) fn run(&self, data: &[u8]) {
        let Some((&selector, rest)) = data.split_last() else { return };
        let (audio, knobs) = if rest.len() >= 5 {
            let (audio, knobs) = rest.split_at(rest.len() - 5);
            (audio, [knobs[0], knobs[1], knobs[2], knobs[3], knobs[4]])
        } else {
            (rest, [0; 5])
        };
        self.runtime.block_on(async {
            let mut client = self.client();
            match selector % 5 {
                0 => {
                    let _ = client.classify(classify_request(audio, knobs)).await;
                }
                1 => {
                    if let Ok(request) = pb::ClassifyRequest::decode(rest) {
                        let _ = client.classify(request).await;
                    }
                }
                2 => {
                    let _ = client.extract_features(features_request(audio, knobs)).await;
                }
                3 => {
                    if let Ok(request) = pb::ExtractFeaturesRequest::decode(rest) {
                        let _ = client.extract_features(request).await;
                    }
                }
                _ => stream(&mut client, audio, knobs).await,
            }
            self.assert_still_serving(&mut client).await;
        });
    }

    /// A well-formed request still gets its answer: the previous one broke nothing.
    async fn assert_still_serving(&self, client: &mut EmotionClient<Channel>) {
        let probe = pb::ClassifyRequest {
            audio: Some(raw_audio(&tone_s16(), 1, 16_000, 1)),
            ..Default::default()
        };
        if let Err(status) = client.classify(probe).await {
            panic!("the server stopped serving after the last input: {status:?}");
        }
    }
}

/// 0.5 s of a 200 Hz tone, 16-bit little-endian at 16 kHz.
fn tone_s16() -> Vec<u8> {
    (0..8000)
        .flat_map(|i| {
            let x = (i as f32 * 200.0 * std::f32::consts::TAU / 16_000.0).sin() * 12_000.0;
            (x as i16).to_le_bytes()
        })
        .collect()
}

fn raw_audio(data: &[u8], encoding: i32, sample_rate: u32, channels: u32) -> pb::Audio {
    pb::Audio {
        source: Some(pb::audio::Source::Raw(pb::RawAudio {
            encoding,
            sample_rate,
            channels,
            data: data.to_vec(),
        })),
    }
}

/// Encoded bytes, or raw PCM in a format the knobs pick.
fn audio_message(audio: &[u8], knobs: [u8; 5]) -> pb::Audio {
    if knobs[2] & 1 == 0 {
        pb::Audio { source: Some(pb::audio::Source::Encoded(audio.to_vec())) }
    } else {
        let encoding = i32::from(knobs[2] >> 1 & 3);
        raw_audio(audio, encoding, RATES[usize::from(knobs[3] & 7)], u32::from(knobs[4] & 3))
    }
}

fn classify_request(audio: &[u8], knobs: [u8; 5]) -> pb::ClassifyRequest {
    let timeline = (knobs[2] & 0x10 != 0).then(|| pb::TimelineOptions {
        window_seconds: SECONDS[usize::from(knobs[3] >> 3 & 7)],
        hop_seconds: SECONDS[usize::from(knobs[4] >> 3 & 7)],
    });
    pb::ClassifyRequest {
        model: MODELS[usize::from(knobs[0] & 3)].to_owned(),
        model_version: u32::from(knobs[1] % 3),
        audio: (knobs[0] & 4 == 0).then(|| audio_message(audio, knobs)),
        timeline,
    }
}

fn features_request(audio: &[u8], knobs: [u8; 5]) -> pb::ExtractFeaturesRequest {
    const PRESETS: [&str; 4] = ["", "seed", "speech", "no-such-preset"];
    pb::ExtractFeaturesRequest {
        audio: (knobs[0] & 4 == 0).then(|| audio_message(audio, knobs)),
        model: MODELS[usize::from(knobs[0] & 3)].to_owned(),
        model_version: u32::from(knobs[1] % 3),
        preset: PRESETS[usize::from(knobs[1] >> 2 & 3)].to_owned(),
        include_frames: knobs[2] & 0x20 != 0,
    }
}

/// One StreamClassify call: a config (or none, or two), the audio in chunks of a size the
/// knobs pick, then a half-close or an abrupt end; the responses are read to the end.
async fn stream(client: &mut EmotionClient<Channel>, audio: &[u8], knobs: [u8; 5]) {
    use pb::stream_classify_request::Message as M;
    let format = if knobs[2] & 1 == 0 {
        pb::stream_config::Format::Encoded(pb::EncodedFormat {})
    } else {
        pb::stream_config::Format::Raw(pb::RawFormat {
            encoding: i32::from(knobs[2] >> 1 & 3),
            sample_rate: RATES[usize::from(knobs[3] & 7)],
            channels: u32::from(knobs[4] & 3),
        })
    };
    let config = pb::StreamConfig {
        model: MODELS[usize::from(knobs[0] & 3)].to_owned(),
        model_version: u32::from(knobs[1] % 3),
        format: (knobs[0] & 0x40 == 0).then_some(format),
        window_seconds: SECONDS[usize::from(knobs[3] >> 3 & 7)],
        hop_seconds: SECONDS[usize::from(knobs[4] >> 3 & 7)],
        interim_results: knobs[2] & 0x20 != 0,
    };
    let mut messages = Vec::new();
    if knobs[0] & 4 == 0 {
        messages.push(M::Config(config.clone()));
    }
    let chunk = 1 + usize::from(knobs[1]) * 37;
    for (i, piece) in audio.chunks(chunk).enumerate() {
        messages.push(M::Audio(piece.to_vec()));
        if i == 1 && knobs[0] & 8 != 0 {
            messages.push(M::Config(config.clone()));
        }
    }
    let requests: Vec<_> =
        messages.into_iter().map(|m| pb::StreamClassifyRequest { message: Some(m) }).collect();
    let hang_up = knobs[0] & 0x80 != 0;
    // A client that hangs up never half-closes: its request stream stays open until the call
    // is dropped, which resets the HTTP/2 stream.
    let tail: Pin<Box<dyn Stream<Item = pb::StreamClassifyRequest> + Send>> =
        if hang_up { Box::pin(tokio_stream::pending()) } else { Box::pin(tokio_stream::empty()) };
    let outbound = tokio_stream::iter(requests).chain(tail);
    let read = async {
        if let Ok(response) = client.stream_classify(outbound).await {
            let mut inbound = response.into_inner();
            while let Ok(Some(_)) = inbound.message().await {}
        }
    };
    if hang_up {
        let _ = tokio::time::timeout(Duration::from_millis(100), read).await;
    } else {
        read.await;
    }
}
