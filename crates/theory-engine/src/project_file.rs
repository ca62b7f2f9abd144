//! `theory.toml`: the defaults a team shares in its project — the store, the ledger, the server,
//! the adapter — as values of Theory's settings. The environment wins over them; secrets never
//! go there (a setting whose name looks secret, or a URL with a password, is refused), nor do the
//! guards of spending (`CI`, `THEORY_ALLOW_REAL_IN_CI`, `MODAL_ENABLED`).
//!
//! ```toml
//! [settings]
//! STORAGE_BACKEND = "s3"
//! ARTIFACTS_BUCKET = "acme-artifacts"
//! THEORY_SERVER = "https://theory.acme.internal"
//! THEORY_ADAPTER = "local"
//!
//! [trust]
//! # Public keys whose attestations `theory verify` and the memo cache accept (`theory keys show`).
//! public_keys = ["""
//! -----BEGIN PUBLIC KEY-----
//! MCowBQYDK2VwAyEA…
//! -----END PUBLIC KEY-----
//! """]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use theory_core::attestation::PublicKey;
use theory_core::env::{looks_secret, names};
use theory_core::{EnvSnapshot, Failure};
use theory_protocol::ErrorCode;

/// The project file's name, at the project's root.
pub const PROJECT_FILE: &str = "theory.toml";
/// The largest project file read.
const MAX_BYTES: u64 = 256 * 1024;

/// Settings that guard spending: a committed file must not turn them off.
const GUARDS: &[&str] = &[names::CI, names::ALLOW_REAL_IN_CI, names::MODAL_ENABLED];

/// Whether a value is a URL with a password in it (`scheme://user:password@host…`).
fn carries_password(value: &str) -> bool {
    value.split_once("://").is_some_and(|(_, rest)| {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':'))
    })
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    /// Defaults of Theory's settings, by variable name.
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
    /// Whom the project trusts.
    #[serde(default)]
    trust: TrustTable,
}

/// `[trust]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustTable {
    /// Ed25519 public keys in PEM whose attestations are accepted.
    #[serde(default)]
    public_keys: Vec<String>,
}

fn invalid(file: &Path, message: impl std::fmt::Display) -> Failure {
    Failure::with_hint(
        ErrorCode::Usage,
        format!("{}: {message}", file.display()),
        "theory.toml holds [settings] NAME = \"value\" for Theory's settings (the README lists them) and [trust] public_keys = [PEM…]; secrets stay in the environment",
    )
}

/// Reads `root/theory.toml`; `None` when there is none.
fn read(root: &Path) -> Result<Option<(PathBuf, ProjectFile)>, Failure> {
    let file = root.join(PROJECT_FILE);
    if !file.exists() {
        return Ok(None);
    }
    let bytes = theory_core::files::read_regular_capped(&file, MAX_BYTES)
        .map_err(|error| invalid(&file, error))?;
    let text = String::from_utf8(bytes).map_err(|_| invalid(&file, "it is not UTF-8 text"))?;
    let parsed: ProjectFile =
        toml::from_str(&text).map_err(|error| invalid(&file, error.message()))?;
    Ok(Some((file, parsed)))
}

/// The public keys `root/theory.toml` trusts (`[trust] public_keys`), with where each is.
pub(crate) fn trusted_public_keys(root: &Path) -> Result<Vec<(PublicKey, String)>, Failure> {
    let Some((file, parsed)) = read(root)? else { return Ok(Vec::new()) };
    parsed
        .trust
        .public_keys
        .iter()
        .enumerate()
        .map(|(index, pem)| {
            let origin = format!("{} [trust] public_keys[{index}]", file.display());
            crate::trust::public_key_from_text(pem, &origin).map(|key| (key, origin))
        })
        .collect()
}

/// Reads `root/theory.toml`, when there is one, and returns `env` with its settings added where
/// the environment sets none.
pub fn with_project_defaults(root: &Path, env: EnvSnapshot) -> Result<EnvSnapshot, Failure> {
    let Some((file, parsed)) = read(root)? else { return Ok(env) };
    let mut defaults = Vec::with_capacity(parsed.settings.len());
    for (name, value) in parsed.settings {
        if looks_secret(&name) {
            return Err(invalid(
                &file,
                format!("{name} looks like a secret: keep it in the environment"),
            ));
        }
        if !names::ALL.contains(&name.as_str()) {
            return Err(invalid(&file, format!("{name} is not one of Theory's settings")));
        }
        if GUARDS.contains(&name.as_str()) {
            return Err(invalid(
                &file,
                format!(
                    "{name} guards spending and belongs to the machine that runs, not to a file anyone can commit"
                ),
            ));
        }
        let value = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Float(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            other => {
                return Err(invalid(
                    &file,
                    format!(
                        "{name} must be a string, a number or a boolean, found a {}",
                        other.type_str()
                    ),
                ));
            }
        };
        if carries_password(&value) {
            return Err(invalid(
                &file,
                format!(
                    "{name} holds a password (user:password@ in a URL): keep it in the environment"
                ),
            ));
        }
        defaults.push((name, value));
    }
    Ok(env.with_defaults(defaults))
}
