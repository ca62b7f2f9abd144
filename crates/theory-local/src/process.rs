//! The `process` runtime: the processor's own binary on this host, on a free loopback port,
//! stopped on every exit path: the child is killed when its instance is dropped, and it dies
//! with `theory` whatever ends it, SIGKILL included (Linux's parent-death signal, set in the
//! child before it runs). It runs in a process group of its own, so a Ctrl-C at the terminal
//! reaches `theory`, which cancels the run cleanly, and not the processor directly.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use theory_core::{Failure, Instance, Launch};
use theory_protocol::ErrorCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::health::wait_healthy;

/// How long a processor has to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Lines of the processor's stderr kept to explain a failed start.
const KEPT_LINES: usize = 20;

/// Where to look for a processor binary, in order: `folders` first (first match wins), then the
/// project's own cargo builds (`builds`: the newest match, so a fresh `cargo build` of either
/// profile is what runs), then `fallback` (beside `theory`, `PATH`).
#[derive(Debug, Clone, Default)]
pub struct BinarySearch {
    /// Folders named on purpose (`THEORY_PROCESSOR_PATH`).
    pub folders: Vec<PathBuf>,
    /// The project's `target/release` and `target/debug`.
    pub builds: Vec<PathBuf>,
    /// The last places to look.
    pub fallback: Vec<PathBuf>,
}

impl BinarySearch {
    /// Finds `name`; a name that is not a plain file name (a `/`, `.` or `..`) is never looked
    /// up, so a spec cannot point outside the folders.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return None;
        }
        let first = |folders: &[PathBuf]| {
            folders.iter().map(|folder| folder.join(name)).find(|candidate| candidate.is_file())
        };
        first(&self.folders)
            .or_else(|| {
                self.builds
                    .iter()
                    .map(|folder| folder.join(name))
                    .filter_map(|candidate| {
                        let modified = std::fs::metadata(&candidate).ok()?.modified().ok()?;
                        candidate.is_file().then_some((modified, candidate))
                    })
                    .max_by_key(|(modified, _)| *modified)
                    .map(|(_, candidate)| candidate)
            })
            .or_else(|| first(&self.fallback))
    }
}

/// Settings of the runtime that come from the environment.
#[derive(Debug, Clone)]
pub struct ProcessSettings {
    /// How long a processor has to print its address and answer `/healthz`.
    pub start_timeout: Duration,
    /// `RUST_LOG` for the processor.
    pub log_filter: String,
}

/// A running processor process.
pub struct ProcessInstance {
    child: Child,
    endpoint: String,
    /// The child's process group (it leads its own), kept from the spawn on: once the child is
    /// reaped its id is gone, and the group may still hold what it started.
    group: Option<nix::unistd::Pid>,
}

fn start_error(message: impl Into<String>, hint: impl Into<String>) -> Failure {
    Failure::with_hint(ErrorCode::Adapter, message, hint)
}

impl ProcessInstance {
    /// Starts `binary` on `127.0.0.1:0` and waits until it is healthy.
    pub async fn start(
        binary: &Path,
        launch: &Launch,
        settings: &ProcessSettings,
    ) -> Result<ProcessInstance, Failure> {
        let mut command = Command::new(binary);
        for name in &launch.withheld {
            command.env_remove(name);
        }
        command
            .envs(launch.secrets.iter().map(|(name, value)| (name, value)))
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("RUST_LOG", &settings.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        die_with_this_process(&mut command);
        let child = command.spawn().map_err(|error| {
            start_error(
                format!("cannot start {}: {error}", binary.display()),
                "check that the file is an executable for this machine",
            )
        })?;
        // The instance exists from the spawn on, so whatever happens next (a failed start, a
        // cancelled one) its drop kills the whole group.
        let mut instance = ProcessInstance::guard(child);
        let child = &mut instance.child;
        let kept = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_stderr(stderr, Arc::clone(&kept)));
        }
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| start_error("no stdout from the processor", "report this as a bug"))?;
        let deadline = tokio::time::Instant::now() + settings.start_timeout;
        let mut lines = BufReader::new(stdout).lines();
        let address = match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Ok(Ok(Some(line))) => listening_address(&line),
            Ok(_) => None,
            Err(_) => {
                return Err(not_ready(
                    binary,
                    &kept,
                    "did not print its listening address in time",
                ));
            }
        };
        let Some(address) = address else {
            let status = child
                .try_wait()
                .ok()
                .flatten()
                .map(|status| format!(" ({status})"))
                .unwrap_or_default();
            return Err(not_ready(
                binary,
                &kept,
                &format!("exited or printed no listening address{status}"),
            ));
        };
        // Anything else on stdout is drained so the processor never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        // A processor that dies after printing its address fails the start at once, not at the
        // deadline.
        tokio::select! {
            healthy = wait_healthy(&address, deadline) => if !healthy {
                return Err(not_ready(binary, &kept, "never answered /healthz"));
            },
            status = child.wait() => {
                // Its last words may still be on their way through the stderr forwarder.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let status = status.map(|status| format!(" ({status})")).unwrap_or_default();
                return Err(not_ready(binary, &kept, &format!("exited before it answered /healthz{status}")));
            },
        }
        instance.endpoint = format!("http://{address}");
        Ok(instance)
    }

    /// Wraps a freshly spawned child, recording its process group among the live ones.
    fn guard(child: Child) -> ProcessInstance {
        let group =
            child.id().and_then(|pid| i32::try_from(pid).ok()).map(nix::unistd::Pid::from_raw);
        if let Some(group) = group {
            live_groups().insert(group.as_raw());
        }
        ProcessInstance { child, endpoint: String::new(), group }
    }
}

