//! End-to-end tests: real tonic servers and clients, and raw rustls handshakes, over loopback
//! with certificates from the development CA.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::devpki::{self, DevPki};
use crate::{
    Identity, TlsFiles, identity_from_der, install_crypto_provider, peer_identity,
    rustls_client_config, rustls_server_config,
};

const TIMEOUT: Duration = Duration::from_secs(10);

fn gateway() -> Identity {
    Identity::Gateway("main".into())
}

fn department() -> Identity {
    Identity::Department("tax".into())
}

fn requester() -> Identity {
    Identity::Requester("bureau-1".into())
}

fn dev_pki(dir: &Path) -> DevPki {
    devpki::init(dir, &[gateway(), department(), requester()]).unwrap()
}

/// A health server whose interceptor records every caller's identity.
struct TestServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Identity>>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl TestServer {
    async fn start(files: &TlsFiles) -> TestServer {
        install_crypto_provider();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = {
            let seen = Arc::clone(&seen);
            move |req: tonic::Request<()>| {
                let identity = peer_identity(&req)?;
                seen.lock().unwrap().push(identity);
                Ok(req)
            }
        };
        let (_reporter, health) = tonic_health::server::health_reporter();
        let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = incoming.local_addr().unwrap();
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = Server::builder()
            .tls_config(files.server_config().unwrap())
            .unwrap()
            .add_service(InterceptedService::new(health, recorder))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = signal.await;
            });
        TestServer {
            addr,
            seen,
            shutdown: Some(shutdown),
            task: Some(tokio::spawn(server)),
        }
    }

    fn seen(&self) -> Vec<Identity> {
        self.seen.lock().unwrap().clone()
    }

    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }
}

/// How a health check ended.
#[derive(Debug)]
enum Outcome {
    Serving,
    ConnectFailed(String),
    RpcFailed(tonic::Status),
}

async fn health_check(addr: SocketAddr, tls: ClientTlsConfig) -> Outcome {
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT);
    let channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(err) => return Outcome::ConnectFailed(format!("{err:?}")),
    };
    let request = HealthCheckRequest {
        service: String::new(),
    };
    match HealthClient::new(channel).check(request).await {
        Ok(response) => {
            assert_eq!(response.into_inner().status(), ServingStatus::Serving);
            Outcome::Serving
        }
        Err(status) => Outcome::RpcFailed(status),
    }
}

#[tokio::test]
async fn mutual_tls_call_succeeds_and_server_sees_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dev_pki(dir.path());
    let server = TestServer::start(&pki.files(&department())).await;

    for caller in [gateway(), requester()] {
        let tls = pki.files(&caller).client_config("localhost").unwrap();
        let outcome = health_check(server.addr, tls).await;
        assert!(matches!(outcome, Outcome::Serving), "{caller}: {outcome:?}");
    }
    assert_eq!(server.seen(), vec![gateway(), requester()]);
    server.stop().await;
}

