//! `theory keys generate|show|trusted`: the Ed25519 key that signs runs' attestations, and the
//! public keys whose attestations are trusted. The secret stays in `.theory/keys/signing.pem`
//! (owner-only) or `THEORY_SIGNING_KEY`; only public halves are ever printed.

use std::process::ExitCode;

use serde_json::json;
use theory_core::{Failure, env::names};
use theory_protocol::ErrorCode;

use super::Context;
use crate::args::KeysCommand;
use crate::print::{Report, out, print_json};

/// Runs a `theory keys` subcommand.
pub(crate) fn run(command: &KeysCommand, context: &Context) -> ExitCode {
    match command {
        KeysCommand::Generate(args) => {
            let key = match context.project.generate_signing_key(args.force) {
                Ok(key) => key,
                Err(failure) => return failure.report(args.json),
            };
            let path = context.project.signing_key_path();
            if args.json {
                print_json(&json!({"ok": true, "key_id": key.public().key_id(),
                                   "private_key": path.display().to_string(),
                                   "public_key_pem": key.public().to_pem()}));
            } else {
                out(format!(
                    "made {} ({}; readable by you only)\nits public key, for whoever verifies (also in {}):\n{}",
                    key.public().key_id(),
                    path.display(),
                    path.with_file_name("signing.pub.pem").display(),
                    key.public().to_pem().trim_end()
                ));
            }
            ExitCode::SUCCESS
        }
        KeysCommand::Show(args) => {
            let found = match context.project.signing_key(&context.env) {
                Ok(found) => found,
                Err(failure) => return failure.report(args.json),
            };
            let Some((key, source)) = found else {
                return Failure::with_hint(
                    ErrorCode::NotFound,
                    format!("this project has no signing key (and {} is not set)", names::SIGNING_KEY),
                    "theory keys generate makes one; runs without a key are unsigned, and their receipts say so",
                )
                .report(args.json);
            };
            if args.json {
                print_json(&json!({"key_id": key.public().key_id(), "source": source.to_string(),
                                   "public_key_pem": key.public().to_pem()}));
            } else {
                out(key.public().to_pem().trim_end());
            }
            ExitCode::SUCCESS
        }
        KeysCommand::Trusted(args) => trusted(context, args.json),
    }
}

fn trusted(context: &Context, json: bool) -> ExitCode {
    let keys = match context.project.trusted_keys(&context.env) {
        Ok(keys) => keys,
        Err(failure) => return failure.report(json),
    };
    if json {
        let keys: Vec<_> = keys
            .iter()
            .map(|found| json!({"key_id": found.key.key_id(), "source": found.source}))
            .collect();
        print_json(&json!({"trusted_keys": keys}));
    } else if keys.is_empty() {
        out(
            "no public key is trusted: runs' attestations cannot be checked, and the memo cache checks hits by hash only\nhint: theory keys generate, or put a public key in registry/keys/NAME.pem",
        );
    } else {
        for found in &keys {
            out(format!("{}  {}", found.key.key_id(), found.source));
        }
    }
    ExitCode::SUCCESS
}
