//! Whom a project trusts to have signed a run: the public keys in `registry/keys/*.pem` (shared
//! with the registry), in `theory.toml`'s `[trust] public_keys`, and the public half of the
//! project's own signing key. `theory verify` checks attestations against them (and any
//! `--key`); once there is one, the memo cache serves only hits whose attestation verifies.
//! Public keys are read the same way wherever they are: [`public_key_from_text`].

use std::path::Path;
use std::sync::Arc;

use theory_core::attestation::PublicKey;
use theory_core::{EnvSnapshot, Failure, Orchestrator};
use theory_protocol::ErrorCode;

use crate::Project;

/// The largest key file read.
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// A trusted public key and where it was found.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The key.
    pub key: PublicKey,
    /// Where it was found (a file, a table of `theory.toml`, the signing key).
    pub source: String,
}

/// A public key in PEM, from `origin` (a file, a table); a private key is refused, whatever
/// else the text holds.
pub fn public_key_from_text(text: &str, origin: &str) -> Result<PublicKey, Failure> {
    if text.contains("PRIVATE KEY") {
        return Err(public_key_failure(
            origin,
            "a private key, where only public halves belong: remove it, and make a new key if it was shared",
        ));
    }
    PublicKey::from_pem(text).map_err(|error| public_key_failure(origin, &error.to_string()))
}

/// Reads a public key file (`registry/keys/*.pem`, `theory verify --key`).
pub fn read_public_key(file: &Path) -> Result<PublicKey, Failure> {
    let origin = file.display().to_string();
    let bytes = theory_core::files::read_regular_capped(file, MAX_KEY_BYTES)
        .map_err(|error| public_key_failure(&origin, &error.to_string()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| public_key_failure(&origin, "not UTF-8 text"))?;
    public_key_from_text(&text, &origin)
}

fn public_key_failure(origin: &str, message: &str) -> Failure {
    Failure::with_hint(
        ErrorCode::Usage,
        format!("{origin}: {message}"),
        "a public key in PEM is wanted (`theory keys show` prints one)",
    )
}

/// Reads `registry/keys/*.pem`, in name order.
fn registry_keys(folder: &Path) -> Result<Vec<TrustedKey>, Failure> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(public_key_failure(&folder.display().to_string(), &error.to_string()));
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|error| public_key_failure(&folder.display().to_string(), &error.to_string()))?
            .path();
        let hidden = path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.'));
        if path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("pem")) {
            files.push(path);
        } else if !hidden && !path.is_dir() {
            tracing::warn!(file = %path.display(), "registry/keys/ holds public keys as NAME.pem; this file is not read");
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let key = read_public_key(&file)?;
            Ok(TrustedKey { key, source: file.display().to_string() })
        })
        .collect()
}

impl Project {
    /// The public keys this project trusts, each once, with where it was found.
    pub fn trusted_keys(&self, env: &EnvSnapshot) -> Result<Vec<TrustedKey>, Failure> {
        let own = self.signing_key(env)?.map(|(key, source)| (key.public().clone(), source));
        self.trusted_with(own)
    }

    fn trusted_with(
        &self,
        own: Option<(PublicKey, crate::KeySource)>,
    ) -> Result<Vec<TrustedKey>, Failure> {
        let mut keys = registry_keys(&self.root().join("registry").join("keys"))?;
        keys.extend(
            crate::project_file::trusted_public_keys(self.root())?
                .into_iter()
                .map(|(key, source)| TrustedKey { key, source }),
        );
        if let Some((key, source)) = own {
            keys.push(TrustedKey { key, source: format!("the signing key ({source})") });
        }
        let mut seen = std::collections::HashSet::new();
        keys.retain(|trusted| seen.insert(trusted.key.key_id().to_owned()));
        Ok(keys)
    }
}

/// Gives `orchestrator` the project's signing key (from its settings), and makes its memo cache
/// trust only what the project trusts.
pub fn sign_and_trust(orchestrator: &mut Orchestrator, project: &Project) -> Result<(), Failure> {
    let signing = project.signing_key(&orchestrator.env)?;
    let own = signing.as_ref().map(|(key, source)| (key.public().clone(), source.clone()));
    let trusted = project.trusted_with(own)?.into_iter().map(|trusted| trusted.key).collect();
    orchestrator.signer = signing.map(|(key, _)| Arc::new(key));
    orchestrator.memo = orchestrator.memo.clone().trusting(trusted);
    Ok(())
}
