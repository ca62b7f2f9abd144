//! The environment, read once: variable names Theory reads, a snapshot of their values, and the
//! redactor that keeps secret values out of every output.

use std::collections::BTreeMap;

/// Names of the environment variables the orchestrator side of Theory reads — the CLI, the
/// stores, the ledger, the adapters — in one place (a processor's are `theory_processor::env`).
/// The README documents each one; a test checks it says every name in [`names::ALL`].
pub mod names {
    // --- runs ---
    /// `true`/`1` (any case) in CI: real runs are refused unless explicitly allowed.
    pub const CI: &str = "CI";
    /// `1` allows real runs in CI.
    pub const ALLOW_REAL_IN_CI: &str = "THEORY_ALLOW_REAL_IN_CI";
    /// Folders to look for processor binaries in, `:`-separated, before the `theory` binary's own
    /// folder and `PATH`.
    pub const PROCESSOR_PATH: &str = "THEORY_PROCESSOR_PATH";
    /// The Python (3.10 or newer) that Python processors' environments are made from; default
    /// `python3`.
    pub const PYTHON: &str = "THEORY_PYTHON";
    /// The timestamp (seconds) of every file in a Docker Engine build's context, and its build
    /// argument; default 0.
    pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
    /// The project folder (holding `registry/` and `.theory/`); default: found upward from the
    /// working directory.
    pub const PROJECT: &str = "THEORY_PROJECT";
    /// Log filter of `theory` itself (`info` by default; `debug`, `warn`, a tracing filter).
    pub const LOG: &str = "THEORY_LOG";
    /// `json` for JSON log lines on stderr.
    pub const LOG_FORMAT: &str = "THEORY_LOG_FORMAT";
    /// Set (to anything): no colours in logs.
    pub const NO_COLOR: &str = "NO_COLOR";
    /// Log filter for processors started by the `process` runtime (default `warn`).
    pub const PROCESSOR_LOG: &str = "THEORY_PROCESSOR_LOG";
    /// Seconds a started processor has to become healthy (default 30).
    pub const START_TIMEOUT_S: &str = "THEORY_START_TIMEOUT_S";
    /// The local runtime when `--adapter-opts-json` names none: `process`, `docker` or `auto`
    /// (the default: Docker when it answers and the image is here).
    pub const LOCAL_RUNTIME: &str = "THEORY_LOCAL_RUNTIME";
    /// The most bytes a run's inputs may have (`--inputs-json`, `--inputs-file`, `--inputs -`);
    /// default 64 MiB.
    pub const MAX_INPUTS_BYTES: &str = "THEORY_MAX_INPUTS_BYTES";
    /// The `theory serve` that `theory run` submits through (`--server`).
    pub const SERVER: &str = "THEORY_SERVER";
    /// The adapter `theory run` uses when `--adapter` names none (`local`).
    pub const ADAPTER: &str = "THEORY_ADAPTER";
    /// The API token `theory run --server` sends.
    pub const TOKEN: &str = "THEORY_TOKEN";
    /// The `whsec_…` secret `theory serve` signs webhooks with (Standard Webhooks).
    pub const WEBHOOK_SECRET: &str = "THEORY_WEBHOOK_SECRET";
    /// Seconds between webhook delivery attempts, comma-separated (default `1,5,30,120`).
    pub const WEBHOOK_RETRY_S: &str = "THEORY_WEBHOOK_RETRY_S";
    /// The Ed25519 key that signs runs' attestations: PEM (PKCS #8), or the path of a PEM file;
    /// else `.theory/keys/signing.pem` (`theory keys generate`).
    pub const SIGNING_KEY: &str = "THEORY_SIGNING_KEY";
    /// A PEM file of extra CA certificates for `https` endpoints.
    pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
    /// The registry `theory processor push` pushes to when `--registry` is not given.
    pub const IMAGE_REGISTRY: &str = "THEORY_IMAGE_REGISTRY";
    /// A checkout of Theory whose SDK `theory scaffold` points new processors at (a path
    /// dependency instead of the published crate).
    pub const SDK_PATH: &str = "THEORY_SDK_PATH";

