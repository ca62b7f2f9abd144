//! One run, start to finish: resolve → check → plan → memo → start → session → store → index →
//! receipts → envelope. A failed run leaves no index and no receipt, and its outputs are removed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use theory_protocol::{
    Envelope, ErrorBody, ErrorCode, ErrorEnvelope, ExecutionId, Meta, Mode, expand_write_prefix,
};
use tracing::Instrument;

use super::attempts::{Attempt, cancelled, timed_out};
use super::cost;
use super::finish::{Finished, planned_paths};
use super::memo::MemoCache;
use super::predicates::{self, Stage};
use super::prepare::Prepared;
use super::transfer::{self, TransferRequest};
use crate::attachments::{self, Attachment};
use crate::cancel::Cancel;
use crate::fingerprint::Fingerprint;
use crate::ledger::{Admission, Admitted, Closing, RunLedger};
use crate::registry::Registry;
use crate::session::{FrameObserver, SessionRequest};
use crate::{
    Adapter, AdapterKind, AdapterOptions, ArtifactStore, EnvSnapshot, Failure, PlanKey,
    ProcessorRef, Redactor, Runtime, WritePrefix, new_execution_id,
};

/// The media type of the index and receipts.
pub(super) const JSON: &str = "application/json";
/// The policy whose retry and lease rules runs follow.
pub(super) const DEFAULT_POLICY: &str = "default@1";

/// Everything a run needs besides its request; built once per command.
pub struct Orchestrator {
    /// The loaded registry.
    pub registry: Arc<Registry>,
    /// Where outputs, indexes and receipts go.
    pub store: Arc<dyn ArtifactStore>,
    /// Adapters by kind.
    pub adapters: BTreeMap<AdapterKind, Arc<dyn Adapter>>,
    /// The memo cache.
    pub memo: MemoCache,
    /// The environment at start.
    pub env: EnvSnapshot,
    /// Hides secret values.
    pub redactor: Redactor,
    /// Records every run and holds the plans' budgets; `None` records nothing (and refuses
    /// `--plan`).
    pub ledger: Option<Arc<dyn RunLedger>>,
    /// Started instances kept for the next run (`theory serve`); `None` stops each instance
    /// when its run ends.
    pub warm: Option<Arc<super::warm::WarmPool>>,
    /// Signs each successful run's attestation (`attestation.json` beside its receipt); `None`
    /// leaves runs unsigned, and their receipts say so.
    pub signer: Option<Arc<crate::attestation::SigningKey>>,
}

/// What to run.
pub struct RunRequest {
    /// The processor.
    pub reference: ProcessorRef,
    /// Where it runs.
    pub adapter: AdapterKind,
    /// `mock` or `real`.
    pub mode: Mode,
    /// The write prefix template (`{execution_id}` allowed); the default is
    /// `/artifacts/outputs/{ref_slug}/{execution_id}/`.
    pub write_prefix: Option<String>,
    /// The inputs as the user wrote them (the run takes them: `Value::Null` after it starts).
    pub inputs: Value,
    /// `--adapter-opts-json`.
    pub options: AdapterOptions,
    /// `--attach name=path` files, referred to as `{"$attach":"name"}` in the inputs.
    pub attachments: Vec<Attachment>,
    /// How bytes move between the store and the processor.
    pub transfer: TransferRequest,
    /// The plan to charge (`--plan`).
    pub plan: Option<PlanKey>,
    /// Whether a finished identical run may be reused.
    pub use_cache: bool,
    /// Whether a finished identical *real* run may be reused even when the spec's `cache` says
    /// its outputs vary from run to run.
    pub reuse_real: bool,
    /// Sees frames as they arrive.
    pub observer: Option<Arc<dyn FrameObserver>>,
    /// Stops the run from outside (a signal); [`Cancel::default`] never does.
    pub cancel: Cancel,
}

/// The envelope, and for errors a hint for the human at the terminal.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The canonical envelope.
    pub envelope: Envelope,
    /// What to do about an error.
    pub hint: Option<String>,
}

