//! One run, start to finish: resolve → check → plan → memo → start → session → store → index →
//! receipts → envelope. A failed run leaves no index and no receipt, and its outputs are removed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use theory_protocol::{
    Envelope, ErrorBody, ErrorCode, ErrorEnvelope, ExecutionId, Meta, Mode, OutputEntry,
    OutputsIndex, SuccessEnvelope, expand_write_prefix, normalize_inputs,
};
use tracing::Instrument;

use super::cost;
use super::memo::MemoCache;
use super::predicates::{self, Stage};
use super::transfer::{self, Transfer, TransferRequest};
use crate::attachments::{self, Attachment, ResolvedAttachment};
use crate::cancel::Cancel;
use crate::env::names;
use crate::fingerprint::Fingerprint;
use crate::hashing::{HASH_SCHEMA, inputs_hash, memo_key, seed};
use crate::ledger::{Admission, Admitted, Closing, RunLedger};
use crate::registry::{ProcessorEntry, Registry};
use crate::session::{FrameObserver, SessionRequest, SessionResult, run_session};
use crate::{
    Adapter, AdapterOptions, ArtifactStore, EnvSnapshot, Failure, Launch, Plan, ProcessorRef,
    Receipt, Redactor, WorldPath, WritePrefix, new_execution_id,
};

/// The media type of the index and receipts.
const JSON: &str = "application/json";
/// The policy whose retry and lease rules runs follow.
const DEFAULT_POLICY: &str = "default@1";

/// Everything a run needs besides its request; built once per command.
pub struct Orchestrator {
    /// The loaded registry.
    pub registry: Arc<Registry>,
    /// Where outputs, indexes and receipts go.
    pub store: Arc<dyn ArtifactStore>,
    /// Adapters by name (`local`, `modal`).
    pub adapters: BTreeMap<&'static str, Arc<dyn Adapter>>,
    /// The memo cache.
    pub memo: MemoCache,
    /// The environment at start.
    pub env: EnvSnapshot,
    /// Hides secret values.
    pub redactor: Redactor,
    /// Records every run and holds the plans' budgets; `None` records nothing (and refuses
    /// `--plan`).
    pub ledger: Option<Arc<dyn RunLedger>>,
}

