//! Webhooks per run, signed as the Standard Webhooks specification says: a run asks for them
//! with `webhook` (a URL) and `webhook_events_filter` (`start`, `output`, `logs`, `completed`,
//! Cog's names; all four by default). Each message is `{"type":"run.<event>","timestamp",
//! "data":<run object>}` (with `data.logs` for logs, `data.outputs` for outputs), sent with
//! `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">` keyed by the `whsec_…` secret in `THEORY_WEBHOOK_SECRET`.
//!
//! A run's messages go out in order from one task, so a slow target delays only that run's
//! messages. Logs and outputs are throttled: at most one message per [`THROTTLE`], carrying
//! everything since the last. A message that is not answered with 2xx is tried again after
//! each delay of `THEORY_WEBHOOK_RETRY_S` (a `410 Gone` stops it); every attempt is recorded in
//! the ledger. The target's URL may carry credentials: it is never logged nor put in a delivery
//! record; it stays only in the run's queued request (the ledger's `queue` row), where the
//! worker reads it. A target on a loopback, private or link-local address is refused (at
//! submission for an address, at each send for a name that resolves to one) unless the server
//! runs with `--allow-private-webhooks`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use theory_core::session::FrameObserver;
use theory_core::{EnvSnapshot, Failure};
use theory_ledger::Delivery;
use theory_protocol::{ErrorCode, Frame};
use tokio::sync::mpsc;

use crate::state::State;

/// The most often logs or outputs are sent for one run.
const THROTTLE: Duration = Duration::from_millis(500);
/// How long a target has to answer one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most log text a message carries (its tail).
const MAX_LOG_BYTES: usize = 64 * 1024;
/// The default delays between attempts, in seconds.
const DEFAULT_RETRY_S: &[u64] = &[1, 5, 30, 120];

/// What a run's webhook is told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WebhookEvent {
    Start,
    Output,
    Logs,
    Completed,
}

impl WebhookEvent {
    const ALL: [WebhookEvent; 4] =
        [WebhookEvent::Start, WebhookEvent::Output, WebhookEvent::Logs, WebhookEvent::Completed];

    fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Start => "start",
            WebhookEvent::Output => "output",
            WebhookEvent::Logs => "logs",
            WebhookEvent::Completed => "completed",
        }
    }

    fn parse(text: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.into_iter().find(|event| event.as_str() == text)
    }
}

/// A run's webhook: where, and which events.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    url: reqwest::Url,
    events: Vec<WebhookEvent>,
}

fn usage(message: impl Into<String>, hint: &str) -> Failure {
    Failure::with_hint(ErrorCode::Usage, message, hint)
}