#[tokio::test]
async fn certificate_issued_later_from_the_same_ca_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dev_pki(dir.path());
    let auditor = Identity::Auditor("audit-office".into());
    let issued_dir = dir.path().join("issued");
    let files = devpki::issue(&pki.dir, &auditor, &issued_dir).unwrap();
    let server = TestServer::start(&pki.files(&department())).await;

    let tls = files.client_config("localhost").unwrap();
    let outcome = health_check(server.addr, tls).await;
    assert!(matches!(outcome, Outcome::Serving), "{outcome:?}");
    assert_eq!(server.seen(), vec![auditor]);
    server.stop().await;
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dev_pki(&dir.path().join("ours"));
    let other = dev_pki(&dir.path().join("other"));
    let server = TestServer::start(&pki.files(&department())).await;

    // The client trusts our server but presents a certificate our CA never issued.
    let rogue = TlsFiles {
        ca: pki.ca.clone(),
        ..other.files(&gateway())
    };
    let outcome = health_check(server.addr, rogue.client_config("localhost").unwrap()).await;
    assert!(!matches!(outcome, Outcome::Serving), "{outcome:?}");
    assert!(server.seen().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn client_without_certificate_cannot_complete_an_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dev_pki(dir.path());
    let server = TestServer::start(&pki.files(&department())).await;

    let ca_pem = std::fs::read(&pki.ca).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    match health_check(server.addr, tls).await {
        Outcome::Serving => panic!("a client without a certificate was served"),
        Outcome::ConnectFailed(_) => {}
        // The handshake looks complete to the client; the server's rejection shows up on the
        // first RPC as one of these codes rather than Unauthenticated.
        Outcome::RpcFailed(status) => assert!(
            matches!(
                status.code(),
                tonic::Code::Unknown | tonic::Code::Cancelled | tonic::Code::Unavailable
            ),
            "{status:?}"
        ),
    }
    assert!(server.seen().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn client_verifies_the_server_name() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dev_pki(dir.path());
    let server = TestServer::start(&pki.files(&department())).await;

    let tls = pki
        .files(&gateway())
        .client_config("tax.example.org")
        .unwrap();
    let outcome = health_check(server.addr, tls).await;
    assert!(
        matches!(&outcome, Outcome::ConnectFailed(reason) if reason.contains("NotValidForName")),
        "{outcome:?}"
    );
    assert!(server.seen().is_empty());
    server.stop().await;
}

/// Runs a TLS handshake plus one byte each way over an in-memory pipe, returning the identity
/// the server saw, or the server's error.
async fn rustls_exchange(server: &TlsFiles, client: &TlsFiles) -> Result<Identity, String> {
    let acceptor = tokio_rustls::TlsAcceptor::from(rustls_server_config(server).unwrap());
    let connector = tokio_rustls::TlsConnector::from(rustls_client_config(client).unwrap());
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);

    let server_side = async move {
        let mut stream = acceptor
            .accept(server_io)
            .await
            .map_err(|err| err.to_string())?;
        let (_, connection) = stream.get_ref();
        assert_eq!(connection.alpn_protocol(), Some(&b"h2"[..]));
        let leaf = connection
            .peer_certificates()
            .and_then(|certs| certs.first())
            .ok_or("no peer certificate")?
            .clone();
        let mut byte = [0u8; 1];
        stream
            .read_exact(&mut byte)
            .await
            .map_err(|err| err.to_string())?;
        stream
            .write_all(&byte)
            .await
            .map_err(|err| err.to_string())?;
        stream.flush().await.map_err(|err| err.to_string())?;
        identity_from_der(&leaf).map_err(|err| err.to_string())
    };
    let client_side = async move {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut stream = connector.connect(name, client_io).await?;
        stream.write_all(b"x").await?;
        stream.flush().await?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await?;
        Ok::<_, std::io::Error>(byte)
    };
    let (server_result, client_result) =
        tokio::time::timeout(TIMEOUT, async { tokio::join!(server_side, client_side) })
            .await
            .unwrap();
    if server_result.is_ok() {
        assert_eq!(&client_result.unwrap(), b"x");
    }
    server_result
}

#[tokio::test]
async fn rustls_configs_complete_a_mutual_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dev_pki(dir.path());
    let seen = rustls_exchange(&pki.files(&department()), &pki.files(&gateway())).await;
    assert_eq!(seen.unwrap(), gateway());
}

#[tokio::test]
async fn rustls_server_config_refuses_a_client_from_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dev_pki(&dir.path().join("ours"));
    let other = dev_pki(&dir.path().join("other"));
    let rogue = TlsFiles {
        ca: pki.ca.clone(),
        ..other.files(&gateway())
    };
    let err = rustls_exchange(&pki.files(&department()), &rogue)
        .await
        .unwrap_err();
    assert!(err.contains("certificate"), "{err}");
}

/// Client side of a handshake with `client` against a server presenting `server`'s certificate.
async fn handshake(server: &TlsFiles, client: Arc<rustls::ClientConfig>) -> Result<(), String> {
    let acceptor = tokio_rustls::TlsAcceptor::from(rustls_server_config(server).unwrap());
    let connector = tokio_rustls::TlsConnector::from(client);
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server_side = async move {
        if let Ok(mut stream) = acceptor.accept(server_io).await {
            let mut byte = [0u8; 1];
            let _ = stream.read_exact(&mut byte).await;
        }
    };
    let client_side = async move {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut stream = connector
            .connect(name, client_io)
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(b"x").await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())
    };
    let ((), result) =
        tokio::time::timeout(TIMEOUT, async { tokio::join!(server_side, client_side) })
            .await
            .unwrap();
    result
}

#[tokio::test]
async fn peer_config_accepts_only_the_expected_server_identity() {
    let dir = tempfile::tempdir().unwrap();
    let other = Identity::Department("natural-resources".into());
    let pki = devpki::init(dir.path(), &[gateway(), department(), other.clone()]).unwrap();
    let gateway_files = pki.files(&gateway());

    let expecting = crate::rustls_client_config_for_peer(&gateway_files, department()).unwrap();
    handshake(&pki.files(&department()), Arc::clone(&expecting))
        .await
        .unwrap();

    // A valid certificate of the same CA, but another department's: refused.
    let err = handshake(&pki.files(&other), expecting).await.unwrap_err();
    assert!(
        err.contains(&format!("expected `{}`", department())),
        "{err}"
    );
}

#[test]
fn install_crypto_provider_is_idempotent() {
    install_crypto_provider();
    install_crypto_provider();
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());
}
