//! One run's shared state: the append-only frame log every connection reads from, cancellation,
//! scratch space; and the table of runs with its eviction rules.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use theory_protocol::{
    Envelope, ErrorBody, ErrorCode, ErrorEnvelope, Event, ExecutionId, Frame, OutputHeader, Phase,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One entry of a run's log, cheap to clone for every connection that replays it.
#[derive(Clone)]
pub(crate) enum Entry {
    /// A text frame, already encoded.
    Text(Utf8Bytes),
    /// An `Output` header frame followed by the bytes of its body.
    Output { header: Utf8Bytes, body: Body, size_bytes: u64 },
}

/// Where an output's bytes come from when a connection streams them.
#[derive(Clone)]
pub(crate) enum Body {
    Bytes(Bytes),
    File(Arc<PathBuf>),
    /// No longer kept: the run's whole log reached its client, and only its frames (the header
    /// with the CID) stay for replay.
    Released,
}

/// Outputs up to this size keep their bytes for replay after the run was delivered; larger
/// ones (and every file) keep their header alone.
const KEPT_FOR_REPLAY_BYTES: u64 = 64 * 1024;

struct Log {
    entries: Vec<Entry>,
    finished_at: Option<Instant>,
    preempted: bool,
}

/// The state of one run, shared by its driver and every connection attached to it.
pub(crate) struct Run {
    pub(crate) execution_id: ExecutionId,
    created_at: Instant,
    log: Mutex<Log>,
    version: watch::Sender<u64>,
    cancel: CancellationToken,
    claimed: AtomicBool,
    scratch: Mutex<Option<tempfile::TempDir>>,
    scratch_root: PathBuf,
    secrets: Mutex<Vec<String>>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks cannot leave the data half-updated.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Run {
    fn new(execution_id: ExecutionId, scratch_root: PathBuf) -> Run {
        Run {
            execution_id,
            created_at: Instant::now(),
            log: Mutex::new(Log { entries: Vec::new(), finished_at: None, preempted: false }),
            version: watch::channel(0).0,
            cancel: CancellationToken::new(),
            claimed: AtomicBool::new(false),
            scratch: Mutex::new(None),
            scratch_root,
            secrets: Mutex::new(Vec::new()),
        }
    }

    /// Marks the run as started by a client; only the first caller gets `true`.
    pub(crate) fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::SeqCst)
    }

    pub(crate) fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::SeqCst)
    }

    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Appends an entry unless the run already ended; wakes every connection.
    fn push(&self, entry: Entry) {
        {
            let mut log = lock(&self.log);
            if log.finished_at.is_some() {
                return;
            }
            log.entries.push(entry);
        }
        self.version.send_modify(|version| *version += 1);
    }

    pub(crate) fn push_frame(&self, frame: &Frame) {
        self.push(Entry::Text(Utf8Bytes::from(frame.to_json(Some(now_ms())))));
    }

    pub(crate) fn push_output(&self, header: OutputHeader, body: Body) {
        let size_bytes = header.size_bytes;
        let header = Utf8Bytes::from(Frame::Output(header).to_json(Some(now_ms())));
        self.push(Entry::Output { header, body, size_bytes });
    }

    /// Appends the terminal `RunResult`; nothing can follow it. Once a `preempted` event went
    /// out, the result is `ERR_CANCELLED` whatever the handler achieved, so the two never disagree.
    pub(crate) fn finish(&self, envelope: Envelope) {
        {
            let mut log = lock(&self.log);
            if log.finished_at.is_some() {
                return;
            }
            let envelope = match envelope {
                Envelope::Success(success) if log.preempted => Envelope::Error(ErrorEnvelope {
                    execution_id: success.execution_id,
                    error: ErrorBody {
                        code: ErrorCode::Cancelled,
                        message: "the run was cancelled".into(),
                    },
                    meta: success.meta,
                }),
                envelope => envelope,
            };
            let text = Utf8Bytes::from(Frame::RunResult(envelope).to_json(Some(now_ms())));
            log.entries.push(Entry::Text(text));
            log.finished_at = Some(Instant::now());
        }
        self.version.send_modify(|version| *version += 1);
    }

    /// Asks the run to stop. The first request records a `preempted` event.
    pub(crate) fn request_cancel(&self) {
        let first = {
            let mut log = lock(&self.log);
            let first = !log.preempted && log.finished_at.is_none();
            log.preempted = true;
            first
        };
        if first {
            self.push_frame(&Frame::Event(Event::phase(Phase::Preempted)));
        }
        self.cancel.cancel();
    }

    /// Returns the entries from `cursor` on, and whether they end with the `RunResult`.
    pub(crate) fn entries_since(&self, cursor: usize) -> (Vec<Entry>, bool) {
        let log = lock(&self.log);
        let entries = log.entries.get(cursor..).unwrap_or_default().to_vec();
        (entries, log.finished_at.is_some())
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn finished_at(&self) -> Option<Instant> {
        lock(&self.log).finished_at
    }

    /// The run's whole log reached a client (through `RunResult`): its large outputs' bytes and
    /// its scratch folder are let go; frames and CIDs stay for replay, and a replay that needs
    /// the bytes of a released output is refused clearly.
    pub(crate) fn release_bytes(&self) {
        {
            let mut log = lock(&self.log);
            if log.finished_at.is_none() {
                return;
            }
            for entry in &mut log.entries {
                if let Entry::Output { body, size_bytes, .. } = entry
                    && (*size_bytes > KEPT_FOR_REPLAY_BYTES || matches!(body, Body::File(_)))
                {
                    *body = Body::Released;
                }
            }
        }
        // Dropping the folder removes it; a connection still streaming a file reads on from the
        // descriptor it holds.
        lock(&self.scratch).take();
    }

    /// Returns the run's scratch folder, creating it on first use; it is removed with the run.
    pub(crate) fn scratch_dir(&self) -> std::io::Result<PathBuf> {
        let mut scratch = lock(&self.scratch);
        if let Some(dir) = scratch.as_ref() {
            return Ok(dir.path().to_path_buf());
        }
        std::fs::create_dir_all(&self.scratch_root)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", self.execution_id))
            .tempdir_in(&self.scratch_root)?;
        let path = dir.path().to_path_buf();
        *scratch = Some(dir);
        Ok(path)
    }

    /// Remembers a secret value so that no message of this run can carry it.
    pub(crate) fn remember_secret(&self, value: &str) {
        if value.len() >= 4 {
            lock(&self.secrets).push(value.to_owned());
        }
    }

    /// Replaces every remembered secret value in `text` with `[REDACTED]`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let secrets = lock(&self.secrets);
        secrets
            .iter()
            .fold(text.to_owned(), |text, secret| text.replace(secret.as_str(), "[REDACTED]"))
    }
}