    // --- the artifact store (the seeds' variables) ---
    /// `local` (default: `.theory/artifacts/`), `minio` or `s3`.
    pub const STORAGE_BACKEND: &str = "STORAGE_BACKEND";
    /// `minio`: the server as `host:port`.
    pub const MINIO_STORAGE_ENDPOINT: &str = "MINIO_STORAGE_ENDPOINT";
    /// `minio`: the access key.
    pub const MINIO_STORAGE_ACCESS_KEY: &str = "MINIO_STORAGE_ACCESS_KEY";
    /// `minio`: the secret key.
    pub const MINIO_STORAGE_SECRET_KEY: &str = "MINIO_STORAGE_SECRET_KEY";
    /// `minio`: `true` for `https`.
    pub const MINIO_STORAGE_USE_HTTPS: &str = "MINIO_STORAGE_USE_HTTPS";
    /// `s3`: the access key id.
    pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// `s3`: the secret access key.
    pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    /// `s3`: another S3-compatible server's URL.
    pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
    /// `s3`: the session token of temporary keys.
    pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    /// `s3`: the profile of the shared credentials file (default `default`).
    pub const AWS_PROFILE: &str = "AWS_PROFILE";
    /// `s3`: the shared credentials file (default `~/.aws/credentials`).
    pub const AWS_SHARED_CREDENTIALS_FILE: &str = "AWS_SHARED_CREDENTIALS_FILE";
    /// `s3`: web identity: the file holding the token.
    pub const AWS_WEB_IDENTITY_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
    /// `s3`: web identity: the role to assume.
    pub const AWS_ROLE_ARN: &str = "AWS_ROLE_ARN";
    /// `s3`: web identity: the session's name.
    pub const AWS_ROLE_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";
    /// `s3`: web identity: the STS endpoint (default `https://sts.{region}.amazonaws.com`).
    pub const AWS_ENDPOINT_URL_STS: &str = "AWS_ENDPOINT_URL_STS";
    /// `s3`: container credentials, relative to 169.254.170.2 (ECS).
    pub const AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: &str =
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
    /// `s3`: container credentials at a full URL (EKS pod identity, …).
    pub const AWS_CONTAINER_CREDENTIALS_FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
    /// `s3`: the file holding the container credentials' authorization token.
    pub const AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: &str =
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
    /// `s3`: the instance metadata service (default `http://169.254.169.254`).
    pub const AWS_EC2_METADATA_SERVICE_ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
    /// The bucket (default `theory-artifacts`).
    pub const ARTIFACTS_BUCKET: &str = "ARTIFACTS_BUCKET";
    /// The region (default `us-east-1`).
    pub const ARTIFACTS_REGION: &str = "ARTIFACTS_REGION";

    // --- the ledger ---
    /// `postgres://…` (or `sqlite:…`): the ledger's database; default `.theory/theory.db`.
    pub const DATABASE_URL: &str = "DATABASE_URL";

    // --- Modal ---
    /// The Modal environment when `--env` names none (default `main`).
    pub const MODAL_ENVIRONMENT: &str = "MODAL_ENVIRONMENT";
    /// `True` (or `true`, `1`, `yes`): runs may use the Modal adapter; otherwise `--adapter
    /// modal` fails before anything starts.
    pub const MODAL_ENABLED: &str = "MODAL_ENABLED";
    /// Modal's API token id (else `modal token new`'s config file).
    pub const MODAL_TOKEN_ID: &str = "MODAL_TOKEN_ID";
    /// Modal's API token secret.
    pub const MODAL_TOKEN_SECRET: &str = "MODAL_TOKEN_SECRET";
    /// Where the `modal` CLI keeps its config (default `~/.modal.toml`).
    pub const MODAL_CONFIG_PATH: &str = "MODAL_CONFIG_PATH";
    /// The proxy auth token id (`wk-…`) deployments answer to.
    pub const MODAL_PROXY_TOKEN_ID: &str = "MODAL_PROXY_TOKEN_ID";
    /// The proxy auth token secret (`ws-…`).
    pub const MODAL_PROXY_TOKEN_SECRET: &str = "MODAL_PROXY_TOKEN_SECRET";
    /// Seconds a Modal deployment has to answer `/healthz` (default 180).
    pub const MODAL_STARTUP_S: &str = "THEORY_MODAL_STARTUP_S";
    /// The `modal` program to run (default: `modal` on `PATH`).
    pub const MODAL_BIN: &str = "THEORY_MODAL_BIN";
    /// `dev` app names: the branch.
    pub const GIT_BRANCH: &str = "GIT_BRANCH";
    /// `dev` app names: the developer.
    pub const GIT_USER: &str = "GIT_USER";

