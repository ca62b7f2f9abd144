//! `theory plan create|show|list`: budgets in micro-USD that runs are charged to.

use std::process::ExitCode;
use theory_core::Failure;

use theory_ledger::{LedgerError, Plan};
use theory_protocol::ErrorCode;

use super::Context;
use crate::args::{PlanCommand, PlanCreateArgs, PlanShowArgs};
use crate::print::{Report, out, print_json};
use crate::usage::usage;

/// Runs a `theory plan` subcommand.
pub(crate) async fn run(command: PlanCommand, context: Context) -> Result<ExitCode, Failure> {
    match command {
        PlanCommand::Create(args) => create(args, context).await,
        PlanCommand::Show(args) => show(args, context).await,
        PlanCommand::List(args) => {
            let ledger = context.project.ledger(&context.env).await?;
            match ledger.plans().await {
                Ok(plans) => {
                    if args.json {
                        print_json(&serde_json::json!({"plans": plans}));
                    } else {
                        print_table(&plans);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => Ok(ledger_error(&error).report(args.json)),
            }
        }
    }
}

fn check_key(key: &str) -> Result<(), Failure> {
    let fine = !key.is_empty()
        && key.len() <= 128
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fine {
        Ok(())
    } else {
        Err(usage(
            format!("--key {key:?}: a plan key is 1–128 letters, digits, -, _ or ."),
            "use a key such as team-a or my.plan",
        ))
    }
}

async fn create(args: PlanCreateArgs, context: Context) -> Result<ExitCode, Failure> {
    check_key(&args.key)?;
    let budget: i64 =
        args.budget_usd_micro.parse().ok().filter(|budget| *budget >= 0).ok_or_else(|| {
            usage(
                format!(
                    "--budget-usd-micro {:?} is not a whole number of micro-USD ≥ 0",
                    args.budget_usd_micro
                ),
                "1 USD is 1000000 micro-USD: --budget-usd-micro 5000000 is $5",
            )
        })?;
    let ledger = context.project.ledger(&context.env).await?;
    match ledger.create_plan(&args.key, budget).await {
        Ok(plan) => {
            print_plan(&plan, args.json);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(ledger_error(&error).report(args.json)),
    }
}

async fn show(args: PlanShowArgs, context: Context) -> Result<ExitCode, Failure> {
    let key = args.key.or(args.key_arg).unwrap_or_default();
    check_key(&key)?;
    let ledger = context.project.ledger(&context.env).await?;
    match ledger.plan(&key).await {
        Ok(plan) => {
            print_plan(&plan, args.json);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(ledger_error(&error).report(args.json)),
    }
}

fn print_plan(plan: &Plan, json: bool) {
    if json {
        print_json(plan);
    } else {
        out(format!("plan       {}", plan.key));
        out(format!("budget     {} µUSD", plan.budget_usd_micro));
        out(format!("reserved   {} µUSD", plan.reserved_usd_micro));
        out(format!("spent      {} µUSD", plan.spent_usd_micro));
        out(format!("available  {} µUSD", plan.available_usd_micro));
    }
}

fn print_table(plans: &[Plan]) {
    out(format!(
        "{:<24} {:>14} {:>14} {:>14} {:>14}",
        "PLAN", "BUDGET", "RESERVED", "SPENT", "AVAILABLE"
    ));
    for plan in plans {
        out(format!(
            "{:<24} {:>14} {:>14} {:>14} {:>14}",
            plan.key,
            plan.budget_usd_micro,
            plan.reserved_usd_micro,
            plan.spent_usd_micro,
            plan.available_usd_micro
        ));
    }
}

/// The error of a ledger operation, with what to do about it.
pub(crate) fn ledger_error(error: &LedgerError) -> Failure {
    match error {
        LedgerError::UnknownPlan(key) => Failure::with_hint(
            ErrorCode::Budget,
            error.to_string(),
            format!("create it with `theory plan create --key {key} --budget-usd-micro N`"),
        ),
        LedgerError::PlanExists(key) => Failure::with_hint(
            ErrorCode::Budget,
            error.to_string(),
            format!("see it with `theory plan show {key}`, or pick another key"),
        ),
        LedgerError::UnknownExecution(_) => Failure::with_hint(
            ErrorCode::Ledger,
            error.to_string(),
            "list executions with `theory executions list`",
        ),
        LedgerError::AmbiguousExecution(_) => Failure::with_hint(
            ErrorCode::Usage,
            error.to_string(),
            "give more of the id; `theory executions list` shows them",
        ),
        _ if error.is_damage() => Failure::with_hint(
            ErrorCode::Ledger,
            format!("the ledger's database is damaged: {error}"),
            "restore it from a backup (theory.db with its -wal file); `theory ledger verify` checks the restored one",
        ),
        _ => Failure::with_hint(
            ErrorCode::Ledger,
            error.to_string(),
            "check the ledger with `theory ledger verify`",
        ),
    }
}
