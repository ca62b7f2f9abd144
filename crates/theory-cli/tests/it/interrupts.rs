//! No run outlives `theory`: SIGINT and SIGTERM cancel a run cleanly (the processor stopped, the
//! run recorded as `ERR_CANCELLED`, exit 130 or 143), and a SIGKILL of `theory` takes the
//! processor with it; the next command marks that run failed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use theory_conformance::process::children;

use crate::support::{Project, binaries, binary};

/// Starts `theory run` of a probe that sleeps, on the process runtime, `--json`.
fn sleeping_run(project: &Project) -> Child {
    Command::new(binary())
        .current_dir(project.path())
        .env_clear()
        .env("THEORY_PROJECT", project.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("THEORY_PROCESSOR_PATH", binaries())
        .env("THEORY_LOCAL_RUNTIME", "process")
        .args(["run", "--ref", "theory/probe@1", "--json", "--no-cache"])
        .args(["--inputs-json", r#"{"sleep_ms":60000,"relpath":"partial.txt"}"#])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("theory starts")
}

/// Whether a process is gone (no entry, or a zombie nobody reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// Waits until `theory` has started its processor and the processor answers; returns its pid.
fn processor_of(theory: &Child) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(&child) = children(theory.id()).first()
            && std::fs::read_to_string(format!("/proc/{child}/cmdline"))
                .is_ok_and(|line| line.contains("theory-probe"))
            && listening(child)
        {
            return child;
        }
        assert!(Instant::now() < deadline, "the processor never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process has a listening TCP socket (the probe on its loopback port).
fn listening(pid: u32) -> bool {
    let Ok(table) = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")) else { return false };
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter(|line| line.split_whitespace().nth(3) == Some("0A"))
        .filter_map(|line| line.split_whitespace().nth(9).map(str::to_owned))
        .collect();
    let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    descriptors.flatten().any(|entry| {
        std::fs::read_link(entry.path()).is_ok_and(|target| {
            let target = target.display().to_string();
            inodes.iter().any(|inode| target == format!("socket:[{inode}]"))
        })
    })
}

fn wait_gone(pid: u32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(pid) {
        assert!(Instant::now() < deadline, "{what}: the processor {pid} outlived theory");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, signal: Signal) {
    kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), signal).unwrap();
}

fn nothing_left_under_outputs(project: &Path) {
    let outputs = project.join(".theory/artifacts/artifacts/outputs");
    let left: Vec<_> = crate::support::files_under(&outputs);
    assert!(left.is_empty(), "a cancelled run left outputs: {left:?}");
}

#[test]
fn sigint_and_sigterm_cancel_the_run_cleanly_and_exit_130_or_143() {
    for (sent, code) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
        let project = Project::new();
        let theory = sleeping_run(&project);
        let processor = processor_of(&theory);
        let started = Instant::now();
        signal(&theory, sent);
        let output = theory.wait_with_output().unwrap();
        assert!(started.elapsed() < Duration::from_secs(10), "{sent}: cancelling took too long");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{sent}: {stderr}");
        let envelope: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(envelope["error"]["code"], "ERR_CANCELLED", "{sent}: {envelope}");
        assert!(stderr.contains("cancel"), "{sent}: {stderr}");
        wait_gone(processor, sent.as_ref());
        nothing_left_under_outputs(project.path());
        // The ledger closed the run itself: no later command had to recover it.
        let listed = project.run(&["executions", "list", "--json"]).json();
        let run = &listed["executions"][0];
        assert_eq!(run["status"], "error", "{sent}: {run}");
        assert_eq!(run["error_code"], "ERR_CANCELLED", "{sent}: {run}");
    }
}

#[test]
fn a_sigkill_of_theory_takes_its_processor_with_it() {
    let project = Project::new();
    let mut theory = sleeping_run(&project);
    let processor = processor_of(&theory);
    signal(&theory, Signal::SIGKILL);
    theory.wait().unwrap();
    wait_gone(processor, "SIGKILL");
    // The next command finds the run's theory gone and closes the record.
    let listed = project.run(&["executions", "list", "--json"]).json();
    assert_eq!(listed["executions"][0]["error_code"], "ERR_RUNTIME", "{listed}");
}
