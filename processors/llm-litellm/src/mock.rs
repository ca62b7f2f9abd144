//! Mock mode: a deterministic reply derived from the last message; no network, no secret.

use theory_processor::Context;

use crate::completion::Completion;
use crate::params::{ChatParams, count_words};

/// The model name mock replies carry, as in the original system.
pub const MOCK_MODEL: &str = "mock-llm";

/// Streams `MOCK: <last message text>` word by word and returns it.
pub(crate) fn reply(params: &ChatParams, context: &Context) -> Completion {
    let last = params.messages.last().map(crate::params::Message::text).unwrap_or_default();
    let text = format!("MOCK: {last}");
    let mut tokens_out = 0;
    let mut start = 0;
    // Each token is a word with the whitespace before it, so the tokens add up to the text.
    for (index, character) in text.char_indices() {
        if character.is_whitespace() && index > start && !text[start..index].trim().is_empty() {
            context.token(&text[start..index]);
            tokens_out += 1;
            start = index;
        }
    }
    if start < text.len() {
        context.token(&text[start..]);
        tokens_out += 1;
    }
    Completion {
        tokens_in: Some(params.messages.iter().map(|message| count_words(&message.text())).sum()),
        tokens_out: Some(tokens_out),
        finish_reason: Some("stop".into()),
        provider: "mock".into(),
        model: MOCK_MODEL.into(),
        priced_model: None,
        text,
    }
}
