//! Errors in how a command was called — a bad flag or argument, a bad setting — and the one
//! place failures become exit statuses.

use std::process::ExitCode;

use theory_core::Failure;
use theory_protocol::ErrorCode;

/// A bad value on the command line (`ERR_USAGE`, exit status 2).
pub(crate) fn usage(message: impl Into<String>, hint: impl Into<String>) -> Failure {
    Failure::with_hint(ErrorCode::Usage, message, hint)
}

/// The exit status of a command that failed: 2 when it was called wrongly (a flag, an argument
/// or a setting: `ERR_USAGE`, `ERR_CONFIG`), else 1. (A run cancelled by a signal exits
/// 128 + the signal, see `signals.rs`.)
pub(crate) fn exit_code(failure: &Failure) -> ExitCode {
    match failure.code {
        ErrorCode::Usage | ErrorCode::Config => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}
