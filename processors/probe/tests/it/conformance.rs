//! The conformance suite against the probe binary; nothing may be skipped.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use theory_conformance::process::SpawnedProcessor;
use theory_conformance::{RunSpec, Target, run_suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_passes_the_whole_suite() -> Result<(), String> {
    let grace = Duration::from_millis(1500);
    let scratch = tempfile::tempdir().map_err(|error| error.to_string())?;
    let scratch_dir = scratch.path().display().to_string();
    let processor = SpawnedProcessor::start(
        Path::new(env!("CARGO_BIN_EXE_theory-probe")),
        &[
            ("THEORY_CANCEL_GRACE_MS", "1500"),
            ("THEORY_RUN_RETENTION_S", "60"),
            ("THEORY_SCRATCH_DIR", &scratch_dir),
        ],
    )
    .await?;
    let mut target =
        Target::new(&processor.base_url, RunSpec::mock(json!({"text": "hello probe"})))
            .with_probe_runs();
    target.pid = Some(processor.pid);
    target.cancel_grace = grace;

    let report = run_suite(&target).await;
    eprintln!("{report}");
    assert!(report.failures().is_empty(), "conformance failures:\n{report}");
    assert!(report.not_applicable().is_empty(), "checks not applied:\n{report}");
    assert!(processor.stop(Duration::from_secs(10)).await, "the probe did not exit on SIGTERM");
    // A clean stop removes every scratch file (256 MiB of large output among them).
    let left: Vec<_> = std::fs::read_dir(scratch.path())
        .map_err(|error| error.to_string())?
        .flatten()
        .map(|entry| entry.path())
        .collect();
    assert!(left.is_empty(), "scratch left behind: {left:?}");
    Ok(())
}
