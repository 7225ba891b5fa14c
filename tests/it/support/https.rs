//! TLS for the fake upstreams: a test certificate authority and the certificate it signed for
//! 127.0.0.1 and localhost (`tls/`, made by `tls/make.sh`; the authority's key was thrown
//! away, the upstream's key is test material), the server side that wraps an accepted TCP
//! connection in it, and the client config that trusts that authority.
//!
//! The client side is handed to `HttpClient` explicitly (`HttpOptions::tls`, see
//! `upstream::Net::client`): the code under test verifies the upstream's certificate as it
//! does in production, against roots it was told to trust.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

const CA: &[u8] = include_bytes!("tls/ca.pem");
const UPSTREAM_CERT: &[u8] = include_bytes!("tls/upstream.pem");
const UPSTREAM_KEY: &[u8] = include_bytes!("tls/upstream.key");

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config that trusts the test certificate authority (and nothing else).
pub fn client_tls() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(CA).expect("tls/ca.pem"))
                .expect("the test CA is a valid root");
            Arc::new(
                rustls::ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .expect("protocol versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// What a fake upstream's TLS offers in ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// h2 and http/1.1, as the real providers' endpoints do (an HTTP library's server).
    H2AndHttp1,
    /// http/1.1 only (a server that writes HTTP/1.1 bytes itself).
    Http1,
}

/// The server side: the upstream certificate, offering `alpn`.
pub fn acceptor(alpn: Alpn) -> TlsAcceptor {
    static ACCEPTORS: OnceLock<[TlsAcceptor; 2]> = OnceLock::new();
    let [both, http1] = ACCEPTORS.get_or_init(|| {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(UPSTREAM_CERT)
            .collect::<Result<_, _>>()
            .expect("tls/upstream.pem");
        let key = PrivateKeyDer::from_pem_slice(UPSTREAM_KEY).expect("tls/upstream.key");
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the test certificate and key match");
        let offering = |protocols: &[&[u8]]| {
            let mut c = config.clone();
            c.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
            TlsAcceptor::from(Arc::new(c))
        };
        [offering(&[b"h2", b"http/1.1"]), offering(&[b"http/1.1"])]
    });
    match alpn {
        Alpn::H2AndHttp1 => both.clone(),
        Alpn::Http1 => http1.clone(),
    }
}

/// `tcp` after a TLS handshake as the test upstream (`None` when the client gave up).
pub async fn accept(tcp: TcpStream, alpn: Alpn) -> Option<TlsStream<TcpStream>> {
    acceptor(alpn).accept(tcp).await.ok()
}
