//! Execution modes: `mock` (hermetic, deterministic) and `real` (real provider, real secrets).

use std::fmt;
use std::str::FromStr;

/// How a processor runs: without or with external calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// No network call, no secret, the same outputs for the same inputs.
    #[default]
    Mock,
    /// The real provider with real secrets.
    Real,
}

/// The reason a string is not a [`Mode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode {value:?}: expected mock or real")]
pub struct ModeError {
    value: String,
}

impl Mode {
    /// Returns the wire form, `mock` or `real`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Mock => "mock",
            Mode::Real => "real",
        }
    }

    /// Parses a mode or one of the original system's deprecated aliases (`smoke` → mock,
    /// `default` → real), any case. The second value names the alias when one was used.
    pub fn parse_with_alias(value: &str) -> Result<(Mode, Option<&'static str>), ModeError> {
        match value.to_ascii_lowercase().as_str() {
            "mock" => Ok((Mode::Mock, None)),
            "real" => Ok((Mode::Real, None)),
            "smoke" => Ok((Mode::Mock, Some("smoke"))),
            "default" => Ok((Mode::Real, Some("default"))),
            _ => Err(ModeError { value: value.to_owned() }),
        }
    }
}

impl FromStr for Mode {
    type Err = ModeError;

    fn from_str(value: &str) -> Result<Mode, ModeError> {
        Mode::parse_with_alias(value).map(|(mode, _)| mode)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

crate::serde_via_str!(Mode);

#[cfg(test)]
mod tests {
    use super::Mode;

    #[test]
    fn aliases_map_to_the_two_modes() {
        assert_eq!(Mode::parse_with_alias("SMOKE").unwrap(), (Mode::Mock, Some("smoke")));
        assert_eq!(Mode::parse_with_alias("default").unwrap(), (Mode::Real, Some("default")));
        assert_eq!("Real".parse::<Mode>().unwrap(), Mode::Real);
        assert!("fast".parse::<Mode>().is_err());
    }
}
