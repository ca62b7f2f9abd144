//! `theory ledger verify`: the event chain, the database file, the tables against the log they
//! follow, and the log's length against the receipts in the store; exit 1 naming what does not
//! hold.

use std::process::ExitCode;
use theory_core::Failure;

use futures_util::StreamExt;
use serde_json::{Value, json};
use theory_core::{ArtifactStore, Receipt};
use theory_ledger::{Event, Ledger};
use theory_protocol::ErrorCode;

use super::Context;
use super::plan::ledger_error;
use crate::args::LedgerCommand;
use crate::print::{Report, out, print_json, print_warning};

/// Runs a `theory ledger` subcommand.
pub(crate) async fn run(command: LedgerCommand, context: Context) -> Result<ExitCode, Failure> {
    let LedgerCommand::Verify(args) = command;
    let ledger = context.project.ledger(&context.env).await?;
    let checked = async {
        let audit = ledger.audit().await?;
        let chain = theory_ledger::check_chain(&audit.events)?;
        let file = ledger.file_problems().await?;
        Ok::<_, theory_ledger::LedgerError>((audit, chain, file))
    };
    let (audit, chain, file) = match checked.await {
        Ok(checked) => checked,
        Err(error) => return Ok(ledger_error(&error).report(args.json)),
    };
    // The receipts are an extra witness: a store that cannot be read leaves them unchecked, said
    // in a warning, and the ledger's own checks still stand.
    let receipts = match context.project.store(&context.env).await {
        Ok(store) => receipt_positions(&*store, &ledger, &audit.events).await,
        Err(error) => Err(error.message),
    };
    let receipts = receipts.unwrap_or_else(|error| {
        print_warning(&format!("the receipts in the store were not checked: {error}"));
        Receipts { checked: 0, problems: Vec::new(), unchecked: Some(error) }
    });
    let tampered = chain.first_bad_seq.map(|seq| {
        format!(
            "ledger entry {seq} was tampered with: {}",
            chain.reason.as_deref().unwrap_or("it does not hold")
        )
    });
    let damaged = file.as_ref().map(|found| format!("the database file is damaged: {found}"));
    let drifted = audit.drifts.iter().map(|drift| {
        format!(
            "{} {}: the table holds {}, the event log says {}",
            drift.subject, drift.field, drift.table, drift.log
        )
    });
    let problems: Vec<String> = tampered
        .iter()
        .chain(damaged.iter())
        .cloned()
        .chain(drifted)
        .chain(receipts.problems.iter().cloned())
        .collect();
    let backend = ledger.backend().as_str();
    if problems.is_empty() {
        if args.json {
            print_json(&json!({"ok": true, "entries": chain.entries, "backend": backend,
                               "receipts_checked": receipts.checked,
                               "receipts_unchecked": receipts.unchecked}));
        } else {
            out(format!(
                "ok: {} entries, every hash and link holds; the plans and executions follow the log; {} receipts in the store point into it ({backend})",
                chain.entries, receipts.checked
            ));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let hint = if tampered.is_some() || damaged.is_some() {
        "entries before a tampered one are intact; restore the database from a backup to trust the rest"
    } else if !audit.drifts.is_empty() {
        "a table was changed without its events: restore the database from a backup (the event log says what it held)"
    } else {
        "the ledger lost entries the receipts saw (a cut-short or replaced database): restore it from a backup with its -wal file"
    };
    if args.json {
        print_json(&json!({"ok": false, "entries": chain.entries, "backend": backend,
                           "first_bad_seq": chain.first_bad_seq, "problems": problems,
                           "drifts": audit.drifts, "receipts_checked": receipts.checked,
                           "error": {"code": ErrorCode::Ledger.to_string(), "message": problems[0]},
                           "hint": hint}));
    } else {
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        eprintln!("hint: {hint}");
    }
    Ok(ExitCode::FAILURE)
}

/// What the receipts in the store say about the ledger.
struct Receipts {
    checked: usize,
    problems: Vec<String>,
    /// Why they could not be checked, if they could not.
    unchecked: Option<String>,
}

/// Reads every receipt under `/artifacts/execution/` and checks the position it records: the
/// ledger must reach it, and hold that run's admission there.
async fn receipt_positions(
    store: &dyn ArtifactStore,
    ledger: &Ledger,
    events: &[Event],
) -> Result<Receipts, String> {
    let mut receipts = Receipts { checked: 0, problems: Vec::new(), unchecked: None };
    let listed = store.list("/artifacts/execution/").await.map_err(|error| error.to_string())?;
    let end = events.last().map_or(0, |event| event.seq);
    for path in listed.iter().filter(|path| path.file_name() == "determinism.json") {
        let Some(receipt) = read_receipt(store, path).await else { continue };
        let Some(position) =
            receipt.ledger_position.and_then(|position| i64::try_from(position).ok())
        else {
            continue;
        };
        receipts.checked += 1;
        let id = receipt.execution_id.as_str();
        let found = match events.get(usize::try_from(position - 1).unwrap_or(usize::MAX)) {
            Some(event) if event.seq == position => Some(event.clone()),
            // Past the snapshot: a run admitted since, or a ledger that lost entries.
            _ => ledger.event_at(position).await.map_err(|error| error.to_string())?,
        };
        if found.is_none() {
            receipts.problems.push(format!(
                "the receipt of execution {id} records ledger position {position}, but the ledger ends at {end}: it was cut short or replaced"
            ));
            continue;
        }
        let admits = found.as_ref().is_some_and(|event| {
            event.kind == theory_ledger::EventKind::ExecutionStarted.as_str()
                && event.execution_id.as_deref() == Some(id)
        });
        if !admits {
            receipts.problems.push(format!(
                "the receipt of execution {id} records ledger position {position}, which holds another entry"
            ));
        }
    }
    Ok(receipts)
}

/// A receipt from the store, or `None` when it cannot be read as one (`theory verify` reports
/// that; here only positions matter).
pub(crate) async fn read_receipt(
    store: &dyn ArtifactStore,
    path: &theory_core::WorldPath,
) -> Option<Receipt> {
    let mut stream = store.open(path).await.ok()??;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.ok()?);
        if bytes.len() > 16 * 1024 * 1024 {
            return None;
        }
    }
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|value| serde_json::from_value(value).ok())
}
