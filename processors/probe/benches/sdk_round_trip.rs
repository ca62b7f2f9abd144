//! The Rust SDK and the Python SDK (`sdk/python`) side by side, each serving its probe on
//! loopback and measured by the same client in the same run: start to healthy, idle memory, one
//! mock run at a time (p50/p99 of the round trip), and 50 runs at once (wall time, peak memory).
//! Memory is the whole process tree: the Python server runs its handlers in worker processes.
//! Run with `scripts/bench`; the Python is `THEORY_SDK_PYTHON` (`scripts/setup-python-sdk`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use theory_conformance::client::{client_open, run_once};
use theory_conformance::process::{SpawnedProcessor, process_stats};
use theory_processor::protocol::Mode;

const MIB: f64 = 1024.0 * 1024.0;
const SEQUENTIAL: usize = 500;
const AT_ONCE: usize = 50;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rust = Path::new(env!("CARGO_BIN_EXE_theory-probe")).to_path_buf();
    let python =
        PathBuf::from(std::env::var("THEORY_SDK_PYTHON").unwrap_or_else(|_| "python3".into()));
    let provider = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/python/examples/probe.py");
    let provider = provider.display().to_string();
    let python_args =
        ["-m", "theory_processor", "serve", provider.as_str(), "--ref", "theory/pyprobe@1"];
    measure("rust sdk", &rust, &[]).await;
    measure("python sdk", &python, &python_args).await;
}

async fn measure(name: &str, program: &Path, args: &[&str]) {
    let started = Instant::now();
    let processor =
        SpawnedProcessor::start_with_args(program, args, &[("THEORY_RUN_RETENTION_S", "1")])
            .await
            .unwrap_or_else(|error| panic!("{name}: {error}"));
    let healthy = started.elapsed();
    let tag = name.replace(' ', "-");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idle, _) = tree_memory(processor.pid);
    for n in 0..20 {
        one_run(&processor.base_url, &format!("{tag}-warm-{n}")).await;
    }
    let mut round_trips = Vec::with_capacity(SEQUENTIAL);
    for n in 0..SEQUENTIAL {
        let run_started = Instant::now();
        one_run(&processor.base_url, &format!("{tag}-seq-{n}")).await;
        round_trips.push(run_started.elapsed());
    }
    round_trips.sort();
    let at_once_started = Instant::now();
    let runs: Vec<_> = (0..AT_ONCE)
        .map(|n| {
            let base_url = processor.base_url.clone();
            let id = format!("{tag}-conc-{n}");
            tokio::spawn(async move { one_run(&base_url, &id).await })
        })
        .collect();
    for run in runs {
        run.await.expect("run");
    }
    let at_once = at_once_started.elapsed();
    let (_, peak) = tree_memory(processor.pid);
    eprintln!(
        "{name}: healthy {:.0} ms after start, idle {:.1} MiB; mock run p50 {:.2} ms, p99 {:.2} ms ({SEQUENTIAL} in a row); {AT_ONCE} at once in {:.0} ms, peak {:.1} MiB (process tree)",
        healthy.as_secs_f64() * 1000.0,
        idle / MIB,
        round_trips[SEQUENTIAL / 2].as_secs_f64() * 1000.0,
        round_trips[SEQUENTIAL * 99 / 100].as_secs_f64() * 1000.0,
        at_once.as_secs_f64() * 1000.0,
        peak / MIB,
    );
    assert!(processor.stop(Duration::from_secs(10)).await, "{name} did not stop on SIGTERM");
}

async fn one_run(base_url: &str, id: &str) {
    let frame = client_open(id, Mode::Mock, json!({"text": "hello bench"}), None);
    let transcript = run_once(base_url, &frame, Duration::from_secs(30)).await.expect("run");
    assert_eq!(transcript.outputs.len(), 2, "{id}: outputs");
}

/// The resident and peak memory of `pid` and its children, in bytes.
fn tree_memory(pid: u32) -> (f64, f64) {
    let mut pids = vec![pid];
    if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        pids.extend(children.split_whitespace().filter_map(|child| child.parse::<u32>().ok()));
    }
    pids.iter().filter_map(|pid| process_stats(*pid).ok()).fold((0.0, 0.0), |(rss, peak), stats| {
        (rss + stats.rss_bytes as f64, peak + stats.peak_rss_bytes as f64)
    })
}
