//! The `modal` adapter: runs on a deployment `theory modal start|deploy` made. Planning finds the
//! deployment of the ref in the environment (`--env`, else `MODAL_ENVIRONMENT`, else `main`),
//! checks it runs the spec's amd64 pin and that the proxy auth token is here — all before
//! anything starts. Starting waits for the endpoint's `/healthz` (Modal starts a container on
//! the first request) and checks `/info` against the pin; the session then speaks
//! `theory.run.v1` over WSS exactly as it does locally. Nothing is stopped afterwards: Modal
//! scales the app down by itself.

use std::time::Duration;

use async_trait::async_trait;
use theory_core::registry::{Platform, ProcessorSpec};
use theory_core::{
    Adapter, AdapterOptions, EnvSnapshot, Failure, ImagePin, Instance, Launch, Mode, Plan,
};
use theory_protocol::{ErrorCode, HEALTHZ_BODY, Info};

use crate::deployments::{Deployment, DeploymentBook};
use crate::naming::ModalEnv;
use theory_core::env::names;

/// The proxy auth token's id, sent as `Modal-Key`.
pub const PROXY_TOKEN_ID: &str = names::MODAL_PROXY_TOKEN_ID;
/// The proxy auth token's secret, sent as `Modal-Secret`.
pub const PROXY_TOKEN_SECRET: &str = names::MODAL_PROXY_TOKEN_SECRET;
/// How long a cold container has to answer `/healthz` (`THEORY_MODAL_STARTUP_S` overrides).
const DEFAULT_STARTUP: Duration = Duration::from_mins(3);

/// Runs processors on their Modal deployments.
#[derive(Debug, Clone)]
pub struct ModalAdapter {
    env_name: ModalEnv,
    book: DeploymentBook,
    env: EnvSnapshot,
    startup: Duration,
}

fn modal_error(message: impl Into<String>, hint: impl Into<String>) -> Failure {
    Failure::with_hint(ErrorCode::Modal, message, hint)
}

/// The environment runs use: `--env`, else `MODAL_ENVIRONMENT`, else `main`.
pub fn run_environment(flag: Option<&str>, env: &EnvSnapshot) -> Result<ModalEnv, String> {
    flag.or_else(|| env.get(names::MODAL_ENVIRONMENT).filter(|name| !name.is_empty()))
        .unwrap_or("main")
        .parse()
}

impl ModalAdapter {
    /// The adapter for deployments in `env_name`, recorded under `state` (`.theory/`).
    pub fn new(env_name: ModalEnv, state: &std::path::Path, env: &EnvSnapshot) -> ModalAdapter {
        let startup = env
            .get(names::MODAL_STARTUP_S)
            .and_then(|text| text.parse().ok())
            .map_or(DEFAULT_STARTUP, Duration::from_secs);
        ModalAdapter { env_name, book: DeploymentBook::new(state, env), env: env.clone(), startup }
    }

    /// The recorded deployment of `reference`, or an error saying how to make one.
    pub async fn deployment(&self, reference: &str) -> Result<Deployment, Failure> {
        self.deployment_in(self.env_name, reference).await
    }

    /// The environment a run uses: its options' (the API's `env`), else the adapter's.
    fn environment_of(&self, options: &AdapterOptions) -> Result<ModalEnv, Failure> {
        match &options.modal_environment {
            None => Ok(self.env_name),
            Some(name) => name.parse().map_err(|error| {
                Failure::with_hint(
                    ErrorCode::Usage,
                    format!("env: {error}"),
                    "use dev, staging or main",
                )
            }),
        }
    }

    /// The recorded deployment of `reference` in `env_name`, or an error saying how to make one.
    async fn deployment_in(
        &self,
        env_name: ModalEnv,
        reference: &str,
    ) -> Result<Deployment, Failure> {
        let recorded = self.book.get(env_name, reference).await.map_err(|error| {
            modal_error(
                format!("cannot read the Modal deployments in {}: {error}", self.book.place()),
                "check the ledger with `theory ledger verify`; `theory modal start` records a deployment again",
            )
        })?;
        recorded.ok_or_else(|| {
            modal_error(
                format!("{reference} is not deployed to Modal environment {env_name}"),
                format!(
                    "deploy it first: `theory modal start --ref {reference} --env {env_name} --oci repo@sha256:…`"
                ),
            )
        })
    }

