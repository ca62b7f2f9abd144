//! `GET /v1/runs/{id}/events`: a run's frames from the first (or after `Last-Event-ID`), then
//! `end` with the run object — as Server-Sent Events, or over a WebSocket when the request asks
//! for an upgrade.
//!
//! A run running on this front end is followed in memory (a frame reaches the subscriber as soon
//! as the processor sends it); any other run is followed in the ledger, which every front end
//! writes its runs' frames to.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as Shared;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, stream};
use serde_json::{Value, json};
use theory_ledger::QueueState;
use theory_protocol::ErrorCode;

use crate::auth::Caller;
use crate::errors::{ApiError, ApiPath, ApiQuery};
use crate::events::Numbered;
use crate::state::State;

/// How often a run followed in the ledger is looked at.
const POLL: Duration = Duration::from_millis(100);
/// Frames read from the ledger at once.
const PAGE: i64 = 500;

/// What a subscriber is sent.
enum Item {
    Frame(Numbered),
    /// The run is over: its object.
    End(Value),
}

/// Where a subscriber is in a run.
struct Follow {
    state: Arc<State>,
    caller: Caller,
    id: String,
    after: i64,
    /// The queue row was seen `done`: one more read of the ledger, then the end.
    closing: bool,
    over: bool,
    /// The server is shutting down: the stream ends (with the run as it is) rather than hold
    /// the shutdown until the run ends.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Follow {
    /// The next items, or `None` after the end.
    async fn next(&mut self) -> Option<Vec<Item>> {
        if self.over {
            return None;
        }
        loop {
            // Told when a run starts here: a subscriber waiting on a queued run follows it in
            // memory from its first frame, not from the ledger a poll later.
            let state = Arc::clone(&self.state);
            let opened = state.logs.opened();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if let Some(log) = self.state.logs.get(&self.id) {
                let mut changes = log.subscribe();
                loop {
                    let (frames, ended) = log.since(self.after);
                    if let Some(last) = frames.last() {
                        self.after = last.seq;
                        return Some(frames.into_iter().map(Item::Frame).collect());
                    }
                    if ended || *self.stopping.borrow() {
                        return Some(vec![self.end().await]);
                    }
                    let mut stopping = self.stopping.clone();
                    tokio::select! {
                        result = changes.changed() => if result.is_err() { break },
                        _ = stopping.changed() => {}
                    }
                }
            }
            let frames = match self.state.ledger.frames_after(&self.id, self.after, PAGE).await {
                Ok(frames) => frames,
                Err(error) => {
                    tracing::warn!(%error, id = %self.id, "cannot read a run's frames");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            if let Some((last, _)) = frames.last() {
                self.after = *last;
                return Some(frames.into_iter().map(stored).collect());
            }
            if self.closing || *self.stopping.borrow() {
                return Some(vec![self.end().await]);
            }
            let queued = self.state.ledger.queued(&self.id).await.ok().flatten();
            match queued {
                // Not a queued run (one `theory run` made): its record is all there is.
                None => return Some(vec![self.end().await]),
                Some(queued) if queued.state == QueueState::Done => self.closing = true,
                Some(_) => {
                    let mut stopping = self.stopping.clone();
                    tokio::select! {
                        () = tokio::time::sleep(POLL) => {}
                        () = &mut opened => {}
                        _ = stopping.changed() => {}
                    }
                }
            }
        }
    }

    async fn end(&mut self) -> Item {
        self.over = true;
        let object = crate::routes::current(&self.state, &self.caller, &self.id)
            .await
            .unwrap_or_else(|_| json!({"id": self.id}));
        Item::End(object)
    }
}

fn stored((seq, json): (i64, String)) -> Item {
    let kind = serde_json::from_str::<Value>(&json)
        .ok()
        .and_then(|frame| frame.get("kind").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "frame".to_owned());
    Item::Frame(Numbered { seq, kind: kind.into(), json: json.into() })
}

fn items(follow: Follow) -> impl Stream<Item = Item> + Send {
    stream::unfold(follow, |mut follow| async move {
        follow.next().await.map(|items| (stream::iter(items), follow))
    })
    .flatten()
}

/// Where to start: after `Last-Event-ID`, or `?after=N`, or from the first frame.
fn start(
    headers: &HeaderMap,
    query: &std::collections::HashMap<String, String>,
) -> Result<i64, ApiError> {
    let given = headers
        .get("last-event-id")
        .map(|value| value.to_str().unwrap_or("?").to_owned())
        .or_else(|| query.get("after").cloned());
    match given {
        None => Ok(0),
        Some(text) => {
            text.trim().parse::<i64>().ok().filter(|after| *after >= 0).ok_or_else(|| {
                ApiError::with_status(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::Usage,
                    format!("Last-Event-ID {text:?} is not a frame number this server gave"),
                )
            })
        }
    }
}

/// `GET /v1/runs/{id}/events`.
pub(crate) async fn events(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<std::collections::HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    caller.needs(theory_ledger::Scope::RunsRead)?;
    crate::routes::current(&state, &caller, &id).await?;
    let after = start(&headers, &query)?;
    let stopping = state.stopping.subscribe();
    let follow = Follow { state, caller, id, after, closing: false, over: false, stopping };
    if let Ok(upgrade) = upgrade {
        return Ok(upgrade
            .max_message_size(crate::routes::MAX_FRAME_BYTES)
            .on_upgrade(move |socket| send_over_websocket(socket, follow))
            .into_response());
    }
    let events = items(follow).map(|item| {
        Ok::<_, Infallible>(match item {
            Item::Frame(frame) => {
                Event::default().id(frame.seq.to_string()).event(&*frame.kind).data(&*frame.json)
            }
            Item::End(object) => Event::default().event("end").data(object.to_string()),
        })
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

/// The same items over a WebSocket: `{"seq":N,"frame":{…}}` per frame, then
/// `{"end":{run object}}`, then a close.
async fn send_over_websocket(mut socket: WebSocket, follow: Follow) {
    let mut items = std::pin::pin!(items(follow));
    loop {
        let item = tokio::select! {
            item = items.next() => item,
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
        };
        let text = match item {
            Some(Item::Frame(frame)) => {
                format!("{{\"seq\":{},\"frame\":{}}}", frame.seq, frame.json)
            }
            Some(Item::End(object)) => json!({"end": object}).to_string(),
            None => break,
        };
        if socket.send(Message::Text(text.into())).await.is_err() {
            return;
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
