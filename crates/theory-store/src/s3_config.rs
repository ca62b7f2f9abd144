//! `STORAGE_BACKEND=minio|s3` and the seeds' variables, checked before anything starts. Errors
//! name the variable, never its value.

use theory_core::EnvSnapshot;
use theory_core::env::names;

pub use crate::s3_credentials::S3Credentials;

/// What the S3-compatible store is built from.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `minio` or `s3`.
    pub kind: &'static str,
    /// `http(s)://host:port` for MinIO and other S3-compatible servers; `None` for AWS.
    pub endpoint: Option<String>,
    /// Where the keys come from.
    pub credentials: S3Credentials,
    /// Extra trusted certificates (PEM), from `SSL_CERT_FILE`: a private CA, for the store
    /// and the credential endpoints.
    pub extra_roots: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// The region.
    pub region: String,
    /// The variables the endpoint and the keys came from, for error messages.
    names: Names,
}

#[derive(Clone, PartialEq, Eq)]
struct Names {
    endpoint: &'static str,
}

impl std::fmt::Debug for S3Config {
    /// Never shows the keys.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("S3Config")
            .field("kind", &self.kind)
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// A missing or wrong setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The variable to fix.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

fn required(env: &EnvSnapshot, variable: &'static str) -> Result<String, ConfigError> {
    match env.get(variable).map(str::trim) {
        Some(value) if !value.is_empty() => Ok(value.to_owned()),
        _ => Err(ConfigError { variable, problem: "is not set".into() }),
    }
}

fn extra_roots(env: &EnvSnapshot) -> Option<String> {
    env.get(names::SSL_CERT_FILE).filter(|file| !file.is_empty()).map(str::to_owned)
}

/// The default bucket for MinIO when `ARTIFACTS_BUCKET` is unset.
pub const DEFAULT_MINIO_BUCKET: &str = "theory-artifacts";

impl S3Config {
    /// Reads the settings of `backend` (`minio` or `s3`) from `env`.
    ///
    /// - `minio`: `MINIO_STORAGE_ENDPOINT` (`host:port`), `MINIO_STORAGE_ACCESS_KEY`,
    ///   `MINIO_STORAGE_SECRET_KEY`, `MINIO_STORAGE_USE_HTTPS` (`true`/`false`, default false),
    ///   `ARTIFACTS_BUCKET` (default `theory-artifacts`), `ARTIFACTS_REGION` (default `us-east-1`).
    /// - `s3`: `ARTIFACTS_BUCKET`, `ARTIFACTS_REGION`, `AWS_ENDPOINT_URL` for an S3-compatible
    ///   server other than AWS, and credentials as [`S3Credentials`] finds them (keys, a
    ///   profile, web identity, container or instance credentials).
    pub fn from_env(backend: &str, env: &EnvSnapshot) -> Result<S3Config, ConfigError> {
        let config = match backend {
            "minio" => {
                let host = required(env, names::MINIO_STORAGE_ENDPOINT)?;
                if host.contains("://") || host.contains('/') {
                    return Err(ConfigError {
                        variable: names::MINIO_STORAGE_ENDPOINT,
                        problem: "expected host:port without a scheme or path (e.g. minio.local:9000); set MINIO_STORAGE_USE_HTTPS for https".into(),
                    });
                }
                let https = match env
                    .get(names::MINIO_STORAGE_USE_HTTPS)
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    None | Some("" | "false" | "0" | "no") => false,
                    Some("true" | "1" | "yes") => true,
                    Some(_) => {
                        return Err(ConfigError {
                            variable: names::MINIO_STORAGE_USE_HTTPS,
                            problem: "expected true or false".into(),
                        });
                    }
                };
                S3Config {
                    kind: "minio",
                    endpoint: Some(format!("{}://{host}", if https { "https" } else { "http" })),
                    extra_roots: extra_roots(env),
                    credentials: S3Credentials::minio(
                        required(env, names::MINIO_STORAGE_ACCESS_KEY)?,
                        required(env, names::MINIO_STORAGE_SECRET_KEY)?,
                    ),
                    bucket: env
                        .get(names::ARTIFACTS_BUCKET)
                        .filter(|bucket| !bucket.is_empty())
                        .unwrap_or(DEFAULT_MINIO_BUCKET)
                        .to_owned(),
                    region: env
                        .get(names::ARTIFACTS_REGION)
                        .filter(|region| !region.is_empty())
                        .unwrap_or("us-east-1")
                        .to_owned(),
                    names: Names { endpoint: names::MINIO_STORAGE_ENDPOINT },
                }
            }
            "s3" => {
                let endpoint = env
                    .get(names::AWS_ENDPOINT_URL)
                    .filter(|url| !url.is_empty())
                    .map(str::to_owned);
                if let Some(url) = &endpoint
                    && !(url.starts_with("http://") || url.starts_with("https://"))
                {
                    return Err(ConfigError {
                        variable: names::AWS_ENDPOINT_URL,
                        problem: "expected an http:// or https:// URL".into(),
                    });
                }
                S3Config {
                    kind: "s3",
                    endpoint,
                    credentials: S3Credentials::from_aws_env(env)?,
                    extra_roots: extra_roots(env),
                    bucket: required(env, names::ARTIFACTS_BUCKET)?,
                    region: required(env, names::ARTIFACTS_REGION)?,
                    names: Names { endpoint: names::AWS_ENDPOINT_URL },
                }
            }
            other => {
                return Err(ConfigError {
                    variable: names::STORAGE_BACKEND,
                    problem: format!("{other:?} is unknown: use local, minio or s3"),
                });
            }
        };
        check_bucket(&config.bucket)?;
        Ok(config)
    }

