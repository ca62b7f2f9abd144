//! The part every provider shares: POST a request, turn HTTP failures into safe `ERR_PROVIDER`
//! messages, and feed the event stream to the provider's handler as it arrives.

use futures_util::StreamExt;
use serde_json::Value;
use theory_processor::{Context, ProcessorError};

use crate::provider::Provider;
use crate::sse::{SseEvent, SseParser};

/// The longest provider message quoted in an error.
const MAX_QUOTED: usize = 300;

/// What a handler wants after an event.
pub(crate) enum Flow {
    /// Keep reading.
    Continue,
    /// The completion is finished.
    Done,
}

/// POSTs `body` as JSON and hands each server-sent event to `on_event` until it says
/// [`Flow::Done`]; cancellation stops the read at once.
pub(crate) async fn post_events(
    provider: &Provider,
    request: reqwest::RequestBuilder,
    body: &Value,
    context: &Context,
    mut on_event: impl FnMut(SseEvent) -> Result<Flow, ProcessorError>,
) -> Result<(), ProcessorError> {
    let name = provider.name;
    let response = tokio::select! {
        response = request.json(body).send() => response.map_err(|error| {
            ProcessorError::provider(format!("cannot reach {name}: {}", error.without_url()))
        })?,
        () = context.cancelled() => return Err(ProcessorError::cancelled()),
    };
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(ProcessorError::provider(format!(
            "{name} returned HTTP {}: {}",
            status.as_u16(),
            quote_error(&body)
        )));
    }
    let mut parser = SseParser::new();
    let mut chunks = response.bytes_stream();
    loop {
        let chunk = tokio::select! {
            chunk = chunks.next() => chunk,
            () = context.cancelled() => return Err(ProcessorError::cancelled()),
        };
        let (events, ended) = match chunk {
            Some(Ok(bytes)) => (parser.push(&bytes), false),
            Some(Err(error)) => {
                return Err(ProcessorError::provider(format!(
                    "the stream from {name} broke off: {}",
                    error.without_url()
                )));
            }
            None => (parser.finish().into_iter().collect(), true),
        };
        for event in events {
            if let Flow::Done = on_event(event)? {
                return Ok(());
            }
        }
        if ended {
            return Err(ProcessorError::provider(format!(
                "the stream from {name} ended before the reply was complete"
            )));
        }
    }
}

/// Extracts a provider's error message (`{"error":{"message":…}}` in both dialects), shortened.
pub(crate) fn quote_error(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|value| value.pointer("/error/message").or_else(|| value.get("message")))
        .and_then(Value::as_str)
        .map_or_else(|| body.trim().to_owned(), str::to_owned);
    let message = if message.is_empty() { "no message".to_owned() } else { message };
    match message.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}
