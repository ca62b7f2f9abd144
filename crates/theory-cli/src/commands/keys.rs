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
            let path = context.project.signing_key_path();
            let public_path = path.with_file_name("signing.pub.pem");
            // A replaced key's public half is kept, not trusted: the runs it signed verify once
            // someone who trusts it puts it in registry/keys/. Written before the key goes.
            let retired = if args.force { retire(&path) } else { Ok(None) };
            let retired = match retired {
                Ok(retired) => retired,
                Err(failure) => return failure.report(args.json),
            };
            let key = match context.project.generate_signing_key(args.force) {
                Ok(key) => key,
                Err(failure) => return failure.report(args.json),
            };
            if args.json {
                print_json(&json!({"ok": true, "key_id": key.public().key_id(),
                                   "private_key": path.display().to_string(),
                                   "public_key_pem": key.public().to_pem(),
                                   "retired_public_key": retired.as_ref().map(|path| path.display().to_string())}));
            } else {
                out(format!(
                    "made {} ({}; readable by you only)\nits public key, for whoever verifies (also in {}):\n{}",
                    key.public().key_id(),
                    path.display(),
                    public_path.display(),
                    key.public().to_pem().trim_end()
                ));
                if let Some(retired) = retired {
                    eprintln!(
                        "note: the replaced key's public half is in {}; runs it signed verify only where it is trusted (copy it to registry/keys/ to keep trusting them)",
                        retired.display()
                    );
                }
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
            "no public key is trusted: runs' attestations cannot be checked, and the memo cache checks hits by hash only",
        );
        eprintln!(
            "hint: theory keys generate, or put a public key in registry/keys/NAME.pem or [trust] public_keys in theory.toml"
        );
    } else {
        for found in &keys {
            out(format!("{}  {}", found.key.key_id(), found.source));
        }
    }
    ExitCode::SUCCESS
}

/// Writes the public half of the key at `path`, about to be replaced, beside it as
/// `retired-<id>.pub.pem`; nothing when there is no key there.
fn retire(path: &std::path::Path) -> Result<Option<std::path::PathBuf>, Failure> {
    let Ok(pem) = std::fs::read_to_string(path) else { return Ok(None) };
    let Ok(old) = theory_core::attestation::SigningKey::from_pem(&pem) else { return Ok(None) };
    let name = format!("retired-{}.pub.pem", old.public().key_id().trim_start_matches("ed25519:"));
    let retired = path.with_file_name(name);
    std::fs::write(&retired, old.public().to_pem()).map_err(|error| {
        Failure::with_hint(
            ErrorCode::Usage,
            format!("cannot keep the replaced key's public half in {}: {error}", retired.display()),
            "check the folder's permissions; the key was not replaced",
        )
    })?;
    Ok(Some(retired))
}