/// What is known about a run while it goes, for the envelope's `meta` even on failure.
#[derive(Default)]
pub(super) struct Progress {
    pub(super) fingerprint: Option<String>,
    pub(super) runtime: Option<Runtime>,
    pub(super) image_digest: Option<String>,
    /// What the ledger granted, once the run was admitted.
    pub(super) admitted: Option<Admitted>,
    /// Attempts made so far.
    pub(super) attempts: u32,
    /// The expanded write prefix, once known.
    pub(super) write_prefix: Option<WritePrefix>,
    /// What the processor reported it consumed, once its session ended: kept on the error
    /// envelope (and charged) when the run fails after it, on a success predicate say.
    pub(super) usage: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Returns the default write prefix template for a processor.
pub fn default_write_prefix(reference: &ProcessorRef) -> String {
    format!("/artifacts/outputs/{}/{{execution_id}}/", reference.slug())
}

/// Expands a write prefix template for a run and checks it.
pub fn resolve_write_prefix(
    template: &str,
    execution_id: &ExecutionId,
) -> Result<WritePrefix, Failure> {
    if !template.ends_with('/') {
        return Err(Failure::new(ErrorCode::OutputPath, "--write-prefix must end with /"));
    }
    expand_write_prefix(template, execution_id).parse().map_err(|error: crate::WorldPathError| {
        Failure::new(ErrorCode::OutputPath, error.to_string())
    })
}

impl Orchestrator {
    /// Runs one request to its envelope. Never panics on bad input; every failure is an envelope.
    pub async fn run(&self, request: RunRequest) -> RunOutcome {
        self.run_as(new_execution_id(), request).await
    }

    /// Runs one request under an execution id given beforehand (the server's, assigned when the
    /// run was queued).
    pub async fn run_as(&self, execution_id: ExecutionId, mut request: RunRequest) -> RunOutcome {
        let span = tracing::info_span!(
            "execution",
            execution_id = %execution_id,
            processor_ref = %request.reference,
            adapter = %request.adapter,
            mode = %request.mode,
        );
        async {
            let started = Instant::now();
            let mut progress = Progress::default();
            // Taken, not copied: inputs may be megabytes, and the run needs one copy of them.
            let inputs = std::mem::take(&mut request.inputs);
            let outcome =
                self.outcome(&execution_id, &request, inputs, &mut progress, started).await;
            tracing::debug!(
                files = self.registry.files(),
                parsed = self.registry.files_parsed(),
                "registry files parsed for this run"
            );
            if let Some(ledger) = &self.ledger {
                let closing = Closing {
                    execution_id: &execution_id,
                    processor_ref: &request.reference,
                    adapter: request.adapter,
                    mode: request.mode,
                    envelope: &outcome.envelope,
                    cost_usd_micro: self.cost(&request, &outcome.envelope),
                    signed_by: self.signed_by(&outcome.envelope),
                    attempts: progress.attempts.max(1),
                    duration_ms: started.elapsed().as_millis() as u64,
                };
                if let Err(failure) = ledger.close(&closing, progress.admitted.as_ref()).await {
                    return self.unrecorded(&execution_id, outcome, &progress, failure).await;
                }
            }
            outcome
        }
        .instrument(span)
        .await
    }

    /// The key that signed what a run wrote: a success that is not a memo hit, with a signer
    /// (`finish` signs exactly those).
    fn signed_by(&self, envelope: &Envelope) -> Option<&str> {
        let Envelope::Success(success) = envelope else { return None };
        if success.meta.cached == Some(true) {
            return None;
        }
        self.signer.as_deref().map(|key| key.public().key_id())
    }

