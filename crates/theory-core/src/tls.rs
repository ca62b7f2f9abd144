//! TLS for the orchestrator's own connections (a processor endpoint over `https`/`wss`, such as
//! a Modal deployment): rustls with the ring provider and the Mozilla roots built in, plus the
//! certificates of the PEM file named by `SSL_CERT_FILE`, the variable OpenSSL and most clients
//! read — so a private CA, or a test's self-signed endpoint, is trusted the usual way.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::EnvSnapshot;
use crate::env::names;

/// The variable naming extra trusted certificates (PEM).
pub const EXTRA_ROOTS_VARIABLE: &str = names::SSL_CERT_FILE;

/// A client configuration trusting the built-in roots and those of `SSL_CERT_FILE`, speaking
/// HTTP/1.1 (WebSocket upgrades need it).
pub fn client_config(env: &EnvSnapshot) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(file) = env.get(EXTRA_ROOTS_VARIABLE).filter(|file| !file.is_empty()) {
        let certificates = CertificateDer::pem_file_iter(file)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|error| format!("{EXTRA_ROOTS_VARIABLE}={file}: {error}"))?;
        let (_, ignored) = roots.add_parsable_certificates(certificates);
        if ignored > 0 {
            tracing::warn!(
                file,
                ignored,
                "some certificates of SSL_CERT_FILE are not usable roots"
            );
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
