//! `theory local start|run|stop|status|logs`: long-lived processor containers, one per ref and
//! project, on host ports that persist in `.theory/local_ports.json`. `local run` goes through
//! [`ServiceAdapter`], which never starts anything.

use std::path::Path;

use async_trait::async_trait;
use serde::Serialize;
use theory_core::registry::{Platform, ProcessorSpec};
use theory_core::{
    Adapter, AdapterOptions, EnvSnapshot, Failure, Instance, Launch, Plan, ProcessorRef,
};
use theory_docker::{ContainerInfo, Docker, labels};
use theory_protocol::{ErrorCode, Mode};

use crate::adapter::LocalAdapter;
use crate::docker::{ContainerKind, ContainerLaunch, DockerInstance, compare_identity, fetch_info};
use crate::health::healthy_once;
use crate::ports::PortBook;

/// A Theory container, as `status` shows it. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceInfo {
    /// The processor ref.
    #[serde(rename = "ref")]
    pub reference: String,
    /// `service` (`local start`) or `run` (one `theory run`).
    pub kind: String,
    /// The container's name.
    pub container: String,
    /// The host port on 127.0.0.1.
    pub port: Option<u16>,
    /// The image it runs, as named.
    pub image: String,
    /// The identity the processor must report.
    pub image_digest: String,
    /// Whether the image is a registry pin.
    pub pinned: bool,
    /// Docker's state (`running`, `exited`, …).
    pub state: String,
    /// Whether `/healthz` answers.
    pub healthy: bool,
}

/// The project's long-lived containers.
#[derive(Debug, Clone)]
pub struct Services {
    adapter: LocalAdapter,
    ports: PortBook,
}

fn service_name(reference: &ProcessorRef, project: &Path) -> String {
    let project_hash = blake3::hash(project.as_os_str().as_encoded_bytes()).to_hex();
    format!("theory-svc-{}-{}", reference.slug().replace('_', "-"), &project_hash[..8])
}

impl Services {
    /// Services of the project whose state folder is `state` (`.theory/`).
    pub fn new(adapter: LocalAdapter, state: &Path) -> Services {
        Services { adapter, ports: PortBook::new(state) }
    }

    /// The port book.
    pub fn ports(&self) -> &PortBook {
        &self.ports
    }

    /// Starts the processor's container with its secrets from `env` (every required one, and the
    /// key its default inputs choose, must be set), or reuses the one that runs from the same image. Returns the container and whether it
    /// was reused.
    pub async fn start(
        &self,
        spec: &ProcessorSpec,
        platform: Option<Platform>,
        env: &EnvSnapshot,
    ) -> Result<(ServiceInfo, bool), Failure> {
        // The required keys and the one the default inputs choose (`secrets.by_input`): what a
        // container serving any run needs at the least.
        let missing: Vec<&str> = spec
            .secrets
            .baseline()
            .into_iter()
            .map(theory_core::registry::SecretName::as_str)
            .filter(|name| env.get(name).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(Failure::with_hint(
                ErrorCode::MissingSecret,
                format!(
                    "{} needs {} in the environment to start",
                    spec.reference,
                    missing.join(", ")
                ),
                format!("export {}=… and start again", missing.join("=… ")),
            ));
        }
        let (docker, image) = self.adapter.image_for(spec, platform, false).await?;
        if let Some(existing) = self.find(&docker, &spec.reference).await? {
            let same_image = existing.labels.get(labels::IMAGE) == Some(&image.identity);
            let healthy = match existing.host_port {
                Some(port) => healthy_once(&format!("127.0.0.1:{port}")).await,
                None => false,
            };
            if existing.state == "running" && same_image && healthy {
                return Ok((self.describe(existing, true).await, true));
            }
            tracing::info!(container = %existing.name, state = %existing.state, same_image, "replacing the processor's container");
            docker.remove_container(&existing.id).await;
        }
        let port = self.ports.port_for(spec.reference.as_str()).map_err(|error| {
            Failure::with_hint(
                ErrorCode::Adapter,
                format!("cannot record a port in {}: {error}", self.ports.path().display()),
                "check that .theory/ is writable",
            )
        })?;
        let secrets: Vec<(String, String)> = spec
            .secrets
            .all()
            .filter_map(|name| {
                env.get(name.as_str()).map(|value| (name.to_string(), value.to_owned()))
            })
            .collect();
        let config = spec.config_values(env);
        let launch = ContainerLaunch {
            spec,
            image: &image,
            name: service_name(&spec.reference, self.adapter.project()),
            kind: ContainerKind::Service,
            project: self.adapter.project(),
            secrets: &secrets,
            config: &config,
            host_port: Some(port),
            log_filter: &self.adapter.settings().log_filter,
            start_timeout: self.adapter.settings().start_timeout,
        };
        let instance = DockerInstance::start(&docker, &launch).await.map_err(|mut error| {
            if error.message.contains("already allocated") || error.message.contains("in use") {
                error.hint = Some(format!(
                    "port {port} is taken by another program: free it, or remove {} from {}",
                    spec.reference,
                    self.ports.path().display()
                ));
            }
            error
        })?;
        instance.detach();
        let started = self.find(&docker, &spec.reference).await?.ok_or_else(|| {
            Failure::with_hint(
                ErrorCode::Docker,
                "the container vanished right after it started",
                "see `theory local logs`",
            )
        })?;
        Ok((self.describe(started, true).await, false))
    }

