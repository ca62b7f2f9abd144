//! `theory verify [EXECUTION…|--all]`: re-hashes what each run's index and receipt claim
//! against the store, checks that the ledger holds the run where its receipt says, and (with
//! `--all`) that every stored attachment still hashes to the CID in its path; each run's
//! attestation must verify with a trusted key and sign exactly its outputs and receipt. Prints
//! what it checked; exit 1 when anything drifted.

use std::process::ExitCode;
use theory_core::Failure;

use serde_json::json;
use theory_core::attestation::{PublicKey, Trust};
use theory_core::verify::{AttestationStatus, Claims, RunCheck, check_run};
use theory_core::{ArtifactStore, ExecutionId, WorldPath};
use theory_ledger::{ExecutionStatus, Ledger};
use theory_protocol::{Cid, ErrorCode};

use super::Context;
use super::plan::ledger_error;
use crate::args::VerifyArgs;
use crate::print::{Report, out, print_json};
use crate::usage::usage;

/// Runs `theory verify`.
pub(crate) async fn run(args: VerifyArgs, context: Context) -> Result<ExitCode, Failure> {
    if args.all != args.executions.is_empty() {
        return Err(usage(
            "name the executions to verify, or pass --all",
            "theory verify 01J… 01K…, or theory verify --all (ids from `theory executions list`)",
        ));
    }
    let ids = args
        .executions
        .iter()
        .map(|text| {
            text.parse::<ExecutionId>().map_err(|error| {
                usage(
                    format!("{text:?} is not an execution id: {error}"),
                    "list them with `theory executions list`",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let trust = trust(&args, &context)?;
    let ledger = context.project.ledger(&context.env).await?;
    let store = context.project.store(&context.env).await?;
    let ids = if args.all {
        match successful_runs(&ledger).await {
            Ok(ids) => ids,
            Err(error) => return Ok(ledger_error(&error).report(args.json)),
        }
    } else {
        ids
    };
    let mut checks = Vec::with_capacity(ids.len());
    for id in &ids {
        checks.push(check_one(&*store, &ledger, id, &trust).await);
    }
    let attachments = if args.all {
        match check_attachments(&*store).await {
            Ok(found) => Some(found),
            Err(error) => {
                return Ok(Failure::with_hint(
                    ErrorCode::Store,
                    format!("cannot list the attachments: {error}"),
                    "check the storage settings",
                )
                .report(args.json));
            }
        }
    } else {
        None
    };
    Ok(report(&checks, attachments.as_ref(), &trust, args.json))
}

/// The keys attestations are checked with: the project's, and each `--key`.
fn trust(args: &VerifyArgs, context: &Context) -> Result<Trust, Failure> {
    let mut keys: Vec<PublicKey> =
        context.project.trusted_keys(&context.env)?.into_iter().map(|found| found.key).collect();
    for file in &args.keys {
        let key = theory_engine::read_public_key(file)?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(Trust { keys, require_signed: args.require_signed })
}

/// Every successful execution of the ledger, oldest first.
async fn successful_runs(ledger: &Ledger) -> Result<Vec<ExecutionId>, theory_ledger::LedgerError> {
    let mut records = ledger.executions(i64::MAX).await?;
    records.reverse();
    Ok(records
        .into_iter()
        .filter(|record| record.status == ExecutionStatus::Success)
        .filter_map(|record| record.id.parse().ok())
        .collect())
}

/// Checks one run: what the ledger recorded of it, against the store.
async fn check_one(
    store: &dyn ArtifactStore,
    ledger: &Ledger,
    id: &ExecutionId,
    trust: &Trust,
) -> RunCheck {
    let record = match ledger.execution(id.as_str()).await {
        Ok(record) => Some(record),
        Err(theory_ledger::LedgerError::UnknownExecution(_)) => None,
        Err(error) => {
            let mut check = RunCheck::new(id.to_string());
            check.drifts.push(format!("the ledger cannot be read: {error}"));
            return check;
        }
    };
    if let Some(record) = &record
        && record.status != ExecutionStatus::Success
    {
        return failed_run_left_nothing(store, id, record.status.as_str()).await;
    }
    let claims = match &record {
        Some(record) => match ledger.claims(record).await {
            Ok(claims) => claims,
            Err(error) => {
                let mut check = RunCheck::new(id.to_string());
                check.drifts.push(format!("the ledger cannot be read: {error}"));
                return check;
            }
        },
        None => Claims::default(),
    };
    let mut check = check_run(store, id, &claims, trust).await;
    if record.is_none() {
        check.drifts.push("the ledger has no record of this run".into());
    }
    if let Some(position) = check.receipt.as_ref().and_then(|receipt| receipt.ledger_position)
        && let Some(drift) = position_drift(ledger, id, &check, position).await
    {
        check.drifts.push(drift);
    }
    check
}

/// The ledger must hold the run's admission at the position its receipt records (for a
/// memo-cache hit, the receipt is the original run's).
async fn position_drift(
    ledger: &Ledger,
    id: &ExecutionId,
    check: &RunCheck,
    position: u64,
) -> Option<String> {
    let owner = check.receipt.as_ref().map_or(id.as_str(), |receipt| receipt.execution_id.as_str());
    let seq = i64::try_from(position).ok()?;
    match ledger.event_at(seq).await {
        Ok(Some(event))
            if event.kind == theory_ledger::EventKind::ExecutionStarted.as_str()
                && event.execution_id.as_deref() == Some(owner) =>
        {
            None
        }
        Ok(Some(_)) => Some(format!(
            "ledger position {position} holds another entry than the admission of {owner}"
        )),
        Ok(None) => Some(format!(
            "the ledger holds no entry at position {position}, which the receipt records: it was cut short, or entries were deleted"
        )),
        Err(error) => Some(format!("the ledger cannot be read: {error}")),
    }
}

/// A failed run must have left no index.
async fn failed_run_left_nothing(
    store: &dyn ArtifactStore,
    id: &ExecutionId,
    status: &str,
) -> RunCheck {
    let mut check = RunCheck::new(id.to_string());
    let index = format!("/artifacts/execution/{id}/outputs.json").parse::<WorldPath>();
    if let Ok(index) = index
        && store.exists(&index).await.unwrap_or(false)
    {
        check
            .drifts
            .push(format!("the run ended with status {status}, yet its index {index} exists"));
    }
    check
}

/// What checking the attachments found.
struct Attachments {
    checked: usize,
    drifts: Vec<String>,
}

/// Every object under `/artifacts/inputs/<cid>/` must hash to that CID.
async fn check_attachments(store: &dyn ArtifactStore) -> Result<Attachments, String> {
    let listed = store.list("/artifacts/inputs/").await.map_err(|error| error.to_string())?;
    let mut found = Attachments { checked: 0, drifts: Vec::new() };
    for path in listed {
        let Some(claimed) = path
            .as_str()
            .strip_prefix("/artifacts/inputs/")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(cid, _)| cid.parse::<Cid>().ok())
        else {
            continue;
        };
        found.checked += 1;
        match store.hash(&path).await {
            Ok(Some((cid, _))) if cid == claimed => {}
            Ok(Some((cid, _))) => {
                found.drifts.push(format!("{path} hashes to {cid}, not to the CID in its path"));
            }
            Ok(None) => {}
            Err(error) => found.drifts.push(format!("{path}: {error}")),
        }
    }
    Ok(found)
}

/// What a run's line says of its attestation.
fn signature_words(check: &RunCheck) -> String {
    match check.attestation {
        AttestationStatus::Verified => format!(
            "; signed by {}, the signature and what it signs hold",
            check.key_id.as_deref().unwrap_or("a trusted key")
        ),
        AttestationStatus::Unsigned => "; unsigned (recorded so)".into(),
        AttestationStatus::Failed | AttestationStatus::Unchecked => String::new(),
    }
}

fn report(
    checks: &[RunCheck],
    attachments: Option<&Attachments>,
    trust: &Trust,
    json: bool,
) -> ExitCode {
    let ok =
        checks.iter().all(RunCheck::ok) && attachments.is_none_or(|found| found.drifts.is_empty());
    let trusted: Vec<&str> = trust.keys.iter().map(PublicKey::key_id).collect();
    if json {
        let attachments =
            attachments.map(|found| json!({"checked": found.checked, "drifts": found.drifts}));
        print_json(&json!({"ok": ok, "runs": checks, "attachments": attachments,
                           "trusted_keys": trusted}));
    } else {
        if !trusted.is_empty() {
            out(format!("trusting {}", trusted.join(", ")));
        }
        for check in checks {
            if check.ok() {
                let position = check
                    .receipt
                    .as_ref()
                    .and_then(|receipt| receipt.ledger_position)
                    .map(|position| format!(" (its admission is ledger entry {position})"))
                    .unwrap_or_default();
                out(format!(
                    "ok     {}  {} outputs, {} bytes re-hashed; index, receipts and ledger agree{position}{}",
                    check.execution_id,
                    check.outputs_checked,
                    check.bytes_checked,
                    signature_words(check)
                ));
            } else {
                out(format!("DRIFT  {}", check.execution_id));
                for drift in &check.drifts {
                    out(format!("       {drift}"));
                }
            }
        }
        if let Some(found) = attachments {
            if found.drifts.is_empty() {
                out(format!(
                    "ok     attachments: {} re-hashed, each matches its CID",
                    found.checked
                ));
            } else {
                out("DRIFT  attachments");
                for drift in &found.drifts {
                    out(format!("       {drift}"));
                }
            }
        }
        let drifted = checks.iter().filter(|check| !check.ok()).count();
        if ok {
            out(format!("verified {} runs: every output, index and receipt holds", checks.len()));
        } else {
            eprintln!("error: {drifted} of {} runs drifted from their records", checks.len());
            eprintln!(
                "hint: a drifted run's records were changed, removed or replaced outside Theory (an attestation that does not verify: rewritten, or signed by a key not trusted here — pass --key); run it again, or restore the store from a backup"
            );
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
