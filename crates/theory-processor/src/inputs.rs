//! The normalized inputs a runner receives.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ProcessorError;

/// `params` when the inputs have none.
static EMPTY_PARAMS: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::Object(Map::new()));

/// Normalized `v1` inputs: `{"schema":"v1","params":{…},"files"?:{…}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    value: Value,
    empty: Map<String, Value>,
}

impl Inputs {
    /// Wraps inputs that went through [`theory_protocol::normalize_inputs`].
    pub fn new(normalized: Value) -> Inputs {
        Inputs { value: normalized, empty: Map::new() }
    }

    /// Returns `params`, the processor-specific part.
    pub fn params(&self) -> &Map<String, Value> {
        self.value.get("params").and_then(Value::as_object).unwrap_or(&self.empty)
    }

    /// Returns one parameter.
    pub fn param(&self, key: &str) -> Option<&Value> {
        self.params().get(key)
    }

    /// Deserializes `params` into the processor's own type; a mismatch is `ERR_INPUT_SCHEMA`.
    /// Decoded from the inputs in place: nothing is copied but what `T` keeps.
    pub fn params_as<T: DeserializeOwned>(&self) -> Result<T, ProcessorError> {
        let params = self.value.get("params").filter(|params| params.is_object());
        T::deserialize(params.unwrap_or(&EMPTY_PARAMS))
            .map_err(|error| ProcessorError::invalid_inputs(format!("inputs.params: {error}")))
    }

    /// Returns the whole normalized document.
    pub fn as_value(&self) -> &Value {
        &self.value
    }
}
