//! Processor containers: create and start with the port on 127.0.0.1, find by label, logs,
//! remove.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::{Docker, DockerError};

/// The prefix of every label Theory sets.
pub const LABEL_PREFIX: &str = "com.theory.";

/// The labels Theory puts on its containers. Values never hold secrets.
pub mod labels {
    /// `true` on every container Theory created.
    pub const MANAGED: &str = "com.theory.managed";
    /// The processor ref.
    pub const REF: &str = "com.theory.ref";
    /// `run` (one `theory run`, removed after it) or `service` (`theory local start`).
    pub const KIND: &str = "com.theory.kind";
    /// The image identity the processor must report: a pin's digest or a local image ID.
    pub const IMAGE: &str = "com.theory.image";
    /// The project root the container belongs to.
    pub const PROJECT: &str = "com.theory.project";
    /// `pid@host` of the `theory` process that owns a `run` container.
    pub const OWNER: &str = "com.theory.owner";
    /// Whether the image is a registry pin (`true`) or a local build (`false`).
    pub const PINNED: &str = "com.theory.pinned";
}

/// How to start a processor container.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// Its name.
    pub name: String,
    /// The image reference.
    pub image: String,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// Labels (see [`labels`]).
    pub labels: HashMap<String, String>,
    /// The port the processor listens on inside.
    pub container_port: u16,
    /// The host port on 127.0.0.1; `None` lets Docker pick one.
    pub host_port: Option<u16>,
    /// CPU limit in billionths of a CPU.
    pub nano_cpus: Option<i64>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<i64>,
    /// `linux/amd64` or `linux/arm64`, when not the host's.
    pub platform: Option<String>,
    /// GPUs to request (`-1`: all), as a device request for the `gpu` capability.
    pub gpus: Option<i64>,
}

/// A container Theory found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Its ID.
    pub id: String,
    /// Its name, without the leading `/`.
    pub name: String,
    /// The image it was created from, as named.
    pub image: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// `running`, `exited`, …
    pub state: String,
    /// The host port its processor port is published on.
    pub host_port: Option<u16>,
}

/// How a container is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// Whether it runs.
    pub running: bool,
    /// Its exit code once stopped.
    pub exit_code: Option<i64>,
    /// Whether the kernel killed it for memory.
    pub oom_killed: bool,
}

impl Docker {
    /// Creates and starts a container; a container that cannot start is removed again.
    pub async fn start_container(&self, spec: &ContainerSpec) -> Result<String, DockerError> {
        let port_key = format!("{}/tcp", spec.container_port);
        let binding = PortBinding {
            host_ip: Some("127.0.0.1".into()),
            host_port: Some(spec.host_port.map(|port| port.to_string()).unwrap_or_default()),
        };
        let host_config = HostConfig {
            port_bindings: Some(HashMap::from([(port_key.clone(), Some(vec![binding]))])),
            nano_cpus: spec.nano_cpus,
            memory: spec.memory_bytes,
            device_requests: spec.gpus.map(|count| {
                vec![bollard::models::DeviceRequest {
                    count: Some(count),
                    capabilities: Some(vec![vec!["gpu".to_owned()]]),
                    ..bollard::models::DeviceRequest::default()
                }]
            }),
            ..HostConfig::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone()),
            exposed_ports: Some(vec![port_key]),
            host_config: Some(host_config),
            ..ContainerCreateBody::default()
        };
        let mut options = CreateContainerOptionsBuilder::default().name(&spec.name);
        if let Some(platform) = &spec.platform {
            options = options.platform(platform);
        }
        let created = self
            .api
            .create_container(Some(options.build()), body)
            .await
            .map_err(DockerError::from_bollard)?;
        if let Err(error) = self.api.start_container(&created.id, None).await {
            self.remove_container(&created.id).await;
            return Err(DockerError::from_bollard(error));
        }
        Ok(created.id)
    }

    /// Returns the host port a container's `container_port` is published on.
    pub async fn host_port(
        &self,
        id: &str,
        container_port: u16,
    ) -> Result<Option<u16>, DockerError> {
        let container =
            self.api.inspect_container(id, None).await.map_err(DockerError::from_bollard)?;
        let key = format!("{container_port}/tcp");
        Ok(container
            .network_settings
            .and_then(|settings| settings.ports)
            .and_then(|mut ports| ports.remove(&key).flatten())
            .and_then(|bindings| {
                bindings.into_iter().find_map(|binding| binding.host_port?.parse().ok())
            }))
    }

    /// Returns how a container is doing, or `None` when it is gone.
    pub async fn container_state(&self, id: &str) -> Result<Option<ContainerState>, DockerError> {
        match self.api.inspect_container(id, None).await.map_err(DockerError::from_bollard) {
            Ok(container) => {
                let state = container.state.unwrap_or_default();
                Ok(Some(ContainerState {
                    running: state.running.unwrap_or(false),
                    exit_code: state.exit_code,
                    oom_killed: state.oom_killed.unwrap_or(false),
                }))
            }
            Err(DockerError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Kills and removes a container; a missing one is not an error, other failures are logged.
    pub async fn remove_container(&self, id: &str) {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.api.remove_container(id, Some(options)).await.map_err(DockerError::from_bollard)
        {
            Ok(()) | Err(DockerError::NotFound(_)) => {}
            Err(error) => tracing::warn!(container = id, %error, "could not remove a container"),
        }
    }

    /// Lists containers (running or not) carrying every `label=value` given.
    pub async fn containers(
        &self,
        with_labels: &[(&str, &str)],
    ) -> Result<Vec<ContainerInfo>, DockerError> {
        let filters: HashMap<&str, Vec<String>> = HashMap::from([(
            "label",
            with_labels.iter().map(|(key, value)| format!("{key}={value}")).collect(),
        )]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let found =
            self.api.list_containers(Some(options)).await.map_err(DockerError::from_bollard)?;
        Ok(found
            .into_iter()
            .map(|summary| ContainerInfo {
                id: summary.id.unwrap_or_default(),
                name: summary
                    .names
                    .and_then(|names| names.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_owned(),
                image: summary.image.unwrap_or_default(),
                labels: summary.labels.unwrap_or_default(),
                state: summary.state.map(|state| state.to_string()).unwrap_or_default(),
                host_port: summary
                    .ports
                    .unwrap_or_default()
                    .into_iter()
                    .find_map(|port| port.public_port),
            })
            .collect())
    }

    /// Streams a container's stdout and stderr, from `tail` last lines (all when `None`),
    /// following new lines when `follow`.
    pub fn logs(
        &self,
        id: &str,
        follow: bool,
        tail: Option<usize>,
    ) -> impl Stream<Item = Result<Bytes, DockerError>> + use<> {
        let tail = tail.map_or_else(|| "all".to_owned(), |lines| lines.to_string());
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .tail(&tail)
            .build();
        self.api.logs(id, Some(options)).map(|chunk| {
            chunk.map(bollard::container::LogOutput::into_bytes).map_err(DockerError::from_bollard)
        })
    }
}