impl Subscription {
    /// The webhook a run body asks for, checked.
    pub(crate) fn parse(url: &str, filter: Option<&[String]>) -> Result<Subscription, Failure> {
        let parsed = reqwest::Url::parse(url).map_err(|error| {
            usage(format!("webhook is not a URL: {error}"), "use https://host/path")
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(usage("webhook must be an http or https URL", "use https://host/path"));
        }
        let events = match filter {
            None => WebhookEvent::ALL.to_vec(),
            Some(names) => names
                .iter()
                .map(|name| {
                    WebhookEvent::parse(name).ok_or_else(|| {
                        usage(
                            format!("webhook_events_filter: unknown event {name:?}"),
                            "use start, output, logs and completed",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Subscription { url: parsed, events })
    }

    fn wants(&self, event: WebhookEvent) -> bool {
        self.events.contains(&event)
    }

    /// The target, for logs: scheme and host only.
    fn shown(&self) -> String {
        format!("{}://{}", self.url.scheme(), self.url.host_str().unwrap_or("?"))
    }
}

/// The server's webhook sender: the secret and the HTTP client.
pub(crate) struct Webhooks {
    key: Option<Vec<u8>>,
    client: reqwest::Client,
    retry: Vec<Duration>,
    /// Whether targets on loopback, private or link-local addresses are allowed
    /// (`--allow-private-webhooks`); by default a tenant cannot reach the server's own network.
    allow_private: bool,
}

/// Whether an address is one a webhook must not reach unless the server allows it: loopback,
/// private, link-local (cloud metadata), unspecified, multicast, or the IPv6 forms of those.
pub(crate) fn is_private(address: std::net::IpAddr) -> bool {
    match address {
        std::net::IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(std::net::IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

impl Webhooks {
    /// From `THEORY_WEBHOOK_SECRET` and `THEORY_WEBHOOK_RETRY_S`.
    pub(crate) fn from_env(env: &EnvSnapshot, allow_private: bool) -> Result<Webhooks, Failure> {
        use theory_core::env::names;
        let config =
            |message: String, hint: &str| Failure::with_hint(ErrorCode::Config, message, hint);
        let key = match env.get(names::WEBHOOK_SECRET).filter(|secret| !secret.is_empty()) {
            None => None,
            Some(secret) => {
                let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
                let key =
                    base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| {
                        config(
                            format!("{} is not whsec_ and base64", names::WEBHOOK_SECRET),
                            "make one with: echo whsec_$(head -c 32 /dev/urandom | base64)",
                        )
                    })?;
                if key.len() < 24 {
                    return Err(config(
                        format!("{} holds {} bytes; 24 at least", names::WEBHOOK_SECRET, key.len()),
                        "make one with: echo whsec_$(head -c 32 /dev/urandom | base64)",
                    ));
                }
                Some(key)
            }
        };
        let retry = match env.get(names::WEBHOOK_RETRY_S) {
            None => DEFAULT_RETRY_S.iter().map(|seconds| Duration::from_secs(*seconds)).collect(),
            Some(text) => text
                .split(',')
                .filter(|part| !part.trim().is_empty())
                .map(|part| part.trim().parse::<f64>().ok().filter(|s| *s >= 0.0 && *s < 86_400.0))
                .map(|seconds| seconds.map(Duration::from_secs_f64))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    config(
                        format!(
                            "{} {text:?} is not seconds, comma-separated",
                            names::WEBHOOK_RETRY_S
                        ),
                        "e.g. THEORY_WEBHOOK_RETRY_S=1,5,30",
                    )
                })?,
        };
        let tls = theory_core::tls::client_config(env).map_err(|error| {
            config(format!("cannot set up TLS for webhooks: {error}"), "check SSL_CERT_FILE")
        })?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| {
                config(format!("cannot build the webhook client: {error}"), "report this")
            })?;
        Ok(Webhooks { key, client, retry, allow_private })
    }

    /// Fails unless this server can sign webhooks and may send this one (a target that is an
    /// address of a private network is refused unless allowed).
    pub(crate) fn check(&self, subscription: &Subscription) -> Result<(), Failure> {
        if let Some(host) = subscription.url.host()
            && let Ok(address) = match host {
                url::Host::Ipv4(v4) => Ok(std::net::IpAddr::V4(v4)),
                url::Host::Ipv6(v6) => Ok(std::net::IpAddr::V6(v6)),
                url::Host::Domain(name) => name.parse::<std::net::IpAddr>().map_err(|_| ()),
            }
            && is_private(address)
            && !self.allow_private
        {
            return Err(private_target());
        }
        if self.key.is_some() {
            Ok(())
        } else {
            Err(Failure::with_hint(
                ErrorCode::Config,
                "this server sends no webhooks: THEORY_WEBHOOK_SECRET is not set",
                "start theory serve with THEORY_WEBHOOK_SECRET=whsec_… (base64 of 24+ random bytes)",
            ))
        }
    }

    /// `v1,<signature>` of a message.
    fn signature(&self, id: &str, timestamp: i64, body: &str) -> Option<String> {
        let key = self.key.as_ref()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
        mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
        Some(format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        ))
    }
}

fn private_target() -> Failure {
    usage(
        "webhook: the target is an address of a private network (loopback, private, link-local)",
        "use a public URL, or start theory serve with --allow-private-webhooks",
    )
}

/// Whether the target's host resolves only to addresses this server may reach.
async fn reachable(webhooks: &Webhooks, url: &reqwest::Url) -> bool {
    if webhooks.allow_private {
        return true;
    }
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match tokio::net::lookup_host((host, port)).await {
        Ok(addresses) => {
            let addresses: Vec<_> = addresses.collect();
            !addresses.is_empty() && addresses.iter().all(|address| !is_private(address.ip()))
        }
        Err(_) => true,
    }
}

/// What the frames of a run tell its webhook: log text and outputs so far.
#[derive(Default)]
struct Seen {
    logs: String,
    outputs: Vec<Value>,
}

/// Feeds a run's frames to its webhook task.
pub(crate) struct Feed {
    seen: Mutex<Seen>,
    events: mpsc::UnboundedSender<WebhookEvent>,
}

impl Feed {
    /// Tells the webhook task of an event.
    pub(crate) fn tell(&self, event: WebhookEvent) {
        let _ = self.events.send(event);
    }
}

impl FrameObserver for Feed {
    fn frame(&self, frame: &Frame) {
        let event = {
            let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match frame {
                Frame::Log(log) => {
                    seen.logs.push_str(&log.msg);
                    seen.logs.push('\n');
                    Some(WebhookEvent::Logs)
                }
                Frame::Token(token) => {
                    seen.logs.push_str(&token.text);
                    Some(WebhookEvent::Logs)
                }
                Frame::Output(header) => {
                    seen.outputs.push(serde_json::to_value(header).unwrap_or(Value::Null));
                    Some(WebhookEvent::Output)
                }
                _ => None,
            }
            .inspect(|_| {
                if seen.logs.len() > MAX_LOG_BYTES {
                    let mut cut = seen.logs.len() - MAX_LOG_BYTES;
                    while !seen.logs.is_char_boundary(cut) {
                        cut += 1;
                    }
                    seen.logs.drain(..cut);
                }
            })
        };
        if let Some(event) = event {
            self.tell(event);
        }
    }
}

/// Starts the webhook task of a run; returns its feed.
pub(crate) fn start(state: &Arc<State>, id: &str, subscription: Subscription) -> Arc<Feed> {
    let (events, received) = mpsc::unbounded_channel();
    let feed = Arc::new(Feed { seen: Mutex::new(Seen::default()), events });
    tokio::spawn(deliver_all(
        Arc::clone(state),
        id.to_owned(),
        subscription,
        Arc::clone(&feed),
        received,
    ));
    feed
}

/// Sends a run's messages in order until `completed`.
async fn deliver_all(
    state: Arc<State>,
    id: String,
    subscription: Subscription,
    feed: Arc<Feed>,
    mut received: mpsc::UnboundedReceiver<WebhookEvent>,
) {
    let mut last_throttled: Option<tokio::time::Instant> = None;
    while let Some(event) = received.recv().await {
        let mut event = event;
        if matches!(event, WebhookEvent::Logs | WebhookEvent::Output) {
            if let Some(last) = last_throttled {
                tokio::time::sleep_until(last + THROTTLE).await;
            }
            // Everything that arrived meanwhile goes in this one message; a `completed`
            // among it is sent after.
            let mut pending = vec![event];
            while let Ok(next) = received.try_recv() {
                pending.push(next);
            }
            let completed = pending.contains(&WebhookEvent::Completed);
            for kind in [WebhookEvent::Output, WebhookEvent::Logs] {
                if pending.contains(&kind) && subscription.wants(kind) {
                    send(&state, &id, &subscription, &feed, kind).await;
                }
            }
            last_throttled = Some(tokio::time::Instant::now());
            if !completed {
                continue;
            }
            event = WebhookEvent::Completed;
        }
        if subscription.wants(event) {
            send(&state, &id, &subscription, &feed, event).await;
        }
        if event == WebhookEvent::Completed {
            return;
        }
    }
}

/// Sends one message, with its retries; records every attempt.
async fn send(
    state: &State,
    id: &str,
    subscription: &Subscription,
    feed: &Feed,
    event: WebhookEvent,
) {
    let mut data = crate::routes::current(state, &crate::auth::Caller::system(), id)
        .await
        .unwrap_or_else(|_| json!({"id": id}));
    {
        let seen = feed.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            WebhookEvent::Logs => data["logs"] = Value::String(seen.logs.clone()),
            WebhookEvent::Output => data["outputs"] = Value::Array(seen.outputs.clone()),
            _ => {}
        }
    }
    let message_id = format!("msg_{}", theory_core::new_execution_id());
    let webhooks = &state.webhooks;
    if !reachable(webhooks, &subscription.url).await {
        let delivery = Delivery {
            run_id: id.to_owned(),
            message_id,
            event: event.as_str().to_owned(),
            attempt: 1,
            status_code: None,
            error: Some("refused: the target resolves to a private address".to_owned()),
            at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)),
        };
        let _ = state.ledger.record_delivery(&delivery).await;
        return;
    }
    let attempts = webhooks.retry.len() + 1;
    for attempt in 1..=attempts {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX));
        let body = json!({
            "type": format!("run.{}", event.as_str()),
            "timestamp": theory_core::time::rfc3339(u64::try_from(now).unwrap_or(0)),
            "data": data,
        })
        .to_string();
        let Some(signature) = webhooks.signature(&message_id, now, &body) else { return };
        let sent = webhooks
            .client
            .post(subscription.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &message_id)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let (status_code, error) = match &sent {
            Ok(response) => (Some(i64::from(response.status().as_u16())), None),
            // The error names the URL: keep only what kind of failure it was.
            Err(error) => (None, Some(failure_kind(error))),
        };
        let delivery = Delivery {
            run_id: id.to_owned(),
            message_id: message_id.clone(),
            event: event.as_str().to_owned(),
            attempt: i64::try_from(attempt).unwrap_or(i64::MAX),
            status_code,
            error: error.clone(),
            at_ms: now.saturating_mul(1000),
        };
        if let Err(failure) = state.ledger.record_delivery(&delivery).await {
            tracing::warn!(%failure, "cannot record a webhook delivery");
        }
        match status_code {
            Some(code) if (200..300).contains(&code) => return,
            Some(410) => {
                tracing::info!(target = %subscription.shown(), "the webhook target is gone (410); no more attempts");
                return;
            }
            _ => {}
        }
        tracing::info!(target = %subscription.shown(), status = ?status_code, error = ?error, attempt, "webhook not delivered");
        if let Some(delay) = webhooks.retry.get(attempt - 1) {
            tokio::time::sleep(*delay).await;
        }
    }
}

