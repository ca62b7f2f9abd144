//! A run's frames as they arrive: kept in memory while the run runs on this front end (so a
//! subscriber here sees a token the moment the processor sends it), appended to the ledger in
//! batches (so any front end replays them, during the run and after), and followed by
//! `GET /v1/runs/{id}/events` (see `stream`).
//!
//! Frames are numbered from 1 per run; the number is the SSE event id, so `Last-Event-ID`
//! resumes after it. The worker ends a run in this order: the last frame is observed, the
//! writer keeps it and marks the queue row `done` in the same write, the memory log is closed. A subscriber that
//! reads the ledger therefore has every frame once it sees the row `done`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use theory_core::session::FrameObserver;
use theory_ledger::{Ledger, StoredFrame};
use theory_protocol::Frame;
use tokio::sync::{mpsc, oneshot, watch};

/// Frames written to the ledger in one transaction at most.
const BATCH: usize = 2_000;
/// How long frames wait for more before they are written (a subscriber on another front end
/// sees them that much later; one on this front end sees them at once).
const WINDOW: std::time::Duration = std::time::Duration::from_millis(20);
/// How often a batch is tried before its frames are given up (about half a minute).
const WRITE_ATTEMPTS: u32 = 10;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One frame as subscribers get it: its number and its JSON.
#[derive(Debug, Clone)]
pub(crate) struct Numbered {
    /// From 1 within the run.
    pub(crate) seq: i64,
    /// The frame's kind (`Token`, `Log`, …).
    pub(crate) kind: Arc<str>,
    /// The frame's JSON (`{"kind","content","t"}`).
    pub(crate) json: Arc<str>,
}

/// The frames of one run running here.
pub(crate) struct RunLog {
    id: String,
    frames: Mutex<Vec<Numbered>>,
    /// The number of frames, and whether the run is over (bumped on every change).
    changed: watch::Sender<(usize, bool)>,
    writer: mpsc::UnboundedSender<Write>,
}

impl RunLog {
    /// Frames after `after`, and whether the run is over (when it is, there are no more).
    pub(crate) fn since(&self, after: i64) -> (Vec<Numbered>, bool) {
        let ended = self.changed.borrow().1;
        let frames = lock(&self.frames);
        let start = usize::try_from(after.max(0)).unwrap_or(usize::MAX).min(frames.len());
        (frames[start..].to_vec(), ended)
    }

    /// Told of every change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<(usize, bool)> {
        self.changed.subscribe()
    }

    /// Says the run is over (every frame is in the ledger by now).
    pub(crate) fn close(&self) {
        self.changed.send_modify(|(_, ended)| *ended = true);
    }
}

impl FrameObserver for RunLog {
    fn frame(&self, frame: &Frame) {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
        let json: Arc<str> = frame.to_json(Some(at_ms)).into();
        let count = {
            let mut frames = lock(&self.frames);
            let seq = i64::try_from(frames.len()).unwrap_or(i64::MAX - 1) + 1;
            frames.push(Numbered { seq, kind: frame.kind().into(), json: Arc::clone(&json) });
            let _ = self.writer.send(Write::Frame(StoredFrame {
                run_id: self.id.clone(),
                seq,
                frame: json.to_string(),
            }));
            frames.len()
        };
        self.changed.send_modify(|(frames, _)| *frames = count);
    }
}

/// What the writer is asked.
enum Write {
    Frame(StoredFrame),
    /// A run ended: keep every frame sent before, mark its queue row done in the same write,
    /// then answer.
    Finish(String, oneshot::Sender<()>),
}

/// The memory logs of the runs running here, and the writer that keeps their frames.
pub(crate) struct Logs {
    running: Mutex<HashMap<String, Arc<RunLog>>>,
    writer: mpsc::UnboundedSender<Write>,
    /// Woken when a log opens.
    opened: tokio::sync::Notify,
}

impl Logs {
    /// Logs whose frames a task started here writes to `ledger`.
    pub(crate) fn new(ledger: Ledger) -> Logs {
        let (writer, requests) = mpsc::unbounded_channel();
        tokio::spawn(write_frames(ledger, requests));
        Logs { running: Mutex::new(HashMap::new()), writer, opened: tokio::sync::Notify::new() }
    }

    /// Starts the log of a run about to run here.
    pub(crate) fn open(&self, id: &str) -> Arc<RunLog> {
        let log = Arc::new(RunLog {
            id: id.to_owned(),
            frames: Mutex::new(Vec::new()),
            changed: watch::Sender::new((0, false)),
            writer: self.writer.clone(),
        });
        lock(&self.running).insert(id.to_owned(), Arc::clone(&log));
        self.opened.notify_waiters();
        log
    }

    /// Completes when a log opens after it is enabled (see `tokio::sync::Notify::notified`).
    pub(crate) fn opened(&self) -> tokio::sync::futures::Notified<'_> {
        self.opened.notified()
    }

    /// The log of a run running here.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<RunLog>> {
        lock(&self.running).get(id).cloned()
    }

    /// Ends a run's record here: every frame observed so far is in the ledger and the run's
    /// queue row is `done` (one write, with whatever other runs ended meanwhile) when this
    /// returns.
    pub(crate) async fn finish(&self, id: &str) {
        let (done, finished) = oneshot::channel();
        if self.writer.send(Write::Finish(id.to_owned(), done)).is_ok() {
            let _ = finished.await;
        }
    }

    /// Forgets a run's log and closes it (its frames are in the ledger).
    pub(crate) fn close(&self, id: &str) {
        if let Some(log) = lock(&self.running).remove(id) {
            log.close();
        }
    }
}

/// Writes frames in batches: whatever arrived while the last batch was written goes in the next,
/// with the queue rows of the runs that ended meanwhile.
async fn write_frames(ledger: Ledger, mut requests: mpsc::UnboundedReceiver<Write>) {
    let mut frames = Vec::new();
    let mut finishes: Vec<(String, oneshot::Sender<()>)> = Vec::new();
    while let Some(first) = requests.recv().await {
        // Frames wait a moment for the ones that follow (a run's frames come in bursts), unless
        // a run ends: then whatever arrived goes at once.
        let window = tokio::time::Instant::now() + WINDOW;
        let mut next = Some(first);
        while let Some(request) = next {
            match request {
                Write::Frame(frame) => frames.push(frame),
                Write::Finish(id, done) => finishes.push((id, done)),
            }
            next = if frames.len() >= BATCH {
                None
            } else if finishes.is_empty() {
                tokio::time::timeout_at(window, requests.recv()).await.ok().flatten()
            } else {
                requests.try_recv().ok()
            };
        }
        let ended: Vec<String> = finishes.iter().map(|(id, _)| id.clone()).collect();
        let mut delay = std::time::Duration::from_millis(50);
        for attempt in 1..=WRITE_ATTEMPTS {
            match ledger.append_frames(&frames, &ended).await {
                Ok(()) => break,
                Err(error) if attempt == WRITE_ATTEMPTS => {
                    tracing::error!(%error, count = frames.len(), "frames lost: the ledger refused them");
                    // The runs ended all the same: their rows say so if the ledger lets them.
                    for id in &ended {
                        if let Err(error) = ledger.finish_queued(id).await {
                            tracing::warn!(%id, %error, "cannot mark a run done in the queue");
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, count = frames.len(), "cannot keep frames; trying again");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
        frames.clear();
        for (_, done) in finishes.drain(..) {
            let _ = done.send(());
        }
    }
}
