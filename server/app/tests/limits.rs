//! Size limits hold before anything is buffered: a request whose gRPC frame header claims
//! 1 GiB is refused after the first 64 KiB have been offered, the server's resident memory
//! does not grow by anything like the claimed size, and the next request is served.
//!
//! tonic's client never sends a frame past its own limit, so the request is written with a
//! raw HTTP/2 client (h2): headers, then a 5-byte gRPC frame header announcing 2^30 bytes and
//! 64 KiB of them, then nothing — the stream stays open, as a slow or hostile client's would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_server::{Config, ServerBuilder};
use prosodia_tests::{fixture, read};
use tokio::sync::oneshot;
use tonic::transport::Channel;

const CLAIMED: u32 = 1 << 30;
const SENT: usize = 64 * 1024;

/// Resident memory of this process (the server runs in it), from /proc; None off Linux.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Sends the lying frame to `path` and returns (grpc-status, grpc-message) of the answer.
async fn claim_a_gibibyte(addr: SocketAddr, path: &str) -> (String, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut body) = client.send_request(request, false).unwrap();
    let mut frame = vec![0u8; 5 + SENT];
    frame[1..5].copy_from_slice(&CLAIMED.to_be_bytes());
    body.send_data(Bytes::from(frame), false).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), response)
        .await
        .expect("the server answered before the claimed gibibyte arrived")
        .unwrap();
    let (parts, mut rest) = response.into_parts();
    let mut headers = parts.headers;
    if headers.get("grpc-status").is_none() {
        // Not a trailers-only answer: the status comes in the trailers.
        while let Some(chunk) = rest.data().await {
            drop(chunk);
        }
        headers = tokio::time::timeout(Duration::from_secs(20), rest.trailers())
            .await
            .expect("trailers in time")
            .unwrap()
            .expect("trailers with a grpc-status");
    }
    let text = |k: &str| {
        headers.get(k).map(|v| v.to_str().unwrap_or_default().to_owned()).unwrap_or_default()
    };
    (text("grpc-status"), text("grpc-message"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_claiming_a_gibibyte_is_refused_before_it_is_buffered() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let config = Config::default();
    let limit = config.max_message_bytes;
    assert!((limit as u64) < u64::from(CLAIMED), "the test needs a limit below 1 GiB");
    let task = tokio::spawn(ServerBuilder::new(config).serve(listener, async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    let mut client = EmotionClient::new(channel);
    let good = || pb::ExtractFeaturesRequest {
        audio: Some(pb::Audio {
            source: Some(pb::audio::Source::Encoded(read(&fixture("tess/OAF_back_happy.wav")))),
        }),
        preset: "speech".into(),
        ..Default::default()
    };
    client.extract_features(good()).await.unwrap();
    let before = resident_bytes();

    for path in ["/prosodia.v1.Emotion/ExtractFeatures", "/prosodia.v1.Emotion/StreamClassify"] {
        let (status, message) = claim_a_gibibyte(addr, path).await;
        assert_eq!(
            status,
            (tonic::Code::OutOfRange as i32).to_string(),
            "{path}: status {status}, message {message:?}"
        );
        assert!(
            message.contains(&CLAIMED.to_string()) && message.contains(&limit.to_string()),
            "{path}: the message names the claimed size and the limit: {message:?}"
        );
    }

    if let (Some(before), Some(after)) = (before, resident_bytes()) {
        let grown = after.saturating_sub(before);
        println!("resident memory grew by {} KiB over the refusals", grown / 1024);
        assert!(grown < 64 * 1024 * 1024, "resident memory grew by {grown} bytes");
    }
    // Other requests are unaffected.
    let features = client.extract_features(good()).await.unwrap().into_inner();
    assert_eq!(features.features.len(), prosodia_dsp::utterance::NAMES.len());

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