    /// Runs a request to its envelope (without recording it).
    async fn outcome(
        &self,
        execution_id: &ExecutionId,
        request: &RunRequest,
        inputs: Value,
        progress: &mut Progress,
        started: Instant,
    ) -> RunOutcome {
        match self.execute(execution_id, request, inputs, progress, started).await {
            Ok(envelope) => RunOutcome { envelope, hint: None },
            Err(failure) => {
                let message = self.redactor.redact(&failure.message);
                // The CLI prints the error for people; the log line is for log pipelines.
                tracing::debug!(code = %failure.code, %message, "run failed");
                let meta = Meta {
                    processor_ref: Some(request.reference.to_string()),
                    adapter: Some(request.adapter.to_string()),
                    runtime: progress.runtime.map(|runtime| runtime.to_string()),
                    mode: Some(request.mode),
                    image_digest: progress.image_digest.clone(),
                    env_fingerprint: Some(
                        progress
                            .fingerprint
                            .clone()
                            .unwrap_or_else(|| Fingerprint::unknown(request.adapter.as_str())),
                    ),
                    duration_ms: Some(started.elapsed().as_millis() as u64),
                    usage: progress.usage.clone(),
                    ..Meta::default()
                };
                let error = ErrorBody { code: failure.code, message };
                let envelope = Envelope::Error(ErrorEnvelope {
                    execution_id: execution_id.clone(),
                    error,
                    meta,
                });
                RunOutcome { envelope, hint: failure.hint.map(|hint| self.redactor.redact(&hint)) }
            }
        }
    }

    async fn execute(
        &self,
        execution_id: &ExecutionId,
        request: &RunRequest,
        inputs: Value,
        progress: &mut Progress,
        started: Instant,
    ) -> Result<Envelope, Failure> {
        let Prepared {
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
        } = self.prepare(request, inputs, progress).await?;
        let spec = &entry.spec;
        let reusable =
            request.mode == Mode::Mock || request.reuse_real || spec.cache.reuses_real(&normalized);
        if request.use_cache
            && reusable
            && let Some(cached) = tokio::select! {
                // Re-hashing a large run's outputs takes a while: a signal stops it too.
                cached = self.memo.lookup(&memo_key, &*self.store) => cached,
                reason = request.cancel.cancelled() => return Err(cancelled(&reason)),
            }
        {
            tracing::info!(%memo_key, "reusing a finished identical run (memo cache)");
            return Ok(cached);
        }
        self.check_secrets(spec, &plan, request.mode, &normalized)?;
        let template =
            request.write_prefix.clone().unwrap_or_else(|| default_write_prefix(&spec.reference));
        let write_prefix = resolve_write_prefix(&template, execution_id)?;
        progress.write_prefix = Some(write_prefix.clone());
        self.check_predicates(Stage::Admission, &spec.predicates.admission, &write_prefix).await?;
        let launch = self.launch(spec, request.mode);
        let timeout_s = request.options.timeout_s.unwrap_or(spec.runtime.timeout_s);
        let admitting = Admitting { execution_id, request, plan: &plan, memo_key: &memo_key };
        progress.admitted = self.admit_run(&admitting, spec, &write_prefix).await?;
        tokio::select! {
            // Dropped mid-way, a store writer leaves nothing behind.
            stored = attachments::store_all(&*self.store, &attached) => stored?,
            reason = request.cancel.cancelled() => return Err(cancelled(&reason)),
        }
        // URLs outlive the run's timeout by a margin for the last upload to finish.
        let valid_for = Duration::from_secs(timeout_s.saturating_add(300));
        let urls =
            transfer::presign(transfer, &*self.store, &attached, spec, &write_prefix, valid_for)
                .await?;
        // Directly uploaded objects are removed with the rest if the run fails.
        let committed = Mutex::new(urls.planned.clone());
        let attempt = Attempt {
            adapter,
            spec,
            plan: &plan,
            launch: &launch,
            session: SessionRequest {
                endpoint: "",
                execution_id,
                mode: request.mode,
                inputs: &normalized,
                write_prefix: &write_prefix,
                files: &urls.files,
                put_urls: urls.uploads.as_ref(),
                headers: &[],
                tls: None,
                ledger: self.ledger.as_deref(),
            },
            observer: request.observer.as_deref(),
            cancel: &request.cancel,
            committed: &committed,
            planned: &urls.planned,
        };
        let work = Box::pin(self.attempts(&attempt, progress));
        let result = tokio::time::timeout(Duration::from_secs(timeout_s), work)
            .await
            .unwrap_or_else(|_| Err(timed_out(timeout_s)));
        let finished = match result {
            Ok(session) => {
                progress.usage.clone_from(&session.envelope.meta().usage);
                let record = Finished {
                    ledger_position: progress
                        .admitted
                        .as_ref()
                        .and_then(|admitted| admitted.position),
                    execution_id,
                    request,
                    plan: &plan,
                    transfer,
                    fingerprint,
                    inputs_hash,
                    memo_key: memo_key.clone(),
                    write_prefix,
                    started,
                    prompts,
                };
                self.finish(record, session).await
            }
            Err(failure) => Err(failure),
        };
        self.keep_or_discard(&memo_key, &committed, finished).await
    }