/// What to run.
pub struct RunRequest {
    /// The processor.
    pub reference: ProcessorRef,
    /// `local` or `modal`.
    pub adapter: String,
    /// `mock` or `real`.
    pub mode: Mode,
    /// The write prefix template (`{execution_id}` allowed); the default is
    /// `/artifacts/outputs/{ref_slug}/{execution_id}/`.
    pub write_prefix: Option<String>,
    /// The inputs as the user wrote them.
    pub inputs: Value,
    /// `--adapter-opts-json`.
    pub options: AdapterOptions,
    /// `--attach name=path` files, referred to as `{"$attach":"name"}` in the inputs.
    pub attachments: Vec<Attachment>,
    /// How bytes move between the store and the processor.
    pub transfer: TransferRequest,
    /// The plan to charge (`--plan`).
    pub plan: Option<String>,
    /// Whether a finished identical run may be reused.
    pub use_cache: bool,
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
struct Progress {
    fingerprint: Option<String>,
    runtime: Option<String>,
    image_digest: Option<String>,
    /// What the ledger granted, once the run was admitted.
    admitted: Option<Admitted>,
    /// Attempts made so far.
    attempts: u32,
    /// What the processor reported it consumed, once its session ended: kept on the error
    /// envelope (and charged) when the run fails after it, on a success predicate say.
    usage: Option<serde_json::Map<String, serde_json::Value>>,
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
        let execution_id = new_execution_id();
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
            let outcome = self.outcome(&execution_id, &request, &mut progress, started).await;
            if let Some(ledger) = &self.ledger {
                let closing = Closing {
                    execution_id: &execution_id,
                    processor_ref: request.reference.as_str(),
                    adapter: &request.adapter,
                    mode: request.mode,
                    envelope: &outcome.envelope,
                    cost_usd_micro: self.cost(&request, &outcome.envelope),
                    attempts: progress.attempts.max(1),
                    duration_ms: started.elapsed().as_millis() as u64,
                };
                ledger.close(&closing, progress.admitted.as_ref()).await;
            }
            outcome
        }
        .instrument(span)
        .await
    }

    /// Runs a request to its envelope (without recording it).
    async fn outcome(
        &self,
        execution_id: &ExecutionId,
        request: &RunRequest,
        progress: &mut Progress,
        started: Instant,
    ) -> RunOutcome {
        match self.execute(execution_id, request, progress, started).await {
            Ok(envelope) => RunOutcome { envelope, hint: None },
            Err(failure) => {
                let message = self.redactor.redact(&failure.message);
                // The CLI prints the error for people; the log line is for log pipelines.
                tracing::debug!(code = %failure.code, %message, "run failed");
                let meta = Meta {
                    processor_ref: Some(request.reference.to_string()),
                    adapter: Some(request.adapter.clone()),
                    runtime: progress.runtime.clone(),
                    mode: Some(request.mode),
                    image_digest: progress.image_digest.clone(),
                    env_fingerprint: Some(
                        progress
                            .fingerprint
                            .clone()
                            .unwrap_or_else(|| Fingerprint::unknown(&request.adapter)),
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

    fn processor(&self, reference: &ProcessorRef) -> Result<&ProcessorEntry, Failure> {
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
    async fn prepare<'a>(
        &'a self,
        request: &RunRequest,
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
        let attached = attachments::resolve(&request.attachments, &request.inputs).await?;
        let inputs = attachments::rewrite(request.inputs.clone(), &attached)?;
        entry.check_inputs(&inputs).map_err(|violation| {
            Failure::new(ErrorCode::InputSchema, violation.to_string()).hint(format!(
                "see the inputs schema with `theory registry show {}`",
                spec.reference
            ))
        })?;
        let normalized = normalize_inputs(inputs)
            .map_err(|error| Failure::new(ErrorCode::InputSchema, error.to_string()))?
            .value;
        let adapter = self.adapters.get(request.adapter.as_str()).ok_or_else(|| {
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
        progress.runtime = Some(plan.runtime.clone());
        progress.image_digest = Some(plan.image_identity.clone());
        let fingerprint = Fingerprint {
            adapter: adapter.name(),
            runtime: &plan.runtime,
            image_digest: &plan.image_identity,
            resources: &spec.runtime,
            present_env_keys: &present,
        }
        .render();
        progress.fingerprint = Some(fingerprint.clone());
        let inputs_hash = inputs_hash(&normalized);
        let memo_key = memo_key(&spec.reference, &plan.image_identity, request.mode, &inputs_hash);
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
        })
    }

    async fn execute(
        &self,
        execution_id: &ExecutionId,
        request: &RunRequest,
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
        } = self.prepare(request, progress).await?;
        let spec = &entry.spec;
        if request.use_cache
            && let Some(cached) = self.memo.lookup(&memo_key, &*self.store).await
        {
            tracing::info!(%memo_key, "reusing a finished identical run (memo cache)");
            return Ok(cached);
        }
        self.check_secrets(spec, &plan, request.mode)?;
        let template =
            request.write_prefix.clone().unwrap_or_else(|| default_write_prefix(&spec.reference));
        let write_prefix = resolve_write_prefix(&template, execution_id)?;
        self.check_predicates(Stage::Admission, &spec.predicates.admission, &write_prefix).await?;
        // Records are write-once: a prefix that holds another run's receipt or declared
        // outputs is refused before anything starts (each output is checked again as it comes).
        let taken = planned_paths(spec, &write_prefix)?;
        let owners =
            crate::collision::Owners { ledger: self.ledger.as_deref(), asking: execution_id };
        crate::collision::ensure_free(&*self.store, owners, &taken).await?;
        let launch = self.launch(spec, request.mode);
        let timeout_s = request.options.timeout_s.unwrap_or(spec.runtime.timeout_s);
        let admission = Admission {
            execution_id,
            processor_ref: spec.reference.as_str(),
            adapter: &request.adapter,
            runtime: &plan.runtime,
            mode: request.mode,
            memo_key: &memo_key,
            write_prefix: write_prefix.as_str(),
            plan: request.plan.as_deref(),
            estimate_usd_micro: cost::estimate(spec, request.mode),
            lease_ttl_s: self.lease_ttl_s(),
        };
        if let Some(reason) = request.cancel.reason() {
            return Err(cancelled(&reason));
        }
        progress.admitted = self.admit(&admission).await?;
        attachments::store_all(&*self.store, &attached).await?;
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
                    execution_id,
                    request,
                    plan: &plan,
                    transfer,
                    fingerprint,
                    inputs_hash,
                    memo_key: memo_key.clone(),
                    write_prefix,
                    started,
                };
                self.finish(record, session).await
            }
            Err(failure) => Err(failure),
        };
        self.keep_or_discard(&memo_key, &committed, finished).await
    }

    /// What a finished run cost, when it is known: nothing for a run answered from the memo
    /// cache (it ran nothing); else see `cost.rs`.
    fn cost(&self, request: &RunRequest, envelope: &Envelope) -> Option<u64> {
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
    async fn check_predicates(
        &self,
        stage: Stage,
        list: &[crate::registry::PredicateUse],
        prefix: &WritePrefix,
    ) -> Result<(), Failure> {
        predicates::check(stage, list, &self.registry, &*self.store, prefix).await
    }

    /// The lease TTL of the `default@1` policy, or `None` when it turns path leases off (or
    /// there is no such policy).
    fn lease_ttl_s(&self) -> Option<u64> {
        let leases = &self.registry.policy(DEFAULT_POLICY)?.leases;
        leases.enable_path_leases.then_some(leases.default_ttl_s)
    }

    /// Runs the processor, again after a transient failure (the instance did not start, the
    /// connection was lost) as the `default@1` policy's `retry` allows, with its backoff; every
    /// failed attempt is recorded in the ledger, and what it stored is removed first.
    async fn attempts(
        &self,
        attempt: &Attempt<'_>,
        progress: &mut Progress,
    ) -> Result<SessionResult, Failure> {
        let retry = self.registry.policy(DEFAULT_POLICY).map(|policy| policy.retry.clone());
        let max_attempts = retry.as_ref().map_or(1, |retry| retry.max_attempts.max(1));
        let mut number = 1;
        loop {
            progress.attempts = number;
            let result = self.attempt_once(attempt).await;
            let failure = match result {
                Err(failure) if is_transient(&failure.code) && number < max_attempts => failure,
                other => return other,
            };
            let backoff = retry
                .as_ref()
                .and_then(|retry| {
                    let index = usize::try_from(number - 1).unwrap_or(usize::MAX);
                    retry.backoff_ms.get(index).or(retry.backoff_ms.last()).copied()
                })
                .unwrap_or(0);
            tracing::warn!(attempt = number, code = %failure.code, message = %failure.message, backoff_ms = backoff, "transient failure; trying again");
            if let Some(ledger) = &self.ledger {
                ledger.attempt_failed(attempt.session.execution_id, number, &failure).await;
            }
            let stored = std::mem::replace(
                &mut *attempt.committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
                attempt.planned.to_vec(),
            );
            self.discard(&stored).await;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(backoff)) => {}
                reason = attempt.cancel.cancelled() => return Err(cancelled(&reason)),
            }
            number += 1;
        }
    }

    /// One attempt: start an instance, run the session, stop the instance.
    async fn attempt_once(&self, attempt: &Attempt<'_>) -> Result<SessionResult, Failure> {
        let Attempt { adapter, spec, plan, launch, session, observer, cancel, committed, .. } =
            attempt;
        tracing::info!(runtime = %plan.runtime, target = %plan.target, "starting the processor");
        // Cancelled while starting: the half-started instance is dropped, which stops it.
        let instance = tokio::select! {
            started = adapter.start(spec, plan, launch) => started?,
            reason = cancel.cancelled() => return Err(cancelled(&reason)),
        };
        tracing::debug!(endpoint = instance.endpoint(), "processor healthy");
        let headers = instance.headers();
        let endpoint = instance.endpoint();
        let tls = match self.tls_for(endpoint) {
            Ok(tls) => tls,
            Err(failure) => {
                instance.stop().await;
                return Err(failure);
            }
        };
        let session = SessionRequest { endpoint, headers: &headers, tls: tls.as_ref(), ..*session };
        let result = tokio::select! {
            result = run_session(session, &*self.store, *observer, committed) => result,
            reason = cancel.cancelled() => Err(cancelled(&reason)),
        };
        tracing::debug!("session ended");
        instance.stop().await;
        tracing::debug!("processor stopped");
        result
    }

    /// A real run needs its required secrets here, unless the instance already holds them.
    fn check_secrets(
        &self,
        spec: &crate::registry::ProcessorSpec,
        plan: &Plan,
        mode: Mode,
    ) -> Result<(), Failure> {
        if mode == Mode::Real
            && !plan.secrets_held
            && let Some(missing) =
                spec.secrets.required.iter().find(|name| self.env.get(name.as_str()).is_none())
        {
            return Err(Failure::new(
                ErrorCode::MissingSecret,
                format!("required secret {missing} is not set"),
            )
            .hint(format!("export {missing}=… before a real run, or run with --mode mock")));
        }
        Ok(())
    }

    /// Asks the ledger to admit the run, reserving its estimate on its plan; without a ledger
    /// nothing is recorded and `--plan` is refused.
    async fn admit(&self, admission: &Admission<'_>) -> Result<Option<Admitted>, Failure> {
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

    /// Secrets go to the processor only in real mode; every secret-looking name is withheld from
    /// the ambient environment it inherits.
    fn launch(&self, spec: &crate::registry::ProcessorSpec, mode: Mode) -> Launch {
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
        Launch { mode, secrets, withheld }
    }

    async fn discard(&self, paths: &[WorldPath]) {
        for path in paths {
            if let Err(error) = self.store.delete(path).await {
                tracing::warn!(%path, %error, "could not remove an output of a failed run");
            }
        }
    }

    /// Writes the index, then the receipts, and builds the success envelope.
    async fn finish(
        &self,
        record: Finished<'_>,
        session: SessionResult,
    ) -> Result<Envelope, Failure> {
        let Finished {
            execution_id,
            request,
            plan,
            transfer,
            fingerprint,
            inputs_hash,
            memo_key,
            write_prefix,
            started,
        } = record;
        let spec = &self.processor(&request.reference)?.spec;
        self.check_predicates(Stage::Success, &spec.predicates.success, &write_prefix).await?;
        let mut outputs: Vec<OutputEntry> = session
            .outputs
            .iter()
            .map(|output| OutputEntry {
                path: output.path.to_string(),
                cid: output.cid,
                size_bytes: output.size_bytes,
                mime: output.mime.clone(),
            })
            .collect();
        outputs.sort();
        let processor_meta = session.envelope.meta();
        let usage = processor_meta.usage.clone().unwrap_or_default();
        let execution_folder = format!("/artifacts/execution/{execution_id}");
        let index_path: WorldPath = parse_path(&format!("{execution_folder}/outputs.json"))?;
        let receipt_path: WorldPath = parse_path(&format!("{execution_folder}/determinism.json"))?;
        let prefix_receipt = WorldPath::join(&write_prefix, "receipt.json")
            .map_err(|error| Failure::new(ErrorCode::OutputPath, error.to_string()))?;
        let index = OutputsIndex::new(outputs.clone()).to_canonical_json();
        let duration_ms = started.elapsed().as_millis() as u64;
        let receipt = Receipt {
            execution_id: execution_id.clone(),
            processor_ref: request.reference.to_string(),
            image_digest: plan.image_identity.clone(),
            env_fingerprint: fingerprint.clone(),
            mode: request.mode,
            inputs_hash,
            hash_schema: HASH_SCHEMA.to_owned(),
            seed: seed(&memo_key),
            memo_key,
            output_cids: outputs.iter().map(|output| output.cid).collect(),
            outputs_index: index_path.to_string(),
            processor_info: processor_meta.processor_info.clone().unwrap_or_default(),
            usage: usage.clone(),
            cost_usd_micro: cost::actual(spec, request.mode, processor_meta.usage.as_ref()),
            timestamp_utc: crate::time::now_rfc3339(),
            duration_ms,
            adapter: request.adapter.clone(),
            runtime: plan.runtime.clone(),
            image_source: plan.image_source().to_owned(),
            transfer: transfer.as_str().to_owned(),
        };
        let receipt_json = Bytes::from(receipt.to_canonical_json());
        // The index last among the outputs, then the receipts: an index only for a complete run.
        self.write_records(
            execution_id,
            [
                (&index_path, Bytes::from(index)),
                (&receipt_path, receipt_json.clone()),
                (&prefix_receipt, receipt_json),
            ],
        )
        .await?;
        let meta = Meta {
            processor_ref: Some(request.reference.to_string()),
            adapter: Some(request.adapter.clone()),
            runtime: Some(plan.runtime.clone()),
            mode: Some(request.mode),
            image_digest: Some(plan.image_identity.clone()),
            env_fingerprint: Some(fingerprint),
            duration_ms: Some(duration_ms),
            usage: Some(usage),
            cached: Some(false),
            ..Meta::default()
        };
        tracing::info!(outputs = outputs.len(), duration_ms, "run succeeded");
        Ok(Envelope::Success(SuccessEnvelope {
            execution_id: execution_id.clone(),
            outputs,
            index_path: index_path.to_string(),
            meta,
        }))
    }
}

