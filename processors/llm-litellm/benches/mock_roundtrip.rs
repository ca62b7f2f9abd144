//! Mock-run round-trip latency of `llm/litellm@1` on loopback, as p50/p99.
//!
//! Two figures: over a warm WebSocket (connection and handshake done beforehand; timed from
//! sending `RunOpen` to receiving `RunResult`), and cold (connect + handshake + run + close).
//! Run with `cargo bench -p llm-litellm --bench mock_roundtrip`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use theory_conformance::client::{client_open, open, run_once};
use theory_conformance::process::SpawnedProcessor;
use theory_processor::protocol::{Frame, Mode};

const RUNS: usize = 2000;

/// Returns the sample at `per_mille` / 1000 of the sorted list (nearest rank).
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[(sorted.len() - 1) * per_mille / 1000]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    eprintln!(
        "{name:<34} p50 {:>9.3?}  p99 {:>9.3?}  min {:>9.3?}  ({} runs)",
        percentile(&samples, 500),
        percentile(&samples, 990),
        samples[0],
        samples.len()
    );
}

async fn warm_run(base_url: &str, index: usize) -> Duration {
    let inputs = json!({"messages": [{"role": "user", "content": "Hello benchmark"}]});
    let frame = client_open(&format!("bench-warm-{index}"), Mode::Mock, inputs, None);
    let mut connection = open(base_url).await.expect("open");
    let started = Instant::now();
    connection.send(&frame).await.expect("send");
    while let Some(frame) = connection.next_frame(Duration::from_secs(10)).await {
        if let Frame::RunResult(envelope) = frame {
            assert!(envelope.error_code().is_none(), "{envelope:?}");
            return started.elapsed();
        }
    }
    panic!("no RunResult");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let binary = Path::new(env!("CARGO_BIN_EXE_llm-litellm"));
    let processor = SpawnedProcessor::start(binary, &[]).await.expect("start");
    let base_url = processor.base_url.clone();
    for index in 0..200 {
        warm_run(&base_url, 1_000_000 + index).await;
    }
    let mut warm = Vec::with_capacity(RUNS);
    for index in 0..RUNS {
        warm.push(warm_run(&base_url, index).await);
    }
    report("mock run, warm WebSocket", warm);

    let mut cold = Vec::with_capacity(RUNS);
    for index in 0..RUNS {
        let inputs = json!({"messages": [{"role": "user", "content": "Hello benchmark"}]});
        let frame = client_open(&format!("bench-cold-{index}"), Mode::Mock, inputs, None);
        let started = Instant::now();
        let transcript = run_once(&base_url, &frame, Duration::from_secs(10)).await.expect("run");
        cold.push(started.elapsed());
        assert!(transcript.result().is_some_and(|envelope| envelope.error_code().is_none()));
    }
    report("mock run, connect + handshake + run", cold);
}
