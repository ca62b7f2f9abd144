//! The local adapter: picks the runtime and starts instances on this host.
//!
//! Runtime choice: `--adapter-opts-json '{"runtime":…}'` forces one, then `THEORY_LOCAL_RUNTIME`
//! (`process`, `docker`, `auto`). Otherwise (`auto`) `docker` when
//! Docker answers and the processor's image is here (its pin, else a local build); a mock run
//! falls back to `process` (the host binary) and says so; a real run never falls back.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use theory_core::env::names;
use theory_core::registry::{Platform, ProcessorSpec};
use theory_core::{
    Adapter, AdapterKind, AdapterOptions, EnvSnapshot, Failure, Instance, Launch, Plan, Runtime,
};
use theory_docker::{Docker, DockerError};
use theory_protocol::{ErrorCode, Mode};
use tokio::sync::OnceCell;

use crate::docker::{ContainerKind, ContainerLaunch, DockerInstance};
use crate::identity::IdentityCache;
use crate::image_choice::{ImageChoice, choose_image, docker_error};
use crate::process::{BinarySearch, ProcessInstance, ProcessSettings};
use crate::python_env::{LAUNCHER, python_env_folder};
use crate::reaper::reap_orphans;

/// Runs processors on this host.
#[derive(Debug, Clone)]
pub struct LocalAdapter {
    binaries: BinarySearch,
    settings: ProcessSettings,
    identities: IdentityCache,
    project: PathBuf,
    /// The state folder (`.theory/`), where Python processors' environments are prepared.
    state: Option<PathBuf>,
    /// `THEORY_LOCAL_RUNTIME`, when it names one (`auto` does not); the text when it names no
    /// local runtime, refused when a run plans.
    default_runtime: Option<Result<Runtime, String>>,
    docker: std::sync::Arc<OnceCell<Result<Docker, DockerError>>>,
    /// Where a private registry's credentials come from, for pulling pins.
    credentials: theory_docker::CredentialSources,
}

impl LocalAdapter {
    /// Builds the adapter from the environment: binaries are looked for in
    /// `THEORY_PROCESSOR_PATH`, then in the project's `target/release` and `target/debug` (the
    /// newer), then beside the running `theory` binary, then on `PATH`. Binary
    /// identities are cached in `state/cache/` when a state folder is given. Docker is reached
    /// only when a plan needs it.
    pub fn from_env(env: &EnvSnapshot, state: Option<&std::path::Path>) -> LocalAdapter {
        let mut folders: Vec<PathBuf> = Vec::new();
        if let Some(path) = env.get(names::PROCESSOR_PATH) {
            folders.extend(std::env::split_paths(path));
        }
        let project = state
            .and_then(std::path::Path::parent)
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        // What `cargo build` made in the project (a scaffolded processor's binary).
        let builds = if state.is_some() {
            vec![project.join("target/release"), project.join("target/debug")]
        } else {
            Vec::new()
        };
        let mut fallback: Vec<PathBuf> = Vec::new();
        if let Some(own_folder) =
            std::env::current_exe().ok().and_then(|exe| exe.parent().map(PathBuf::from))
        {
            fallback.push(own_folder);
        }
        if let Some(path) = env.get("PATH") {
            fallback.extend(std::env::split_paths(path));
        }
        let start_timeout =
            env.get(names::START_TIMEOUT_S).and_then(|value| value.parse().ok()).unwrap_or(30);
        let settings = ProcessSettings {
            start_timeout: Duration::from_secs(start_timeout),
            log_filter: env.get(names::PROCESSOR_LOG).unwrap_or("warn").to_owned(),
        };
        let identities =
            IdentityCache::new(state.map(|state| state.join("cache/binary-identities.json")));
        let default_runtime = env
            .get(names::LOCAL_RUNTIME)
            .filter(|runtime| !runtime.is_empty() && *runtime != "auto")
            .map(|runtime| match runtime.parse::<Runtime>() {
                Ok(Runtime::Modal) | Err(_) => Err(runtime.to_owned()),
                Ok(runtime) => Ok(runtime),
            });
        LocalAdapter {
            binaries: BinarySearch { folders, builds, fallback },
            settings,
            identities,
            project,
            state: state.map(PathBuf::from),
            default_runtime,
            docker: std::sync::Arc::default(),
            credentials: registry_credentials(env),
        }
    }