    /// The proxy auth headers a deployment needs, or the error naming what is missing.
    fn headers(&self, deployment: &Deployment) -> Result<Vec<(String, String)>, Failure> {
        if !deployment.proxy_auth {
            return Ok(Vec::new());
        }
        let value = |name: &str| self.env.get(name).filter(|value| !value.is_empty());
        match (value(PROXY_TOKEN_ID), value(PROXY_TOKEN_SECRET)) {
            (Some(id), Some(secret)) => Ok(vec![
                ("Modal-Key".to_owned(), id.to_owned()),
                ("Modal-Secret".to_owned(), secret.to_owned()),
            ]),
            _ => Err(modal_error(
                format!(
                    "{} on Modal requires a proxy auth token, and {PROXY_TOKEN_ID} and {PROXY_TOKEN_SECRET} are not both set",
                    deployment.app_name
                ),
                format!(
                    "create a token at modal.com/settings/proxy-auth-tokens and export {PROXY_TOKEN_ID}=wk-… {PROXY_TOKEN_SECRET}=ws-…"
                ),
            )),
        }
    }

    fn http(&self) -> Result<reqwest::Client, Failure> {
        let tls = theory_core::tls::client_config(&self.env).map_err(|error| {
            modal_error(format!("cannot set up TLS: {error}"), "check SSL_CERT_FILE, or unset it")
        })?;
        reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| {
                modal_error(format!("cannot build an HTTP client: {error}"), "report this")
            })
    }
}

/// Checks the deployment runs the spec's amd64 pin (when the spec has one) and returns the
/// image that runs.
fn deployed_image(spec: &ProcessorSpec, deployment: &Deployment) -> Result<ImagePin, Failure> {
    let deployed: ImagePin = deployment.image_ref.parse().map_err(|error| {
        modal_error(
            format!("the recorded deployment's image is not a pin: {error}"),
            "deploy again with `theory modal start … --oci repo@sha256:…`",
        )
    })?;
    if let Some(pin) = spec.image.pin_for(Platform::Amd64)
        && pin.digest() != deployed.digest()
    {
        return Err(Failure::with_hint(
            ErrorCode::RegistryMismatch,
            format!(
                "{} on Modal ({}) runs {deployed}, but the spec pins {pin} for amd64",
                spec.reference, deployment.app_name
            ),
            format!(
                "deploy the pin: `theory modal start --ref {} --env {} --oci {pin}`",
                spec.reference, deployment.env
            ),
        ));
    }
    Ok(deployed)
}

#[async_trait]
impl Adapter for ModalAdapter {
    fn kind(&self) -> theory_core::AdapterKind {
        theory_core::AdapterKind::Modal
    }

    async fn plan(
        &self,
        spec: &ProcessorSpec,
        options: &AdapterOptions,
        _mode: Mode,
    ) -> Result<Plan, Failure> {
        let environment = self.environment_of(options)?;
        let deployment = self.deployment_in(environment, spec.reference.as_str()).await?;
        let image = deployed_image(spec, &deployment)?;
        self.headers(&deployment)?;
        Ok(Plan {
            runtime: theory_core::Runtime::Modal,
            image_identity: image.digest().to_string(),
            pinned: true,
            target: deployment.url.clone(),
            platform: Some(Platform::Amd64),
            // Modal mounts the secrets `theory modal sync-secrets` put there.
            secrets_held: true,
            reaches_host_loopback: false,
        })
    }

