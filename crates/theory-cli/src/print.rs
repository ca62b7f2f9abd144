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

/// Prints one JSON document on one line of stdout (for a program reading it line by line).
pub(crate) fn print_json_line(value: &impl Serialize) {
    match serde_json::to_string(value) {
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
    if !QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("warning: {message}");
    }
}

/// Whether `-q/--quiet` was given: warnings are left unsaid.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `-q/--quiet` was given.
pub(crate) fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Records `-q/--quiet` for [`print_warning`].
pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Reports a failure of a command: `error:`/`hint:` on stderr and, with `--json`, the document
/// `{"ok":false,"error":{"code","message"},"hint"}` on stdout; returns the exit status
/// (`usage::exit_code`).
pub(crate) trait Report {
    /// Prints the failure and returns the exit status.
    fn report(&self, json: bool) -> std::process::ExitCode;
}

impl Report for theory_core::Failure {
    fn report(&self, json: bool) -> std::process::ExitCode {
        if json {
            print_json(&serde_json::json!({
                "ok": false,
                "error": {"code": self.code, "message": self.message},
                "hint": self.hint,
            }));
        }
        print_error(&format!("{}: {}", self.code, self.message), self.hint.as_deref());
        crate::usage::exit_code(self)
    }
}

/// A Docker failure as the command's failure.
pub(crate) fn docker_failure(error: theory_docker::DockerError) -> theory_core::Failure {
    theory_core::Failure::with_hint(
        theory_protocol::ErrorCode::Docker,
        error.to_string(),
        error.hint(),
    )
    .caused_by(error)
}

/// Reports a failure given by its parts (see [`Report`]).
pub(crate) fn fail(
    json: bool,
    code: theory_protocol::ErrorCode,
    message: &str,
    hint: Option<&str>,
) -> std::process::ExitCode {
    let mut failure = theory_core::Failure::new(code, message);
    failure.hint = hint.map(str::to_owned);
    failure.report(json)
}

/// Prints the completion script of `shell` for `theory` on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> std::process::ExitCode {
    let mut command = <crate::args::Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "theory", &mut script);
    write_document(&script, "the completion script")
}

/// Prints `theory`'s manual page (roff) on stdout: the command, its options and its
/// subcommands.
pub(crate) fn manual() -> std::process::ExitCode {
    let command = <crate::args::Cli as clap::CommandFactory>::command();
    let mut page = Vec::new();
    if let Err(error) = clap_mangen::Man::new(command).render(&mut page) {
        print_error(&format!("cannot render the manual: {error}"), None);
        return std::process::ExitCode::FAILURE;
    }
    write_document(&page, "the manual")
}

/// Writes a generated document on stdout; a reader that stops early (`| head`) is no error.
fn write_document(bytes: &[u8], what: &str) -> std::process::ExitCode {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            print_error(&format!("cannot write {what}: {error}"), None);
            std::process::ExitCode::FAILURE
        }
        _ => std::process::ExitCode::SUCCESS,
    }
}
