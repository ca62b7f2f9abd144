//! The environment, read once: variable names Theory reads, a snapshot of their values, and the
//! redactor that keeps secret values out of every output.

use std::collections::BTreeMap;

/// Names of the environment variables the orchestrator reads.
pub mod names {
    /// `true`/`1` (any case) in CI: real runs are refused unless explicitly allowed.
    pub const CI: &str = "CI";
    /// `1` allows real runs in CI.
    pub const ALLOW_REAL_IN_CI: &str = "THEORY_ALLOW_REAL_IN_CI";
    /// Folders to look for processor binaries in, `:`-separated, before the `theory` binary's own
    /// folder and `PATH`.
    pub const PROCESSOR_PATH: &str = "THEORY_PROCESSOR_PATH";
    /// The project folder (holding `registry/` and `.theory/`); default: found upward from the
    /// working directory.
    pub const PROJECT: &str = "THEORY_PROJECT";
    /// `json` for JSON log lines on stderr.
    pub const LOG_FORMAT: &str = "THEORY_LOG_FORMAT";
    /// Log filter for processors started by the `process` runtime (default `warn`).
    pub const PROCESSOR_LOG: &str = "THEORY_PROCESSOR_LOG";
    /// Seconds a started processor has to become healthy (default 30).
    pub const START_TIMEOUT_S: &str = "THEORY_START_TIMEOUT_S";
    /// The local runtime when `--adapter-opts-json` names none: `process`, `docker` or `auto`
    /// (the default: Docker when it answers and the image is here).
    pub const LOCAL_RUNTIME: &str = "THEORY_LOCAL_RUNTIME";
    /// The most bytes a run's inputs may have (`--inputs-json`, `--inputs-file`, `--inputs -`);
    /// default 64 MiB.
    pub const MAX_INPUTS_BYTES: &str = "THEORY_MAX_INPUTS_BYTES";
}

/// The environment as it was when the command started; tests build their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSnapshot {
    vars: BTreeMap<String, String>,
}

impl EnvSnapshot {
    /// Reads the process environment (variables that are not valid UTF-8 are skipped).
    pub fn capture() -> EnvSnapshot {
        EnvSnapshot { vars: std::env::vars().collect() }
    }

    /// Builds a snapshot from pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> EnvSnapshot {
        EnvSnapshot {
            vars: pairs
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        }
    }

    /// Returns a variable's value; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|value| !value.is_empty())
    }

    /// Returns whether CI is set to `true` or `1`, in any case.
    pub fn in_ci(&self) -> bool {
        self.get(names::CI).is_some_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
    }

    /// Returns every variable.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

/// Returns whether a variable name looks like it holds a secret.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["_KEY", "_TOKEN", "_SECRET", "SECRET_", "PASSWORD", "CREDENTIALS"]
        .iter()
        .any(|mark| upper.contains(mark))
        || upper.ends_with("SECRET")
        || upper.ends_with("_PAT")
}

/// Replaces secret values with `[REDACTED]`. Built from the environment: every variable that a
/// spec declares as a secret or whose name looks like one.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

/// Values shorter than this are not redacted: they would mangle ordinary text.
const MIN_SECRET_CHARS: usize = 6;

impl Redactor {
    /// Collects the values to hide: variables named in `declared` or that look secret.
    pub fn from_env<'a>(
        env: &EnvSnapshot,
        declared: impl IntoIterator<Item = &'a str>,
    ) -> Redactor {
        let declared: Vec<&str> = declared.into_iter().collect();
        let mut values: Vec<String> = env
            .iter()
            .filter(|(name, value)| {
                (declared.contains(name) || looks_secret(name)) && value.len() >= MIN_SECRET_CHARS
            })
            .map(|(_, value)| value.to_owned())
            .collect();
        // Longest first, so a secret that contains another is hidden whole.
        values.sort_by_key(|value| std::cmp::Reverse(value.len()));
        values.dedup();
        Redactor { values }
    }

    /// Returns `text` with every secret value replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for value in &self.values {
            if text.contains(value.as_str()) {
                text = text.replace(value.as_str(), "[REDACTED]");
            }
        }
        text
    }

    /// Returns whether `text` holds any secret value.
    pub fn leaks(&self, text: &str) -> bool {
        self.values.iter().any(|value| text.contains(value.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::{EnvSnapshot, Redactor, looks_secret};

    #[test]
    fn ci_detection() {
        assert!(EnvSnapshot::from_pairs([("CI", "TRUE")]).in_ci());
        assert!(EnvSnapshot::from_pairs([("CI", "1")]).in_ci());
        assert!(!EnvSnapshot::from_pairs([("CI", "false")]).in_ci());
        assert!(!EnvSnapshot::from_pairs([("CI", "")]).in_ci());
    }

    #[test]
    fn redacts_declared_and_secret_looking_values() {
        let env = EnvSnapshot::from_pairs([
            ("OPENAI_API_KEY", "sk-canary-123456"),
            ("CUSTOM", "plain-value-1"),
            ("MY_TOKEN", "tok-abcdef"),
            ("HOME", "/root"),
        ]);
        let redactor = Redactor::from_env(&env, ["CUSTOM"]);
        assert_eq!(
            redactor.redact("a sk-canary-123456 b plain-value-1 tok-abcdef /root"),
            "a [REDACTED] b [REDACTED] [REDACTED] /root"
        );
        assert!(looks_secret("AWS_SECRET_ACCESS_KEY") && looks_secret("GITHUB_PAT"));
        assert!(!looks_secret("PATH") && !looks_secret("LD_LIBRARY_PATH"));
    }
}
