//! The documents of `/v1/runs`: the body that asks for a run (checked when it arrives, so a bad
//! one is refused before it is queued) and the run object every route answers with.

use serde::Deserialize;
use serde_json::{Value, json};
use theory_core::orchestrator::{TransferRequest, resolve_write_prefix};
use theory_core::registry::Registry;
use theory_core::{AdapterKind, AdapterOptions, Failure, PlanKey, ProcessorRef, RunRequest};
use theory_ledger::{ExecutionRecord, ExecutionStatus, QueueState, QueuedRun};
use theory_protocol::{ErrorCode, Mode};

/// `POST /v1/runs`: what to run. Only `ref` is required; `mode` defaults to `mock`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunBody {
    /// The processor, `ns/name@version`.
    #[serde(rename = "ref")]
    pub(crate) reference: String,
    /// `mock` (default) or `real`.
    #[serde(default)]
    pub(crate) mode: Option<String>,
    /// `local` (default) or `modal`.
    #[serde(default)]
    pub(crate) adapter: Option<String>,
    /// The inputs.
    #[serde(default)]
    pub(crate) inputs: Option<Value>,
    /// The write prefix template (`{execution_id}` allowed).
    #[serde(default)]
    pub(crate) write_prefix: Option<String>,
    /// The plan to charge.
    #[serde(default)]
    pub(crate) plan: Option<String>,
    /// `auto` (default), `direct` or `stream`.
    #[serde(default)]
    pub(crate) transfer: Option<String>,
    /// Run again even when an identical run finished.
    #[serde(default)]
    pub(crate) no_cache: bool,
    /// Reuse a finished identical real run even when the spec says its outputs vary.
    #[serde(default)]
    pub(crate) reuse_real: bool,
    /// The Modal environment of `adapter: modal` (`dev`, `staging`, `main`), as `theory run
    /// --env`.
    #[serde(default)]
    pub(crate) env: Option<String>,
    /// Where to send the run's webhooks.
    #[serde(default)]
    pub(crate) webhook: Option<String>,
    /// Which webhooks: `start`, `output`, `logs`, `completed` (all by default).
    #[serde(default)]
    pub(crate) webhook_events_filter: Option<Vec<String>>,
    /// The adapter's options (`timeout_s`, `runtime`, `platform`).
    #[serde(default)]
    pub(crate) adapter_opts: Option<Value>,
}

fn usage(message: impl Into<String>, hint: impl Into<String>) -> Failure {
    Failure::with_hint(ErrorCode::Usage, message, hint)
}

/// A body, checked: every field parsed, the processor known, the inputs valid for its schema.
pub(crate) struct CheckedRun {
    reference: ProcessorRef,
    mode: Mode,
    adapter: AdapterKind,
    inputs: Value,
    write_prefix: Option<String>,
    plan: Option<PlanKey>,
    transfer: TransferRequest,
    use_cache: bool,
    reuse_real: bool,
    options: AdapterOptions,
}