    // --- the Modal app module (`theory modal deploy`) ---
    /// The processor ref.
    pub const PROCESSOR_REF: &str = "PROCESSOR_REF";
    /// The digest-pinned image.
    pub const IMAGE_REF: &str = "IMAGE_REF";
    /// The run timeout, seconds.
    pub const TIMEOUT_S: &str = "TIMEOUT_S";
    /// CPUs.
    pub const CPU: &str = "CPU";
    /// Memory, MiB.
    pub const MEMORY_MIB: &str = "MEMORY_MIB";
    /// A GPU kind.
    pub const GPU: &str = "GPU";
    /// The Modal secrets to mount, comma-separated names.
    pub const TOOL_SECRETS: &str = "TOOL_SECRETS";
    /// The app name (default `theory-rt`).
    pub const MODAL_APP_NAME: &str = "MODAL_APP_NAME";
    /// The image's program.
    pub const PROCESSOR_ENTRYPOINT: &str = "PROCESSOR_ENTRYPOINT";
    /// The port the processor listens on in the container.
    pub const PROCESSOR_PORT: &str = "PROCESSOR_PORT";
    /// The Modal secret with registry credentials.
    pub const REGISTRY_SECRET: &str = "REGISTRY_SECRET";
    /// The user name for pulling pinned images from a private registry (seed 000).
    pub const REGISTRY_USERNAME: &str = "REGISTRY_USERNAME";
    /// Its password or token.
    pub const REGISTRY_PASSWORD: &str = "REGISTRY_PASSWORD";
    /// The registry host those belong to (else the host of `THEORY_IMAGE_REGISTRY`).
    pub const REGISTRY_SERVER: &str = "REGISTRY_SERVER";
    /// Docker's configuration folder (`docker login`'s credentials), else `~/.docker`.
    pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
    /// `0`: a public endpoint, without proxy auth.
    pub const PROXY_AUTH: &str = "PROXY_AUTH";

    /// Every name above, for the check that the README documents each one.
    pub const ALL: &[&str] = &[
        CI,
        ALLOW_REAL_IN_CI,
        PROCESSOR_PATH,
        PYTHON,
        SOURCE_DATE_EPOCH,
        PROJECT,
        LOG,
        LOG_FORMAT,
        NO_COLOR,
        PROCESSOR_LOG,
        START_TIMEOUT_S,
        LOCAL_RUNTIME,
        MAX_INPUTS_BYTES,
        SERVER,
        ADAPTER,
        TOKEN,
        WEBHOOK_SECRET,
        WEBHOOK_RETRY_S,
        SIGNING_KEY,
        SSL_CERT_FILE,
        IMAGE_REGISTRY,
        SDK_PATH,
        STORAGE_BACKEND,
        MINIO_STORAGE_ENDPOINT,
        MINIO_STORAGE_ACCESS_KEY,
        MINIO_STORAGE_SECRET_KEY,
        MINIO_STORAGE_USE_HTTPS,
        AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY,
        AWS_ENDPOINT_URL,
        AWS_SESSION_TOKEN,
        AWS_PROFILE,
        AWS_SHARED_CREDENTIALS_FILE,
        AWS_WEB_IDENTITY_TOKEN_FILE,
        AWS_ROLE_ARN,
        AWS_ROLE_SESSION_NAME,
        AWS_ENDPOINT_URL_STS,
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI,
        AWS_CONTAINER_CREDENTIALS_FULL_URI,
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
        AWS_EC2_METADATA_SERVICE_ENDPOINT,
        ARTIFACTS_BUCKET,
        ARTIFACTS_REGION,
        DATABASE_URL,
        MODAL_ENVIRONMENT,
        MODAL_ENABLED,
        MODAL_TOKEN_ID,
        MODAL_TOKEN_SECRET,
        MODAL_CONFIG_PATH,
        MODAL_PROXY_TOKEN_ID,
        MODAL_PROXY_TOKEN_SECRET,
        MODAL_STARTUP_S,
        MODAL_BIN,
        GIT_BRANCH,
        GIT_USER,
        PROCESSOR_REF,
        IMAGE_REF,
        TIMEOUT_S,
        CPU,
        MEMORY_MIB,
        GPU,
        TOOL_SECRETS,
        MODAL_APP_NAME,
        PROCESSOR_ENTRYPOINT,
        PROCESSOR_PORT,
        REGISTRY_SECRET,
        REGISTRY_USERNAME,
        REGISTRY_PASSWORD,
        REGISTRY_SERVER,
        DOCKER_CONFIG,
        PROXY_AUTH,
    ];
}

