//! The chat parameters a run accepts, read from normalized inputs.

use serde::Deserialize;
use serde_json::{Map, Value};
use theory_processor::{Inputs, ProcessorError};

/// The default model when the inputs name none.
pub const DEFAULT_MODEL: &str = "openai/gpt-4o-mini";

/// `params` of `llm/litellm@1`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChatParams {
    /// The conversation, oldest first; at least one message.
    pub messages: Vec<Message>,
    /// `provider/model`, such as `openai/gpt-4o-mini` or `anthropic/claude-3-5-haiku-latest`.
    #[serde(default)]
    pub model: Option<String>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Most tokens to generate.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Stop sequences: one string or a list.
    #[serde(default)]
    pub stop: Option<Value>,
    /// Seed, for providers that honour it.
    #[serde(default)]
    pub seed: Option<i64>,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`; `user` when left out (the seeds' attachment
    /// example writes messages without a role).
    #[serde(default = "user_role")]
    pub role: String,
    /// A string, or a list of parts (`{"type":"text","text":…}`, `{"$artifact":…}`).
    pub content: Value,
}

fn user_role() -> String {
    "user".to_owned()
}

impl ChatParams {
    /// Reads and checks the parameters: `ERR_INPUT_SCHEMA` when there is no message.
    pub fn from_inputs(inputs: &Inputs) -> Result<ChatParams, ProcessorError> {
        let params: ChatParams = inputs.params_as()?;
        if params.messages.is_empty() {
            return Err(ProcessorError::invalid_inputs(
                "inputs.params.messages must hold at least one message",
            ));
        }
        Ok(params)
    }

    /// Returns the requested model or the default.
    pub fn model(&self) -> &str {
        self.model.as_deref().unwrap_or(DEFAULT_MODEL)
    }

    /// Returns the optional sampling settings as provider-neutral JSON fields.
    pub fn sampling(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                fields.insert(key.to_owned(), value);
            }
        };
        put("temperature", self.temperature.map(Value::from));
        put("top_p", self.top_p.map(Value::from));
        put("max_tokens", self.max_tokens.map(Value::from));
        put("stop", self.stop.clone());
        put("seed", self.seed.map(Value::from));
        fields
    }
}

impl Message {
    /// Returns the text of the message: the string, or its text parts joined; attachments are
    /// named as `[attachment <path>]`.
    pub fn text(&self) -> String {
        match &self.content {
            Value::String(text) => text.clone(),
            Value::Array(parts) => parts.iter().filter_map(part_text).collect::<Vec<_>>().join(" "),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

fn part_text(part: &Value) -> Option<String> {
    match part {
        Value::String(text) => Some(text.clone()),
        Value::Object(object) => {
            if let Some(text) = object.get("text").and_then(Value::as_str) {
                return Some(text.to_owned());
            }
            object
                .get("$artifact")
                .and_then(Value::as_str)
                .map(|path| format!("[attachment {path}]"))
        }
        _ => None,
    }
}

/// Counts whitespace-separated words, the mock's stand-in for tokens.
pub(crate) fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Message;

    #[test]
    fn text_of_string_and_parts() {
        let plain = Message { role: "user".into(), content: json!("Hello") };
        assert_eq!(plain.text(), "Hello");
        let parts = Message {
            role: "user".into(),
            content: json!([{"type": "text", "text": "Look at"}, {"$artifact": "/artifacts/inputs/b3:x/cat.png", "cid": "b3:x"}]),
        };
        assert_eq!(parts.text(), "Look at [attachment /artifacts/inputs/b3:x/cat.png]");
    }
}