impl RunBody {
    /// The webhook the body asks for, checked.
    pub(crate) fn subscription(&self) -> Result<Option<crate::webhooks::Subscription>, Failure> {
        match (&self.webhook, &self.webhook_events_filter) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(usage(
                "webhook_events_filter without webhook",
                "give webhook, the URL to send them to",
            )),
            (Some(url), filter) => {
                crate::webhooks::Subscription::parse(url, filter.as_deref()).map(Some)
            }
        }
    }

    /// Parses the JSON of a request.
    pub(crate) fn parse(bytes: &[u8]) -> Result<RunBody, Failure> {
        serde_json::from_slice(bytes).map_err(|error| {
            usage(
                format!("the body is not a run request: {error}"),
                r#"send {"ref":"theory/probe@1","inputs":{…}} as JSON"#,
            )
        })
    }

    /// Checks every field against the registry, as `theory run` checks its flags.
    pub(crate) fn check(&self, registry: &Registry) -> Result<CheckedRun, Failure> {
        let reference: ProcessorRef = self.reference.parse().map_err(|error| {
            usage(format!("ref: {error}"), "a ref looks like llm/litellm@1; see GET /v1/processors")
        })?;
        let entry = registry.processor(&reference).ok_or_else(|| {
            Failure::with_hint(
                ErrorCode::Registry,
                format!("unknown processor ref {reference}"),
                "see the processors with GET /v1/processors",
            )
        })?;
        let mode = match self.mode.as_deref() {
            None => Mode::Mock,
            Some(text) => Mode::parse_with_alias(text)
                .map(|(mode, _)| mode)
                .map_err(|error| usage(format!("mode: {error}"), "use mock or real"))?,
        };
        let adapter = match self.adapter.as_deref() {
            None => AdapterKind::Local,
            Some(text) => text
                .parse()
                .map_err(|error| usage(format!("adapter: {error}"), "use local or modal"))?,
        };
        if let Some(template) = &self.write_prefix {
            let example =
                "E0".parse().map_err(|_| usage("internal: bad example id", "report it"))?;
            resolve_write_prefix(template, &example).map_err(|failure| {
                usage(
                    format!("write_prefix: {}", failure.message),
                    "use a prefix like /artifacts/outputs/my-run/{execution_id}/",
                )
            })?;
        }
        let plan =
            self.plan.as_deref().map(str::parse::<PlanKey>).transpose().map_err(|error| {
                usage(format!("plan: {error}"), "see the plans with GET /v1/plans")
            })?;
        let transfer: TransferRequest =
            self.transfer.as_deref().unwrap_or("auto").parse().map_err(|error| {
                usage(format!("transfer: {error}"), "use auto, direct or stream")
            })?;
        let mut options = match &self.adapter_opts {
            None => AdapterOptions::default(),
            Some(value) => AdapterOptions::from_json(&value.to_string()).map_err(|error| {
                usage(format!("adapter_opts: {error}"), "known keys: timeout_s, runtime, platform")
            })?,
        };
        if let Some(env) = &self.env {
            if adapter != AdapterKind::Modal {
                return Err(usage(
                    "env selects a Modal environment; it goes with \"adapter\": \"modal\"",
                    "drop env, or run with \"adapter\": \"modal\"",
                ));
            }
            if !matches!(env.as_str(), "dev" | "staging" | "main") {
                return Err(usage(
                    format!("env: {env:?} is not a Modal environment"),
                    "use dev, staging or main",
                ));
            }
            options.modal_environment = Some(env.clone());
        }
        let inputs = self.inputs.clone().unwrap_or_else(|| json!({}));
        if !inputs.is_object() {
            return Err(usage("inputs must be a JSON object", r#"send "inputs": {…}"#));
        }
        // The schema sees the inputs as the run will: with `$prompt`s rendered (kept as sent).
        let (rendered, _) = theory_core::prompts::expand(inputs.clone(), registry)?;
        entry.check_inputs(&rendered).map_err(|violation| {
            Failure::with_hint(
                ErrorCode::InputSchema,
                violation.to_string(),
                format!("see the inputs schema with GET /v1/processors/{reference}"),
            )
        })?;
        Ok(CheckedRun {
            reference,
            mode,
            adapter,
            inputs,
            write_prefix: self.write_prefix.clone(),
            plan,
            transfer,
            use_cache: !self.no_cache,
            reuse_real: self.reuse_real,
            options,
        })
    }
}

impl CheckedRun {
    /// The processor.
    pub(crate) fn reference(&self) -> &ProcessorRef {
        &self.reference
    }

    /// `mock` or `real`.
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// The inputs.
    pub(crate) fn inputs(&self) -> &Value {
        &self.inputs
    }

    /// The plan it is charged to.
    pub(crate) fn plan(&self) -> Option<&PlanKey> {
        self.plan.as_ref()
    }

    /// The orchestrator's request, cancelled through `cancel`.
    pub(crate) fn into_request(self, cancel: theory_core::cancel::Cancel) -> RunRequest {
        RunRequest {
            reference: self.reference,
            adapter: self.adapter,
            mode: self.mode,
            write_prefix: self.write_prefix,
            inputs: self.inputs,
            options: self.options,
            attachments: Vec::new(),
            transfer: self.transfer,
            plan: self.plan,
            use_cache: self.use_cache,
            reuse_real: self.reuse_real,
            observer: None,
            cancel,
        }
    }
}

/// What a client sees of a run's progress.
fn status(queued: Option<&QueuedRun>, record: Option<&ExecutionRecord>) -> &'static str {
    match (queued, record) {
        (_, Some(record)) => match record.status {
            ExecutionStatus::Running => "running",
            ExecutionStatus::Success => "succeeded",
            ExecutionStatus::Error if record.error_code.as_deref() == Some("ERR_CANCELLED") => {
                "cancelled"
            }
            ExecutionStatus::Error => "failed",
        },
        (Some(queued), None) => match queued.state {
            QueueState::Queued => "queued",
            QueueState::Claimed => "starting",
            QueueState::Done if queued.cancel_requested => "cancelled",
            QueueState::Done => "failed",
        },
        (None, None) => "failed",
    }
}

