//! Ending a run: success predicates, the index and receipts (write-once), the envelope; or the
//! removal of what a failed run stored; and what happens when the ledger cannot record it.

use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use theory_protocol::{
    Envelope, ErrorBody, ErrorCode, ErrorEnvelope, ExecutionId, Meta, OutputEntry, OutputsIndex,
    SuccessEnvelope,
};

use super::cost;
use super::predicates::Stage;
use super::run::{JSON, Orchestrator, Progress, RunOutcome, RunRequest};
use super::transfer::Transfer;
use crate::hashing::{HASH_SCHEMA, seed};
use crate::session::SessionResult;
use crate::{Failure, Plan, Receipt, WorldPath, WritePrefix};

impl Orchestrator {
    /// The ledger could not record how the run ended, so it will call the run failed (once this
    /// process is gone, a later command's recovery closes the record as `ERR_RUNTIME`): a
    /// success becomes `ERR_LEDGER` and what it wrote is removed, so the store and the ledger
    /// agree; an error keeps its envelope and the ledger's failure is said on stderr.
    pub(super) async fn unrecorded(
        &self,
        execution_id: &ExecutionId,
        outcome: RunOutcome,
        progress: &Progress,
        failure: Failure,
    ) -> RunOutcome {
        let Envelope::Success(success) = &outcome.envelope else {
            tracing::error!(code = %failure.code, "{}", failure.message);
            return outcome;
        };
        if success.meta.cached != Some(true) {
            let mut written: Vec<WorldPath> =
                success.outputs.iter().filter_map(|output| output.path.parse().ok()).collect();
            written.extend(success.index_path.parse().ok());
            written.extend(
                format!("/artifacts/execution/{execution_id}/determinism.json").parse().ok(),
            );
            if let Some(prefix) = &progress.write_prefix {
                written.extend(WorldPath::join(prefix, "receipt.json").ok());
            }
            self.discard(&written).await;
        }
        let envelope = Envelope::Error(ErrorEnvelope {
            execution_id: execution_id.clone(),
            error: ErrorBody {
                code: failure.code,
                message: format!(
                    "{}; the run's outputs and receipts were removed",
                    failure.message
                ),
            },
            meta: success.meta.clone(),
        });
        RunOutcome { envelope, hint: failure.hint }
    }

    pub(super) async fn discard(&self, paths: &[WorldPath]) {
        for path in paths {
            if let Err(error) = self.store.delete(path).await {
                tracing::warn!(%path, %error, "could not remove an output of a failed run");
            }
        }
    }

    /// Writes the index, then the receipts, and builds the success envelope.
    pub(super) async fn finish(
        &self,
        record: Finished<'_>,
        session: SessionResult,
    ) -> Result<Envelope, Failure> {
        let Finished {
            ledger_position,
            execution_id,
            request,
            plan,
            transfer,
            fingerprint,
            inputs_hash,
            memo_key,
            write_prefix,
            started,
            prompts,
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
            adapter: request.adapter,
            runtime: plan.runtime,
            image_source: plan.image_source().to_owned(),
            transfer: transfer.as_str().to_owned(),
            ledger_position,
            prompts,
            attestation: Some(crate::AttestationNote {
                signed: self.signer.is_some(),
                key_id: self.signer.as_ref().map(|key| key.public().key_id().to_owned()),
            }),
        };
        let receipt_json = Bytes::from(receipt.to_canonical_json());
        let mut records = vec![
            (index_path.clone(), Bytes::from(index)),
            (receipt_path, receipt_json.clone()),
            (prefix_receipt, receipt_json),
        ];
        if let Some(signer) = &self.signer {
            // Beside the receipt, never an output: the statement of these outputs and this
            // receipt, signed.
            let statement = crate::attestation::Statement::of(&receipt, &outputs);
            let envelope = signer.sign(&statement);
            let path = parse_path(&format!("{execution_folder}/attestation.json"))?;
            records.push((path, Bytes::from(envelope.to_canonical_json())));
        }
        // The index last among the outputs, then the receipts and the attestation: an index only
        // for a complete run.
        self.write_records(execution_id, &records).await?;
        let meta = Meta {
            processor_ref: Some(request.reference.to_string()),
            adapter: Some(request.adapter.to_string()),
            runtime: Some(plan.runtime.to_string()),
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

    /// Writes a run's index and receipts in order, each write-once; if one fails, those this run
    /// wrote are removed, and a collision names the path's owner.
    pub(super) async fn write_records(
        &self,
        execution_id: &ExecutionId,
        records: &[(WorldPath, Bytes)],
    ) -> Result<(), Failure> {
        let mut written = Vec::with_capacity(records.len());
        for (path, bytes) in records {
            match self.store.put_bytes(path, JSON, bytes.clone()).await {
                Ok(()) => written.push(path.clone()),
                Err(error) => {
                    // Any failure but a collision may have stored the object all the same.
                    if !matches!(error, crate::StoreError::Exists { .. }) {
                        written.push(path.clone());
                    }
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

    /// Remembers a finished run in the memo cache, or removes what a failed run stored.
    pub(super) async fn keep_or_discard(
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

/// The paths a run will write that are known before it starts: its prefix's `receipt.json` and
/// the outputs its spec declares.
pub(super) fn planned_paths(
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

/// What a run may cost, reserved on its plan at admission: nothing in mock mode; in real mode
/// the `required_usd_micro` of the spec's `budget.available@1` admission predicate, else nothing.
pub(super) fn parse_path(text: &str) -> Result<WorldPath, Failure> {
    text.parse().map_err(|error: crate::WorldPathError| {
        Failure::new(ErrorCode::OutputPath, error.to_string())
    })
}

/// What `finish` needs from the run so far.
pub(super) struct Finished<'a> {
    /// Where the ledger recorded the admission.
    pub(super) ledger_position: Option<u64>,
    pub(super) execution_id: &'a ExecutionId,
    pub(super) request: &'a RunRequest,
    pub(super) plan: &'a Plan,
    pub(super) transfer: Transfer,
    pub(super) fingerprint: String,
    pub(super) inputs_hash: String,
    pub(super) memo_key: String,
    pub(super) write_prefix: WritePrefix,
    pub(super) started: Instant,
    /// The registry prompts the inputs used.
    pub(super) prompts: Vec<crate::prompts::PromptUse>,
}
