//! `--adapter-opts-json`: options for the adapter, strictly parsed.

use serde::Deserialize;

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
    pub runtime: Option<String>,
    /// Overrides which platform's pin is used.
    #[serde(default)]
    pub platform: Option<Platform>,
}

impl AdapterOptions {
    /// Parses the JSON text of `--adapter-opts-json`.
    pub fn from_json(text: &str) -> Result<AdapterOptions, String> {
        let options: AdapterOptions =
            serde_json::from_str(text).map_err(|error| error.to_string())?;
        if options.timeout_s == Some(0) {
            return Err("timeout_s must be at least 1".into());
        }
        if let Some(runtime) = &options.runtime
            && runtime != "process"
            && runtime != "docker"
        {
            return Err(format!("runtime {runtime:?} is unknown: expected process or docker"));
        }
        Ok(options)
    }
}