/// The process groups of processors this process started and has not reaped.
fn live_groups() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<i32>> {
    static GROUPS: Mutex<std::collections::BTreeSet<i32>> =
        Mutex::new(std::collections::BTreeSet::new());
    GROUPS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Kills (SIGKILL) every processor process group this process started and still has: for an
/// exit that cannot wait for the instances to stop (a second Ctrl-C). The parent-death signal
/// takes each processor with `theory`; this takes the processes the processors started too.
pub fn kill_process_groups() {
    for group in std::mem::take(&mut *live_groups()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(group),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Makes the child die (SIGKILL) when this process does, on Linux: `PR_SET_PDEATHSIG`, set in
/// the child between fork and exec (it survives the exec). The signal follows the thread that
/// forked, so processes are started from threads that live as long as `theory`: the CLI's one
/// runtime thread, or a multi-threaded runtime's workers (never a blocking-pool thread).
#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "pre_exec is the only place to set the parent-death signal of a child before it runs; the closure makes three async-signal-safe system calls and neither allocates nor locks"
)]
fn die_with_this_process(command: &mut Command) {
    let parent = nix::unistd::getpid();
    let set = move || -> std::io::Result<()> {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
        // `theory` may have died between the fork and the prctl: then nothing would stop this
        // child, so it does not start.
        if nix::unistd::getppid() != parent {
            return Err(nix::errno::Errno::ESRCH.into());
        }
        Ok(())
    };
    // SAFETY: `set` only makes system calls that are async-signal-safe (prctl, getppid) and
    // builds its error from an errno without allocating, as code between fork and exec must.
    unsafe {
        command.pre_exec(set);
    }
}

/// Other systems have no parent-death signal: the instance's drop and the signal handlers of the
/// CLI stop the child, and only a SIGKILL of `theory` can leave it running.
#[cfg(not(target_os = "linux"))]
fn die_with_this_process(_command: &mut Command) {}

impl Drop for ProcessInstance {
    /// Dropped without `stop` (a timeout, a cancelled run): the whole group is killed; the child
    /// itself is also killed by `kill_on_drop`.
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            live_groups().remove(&group.as_raw());
        }
    }
}

fn listening_address(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    value.get("listening")?.as_str().map(str::to_owned)
}

fn not_ready(binary: &Path, kept: &Mutex<VecDeque<String>>, what: &str) -> Failure {
    let lines = kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let tail: Vec<&str> = lines.iter().map(String::as_str).collect();
    let tail = if tail.is_empty() {
        String::new()
    } else {
        format!("; its last output: {}", tail.join(" | "))
    };
    start_error(
        format!("the processor {} {what}{tail}", binary.display()),
        "run it by hand with PORT=0 to see why, or raise THEORY_START_TIMEOUT_S",
    )
}

/// Forwards the processor's stderr to our log (where secrets are redacted) and keeps the tail.
async fn forward_stderr(stderr: tokio::process::ChildStderr, kept: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(target: "processor", "{line}");
        let mut kept = kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() == KEPT_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }
}

#[async_trait]
impl Instance for ProcessInstance {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Asks the processor to stop (SIGTERM: it finishes cleanly and removes its scratch files),
    /// and kills it when it has not gone within the grace period.
    async fn stop(mut self: Box<Self>) {
        let Some(group) = self.group.take() else { return };
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        let stopped = tokio::time::timeout(STOP_GRACE, self.child.wait()).await.is_ok();
        // Whatever the processor started and left behind goes with it, or all of it when it did
        // not stop in time.
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        if !stopped {
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        }
        live_groups().remove(&group.as_raw());
    }
}
