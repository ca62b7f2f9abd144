//! Server settings, read from the environment in one place.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Names of the environment variables the SDK reads.
pub mod env {
    /// Port to listen on (default 8000; `0` picks a free one and prints it).
    pub const PORT: &str = "PORT";
    /// Address to listen on (default `0.0.0.0`).
    pub const HOST: &str = "HOST";
    /// Digest of the image the processor runs in, reported by `/info` and in envelopes.
    pub const IMAGE_DIGEST: &str = "THEORY_IMAGE_DIGEST";
    /// Milliseconds a cancelled handler gets to stop on its own before it is stopped hard.
    pub const CANCEL_GRACE_MS: &str = "THEORY_CANCEL_GRACE_MS";
    /// Seconds a finished run stays available for replay.
    pub const RUN_RETENTION_S: &str = "THEORY_RUN_RETENTION_S";
    /// How many finished runs stay available for replay at most.
    pub const MAX_RETAINED_RUNS: &str = "THEORY_MAX_RETAINED_RUNS";
    /// Seconds to wait for a client's input `File` frames, or for a client to start an attached run.
    pub const FILE_WAIT_S: &str = "THEORY_FILE_WAIT_S";
    /// Folder for per-run scratch space (input files, large outputs).
    pub const SCRATCH_DIR: &str = "THEORY_SCRATCH_DIR";
    /// `json` for JSON log lines on stderr.
    pub const LOG_FORMAT: &str = "THEORY_LOG_FORMAT";
}

/// How the server behaves; [`ServerConfig::from_env`] reads it, tests build it directly.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen.
    pub address: SocketAddr,
    /// The image digest to report, when the adapter told us.
    pub image_digest: Option<String>,
    /// Time a cancelled handler gets before it is aborted.
    pub cancel_grace: Duration,
    /// Time a finished run stays available for replay.
    pub run_retention: Duration,
    /// Finished runs kept for replay at most; the oldest go first.
    pub max_retained_runs: usize,
    /// Time to wait for input files, and for an attached run to be started by a client.
    pub file_wait: Duration,
    /// Root of per-run scratch folders.
    pub scratch_root: PathBuf,
    /// Attempts per presigned upload before `ERR_UPLOAD`.
    pub upload_attempts: u32,
}

/// A setting in the environment that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name} is invalid: {reason}")]
pub struct ConfigError {
    /// The variable.
    pub name: &'static str,
    /// Why it cannot be used (its value is not repeated).
    pub reason: &'static str,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            address: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8000),
            image_digest: None,
            cancel_grace: Duration::from_secs(2),
            run_retention: Duration::from_mins(5),
            max_retained_runs: 64,
            file_wait: Duration::from_mins(1),
            scratch_root: std::env::temp_dir().join("theory-processor"),
            upload_attempts: 3,
        }
    }
}

impl ServerConfig {
    /// Reads every setting from the environment, defaulting what is absent.
    pub fn from_env() -> Result<ServerConfig, ConfigError> {
        let defaults = ServerConfig::default();
        let host: IpAddr =
            parse(env::HOST, "expected an IP address")?.unwrap_or(defaults.address.ip());
        let port: u16 =
            parse(env::PORT, "expected a port number")?.unwrap_or(defaults.address.port());
        let millis = |name, default: Duration| -> Result<Duration, ConfigError> {
            Ok(parse(name, "expected a whole number")?.map_or(default, Duration::from_millis))
        };
        let seconds = |name, default: Duration| -> Result<Duration, ConfigError> {
            Ok(parse(name, "expected a whole number")?.map_or(default, Duration::from_secs))
        };
        Ok(ServerConfig {
            address: SocketAddr::new(host, port),
            image_digest: std::env::var(env::IMAGE_DIGEST).ok().filter(|digest| !digest.is_empty()),
            cancel_grace: millis(env::CANCEL_GRACE_MS, defaults.cancel_grace)?,
            run_retention: seconds(env::RUN_RETENTION_S, defaults.run_retention)?,
            max_retained_runs: parse(env::MAX_RETAINED_RUNS, "expected a whole number")?
                .unwrap_or(defaults.max_retained_runs),
            file_wait: seconds(env::FILE_WAIT_S, defaults.file_wait)?,
            scratch_root: std::env::var_os(env::SCRATCH_DIR)
                .map_or(defaults.scratch_root, PathBuf::from),
            upload_attempts: defaults.upload_attempts,
        })
    }
}

fn parse<T: std::str::FromStr>(
    name: &'static str,
    reason: &'static str,
) -> Result<Option<T>, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            value.trim().parse().map(Some).map_err(|_| ConfigError { name, reason })
        }
        _ => Ok(None),
    }
}
