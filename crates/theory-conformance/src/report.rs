//! The suite's findings, one line per check.

use std::fmt;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The contract holds; the text gives what was measured.
    Passed(String),
    /// The contract is broken; the text says how.
    Failed(String),
    /// The target cannot be asked for what this check needs; the text says what is missing.
    NotApplicable(String),
}

/// Every check's outcome, in the order they ran.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// `(check name, outcome)`.
    pub outcomes: Vec<(&'static str, Outcome)>,
    /// The server's resident memory after each check, when its process id is known.
    pub memory_after: Vec<(&'static str, u64)>,
    pub(crate) pid: Option<u32>,
}

impl Report {
    /// Returns the failed checks with their reasons.
    pub fn failures(&self) -> Vec<(&'static str, &str)> {
        self.outcomes
            .iter()
            .filter_map(|(name, outcome)| match outcome {
                Outcome::Failed(reason) => Some((*name, reason.as_str())),
                _ => None,
            })
            .collect()
    }

    /// Returns the names of checks that did not apply.
    pub fn not_applicable(&self) -> Vec<&'static str> {
        self.outcomes
            .iter()
            .filter_map(|(name, outcome)| {
                matches!(outcome, Outcome::NotApplicable(_)).then_some(*name)
            })
            .collect()
    }

    /// Returns the names of checks that passed.
    pub fn passed(&self) -> Vec<&'static str> {
        self.outcomes
            .iter()
            .filter_map(|(name, outcome)| matches!(outcome, Outcome::Passed(_)).then_some(*name))
            .collect()
    }

    /// Returns the detail of one check, whatever its outcome.
    pub fn detail(&self, check: &str) -> Option<&str> {
        self.outcomes.iter().find(|(name, _)| *name == check).map(|(_, outcome)| match outcome {
            Outcome::Passed(text) | Outcome::Failed(text) | Outcome::NotApplicable(text) => {
                text.as_str()
            }
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, outcome) in &self.outcomes {
            let (mark, text) = match outcome {
                Outcome::Passed(text) => ("pass", text),
                Outcome::Failed(text) => ("FAIL", text),
                Outcome::NotApplicable(text) => ("n/a ", text),
            };
            let memory = self.memory_after.iter().find(|(check, _)| check == name);
            let memory = memory
                .map(|(_, rss)| format!(" [rss {:.1} MiB]", *rss as f64 / 1_048_576.0))
                .unwrap_or_default();
            writeln!(formatter, "{mark} {name:<28} {text}{memory}")?;
        }
        Ok(())
    }
}
