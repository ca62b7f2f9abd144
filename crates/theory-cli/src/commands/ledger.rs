//! `theory ledger verify`: walks the event chain; exit 1 naming the first tampered entry.

use std::process::ExitCode;

use theory_protocol::ErrorCode;

use super::Context;
use super::plan::ledger_error;
use crate::args::LedgerCommand;
use crate::print::{OpError, out, print_json};
use crate::usage::UsageError;

/// Runs a `theory ledger` subcommand.
pub(crate) async fn run(command: LedgerCommand, context: Context) -> Result<ExitCode, UsageError> {
    let LedgerCommand::Verify(args) = command;
    let ledger = context.project.ledger(&context.env).await?;
    let report = match ledger.verify().await {
        Ok(report) => report,
        Err(error) => return Ok(ledger_error(&error).report(args.json)),
    };
    match (report.first_bad_seq, &report.reason) {
        (None, _) => {
            if args.json {
                print_json(&serde_json::json!({"ok": true, "entries": report.entries, "backend": ledger.backend().as_str()}));
            } else {
                out(format!("ok: {} entries, every hash and link holds ({})", report.entries, ledger.backend().as_str()));
            }
            Ok(ExitCode::SUCCESS)
        }
        (Some(seq), reason) => Ok(OpError::new(
            ErrorCode::Ledger,
            format!("ledger entry {seq} was tampered with: {}", reason.as_deref().unwrap_or("it does not hold")),
            "entries before it are intact; restore the database from a backup to trust what follows",
        )
        .report(args.json)),
    }
}