fn time(ms: Option<i64>) -> Value {
    ms.and_then(|ms| u64::try_from(ms / 1000).ok())
        .map_or(Value::Null, |seconds| Value::String(theory_core::time::rfc3339(seconds)))
}

/// Whether a status is final.
pub(crate) fn is_final(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "cancelled")
}

/// The run object: `{id, status, ref, mode, adapter, created_at, started_at, completed_at,
/// envelope, urls}`.
pub(crate) fn run_object(
    id: &str,
    queued: Option<&QueuedRun>,
    record: Option<&ExecutionRecord>,
) -> Value {
    let request: Value =
        queued.and_then(|queued| serde_json::from_str(&queued.request).ok()).unwrap_or_default();
    let field = |name: &str| -> Value {
        record.map_or_else(
            || request.get(name).cloned().unwrap_or(Value::Null),
            |record| match name {
                "ref" => Value::String(record.processor_ref.clone()),
                "mode" => Value::String(record.mode.clone()),
                _ => Value::String(record.adapter.clone()),
            },
        )
    };
    json!({
        "id": id,
        "status": status(queued, record),
        "ref": field("ref"),
        "mode": field("mode").as_str().map_or_else(|| json!("mock"), |mode| json!(mode)),
        "adapter": field("adapter").as_str().map_or_else(|| json!("local"), |adapter| json!(adapter)),
        "created_at": time(queued.map(|queued| queued.created_at_ms).or(record.map(|record| record.started_at_ms))),
        "started_at": time(record.map(|record| record.started_at_ms)),
        "completed_at": time(record.and_then(|record| record.finished_at_ms)),
        "plan": queued.and_then(|queued| queued.plan_key.clone()).or_else(|| record.and_then(|record| record.plan_key.clone())),
        "runtime": record.and_then(|record| record.runtime.clone()),
        "attempts": record.map(|record| record.attempts),
        "duration_ms": record.and_then(|record| record.duration_ms),
        "cost_usd_micro": record.and_then(|record| record.cost_usd_micro),
        "cached": record.and_then(|record| record.envelope.as_ref()).and_then(|envelope| envelope.pointer("/meta/cached")).and_then(Value::as_bool),
        "envelope": record.and_then(|record| record.envelope.clone()),
        "urls": {
            "get": format!("/v1/runs/{id}"),
            "cancel": format!("/v1/runs/{id}/cancel"),
            "events": format!("/v1/runs/{id}/events"),
            "receipt": format!("/v1/runs/{id}/receipt"),
        },
    })
}
