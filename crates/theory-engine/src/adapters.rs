//! The adapters a run may use, built from the environment: the local adapter (process and
//! Docker runtimes) and the Modal adapter for one Modal environment.

use std::collections::BTreeMap;
use std::sync::Arc;

use theory_core::{Adapter, AdapterKind, EnvSnapshot, Failure};
use theory_local::LocalAdapter;
use theory_modal::ModalAdapter;
use theory_protocol::ErrorCode;

use crate::Project;

/// The adapters of a run, by kind.
pub type Adapters = BTreeMap<AdapterKind, Arc<dyn Adapter>>;

/// Every adapter: local, and Modal in the environment `modal_env` names (else
/// `MODAL_ENVIRONMENT`, else `main`).
pub fn all(
    project: &Project,
    env: &EnvSnapshot,
    modal_env: Option<&str>,
) -> Result<Adapters, Failure> {
    let local: Arc<dyn Adapter> = Arc::new(LocalAdapter::from_env(env, Some(&project.state())));
    let modal = modal(project, env, modal_env)?;
    Ok(BTreeMap::from([(AdapterKind::Local, local), (AdapterKind::Modal, modal)]))
}

/// The Modal adapter for the environment `flag` names (else `MODAL_ENVIRONMENT`, else `main`).
pub fn modal(
    project: &Project,
    env: &EnvSnapshot,
    flag: Option<&str>,
) -> Result<Arc<dyn Adapter>, Failure> {
    let environment = theory_modal::run_environment(flag, env).map_err(|error| {
        Failure::with_hint(
            ErrorCode::Usage,
            format!("--env: {error}"),
            "use --env dev, staging or main, or set MODAL_ENVIRONMENT",
        )
    })?;
    Ok(Arc::new(ModalAdapter::new(environment, &project.state(), env)))
}