/// Removes the scratch folders of processes that no longer exist (killed before they could clean
/// up). Folders are named by process id; on systems without `/proc` nothing is removed.
pub(crate) fn reap_stale_scratch(scratch_root: &std::path::Path) {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(scratch_root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            tracing::info!(folder = %entry.path().display(), "removing the scratch folder of a processor that is gone");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Eviction limits of the run table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retention {
    pub(crate) finished_for: Duration,
    pub(crate) max_finished: usize,
    pub(crate) unclaimed_for: Duration,
}

/// Every run the server knows, by id.
pub(crate) struct Runs {
    table: Mutex<HashMap<ExecutionId, Arc<Run>>>,
    retention: Retention,
    scratch_root: PathBuf,
}

impl Runs {
    /// Keeps run scratch folders under `scratch_root/<pid>/`, so that the folders of a process
    /// that died without cleaning up can be recognised and removed by the next one.
    pub(crate) fn new(retention: Retention, scratch_root: &std::path::Path) -> Runs {
        let scratch_root = scratch_root.join(std::process::id().to_string());
        Runs { table: Mutex::new(HashMap::new()), retention, scratch_root }
    }

    /// Returns this process's scratch folder.
    pub(crate) fn scratch_root(&self) -> &std::path::Path {
        &self.scratch_root
    }

    /// Forgets every run (their scratch folders go with them).
    pub(crate) fn clear(&self) {
        lock(&self.table).clear();
    }

    /// Returns the run with this id, creating it (not started) when it is unknown.
    pub(crate) fn attach(&self, execution_id: &ExecutionId) -> Arc<Run> {
        self.sweep();
        let mut table = lock(&self.table);
        Arc::clone(
            table.entry(execution_id.clone()).or_insert_with(|| {
                Arc::new(Run::new(execution_id.clone(), self.scratch_root.clone()))
            }),
        )
    }

    /// Drops finished runs past their retention (the oldest first beyond the cap) and runs that
    /// no client started and nobody watches any more.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        let mut table = lock(&self.table);
        let retention = self.retention;
        table.retain(|_, run| match run.finished_at() {
            Some(finished_at) => now.duration_since(finished_at) < retention.finished_for,
            None => {
                run.is_claimed()
                    || Arc::strong_count(run) > 1
                    || now.duration_since(run.created_at) < retention.unclaimed_for
            }
        });
        let mut finished: Vec<(Instant, ExecutionId)> = table
            .iter()
            .filter_map(|(id, run)| run.finished_at().map(|at| (at, id.clone())))
            .collect();
        if finished.len() > retention.max_finished {
            finished.sort();
            let excess = finished.len() - retention.max_finished;
            for (_, id) in finished.into_iter().take(excess) {
                table.remove(&id);
            }
        }
    }

    /// Cancels every run that has not finished (shutdown).
    pub(crate) fn cancel_all(&self) {
        let runs: Vec<Arc<Run>> = lock(&self.table).values().cloned().collect();
        for run in runs {
            run.request_cancel();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.table).len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use theory_protocol::{Envelope, ErrorCode, Frame, Token};

    use super::{Retention, Runs};

    fn runs(max_finished: usize) -> Runs {
        let retention = Retention {
            finished_for: Duration::from_mins(1),
            max_finished,
            unclaimed_for: Duration::from_mins(1),
        };
        Runs::new(retention, &std::env::temp_dir())
    }

    #[test]
    fn finished_runs_are_capped() {
        let runs = runs(3);
        for index in 0..10 {
            let id = format!("E{index}").parse().unwrap();
            let run = runs.attach(&id);
            assert!(run.claim());
            run.finish(Envelope::error(id, ErrorCode::Runtime, "x"));
        }
        runs.sweep();
        assert_eq!(runs.len(), 3);
    }

    #[test]
    fn nothing_follows_the_result() {
        let runs = runs(3);
        let id = "E1".parse().unwrap();
        let run = runs.attach(&id);
        run.push_frame(&Frame::Token(Token { text: "a".into() }));
        run.finish(Envelope::error(id, ErrorCode::Runtime, "x"));
        run.push_frame(&Frame::Token(Token { text: "b".into() }));
        run.request_cancel();
        let (entries, finished) = run.entries_since(0);
        assert_eq!(entries.len(), 2);
        assert!(finished);
    }

    #[test]
    fn scratch_of_dead_processes_is_reaped() {
        let root = tempfile::tempdir().unwrap();
        // Far above any pid_max: no such process.
        let dead = root.path().join("999999999");
        let alive = root.path().join(std::process::id().to_string());
        std::fs::create_dir_all(dead.join("E1-x")).unwrap();
        std::fs::create_dir_all(&alive).unwrap();
        std::fs::create_dir_all(root.path().join("not-a-pid")).unwrap();
        super::reap_stale_scratch(root.path());
        assert!(!dead.exists());
        assert!(alive.exists());
        assert!(root.path().join("not-a-pid").exists());
    }

    #[test]
    fn secrets_are_redacted() {
        let runs = runs(3);
        let run = runs.attach(&"E1".parse().unwrap());
        run.remember_secret("sk-canary-1234");
        assert_eq!(run.redact("bad key sk-canary-1234!"), "bad key [REDACTED]!");
    }
}
