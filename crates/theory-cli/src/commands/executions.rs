//! `theory executions list|show ID`: the history of runs from the ledger, with receipts.

use std::process::ExitCode;
use theory_core::Failure;

use futures_util::StreamExt;
use serde_json::{Value, json};
use theory_core::WorldPath;
use theory_ledger::ExecutionRecord;

use super::Context;
use super::plan::ledger_error;
use crate::args::ExecutionsCommand;
use crate::print::{Report, out, print_json};

/// Runs a `theory executions` subcommand.
pub(crate) async fn run(command: ExecutionsCommand, context: Context) -> Result<ExitCode, Failure> {
    let ledger = context.project.ledger(&context.env).await?;
    match command {
        ExecutionsCommand::List(args) => match ledger.executions(i64::from(args.limit)).await {
            Ok(records) => {
                if args.json {
                    let records: Vec<Value> = records.iter().map(summary).collect();
                    print_json(&json!({"executions": records}));
                } else {
                    out(format!(
                        "{:<28} {:<20} {:<8} {:<8} {:<22} {:>8}",
                        "ID", "REF", "MODE", "STATUS", "ERROR", "MS"
                    ));
                    for record in &records {
                        out(format!(
                            "{:<28} {:<20} {:<8} {:<8} {:<22} {:>8}",
                            record.id,
                            record.processor_ref,
                            record.mode,
                            record.status.as_str(),
                            record.error_code.as_deref().unwrap_or("-"),
                            record.duration_ms.map_or_else(|| "-".to_owned(), |ms| ms.to_string())
                        ));
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => Ok(ledger_error(&error).report(args.json)),
        },
        ExecutionsCommand::Show(args) => {
            let record = match ledger.execution(&args.id).await {
                Ok(record) => record,
                Err(error) => return Ok(ledger_error(&error).report(args.json)),
            };
            let events = ledger.events(Some(&args.id)).await.unwrap_or_default();
            let store = context.project.store(&context.env).await?;
            let receipt = receipt(&*store, &record.id).await;
            if args.json {
                print_json(&json!({"execution": record, "receipt": receipt, "events": events}));
            } else {
                let mut shown = summary(&record);
                if let Value::Object(fields) = &mut shown {
                    fields.insert("receipt".into(), receipt.unwrap_or(Value::Null));
                    fields
                        .insert("envelope".into(), record.envelope.clone().unwrap_or(Value::Null));
                }
                print_json(&shown);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The record without its envelope, for lists.
fn summary(record: &ExecutionRecord) -> Value {
    let mut value = serde_json::to_value(record).unwrap_or_default();
    if let Value::Object(fields) = &mut value {
        fields.remove("envelope");
    }
    value
}

/// Reads `/artifacts/execution/{id}/determinism.json` from the store, when the run wrote one.
async fn receipt(store: &dyn theory_core::ArtifactStore, id: &str) -> Option<Value> {
    let path: WorldPath = format!("/artifacts/execution/{id}/determinism.json").parse().ok()?;
    let mut stream = store.open(&path).await.ok()??;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.ok()?);
    }
    serde_json::from_slice(&bytes).ok()
}
