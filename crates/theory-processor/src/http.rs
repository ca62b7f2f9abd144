//! The HTTP client processors use: rustls with the Mozilla roots built in, so a `FROM scratch`
//! image with no CA bundle still reaches HTTPS endpoints.

use std::sync::Arc;

/// Builds the shared HTTP client, or explains why it cannot.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    client_builder().build()
}

/// Returns a builder preconfigured with TLS, for processors that need more settings.
pub fn client_builder() -> reqwest::ClientBuilder {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = reqwest::Client::builder()
        .user_agent(concat!("theory-processor/", env!("CARGO_PKG_VERSION")));
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(config) => {
            let mut config = config.with_root_certificates(roots).with_no_client_auth();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            builder.tls_backend_preconfigured(config)
        }
        // The ring provider supports the default versions; keep the builder usable regardless.
        Err(_) => builder,
    }
}
