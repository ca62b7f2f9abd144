//! The one failure type of Theory's orchestrator side: what went wrong (a catalogue code and a
//! safe message), what to do about it (a hint), and what caused it (the source error, kept for
//! logs and `--verbose` chains). Runs turn it into an error envelope; the CLI maps it to an exit
//! status and the server to an HTTP status, each in one place.

use std::sync::Arc;

use theory_protocol::ErrorCode;

/// Why something failed, and what the user can do about it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Failure {
    /// The catalogue code.
    pub code: ErrorCode,
    /// What went wrong; never holds a secret value.
    pub message: String,
    /// What to do about it, when there is something to say.
    pub hint: Option<String>,
    /// The error underneath, when there is one.
    #[source]
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl PartialEq for Failure {
    /// Failures are equal when they say the same (their causes are not compared).
    fn eq(&self, other: &Failure) -> bool {
        (self.code == other.code) && self.message == other.message && self.hint == other.hint
    }
}

impl Eq for Failure {}

impl Failure {
    /// Builds a failure without a hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into(), hint: None, source: None }
    }

    /// Builds a failure with a hint.
    pub fn with_hint(
        code: ErrorCode,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Failure {
        Failure::new(code, message).hint(hint)
    }

    /// Adds a hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// Keeps the error that caused this one.
    #[must_use]
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Failure {
        self.source = Some(Arc::new(source));
        self
    }
}

impl From<crate::StoreError> for Failure {
    fn from(error: crate::StoreError) -> Failure {
        let code = match &error {
            // Where the owner can be named, callers use `collision::collision` instead.
            crate::StoreError::Exists { .. } => ErrorCode::Collision,
            _ => ErrorCode::Store,
        };
        Failure::new(code, error.to_string()).caused_by(error)
    }
}
