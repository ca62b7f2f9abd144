//! Schemas (`registry/schemas/`) and policies (`registry/policies/`), as the original docs describe.

use serde::Deserialize;
use serde_json::Value;

/// A named JSON Schema, `id: name@N`, for `json.schema_ok@1`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaDocument {
    /// `name@N`.
    pub id: String,
    /// What it describes.
    #[serde(default)]
    pub description: Option<String>,
    /// The JSON Schema.
    pub schema: Value,
}

/// A policy: budget cap, retries, leases.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// `name@N`, such as `default@1`.
    pub id: String,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Budget rules.
    #[serde(default)]
    pub budget: BudgetPolicy,
    /// Retry rules for transient failures.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Path lease rules.
    #[serde(default)]
    pub leases: LeasePolicy,
}

/// `budget`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetPolicy {
    /// The most a plan may spend, in micro-USD.
    #[serde(default)]
    pub max_usd_micro: Option<u64>,
}

/// `retry`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    #[serde(default = "one")]
    pub max_attempts: u32,
    /// The pause before each retry, in milliseconds; the last repeats.
    #[serde(default)]
    pub backoff_ms: Vec<u64>,
}

fn one() -> u32 {
    1
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy { max_attempts: 1, backoff_ms: Vec::new() }
    }
}

/// `leases`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeasePolicy {
    /// How long a lease lives without renewal, in seconds.
    #[serde(default = "hour")]
    pub default_ttl_s: u64,
    /// Whether runs take leases on their write prefix.
    #[serde(default = "yes")]
    pub enable_path_leases: bool,
}

fn hour() -> u64 {
    3600
}

fn yes() -> bool {
    true
}

impl Default for LeasePolicy {
    fn default() -> LeasePolicy {
        LeasePolicy { default_ttl_s: hour(), enable_path_leases: true }
    }
}

/// A prompt template, `id: name@N` (seed 004: versioned prompts in the registry), used in inputs
/// as `{"$prompt":"name@N","vars":{…}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptDocument {
    /// `name@N`.
    pub id: String,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// The text, with `{var}` placeholders; `{{` and `}}` stand for literal braces.
    pub template: String,
    /// Every variable the template uses, each with an optional default.
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, Option<PromptVar>>,
}

/// One variable of a prompt: `vars.NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptVar {
    /// The value used when the inputs give none; without one the variable is required.
    #[serde(default)]
    pub default: Option<String>,
    /// What it holds.
    #[serde(default)]
    pub description: Option<String>,
}
