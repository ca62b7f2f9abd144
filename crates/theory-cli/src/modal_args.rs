//! The arguments of `theory modal …` (the seeds' `modalctl` and `sync_modal`).

use clap::{Args, Subcommand};

use crate::args::RunArgs;

/// `theory modal …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ModalCommand {
    /// Deploy the processor's pinned image as a Modal web endpoint (`modal deploy`).
    Start(ModalStartArgs),
    /// Create or update one Modal secret per required secret name, from this environment.
    SyncSecrets(ModalSyncSecretsArgs),
    /// Run on the deployment; never deploys anything.
    Run(Box<RunArgs>),
    /// Stop the deployment (`modal app stop`).
    Stop(ModalTargetArgs),
    /// Show the deployment: its app, state, URL and image.
    Status(ModalTargetArgs),
    /// Print the deployment's logs (`modal app logs`).
    Logs(ModalLogsArgs),
    /// Check the deployment runs the expected image (`ERR_REGISTRY_MISMATCH` when it does not).
    VerifyDigest(ModalVerifyArgs),
    /// Deploy the app module parameterized by the environment (the seeds' `sync_modal`): `PROCESSOR_REF`,
    /// `IMAGE_REF`, `TIMEOUT_S`, `CPU`, `MEMORY_MIB`, `GPU`, `TOOL_SECRETS`, `MODAL_APP_NAME`.
    Deploy(ModalDeployArgs),
}

/// Which deployment.
#[derive(Debug, Args)]
pub(crate) struct ModalTargetArgs {
    /// The processor, `namespace/name@version`.
    #[arg(long = "ref", value_name = "REF")]
    pub(crate) reference: String,
    /// The Modal environment: dev, staging or main.
    #[arg(long, value_name = "ENV")]
    pub(crate) env: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ModalStartArgs {
    #[command(flatten)]
    pub(crate) target: ModalTargetArgs,
    /// The image to deploy, pinned by digest: `repo@sha256:…`; by default the spec's amd64 pin.
    #[arg(long, value_name = "REPO@SHA256")]
    pub(crate) oci: Option<String>,
    /// A Modal secret with `REGISTRY_USERNAME` and `REGISTRY_PASSWORD`, for a private registry.
    #[arg(long, value_name = "NAME")]
    pub(crate) registry_secret: Option<String>,
    /// Let anyone call the endpoint (no proxy auth token); by default callers need one.
    #[arg(long)]
    pub(crate) public: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ModalSyncSecretsArgs {
    #[command(flatten)]
    pub(crate) target: ModalTargetArgs,
    /// Exit with an error, syncing nothing, when a required secret is not in the environment.
    #[arg(long)]
    pub(crate) fail_on_missing: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ModalLogsArgs {
    #[command(flatten)]
    pub(crate) target: ModalTargetArgs,
    /// Keep printing new lines until the app stops or you interrupt.
    #[arg(long)]
    pub(crate) follow: bool,
    /// Only the last N entries.
    #[arg(long, value_name = "N")]
    pub(crate) tail: Option<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct ModalVerifyArgs {
    #[command(flatten)]
    pub(crate) target: ModalTargetArgs,
    /// The expected image, `repo@sha256:…`; by default the spec's amd64 pin.
    #[arg(long, value_name = "REPO@SHA256")]
    pub(crate) oci: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ModalDeployArgs {
    /// The Modal environment: dev, staging or main.
    #[arg(long, value_name = "ENV")]
    pub(crate) env: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}
