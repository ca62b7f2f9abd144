//! Output streaming throughput: a 1 GiB output of `theory/probe@1` sent over loopback and hashed
//! by the receiver as it streams (median of 3 runs), with the processor's peak RSS.
//! Run with `cargo bench -p theory-probe --bench output_streaming`.
//!
//! The probe writes the output file just before it is streamed; its scratch folder goes to
//! `/dev/shm` when there is one, so the streaming figure is not mixed with disk write-back of
//! that fresh gigabyte.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use theory_conformance::client::{client_open, run_once};
use theory_conformance::process::{SpawnedProcessor, process_stats};
use theory_processor::protocol::Mode;

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: f64 = 1024.0 * 1024.0;
const RUNS: usize = 3;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let binary = Path::new(env!("CARGO_BIN_EXE_theory-probe"));
    let scratch = if Path::new("/dev/shm").is_dir() { "/dev/shm/theory-bench" } else { "" };
    let mut envs = vec![("THEORY_RUN_RETENTION_S", "1")];
    if !scratch.is_empty() {
        envs.push(("THEORY_SCRATCH_DIR", scratch));
    }
    let processor = SpawnedProcessor::start(binary, &envs).await.expect("start");
    let mut streaming = Vec::new();
    let mut whole = Vec::new();
    for run in 0..RUNS {
        let frame = client_open(
            &format!("bench-stream-{run}"),
            Mode::Mock,
            json!({"size_bytes": GIB}),
            None,
        );
        let started = Instant::now();
        let transcript =
            run_once(&processor.base_url, &frame, Duration::from_mins(10)).await.expect("run");
        whole.push(started.elapsed());
        let blob = transcript
            .outputs
            .iter()
            .find(|output| output.header.path == "blob.bin")
            .expect("blob.bin");
        assert!(blob.is_intact(), "bytes do not match the announced CID");
        assert_eq!(blob.received_bytes, GIB);
        streaming.push(blob.finished_at.duration_since(blob.header_at));
    }
    streaming.sort();
    whole.sort();
    let mib = GIB as f64 / MIB;
    let (stream, total) = (streaming[RUNS / 2], whole[RUNS / 2]);
    let stats = process_stats(processor.pid).expect("stats");
    eprintln!(
        "1 GiB output streamed and hashed by the receiver (median of {RUNS}): {stream:.2?} ({:.0} MiB/s)",
        mib / stream.as_secs_f64()
    );
    eprintln!(
        "whole run (write file + hash + stream + verify), median: {total:.2?} ({:.0} MiB/s)",
        mib / total.as_secs_f64()
    );
    eprintln!("processor peak RSS over all runs: {:.1} MiB", stats.peak_rss_bytes as f64 / MIB);
}
