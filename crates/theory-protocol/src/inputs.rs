//! Normalization of processor inputs to the `v1` shape that every runner sees.
//!
//! Users may write the short form of the original system's docs, `{"messages":[…],"model":"…"}`,
//! or the long form `{"schema":"v1","params":{"messages":[…],"model":"…"}}`. Both normalize to
//! the long form with `model` inside `params`, so they hash the same and a runner reads one shape.

use serde_json::{Map, Value};

/// The only inputs schema version.
pub const INPUTS_SCHEMA_V1: &str = "v1";

/// Keys that keep their place at the top level of normalized inputs.
const TOP_LEVEL_KEYS: &[&str] = &["schema", "params", "files"];

/// The reason inputs cannot be normalized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputsError {
    /// The inputs are not a JSON object.
    #[error("inputs must be a JSON object, found {found}")]
    NotAnObject {
        /// The JSON type that was found instead.
        found: &'static str,
    },
    /// `schema` is present but is not `"v1"`.
    #[error("inputs schema {found} is not supported: expected \"v1\"")]
    UnsupportedSchema {
        /// The value that was found.
        found: String,
    },
    /// `params` is present but is not an object.
    #[error("inputs.params must be a JSON object")]
    ParamsNotAnObject,
    /// The long form carries keys beside `schema`, `model`, `params`, `files` and `mode`.
    #[error("inputs key {key:?} must live inside params")]
    StrayKey {
        /// The first stray key.
        key: String,
    },
    /// `model` is given at the top level and inside `params` with different values.
    #[error("model is given twice with different values (top level and params.model)")]
    ConflictingModel,
}

/// Inputs after normalization, with the `mode` the user may have written inside them.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizedInputs {
    /// `{"schema":"v1","params":{…},"files"?:{…}}`.
    pub value: Value,
    /// The `mode` key found in the inputs (the original system let inputs carry it), removed from
    /// `value` because the mode travels beside the inputs, never inside them.
    pub mode_hint: Option<Value>,
}

/// Normalizes inputs to the long `v1` form. Normalizing twice changes nothing.
///
/// ```
/// # use serde_json::json;
/// # use theory_protocol::normalize_inputs;
/// let short = json!({"messages": [{"role": "user", "content": "Hi"}], "model": "openai/gpt-4o-mini"});
/// let long = json!({"schema": "v1", "params": {"messages": [{"role": "user", "content": "Hi"}],
///                                               "model": "openai/gpt-4o-mini"}});
/// assert_eq!(normalize_inputs(short).unwrap().value, long);
/// ```
pub fn normalize_inputs(inputs: Value) -> Result<NormalizedInputs, InputsError> {
    let Value::Object(mut object) = inputs else {
        return Err(InputsError::NotAnObject { found: json_type(&inputs) });
    };
    let mode_hint = object.remove("mode");
    let model = object.remove("model");
    match object.get("schema") {
        None => {}
        Some(Value::String(schema)) if schema == INPUTS_SCHEMA_V1 => {}
        Some(other) => {
            return Err(InputsError::UnsupportedSchema { found: other.to_string() });
        }
    }

    let long_form = object.contains_key("params") || object.contains_key("schema");
    let mut params = if long_form {
        if let Some(key) = object.keys().find(|key| !TOP_LEVEL_KEYS.contains(&key.as_str())) {
            return Err(InputsError::StrayKey { key: key.clone() });
        }
        match object.remove("params") {
            None => Map::new(),
            Some(Value::Object(params)) => params,
            Some(_) => return Err(InputsError::ParamsNotAnObject),
        }
    } else {
        let files = object.remove("files");
        let params = std::mem::take(&mut object);
        if let Some(files) = files {
            object.insert("files".into(), files);
        }
        params
    };

    if let Some(model) = model {
        match params.get("model") {
            Some(existing) if *existing != model => return Err(InputsError::ConflictingModel),
            _ => {
                params.insert("model".into(), model);
            }
        }
    }

    object.insert("schema".into(), Value::String(INPUTS_SCHEMA_V1.into()));
    object.insert("params".into(), Value::Object(params));
    Ok(NormalizedInputs { value: Value::Object(object), mode_hint })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{InputsError, normalize_inputs};

    #[test]
    fn short_and_long_forms_agree() {
        let short = normalize_inputs(json!({"messages": [], "temperature": 0.2})).unwrap();
        let long = normalize_inputs(
            json!({"schema": "v1", "params": {"messages": [], "temperature": 0.2}}),
        )
        .unwrap();
        assert_eq!(short, long);
        assert_eq!(normalize_inputs(short.value.clone()).unwrap().value, short.value);
    }

    #[test]
    fn mode_is_lifted_out_and_files_stay_on_top() {
        let normalized = normalize_inputs(
            json!({"messages": [], "mode": "smoke", "files": {"/artifacts/inputs/x": {}}}),
        )
        .unwrap();
        assert_eq!(normalized.mode_hint, Some(json!("smoke")));
        assert_eq!(
            normalized.value,
            json!({"schema": "v1", "params": {"messages": []}, "files": {"/artifacts/inputs/x": {}}})
        );
    }

    #[test]
    fn refuses_bad_shapes() {
        assert_eq!(
            normalize_inputs(json!([1])),
            Err(InputsError::NotAnObject { found: "an array" })
        );
        assert!(matches!(
            normalize_inputs(json!({"schema": "v2"})),
            Err(InputsError::UnsupportedSchema { .. })
        ));
        assert_eq!(normalize_inputs(json!({"params": 3})), Err(InputsError::ParamsNotAnObject));
        assert_eq!(
            normalize_inputs(json!({"params": {}, "messages": []})),
            Err(InputsError::StrayKey { key: "messages".into() })
        );
        assert_eq!(
            normalize_inputs(json!({"model": "a", "params": {"model": "b"}})),
            Err(InputsError::ConflictingModel)
        );
    }
}
