//! Where the `s3` store's credentials come from, as AWS users have them, in the order AWS's own
//! tools try: keys in the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, with
//! `AWS_SESSION_TOKEN` for temporary ones), a profile of the shared credentials file
//! (`AWS_PROFILE`, default `default`; `AWS_SHARED_CREDENTIALS_FILE`, default
//! `~/.aws/credentials`), then the providers `object_store` asks at run time — web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, STS at `AWS_ENDPOINT_URL_STS`), container
//! credentials (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `_FULL_URI`) and the instance's
//! metadata service (`AWS_EC2_METADATA_SERVICE_ENDPOINT`, default 169.254.169.254).

use std::path::PathBuf;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use theory_core::EnvSnapshot;
use theory_core::env::names;

use crate::s3_config::ConfigError;

/// The credentials of an S3 store.
#[derive(Clone, PartialEq, Eq)]
pub enum S3Credentials {
    /// Keys, from variables or a profile.
    Keys {
        /// The access key id.
        access_key_id: String,
        /// The secret key.
        secret_access_key: String,
        /// The session token of temporary keys.
        session_token: Option<String>,
        /// Where they came from, for messages (names, never values).
        source: String,
    },
    /// Asked for at run time: web identity, container or instance credentials.
    Provider {
        /// The settings `object_store`'s providers read.
        settings: Vec<(AmazonS3ConfigKey, String)>,
        /// Which provider, for messages.
        source: String,
    },
}

impl std::fmt::Debug for S3Credentials {
    /// Never shows a key or a token.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.source())
    }
}

/// The variables the run-time providers read, and `object_store`'s name for each.
const PROVIDER_SETTINGS: [(&str, AmazonS3ConfigKey); 8] = [
    (names::AWS_WEB_IDENTITY_TOKEN_FILE, AmazonS3ConfigKey::WebIdentityTokenFile),
    (names::AWS_ROLE_ARN, AmazonS3ConfigKey::RoleArn),
    (names::AWS_ROLE_SESSION_NAME, AmazonS3ConfigKey::RoleSessionName),
    (names::AWS_ENDPOINT_URL_STS, AmazonS3ConfigKey::StsEndpoint),
    (
        names::AWS_CONTAINER_CREDENTIALS_RELATIVE_URI,
        AmazonS3ConfigKey::ContainerCredentialsRelativeUri,
    ),
    (names::AWS_CONTAINER_CREDENTIALS_FULL_URI, AmazonS3ConfigKey::ContainerCredentialsFullUri),
    (
        names::AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
        AmazonS3ConfigKey::ContainerAuthorizationTokenFile,
    ),
    (names::AWS_EC2_METADATA_SERVICE_ENDPOINT, AmazonS3ConfigKey::MetadataEndpoint),
];

fn value<'a>(env: &'a EnvSnapshot, name: &str) -> Option<&'a str> {
    env.get(name).map(str::trim).filter(|value| !value.is_empty())
}

