//! The OpenAI chat-completions dialect, spoken by OpenAI and many compatible servers.

use serde_json::{Value, json};
use theory_processor::{Context, ProcessorError};

use crate::completion::Completion;
use crate::params::ChatParams;
use crate::parts::{Content, Resolved};
use crate::provider::Provider;
use crate::stream::{Flow, post_events, quote_error};

/// Everything one request needs.
pub(crate) struct Request<'a> {
    /// The shared HTTP client.
    pub(crate) client: &'a reqwest::Client,
    /// The provider being called.
    pub(crate) provider: &'a Provider,
    /// Its base URL, without a trailing `/`.
    pub(crate) base_url: &'a str,
    /// The API key.
    pub(crate) api_key: &'a str,
    /// The provider's own model name (without the `provider/` prefix).
    pub(crate) model: &'a str,
}

/// A message's content in the chat-completions form: a string, or parts with images as
/// `image_url` data URLs.
fn content(content: &Content) -> Value {
    content.to_json(|mime, base64| {
        json!({"type": "image_url", "image_url": {"url": format!("data:{mime};base64,{base64}")}})
    })
}

/// Streams a chat completion, sending each piece of text as a token while it arrives.
pub(crate) async fn complete(
    request: Request<'_>,
    params: &ChatParams,
    messages: &[Resolved],
    context: &Context,
) -> Result<Completion, ProcessorError> {
    let messages: Vec<Value> = messages
        .iter()
        .map(|message| json!({"role": message.role, "content": content(&message.content)}))
        .collect();
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if let Some(object) = body.as_object_mut() {
        object.extend(params.sampling());
    }
    let http = request
        .client
        .post(format!("{}/chat/completions", request.base_url))
        .bearer_auth(request.api_key);
    let name = request.provider.name;
    let mut completion =
        Completion { provider: name.into(), model: request.model.into(), ..Completion::default() };
    post_events(request.provider, http, &body, context, |event| {
        if event.data.trim() == "[DONE]" {
            return Ok(Flow::Done);
        }
        let chunk: Value = serde_json::from_str(&event.data).map_err(|_| {
            ProcessorError::provider(format!("{name} sent a malformed stream chunk"))
        })?;
        if chunk.get("error").is_some() {
            return Err(ProcessorError::provider(format!(
                "{name} reported: {}",
                quote_error(&event.data)
            )));
        }
        if let Some(model) = chunk.get("model").and_then(Value::as_str) {
            model.clone_into(&mut completion.model);
        }
        if let Some(choice) = chunk.pointer("/choices/0") {
            if let Some(text) = choice
                .pointer("/delta/content")
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
            {
                completion.text.push_str(text);
                context.token(text);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                completion.finish_reason = Some(reason.to_owned());
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|usage| usage.is_object()) {
            completion.tokens_in = usage.get("prompt_tokens").and_then(Value::as_u64);
            completion.tokens_out = usage.get("completion_tokens").and_then(Value::as_u64);
        }
        Ok(Flow::Continue)
    })
    .await?;
    Ok(completion)
}
