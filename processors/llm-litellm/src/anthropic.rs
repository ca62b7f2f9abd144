//! The Anthropic messages dialect.

use serde_json::{Value, json};
use theory_processor::{Context, ProcessorError};

use crate::completion::Completion;
use crate::openai::Request;
use crate::params::ChatParams;
use crate::parts::{Content, Resolved};
use crate::stream::{Flow, post_events, quote_error};

/// The API version header Anthropic requires.
const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; this is used when the inputs give none.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// A message's content in the messages form: a string, or blocks with images as base64
/// `image` sources.
fn content(content: &Content) -> Value {
    content.to_json(|mime, base64| {
        json!({"type": "image", "source": {"type": "base64", "media_type": mime, "data": base64}})
    })
}

/// Streams a message, sending each piece of text as a token while it arrives.
pub(crate) async fn complete(
    request: Request<'_>,
    params: &ChatParams,
    messages: &[Resolved],
    context: &Context,
) -> Result<Completion, ProcessorError> {
    let system: Vec<String> =
        messages.iter().filter(|message| message.role == "system").map(Resolved::text).collect();
    let messages: Vec<Value> = messages
        .iter()
        .filter(|message| message.role != "system")
        .map(|message| json!({"role": message.role, "content": content(&message.content)}))
        .collect();
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "max_tokens": params.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "stream": true,
    });
    if let Some(object) = body.as_object_mut() {
        if !system.is_empty() {
            object.insert("system".into(), Value::from(system.join("\n\n")));
        }
        if let Some(temperature) = params.temperature {
            object.insert("temperature".into(), Value::from(temperature));
        }
        if let Some(top_p) = params.top_p {
            object.insert("top_p".into(), Value::from(top_p));
        }
        match &params.stop {
            Some(Value::String(stop)) => {
                object.insert("stop_sequences".into(), json!([stop]));
            }
            Some(stop @ Value::Array(_)) => {
                object.insert("stop_sequences".into(), stop.clone());
            }
            _ => {}
        }
    }
    let http = request
        .client
        .post(format!("{}/v1/messages", request.base_url))
        .header("x-api-key", request.api_key)
        .header("anthropic-version", ANTHROPIC_VERSION);
    let name = request.provider.name;
    let mut completion =
        Completion { provider: name.into(), model: request.model.into(), ..Completion::default() };
    post_events(request.provider, http, &body, context, |event| {
        let data: Value = serde_json::from_str(&event.data).map_err(|_| {
            ProcessorError::provider(format!("{name} sent a malformed stream event"))
        })?;
        match data.get("type").and_then(Value::as_str).unwrap_or_default() {
            "message_start" => {
                if let Some(model) = data.pointer("/message/model").and_then(Value::as_str) {
                    model.clone_into(&mut completion.model);
                }
                completion.tokens_in =
                    data.pointer("/message/usage/input_tokens").and_then(Value::as_u64);
            }
            "content_block_delta" => {
                if let Some(text) = data
                    .pointer("/delta/text")
                    .and_then(Value::as_str)
                    .filter(|text| !text.is_empty())
                {
                    completion.text.push_str(text);
                    context.token(text);
                }
            }
            "message_delta" => {
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    completion.finish_reason = Some(reason.to_owned());
                }
                if let Some(tokens) = data.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    completion.tokens_out = Some(tokens);
                }
            }
            "message_stop" => return Ok(Flow::Done),
            "error" => {
                return Err(ProcessorError::provider(format!(
                    "{name} reported: {}",
                    quote_error(&event.data)
                )));
            }
            _ => {}
        }
        Ok(Flow::Continue)
    })
    .await?;
    Ok(completion)
}
