//! From a `postgres://` URL to connections: libpq's `sslmode` and `sslrootcert`, over rustls.
//
// tokio-postgres knows only `disable`, `prefer` and `require` and never checks a certificate
// itself; the TLS connector decides. We follow libpq's meaning of each mode:
// - `disable`: plain TCP.
// - `prefer` (libpq's default) and `require`: encrypted (`prefer` falls back to plain if the
//   server has no TLS) but the certificate is not verified, as in libpq: they protect against
//   a passive eavesdropper, not an active attacker. Debian's PostgreSQL ships TLS on with a
//   self-signed "snakeoil" certificate, which these modes accept.
// - `verify-ca` and `verify-full`: the certificate must chain to `sslrootcert` (a PEM file)
//   or, without it, to the system's roots; rustls always checks the host name too, so
//   `verify-ca` is as strict as `verify-full` here.

use crate::store::StoreError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// A parsed `--postgres` URL: the connection settings and the TLS connector they call for.
#[derive(Clone)]
pub struct PgTarget {
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: MakeRustlsConnect,
    /// The URL without its password, for messages.
    pub(super) shown: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

fn bad(url: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        op: "read the PostgreSQL URL",
        source: format!("{url}: {why}").into(),
    }
}

impl PgTarget {
    /// Parses a `postgres://` (or `postgresql://`) URL; the error says what is wrong in it.
    pub fn parse(raw: &str) -> Result<PgTarget, StoreError> {
        let mut url = url::Url::parse(raw).map_err(|e| bad("the PostgreSQL URL", e))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(bad(
                "the PostgreSQL URL",
                "must start with postgres:// or postgresql://",
            ));
        }
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
        }
        let shown = url.to_string();
        let mut url = url::Url::parse(raw).expect("parsed above");
        let mut ssl_mode = "prefer".to_string();
        let mut root_cert = None;
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter_map(|(k, v)| match &*k {
                "sslmode" => {
                    ssl_mode = v.into_owned();
                    None
                }
                "sslrootcert" => {
                    root_cert = Some(v.into_owned());
                    None
                }
                _ => Some((k.into_owned(), v.into_owned())),
            })
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        let mut config =
            tokio_postgres::Config::from_str(url.as_str()).map_err(|e| bad(&shown, e))?;
        let verify = match ssl_mode.as_str() {
            "disable" => {
                config.ssl_mode(SslMode::Disable);
                false
            }
            "allow" | "prefer" => {
                config.ssl_mode(SslMode::Prefer);
                false
            }
            "require" => {
                config.ssl_mode(SslMode::Require);
                false
            }
            "verify-ca" | "verify-full" => {
                config.ssl_mode(SslMode::Require);
                true
            }
            other => {
                return Err(bad(
                    &shown,
                    format!(
                        "sslmode={other} is not one of disable, allow, prefer, require, \
                         verify-ca, verify-full"
                    ),
                ))
            }
        };
        if config.get_dbname().is_none() {
            return Err(bad(&shown, "names no database (postgres://HOST/DATABASE)"));
        }
        let tls = tls_config(verify, root_cert.as_deref()).map_err(|e| bad(&shown, e))?;
        Ok(PgTarget {
            config,
            tls: MakeRustlsConnect::new(tls),
            shown,
        })
    }

    /// The same server and user, another database.
    pub fn with_database(&self, name: &str) -> PgTarget {
        let mut t = self.clone();
        t.config.dbname(name);
        t
    }

    /// One connection; its driver runs on a task of its own until the client is dropped.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, StoreError> {
        let (client, connection) =
            self.config
                .connect(self.tls.clone())
                .await
                .map_err(|e| StoreError::Backend {
                    op: "connect to PostgreSQL",
                    source: Box::new(e),
                })?;
        let shown = self.shown.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(
                    target_db = %shown,
                    error = &e as &dyn std::error::Error,
                    "PostgreSQL connection ended"
                );
            }
        });
        Ok(client)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(verify: bool, root_cert: Option<&str>) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if !verify {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider())))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("sslrootcert {path}: {e}"))?;
            for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
                let cert: CertificateDer<'static> =
                    cert.map_err(|e| format!("sslrootcert {path}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("sslrootcert {path}: {e}"))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err(
            "sslmode asks to verify the server, but no root certificate was found \
                    (give sslrootcert=FILE.pem)"
                .into(),
        );
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// libpq's `prefer` / `require`: encrypt, accept any certificate (signatures still checked,
/// so the handshake is a real one).
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(raw: &str) -> String {
        match PgTarget::parse(raw) {
            Ok(_) => String::new(),
            Err(e) => format!("{}", std::error::Error::source(&e).unwrap()),
        }
    }

    #[test]
    fn urls_parse_with_libpq_ssl_modes_and_errors_say_what_is_wrong() {
        for ok in [
            "postgres://u:p@127.0.0.1:5432/db",
            "postgresql://u@db.example/shows?sslmode=require&application_name=x",
            "postgres://u@h/db?sslmode=disable",
        ] {
            assert_eq!(message(ok), "", "{ok}");
        }
        let t = PgTarget::parse("postgres://u:secret@h:6543/db?sslmode=disable").unwrap();
        assert_eq!(t.config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(t.config.get_dbname(), Some("db"));
        assert!(!format!("{t:?}").contains("secret"), "{t:?}");
        assert!(message("mysql://h/db").contains("postgres://"));
        assert!(message("postgres://h").contains("names no database"));
        assert!(message("postgres://h/db?sslmode=sometimes").contains("sslmode=sometimes"));
        assert!(
            message("postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent.pem")
                .contains("/nonexistent.pem")
        );
        assert!(!message("postgres://u:hunter2@h/db?sslmode=bad").contains("hunter2"));
    }
}
