//! TLS to a server that serves its own (`--tls`): `wss://` viewers, `https://` WHIP/WHEP and
//! `/metrics`, gRPC over TLS. The system's roots are trusted, plus a private CA (`--ca`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A viewer's connection: plain, or with TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Private CAs the HTTP client trusts too (set once, before its first use).
static EXTRA_ROOTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();

pub(crate) fn extra_roots() -> Vec<reqwest::Certificate> {
    EXTRA_ROOTS
        .get()
        .into_iter()
        .flatten()
        .filter_map(|pem| reqwest::Certificate::from_pem(pem).ok())
        .collect()
}

/// How the harness speaks TLS to the server.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    /// The name the certificate is checked against (`None`: the address's IP).
    name: Option<String>,
    ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("name", &self.name).finish()
    }
}

impl Tls {
    /// The system's roots and `ca_pem` (a private CA); the certificate checked against
    /// `name`, or the server's IP address when `None`.
    pub fn new(ca_pem: Option<Vec<u8>>, name: Option<String>) -> anyhow::Result<Tls> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(pem) = &ca_pem {
            use rustls::pki_types::pem::PemObject;
            let mut added = 0;
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
                roots.add(cert.map_err(|e| anyhow::anyhow!("--ca: {e}"))?)?;
                added += 1;
            }
            anyhow::ensure!(added > 0, "--ca: no PEM certificate in it");
            let _ = EXTRA_ROOTS.set(vec![pem.clone()]);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
            ca_pem,
        })
    }

    /// The host to name in URLs and to check the certificate against.
    pub fn host(&self, addr: SocketAddr) -> String {
        self.name.clone().unwrap_or_else(|| addr.ip().to_string())
    }

    /// TLS over an open connection to `addr`.
    pub async fn connect(&self, tcp: TcpStream) -> anyhow::Result<Conn> {
        let addr = tcp.peer_addr()?;
        let name = rustls::pki_types::ServerName::try_from(self.host(addr))?;
        let tls = self.connector.connect(name, tcp).await?;
        Ok(Conn::Tls(Box::new(tls)))
    }

    /// The same trust for the gRPC control plane.
    pub fn grpc_config(&self) -> tonic::transport::ClientTlsConfig {
        let mut c = tonic::transport::ClientTlsConfig::new().with_native_roots();
        if let Some(pem) = &self.ca_pem {
            c = c.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        if let Some(name) = &self.name {
            c = c.domain_name(name.clone());
        }
        c
    }
}
