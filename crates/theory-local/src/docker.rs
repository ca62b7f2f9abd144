//! The `docker` runtime: the processor's image in a container with its port published on
//! 127.0.0.1, resource limits from the spec, labels that name it, removed on every exit path.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use theory_core::registry::{Platform, ProcessorSpec};
use theory_core::{Failure, Instance};
use theory_docker::{ContainerSpec, Docker, labels};
use theory_protocol::{ErrorCode, Info};

use crate::health::wait_healthy;
use crate::image_choice::{ImageChoice, docker_error};

/// The port processors listen on inside their container.
pub const CONTAINER_PORT: u16 = 8000;

/// Lines of a container's log quoted when it fails to start.
const QUOTED_LINES: usize = 20;

/// `run` containers last one `theory run`; `service` containers are `theory local start`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    /// One run's container, removed after it.
    Run,
    /// A long-lived container started by `theory local start`.
    Service,
}

impl ContainerKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerKind::Run => "run",
            ContainerKind::Service => "service",
        }
    }
}

/// How to start a processor container.
#[derive(Debug, Clone)]
pub struct ContainerLaunch<'a> {
    /// The processor.
    pub spec: &'a ProcessorSpec,
    /// The image.
    pub image: &'a ImageChoice,
    /// The container's name.
    pub name: String,
    /// Run or service.
    pub kind: ContainerKind,
    /// The project the container belongs to.
    pub project: &'a Path,
    /// Secret values, passed as environment variables (never as labels).
    pub secrets: &'a [(String, String)],
    /// The spec's `config_env` settings, passed as environment variables.
    pub config: &'a [(String, String)],
    /// The host port; `None` lets Docker pick.
    pub host_port: Option<u16>,
    /// `RUST_LOG` for the processor.
    pub log_filter: &'a str,
    /// How long the processor has to answer `/healthz`.
    pub start_timeout: Duration,
}

/// The labels of a container of `spec` (never a secret).
pub(crate) fn container_labels(launch: &ContainerLaunch<'_>) -> HashMap<String, String> {
    let owner = format!("{}@{}", std::process::id(), hostname());
    HashMap::from([
        (labels::MANAGED.to_owned(), "true".to_owned()),
        (labels::REF.to_owned(), launch.spec.reference.to_string()),
        (labels::KIND.to_owned(), launch.kind.as_str().to_owned()),
        (labels::IMAGE.to_owned(), launch.image.identity.clone()),
        (labels::PINNED.to_owned(), launch.image.pinned.to_string()),
        (labels::PROJECT.to_owned(), launch.project.display().to_string()),
        (labels::OWNER.to_owned(), owner),
    ])
}

/// This machine's name, for the owner label.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "localhost".into(), |name| name.trim().to_owned())
}

/// A running processor container; removed by [`Instance::stop`], or on drop.
pub struct DockerInstance {
    docker: Docker,
    id: Option<String>,
    endpoint: String,
}

impl DockerInstance {
    /// Creates and starts the container and waits until it is healthy and reports the image it
    /// was started from; the container is removed again on any failure.
    pub async fn start(
        docker: &Docker,
        launch: &ContainerLaunch<'_>,
    ) -> Result<DockerInstance, Failure> {
        let runtime = &launch.spec.runtime;
        let mut env = vec![
            format!("PORT={CONTAINER_PORT}"),
            "HOST=0.0.0.0".to_owned(),
            format!("RUST_LOG={}", launch.log_filter),
            format!("THEORY_IMAGE_DIGEST={}", launch.image.identity),
        ];
        env.extend(
            launch
                .config
                .iter()
                .chain(launch.secrets)
                .map(|(name, value)| format!("{name}={value}")),
        );
        let container = ContainerSpec {
            name: launch.name.clone(),
            image: launch.image.reference.clone(),
            env,
            labels: container_labels(launch),
            container_port: CONTAINER_PORT,
            host_port: launch.host_port,
            nano_cpus: Some((runtime.cpu * 1e9) as i64).filter(|cpus| *cpus > 0),
            memory_bytes: Some((runtime.memory_gb * 1024.0 * 1024.0 * 1024.0) as i64)
                .filter(|bytes| *bytes > 0),
            platform: (Some(launch.image.platform) != Platform::host())
                .then(|| format!("linux/{}", launch.image.platform)),
            gpus: runtime.gpu.as_deref().map(gpu_count),
        };
        let id = docker.start_container(&container).await.map_err(|error| {
            let failure = docker_error(&error);
            match &runtime.gpu {
                Some(gpu) if no_gpu_support(&failure.message) => Failure::with_hint(
                    ErrorCode::Docker,
                    format!(
                        "{} asks for a GPU ({gpu}) and this Docker Engine has none to give: {}",
                        launch.spec.reference, failure.message
                    ),
                    "run it where Docker has GPUs (the NVIDIA Container Toolkit installed), on Modal (--adapter modal), or with runtime.gpu: null",
                ),
                _ => failure,
            }
        })?;
        let mut instance = DockerInstance {
            docker: docker.clone(),
            id: Some(id.clone()),
            endpoint: String::new(),
        };
        let port = docker
            .host_port(&id, CONTAINER_PORT)
            .await
            .map_err(|error| docker_error(&error))?
            .ok_or_else(|| {
                Failure::with_hint(
                    ErrorCode::Docker,
                    "Docker published no port for the container",
                    "see `docker inspect` of the container",
                )
            })?;
        let address = format!("127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + launch.start_timeout;
        if !wait_healthy(&address, deadline).await {
            let error = not_ready(docker, &id, launch).await;
            instance.remove().await;
            return Err(error);
        }
        instance.endpoint = format!("http://{address}");
        if let Err(error) = check_identity(&instance.endpoint, &launch.image.identity).await {
            instance.remove().await;
            return Err(error);
        }
        Ok(instance)
    }

    /// Wraps a container that already runs (`theory local start`'s), without owning it: dropping
    /// or stopping it leaves the container running.
    pub fn attach(docker: &Docker, endpoint: String) -> DockerInstance {
        DockerInstance { docker: docker.clone(), id: None, endpoint }
    }

    /// Hands the container over: it keeps running after this instance is gone.
    pub fn detach(mut self) -> String {
        self.id.take().unwrap_or_default()
    }

    async fn remove(&mut self) {
        if let Some(id) = self.id.take() {
            self.docker.remove_container(&id).await;
        }
    }
}

/// Asks the processor which image it runs from; a different answer is `ERR_REGISTRY_MISMATCH`.
pub async fn check_identity(endpoint: &str, expected: &str) -> Result<(), Failure> {
    compare_identity(endpoint, fetch_info(endpoint).await, expected)
}

/// Compares what `/info` answered with the expected image.
pub(crate) fn compare_identity(
    endpoint: &str,
    info: Result<Info, String>,
    expected: &str,
) -> Result<(), Failure> {
    let info = info.map_err(|error| {
        Failure::with_hint(
            ErrorCode::Adapter,
            format!("GET {endpoint}/info failed: {error}"),
            "check that the container runs a Theory processor",
        )
    })?;
    match info.image_digest.as_deref() {
        Some(reported) if reported == expected => Ok(()),
        reported => Err(Failure::with_hint(
            ErrorCode::RegistryMismatch,
            format!(
                "the processor at {endpoint} reports image {} but {expected} is expected",
                reported.unwrap_or("(none)")
            ),
            "restart it from the expected image: `theory local stop --ref …` then `theory local start --ref …`",
        )),
    }
}

pub(crate) async fn fetch_info(endpoint: &str) -> Result<Info, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = endpoint.trim_start_matches("http://");
    let exchange = async {
        let mut stream =
            tokio::net::TcpStream::connect(address).await.map_err(|e| e.to_string())?;
        let request = format!("GET /info HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP response")?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(head.lines().next().unwrap_or_default().to_owned());
        }
        serde_json::from_str(body).map_err(|e| e.to_string())
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| "no answer within 5 s".to_owned())?
}

