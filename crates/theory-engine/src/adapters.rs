//! The adapters a run may use, built from the environment: the local adapter (process and
//! Docker runtimes) and the Modal adapter for one Modal environment — only when `MODAL_ENABLED`
//! says so (seed 002); otherwise a Modal run fails at its plan, before anything starts, with the
//! seed's message and hint.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use theory_core::env::names;
use theory_core::registry::ProcessorSpec;
use theory_core::{
    Adapter, AdapterKind, AdapterOptions, EnvSnapshot, Failure, Instance, Launch, Plan,
};
use theory_local::LocalAdapter;
use theory_modal::ModalAdapter;
use theory_protocol::{ErrorCode, Mode};

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
    if !modal_enabled(env) {
        return Ok(Arc::new(ModalDisabled));
    }
    Ok(Arc::new(ModalAdapter::new(environment, &project.state(), env)))
}

/// Whether `MODAL_ENABLED` turns the Modal adapter on: `True`, `true`, `1` or `yes`.
pub fn modal_enabled(env: &EnvSnapshot) -> bool {
    env.get(names::MODAL_ENABLED).is_some_and(|value| {
        ["true", "1", "yes"].iter().any(|word| value.trim().eq_ignore_ascii_case(word))
    })
}

/// The Modal adapter while `MODAL_ENABLED` is off: every plan fails, so nothing starts.
struct ModalDisabled;

fn modal_not_available() -> Failure {
    Failure::with_hint(
        ErrorCode::Modal,
        "Modal not available. Install 'modal' package and set MODAL_ENABLED=True",
        "install modal (`pip install modal`) and set MODAL_ENABLED=True in the environment",
    )
}

#[async_trait]
impl Adapter for ModalDisabled {
    fn kind(&self) -> AdapterKind {
        AdapterKind::Modal
    }

    async fn plan(
        &self,
        _spec: &ProcessorSpec,
        _options: &AdapterOptions,
        _mode: Mode,
    ) -> Result<Plan, Failure> {
        Err(modal_not_available())
    }

    async fn start(
        &self,
        _spec: &ProcessorSpec,
        _plan: &Plan,
        _launch: &Launch,
    ) -> Result<Box<dyn Instance>, Failure> {
        Err(modal_not_available())
    }
}