    /// Stops and removes the containers of `reference`, or of every processor of the project.
    pub async fn stop(
        &self,
        reference: Option<&ProcessorRef>,
    ) -> Result<Vec<ServiceInfo>, Failure> {
        let docker = self.adapter.docker().await?;
        let found = self.containers(&docker, reference).await?;
        let mut stopped = Vec::new();
        for container in found {
            docker.remove_container(&container.id).await;
            let mut info = self.describe(container, false).await;
            "removed".clone_into(&mut info.state);
            stopped.push(info);
        }
        Ok(stopped)
    }

    /// Every Theory container on this engine (services of any project and runs), with health.
    pub async fn status(&self) -> Result<Vec<ServiceInfo>, Failure> {
        let docker = self.adapter.docker().await?;
        let found = docker
            .containers(&[(labels::MANAGED, "true")])
            .await
            .map_err(|error| crate::image_choice::docker_error(&error))?;
        let mut all = Vec::new();
        for container in found {
            all.push(self.describe(container, true).await);
        }
        all.sort_by(|a, b| (&a.reference, &a.container).cmp(&(&b.reference, &b.container)));
        Ok(all)
    }

    /// The running or stopped service container of `reference` in this project.
    pub async fn find(
        &self,
        docker: &Docker,
        reference: &ProcessorRef,
    ) -> Result<Option<ContainerInfo>, Failure> {
        Ok(self.containers(docker, Some(reference)).await?.into_iter().next())
    }

    async fn containers(
        &self,
        docker: &Docker,
        reference: Option<&ProcessorRef>,
    ) -> Result<Vec<ContainerInfo>, Failure> {
        let project = self.adapter.project().display().to_string();
        let mut filter = vec![
            (labels::MANAGED, "true"),
            (labels::KIND, "service"),
            (labels::PROJECT, project.as_str()),
        ];
        if let Some(reference) = reference {
            filter.push((labels::REF, reference.as_str()));
        }
        docker.containers(&filter).await.map_err(|error| crate::image_choice::docker_error(&error))
    }

    async fn describe(&self, container: ContainerInfo, probe: bool) -> ServiceInfo {
        let healthy = match container.host_port {
            Some(port) if probe && container.state == "running" => {
                healthy_once(&format!("127.0.0.1:{port}")).await
            }
            _ => false,
        };
        let label = |key: &str| container.labels.get(key).cloned().unwrap_or_default();
        ServiceInfo {
            reference: label(labels::REF),
            kind: label(labels::KIND),
            pinned: label(labels::PINNED) == "true",
            image_digest: label(labels::IMAGE),
            container: container.name,
            port: container.host_port,
            image: container.image,
            state: container.state,
            healthy,
        }
    }

    /// The adapter `theory local run` uses.
    pub fn adapter(&self) -> ServiceAdapter {
        ServiceAdapter { services: self.clone() }
    }

    /// The local adapter underneath.
    pub fn local(&self) -> &LocalAdapter {
        &self.adapter
    }
}

/// Runs on the container `theory local start` started; never starts anything.
#[derive(Debug, Clone)]
pub struct ServiceAdapter {
    services: Services,
}

#[async_trait]
impl Adapter for ServiceAdapter {
    fn kind(&self) -> theory_core::AdapterKind {
        theory_core::AdapterKind::Local
    }

    async fn plan(
        &self,
        spec: &ProcessorSpec,
        options: &AdapterOptions,
        _mode: Mode,
    ) -> Result<Plan, Failure> {
        let reference = &spec.reference;
        let docker = self.services.adapter.docker().await?;
        let not_running = || {
            Failure::with_hint(
                ErrorCode::Adapter,
                format!("no local container runs {reference}"),
                format!("start it with `theory local start --ref {reference}`"),
            )
        };
        // The expected image, and the running container with what its processor reports in
        // `/info`, asked at once: this is on every `local run`'s path.
        let running = async {
            let container = self
                .services
                .find(&docker, reference)
                .await?
                .filter(|container| container.state == "running")
                .ok_or_else(not_running)?;
            let endpoint =
                format!("http://127.0.0.1:{}", container.host_port.ok_or_else(not_running)?);
            let info = fetch_info(&endpoint).await;
            Ok::<_, Failure>((container, endpoint, info))
        };
        let (image, running) =
            tokio::join!(self.services.adapter.image_for(spec, options.platform, false), running);
        let ((_, image), (container, endpoint, info)) = (image?, running?);
        let started_from = container.labels.get(labels::IMAGE).cloned().unwrap_or_default();
        if started_from != image.identity {
            return Err(Failure::with_hint(
                ErrorCode::RegistryMismatch,
                format!(
                    "the container of {reference} runs image {started_from}, but {} is expected now",
                    image.identity
                ),
                format!("restart it: `theory local start --ref {reference}` replaces it"),
            ));
        }
        compare_identity(&endpoint, info, &image.identity)?;
        Ok(Plan {
            runtime: theory_core::Runtime::Docker,
            image_identity: image.identity,
            pinned: image.pinned,
            target: endpoint,
            platform: Some(image.platform),
            secrets_held: true,
            reaches_host_loopback: false,
        })
    }

    async fn start(
        &self,
        _spec: &ProcessorSpec,
        plan: &Plan,
        _launch: &Launch,
    ) -> Result<Box<dyn Instance>, Failure> {
        // The plan checked the container and its `/info`; nothing starts here.
        let docker = self.services.adapter.docker().await?;
        Ok(Box::new(DockerInstance::attach(&docker, plan.target.clone())))
    }
}
