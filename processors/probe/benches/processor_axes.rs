//! The processor's share of issue 18's axes, on the probe binary, one line each with its goal:
//! - a mock run over a new WebSocket per run, 200 in a row (p50 of the run, and with connect);
//! - the connections to an upload host after a burst of 200 runs with `put_urls`, and a few
//!   seconds later;
//! - what finished runs keep on disk for replay, after runs with 16 MiB outputs.
//!
//! `THEORY_BENCH_BASELINE_PROBE=/path/to/an/older/theory-probe` measures that binary too.
//! Run with `scripts/bench`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use theory_conformance::client::{client_open, open, payload_mut};
use theory_conformance::process::SpawnedProcessor;
use theory_conformance::sink::UploadSink;
use theory_processor::protocol::Mode;

const RUNS: usize = 200;
const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut probes = vec![("this build", PathBuf::from(env!("CARGO_BIN_EXE_theory-probe")))];
    if let Some(baseline) = std::env::var_os("THEORY_BENCH_BASELINE_PROBE") {
        probes.push(("baseline", PathBuf::from(baseline)));
    }
    for (name, probe) in &probes {
        eprintln!("[{name}] {}", websocket_axis(probe).await);
        eprintln!("[{name}] {}", upload_connections_axis(probe).await);
        eprintln!("[{name}] {}", replay_files_axis(probe).await);
    }
}

/// The median of `samples`, in milliseconds.
fn p50(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

/// 200 mock runs in a row, each on a new WebSocket.
async fn websocket_axis(probe: &Path) -> String {
    let processor = SpawnedProcessor::start(probe, &[]).await.expect("probe starts");
    let (mut runs, mut whole) = (Vec::with_capacity(RUNS), Vec::with_capacity(RUNS));
    for n in 0..RUNS + 20 {
        let started = Instant::now();
        let mut connection = open(&processor.base_url).await.expect("connects");
        let connected = Instant::now();
        let frame = client_open(&format!("ws-{n}"), Mode::Mock, json!({}), None);
        connection.send(&frame).await.expect("sent");
        let transcript = connection.collect(DEADLINE).await;
        assert!(transcript.result().is_some(), "run {n} ended without a result");
        if n >= 20 {
            runs.push(connected.elapsed());
            whole.push(started.elapsed());
        }
    }
    processor.stop(Duration::from_secs(5)).await;
    format!(
        "processor mock run, a new WebSocket per run, {RUNS} in a row: p50 {:.3} ms run, {:.3} ms with connect | goal: p50 < 1 ms run",
        p50(&mut runs),
        p50(&mut whole)
    )
}

/// The processor's TCP connections to `port`, by state (from `/proc/<pid>/net/tcp` and the
/// process's socket descriptors).
fn connections_to(pid: u32, port: u16) -> BTreeMap<&'static str, usize> {
    let owned: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| std::fs::read_link(entry.path()).ok())
                .filter_map(|target| {
                    let target = target.display().to_string();
                    target.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    let mut states = BTreeMap::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(remote), Some(state), Some(inode)) =
            (fields.get(2), fields.get(3), fields.get(9))
        else {
            continue;
        };
        let remote_port =
            remote.rsplit_once(':').and_then(|(_, port)| u16::from_str_radix(port, 16).ok());
        if remote_port != Some(port) || !owned.iter().any(|owned| owned == inode) {
            continue;
        }
        let name = match *state {
            "01" => "established",
            "02" => "syn-sent",
            "06" => "time-wait",
            "08" => "close-wait",
            _ => "other",
        };
        *states.entry(name).or_insert(0) += 1;
    }
    states
}

fn total(states: &BTreeMap<&str, usize>) -> usize {
    states.values().sum()
}

/// A burst of 200 runs, each uploading its outputs to `put_urls` on one host.
async fn upload_connections_axis(probe: &Path) -> String {
    let processor = SpawnedProcessor::start(probe, &[]).await.expect("probe starts");
    let sink = UploadSink::start().await.expect("sink");
    let port: u16 = sink
        .url("x")
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next()?.parse().ok())
        .expect("the sink's port");
    let burst: Vec<_> = (0..RUNS)
        .map(|n| {
            let base_url = processor.base_url.clone();
            let mut plan = BTreeMap::new();
            for relpath in ["echo.txt", "meta.json"] {
                plan.insert(format!("outputs/{relpath}"), sink.url(&format!("{n}/{relpath}")));
            }
            plan.insert("outputs.json".to_owned(), sink.url(&format!("{n}/outputs.json")));
            tokio::spawn(async move {
                let mut frame = client_open(
                    &format!("up-{n}"),
                    Mode::Mock,
                    json!({}),
                    Some("/artifacts/outputs/b/"),
                );
                payload_mut(&mut frame).put_urls = Some(plan);
                let mut connection = open(&base_url).await.expect("connects");
                connection.send(&frame).await.expect("sent");
                connection.collect(DEADLINE).await
            })
        })
        .collect();
    for run in burst {
        let transcript = run.await.expect("run task");
        assert!(transcript.result().is_some(), "an upload run ended without a result");
    }
    let after_burst = connections_to(processor.pid, port);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let later = connections_to(processor.pid, port);
    processor.stop(Duration::from_secs(5)).await;
    format!(
        "connections to the upload host after {RUNS} runs with put_urls: {} ({after_burst:?}), 5 s later {} | goal: bounded per host, idle ones closed within seconds",
        total(&after_burst),
        total(&later)
    )
}

/// Disk kept for replay after 20 runs with a 16 MiB output each.
async fn replay_files_axis(probe: &Path) -> String {
    const SIZE: u64 = 16 << 20;
    let scratch = tempfile::tempdir().expect("scratch");
    let scratch_text = scratch.path().display().to_string();
    let processor =
        SpawnedProcessor::start(probe, &[("THEORY_SCRATCH_DIR", scratch_text.as_str())])
            .await
            .expect("probe starts");
    for n in 0..20 {
        let frame = client_open(
            &format!("replay-{n}"),
            Mode::Mock,
            json!({"params": {"size_bytes": SIZE}}),
            None,
        );
        let mut connection = open(&processor.base_url).await.expect("connects");
        connection.send(&frame).await.expect("sent");
        let transcript = connection.collect(DEADLINE).await;
        assert!(transcript.result().is_some(), "a replay run ended without a result");
    }
    let kept = disk_usage(scratch.path());
    processor.stop(Duration::from_secs(5)).await;
    format!(
        "finished runs' scratch files after 20 runs with a 16 MiB output: {:.1} MiB kept ({:.1} × one output) | goal: frames and CIDs kept, not large outputs' bytes",
        kept as f64 / f64::from(1 << 20),
        kept as f64 / SIZE as f64
    )
}

/// Bytes of every file under `folder`.
fn disk_usage(folder: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(folder) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => disk_usage(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |metadata| metadata.len()),
            Err(_) => 0,
        })
        .sum()
}
