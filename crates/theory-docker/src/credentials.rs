//! Credentials for a private registry: `REGISTRY_USERNAME`/`REGISTRY_PASSWORD` for the one
//! registry they belong to (`REGISTRY_SERVER`, else the host of `THEORY_IMAGE_REGISTRY`; never
//! sent anywhere else), else the user's Docker configuration (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`:
//! its `auths` entry for the registry, the form `docker login` writes without a credential
//! helper).

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine;
use bollard::auth::DockerCredentials;

/// The registry an image reference names: its first part when that looks like a host (has a
/// `.` or `:`, or is `localhost`), else Docker Hub.
pub fn registry_of(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_owned()
        }
        _ => "docker.io".to_owned(),
    }
}

/// Where credentials come from: the variables' values (already read), and the Docker
/// configuration folder.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    /// `REGISTRY_USERNAME`.
    pub username: Option<String>,
    /// `REGISTRY_PASSWORD`.
    pub password: Option<String>,
    /// The registry host the variables belong to: `REGISTRY_SERVER`, else the host of
    /// `THEORY_IMAGE_REGISTRY`; without one they are not used.
    pub server: Option<String>,
    /// `DOCKER_CONFIG`, else `$HOME/.docker`.
    pub docker_config: Option<PathBuf>,
}

impl CredentialSources {
    /// The credentials for the registry of `reference`, if any source has them.
    pub fn for_image(&self, reference: &str) -> Option<DockerCredentials> {
        let registry = registry_of(reference);
        let theirs = self.server.as_deref().is_some_and(|server| {
            let server = server.trim_start_matches("https://").trim_start_matches("http://");
            server.split('/').next() == Some(registry.as_str())
        });
        if let (Some(username), Some(password), true) = (&self.username, &self.password, theirs)
            && !username.is_empty()
        {
            return Some(DockerCredentials {
                username: Some(username.clone()),
                password: Some(password.clone()),
                serveraddress: Some(registry),
                ..DockerCredentials::default()
            });
        }
        let folder = self.docker_config.as_ref()?;
        let text = std::fs::read_to_string(folder.join("config.json")).ok()?;
        let config: DockerConfig = serde_json::from_str(&text).ok()?;
        let entry = config.auths.iter().find_map(|(server, entry)| {
            let host = server.trim_start_matches("https://").trim_start_matches("http://");
            let host = host.split('/').next().unwrap_or(host);
            let same = host == registry || (registry == "docker.io" && host == "index.docker.io");
            same.then_some(entry)
        })?;
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(entry.auth.as_deref()?).ok()?;
        let (username, password) = String::from_utf8(decoded)
            .ok()?
            .split_once(':')
            .map(|(user, pass)| (user.to_owned(), pass.to_owned()))?;
        Some(DockerCredentials {
            username: Some(username),
            password: Some(password),
            serveraddress: Some(registry),
            ..DockerCredentials::default()
        })
    }
}

/// The parts of Docker's `config.json` read here.
#[derive(serde::Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
}

#[derive(serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::{CredentialSources, registry_of};

    #[test]
    fn registries_are_read_from_references() {
        assert_eq!(registry_of("127.0.0.1:5001/acme/x@sha256:00"), "127.0.0.1:5001");
        assert_eq!(registry_of("ghcr.io/acme/x:1"), "ghcr.io");
        assert_eq!(registry_of("acme/x:1"), "docker.io");
        assert_eq!(registry_of("localhost/x"), "localhost");
    }

    #[test]
    fn variables_win_and_docker_login_entries_are_read() {
        let folder = std::env::temp_dir().join(format!("theory-creds-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("config.json"),
            r#"{"auths":{"127.0.0.1:5001":{"auth":"dXNlcjpzM2NyZXQ="}}}"#,
        )
        .unwrap();
        let from_file = CredentialSources {
            docker_config: Some(folder.clone()),
            ..CredentialSources::default()
        };
        let found = from_file.for_image("127.0.0.1:5001/a/b:1").unwrap();
        assert_eq!(
            (found.username.as_deref(), found.password.as_deref()),
            (Some("user"), Some("s3cret"))
        );
        assert!(from_file.for_image("ghcr.io/a/b:1").is_none());
        let from_variables = CredentialSources {
            username: Some("ci".into()),
            password: Some("token".into()),
            server: Some("127.0.0.1:5001".into()),
            docker_config: Some(folder.clone()),
        };
        let user = |sources: &CredentialSources, image: &str| {
            sources.for_image(image).and_then(|found| found.username)
        };
        assert_eq!(user(&from_variables, "127.0.0.1:5001/a/b:1").as_deref(), Some("ci"));
        // Never to another registry.
        assert!(from_variables.for_image("ghcr.io/a/b:1").is_none());
        let unscoped = CredentialSources { server: None, ..from_variables };
        assert_eq!(user(&unscoped, "127.0.0.1:5001/a/b:1").as_deref(), Some("user"));
        std::fs::remove_dir_all(folder).unwrap();
    }
}
