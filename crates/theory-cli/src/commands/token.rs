//! `theory token create|list|revoke`: the API tokens `theory serve` checks. A token's secret is
//! printed once, when it is made; the ledger keeps its hash.

use std::process::ExitCode;

use theory_core::Failure;
use theory_ledger::{LedgerError, NewToken, Scope, Token};
use theory_protocol::ErrorCode;

use super::Context;
use super::plan::ledger_error;
use crate::args::{TokenCommand, TokenCreateArgs, TokenRevokeArgs};
use crate::print::{Report, out, print_json};
use crate::usage::usage;

/// Runs a `theory token` subcommand.
pub(crate) async fn run(command: TokenCommand, context: Context) -> Result<ExitCode, Failure> {
    match command {
        TokenCommand::Create(args) => create(args, context).await,
        TokenCommand::List(args) => {
            let ledger = context.project.ledger(&context.env).await?;
            match ledger.tokens().await {
                Ok(tokens) => {
                    if args.json {
                        print_json(&serde_json::json!({"tokens": tokens}));
                    } else {
                        print_table(&tokens);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => Ok(token_error(&error).report(args.json)),
            }
        }
        TokenCommand::Revoke(args) => revoke(args, context).await,
    }
}

fn check_name(name: &str) -> Result<(), Failure> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fine {
        Ok(())
    } else {
        Err(usage(
            format!("--name {name:?}: a token name is 1–64 letters, digits, -, _ or ."),
            "name it after who uses it: --name ci or --name web-app",
        ))
    }
}

fn scopes(text: &str) -> Result<Vec<Scope>, Failure> {
    let scopes = text
        .split(',')
        .filter(|scope| !scope.trim().is_empty())
        .map(str::parse::<Scope>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            usage(format!("--scope {text:?}: {error}"), "e.g. --scope runs:write,runs:read")
        })?;
    if scopes.is_empty() {
        return Err(usage("--scope names no scope", "e.g. --scope runs:read"));
    }
    Ok(scopes)
}

async fn create(args: TokenCreateArgs, context: Context) -> Result<ExitCode, Failure> {
    check_name(&args.name)?;
    let scopes = scopes(&args.scope)?;
    let ledger = context.project.ledger(&context.env).await?;
    let new = NewToken { name: &args.name, plan_key: args.plan.as_deref(), scopes: &scopes };
    match ledger.create_token(new).await {
        Ok((token, secret)) => {
            if args.json {
                print_json(&serde_json::json!({"token": token, "secret": secret}));
            } else {
                out(format!("token   {}", token.name));
                out(format!("id      {}", token.id));
                out(format!("plan    {}", token.plan_key.as_deref().unwrap_or("-")));
                out(format!("scopes  {}", scope_list(&token)));
                out(format!("secret  {secret}"));
                crate::print::print_warning(
                    "the secret is shown this once: keep it (Authorization: Bearer …)",
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(token_error(&error).report(args.json)),
    }
}

async fn revoke(args: TokenRevokeArgs, context: Context) -> Result<ExitCode, Failure> {
    let ledger = context.project.ledger(&context.env).await?;
    match ledger.revoke_token(&args.name).await {
        Ok(token) => {
            if args.json {
                print_json(&serde_json::json!({"token": token}));
            } else {
                out(format!("revoked {}", token.name));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(token_error(&error).report(args.json)),
    }
}

fn scope_list(token: &Token) -> String {
    token.scopes.iter().map(|scope| scope.as_str()).collect::<Vec<_>>().join(",")
}

fn print_table(tokens: &[Token]) {
    out(format!("{:<20} {:<22} {:<16} {:<34} {}", "NAME", "ID", "PLAN", "SCOPES", "STATE"));
    for token in tokens {
        out(format!(
            "{:<20} {:<22} {:<16} {:<34} {}",
            token.name,
            token.id,
            token.plan_key.as_deref().unwrap_or("-"),
            scope_list(token),
            if token.revoked_at_ms.is_some() { "revoked" } else { "live" }
        ));
    }
}

fn token_error(error: &LedgerError) -> Failure {
    match error {
        LedgerError::TokenExists(name) => Failure::with_hint(
            ErrorCode::Usage,
            error.to_string(),
            format!("pick another name, or revoke it first with `theory token revoke {name}`"),
        ),
        LedgerError::UnknownToken(_) => Failure::with_hint(
            ErrorCode::NotFound,
            error.to_string(),
            "list the tokens with `theory token list`",
        ),
        other => ledger_error(other),
    }
}
