//! TLS on the gRPC port: a certificate authority and a `localhost` certificate are made at
//! test time (rcgen), the server serves with them, and a tonic client that trusts only that
//! authority completes a health check and an ExtractFeatures call. A plaintext client is
//! refused, and a half-configured TLS setup is a configuration error naming the missing key.
//! With `tls_client_ca` (mutual TLS) only clients presenting a certificate from that authority
//! get an answer: one with no certificate, or one signed by another authority, is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use prosodia_proto::pb;
use prosodia_proto::pb::emotion_client::EmotionClient;
use prosodia_server::{Config, ServerBuilder};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::sync::oneshot;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Writes `ca.pem`, `server.pem` and `server.key` (a `localhost` certificate signed by the
/// CA) into `dir`; returns the CA certificate's PEM.
fn make_certificates(dir: &Path) -> (String, PathBuf, PathBuf) {
    let pki = Pki::new(dir);
    (pki.ca_pem, pki.server_cert, pki.server_key)
}

/// A test certificate authority with a `localhost` server certificate and a client
/// certificate it signed, all written under one folder.
struct Pki {
    ca_pem: String,
    ca_file: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    /// A client certificate and key (PEM) signed by this authority.
    client: (String, String),
}

impl Pki {
    fn new(dir: &Path) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let sign = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names).unwrap().signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key_pem) = sign(vec!["localhost".to_owned()]);
        let client = sign(vec!["client.test".to_owned()]);
        let server_cert = dir.join("server.pem");
        let server_key = dir.join("server.key");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&server_cert, server_pem).unwrap();
        std::fs::write(&server_key, server_key_pem).unwrap();
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        Self { ca_pem: ca_cert.pem(), ca_file, server_cert, server_key, client }
    }
}

/// A health check over TLS trusting `ca`, presenting `identity` when given.
async fn health_over_tls(
    port: u16,
    ca: &str,
    identity: Option<&(String, String)>,
) -> Result<ServingStatus, String> {
    let mut tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)).domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Endpoint::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map(|r| r.into_inner().status())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn a_client_trusting_the_test_ca_talks_to_the_server_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certificates(dir.path());
    let config = Config { tls_cert: Some(cert), tls_key: Some(key), ..Config::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(ServerBuilder::new(config).serve(listener, async {
        let _ = stopped.await;
    }));

    let tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca)).domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("TLS connection with the test CA");
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);
    let audio = pb::Audio {
        source: Some(pb::audio::Source::Encoded(prosodia_tests::read(&prosodia_tests::fixture(
            "tess/OAF_back_happy.wav",
        )))),
    };
    let features = EmotionClient::new(channel)
        .extract_features(pb::ExtractFeaturesRequest {
            audio: Some(audio),
            preset: "speech".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(features.features.len(), prosodia_dsp::utterance::NAMES.len());

    // A plaintext client gets no gRPC answer from the TLS port.
    let plain = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5));
    let plain_result = match plain.connect().await {
        Ok(channel) => HealthClient::new(channel)
            .check(HealthCheckRequest { service: String::new() })
            .await
            .map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(plain_result.is_err(), "a plaintext request succeeded on the TLS port");

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_certificate_without_a_key_is_a_configuration_error_naming_tls_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, _) = make_certificates(dir.path());
    let config = Config { tls_cert: Some(cert), ..Config::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = ServerBuilder::new(config).serve(listener, async {}).await.unwrap_err();
    assert!(err.to_string().contains("tls_key"), "{err}");
}

#[tokio::test]
async fn an_unreadable_key_is_a_configuration_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, _) = make_certificates(dir.path());
    let missing = dir.path().join("missing.key");
    let config = Config { tls_cert: Some(cert), tls_key: Some(missing), ..Config::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = ServerBuilder::new(config).serve(listener, async {}).await.unwrap_err();
    assert!(err.to_string().contains("missing.key"), "{err}");
}

#[tokio::test]
async fn mutual_tls_accepts_only_clients_with_a_certificate_from_the_configured_authority() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let other_dir = tempfile::tempdir().unwrap();
    let other = Pki::new(other_dir.path());
    let config = Config {
        tls_cert: Some(pki.server_cert.clone()),
        tls_key: Some(pki.server_key.clone()),
        tls_client_ca: Some(pki.ca_file.clone()),
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(ServerBuilder::new(config).serve(listener, async {
        let _ = stopped.await;
    }));

    let trusted = health_over_tls(port, &pki.ca_pem, Some(&pki.client)).await;
    assert_eq!(trusted, Ok(ServingStatus::Serving));
    let anonymous = health_over_tls(port, &pki.ca_pem, None).await;
    assert!(anonymous.is_err(), "a client without a certificate was served: {anonymous:?}");
    let stranger = health_over_tls(port, &pki.ca_pem, Some(&other.client)).await;
    assert!(stranger.is_err(), "a certificate from another authority was accepted: {stranger:?}");
    // The refusals cost the server nothing: the trusted client is still served.
    let again = health_over_tls(port, &pki.ca_pem, Some(&pki.client)).await;
    assert_eq!(again, Ok(ServingStatus::Serving));

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_client_authority_without_tls_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let config = Config { tls_client_ca: Some(pki.ca_file), ..Config::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = ServerBuilder::new(config).serve(listener, async {}).await.unwrap_err();
    assert!(err.to_string().contains("tls_client_ca"), "{err}");
}
