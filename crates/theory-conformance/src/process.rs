//! Starting a processor binary on a free port, and reading its resource use from `/proc`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// A processor process started for a test; killed when dropped.
pub struct SpawnedProcessor {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// Its process id.
    pub pid: u32,
}

impl SpawnedProcessor {
    /// Starts `program` with `PORT=0` on loopback, learns its address from the
    /// `{"listening":…}` line it prints, and waits for `/healthz` (30 s at most).
    pub async fn start(program: &Path, envs: &[(&str, &str)]) -> Result<SpawnedProcessor, String> {
        SpawnedProcessor::start_with_args(program, &[], envs).await
    }

    /// [`SpawnedProcessor::start`] with arguments (`python -m theory_processor serve …`).
    pub async fn start_with_args(
        program: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<SpawnedProcessor, String> {
        let mut command = Command::new(program);
        command
            .args(args)
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("RUST_LOG", "warn")
            // A panic with backtraces on would load the debug info of a test build (~200 MiB) into
            // the process and hide what the memory checks measure.
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (name, value) in envs {
            command.env(name, value);
        }
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", program.display()))?;
        let pid = child.id().ok_or("the processor exited at once")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line)).await;
        if !matches!(read, Ok(Ok(count)) if count > 0) {
            return Err(format!("{} never printed its listening address", program.display()));
        }
        let listening: serde_json::Value = serde_json::from_str(line.trim())
            .map_err(|error| format!("bad listening line {line:?}: {error}"))?;
        let address = listening["listening"]
            .as_str()
            .ok_or_else(|| format!("bad listening line {line:?}"))?;
        let base_url = format!("http://{address}");
        wait_healthy(&base_url, Duration::from_secs(30)).await?;
        Ok(SpawnedProcessor { child, _stdout: stdout, base_url, pid })
    }

    /// Returns whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for exit, returning whether it exited in time.
    pub async fn stop(mut self, deadline: Duration) -> bool {
        terminate(self.pid);
        tokio::time::timeout(deadline, self.child.wait()).await.is_ok()
    }
}

fn terminate(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

impl Drop for SpawnedProcessor {
    /// Stops the processor the way a supervisor does — SIGTERM, so it removes its scratch files —
    /// and kills it if it has not gone within 5 s.
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        terminate(self.pid);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Polls `GET /healthz` until it answers 200 or `deadline` passes.
pub async fn wait_healthy(base_url: &str, deadline: Duration) -> Result<(), String> {
    let client = crate::http_client();
    let until = tokio::time::Instant::now() + deadline;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Ok(response) = client.get(format!("{base_url}/healthz")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= until {
            return Err(format!("{base_url}/healthz never answered 200"));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Resource use of a process, read from `/proc/<pid>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStats {
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Resident memory now, in bytes.
    pub rss_bytes: u64,
    /// Peak resident memory since start, in bytes.
    pub peak_rss_bytes: u64,
}

/// Reads [`ProcessStats`] for `pid`.
pub fn process_stats(pid: u32) -> std::io::Result<ProcessStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    Ok(ProcessStats {
        threads: field("Threads:"),
        fds,
        rss_bytes: field("VmRSS:") * 1024,
        peak_rss_bytes: field("VmHWM:") * 1024,
    })
}

/// The peak resident memory of a process and of the processes it started, each on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peaks {
    /// The process's own peak, in bytes.
    pub own: u64,
    /// The largest peak among its children, in bytes.
    pub children: u64,
}

/// Waits for `child` to end, reading its and its children's peak resident memory (`VmHWM`)
/// every millisecond meanwhile: a peak only grows, so any reading after it is the peak (a
/// process that reached its peak in its last millisecond may be read short).
pub fn wait_with_peaks(
    child: &mut std::process::Child,
) -> std::io::Result<(std::process::ExitStatus, Peaks)> {
    let mut peaks = Peaks::default();
    loop {
        if let Ok(stats) = process_stats(child.id()) {
            peaks.own = peaks.own.max(stats.peak_rss_bytes);
        }
        for pid in children(child.id()) {
            if let Ok(stats) = process_stats(pid) {
                peaks.children = peaks.children.max(stats.peak_rss_bytes);
            }
        }
        if let Some(status) = child.try_wait()? {
            return Ok((status, peaks));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The children of `pid`, whichever of its threads started them.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace().filter_map(|pid| pid.parse().ok()).collect::<Vec<u32>>()
        })
        .collect()
}
