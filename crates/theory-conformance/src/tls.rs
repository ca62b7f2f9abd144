//! TLS for stand-ins that must speak `https` (a Modal endpoint, AWS STS): a throwaway CA and a
//! certificate it signed for 127.0.0.1. Clients trust the CA through `SSL_CERT_FILE`.

use std::sync::Arc;

/// A CA and a certificate it signed for 127.0.0.1, as an acceptor and the CA's PEM.
///
/// # Panics
/// When the certificates cannot be made (a bug).
#[must_use]
pub fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A name of its own: with rcgen's default name on both, OpenSSL (Python's ssl) takes the
    // leaf, whose issuer then equals its subject, for a self-signed certificate.
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Theory test CA");
    let ca = ca_params.self_signed(&ca_key).expect("the CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("a key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("parameters")
        .signed_by(&leaf_key, &issuer)
        .expect("the certificate");
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("a server configuration");
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca.pem())
}
