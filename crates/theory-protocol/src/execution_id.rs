//! Execution identifiers as they travel on the wire.

use std::fmt;
use std::str::FromStr;

const MAX_LEN: usize = 128;

/// The identifier of one execution: 1 to 128 characters of `[A-Za-z0-9._-]`, not starting with `.`.
///
/// The identifier becomes a path segment (`/artifacts/execution/{execution_id}/`), so anything that
/// could change the meaning of a path is refused here, at the edge.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExecutionId(String);

/// The reason a string is not an [`ExecutionId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid execution_id {value:?}: expected 1 to 128 characters of A-Z a-z 0-9 . _ - not starting with ."
)]
pub struct ExecutionIdError {
    value: String,
}

impl ExecutionId {
    /// Returns the identifier as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ExecutionId {
    type Err = ExecutionIdError;

    fn from_str(value: &str) -> Result<ExecutionId, ExecutionIdError> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if value.is_empty()
            || value.len() > MAX_LEN
            || value.starts_with('.')
            || !value.bytes().all(allowed)
        {
            return Err(ExecutionIdError { value: value.to_owned() });
        }
        Ok(ExecutionId(value.to_owned()))
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for ExecutionId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ExecutionId({})", self.0)
    }
}

crate::serde_via_str!(ExecutionId);

#[cfg(test)]
mod tests {
    use super::ExecutionId;

    #[test]
    fn accepts_common_forms() {
        for good in
            ["E1", "01JD6Z3W5Q8R4S9T0V1X2Y3Z4A", "3f2b9c1e-7a4d-4c2b-9e1f-0a1b2c3d4e5f", "run_1.a"]
        {
            assert_eq!(good.parse::<ExecutionId>().unwrap().as_str(), good);
        }
    }

    #[test]
    fn refuses_path_tricks() {
        let long = "a".repeat(129);
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "é", long.as_str()] {
            assert!(bad.parse::<ExecutionId>().is_err(), "{bad}");
        }
    }
}
