//! Before anything starts: the processor looked up, the CI guard, prompts rendered, attachments
//! resolved, inputs checked and normalized, the adapter's plan, the transfer, the fingerprint and memo key; and
//! what the instance is launched with (secrets only in real mode).

use std::sync::Arc;

use serde_json::Value;
use theory_protocol::{ErrorCode, Mode, normalize_inputs};

use super::run::{Orchestrator, Progress, RunRequest};
use super::transfer::{self, Transfer};
use crate::attachments::{self, ResolvedAttachment};
use crate::env::names;
use crate::fingerprint::Fingerprint;
use crate::hashing::{inputs_hash, memo_key};
use crate::registry::ProcessorEntry;
use crate::{Adapter, Failure, Launch, Plan, ProcessorRef};

impl Orchestrator {
    pub(super) fn processor(&self, reference: &ProcessorRef) -> Result<&ProcessorEntry, Failure> {
        if let Some(problem) = self.registry.broken(reference.as_str()) {
            return Err(Failure::new(
                ErrorCode::Registry,
                format!("{reference} is defined in a file with a problem: {problem}"),
            )
            .hint("fix that file; `theory registry validate` lists every problem"));
        }
        self.registry.processor(reference).ok_or_else(|| {
            let near: Vec<String> = self
                .registry
                .near_matches(reference.as_str())
                .iter()
                .map(ToString::to_string)
                .collect();
            let hint = if near.is_empty() {
                "list the known processors with `theory registry list`".to_owned()
            } else {
                format!("did you mean {}?", near.join(" or "))
            };
            Failure::new(ErrorCode::Registry, format!("unknown processor ref {reference}"))
                .hint(hint)
        })
    }

