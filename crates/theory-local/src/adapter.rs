//! The local adapter: picks the runtime and starts instances on this host.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use theory_core::env::names;
use theory_core::registry::ProcessorSpec;
use theory_core::{Adapter, AdapterError, AdapterOptions, EnvSnapshot, Instance, Launch, Plan};
use theory_protocol::ErrorCode;

use crate::identity::IdentityCache;
use crate::process::{BinarySearch, ProcessInstance, ProcessSettings};

/// Runs processors on this host.
#[derive(Debug, Clone)]
pub struct LocalAdapter {
    binaries: BinarySearch,
    settings: ProcessSettings,
    identities: IdentityCache,
}

impl LocalAdapter {
    /// Builds the adapter from the environment: binaries are looked for in
    /// `THEORY_PROCESSOR_PATH`, then beside the running `theory` binary, then on `PATH`. Binary
    /// identities are cached in `state/cache/` when a state folder is given.
    pub fn from_env(env: &EnvSnapshot, state: Option<&std::path::Path>) -> LocalAdapter {
        let mut folders: Vec<PathBuf> = Vec::new();
        if let Some(path) = env.get(names::PROCESSOR_PATH) {
            folders.extend(std::env::split_paths(path));
        }
        if let Some(own_folder) =
            std::env::current_exe().ok().and_then(|exe| exe.parent().map(PathBuf::from))
        {
            folders.push(own_folder);
        }
        if let Some(path) = env.get("PATH") {
            folders.extend(std::env::split_paths(path));
        }
        let start_timeout =
            env.get(names::START_TIMEOUT_S).and_then(|value| value.parse().ok()).unwrap_or(30);
        let settings = ProcessSettings {
            start_timeout: Duration::from_secs(start_timeout),
            log_filter: env.get(names::PROCESSOR_LOG).unwrap_or("warn").to_owned(),
        };
        let identities =
            IdentityCache::new(state.map(|state| state.join("cache/binary-identities.json")));
        LocalAdapter { binaries: BinarySearch { folders }, settings, identities }
    }
}

#[async_trait]
impl Adapter for LocalAdapter {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn plan(
        &self,
        spec: &ProcessorSpec,
        options: &AdapterOptions,
    ) -> Result<Plan, AdapterError> {
        if options.runtime.as_deref() == Some("docker") {
            return Err(AdapterError::new(
                ErrorCode::Docker,
                "the docker runtime is not available in this build",
                "use the process runtime: --adapter-opts-json '{\"runtime\":\"process\"}'",
            ));
        }
        let build = spec.image.build_spec().ok_or_else(|| {
            AdapterError::new(
                ErrorCode::Adapter,
                format!(
                    "{} has no image.build, so there is no binary to run on the host",
                    spec.reference
                ),
                "add image.build.binary to its spec",
            )
        })?;
        let name = build.binary_name();
        let binary = self.binaries.find(name).ok_or_else(|| {
            AdapterError::new(
                ErrorCode::Adapter,
                format!("the processor binary {name} of {} was not found", spec.reference),
                format!("build it with `cargo build --release -p {name}`, or point THEORY_PROCESSOR_PATH at its folder"),
            )
        })?;
        let identity = self.identities.identity(&binary).await.map_err(|error| {
            AdapterError::new(
                ErrorCode::Adapter,
                format!("cannot read {}: {error}", binary.display()),
                "check the file's permissions",
            )
        })?;
        Ok(Plan {
            runtime: "process".into(),
            image_identity: identity,
            pinned: false,
            target: binary.display().to_string(),
        })
    }

    async fn start(
        &self,
        _spec: &ProcessorSpec,
        plan: &Plan,
        launch: &Launch,
    ) -> Result<Box<dyn Instance>, AdapterError> {
        let instance = ProcessInstance::start(plan.target.as_ref(), launch, &self.settings).await?;
        Ok(Box::new(instance))
    }
}
