//! `theory executions list|show ID`: the history of runs from the ledger, with receipts.

use std::process::ExitCode;
use theory_core::Failure;

use futures_util::StreamExt;
use serde_json::{Value, json};
use theory_core::WorldPath;
use theory_ledger::{ExecutionRecord, ExecutionStatus};

use super::Context;
use super::plan::ledger_error;
use crate::args::{ExecutionsCommand, StatusFilter};
use crate::print::{Report, out, print_json};

/// Runs a `theory executions` subcommand.
pub(crate) async fn run(command: ExecutionsCommand, context: Context) -> Result<ExitCode, Failure> {
    let ledger = context.project.ledger(&context.env).await?;
    match command {
        ExecutionsCommand::List(args) => {
            let status = args.status.map(|status| match status {
                StatusFilter::Running => ExecutionStatus::Running,
                StatusFilter::Success => ExecutionStatus::Success,
                StatusFilter::Error => ExecutionStatus::Error,
            });
            match ledger.executions_with(i64::from(args.limit), status).await {
                Ok(records) => {
                    if args.json {
                        let records: Vec<Value> = records.iter().map(summary).collect();
                        print_json(&json!({"executions": records}));
                    } else {
                        table(&records, now_ms());
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => Ok(ledger_error(&error).report(args.json)),
            }
        }
        ExecutionsCommand::Show(args) => {
            let record = match ledger.find_execution(&args.id).await {
                Ok(record) => record,
                Err(error) => return Ok(ledger_error(&error).report(args.json)),
            };
            let events = ledger.events(Some(&record.id)).await.unwrap_or_default();
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

/// Milliseconds since the Unix epoch, as the ledger records times.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

/// The runs as a table: when they started (how long ago), what they cost and how long they took,
/// in units people read.
fn table(records: &[ExecutionRecord], now_ms: i64) {
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|record| {
            [
                record.id.clone(),
                record.processor_ref.clone(),
                record.mode.clone(),
                record.status.as_str().to_owned(),
                record.error_code.clone().unwrap_or_else(|| "-".into()),
                record.cost_usd_micro.map_or_else(|| "-".into(), dollars),
                record.duration_ms.map_or_else(|| "-".into(), duration),
                age(now_ms.saturating_sub(record.started_at_ms)),
            ]
        })
        .collect();
    let titles = ["ID", "REF", "MODE", "STATUS", "ERROR", "COST", "TOOK", "STARTED"];
    let widths: Vec<usize> = (0..titles.len())
        .map(|column| {
            rows.iter().map(|row| row[column].len()).max().unwrap_or(0).max(titles[column].len())
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    out(line(&titles.map(str::to_owned)));
    for row in &rows {
        out(line(row));
    }
}

/// Micro-USD as dollars: `$0.000003`, `$1.25`.
fn dollars(micro: i64) -> String {
    let whole = micro / 1_000_000;
    let fraction = (micro % 1_000_000).abs();
    let text = format!("{fraction:06}");
    let trimmed = text.trim_end_matches('0');
    let shown = if trimmed.len() < 2 { &text[..2] } else { trimmed };
    format!("${whole}.{shown}")
}

/// A duration in milliseconds as people say it: `16 ms`, `1.2 s`, `3 min 5 s`.
fn duration(ms: i64) -> String {
    match ms {
        ..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// How long ago, from an age in milliseconds: `just now`, `12 s ago`, `5 min ago`, `3 h ago`,
/// `2 d ago`.
fn age(ms: i64) -> String {
    let seconds = ms / 1000;
    match seconds {
        ..1 => "just now".to_owned(),
        1..60 => format!("{seconds} s ago"),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86_400),
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

#[cfg(test)]
mod tests {
    use super::{age, dollars, duration};

    #[test]
    fn amounts_and_times_read_as_people_say_them() {
        assert_eq!(dollars(3), "$0.000003");
        assert_eq!(dollars(1_250_000), "$1.25");
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(1000), "$0.001");
        assert_eq!(duration(16), "16 ms");
        assert_eq!(duration(1234), "1.2 s");
        assert_eq!(duration(185_000), "3 min 5 s");
        assert_eq!(age(400), "just now");
        assert_eq!(age(12_000), "12 s ago");
        assert_eq!(age(300_000), "5 min ago");
        assert_eq!(age(3 * 3_600_000), "3 h ago");
        assert_eq!(age(2 * 86_400_000), "2 d ago");
    }
}
