//! `--adapter-opts-json`: options for the adapter, strictly parsed.

use serde::Deserialize;

use crate::Runtime;
use crate::registry::Platform;

/// The options `--adapter-opts-json` accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterOptions {
    /// Overrides the spec's `runtime.timeout_s`.
    #[serde(default)]
    pub timeout_s: Option<u64>,
    /// Forces the local runtime: `process` or `docker`.
    #[serde(default)]
    pub runtime: Option<Runtime>,
    /// Overrides which platform's pin is used.
    #[serde(default)]
    pub platform: Option<Platform>,
    /// The Modal environment (`dev`, `staging`, `main`) a run with the Modal adapter uses,
    /// instead of the adapter's own: the API's `env`. Not an `--adapter-opts-json` key (the
    /// command line has `--env`).
    #[serde(skip)]
    pub modal_environment: Option<String>,
    /// Runs the newest local build (`theory processor build`) instead of the pin: `theory run
    /// --build`, the seeds' local fallback. Not an `--adapter-opts-json` key.
    #[serde(skip)]
    pub local_build: bool,
}

impl AdapterOptions {
    /// Parses the JSON text of `--adapter-opts-json`.
    pub fn from_json(text: &str) -> Result<AdapterOptions, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|error| error.to_string())?;
        // serde would take a list as the fields in order (`[1]` as timeout_s 1): only an object
        // says which option it sets.
        if !value.is_object() {
            return Err(format!("expected a JSON object, found {}", json_kind(&value)));
        }
        // Parsed again from the text, so an error says where.
        let options: AdapterOptions =
            serde_json::from_str(text).map_err(|error| error.to_string())?;
        if options.timeout_s == Some(0) {
            return Err("timeout_s must be at least 1".into());
        }
        if options.runtime == Some(Runtime::Modal) {
            return Err("runtime \"modal\" is not a local runtime: expected process or docker (run on Modal with --adapter modal)".into());
        }
        Ok(options)
    }
}

/// Names the kind of a JSON value, for errors.
fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}