/// Explains a container that never became healthy, quoting the end of its log.
async fn not_ready(docker: &Docker, id: &str, launch: &ContainerLaunch<'_>) -> Failure {
    let state = docker.container_state(id).await.ok().flatten();
    let what = match &state {
        Some(state) if state.oom_killed => {
            "was killed for using more memory than runtime.memory_gb allows".to_owned()
        }
        Some(state) if !state.running => {
            format!("exited with code {}", state.exit_code.unwrap_or(-1))
        }
        _ => format!("did not answer /healthz within {} s", launch.start_timeout.as_secs()),
    };
    let tail = container_log_tail(docker, id).await;
    let tail = if tail.is_empty() { String::new() } else { format!("; its last output: {tail}") };
    Failure::with_hint(
        ErrorCode::Adapter,
        format!(
            "the container of {} ({}) {what}{tail}",
            launch.spec.reference, launch.image.reference
        ),
        "run the image by hand with `docker run --rm -p 8000:8000 IMAGE` to see why, or raise THEORY_START_TIMEOUT_S",
    )
}

/// The last lines of a container's log, joined with ` | `.
pub async fn container_log_tail(docker: &Docker, id: &str) -> String {
    let mut text = String::new();
    let mut logs = docker.logs(id, false, Some(QUOTED_LINES));
    while let Some(Ok(chunk)) = logs.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text.lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" | ")
}

#[async_trait]
impl Instance for DockerInstance {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Kills and removes the container (processors keep nothing worth a graceful stop: outputs
    /// are already stored and the container's scratch goes with it).
    async fn stop(mut self: Box<Self>) {
        self.remove().await;
    }
}

impl Drop for DockerInstance {
    /// A container not stopped (a timeout, a panic, a cancelled future) is removed here, from a
    /// helper thread with its own runtime, since `drop` cannot await.
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let docker = self.docker.clone();
        let removal = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    // The connection of the old runtime cannot be used from this one.
                    match Docker::connect().await {
                        Ok(fresh) => fresh.remove_container(&id).await,
                        Err(_) => docker.remove_container(&id).await,
                    }
                });
            }
        });
        let _ = removal.join();
    }
}

/// The GPUs `runtime.gpu` asks for: `T4:2` is two, `any`, `A10G` or `true` one, `all` every one
/// (`-1`). The type is Modal's to honour; Docker is asked for a count.
fn gpu_count(gpu: &str) -> i64 {
    if gpu.eq_ignore_ascii_case("all") {
        return -1;
    }
    gpu.rsplit_once(':')
        .and_then(|(_, count)| count.trim().parse().ok())
        .filter(|count| *count > 0)
        .unwrap_or(1)
}

/// Whether Docker refused a container because it has no GPU device driver.
fn no_gpu_support(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("could not select device driver")
        || message.contains("nvidia-container-cli")
        || message.contains("unknown or invalid runtime name: nvidia")
}

#[cfg(test)]
mod gpu_tests {
    use super::{gpu_count, no_gpu_support};

    #[test]
    fn gpu_settings_become_counts_and_a_missing_driver_is_recognised() {
        assert_eq!(gpu_count("T4"), 1);
        assert_eq!(gpu_count("A10G:2"), 2);
        assert_eq!(gpu_count("all"), -1);
        assert_eq!(gpu_count("H100:x"), 1);
        assert!(no_gpu_support(
            "Docker Engine refused: could not select device driver \"\" with capabilities: [[gpu]]"
        ));
        assert!(!no_gpu_support("No such image"));
    }
}
