//! The part every provider shares: POST a request, retry it while the provider is busy (429 and
//! 5xx answers, before any token: nothing was streamed yet, so a retry is invisible), turn HTTP
//! failures into safe `ERR_PROVIDER` messages, and feed the event stream to the provider's
//! handler as it arrives.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use theory_processor::{Context, ProcessorError};

use crate::provider::Provider;
use crate::sse::{SseEvent, SseParser};

/// The longest provider message quoted in an error.
const MAX_QUOTED: usize = 300;
/// Attempts in all when the provider answers 429 or 5xx.
pub(crate) const MAX_ATTEMPTS: u32 = 4;
/// The pause before the first retry when the provider names none; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause honoured: a provider asking for more is not retried.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Whether an HTTP status is worth retrying: rate limits and server errors (Anthropic's 529
/// "overloaded" included).
fn retryable(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The pause before retry number `retry` (1-based): the provider's `Retry-After` in seconds when
/// it gives one, else an exponential backoff. `None` when the provider asks for longer than
/// [`MAX_RETRY_AFTER`].
fn pause(headers: &reqwest::header::HeaderMap, retry: u32) -> Option<Duration> {
    let asked = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .map(|seconds| Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64() + 1.0)));
    match asked {
        Some(asked) if asked > MAX_RETRY_AFTER => None,
        Some(asked) => Some(asked),
        None => Some(FIRST_BACKOFF * 2_u32.saturating_pow(retry.saturating_sub(1))),
    }
}

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
    let request = request.json(body);
    let mut attempt = 1;
    let response = loop {
        let sending = request.try_clone().ok_or_else(|| {
            ProcessorError::runtime(format!("the request to {name} cannot be sent again"))
        })?;
        let response = tokio::select! {
            response = sending.send() => response.map_err(|error| {
                ProcessorError::provider(format!("cannot reach {name}: {}", error.without_url()))
            })?,
            () = context.cancelled() => return Err(ProcessorError::cancelled()),
        };
        let status = response.status();
        if status.is_success() {
            break response;
        }
        let wait = (retryable(status) && attempt < MAX_ATTEMPTS)
            .then(|| pause(response.headers(), attempt))
            .flatten();
        let body = response.text().await.unwrap_or_default();
        let said = format!("{name} returned HTTP {}: {}", status.as_u16(), quote_error(&body));
        let Some(wait) = wait else {
            let tried =
                if attempt > 1 { format!(" (after {attempt} attempts)") } else { String::new() };
            return Err(ProcessorError::provider(format!("{said}{tried}")));
        };
        attempt += 1;
        context.info(format!(
            "{said}; retrying in {:.1} s (attempt {attempt} of {MAX_ATTEMPTS})",
            wait.as_secs_f64()
        ));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = context.cancelled() => return Err(ProcessorError::cancelled()),
        }
    };
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    use super::pause;

    #[test]
    fn retry_after_is_honoured_up_to_a_cap_and_backoff_doubles_without_it() {
        let none = HeaderMap::new();
        assert_eq!(pause(&none, 1), Some(Duration::from_millis(500)));
        assert_eq!(pause(&none, 3), Some(Duration::from_secs(2)));
        let asked = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_static(value));
            pause(&headers, 1)
        };
        assert_eq!(asked("2"), Some(Duration::from_secs(2)));
        assert_eq!(asked("0.25"), Some(Duration::from_millis(250)));
        assert_eq!(asked("31"), None, "longer than the cap: not retried");
        assert_eq!(asked("1e9"), None);
        // An HTTP date is not read: the backoff applies.
        assert_eq!(asked("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::from_millis(500)));
    }
}
