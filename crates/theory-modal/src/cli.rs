//! The official `modal` CLI, driven as a child process: found on `PATH` (or at `THEORY_MODAL_BIN`),
//! given Modal's credentials by Modal's own means (`MODAL_TOKEN_ID`/`MODAL_TOKEN_SECRET` or the
//! profile `modal token new` writes), and asked for JSON where it has it. Its output is kept for
//! errors; secret values only ever reach it in a private temporary file, never in its arguments.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use theory_core::{EnvSnapshot, Failure};
use theory_protocol::ErrorCode;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::naming::ModalEnv;
use theory_core::env::names;

/// Overrides where the `modal` program is.
pub const BIN_VARIABLE: &str = names::MODAL_BIN;
/// The install command named when `modal` is missing.
pub const INSTALL: &str = "pip install modal";

/// The `modal` program and the environment it runs with.
#[derive(Debug, Clone)]
pub struct ModalCli {
    program: PathBuf,
}

/// What one `modal` command printed.
#[derive(Debug, Clone)]
pub struct Printed {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

fn modal_error(message: impl Into<String>, hint: impl Into<String>) -> Failure {
    Failure::with_hint(ErrorCode::Modal, message, hint)
}

/// The last lines of a command's output, for an error message.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(6)..].join(" | ")
}

impl ModalCli {
    /// Finds `modal`: `THEORY_MODAL_BIN`, else the first `modal` on `PATH`.
    pub fn find(env: &EnvSnapshot) -> Result<ModalCli, Failure> {
        if let Some(program) = env.get(BIN_VARIABLE).filter(|path| !path.is_empty()) {
            let program = PathBuf::from(program);
            return if program.is_file() {
                Ok(ModalCli { program })
            } else {
                Err(modal_error(
                    format!("{BIN_VARIABLE} names {}, which is not a file", program.display()),
                    format!(
                        "unset {BIN_VARIABLE} to use `modal` from PATH, or install it: {INSTALL}"
                    ),
                ))
            };
        }
        let path = env.get("PATH").unwrap_or_default();
        std::env::split_paths(path)
            .map(|folder| folder.join("modal"))
            .find(|candidate| is_executable(candidate))
            .map(|program| ModalCli { program })
            .ok_or_else(|| {
                modal_error(
                    "the modal CLI is not installed (no `modal` on PATH)",
                    format!("install it with `{INSTALL}`, then log in with `modal token new`"),
                )
            })
    }

