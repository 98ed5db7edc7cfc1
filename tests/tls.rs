//! Native TLS on both ports, with a CA made by the test (rcgen): `wss://` viewers, `https://`
//! pages and WHIP/WHEP requests, gRPC over TLS (a tonic client and `ctl --ca`); a client that
//! does not trust the certificate is refused; SIGHUP loads a renewed certificate for the next
//! connections; bad certificate settings stop the server with exit code 64.

mod common;

use common::{setup_show, Server, KEY};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

/// A certificate authority of the test's own.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for localhost and 127.0.0.1, written to `cert` and `key`;
    /// returns its DER.
    fn issue(&self, cert: &Path, key: &Path) -> Vec<u8> {
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&leaf_key, &self.issuer).unwrap();
        std::fs::write(cert, leaf.pem()).unwrap();
        std::fs::write(key, leaf_key.serialize_pem()).unwrap();
        leaf.der().to_vec()
    }

    fn client(&self, alpn: &[u8]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.issuer.der().to_vec()))
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        TlsConnector::from(Arc::new(config))
    }
}

struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

fn files(ca: &Ca) -> (Files, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca_file) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    let der = ca.issue(&cert, &key);
    std::fs::write(&ca_file, ca.pem()).unwrap();
    (
        Files {
            _dir: dir,
            cert,
            key,
            ca: ca_file,
        },
        der,
    )
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn tls(connector: &TlsConnector, addr: std::net::SocketAddr) -> std::io::Result<Tls> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// One HTTP/1.1 request over TLS: (status, body).
async fn https(
    connector: &TlsConnector,
    addr: std::net::SocketAddr,
    request: &str,
) -> (u16, String) {
    let mut s = tls(connector, addr).await.expect("TLS handshake");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn served_der(s: &Tls) -> Vec<u8> {
    s.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_ports_speak_tls_refuse_strangers_and_reload_on_sighup() {
    let ca = Ca::new("Showfloor test CA");
    let (f, first_der) = files(&ca);
    let server = Server::start_with(|c| c.tls = Some((f.cert.clone(), f.key.clone()))).await;
    let (http, grpc) = (server.app().http_addr, server.app().grpc_addr);

    // gRPC over TLS, trusting the test CA.
    let pem = std::fs::read(&f.ca).unwrap();
    let channel =
        tonic::transport::Channel::from_shared(format!("https://localhost:{}", grpc.port()))
            .unwrap()
            .tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(&pem))
                    .domain_name("localhost"),
            )
            .unwrap()
            .connect()
            .await
            .expect("gRPC over TLS");
    let mut c = common::Control {
        client: showfloor::pb::control_client::ControlClient::new(channel),
    };
    let show = setup_show(&mut c).await;
    let token = c.token(&show.room, "secure").await;

    // ctl over TLS with --ca; without it the system roots do not know the test CA.
    let ctl = |ca: Option<&Path>| {
        let mut cmd = common::bin();
        cmd.args([
            "ctl",
            "--server",
            &format!("https://localhost:{}", grpc.port()),
        ]);
        if let Some(ca) = ca {
            cmd.arg("--ca").arg(ca);
        }
        cmd.args(["--key", KEY, "get-room", &show.room])
            .output()
            .unwrap()
    };
    let out = ctl(Some(&f.ca));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ctl(None);
    assert!(!out.status.success(), "an unknown CA is refused");

    // wss:// viewer.
    let client = ca.client(b"http/1.1");
    let stream = tls(&client, http).await.unwrap();
    assert_eq!(served_der(&stream), first_der);
    let url = format!(
        "wss://localhost:{}/ws/{}?token={token}",
        http.port(),
        show.room
    );
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let welcome = loop {
        use futures_util::StreamExt;
        let m = ws.next().await.unwrap().unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            break serde_json::from_str::<serde_json::Value>(&t).unwrap();
        }
    };
    assert_eq!(welcome["type"], "welcome", "{welcome}");

    // https:// pages and media requests.
    let (status, _) = https(
        &client,
        http,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = https(
        &client,
        http,
        &format!(
            "GET /whep/{} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            show.room
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"brand\""), "{body}");
    let (status, body) = https(
        &client,
        http,
        &format!(
            "POST /whep/{} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Authorization: Bearer {token}\r\nContent-Type: application/sdp\r\n\
             Content-Length: 5\r\n\r\nhello",
            show.room
        ),
    )
    .await;
    assert_eq!(
        status, 400,
        "WHEP answers over https, in its own terms: {body}"
    );

    // Plain HTTP to the TLS port gets no page; a client that trusts another CA is refused.
    let mut plain = tokio::net::TcpStream::connect(http).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut got)).await;
    assert!(
        !got.starts_with(b"HTTP/1.1 200"),
        "plain HTTP is not served"
    );
    let stranger = Ca::new("Another CA").client(b"http/1.1");
    let refused = tls(&stranger, http).await;
    assert!(
        refused.is_err(),
        "a certificate from an unknown CA is refused"
    );

    // A renewed certificate, then SIGHUP: new connections get it.
    let renewed_der = ca.issue(&f.cert, &f.key);
    assert_ne!(renewed_der, first_der);
    // SAFETY: kill(2) on our own pid with a signal the server handles.
    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    let t = Instant::now();
    loop {
        let s = tls(&client, http).await.unwrap();
        if served_der(&s) == renewed_der {
            break;
        }
        assert!(
            t.elapsed() < common::WAIT,
            "the renewed certificate is served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The gRPC port too.
    let grpc_client = ca.client(b"h2");
    assert_eq!(
        served_der(&tls(&grpc_client, grpc).await.unwrap()),
        renewed_der
    );

    // A broken renewal keeps the certificate in use.
    std::fs::write(&f.key, "not a key").unwrap();
    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(served_der(&tls(&client, http).await.unwrap()), renewed_der);
}

#[test]
fn bad_tls_settings_stop_the_server_with_a_reason() {
    let ca = Ca::new("CA");
    let (f, _) = files(&ca);
    let run = |args: &[&std::ffi::OsStr]| {
        let out = common::bin()
            .args([
                "serve",
                "--dev",
                "--http-addr",
                "127.0.0.1:0",
                "--grpc-addr",
                "127.0.0.1:0",
            ])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&["--tls-cert".as_ref(), f.cert.as_os_str()]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("tls_cert and tls_key go together"), "{err}");
    let (code, err) = run(&[
        "--tls-cert".as_ref(),
        "/nonexistent/cert.pem".as_ref(),
        "--tls-key".as_ref(),
        f.key.as_os_str(),
    ]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    // A key that is not the certificate's.
    let other = tempfile::tempdir().unwrap();
    ca.issue(&other.path().join("c.pem"), &other.path().join("k.pem"));
    let (code, err) = run(&[
        "--tls-cert".as_ref(),
        f.cert.as_os_str(),
        "--tls-key".as_ref(),
        other.path().join("k.pem").as_os_str(),
    ]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("does not go with"), "{err}");
}
