//! Running the `theory` binary in a project folder of its own, with a controlled environment.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sqlx::Connection;

/// The inputs of the quick start.
pub(crate) const HELLO: &str = r#"{"messages":[{"role":"user","content":"Hello"}]}"#;

/// What one invocation did.
pub(crate) struct Outcome {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Outcome {
    /// The whole outcome as one text, for snapshots.
    pub(crate) fn transcript(&self) -> String {
        format!("exit: {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!("stdout is not one JSON document ({error}):\n{}", self.transcript())
        })
    }
}

/// A throwaway project folder.
pub(crate) struct Project {
    folder: tempfile::TempDir,
    env: Vec<(String, String)>,
}

pub(crate) fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_theory"))
}

/// The folder holding `theory` and, after `cargo build --workspace`, the processor binaries.
pub(crate) fn binaries() -> PathBuf {
    let folder = binary().parent().expect("a folder").to_path_buf();
    assert!(
        ["llm-litellm", "theory-probe", "image-thumbnail"]
            .iter()
            .all(|name| folder.join(name).is_file()),
        "the processor binaries are missing from {}: run `cargo build --workspace` first (scripts/test does)",
        folder.display()
    );
    folder
}

impl Project {
    pub(crate) fn new() -> Project {
        Project { folder: tempfile::tempdir().expect("temp dir"), env: Vec::new() }
    }

    pub(crate) fn path(&self) -> &Path {
        self.folder.path()
    }

    /// The variables set with [`Project::env`].
    pub(crate) fn env_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// Passes on the home folder and pip's index and cache settings, when this machine has them
    /// (what preparing a Python processor's environment reads).
    pub(crate) fn with_pip_settings(mut self) -> Project {
        for name in ["HOME", "PIP_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"] {
            if let Ok(value) = std::env::var(name) {
                self = self.env(name, &value);
            }
        }
        self
    }

    /// Sets an environment variable for every later invocation.
    pub(crate) fn env(mut self, name: &str, value: &str) -> Project {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn run(&self, args: &[&str]) -> Outcome {
        self.run_with_stdin(args, None)
    }

    /// Runs `theory run --ref llm/litellm@1 --inputs-json <Hello>` with `extra` flags.
    pub(crate) fn run_hello(&self, extra: &[&str]) -> Outcome {
        let mut args = vec!["run", "--ref", "llm/litellm@1", "--inputs-json", HELLO];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Runs with one of the project's variables unset.
    pub(crate) fn run_unset(&self, unset: &str, args: &[&str]) -> Outcome {
        self.invoke(args, None, Some(unset))
    }

    pub(crate) fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        self.invoke(args, stdin, None)
    }

    /// The command `invoke` runs, with the project's environment; output not captured.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        self.command_without(args, None)
    }

    fn command_without(&self, args: &[&str], unset: Option<&str>) -> Command {
        let mut command = Command::new(binary());
        // A clean environment: no CI, no keys, no colours, quiet logs unless a test asks.
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("THEORY_PROCESSOR_PATH", binaries())
            // This folder is the project even under a folder that holds another one.
            .env("THEORY_PROJECT", self.path())
            .env("THEORY_LOG", "warn")
            // The host binaries unless a test asks for Docker (its tests set `auto` or `docker`).
            .env("THEORY_LOCAL_RUNTIME", "process")
            .env("NO_COLOR", "1")
            .current_dir(self.path())
            .args(args);
        for (name, value) in &self.env {
            if Some(name.as_str()) != unset {
                command.env(name, value);
            }
        }
        command
    }

    fn invoke(&self, args: &[&str], stdin: Option<&str>, unset: Option<&str>) -> Outcome {
        let mut command = self.command_without(args, unset);
        command
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("theory starts");
        if let Some(text) = stdin {
            child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write stdin");
        }
        let output = child.wait_with_output().expect("theory finishes");
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Writes `registry/processors/{file}`: the built-in probe's spec renamed `reference`, with
    /// `edit` applied. Returns the file.
    pub(crate) fn probe_variant(
        &self,
        reference: &str,
        file: &str,
        edit: impl FnOnce(String) -> String,
    ) -> PathBuf {
        let spec = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../registry/processors/theory-probe.yaml"),
        )
        .expect("the built-in probe spec")
        .replace("theory/probe@1", reference);
        let folder = self.path().join("registry/processors");
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join(file);
        std::fs::write(&path, edit(spec)).unwrap();
        path
    }

    /// Every file under `.theory/`, relative.
    pub(crate) fn state_files(&self) -> Vec<String> {
        let mut files = Vec::new();
        collect(&self.path().join(".theory"), self.path(), &mut files);
        files.sort();
        files
    }
}

/// Every file under `folder`, at any depth (none when it does not exist).
pub(crate) fn files_under(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() { files_under(&path) } else { vec![path] }
        })
        .collect()
}

fn collect(folder: &Path, base: &Path, files: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, base, files);
        } else {
            files.push(path.strip_prefix(base).unwrap_or(&path).display().to_string());
        }
    }
}

/// Runs `assert` on a transcript with run-specific values replaced.
#[macro_export]
macro_rules! assert_transcript {
    ($name:expr, $outcome:expr) => {
        insta::with_settings!({filters => vec![
            (r"\b[0-9A-HJKMNP-TV-Z]{26}\b", "[EXECUTION_ID]"),
            (r"b3:[0-9a-f]{64}", "[B3]"),
            (r#""duration_ms": \d+"#, r#""duration_ms": "[MS]""#),
            (r"/tmp/[^\s:]+", "[TMP]"),
        ]}, {
            insta::assert_snapshot!($name, $outcome.transcript());
        });
    };
}

/// A fresh PostgreSQL database for one test (dropped and created on the server
/// `THEORY_TEST_POSTGRES_URL`, default the one `scripts/services/postgres` starts); returns its URL.
pub(crate) fn postgres_database(name: &str) -> String {
    let admin = std::env::var("THEORY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".into());
    let name = format!("{name}_{}", std::process::id());
    postgres(
        &admin,
        &[&format!("DROP DATABASE IF EXISTS {name}"), &format!("CREATE DATABASE {name}")],
    );
    format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
}

/// Runs statements on a PostgreSQL database.
pub(crate) fn postgres(url: &str, statements: &[&str]) {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let mut connection = sqlx::PgConnection::connect(url).await.unwrap_or_else(|error| {
            panic!("no PostgreSQL at {url} ({error}): scripts/services/postgres start (scripts/test does)")
        });
        for statement in statements {
            sqlx::query(statement).execute(&mut connection).await.unwrap();
        }
    });
}