impl S3Credentials {
    /// The credentials of the `s3` backend, from `env`.
    pub(crate) fn from_aws_env(env: &EnvSnapshot) -> Result<S3Credentials, ConfigError> {
        let access = value(env, names::AWS_ACCESS_KEY_ID);
        let secret = value(env, names::AWS_SECRET_ACCESS_KEY);
        if access.is_some() || secret.is_some() {
            let missing = if access.is_none() {
                names::AWS_ACCESS_KEY_ID
            } else {
                names::AWS_SECRET_ACCESS_KEY
            };
            let (Some(access), Some(secret)) = (access, secret) else {
                return Err(ConfigError {
                    variable: missing,
                    problem: "is not set (keys in the environment come in pairs)".into(),
                });
            };
            let session_token = value(env, names::AWS_SESSION_TOKEN).map(str::to_owned);
            let source = if session_token.is_some() {
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN"
            } else {
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            };
            return Ok(S3Credentials::Keys {
                access_key_id: access.to_owned(),
                secret_access_key: secret.to_owned(),
                session_token,
                source: source.to_owned(),
            });
        }
        if let Some(keys) = from_profile(env)? {
            return Ok(keys);
        }
        let settings: Vec<(AmazonS3ConfigKey, String)> = PROVIDER_SETTINGS
            .iter()
            .filter_map(|(name, key)| value(env, name).map(|found| (*key, found.to_owned())))
            .collect();
        let has = |key: &AmazonS3ConfigKey| settings.iter().any(|(set, _)| set == key);
        let source = if has(&AmazonS3ConfigKey::WebIdentityTokenFile) {
            if !has(&AmazonS3ConfigKey::RoleArn) {
                return Err(ConfigError {
                    variable: names::AWS_ROLE_ARN,
                    problem: "is not set (web identity needs the role to assume)".into(),
                });
            }
            "web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)"
        } else if has(&AmazonS3ConfigKey::ContainerCredentialsRelativeUri)
            || has(&AmazonS3ConfigKey::ContainerCredentialsFullUri)
        {
            "container credentials (AWS_CONTAINER_CREDENTIALS_*)"
        } else {
            "the instance's metadata service (no keys in the environment, no profile)"
        };
        Ok(S3Credentials::Provider { settings, source: source.to_owned() })
    }

    /// The keys given by MinIO's variables.
    pub(crate) fn minio(access_key_id: String, secret_access_key: String) -> S3Credentials {
        S3Credentials::Keys {
            access_key_id,
            secret_access_key,
            session_token: None,
            source: "MINIO_STORAGE_ACCESS_KEY / MINIO_STORAGE_SECRET_KEY".to_owned(),
        }
    }

    /// Where they come from, for messages.
    pub fn source(&self) -> &str {
        match self {
            S3Credentials::Keys { source, .. } | S3Credentials::Provider { source, .. } => source,
        }
    }

    /// Gives them to the client builder.
    pub(crate) fn apply(&self, builder: AmazonS3Builder) -> AmazonS3Builder {
        match self {
            S3Credentials::Keys { access_key_id, secret_access_key, session_token, .. } => {
                let builder = builder
                    .with_access_key_id(access_key_id)
                    .with_secret_access_key(secret_access_key);
                match session_token {
                    Some(token) => builder.with_token(token),
                    None => builder,
                }
            }
            S3Credentials::Provider { settings, .. } => settings
                .iter()
                .fold(builder, |builder, (key, value)| builder.with_config(*key, value)),
        }
    }
}

/// The keys of a profile in the shared credentials file: the one `AWS_PROFILE` names (which
/// must be there), else `default` when the file has it.
fn from_profile(env: &EnvSnapshot) -> Result<Option<S3Credentials>, ConfigError> {
    let named = value(env, names::AWS_PROFILE);
    let file = value(env, names::AWS_SHARED_CREDENTIALS_FILE)
        .map(PathBuf::from)
        .or_else(|| value(env, "HOME").map(|home| PathBuf::from(home).join(".aws/credentials")));
    let Some(file) = file else {
        return match named {
            Some(_) => Err(ConfigError {
                variable: names::AWS_PROFILE,
                problem: "names a profile, and there is no credentials file (HOME is not set)"
                    .into(),
            }),
            None => Ok(None),
        };
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(error) if named.is_none() && error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(error) => {
            return Err(ConfigError {
                variable: names::AWS_PROFILE,
                problem: format!("cannot read {}: {error}", file.display()),
            });
        }
    };
    let profile = named.unwrap_or("default");
    let Some(section) = ini_section(&text, profile) else {
        return match named {
            Some(_) => Err(ConfigError {
                variable: names::AWS_PROFILE,
                problem: format!("there is no profile [{profile}] in {}", file.display()),
            }),
            None => Ok(None),
        };
    };
    let get =
        |key: &str| section.iter().find(|(name, _)| name == key).map(|(_, value)| value.clone());
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(S3Credentials::Keys {
            access_key_id,
            secret_access_key,
            session_token: get("aws_session_token"),
            source: format!("profile [{profile}] of {}", file.display()),
        })),
        _ => Err(ConfigError {
            variable: names::AWS_PROFILE,
            problem: format!(
                "profile [{profile}] of {} has no aws_access_key_id and aws_secret_access_key (Theory reads keys from profiles, not SSO or role settings)",
                file.display()
            ),
        }),
    }
}