    /// The program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    fn command(&self, env: ModalEnv, arguments: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(arguments).arg("--env").arg(env.as_str()).kill_on_drop(true);
        command
    }

    /// Runs `modal ARGUMENTS --env ENV` with `extra` variables and waits; a failure quotes the
    /// end of what it printed.
    pub async fn run(
        &self,
        env: ModalEnv,
        arguments: &[&str],
        extra: &[(&str, String)],
        folder: Option<&Path>,
    ) -> Result<Printed, Failure> {
        let mut command = self.command(env, arguments);
        command.envs(extra.iter().map(|(name, value)| (*name, value.as_str())));
        if let Some(folder) = folder {
            command.current_dir(folder);
        }
        let output = command.stdin(Stdio::null()).output().await.map_err(|error| {
            modal_error(
                format!("cannot run {}: {error}", self.program.display()),
                format!("reinstall the modal CLI: {INSTALL}"),
            )
        })?;
        let printed = Printed {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        if output.status.success() {
            return Ok(printed);
        }
        let said = tail(&format!("{}\n{}", printed.stderr, printed.stdout));
        Err(modal_error(
            format!("`modal {}` failed ({}): {said}", arguments.join(" "), output.status),
            "check the message above; `modal token current` shows whom the CLI acts as",
        ))
    }

    /// `modal deploy --env ENV -m modal_app` in `folder` with the module's variables; returns the
    /// web endpoint's URL as the CLI reports it.
    pub async fn deploy(
        &self,
        env: ModalEnv,
        folder: &Path,
        variables: &[(&'static str, String)],
    ) -> Result<String, Failure> {
        let mut extra: Vec<(&str, String)> = variables.to_vec();
        extra.push(("PYTHONPATH", folder.display().to_string()));
        let printed = self
            .run(env, &["deploy", "-m", crate::module::MODULE_NAME], &extra, Some(folder))
            .await?;
        endpoint_url(&format!("{}\n{}", printed.stdout, printed.stderr)).ok_or_else(|| {
            modal_error(
                "`modal deploy` succeeded but printed no web endpoint URL",
                "see the app in Modal's dashboard; `theory modal status` shows what is recorded",
            )
        })
    }

    /// `modal app stop --yes APP`.
    pub async fn stop(&self, env: ModalEnv, app: &str) -> Result<(), Failure> {
        self.run(env, &["app", "stop", "--yes", app], &[], None).await.map(|_| ())
    }

    /// `modal app list --json`: every app of the environment.
    pub async fn apps(&self, env: ModalEnv) -> Result<Vec<Value>, Failure> {
        let printed = self.run(env, &["app", "list", "--json"], &[], None).await?;
        json_rows(&printed.stdout, "modal app list --json")
    }

    /// `modal secret list --json`: the names of the environment's secrets.
    pub async fn secret_names(&self, env: ModalEnv) -> Result<Vec<String>, Failure> {
        let printed = self.run(env, &["secret", "list", "--json"], &[], None).await?;
        Ok(json_rows(&printed.stdout, "modal secret list --json")?
            .iter()
            .filter_map(|row| field(row, &["Name", "name"]))
            .collect())
    }

    /// Creates (or with `replace`, overwrites) the secret `name` holding `name=value`. The value
    /// goes through a temporary file only this user can read, removed at once.
    pub async fn put_secret(
        &self,
        env: ModalEnv,
        name: &str,
        value: &str,
        replace: bool,
    ) -> Result<(), Failure> {
        let file = private_json(&serde_json::json!({ name: value })).map_err(|error| {
            modal_error(format!("cannot write a private temporary file: {error}"), "check TMPDIR")
        })?;
        let path = file.path().display().to_string();
        let mut arguments = vec!["secret", "create", "--from-json", path.as_str()];
        if replace {
            arguments.push("--force");
        }
        arguments.push(name);
        self.run(env, &arguments, &[], None).await.map(|_| ())
    }

    /// `modal app logs APP [-f] [-n N]`: each line to `line` as it comes.
    pub async fn logs(
        &self,
        env: ModalEnv,
        app: &str,
        follow: bool,
        tail_lines: Option<usize>,
        mut line: impl FnMut(&str),
    ) -> Result<(), Failure> {
        let tail_text = tail_lines.map(|count| count.to_string());
        let mut arguments = vec!["app", "logs", app];
        if follow {
            arguments.push("--follow");
        }
        if let Some(count) = &tail_text {
            arguments.extend(["--tail", count.as_str()]);
        }
        let mut child = self
            .command(env, &arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| {
                modal_error(format!("cannot run {}: {error}", self.program.display()), INSTALL)
            })?;
        let stdout = child.stdout.take().map(|stdout| BufReader::new(stdout).lines());
        if let Some(mut lines) = stdout {
            while let Ok(Some(text)) = lines.next_line().await {
                line(&text);
            }
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            use tokio::io::AsyncReadExt;
            let _ = pipe.read_to_string(&mut stderr).await;
        }
        let status = child.wait().await.map_err(|error| modal_error(error.to_string(), INSTALL))?;
        if status.success() {
            Ok(())
        } else {
            Err(modal_error(
                format!("`modal app logs {app}` failed ({status}): {}", tail(&stderr)),
                "check that the app is deployed: `theory modal status --ref … --env …`",
            ))
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// The web endpoint's URL in what `modal deploy` printed: the one after `=>` on the "web
/// function" line, else the first URL that is not Modal's dashboard.
pub fn endpoint_url(printed: &str) -> Option<String> {
    let is_url = |word: &&str| word.starts_with("https://") || word.starts_with("http://");
    let clean = |url: &str| url.trim_end_matches(['.', ',', ')']).trim_end_matches('/').to_owned();
    let after_arrow = printed
        .lines()
        .filter_map(|line| line.split_once("=>").map(|(_, rest)| rest.trim()))
        .find_map(|rest| rest.split_whitespace().find(is_url).map(clean));
    after_arrow.or_else(|| {
        printed
            .split_whitespace()
            .filter(is_url)
            .find(|url| !url.starts_with("https://modal.com/"))
            .map(clean)
    })
}

/// The rows of a `--json` listing: an array of objects.
fn json_rows(stdout: &str, what: &str) -> Result<Vec<Value>, Failure> {
    match serde_json::from_str::<Value>(stdout.trim()) {
        Ok(Value::Array(rows)) => Ok(rows),
        _ => Err(modal_error(
            format!("`{what}` did not print a JSON array"),
            "update the modal CLI: pip install --upgrade modal",
        )),
    }
}

/// The first of `names` that `row` has as a string.
pub(crate) fn field(row: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| row.get(*name).and_then(Value::as_str)).map(str::to_owned)
}

/// A JSON document in a temporary file only this user can read.
fn private_json(document: &Value) -> std::io::Result<tempfile::NamedTempFile> {
    let mut file =
        tempfile::Builder::new().prefix("theory-modal-secret-").suffix(".json").tempfile()?;
    // tempfile creates files 0600.
    file.write_all(document.to_string().as_bytes())?;
    file.flush()?;
    Ok(file)
}

/// Whether Modal's credentials are here: both `MODAL_TOKEN_ID` and `MODAL_TOKEN_SECRET`, or the
/// profile file (`MODAL_CONFIG_PATH`, else `~/.modal.toml`).
pub fn check_credentials(env: &EnvSnapshot) -> Result<(), Failure> {
    let set = |name: &str| env.get(name).is_some_and(|value| !value.is_empty());
    if set(names::MODAL_TOKEN_ID) && set(names::MODAL_TOKEN_SECRET) {
        return Ok(());
    }
    let profile = env
        .get(names::MODAL_CONFIG_PATH)
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|home| Path::new(home).join(".modal.toml")));
    if profile.as_deref().is_some_and(Path::is_file) {
        return Ok(());
    }
    Err(modal_error(
        "no Modal credentials: MODAL_TOKEN_ID and MODAL_TOKEN_SECRET are not both set, and there is no ~/.modal.toml",
        "log in with `modal token new`, or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET (from modal.com/settings/tokens)",
    ))
}

#[cfg(test)]
mod tests {
    use super::endpoint_url;

    #[test]
    fn the_endpoint_url_is_found_in_what_deploy_prints() {
        let printed = "✓ Created objects.\n├── 🔨 Created mount /x\n└── 🔨 Created web function serve => https://acme--llm-litellm-serve.modal.run\n✓ App deployed in 2.1s! 🎉\n\nView Deployment: https://modal.com/apps/acme/main/deployed/llm-litellm";
        assert_eq!(
            endpoint_url(printed).as_deref(),
            Some("https://acme--llm-litellm-serve.modal.run")
        );
        assert_eq!(endpoint_url("nothing here"), None);
    }
}