fn failure_kind(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    }
}

/// Sees frames for two observers: the run's event log and its webhook.
pub(crate) struct Both(pub(crate) Arc<dyn FrameObserver>, pub(crate) Arc<dyn FrameObserver>);

impl FrameObserver for Both {
    fn frame(&self, frame: &Frame) {
        self.0.frame(frame);
        self.1.frame(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let env = EnvSnapshot::from_pairs([(
            theory_core::env::names::WEBHOOK_SECRET,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )]);
        let webhooks = Webhooks::from_env(&env, false).unwrap();
        let signature = webhooks.signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signature.as_deref(), Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
    }

    #[test]
    fn subscriptions_are_checked() {
        assert!(Subscription::parse("https://example.com/hook", None).is_ok());
        assert!(Subscription::parse("ftp://example.com/", None).is_err());
        assert!(Subscription::parse("not a url", None).is_err());
        let filter = ["completed".to_owned()];
        let only = Subscription::parse("http://127.0.0.1:1/x", Some(&filter)).unwrap();
        assert!(only.wants(WebhookEvent::Completed) && !only.wants(WebhookEvent::Logs));
        assert!(Subscription::parse("http://h/", Some(&["done".to_owned()])).is_err());
        let secret = Subscription::parse("https://user:pass@example.com/h?token=s", None).unwrap();
        assert_eq!(secret.shown(), "https://example.com");
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "192.168.0.1",
            "::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "100.64.0.1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }
}
