//! The OCI distribution API of an image registry, for what the Docker Engine does not do: read a
//! manifest's digest, media type and platform, and publish an image index listing every
//! platform of a version. Authentication follows the registry's challenge: HTTP Basic, or a
//! bearer token from the realm it names (with the same user and password).

use std::sync::Mutex;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The manifest media types asked for.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
/// The media type of the index published.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A manifest in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Its media type.
    pub media_type: String,
    /// `sha256:…` of its bytes.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A failed registry request, with what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RegistryApiError {
    /// What happened.
    pub message: String,
    /// Whether the registry refused the credentials (or wanted some).
    pub unauthorized: bool,
}

fn failure(message: impl Into<String>) -> RegistryApiError {
    RegistryApiError { message: message.into(), unauthorized: false }
}

/// A client of one registry host.
#[derive(Debug)]
pub struct RegistryApi {
    http: reqwest::Client,
    base: String,
    login: Option<(String, String)>,
    /// The `Authorization` value that worked last.
    authorization: Mutex<Option<String>>,
}

/// `http` for a registry on this machine (as Docker treats 127.0.0.0/8 as insecure), else `https`.
fn scheme_of(host: &str) -> &'static str {
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    if name == "localhost" || name.starts_with("127.") || name == "[::1]" {
        "http"
    } else {
        "https"
    }
}

impl RegistryApi {
    /// A client of `host` (`ghcr.io`, `127.0.0.1:5000`) with `login` (user, password) if any.
    pub fn new(http: reqwest::Client, host: &str, login: Option<(String, String)>) -> RegistryApi {
        RegistryApi {
            http,
            base: format!("{}://{host}", scheme_of(host)),
            login,
            authorization: Mutex::new(None),
        }
    }

