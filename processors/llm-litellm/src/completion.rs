//! A finished completion and the outputs it becomes: `text/response.txt` and `meta.json`.

use serde_json::{Map, Value, json};
use theory_processor::{OutputItem, ProcessorError, ProcessorResult};

use crate::identity;

/// What a provider (or the mock) answered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    /// The whole reply.
    pub text: String,
    /// `mock`, `openai`, `anthropic`, …
    pub provider: String,
    /// The model that answered, as the provider names it.
    pub model: String,
    /// Prompt tokens, when reported.
    pub tokens_in: Option<u64>,
    /// Completion tokens, when reported.
    pub tokens_out: Option<u64>,
    /// Why generation stopped, when reported.
    pub finish_reason: Option<String>,
    /// The model asked for, as `provider/name` (real runs): reported as `usage.model`, the row
    /// of the spec's `pricing.models` the run is priced by.
    pub priced_model: Option<String>,
}

impl Completion {
    /// Builds the run's result: the reply as text, the rest in `meta.json` and `usage`.
    pub fn into_result(
        self,
        requested_model: Option<&str>,
    ) -> Result<ProcessorResult, ProcessorError> {
        let meta = json!({
            "model": self.model,
            "provider": self.provider,
            "requested_model": requested_model,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "finish_reason": self.finish_reason,
        });
        let mut usage = Map::new();
        if let Some(tokens_in) = self.tokens_in {
            usage.insert("tokens_in".into(), Value::from(tokens_in));
        }
        if let Some(tokens_out) = self.tokens_out {
            usage.insert("tokens_out".into(), Value::from(tokens_out));
        }
        if let Some(model) = self.priced_model {
            usage.insert("model".into(), Value::from(model));
        }
        Ok(ProcessorResult {
            outputs: vec![
                OutputItem::text("text/response.txt", self.text),
                OutputItem::json("meta.json", &meta)?,
            ],
            processor_info: identity().processor_info,
            usage,
            extra: Map::new(),
        })
    }
}