    /// Says that asking for credentials failed, and how to give some.
    pub(crate) fn no_credentials(&self, error: &object_store::Error) -> String {
        format!(
            "the {} store has no credentials: {} gave none ({error}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary keys), or AWS_PROFILE, or web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)",
            self.kind,
            self.credentials.source()
        )
    }

    /// Says which setting a failed request points at.
    pub(crate) fn explain(&self, error: &object_store::Error) -> String {
        let text = error.to_string();
        let lower = text.to_ascii_lowercase();
        if matches!(
            error,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || lower.contains("signature")
            || lower.contains("accessdenied")
            || lower.contains("invalidaccesskeyid")
        {
            format!(
                "the {} store refused the credentials from {}: {text}",
                self.kind,
                self.credentials.source()
            )
        } else if lower.contains("nosuchbucket") {
            format!(
                "the bucket named by ARTIFACTS_BUCKET does not exist on the {} store",
                self.kind
            )
        } else if lower.contains("connect") || lower.contains("dns") || lower.contains("timed out")
        {
            format!("cannot reach the {} store named by {}: {text}", self.kind, self.names.endpoint)
        } else {
            format!("the {} store failed: {text}", self.kind)
        }
    }
}

/// S3's bucket naming rules, checked before any request.
fn check_bucket(bucket: &str) -> Result<(), ConfigError> {
    let valid = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'.'
        })
        && bucket.bytes().next().is_some_and(|byte| byte.is_ascii_alphanumeric())
        && bucket.bytes().last().is_some_and(|byte| byte.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(ConfigError {
            variable: names::ARTIFACTS_BUCKET,
            problem: "not a valid bucket name (3–63 lowercase letters, digits, '-' or '.')".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvSnapshot {
        EnvSnapshot::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn minio_from_the_seeds_variables() {
        let config = S3Config::from_env(
            "minio",
            &env(&[
                ("MINIO_STORAGE_ENDPOINT", "minio.local:9000"),
                ("MINIO_STORAGE_ACCESS_KEY", "minioadmin"),
                ("MINIO_STORAGE_SECRET_KEY", "very-secret-value"),
                ("MINIO_STORAGE_USE_HTTPS", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(config.endpoint.as_deref(), Some("http://minio.local:9000"));
        assert_eq!(config.bucket, DEFAULT_MINIO_BUCKET);
        assert!(!format!("{config:?}").contains("very-secret-value"));
    }

    #[test]
    fn errors_name_the_variable_never_the_value() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case<'_>; 6] = [
            ("minio", &[], "MINIO_STORAGE_ENDPOINT"),
            ("minio", &[("MINIO_STORAGE_ENDPOINT", "http://x:9000")], "MINIO_STORAGE_ENDPOINT"),
            (
                "minio",
                &[("MINIO_STORAGE_ENDPOINT", "x:9000"), ("MINIO_STORAGE_USE_HTTPS", "maybe")],
                "MINIO_STORAGE_USE_HTTPS",
            ),
            (
                "minio",
                &[("MINIO_STORAGE_ENDPOINT", "x:9000"), ("MINIO_STORAGE_ACCESS_KEY", "a")],
                "MINIO_STORAGE_SECRET_KEY",
            ),
            (
                "s3",
                &[
                    ("AWS_ACCESS_KEY_ID", "a"),
                    ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value"),
                    ("ARTIFACTS_BUCKET", "Bad_Bucket"),
                    ("ARTIFACTS_REGION", "eu-west-1"),
                ],
                "ARTIFACTS_BUCKET",
            ),
            (
                "s3",
                &[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")],
                "ARTIFACTS_BUCKET",
            ),
        ];
        for (backend, pairs, variable) in cases {
            let error = S3Config::from_env(backend, &env(pairs)).unwrap_err();
            assert_eq!(error.variable, variable, "{pairs:?}: {error}");
            assert!(!error.to_string().contains("s3cr3t-value"));
        }
    }
}
