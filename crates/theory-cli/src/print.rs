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