impl Orchestrator {
    /// Writes a run's index and receipts in order, each write-once; if one fails, those this run
    /// wrote are removed, and a collision names the path's owner.
    async fn write_records(
        &self,
        execution_id: &ExecutionId,
        records: [(&WorldPath, Bytes); 3],
    ) -> Result<(), Failure> {
        let mut written = Vec::with_capacity(records.len());
        for (path, bytes) in records {
            match self.store.put_bytes(path, JSON, bytes).await {
                Ok(()) => written.push(path.clone()),
                Err(error) => {
                    self.discard(&written).await;
                    return Err(match error {
                        crate::StoreError::Exists { .. } => {
                            let owners = crate::collision::Owners {
                                ledger: self.ledger.as_deref(),
                                asking: execution_id,
                            };
                            crate::collision::collision(path, owners).await
                        }
                        other => other.into(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The paths a run will write that are known before it starts: its prefix's `receipt.json` and
/// the outputs its spec declares.
fn planned_paths(
    spec: &crate::registry::ProcessorSpec,
    prefix: &WritePrefix,
) -> Result<Vec<WorldPath>, Failure> {
    std::iter::once("receipt.json")
        .chain(spec.outputs.files.iter().map(|output| output.path.as_str()))
        .map(|relative| {
            WorldPath::join(prefix, relative)
                .map_err(|error| Failure::new(ErrorCode::OutputPath, error.to_string()))
        })
        .collect()
}

/// The failure of a run stopped from outside.
fn cancelled(reason: &str) -> Failure {
    Failure::new(
        ErrorCode::Cancelled,
        format!("the run was cancelled ({reason}); the processor was stopped"),
    )
}

fn timed_out(timeout_s: u64) -> Failure {
    Failure::new(
        ErrorCode::Timeout,
        format!("the run took longer than its timeout of {timeout_s} s; the processor was stopped"),
    )
    .hint("raise the timeout with --adapter-opts-json '{\"timeout_s\": N}'")
}

/// What a run may cost, reserved on its plan at admission: nothing in mock mode; in real mode
/// the `required_usd_micro` of the spec's `budget.available@1` admission predicate, else nothing.
fn parse_path(text: &str) -> Result<WorldPath, Failure> {
    text.parse().map_err(|error: crate::WorldPathError| {
        Failure::new(ErrorCode::OutputPath, error.to_string())
    })
}

/// What the checks before starting produced.
struct Prepared<'a> {
    entry: &'a ProcessorEntry,
    adapter: &'a Arc<dyn Adapter>,
    plan: Plan,
    transfer: Transfer,
    attached: Vec<ResolvedAttachment>,
    normalized: Value,
    fingerprint: String,
    inputs_hash: String,
    memo_key: String,
}

/// Whether a failure may go away by trying again: the instance did not start or the connection
/// to it was lost. Never a schema, provider, integrity or budget error.
fn is_transient(code: &ErrorCode) -> bool {
    matches!(code, ErrorCode::Adapter | ErrorCode::Connection)
}

/// What one attempt of a run needs.
struct Attempt<'a> {
    adapter: &'a Arc<dyn Adapter>,
    spec: &'a crate::registry::ProcessorSpec,
    plan: &'a Plan,
    launch: &'a Launch,
    /// The session, its endpoint filled in per attempt.
    session: SessionRequest<'a>,
    observer: Option<&'a dyn FrameObserver>,
    cancel: &'a Cancel,
    committed: &'a Mutex<Vec<WorldPath>>,
    /// Objects a direct upload may create: removed with the rest after a failed attempt.
    planned: &'a [WorldPath],
}

/// What `finish` needs from the run so far.
struct Finished<'a> {
    execution_id: &'a ExecutionId,
    request: &'a RunRequest,
    plan: &'a Plan,
    transfer: Transfer,
    fingerprint: String,
    inputs_hash: String,
    memo_key: String,
    write_prefix: WritePrefix,
    started: Instant,
}

impl Orchestrator {
    /// TLS settings for an `https` endpoint (`None` for plain `http`).
    fn tls_for(&self, endpoint: &str) -> Result<Option<Arc<rustls::ClientConfig>>, Failure> {
        if !endpoint.starts_with("https://") {
            return Ok(None);
        }
        crate::tls::client_config(&self.env).map(Some).map_err(|error| {
            Failure::new(ErrorCode::Connection, format!("cannot set up TLS: {error}"))
                .hint("check the PEM file SSL_CERT_FILE names, or unset it")
        })
    }
}

impl Orchestrator {
    /// Remembers a finished run in the memo cache, or removes what a failed run stored.
    async fn keep_or_discard(
        &self,
        memo_key: &str,
        committed: &Mutex<Vec<WorldPath>>,
        finished: Result<Envelope, Failure>,
    ) -> Result<Envelope, Failure> {
        match finished {
            Ok(envelope) => {
                self.memo.record(memo_key, &envelope).await;
                Ok(envelope)
            }
            Err(failure) => {
                let leftovers = std::mem::take(
                    &mut *committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                self.discard(&leftovers).await;
                Err(failure)
            }
        }
    }
}