    /// The descriptor of `reference` (a tag or a digest) in `repository`, or `None` when the
    /// registry has no such manifest.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(Descriptor, Value)>, RegistryApiError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let response = self.send(reqwest::Method::GET, &url, None, repository, "pull").await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = checked(response, &url).await?;
        let media_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await.map_err(|error| failure(format!("{url}: {error}")))?;
        let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
        if reference.starts_with("sha256:") && reference != digest {
            return Err(failure(format!("{url}: the registry answered bytes of digest {digest}")));
        }
        let document: Value = serde_json::from_slice(&bytes)
            .map_err(|error| failure(format!("{url}: not a JSON manifest: {error}")))?;
        let media_type = document["mediaType"].as_str().map_or(media_type, str::to_owned);
        Ok(Some((Descriptor { media_type, digest, size: bytes.len() as u64 }, document)))
    }

    /// The platform (`os`, `architecture`) of an image manifest, read from its config blob.
    pub async fn platform_of(
        &self,
        repository: &str,
        manifest: &Value,
    ) -> Result<(String, String), RegistryApiError> {
        let config = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| failure("the manifest names no config (is it an index?)"))?;
        let url = format!("{}/v2/{repository}/blobs/{config}", self.base);
        let response = self.send(reqwest::Method::GET, &url, None, repository, "pull").await?;
        let response = checked(response, &url).await?;
        let document: Value =
            response.json().await.map_err(|error| failure(format!("{url}: {error}")))?;
        Ok((
            document["os"].as_str().unwrap_or_default().to_owned(),
            document["architecture"].as_str().unwrap_or_default().to_owned(),
        ))
    }

    /// Publishes an OCI image index of `manifests` (each with its `linux/<arch>`) as `tag`;
    /// returns its descriptor.
    pub async fn put_index(
        &self,
        repository: &str,
        tag: &str,
        manifests: &[(Descriptor, String)],
    ) -> Result<Descriptor, RegistryApiError> {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests.iter().map(|(descriptor, arch)| json!({
                "mediaType": descriptor.media_type,
                "digest": descriptor.digest,
                "size": descriptor.size,
                "platform": {"os": "linux", "architecture": arch},
            })).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec(&index).map_err(|error| failure(error.to_string()))?;
        let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
        let url = format!("{}/v2/{repository}/manifests/{tag}", self.base);
        let response = self
            .send(reqwest::Method::PUT, &url, Some(bytes.clone()), repository, "pull,push")
            .await?;
        checked(response, &url).await?;
        Ok(Descriptor { media_type: OCI_INDEX.to_owned(), digest, size: bytes.len() as u64 })
    }

    /// Sends a request, answering the registry's authentication challenge once.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Vec<u8>>,
        repository: &str,
        actions: &str,
    ) -> Result<reqwest::Response, RegistryApiError> {
        let known = self.authorization.lock().map(|held| held.clone()).unwrap_or_default();
        let response = self.request(&method, url, body.clone(), known.as_deref()).await?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let authorization = self.answer(&challenge, repository, actions).await?;
        let response = self.request(&method, url, body, Some(&authorization)).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(RegistryApiError {
                message: format!("{url}: the registry refused the credentials"),
                unauthorized: true,
            });
        }
        if let Ok(mut held) = self.authorization.lock() {
            *held = Some(authorization);
        }
        Ok(response)
    }

    async fn request(
        &self,
        method: &reqwest::Method,
        url: &str,
        body: Option<Vec<u8>>,
        authorization: Option<&str>,
    ) -> Result<reqwest::Response, RegistryApiError> {
        let mut request =
            self.http.request(method.clone(), url).header(reqwest::header::ACCEPT, ACCEPT);
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        if let Some(bytes) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, OCI_INDEX).body(bytes);
        }
        request.send().await.map_err(|error| failure(format!("{url}: {}", error.without_url())))
    }

    /// The `Authorization` value a `WWW-Authenticate` challenge asks for.
    async fn answer(
        &self,
        challenge: &str,
        repository: &str,
        actions: &str,
    ) -> Result<String, RegistryApiError> {
        let unauthorized = |message: String| RegistryApiError { message, unauthorized: true };
        let basic = self.login.as_ref().map(|(user, password)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        });
        if challenge.to_ascii_lowercase().starts_with("basic") {
            return basic.ok_or_else(|| {
                unauthorized("the registry needs a login and none was given".to_owned())
            });
        }
        let Some(parameters) =
            challenge.strip_prefix("Bearer ").or_else(|| challenge.strip_prefix("bearer "))
        else {
            return Err(unauthorized(format!(
                "the registry asks for {challenge:?}, which theory cannot answer"
            )));
        };
        let field = |name: &str| {
            parameters.split(',').find_map(|part| {
                let (key, value) = part.trim().split_once('=')?;
                (key == name).then(|| value.trim_matches('"').to_owned())
            })
        };
        let realm = field("realm")
            .ok_or_else(|| unauthorized("a bearer challenge without a realm".into()))?;
        let mut token_url = reqwest::Url::parse(&realm)
            .map_err(|error| unauthorized(format!("the token realm {realm:?}: {error}")))?;
        token_url
            .query_pairs_mut()
            .append_pair("scope", &format!("repository:{repository}:{actions}"));
        if let Some(service) = field("service") {
            token_url.query_pairs_mut().append_pair("service", &service);
        }
        let mut request = self.http.get(token_url);
        if let Some(value) = &basic {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        let response = request
            .send()
            .await
            .map_err(|error| failure(format!("{realm}: {}", error.without_url())))?;
        if !response.status().is_success() {
            return Err(unauthorized(format!(
                "{realm} refused a token: HTTP {}",
                response.status()
            )));
        }
        let answer: Value =
            response.json().await.map_err(|error| failure(format!("{realm}: {error}")))?;
        answer["token"]
            .as_str()
            .or_else(|| answer["access_token"].as_str())
            .map(|token| format!("Bearer {token}"))
            .ok_or_else(|| unauthorized(format!("{realm} answered no token")))
    }
}

async fn checked(
    response: reqwest::Response,
    url: &str,
) -> Result<reqwest::Response, RegistryApiError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    Err(RegistryApiError {
        message: format!("{url}: HTTP {status}: {}", text.trim()),
        unauthorized: status == reqwest::StatusCode::UNAUTHORIZED
            || status == reqwest::StatusCode::FORBIDDEN,
    })
}

#[cfg(test)]
mod tests {
    use super::scheme_of;

    #[test]
    fn registries_on_this_machine_speak_http() {
        assert_eq!(scheme_of("127.0.0.1:5000"), "http");
        assert_eq!(scheme_of("localhost:5000"), "http");
        assert_eq!(scheme_of("ghcr.io"), "https");
        assert_eq!(scheme_of("registry.example.com:443"), "https");
    }
}
