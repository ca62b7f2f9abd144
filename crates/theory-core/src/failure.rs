//! A run failure before it becomes an error envelope: the code, a safe message, and a hint.

use theory_protocol::ErrorCode;

/// Why a run failed, and what the user can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Failure {
    /// The catalogue code.
    pub code: ErrorCode,
    /// What went wrong; never holds a secret value.
    pub message: String,
    /// What to do about it, when there is something to say.
    pub hint: Option<String>,
}

impl Failure {
    /// Builds a failure without a hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into(), hint: None }
    }

    /// Adds a hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }
}

impl From<crate::AdapterError> for Failure {
    fn from(error: crate::AdapterError) -> Failure {
        Failure { code: error.code, message: error.message, hint: error.hint }
    }
}

impl From<crate::StoreError> for Failure {
    fn from(error: crate::StoreError) -> Failure {
        let code = match &error {
            // Where the owner can be named, callers use `collision::collision` instead.
            crate::StoreError::Exists { .. } => ErrorCode::Collision,
            _ => ErrorCode::Store,
        };
        Failure::new(code, error.to_string())
    }
}
