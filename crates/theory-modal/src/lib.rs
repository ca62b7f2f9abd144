//! The Modal adapter: the same pinned image and the same `theory.run.v1` session on Modal's
//! cloud, deployed with Modal's own client.
//!
//! - `module`: the generated app module (`python/modal_app.py`): the pinned image served as a web
//!   server on the processor port, parameterized by the seeds' `sync_modal` variables.
//! - `cli`: the official `modal` CLI as a child process (`deploy`, `app stop|list|logs`,
//!   `secret list|create`), and the credential check.
//! - `naming`: environments (`dev|staging|main`) and app names (`{branch}-{user}-{ref_slug}` in
//!   dev, `{ref_slug}` elsewhere).
//! - `deployments`: what was deployed where, kept in the ledger the team shares.
//! - `adapter`: [`ModalAdapter`], core's `Adapter` over a recorded deployment (WSS, proxy auth).

mod adapter;
mod cli;
mod deployments;
mod module;
mod naming;

pub use adapter::{ModalAdapter, PROXY_TOKEN_ID, PROXY_TOKEN_SECRET, run_environment};
pub use cli::{BIN_VARIABLE, INSTALL, ModalCli, Printed, check_credentials, endpoint_url};
pub use deployments::{Deployment, DeploymentBook};
pub use module::{
    APP_MODULE, DEFAULT_APP_NAME, MODULE_NAME, ModuleParams, PROCESSOR_PORT, VARIABLES,
    write_module,
};
pub use naming::{ModalEnv, app_name, sanitize};
