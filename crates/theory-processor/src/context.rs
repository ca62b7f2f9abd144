//! What a runner can do while it runs: stream tokens and logs, watch for cancellation, read
//! secrets and input files, and use scratch space.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use theory_protocol::{Cid, Event, ExecutionId, Frame, Log, Mode, Phase, Token};

use crate::ProcessorError;
use crate::run::{Entry, Retention, Run, Runs};

/// An input file that arrived (as `File` frames or from its `get_url`) and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Its world path, the key of `payload.files` and of `$artifact` references.
    pub world_path: String,
    /// Where its bytes are on this machine.
    pub path: PathBuf,
    /// Its verified CID.
    pub cid: Cid,
    /// Its length in bytes.
    pub size_bytes: u64,
    /// Its media type.
    pub mime: String,
}

/// The handle a runner gets for one run. Cloning it is cheap.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    run: Arc<Run>,
    mode: Mode,
    write_prefix: String,
    files: BTreeMap<String, InputFile>,
}

impl Context {
    pub(crate) fn new(
        run: Arc<Run>,
        mode: Mode,
        write_prefix: String,
        files: BTreeMap<String, InputFile>,
    ) -> Context {
        Context { inner: Arc::new(Inner { run, mode, write_prefix, files }) }
    }

    /// Builds a context that belongs to no server, for a runner's unit tests; read what the
    /// runner streamed with [`Context::frames`].
    pub fn detached(mode: Mode) -> Context {
        let retention = Retention {
            finished_for: std::time::Duration::ZERO,
            max_finished: 0,
            unclaimed_for: std::time::Duration::ZERO,
        };
        let runs = Runs::new(retention, &std::env::temp_dir().join("theory-processor"));
        let execution_id: ExecutionId =
            "detached".parse().unwrap_or_else(|_| unreachable!("valid id"));
        let run = runs.attach(&execution_id);
        Context::new(run, mode, "/artifacts/outputs/detached/".into(), BTreeMap::new())
    }

    /// Returns the text frames streamed so far (tokens, logs, events), decoded.
    pub fn frames(&self) -> Vec<Frame> {
        let (entries, _) = self.inner.run.entries_since(0);
        entries
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Text(text) => Frame::from_json(text.as_str()).ok().map(|(frame, _)| frame),
                Entry::Output { .. } => None,
            })
            .collect()
    }

    /// Returns the run's id.
    pub fn execution_id(&self) -> &ExecutionId {
        &self.inner.run.execution_id
    }

    /// Returns `mock` or `real`. In `mock`, make no network call and read no secret.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// Returns the expanded write prefix outputs land under, ending with `/`.
    pub fn write_prefix(&self) -> &str {
        &self.inner.write_prefix
    }

    /// Streams a piece of text to every connection, in order.
    pub fn token(&self, text: impl Into<String>) {
        self.inner.run.push_frame(&Frame::Token(Token { text: text.into() }));
    }

    /// Sends a log line at `level` (`debug`, `info`, `warn`, `error`); secret values are redacted.
    pub fn log(&self, level: &str, message: impl AsRef<str>) {
        let msg = self.inner.run.redact(message.as_ref());
        self.inner.run.push_frame(&Frame::Log(Log { level: level.to_owned(), msg }));
    }

    /// Sends an `info` log line.
    pub fn info(&self, message: impl AsRef<str>) {
        self.log("info", message);
    }

    /// Sends an `Event` with a phase of the processor's own and detail fields.
    pub fn event(&self, phase: &str, detail: BTreeMap<String, Value>) {
        let event = Event { phase: Phase::Other(phase.to_owned()), detail };
        self.inner.run.push_frame(&Frame::Event(event));
    }

    /// Returns whether a controller asked the run to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.run.cancel_token().is_cancelled()
    }

    /// Completes when a controller asks the run to stop; select on it around slow work.
    pub async fn cancelled(&self) {
        self.inner.run.cancel_token().cancelled().await;
    }

    /// Reads a required secret from the environment: `ERR_MISSING_SECRET` naming it when absent.
    /// The value is remembered so that no log line or error message of this run can carry it.
    pub fn secret(&self, name: &str) -> Result<String, ProcessorError> {
        self.optional_secret(name).ok_or_else(|| ProcessorError::missing_secret(name))
    }

    /// Reads an optional secret from the environment; empty values count as absent.
    pub fn optional_secret(&self, name: &str) -> Option<String> {
        let value = std::env::var(name).ok().filter(|value| !value.is_empty())?;
        self.inner.run.remember_secret(&value);
        Some(value)
    }

    /// Replaces every secret value this run has read with `[REDACTED]`.
    pub fn redact(&self, text: &str) -> String {
        self.inner.run.redact(text)
    }

    /// Returns an input file by its world path.
    pub fn input_file(&self, world_path: &str) -> Option<&InputFile> {
        self.inner.files.get(world_path)
    }

    /// Returns every input file, by world path.
    pub fn input_files(&self) -> &BTreeMap<String, InputFile> {
        &self.inner.files
    }

    /// Returns this run's scratch folder, removed when the run is forgotten. Write large outputs
    /// here and return them with [`crate::OutputItem::file`].
    pub fn scratch_dir(&self) -> std::io::Result<PathBuf> {
        self.inner.run.scratch_dir()
    }
}
