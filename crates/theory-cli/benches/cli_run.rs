//! `theory run --mode mock` as a whole process: median of many runs, the peak RSS, and how much
//! of the time is Theory's own (everything but starting the processor and its run).
//! Run with `scripts/bench` (it builds the release binaries first).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 30;
const HELLO: &str = r#"{"messages":[{"role":"user","content":"Hello"}]}"#;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn theory() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_theory"))
}

fn run_cli(project: &Path) -> (Duration, u64) {
    let started = Instant::now();
    let output = Command::new(theory())
        .args([
            "run",
            "--ref",
            "llm/litellm@1",
            "--mode",
            "mock",
            "--inputs-json",
            HELLO,
            "--json",
            "--no-cache",
        ])
        .current_dir(project)
        .env("THEORY_LOG", "warn")
        // The host-binary runtime; benches/docker_local.rs of theory-local measures Docker.
        .env("THEORY_LOCAL_RUNTIME", "process")
        .stderr(Stdio::inherit())
        .output()
        .expect("theory runs");
    let elapsed = started.elapsed();
    assert!(output.status.success(), "theory failed: {}", String::from_utf8_lossy(&output.stdout));
    let envelope: serde_json::Value = serde_json::from_slice(&output.stdout).expect("an envelope");
    (elapsed, envelope["meta"]["duration_ms"].as_u64().unwrap_or(0))
}

/// Starts the processor by hand and times spawn → listening → healthy.
fn processor_start(binary: &Path) -> Duration {
    use std::io::{BufRead, BufReader, Read, Write};
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("processor starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let value: serde_json::Value = serde_json::from_str(line.trim()).expect("listening JSON");
    let address = value["listening"].as_str().expect("address").to_owned();
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
            let _ = write!(stream, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            if response.starts_with("HTTP/1.1 200") {
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn main() {
    let folder = theory().parent().expect("a folder").to_path_buf();
    let processor = folder.join("llm-litellm");
    assert!(
        processor.is_file(),
        "{} is missing: run scripts/bench (it builds the release binaries)",
        processor.display()
    );
    let project = tempfile::tempdir().expect("temp dir");
    for _ in 0..3 {
        run_cli(project.path());
    }
    let (wall, inside): (Vec<Duration>, Vec<u64>) =
        (0..RUNS).map(|_| run_cli(project.path())).unzip();
    let peak_kib = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_or(0, |usage| usage.max_rss());
    let starts: Vec<Duration> = (0..RUNS).map(|_| processor_start(&processor)).collect();
    let whole = median(wall);
    let start = median(starts);
    let mut inside = inside;
    inside.sort_unstable();
    eprintln!("theory run --mode mock, whole process, median of {RUNS}: {whole:.2?}");
    eprintln!(
        "  of which inside the orchestrator (envelope duration_ms), median: {} ms",
        inside[RUNS / 2]
    );
    eprintln!("  processor spawn → listening → healthy, median: {start:.2?}");
    eprintln!(
        "  Theory's own share (whole − processor start): {:.2?}",
        whole.saturating_sub(start)
    );
    eprintln!(
        "peak RSS of any process in the run (theory or its processor): {:.1} MiB",
        peak_kib as f64 / 1024.0
    );
}