    async fn start(
        &self,
        spec: &ProcessorSpec,
        plan: &Plan,
        _launch: &Launch,
    ) -> Result<Box<dyn Instance>, Failure> {
        // The deployment planned: the one of some environment at the planned endpoint.
        let mut planned = None;
        for env_name in [ModalEnv::Dev, ModalEnv::Staging, ModalEnv::Main] {
            if let Ok(deployment) = self.deployment_in(env_name, spec.reference.as_str()).await
                && deployment.url == plan.target
            {
                planned = Some(deployment);
                break;
            }
        }
        let deployment = match planned {
            Some(deployment) => deployment,
            None => self.deployment(spec.reference.as_str()).await?,
        };
        let headers = self.headers(&deployment)?;
        let http = self.http()?;
        let endpoint = plan.target.trim_end_matches('/').to_owned();
        wait_healthy(&http, &endpoint, &headers, self.startup).await?;
        let info = fetch_info(&http, &endpoint, &headers).await?;
        if info.image_digest.as_deref() != Some(plan.image_identity.as_str()) {
            return Err(Failure::with_hint(
                ErrorCode::RegistryMismatch,
                format!(
                    "the deployment at {endpoint} reports image {} but {} is expected",
                    info.image_digest.as_deref().unwrap_or("(none)"),
                    plan.image_identity
                ),
                format!(
                    "deploy again: `theory modal start --ref {} --env {} --oci …`",
                    spec.reference, deployment.env
                ),
            ));
        }
        Ok(Box::new(ModalInstance { endpoint, headers }))
    }
}

/// Polls `/healthz` until it answers `{"ok":true}` or `startup` passes; a refused token ends it
/// at once.
async fn wait_healthy(
    http: &reqwest::Client,
    endpoint: &str,
    headers: &[(String, String)],
    startup: Duration,
) -> Result<(), Failure> {
    let deadline = tokio::time::Instant::now() + startup;
    loop {
        let last = match get(http, &format!("{endpoint}/healthz"), headers).await {
            Ok((200, body)) if body.trim() == HEALTHZ_BODY => return Ok(()),
            Ok((401 | 403, _)) => {
                return Err(modal_error(
                    format!("{endpoint} refused the proxy auth token"),
                    format!(
                        "check {PROXY_TOKEN_ID} and {PROXY_TOKEN_SECRET} belong to the app's workspace"
                    ),
                ));
            }
            Ok((status, _)) => format!("HTTP {status}"),
            Err(error) => error,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure::with_hint(
                ErrorCode::Adapter,
                format!(
                    "the deployment at {endpoint} did not answer /healthz within {} s ({last})",
                    startup.as_secs()
                ),
                "see what the container says: `theory modal logs --ref … --env …`",
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn get(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
) -> Result<(u16, String), String> {
    let mut request = http.get(url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|error| error_chain(&error))?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|error| error.to_string())?;
    Ok((status, body))
}

/// The deployment's `/info`.
async fn fetch_info(
    http: &reqwest::Client,
    endpoint: &str,
    headers: &[(String, String)],
) -> Result<Info, Failure> {
    get_json::<Info>(http, &format!("{endpoint}/info"), headers).await.map_err(|error| {
        modal_error(
            format!("GET {endpoint}/info failed: {error}"),
            "check the deployment's logs: `theory modal logs`",
        )
    })
}

/// A GET that must answer 200 with a JSON body.
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
) -> Result<T, String> {
    match get(http, url, headers).await? {
        (200, body) => serde_json::from_str(&body).map_err(|error| error.to_string()),
        (status, _) => Err(format!("HTTP {status}")),
    }
}

/// An error with its causes, which say what actually failed (refused, TLS, DNS).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A deployment's endpoint, with the headers every request carries.
struct ModalInstance {
    endpoint: String,
    headers: Vec<(String, String)>,
}

#[async_trait]
impl Instance for ModalInstance {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn headers(&self) -> Vec<(String, String)> {
        self.headers.clone()
    }

    async fn stop(self: Box<Self>) {}
}

impl ModalAdapter {
    /// Asks a deployment which image it runs (`/info`), for `verify-digest`.
    pub async fn deployed_digest(
        &self,
        deployment: &Deployment,
    ) -> Result<Option<String>, Failure> {
        let headers = self.headers(deployment)?;
        let http = self.http()?;
        let endpoint = deployment.url.trim_end_matches('/');
        wait_healthy(&http, endpoint, &headers, self.startup).await?;
        let info = fetch_info(&http, endpoint, &headers).await?;
        Ok(info.image_digest)
    }
}
