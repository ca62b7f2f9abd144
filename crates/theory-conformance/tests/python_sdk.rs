//! The conformance suite against a processor written with the Python SDK (`sdk/python`, its
//! `examples/probe.py` served by `python -m theory_processor serve`); nothing may be skipped.
//! The Python is `THEORY_SDK_PYTHON` (`scripts/test` makes its environment), else `python3`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use theory_conformance::process::SpawnedProcessor;
use theory_conformance::{RunSpec, Target, run_suite};

fn python() -> PathBuf {
    PathBuf::from(std::env::var("THEORY_SDK_PYTHON").unwrap_or_else(|_| "python3".into()))
}

fn probe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/python/examples/probe.py")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_processor_passes_the_whole_suite() -> Result<(), String> {
    let grace = Duration::from_millis(1500);
    let scratch = tempfile::tempdir().map_err(|error| error.to_string())?;
    let scratch_dir = scratch.path().display().to_string();
    let provider = probe().display().to_string();
    let processor = SpawnedProcessor::start_with_args(
        &python(),
        &["-m", "theory_processor", "serve", &provider, "--ref", "theory/pyprobe@1"],
        &[
            ("THEORY_CANCEL_GRACE_MS", "1500"),
            ("THEORY_RUN_RETENTION_S", "60"),
            ("THEORY_SCRATCH_DIR", &scratch_dir),
        ],
    )
    .await
    .map_err(|error| format!("{error} (is the SDK installed? scripts/setup-python-sdk)"))?;
    let mut target =
        Target::new(&processor.base_url, RunSpec::mock(json!({"text": "hello python probe"})))
            .with_probe_runs();
    target.pid = Some(processor.pid);
    target.cancel_grace = grace;

    let report = run_suite(&target).await;
    eprintln!("{report}");
    assert!(report.failures().is_empty(), "conformance failures:\n{report}");
    assert!(report.not_applicable().is_empty(), "checks not applied:\n{report}");
    assert!(processor.stop(Duration::from_secs(10)).await, "the server did not exit on SIGTERM");
    Ok(())
}
