//! The closed sets a run is described by — where it runs ([`AdapterKind`]) and how
//! ([`Runtime`]) — parsed once at the edge; the wire and the ledger see their names.

use std::fmt;
use std::str::FromStr;

/// Where a processor runs: this machine or Modal's cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdapterKind {
    /// This host: a process or a Docker container.
    Local,
    /// A Modal deployment.
    Modal,
}

/// How a processor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    /// The processor's own binary on this host.
    Process,
    /// A container of the processor's image on this host.
    Docker,
    /// A Modal deployment of the processor's image.
    Modal,
}

/// A name that is not one of a closed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{found:?} is not {expected}")]
pub struct UnknownKind {
    /// What was given.
    pub found: String,
    /// What would have been accepted, in words.
    pub expected: &'static str,
}

impl AdapterKind {
    /// Returns the name: `local` or `modal`.
    pub fn as_str(self) -> &'static str {
        match self {
            AdapterKind::Local => "local",
            AdapterKind::Modal => "modal",
        }
    }
}

impl Runtime {
    /// Returns the name: `process`, `docker` or `modal`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Process => "process",
            Runtime::Docker => "docker",
            Runtime::Modal => "modal",
        }
    }
}

impl FromStr for AdapterKind {
    type Err = UnknownKind;

    fn from_str(text: &str) -> Result<AdapterKind, UnknownKind> {
        match text {
            "local" => Ok(AdapterKind::Local),
            "modal" => Ok(AdapterKind::Modal),
            _ => Err(UnknownKind { found: text.to_owned(), expected: "local or modal" }),
        }
    }
}

impl FromStr for Runtime {
    type Err = UnknownKind;

    fn from_str(text: &str) -> Result<Runtime, UnknownKind> {
        match text {
            "process" => Ok(Runtime::Process),
            "docker" => Ok(Runtime::Docker),
            "modal" => Ok(Runtime::Modal),
            _ => Err(UnknownKind { found: text.to_owned(), expected: "process, docker or modal" }),
        }
    }
}

impl fmt::Display for AdapterKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The key of a plan (`--plan KEY`): 1 to 64 letters, digits, `-`, `_` or `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlanKey(String);

/// The longest plan key, in characters.
const MAX_PLAN_KEY_CHARS: usize = 64;

impl PlanKey {
    /// Returns the key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PlanKey {
    type Err = UnknownKind;

    fn from_str(text: &str) -> Result<PlanKey, UnknownKind> {
        let valid = !text.is_empty()
            && text.chars().count() <= MAX_PLAN_KEY_CHARS
            && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if valid {
            Ok(PlanKey(text.to_owned()))
        } else {
            Err(UnknownKind {
                found: text.to_owned(),
                expected: "a plan key: 1 to 64 letters, digits, -, _ or .",
            })
        }
    }
}

impl fmt::Display for PlanKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

theory_protocol::serde_via_str!(AdapterKind);
theory_protocol::serde_via_str!(PlanKey);
theory_protocol::serde_via_str!(Runtime);

#[cfg(test)]
mod tests {
    use super::{AdapterKind, Runtime};

    #[test]
    fn names_round_trip_and_others_are_refused() {
        for kind in [AdapterKind::Local, AdapterKind::Modal] {
            assert_eq!(kind.as_str().parse::<AdapterKind>(), Ok(kind));
        }
        for runtime in [Runtime::Process, Runtime::Docker, Runtime::Modal] {
            assert_eq!(runtime.as_str().parse::<Runtime>(), Ok(runtime));
        }
        assert_eq!(
            "mock".parse::<AdapterKind>().unwrap_err().to_string(),
            "\"mock\" is not local or modal"
        );
        assert!("Docker".parse::<Runtime>().is_err());
    }
}
