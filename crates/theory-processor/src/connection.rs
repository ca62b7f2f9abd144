//! One WebSocket connection on `/run`: handshake, then frames out (replay, then live) while
//! frames in are read (input files, control).

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use theory_protocol::{Ack, Event, Frame, Phase, Role, RunOpen, close_code};

use crate::driver::drive;
use crate::outputs::chunks;
use crate::run::{Entry, Run, now_ms};
use crate::server::Shared;
use crate::{Processor, files};

/// Time given to the peer to answer our close frame before the socket is dropped.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Answers to this connection's own unknown control ops waiting to go out; more are dropped,
/// so a peer flooding ops costs a fixed amount of memory.
const ANSWERS_QUEUED: usize = 16;
/// The longest op name echoed back in a `control_noop` answer, in characters.
const MAX_ECHOED_OP_CHARS: usize = 64;

/// Serves one upgraded connection until its run ends or the peer leaves.
pub(crate) async fn serve<P: Processor>(shared: Arc<Shared<P>>, mut socket: WebSocket) {
    let Some(open) = read_run_open(&mut socket, shared.config.file_wait).await else {
        return;
    };
    tracing::debug!(execution_id = %open.execution_id, role = %open.role, "connection attached");
    let run = shared.runs.attach(&open.execution_id);
    let (mut sink, mut stream) = socket.split();
    let (answers, answered) = tokio::sync::mpsc::channel(ANSWERS_QUEUED);
    let role = open.role;
    let mut writer = pin!(write_frames(&run, &mut sink, answered, shared.config.file_wait));
    let mut reader = pin!(read_frames(&shared, &run, open, &mut stream, &answers));
    tokio::select! {
        delivered = &mut writer => {
            // Our close frame is out; let the peer's reply arrive so the close is clean.
            let replied = tokio::time::timeout(CLOSE_LINGER, &mut reader).await.is_ok();
            if delivered && replied && role == Role::Client {
                // The client answered the close after the whole log: it has every output, and
                // replay keeps the frames, not large outputs' bytes.
                run.release_bytes();
            }
        }
        () = &mut reader => {}
    }
}

async fn close<S>(sink: &mut S, code: u16, reason: &str)
where
    S: Sink<Message> + Unpin,
{
    // A close reason is limited to 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame { code, reason: Utf8Bytes::from(&reason[..end]) };
    let _ = sink.send(Message::Close(Some(frame))).await;
}

/// Reads the first frame and applies the handshake rules; refusals close the socket.
async fn read_run_open(socket: &mut WebSocket, wait: Duration) -> Option<RunOpen> {
    loop {
        let message = match tokio::time::timeout(wait, socket.recv()).await {
            Err(_) => {
                close(socket, close_code::POLICY_VIOLATION, "no RunOpen arrived in time").await;
                return None;
            }
            Ok(None | Some(Err(_))) => return None,
            Ok(Some(Ok(message))) => message,
        };
        match message {
            Message::Text(text) => match RunOpen::parse_first_frame(text.as_str()) {
                Ok(open) => return Some(open),
                Err(refusal) => {
                    tracing::debug!(%refusal, "handshake refused");
                    close(socket, refusal.close_code(), &refusal.to_string()).await;
                    return None;
                }
            },
            Message::Binary(_) => {
                close(
                    socket,
                    close_code::PROTOCOL_ERROR,
                    "first frame must be a RunOpen text frame",
                )
                .await;
                return None;
            }
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(_) => return None,
        }
    }
}

