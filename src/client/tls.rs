//! API-SSL (port 8729) with rustls.
//!
//! RouterOS has no certificate by default and rustls does no anonymous DH,
//! so the router needs one, and it is nearly always self-signed. Three ways
//! to trust it: the public webpki roots (a real certificate), a CA file (a
//! private CA that signed the router's certificate), or pinning the SHA-256
//! of the router's own certificate, which is what most operators will do.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{ClientError, TlsConfig};
use crate::cause::Cause;
use crate::encoding::hex_colon;

#[derive(Clone, PartialEq, Eq)]
enum TlsMode {
    /// Verify against the public web PKI roots and the host name.
    WebPki,
    /// Verify against the CA certificate(s) in this PEM file and the host name.
    CaFile(PathBuf),
    /// Accept exactly the certificate with this SHA-256 (of its DER bytes).
    Pinned([u8; 32]),
}

impl fmt::Debug for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsMode::WebPki => write!(f, "WebPki"),
            TlsMode::CaFile(p) => write!(f, "CaFile({})", p.display()),
            TlsMode::Pinned(h) => write!(f, "Pinned({})", hex_colon(h)),
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsMode {
    /// A pin wins over a CA file (config rejects both being set anyway).
    fn from_config(cfg: &TlsConfig) -> TlsMode {
        match (&cfg.cert_sha256, &cfg.ca_file) {
            (Some(pin), _) => TlsMode::Pinned(*pin),
            (None, Some(path)) => TlsMode::CaFile(path.clone()),
            (None, None) => TlsMode::WebPki,
        }
    }
}

/// Reads the CA file, if the config names one. Blocking file I/O with a
/// size limit: call it off the runtime thread.
pub(crate) fn read_ca_file(cfg: &TlsConfig) -> Result<Option<Vec<u8>>, ClientError> {
    let Some(path) = &cfg.ca_file else {
        return Ok(None);
    };
    crate::files::read_regular(path, crate::files::MAX_PEM_BYTES)
        .map(Some)
        .map_err(|e| {
            ClientError::Certificate(format!("cannot read CA file {}: {e}", path.display()))
        })
}

/// The rustls config for `cfg`; `ca_pem` is the CA file's content, read by
/// [`read_ca_file`].
pub(crate) fn client_config(
    cfg: &TlsConfig,
    ca_pem: Option<&[u8]>,
) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mode = TlsMode::from_config(cfg);
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(Cause::of(e)))?;
    let config = match &mode {
        TlsMode::WebPki => {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsMode::CaFile(path) => {
            let pem = ca_pem.unwrap_or_default();
            let mut roots = RootCertStore::empty();
            let mut exact = Vec::new();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| {
                    ClientError::Certificate(format!("bad PEM in CA file {}: {e}", path.display()))
                })?;
                roots.add(cert.clone()).map_err(|e| {
                    ClientError::Certificate(format!(
                        "unusable CA certificate in {}: {e}",
                        path.display()
                    ))
                })?;
                exact.push(cert);
            }
            if roots.is_empty() {
                return Err(ClientError::Certificate(format!(
                    "no certificate found in CA file {}",
                    path.display()
                )));
            }
            let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| {
                    ClientError::Certificate(format!("CA file {}: {e}", path.display()))
                })?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(CaFileVerifier {
                    exact,
                    chain,
                    provider: provider(),
                }))
                .with_no_client_auth()
        }
        TlsMode::Pinned(sha256) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCert {
                sha256: *sha256,
                provider: provider(),
            }))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, ClientError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|e| {
        ClientError::Tls(Cause::with(
            format!("{host:?} is not a valid TLS server name"),
            e,
        ))
    })
}

/// Turns a failed handshake into a certificate error when that is what it was.
pub(crate) fn handshake_error(err: std::io::Error) -> ClientError {
    if let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::InvalidCertificate(cert) => {
                ClientError::Certificate(describe_cert_error(cert))
            }
            other => {
                let text = other.to_string();
                ClientError::Tls(Cause::with(text, err))
            }
        };
    }
    ClientError::Tls(Cause::of(err))
}

fn describe_cert_error(err: &CertificateError) -> String {
    match err {
        CertificateError::UnknownIssuer => {
            "not signed by a trusted CA (self-signed? set a CA file or pin its SHA-256)".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "not valid for the router's host name".into()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired".into(),
        CertificateError::Other(other) => other.0.to_string(),
        other => other.to_string(),
    }
}

#[derive(Debug)]
struct PinnedCert {
    sha256: [u8; 32],
    provider: Arc<CryptoProvider>,
}

#[derive(Debug)]
struct PinMismatch {
    got: [u8; 32],
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SHA-256 {} does not match the pinned fingerprint",
            hex_colon(&self.got)
        )
    }
}

impl std::error::Error for PinMismatch {}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The pin replaces chain, name and validity checks: it names the one
        // certificate we accept. The handshake signature is still verified
        // below, so the peer must hold the certificate's private key.
        let digest = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
        if digest.as_ref() == self.sha256 {
            Ok(ServerCertVerified::assertion())
        } else {
            let mut got = [0u8; 32];
            got.copy_from_slice(digest.as_ref());
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(PinMismatch { got })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        handshake_signatures::tls12(&self.provider, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        handshake_signatures::tls13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        handshake_signatures::schemes(&self.provider)
    }
}

/// Trusts what the CA file's certificates sign (chain and host name
/// checked), and also a presented certificate identical to one in the file.
///
/// The second rule exists for the router's own certificate: made with
/// `/certificate add … ; /certificate sign`, it gets RouterOS's default key
/// usage, which includes `key-cert-sign`, so it is a CA certificate and
/// webpki refuses it as an end entity (`CaUsedAsEndEntity`). The operator
/// put exactly that certificate in the file, which says as much as a pin;
/// the handshake signature is still verified, so the peer must hold its key.
#[derive(Debug)]
struct CaFileVerifier {
    exact: Vec<CertificateDer<'static>>,
    chain: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for CaFileVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.exact.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            return Ok(ServerCertVerified::assertion());
        }
        self.chain
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        handshake_signatures::tls12(&self.provider, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        handshake_signatures::tls13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        handshake_signatures::schemes(&self.provider)
    }
}

/// Both custom verifiers replace only the certificate check: the handshake
/// signature is verified the standard way, so the peer must hold the key.
mod handshake_signatures {
    use super::*;

    pub(super) fn tls12(
        p: &CryptoProvider,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &p.signature_verification_algorithms,
        )
    }

    pub(super) fn tls13(
        p: &CryptoProvider,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &p.signature_verification_algorithms,
        )
    }

    pub(super) fn schemes(p: &CryptoProvider) -> Vec<SignatureScheme> {
        p.signature_verification_algorithms.supported_schemes()
    }
}
