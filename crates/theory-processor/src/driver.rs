//! The life of one run on the processor side: inputs → files → handler → outputs → `RunResult`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use theory_protocol::{
    Envelope, ErrorBody, ErrorCode, ErrorEnvelope, Event, Frame, Meta, Phase, RunPayload,
    SuccessEnvelope, expand_write_prefix, normalize_inputs,
};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::run::Run;
use crate::server::Shared;
use crate::{
    Context, InputFile, Inputs, Processor, ProcessorError, ProcessorResult, files, outputs, upload,
};

/// Aborts the handler task when the driver itself is dropped, so no handler outlives its run.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the handler for `payload` and appends every frame, ending with `RunResult`.
pub(crate) async fn drive<P: Processor>(
    shared: Arc<Shared<P>>,
    run: Arc<Run>,
    mut payload: RunPayload,
    received: Result<BTreeMap<String, InputFile>, ProcessorError>,
) {
    let span = tracing::info_span!(
        "run",
        execution_id = %run.execution_id,
        processor_ref = %shared.identity.reference,
        mode = %payload.mode,
    );
    async {
        let started = Instant::now();
        let default_prefix =
            format!("/artifacts/outputs/{}/{{execution_id}}/", shared.identity.ref_slug());
        let template = payload.write_prefix.as_deref().unwrap_or(&default_prefix);
        let write_prefix = expand_write_prefix(template, &run.execution_id);
        let mut meta = Meta {
            processor_ref: Some(shared.identity.reference.clone()),
            mode: Some(payload.mode),
            image_digest: shared.config.image_digest.clone(),
            processor_info: Some(shared.identity.processor_info.clone()),
            ..Meta::default()
        };
        // The handler gets the inputs themselves, not a copy (they may be megabytes).
        let inputs = Arc::unwrap_or_clone(std::mem::take(&mut payload.inputs));
        let outcome = match received {
            Ok(received) => {
                let sent = Sent { payload: &payload, inputs, files: received };
                execute(&shared, &run, sent, &write_prefix, &mut meta).await
            }
            Err(error) => Err(error),
        };
        meta.duration_ms = Some(started.elapsed().as_millis() as u64);
        let envelope = match outcome {
            Ok((outputs, skipped)) => {
                if !skipped.is_empty() {
                    meta.skipped_outputs = Some(skipped);
                }
                tracing::info!(
                    outputs = outputs.len(),
                    duration_ms = meta.duration_ms,
                    "run completed"
                );
                run.push_frame(&Frame::Event(Event::phase(Phase::Completed)));
                Envelope::Success(SuccessEnvelope {
                    execution_id: run.execution_id.clone(),
                    outputs,
                    index_path: format!("{write_prefix}{}", upload::INDEX_KEY),
                    meta,
                })
            }
            Err(error) => {
                let message = run.redact(&error.message);
                tracing::warn!(code = %error.code, %message, "run failed");
                if error.code != ErrorCode::Cancelled {
                    run.push_frame(&Frame::Event(Event::phase(Phase::Failed)));
                }
                Envelope::Error(ErrorEnvelope {
                    execution_id: run.execution_id.clone(),
                    error: ErrorBody { code: error.code, message },
                    meta,
                })
            }
        };
        run.finish(envelope);
    }
    .instrument(span)
    .await;
}

type Delivered = (Vec<theory_protocol::OutputEntry>, Vec<String>);

/// What the client sent: the `RunOpen` payload, its inputs taken out of it, and the files
/// that came on the connection.
struct Sent<'a> {
    payload: &'a RunPayload,
    inputs: Value,
    files: BTreeMap<String, InputFile>,
}

async fn execute<P: Processor>(
    shared: &Arc<Shared<P>>,
    run: &Arc<Run>,
    sent: Sent<'_>,
    write_prefix: &str,
    meta: &mut Meta,
) -> Result<Delivered, ProcessorError> {
    let Sent { payload, inputs, mut files } = sent;
    let cancel = run.cancel_token().clone();
    if cancel.is_cancelled() {
        return Err(ProcessorError::cancelled());
    }
    let normalized = normalize_inputs(inputs)
        .map_err(|error| ProcessorError::invalid_inputs(error.to_string()))?;
    for (world_path, spec) in &payload.files {
        if let Some(url) = spec.get_url.as_deref() {
            let download = files::download(&shared.http, run, world_path, spec.clone(), url);
            let file = tokio::select! {
                file = download => file?,
                () = cancel.cancelled() => return Err(ProcessorError::cancelled()),
            };
            files.insert(world_path.clone(), file);
        }
    }

    run.push_frame(&Frame::Event(Event::phase(Phase::Started)));
    let context = Context::new(Arc::clone(run), payload.mode, write_prefix.to_owned(), files);
    let result = run_handler(shared, run, Inputs::new(normalized.value), context).await?;
    if !result.processor_info.is_empty() {
        meta.processor_info = Some(result.processor_info.clone());
    }
    if !result.usage.is_empty() {
        meta.usage = Some(result.usage.clone());
    }
    if !result.extra.is_empty() {
        meta.extra.insert("extra".into(), Value::Object(result.extra.clone()));
    }

    let prepared = outputs::prepare(result.outputs).await?;
    if cancel.is_cancelled() {
        return Err(ProcessorError::cancelled());
    }
    if let Some(plan) = &payload.put_urls {
        let attempts = shared.config.upload_attempts;
        let uploaded = upload::carry_out(
            &shared.http,
            &shared.upload_slots,
            plan,
            &prepared,
            write_prefix,
            attempts,
            &cancel,
        )
        .await?;
        return Ok((uploaded.entries, uploaded.skipped));
    }
    outputs::emit(run, &prepared);
    let entries = prepared.iter().map(|output| output.entry(write_prefix)).collect();
    Ok((entries, Vec::new()))
}

/// Runs the handler as its own task, so a panic is caught and a cancelled handler that does not
/// stop within the grace period can be stopped hard.
async fn run_handler<P: Processor>(
    shared: &Arc<Shared<P>>,
    run: &Run,
    inputs: Inputs,
    context: Context,
) -> Result<ProcessorResult, ProcessorError> {
    let processor = Arc::clone(&shared.processor);
    let mut handler =
        AbortOnDrop(tokio::spawn(async move { processor.run(inputs, context).await }));
    let cancel = run.cancel_token().clone();
    let joined = tokio::select! {
        joined = &mut handler.0 => joined,
        () = cancel.cancelled() => {
            if tokio::time::timeout(shared.config.cancel_grace, &mut handler.0).await.is_err() {
                tracing::warn!("handler ignored cancellation for the grace period; stopping it hard");
                handler.0.abort();
            }
            return Err(ProcessorError::cancelled());
        }
    };
    match joined {
        Ok(result) => result,
        Err(error) if error.is_panic() => {
            let panic = error.into_panic();
            let reason = panic
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(ProcessorError::runtime(format!("the handler panicked: {reason}")))
        }
        Err(_) => Err(ProcessorError::cancelled()),
    }
}