/// The `key = value` lines of `[name]` in an INI text.
fn ini_section(text: &str, name: &str) -> Option<Vec<(String, String)>> {
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            if found.is_some() {
                break;
            }
            if header.trim() == name {
                found = Some(Vec::new());
            }
            continue;
        }
        if let Some(entries) = found.as_mut()
            && let Some((key, value)) = line.split_once('=')
        {
            entries.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvSnapshot {
        EnvSnapshot::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn keys_come_first_with_their_session_token() {
        let credentials = S3Credentials::from_aws_env(&env(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("AWS_SESSION_TOKEN", "t0ken"),
            ("AWS_PROFILE", "ignored"),
        ]))
        .unwrap();
        assert!(
            matches!(&credentials, S3Credentials::Keys { session_token: Some(token), .. } if token == "t0ken")
        );
        assert!(!format!("{credentials:?}").contains("s3cr3t"));
        let half =
            S3Credentials::from_aws_env(&env(&[("AWS_SECRET_ACCESS_KEY", "s")])).unwrap_err();
        assert_eq!(half.variable, "AWS_ACCESS_KEY_ID");
    }

    #[test]
    fn a_profile_is_read_from_the_shared_credentials_file() {
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = d\naws_secret_access_key = ds\n\n# team\n[ci]\naws_access_key_id=c\naws_secret_access_key=cs\naws_session_token=ct\n[sso]\nsso_session = x\n",
        )
        .unwrap();
        let path = file.display().to_string();
        let keys = |pairs: &[(&str, &str)]| {
            let mut all = vec![("AWS_SHARED_CREDENTIALS_FILE", path.as_str())];
            all.extend_from_slice(pairs);
            S3Credentials::from_aws_env(&env(&all))
        };
        match keys(&[("AWS_PROFILE", "ci")]).unwrap() {
            S3Credentials::Keys { access_key_id, session_token, source, .. } => {
                assert_eq!((access_key_id.as_str(), session_token.as_deref()), ("c", Some("ct")));
                assert!(source.starts_with("profile [ci]"), "{source}");
            }
            other @ S3Credentials::Provider { .. } => panic!("{other:?}"),
        }
        assert!(
            matches!(keys(&[]).unwrap(), S3Credentials::Keys { access_key_id, .. } if access_key_id == "d")
        );
        for (profile, problem) in
            [("nope", "no profile [nope]"), ("sso", "has no aws_access_key_id")]
        {
            let error = keys(&[("AWS_PROFILE", profile)]).unwrap_err();
            assert_eq!(error.variable, "AWS_PROFILE");
            assert!(error.problem.contains(problem), "{error}");
        }
    }

    #[test]
    fn without_keys_or_profile_the_providers_are_asked() {
        let home = tempfile::tempdir().unwrap();
        let home = home.path().display().to_string();
        let web = S3Credentials::from_aws_env(&env(&[
            ("HOME", &home),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1"),
        ]))
        .unwrap();
        assert!(web.source().starts_with("web identity"), "{web:?}");
        let no_role = S3Credentials::from_aws_env(&env(&[
            ("HOME", &home),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ]))
        .unwrap_err();
        assert_eq!(no_role.variable, "AWS_ROLE_ARN");
        let instance = S3Credentials::from_aws_env(&env(&[("HOME", &home)])).unwrap();
        assert!(instance.source().contains("metadata"), "{instance:?}");
    }
}
