//! API-SSL: a fresh self-signed certificate per simulator, like a router
//! whose admin ran `/certificate add … sign` and pointed `api-ssl` at it.

use std::io;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) der: Vec<u8>,
    pub(crate) pem: String,
    pub(crate) sha256: [u8; 32],
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Self-signed certificate for `localhost` and `127.0.0.1`, made the way
/// RouterOS makes one with `/certificate add … ; /certificate sign`: its
/// default key usage includes `key-cert-sign`, so it is a CA certificate
/// (basic constraints CA:TRUE) presented as the server's own.
pub(crate) fn make() -> io::Result<Tls> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let mut params = CertificateParams::new(names).map_err(other)?;
    params.distinguished_name.push(DnType::CommonName, "router");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let signing_key = KeyPair::generate().map_err(other)?;
    let cert = params.self_signed(&signing_key).map_err(other)?;
    let der = cert.der().to_vec();
    let pem = cert.pem();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(der.clone())], key)
        .map_err(other)?;
    let sha256 = sha256(&der).ok_or_else(|| other("no SHA-256 in the ring provider"))?;
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        der,
        pem,
        sha256,
    })
}

/// SHA-256 through rustls' ring provider (the hash of a TLS 1.3 suite),
/// which saves a direct dependency on a hashing crate.
pub(crate) fn sha256(data: &[u8]) -> Option<[u8; 32]> {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13()?;
    let digest = suite.common.hash_provider.hash(data);
    digest.as_ref().try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{hex, hex_colon as fingerprint_hex};

    /// FIPS 180-2 test vectors.
    #[test]
    fn sha256_vectors() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                b"",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(sha256(input).map(|d| hex(&d)).as_deref(), Some(*want));
        }
    }

    #[test]
    fn cert_is_consistent() {
        let tls = match make() {
            Ok(t) => t,
            Err(e) => panic!("make: {e}"),
        };
        assert!(tls.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(sha256(&tls.der), Some(tls.sha256));
        assert_eq!(fingerprint_hex(&[0xab, 0x01]), "AB:01");
    }
}