/// The environment as it was when the command started; tests build their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSnapshot {
    vars: BTreeMap<String, String>,
}

impl EnvSnapshot {
    /// Reads the process environment (variables that are not valid UTF-8 are skipped).
    pub fn capture() -> EnvSnapshot {
        EnvSnapshot { vars: std::env::vars().collect() }
    }

    /// Adds `defaults` (a project file's settings) where the snapshot has no value of that name:
    /// the environment wins.
    #[must_use]
    pub fn with_defaults(
        mut self,
        defaults: impl IntoIterator<Item = (String, String)>,
    ) -> EnvSnapshot {
        for (name, value) in defaults {
            self.vars.entry(name).or_insert(value);
        }
        self
    }

    /// Builds a snapshot from pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> EnvSnapshot {
        EnvSnapshot {
            vars: pairs
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        }
    }

    /// Returns a variable's value; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|value| !value.is_empty())
    }

    /// Returns whether CI is set to `true` or `1`, in any case.
    pub fn in_ci(&self) -> bool {
        self.get(names::CI).is_some_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
    }

    /// Returns every variable.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

/// Returns whether a variable name looks like it holds a secret.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["_KEY", "_TOKEN", "_SECRET", "SECRET_", "PASSWORD", "CREDENTIALS"]
        .iter()
        .any(|mark| upper.contains(mark))
        || upper.ends_with("SECRET")
        || upper.ends_with("_PAT")
}

/// Replaces secret values with `[REDACTED]`. Built from the environment: every variable that a
/// spec declares as a secret or whose name looks like one.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

/// Values shorter than this are not redacted: they would mangle ordinary text.
const MIN_SECRET_CHARS: usize = 6;

impl Redactor {
    /// Collects the values to hide: variables named in `declared` or that look secret.
    pub fn from_env<'a>(
        env: &EnvSnapshot,
        declared: impl IntoIterator<Item = &'a str>,
    ) -> Redactor {
        let declared: Vec<&str> = declared.into_iter().collect();
        let mut values: Vec<String> = env
            .iter()
            .filter(|(name, value)| {
                (declared.contains(name) || looks_secret(name)) && value.len() >= MIN_SECRET_CHARS
            })
            .map(|(_, value)| value.to_owned())
            .collect();
        // Longest first, so a secret that contains another is hidden whole.
        values.sort_by_key(|value| std::cmp::Reverse(value.len()));
        values.dedup();
        Redactor { values }
    }

    /// Returns `text` with every secret value replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for value in &self.values {
            if text.contains(value.as_str()) {
                text = text.replace(value.as_str(), "[REDACTED]");
            }
        }
        text
    }

    /// Returns whether `text` holds any secret value.
    pub fn leaks(&self, text: &str) -> bool {
        self.values.iter().any(|value| text.contains(value.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::{EnvSnapshot, Redactor, looks_secret};

    #[test]
    fn ci_detection() {
        assert!(EnvSnapshot::from_pairs([("CI", "TRUE")]).in_ci());
        assert!(EnvSnapshot::from_pairs([("CI", "1")]).in_ci());
        assert!(!EnvSnapshot::from_pairs([("CI", "false")]).in_ci());
        assert!(!EnvSnapshot::from_pairs([("CI", "")]).in_ci());
    }

    #[test]
    fn redacts_declared_and_secret_looking_values() {
        let env = EnvSnapshot::from_pairs([
            ("OPENAI_API_KEY", "sk-canary-123456"),
            ("CUSTOM", "plain-value-1"),
            ("MY_TOKEN", "tok-abcdef"),
            ("HOME", "/root"),
        ]);
        let redactor = Redactor::from_env(&env, ["CUSTOM"]);
        assert_eq!(
            redactor.redact("a sk-canary-123456 b plain-value-1 tok-abcdef /root"),
            "a [REDACTED] b [REDACTED] [REDACTED] /root"
        );
        assert!(looks_secret("AWS_SECRET_ACCESS_KEY") && looks_secret("GITHUB_PAT"));
        assert!(!looks_secret("PATH") && !looks_secret("LD_LIBRARY_PATH"));
    }
}
