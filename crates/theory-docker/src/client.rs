//! The connection and its errors.

use std::time::Duration;

/// How long a ping may take before the engine counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// A failure talking to Docker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerError {
    /// No engine answers (not installed, not started, no permission on the socket).
    #[error("Docker is not reachable: {0}")]
    Unreachable(String),
    /// The object (image, container) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The engine answered with an error.
    #[error("Docker refused: {0}")]
    Engine(String),
}

impl DockerError {
    /// What to do about it, for people.
    pub fn hint(&self) -> &'static str {
        match self {
            // Said once, and only what helps every caller; `theory run` adds the host-process
            // alternative where that can help (`theory local …` cannot use it).
            DockerError::Unreachable(_) => {
                "start the Docker Engine (dockerd, or Docker Desktop), or point DOCKER_HOST at one that runs"
            }
            DockerError::NotFound(_) => "check the name with `docker images` or `docker ps -a`",
            DockerError::Engine(_) => "see the Docker Engine's log for details",
        }
    }

    pub(crate) fn from_bollard(error: bollard::errors::Error) -> DockerError {
        use bollard::errors::Error;
        match error {
            Error::DockerResponseServerError { status_code: 404, message } => {
                DockerError::NotFound(message)
            }
            Error::DockerResponseServerError { message, .. }
            | Error::DockerStreamError { error: message } => DockerError::Engine(message),
            other => DockerError::Unreachable(other.to_string()),
        }
    }
}

/// A connection to a Docker Engine.
#[derive(Debug, Clone)]
pub struct Docker {
    pub(crate) api: bollard::Docker,
}

impl Docker {
    /// Connects to the engine `DOCKER_HOST` names (else the default socket), negotiates the API
    /// version and pings it; fails fast when nothing answers.
    pub async fn connect() -> Result<Docker, DockerError> {
        let api = bollard::Docker::connect_with_defaults()
            .map_err(|error| DockerError::Unreachable(error.to_string()))?;
        let ready = async {
            let api = api.negotiate_version().await.map_err(DockerError::from_bollard)?;
            api.ping().await.map_err(DockerError::from_bollard)?;
            Ok::<_, DockerError>(api)
        };
        let api = tokio::time::timeout(PING_TIMEOUT, ready).await.map_err(|_| {
            DockerError::Unreachable(format!("no answer within {} s", PING_TIMEOUT.as_secs()))
        })??;
        Ok(Docker { api })
    }

    /// Returns the negotiated API version, such as `1.41`.
    pub fn api_version(&self) -> String {
        self.api.client_version().to_string()
    }
}