/// Sends the `Ack`, then every entry of the run's log from the first (replay) as it grows, then
/// closes with 1000 after `RunResult` (then returns `true`: the whole log went out); answers to
/// this connection's own control ops go out as they come, on this connection only.
async fn write_frames<S>(
    run: &Run,
    sink: &mut S,
    mut answers: tokio::sync::mpsc::Receiver<Utf8Bytes>,
    start_wait: Duration,
) -> bool
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    let ack = Frame::Ack(Ack { execution_id: run.execution_id.clone() });
    if sink.send(Message::Text(ack.to_json(Some(now_ms())).into())).await.is_err() {
        return false;
    }
    let mut version = run.subscribe();
    let mut cursor = 0;
    // One deadline for a client to claim the run, whatever arrives meanwhile (answers to
    // control ops included): a peer cannot hold an unclaimed run open by talking.
    let claim_deadline = tokio::time::Instant::now() + start_wait;
    loop {
        version.borrow_and_update();
        let (entries, finished) = run.entries_since(cursor);
        // The entries there are go out together: queued, then flushed once (a burst of frames
        // is one write to the socket, not one each).
        let sent = entries.len();
        for entry in entries {
            match feed_entry(sink, entry).await {
                Ok(()) => {}
                Err(SendError::Socket) => return false,
                Err(SendError::Read) => {
                    // Replay of an output whose bytes went (the run was delivered), or a file
                    // that changed under us: never a short or long body, and say why.
                    let reason = "an output's bytes are no longer kept for replay";
                    close(sink, close_code::INTERNAL_ERROR, reason).await;
                    return false;
                }
            }
        }
        if sent > 0 && sink.flush().await.is_err() {
            return false;
        }
        cursor += sent;
        if finished {
            // Answers to this peer's control ops that came before the end go out first (a
            // `pause` then a `cancel`: the cancel may end the run before the loop sees the
            // answer).
            while let Ok(answer) = answers.try_recv() {
                if sink.send(Message::Text(answer)).await.is_err() {
                    return false;
                }
            }
            close(sink, close_code::NORMAL, "run finished").await;
            return true;
        }
        let wait = if run.is_claimed() || cursor > 0 { None } else { Some(claim_deadline) };
        tokio::select! {
            changed = changed_within(&mut version, wait) => match changed {
                Some(true) => {}
                Some(false) => return false,
                None if run.is_claimed() => {}
                None => {
                    close(sink, close_code::POLICY_VIOLATION, "no client started this execution_id")
                        .await;
                    return false;
                }
            },
            Some(answer) = answers.recv() => {
                if sink.send(Message::Text(answer)).await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Waits for the run's log to change, until `deadline` if there is one: `Some(true)` when it
/// did, `Some(false)` when the run is gone, `None` when the time ran out.
async fn changed_within(
    version: &mut tokio::sync::watch::Receiver<u64>,
    deadline: Option<tokio::time::Instant>,
) -> Option<bool> {
    match deadline {
        None => Some(version.changed().await.is_ok()),
        Some(deadline) => tokio::time::timeout_at(deadline, version.changed())
            .await
            .ok()
            .map(|changed| changed.is_ok()),
    }
}

#[derive(Debug)]
enum SendError {
    Socket,
    Read,
}

/// Queues an entry on the socket (the caller flushes); an output's body goes in chunks, the
/// socket writing as its buffer fills.
async fn feed_entry<S>(sink: &mut S, entry: Entry) -> Result<(), SendError>
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    match entry {
        Entry::Text(text) => sink.feed(Message::Text(text)).await.map_err(|_| SendError::Socket),
        Entry::Output { header, body, size_bytes } => {
            sink.feed(Message::Text(header)).await.map_err(|_| SendError::Socket)?;
            let mut sent = 0u64;
            let mut body = pin!(chunks(&body));
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|_| SendError::Read)?;
                sent += chunk.len() as u64;
                sink.feed(Message::Binary(chunk)).await.map_err(|_| SendError::Socket)?;
            }
            // A file that changed under us would break the header's promise; drop the
            // connection rather than send a short or long body.
            if sent == size_bytes { Ok(()) } else { Err(SendError::Read) }
        }
    }
}

/// Starts the run when this is its first client, then handles control frames until the peer
/// leaves.
async fn read_frames<P, S>(
    shared: &Arc<Shared<P>>,
    run: &Arc<Run>,
    open: RunOpen,
    stream: &mut S,
    answers: &tokio::sync::mpsc::Sender<Utf8Bytes>,
) where
    P: Processor,
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    if open.role == Role::Client
        && let Some(payload) = open.payload
        && run.claim()
    {
        let pending: BTreeMap<_, _> = payload
            .files
            .iter()
            .filter(|(_, spec)| spec.get_url.is_none())
            .map(|(path, spec)| (path.clone(), spec.clone()))
            .collect();
        let received = if pending.is_empty() {
            Ok(BTreeMap::new())
        } else {
            files::receive(stream, run, pending, shared.config.file_wait).await
        };
        shared.tasks.spawn(drive(Arc::clone(shared), Arc::clone(run), payload, received));
    }
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Text(text) => {
                let Ok((Frame::Control(control), _)) = Frame::from_json(text.as_str()) else {
                    continue;
                };
                if open.role == Role::Observer {
                    tracing::debug!(op = %control.op, "control from an observer ignored");
                } else if control.is_cancel() {
                    tracing::info!(execution_id = %run.execution_id, op = %control.op, "run cancelled by peer");
                    run.request_cancel();
                } else {
                    // Answered to this peer alone and never kept in the run's log: unknown ops
                    // cannot grow the run, whoever sends how many.
                    let op: String = control.op.chars().take(MAX_ECHOED_OP_CHARS).collect();
                    let detail = BTreeMap::from([("op".to_owned(), op.into())]);
                    let event = Frame::Event(Event { phase: Phase::ControlNoop, detail });
                    let _ = answers.try_send(Utf8Bytes::from(event.to_json(Some(now_ms()))));
                }
            }
            Message::Close(_) => return,
            Message::Binary(_) | Message::Ping(_) | Message::Pong(_) => {}
        }
    }
}