    /// Connects to Docker once per adapter; later calls reuse the answer.
    pub async fn docker(&self) -> Result<Docker, Failure> {
        let connected = self.docker.get_or_init(Docker::connect).await;
        connected.clone().map_err(|error| docker_error(&error))
    }

    /// The runtime settings (start timeout, processor log filter).
    pub fn settings(&self) -> &ProcessSettings {
        &self.settings
    }

    /// The project root containers are labelled with.
    pub fn project(&self) -> &std::path::Path {
        &self.project
    }

    fn plan_process(&self, spec: &ProcessorSpec) -> Result<(PathBuf, String), Failure> {
        let build = spec.image.build_spec().ok_or_else(|| {
            Failure::with_hint(
                ErrorCode::Adapter,
                format!(
                    "{} has no image.build, so there is no binary to run on the host",
                    spec.reference
                ),
                "add image.build.binary to its spec",
            )
        })?;
        if build.python.is_some() {
            return self.python_launcher(spec);
        }
        let name = build.binary_name();
        let binary = self.binaries.find(name).ok_or_else(|| {
            Failure::with_hint(
                ErrorCode::Adapter,
                format!("the processor binary {name} of {} was not found", spec.reference),
                format!("build it with `cargo build --release -p {name}`, or point THEORY_PROCESSOR_PATH at its folder"),
            )
        })?;
        Ok((binary.clone(), binary.display().to_string()))
    }

    /// A Python processor's launcher, from the environment `theory processor build` prepared.
    fn python_launcher(&self, spec: &ProcessorSpec) -> Result<(PathBuf, String), Failure> {
        let reference = &spec.reference;
        let launcher = self
            .state
            .as_deref()
            .map(|state| python_env_folder(state, reference).join(LAUNCHER))
            .filter(|launcher| launcher.is_file())
            .ok_or_else(|| {
                Failure::with_hint(
                    ErrorCode::Adapter,
                    format!("{reference} is a Python processor and its environment is not prepared"),
                    format!("prepare it with `theory processor build --ref {reference} --runtime process`"),
                )
            })?;
        Ok((launcher.clone(), launcher.display().to_string()))
    }

    async fn process_plan(&self, spec: &ProcessorSpec) -> Result<Plan, Failure> {
        let (binary, target) = self.plan_process(spec)?;
        let identity = self.identities.identity(&binary).await.map_err(|error| {
            Failure::with_hint(
                ErrorCode::Adapter,
                format!("cannot read {}: {error}", binary.display()),
                "check the file's permissions",
            )
        })?;
        Ok(Plan {
            runtime: Runtime::Process,
            image_identity: identity,
            pinned: false,
            target,
            platform: None,
            secrets_held: false,
            reaches_host_loopback: true,
        })
    }

    /// Chooses the image (the pin, else — or when `local_build` asks — the newest local build)
    /// and checks Docker, without starting anything.
    pub async fn image_for(
        &self,
        spec: &ProcessorSpec,
        platform: Option<Platform>,
        local_build: bool,
    ) -> Result<(Docker, ImageChoice), Failure> {
        let docker = self.docker().await?;
        let platform = platform.or_else(Platform::host).unwrap_or(Platform::Amd64);
        let choice = choose_image(&docker, spec, platform, &self.credentials, local_build).await?;
        Ok((docker, choice))
    }

    async fn docker_plan(
        &self,
        spec: &ProcessorSpec,
        options: &AdapterOptions,
    ) -> Result<Plan, Failure> {
        let (docker, choice) = self.image_for(spec, options.platform, options.local_build).await?;
        reap_orphans(&docker).await;
        Ok(Plan {
            runtime: Runtime::Docker,
            image_identity: choice.identity,
            pinned: choice.pinned,
            target: choice.reference,
            platform: Some(choice.platform),
            secrets_held: false,
            reaches_host_loopback: false,
        })
    }
}