    /// Everything before the memo cache: registry, CI guard, inputs schema, plan, fingerprint.
    pub(super) async fn prepare<'a>(
        &'a self,
        request: &RunRequest,
        inputs: Value,
        progress: &mut Progress,
    ) -> Result<Prepared<'a>, Failure> {
        tracing::debug!("preparing");
        let entry = self.processor(&request.reference)?;
        let spec = &entry.spec;
        if request.mode == Mode::Real
            && self.env.in_ci()
            && self.env.get(names::ALLOW_REAL_IN_CI) != Some("1")
        {
            return Err(Failure::new(
                ErrorCode::CiSafety,
                "real mode is refused in CI (CI is set)",
            )
            .hint(
                "run with --mode mock, or set THEORY_ALLOW_REAL_IN_CI=1 to spend money on purpose",
            ));
        }
        let (inputs, prompts) = crate::prompts::expand(inputs, &self.registry)?;
        let mut attached = attachments::resolve(&request.attachments, &inputs).await?;
        let inputs = attachments::rewrite(inputs, &attached)?;
        let stored = attachments::stored_references(&inputs, &attached, &*self.store).await?;
        attached.extend(stored);
        entry.check_inputs(&inputs).map_err(|violation| {
            Failure::new(ErrorCode::InputSchema, violation.to_string()).hint(format!(
                "see the inputs schema with `theory registry show {}`",
                spec.reference
            ))
        })?;
        let normalized = Arc::new(
            normalize_inputs(inputs)
                .map_err(|error| Failure::new(ErrorCode::InputSchema, error.to_string()))?
                .value,
        );
        let adapter = self.adapters.get(&request.adapter).ok_or_else(|| {
            Failure::new(
                ErrorCode::Adapter,
                format!("the {} adapter is not available in this build", request.adapter),
            )
            .hint("use --adapter local")
        })?;
        let plan = adapter.plan(spec, &request.options, request.mode).await?;
        let transfer = transfer::choose(request.transfer, &*self.store, spec, &plan).await?;
        tracing::debug!(runtime = %plan.runtime, image = %plan.image_identity, %transfer, "planned");
        let present: Vec<String> = spec
            .secrets
            .all()
            .filter(|name| self.env.get(name.as_str()).is_some())
            .map(ToString::to_string)
            .collect();
        progress.runtime = Some(plan.runtime);
        progress.image_digest = Some(plan.image_identity.clone());
        let fingerprint = Fingerprint {
            adapter: adapter.kind().as_str(),
            runtime: plan.runtime.as_str(),
            image_digest: &plan.image_identity,
            resources: &spec.runtime,
            present_env_keys: &present,
        }
        .render();
        progress.fingerprint = Some(fingerprint.clone());
        let inputs_hash = inputs_hash(&normalized);
        // This run's settings reach only an instance it starts itself; one that holds its own
        // environment (a Modal deployment, a `theory local start` container) runs with the
        // settings it was started with, which this environment does not describe.
        let config = if plan.secrets_held { Vec::new() } else { spec.config_settings(&self.env) };
        let memo_key =
            memo_key(&spec.reference, &plan.image_identity, request.mode, &inputs_hash, &config);
        Ok(Prepared {
            entry,
            adapter,
            plan,
            transfer,
            attached,
            normalized,
            fingerprint,
            inputs_hash,
            memo_key,
            prompts,
        })
    }

    /// A real run needs its required secrets here (with the key its inputs choose), unless the
    /// instance already holds them.
    pub(super) fn check_secrets(
        &self,
        spec: &crate::registry::ProcessorSpec,
        plan: &Plan,
        mode: Mode,
        inputs: &Value,
    ) -> Result<(), Failure> {
        if mode == Mode::Real
            && !plan.secrets_held
            && let Some(missing) = spec
                .secrets
                .required_for(inputs)
                .into_iter()
                .find(|name| self.env.get(name.as_str()).is_none())
        {
            return Err(Failure::new(
                ErrorCode::MissingSecret,
                format!("required secret {missing} is not set"),
            )
            .hint(format!("export {missing}=… before a real run, or run with --mode mock")));
        }
        Ok(())
    }

    /// Secrets go to the processor only in real mode; every secret-looking name is withheld from
    /// the ambient environment it inherits.
    pub(super) fn launch(&self, spec: &crate::registry::ProcessorSpec, mode: Mode) -> Launch {
        let mut withheld: Vec<String> = spec.secrets.all().map(ToString::to_string).collect();
        withheld.extend(
            self.env
                .iter()
                .filter(|(name, _)| crate::env::looks_secret(name))
                .map(|(name, _)| name.to_owned()),
        );
        let secrets = match mode {
            Mode::Real => spec
                .secrets
                .all()
                .filter_map(|name| {
                    self.env.get(name.as_str()).map(|value| (name.to_string(), value.to_owned()))
                })
                .collect(),
            Mode::Mock => Vec::new(),
        };
        // Settings the spec reads reach the processor in every mode (a container inherits none).
        // Settings the spec reads reach the processor in every mode (a container inherits none).
        Launch { mode, secrets, withheld, config: spec.config_values(&self.env) }
    }

    /// TLS settings for an `https` endpoint (`None` for plain `http`).
    pub(super) fn tls_for(
        &self,
        endpoint: &str,
    ) -> Result<Option<Arc<rustls::ClientConfig>>, Failure> {
        if !endpoint.starts_with("https://") {
            return Ok(None);
        }
        crate::tls::client_config(&self.env).map(Some).map_err(|error| {
            Failure::new(ErrorCode::Connection, format!("cannot set up TLS: {error}"))
                .hint("check the PEM file SSL_CERT_FILE names, or unset it")
        })
    }
}

/// What the checks before starting produced.
pub(super) struct Prepared<'a> {
    pub(super) entry: &'a ProcessorEntry,
    pub(super) adapter: &'a Arc<dyn Adapter>,
    pub(super) plan: Plan,
    pub(super) transfer: Transfer,
    pub(super) attached: Vec<ResolvedAttachment>,
    pub(super) normalized: Arc<Value>,
    pub(super) fingerprint: String,
    pub(super) inputs_hash: String,
    pub(super) memo_key: String,
    pub(super) prompts: Vec<crate::prompts::PromptUse>,
}
