//! A processor as JSON, for `theory registry list|show --json` and the server's
//! `/v1/processors`: one description, so the two never disagree.

use serde_json::{Value, json};

use super::ProcessorEntry;

impl ProcessorEntry {
    /// The short form: ref, name, description, where it comes from, pins, timeout, secrets
    /// (names only).
    pub fn summary(&self) -> Value {
        let spec = &self.spec;
        let pins: serde_json::Map<String, Value> = spec
            .image
            .platforms
            .iter()
            .map(|(platform, pin)| (platform.to_string(), Value::from(pin.to_string())))
            .collect();
        let mut summary = json!({
            "ref": spec.reference,
            "name": spec.name,
            "description": spec.description,
            "origin": self.origin,
            "builtin": self.builtin,
            "pins": pins,
            "oci": spec.image.oci.as_ref().map(ToString::to_string),
            "timeout_s": spec.runtime.timeout_s,
            "secrets_required": spec.secrets.required,
            "secrets_optional": spec.secrets.optional,
        });
        if let Some(by_input) = &spec.secrets.by_input {
            // Which key a real run needs, chosen by one of its inputs.
            summary["secrets_by_input"] = json!({
                "pointer": by_input.pointer,
                "default": by_input.default,
                "keys": by_input.keys,
            });
        }
        summary
    }

    /// The whole form: the summary, the runtime, the inputs schema, the declared outputs and
    /// the build.
    pub fn document(&self) -> Value {
        let spec = &self.spec;
        let mut document = self.summary();
        document["runtime"] = json!({"cpu": spec.runtime.cpu, "memory_gb": spec.runtime.memory_gb,
                                     "timeout_s": spec.runtime.timeout_s, "gpu": spec.runtime.gpu,
                                     "max_concurrency": spec.runtime.max_concurrency});
        document["inputs"] = spec.inputs.clone();
        document["outputs"] = spec
            .outputs
            .files
            .iter()
            .map(|output| json!({"path": output.path, "mime": output.mime}))
            .collect();
        document["build"] = spec.image.build_spec().map_or(Value::Null, |build| {
            json!({"context": build.context, "dockerfile": build.dockerfile, "binary": build.binary_name(), "python": build.python})
        });
        document
    }
}
