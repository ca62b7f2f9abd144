//! What goes to the terminal: one document on stdout, `error:`/`warning:`/`hint:` lines on stderr.

use serde::Serialize;

/// Writes a line of the command's document to stdout: the one place that does.
pub(crate) fn out(text: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Prints one JSON document on stdout.
pub(crate) fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => out(text),
        Err(error) => eprintln!("error: cannot encode the result as JSON: {error}"),
    }
}

/// Prints `error: …` and, when there is one, `hint: …` on stderr.
pub(crate) fn print_error(message: &str, hint: Option<&str>) {
    eprintln!("error: {message}");
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

/// Prints `warning: …` on stderr.
pub(crate) fn print_warning(message: &str) {
    eprintln!("warning: {message}");
}

/// A failed operation of a command other than `run`: printed by [`OpError::report`].
#[derive(Debug)]
pub(crate) struct OpError {
    pub(crate) code: theory_protocol::ErrorCode,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl OpError {
    pub(crate) fn new(
        code: theory_protocol::ErrorCode,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> OpError {
        OpError { code, message: message.into(), hint: Some(hint.into()) }
    }

    /// Prints `error:`/`hint:` on stderr and, with `--json`, a document
    /// `{"ok":false,"error":{"code","message"},"hint"}` on stdout. Returns exit status 1.
    pub(crate) fn report(&self, json: bool) -> std::process::ExitCode {
        if json {
            print_json(&serde_json::json!({
                "ok": false,
                "error": {"code": self.code, "message": self.message},
                "hint": self.hint,
            }));
        }
        print_error(&format!("{}: {}", self.code, self.message), self.hint.as_deref());
        std::process::ExitCode::FAILURE
    }
}

impl From<theory_core::AdapterError> for OpError {
    fn from(error: theory_core::AdapterError) -> OpError {
        OpError { code: error.code, message: error.message, hint: error.hint }
    }
}

impl From<theory_docker::DockerError> for OpError {
    fn from(error: theory_docker::DockerError) -> OpError {
        OpError::new(theory_protocol::ErrorCode::Docker, error.to_string(), error.hint())
    }
}

/// Reports a failed operation (see [`OpError::report`]).
pub(crate) fn fail(
    json: bool,
    code: theory_protocol::ErrorCode,
    message: &str,
    hint: Option<&str>,
) -> std::process::ExitCode {
    OpError { code, message: message.to_owned(), hint: hint.map(str::to_owned) }.report(json)
}