#[async_trait]
impl Adapter for LocalAdapter {
    fn kind(&self) -> AdapterKind {
        AdapterKind::Local
    }

    async fn plan(
        &self,
        spec: &ProcessorSpec,
        options: &AdapterOptions,
        mode: Mode,
    ) -> Result<Plan, Failure> {
        let runtime = match (options.runtime, &self.default_runtime) {
            (Some(runtime), _) => Some(runtime),
            (None, Some(Ok(runtime))) => Some(*runtime),
            (None, Some(Err(other))) => {
                return Err(Failure::with_hint(
                    ErrorCode::Adapter,
                    format!("THEORY_LOCAL_RUNTIME={other} is unknown"),
                    "use process, docker or auto",
                ));
            }
            (None, None) => None,
        };
        match (runtime, mode) {
            (Some(Runtime::Process), _) => self.process_plan(spec).await,
            (Some(_), _) => self.docker_plan(spec, options).await,
            (None, Mode::Real) => self.docker_plan(spec, options).await.map_err(|mut error| {
                error.hint = Some(format!(
                    "{}; or run the host binary on purpose with --adapter-opts-json '{{\"runtime\":\"process\"}}'",
                    error.hint.unwrap_or_default()
                ));
                error
            }),
            (None, Mode::Mock) => match self.docker_plan(spec, options).await {
                Ok(plan) => Ok(plan),
                Err(reason) => {
                    tracing::info!(
                        reason = %reason.message,
                        "not using Docker for this mock run; running the processor on the host (process runtime)"
                    );
                    self.process_plan(spec).await
                }
            },
        }
    }

    async fn start(
        &self,
        spec: &ProcessorSpec,
        plan: &Plan,
        launch: &Launch,
    ) -> Result<Box<dyn Instance>, Failure> {
        if plan.runtime == Runtime::Process {
            let instance =
                ProcessInstance::start(plan.target.as_ref(), launch, &self.settings).await?;
            return Ok(Box::new(instance));
        }
        let docker = self.docker().await?;
        let image = ImageChoice {
            reference: plan.target.clone(),
            identity: plan.image_identity.clone(),
            pinned: plan.pinned,
            platform: plan.platform.or_else(Platform::host).unwrap_or(Platform::Amd64),
        };
        let container = ContainerLaunch {
            spec,
            image: &image,
            name: run_container_name(spec),
            kind: ContainerKind::Run,
            project: &self.project,
            secrets: &launch.secrets,
            config: &launch.config,
            host_port: None,
            log_filter: &self.settings.log_filter,
            start_timeout: self.settings.start_timeout,
        };
        Ok(Box::new(DockerInstance::start(&docker, &container).await?))
    }
}

/// `theory-run-{ref_slug}-{random}`: unique per run.
fn run_container_name(spec: &ProcessorSpec) -> String {
    format!(
        "theory-run-{}-{}",
        spec.reference.slug().replace('_', "-"),
        crate::random::random_hex(6)
    )
}

/// Where a registry's credentials come from: `REGISTRY_USERNAME`/`REGISTRY_PASSWORD` (for
/// `REGISTRY_SERVER`, else the host of `THEORY_IMAGE_REGISTRY`), else `docker login`'s
/// configuration (`DOCKER_CONFIG`, else `~/.docker`).
pub fn registry_credentials(env: &EnvSnapshot) -> theory_docker::CredentialSources {
    theory_docker::CredentialSources {
        username: env.get(names::REGISTRY_USERNAME).map(str::to_owned),
        password: env.get(names::REGISTRY_PASSWORD).map(str::to_owned),
        server: env
            .get(names::REGISTRY_SERVER)
            .or_else(|| env.get(names::IMAGE_REGISTRY))
            .filter(|server| !server.is_empty())
            .map(str::to_owned),
        docker_config: env
            .get(names::DOCKER_CONFIG)
            .map(PathBuf::from)
            .or_else(|| env.get("HOME").map(|home| PathBuf::from(home).join(".docker"))),
    }
}