    /// What a finished run cost, when it is known: nothing for a run answered from the memo
    /// cache (it ran nothing); else see `cost.rs`.
    pub(super) fn cost(&self, request: &RunRequest, envelope: &Envelope) -> Option<u64> {
        let meta = envelope.meta();
        if meta.cached == Some(true) {
            return Some(0);
        }
        match self.processor(&request.reference) {
            Ok(entry) => cost::actual(&entry.spec, request.mode, meta.usage.as_ref()),
            Err(_) => (request.mode == Mode::Mock).then_some(0),
        }
    }

    /// Checks the spec's predicates of one stage against the store (see `predicates.rs`).
    pub(super) async fn check_predicates(
        &self,
        stage: Stage,
        list: &[crate::registry::PredicateUse],
        prefix: &WritePrefix,
    ) -> Result<(), Failure> {
        predicates::check(stage, list, &self.registry, &*self.store, prefix).await
    }

    /// The lease TTL of the `default@1` policy, or `None` when it turns path leases off (or
    /// there is no such policy).
    pub(super) fn lease_ttl_s(&self) -> Option<u64> {
        let leases = &self.registry.policy(DEFAULT_POLICY)?.leases;
        leases.enable_path_leases.then_some(leases.default_ttl_s)
    }

    /// The last checks before anything starts, then admission: the paths the run will write
    /// must be free (records are write-once: a prefix that holds another run's receipt or
    /// declared outputs is refused here; each output is checked again as it comes), a
    /// cancellation that came meanwhile stops it, and the ledger admits it.
    async fn admit_run(
        &self,
        admitting: &Admitting<'_>,
        spec: &crate::registry::ProcessorSpec,
        write_prefix: &WritePrefix,
    ) -> Result<Option<Admitted>, Failure> {
        let Admitting { execution_id, request, plan, memo_key } = *admitting;
        let taken = planned_paths(spec, write_prefix)?;
        let owners =
            crate::collision::Owners { ledger: self.ledger.as_deref(), asking: execution_id };
        crate::collision::ensure_free(&*self.store, owners, &taken).await?;
        let admission = Admission {
            execution_id,
            processor_ref: &spec.reference,
            adapter: request.adapter,
            runtime: plan.runtime,
            mode: request.mode,
            memo_key,
            write_prefix,
            plan: request.plan.as_ref(),
            estimate_usd_micro: cost::estimate(spec, request.mode),
            lease_ttl_s: self.lease_ttl_s(),
        };
        if let Some(reason) = request.cancel.reason() {
            return Err(cancelled(&reason));
        }
        self.admit(&admission).await
    }

    /// Asks the ledger to admit the run, reserving its estimate on its plan; without a ledger
    /// nothing is recorded and `--plan` is refused.
    pub(super) async fn admit(
        &self,
        admission: &Admission<'_>,
    ) -> Result<Option<Admitted>, Failure> {
        match &self.ledger {
            Some(ledger) => ledger.admit(admission).await.map(Some),
            None if admission.plan.is_some() => Err(Failure::new(
                ErrorCode::Ledger,
                "--plan needs the ledger, and this run has none",
            )
            .hint("run without --plan")),
            None => Ok(None),
        }
    }
}

/// Who is being admitted, for [`Orchestrator::admit_run`].
#[derive(Clone, Copy)]
struct Admitting<'a> {
    execution_id: &'a ExecutionId,
    request: &'a RunRequest,
    plan: &'a crate::Plan,
    memo_key: &'a str,
}
