//! The project's signing key: `THEORY_SIGNING_KEY` (PEM text, or a PEM file's path), else
//! `.theory/keys/signing.pem`, made by `theory keys generate` readable by its owner only. A key
//! file others may read is refused: a signature is worth what the secret's keeping is.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use theory_core::attestation::SigningKey;
use theory_core::env::names;
use theory_core::{EnvSnapshot, Failure};
use theory_protocol::ErrorCode;

use crate::Project;

/// Where a signing key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `THEORY_SIGNING_KEY`'s PEM text.
    Environment,
    /// A PEM file: `THEORY_SIGNING_KEY`'s path, or the project's key.
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Environment => write!(formatter, "{}", names::SIGNING_KEY),
            KeySource::File(path) => write!(formatter, "{}", path.display()),
        }
    }
}

fn key_failure(message: String, hint: &str) -> Failure {
    Failure::with_hint(ErrorCode::Usage, message, hint)
}

impl Project {
    /// The project's key file, `.theory/keys/signing.pem`.
    pub fn signing_key_path(&self) -> PathBuf {
        self.state().join("keys").join("signing.pem")
    }

    /// The key that signs this project's runs, and where it came from; `None` when there is
    /// none (runs are then unsigned, and their receipts say so).
    pub fn signing_key(
        &self,
        env: &EnvSnapshot,
    ) -> Result<Option<(SigningKey, KeySource)>, Failure> {
        if let Some(value) = env.get(names::SIGNING_KEY).filter(|value| !value.trim().is_empty()) {
            if value.trim_start().starts_with("-----BEGIN") {
                let key = SigningKey::from_pem(value).map_err(|error| {
                    key_failure(
                        format!("{}: {error}", names::SIGNING_KEY),
                        "set it to a PKCS #8 Ed25519 key in PEM, or to the path of one (theory keys generate makes one)",
                    )
                })?;
                return Ok(Some((key, KeySource::Environment)));
            }
            let path = PathBuf::from(value);
            return read_key(&path).map(|key| Some((key, KeySource::File(path))));
        }
        let path = self.signing_key_path();
        if !path.exists() {
            return Ok(None);
        }
        read_key(&path).map(|key| Some((key, KeySource::File(path))))
    }

    /// Makes a new key at [`Project::signing_key_path`], readable by its owner only, and its
    /// public half beside it (`signing.pub.pem`); refuses to replace one unless `replace`.
    pub fn generate_signing_key(&self, replace: bool) -> Result<SigningKey, Failure> {
        let path = self.signing_key_path();
        let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
        std::fs::create_dir_all(&folder).map_err(|error| {
            key_failure(
                format!("cannot make {}: {error}", folder.display()),
                "check the project folder's permissions",
            )
        })?;
        let _ = std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700));
        if path.exists() && !replace {
            return Err(key_failure(
                format!("{} exists: this project has a signing key", path.display()),
                "theory keys show prints its public key; --force replaces it (runs signed with the old one then verify only with the old public key)",
            ));
        }
        let key =
            SigningKey::generate().map_err(|error| key_failure(error.to_string(), "try again"))?;
        let pem = key.to_pem().map_err(|error| key_failure(error.to_string(), "try again"))?;
        // Written whole under a temporary name with owner-only permissions, then moved in place.
        let temporary = folder.join(format!(".signing.{}.pem", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .and_then(|mut file| file.write_all(pem.as_bytes()).and_then(|()| file.sync_all()))
            .and_then(|()| std::fs::rename(&temporary, &path));
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(key_failure(
                format!("cannot write {}: {error}", path.display()),
                "check the project folder's permissions",
            ));
        }
        let public = folder.join("signing.pub.pem");
        std::fs::write(&public, key.public().to_pem()).map_err(|error| {
            key_failure(
                format!("cannot write {}: {error}", public.display()),
                "check the project folder's permissions",
            )
        })?;
        Ok(key)
    }
}

/// Reads a key file, refusing one that others than its owner may read.
fn read_key(path: &Path) -> Result<SigningKey, Failure> {
    let metadata = std::fs::metadata(path).map_err(|error| {
        key_failure(
            format!("the signing key {}: {error}", path.display()),
            "theory keys generate makes one, or set THEORY_SIGNING_KEY",
        )
    })?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(key_failure(
            format!(
                "the signing key {} may be read by others (mode {:o})",
                path.display(),
                metadata.permissions().mode() & 0o777
            ),
            &format!("chmod 600 {}", path.display()),
        ));
    }
    let pem = std::fs::read_to_string(path).map_err(|error| {
        key_failure(format!("the signing key {}: {error}", path.display()), "check its permissions")
    })?;
    SigningKey::from_pem(&pem).map_err(|error| {
        key_failure(
            format!("the signing key {}: {error}", path.display()),
            "theory keys generate --force makes a new one",
        )
    })
}
