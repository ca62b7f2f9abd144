//! `theory scaffold`: the generated processor builds, starts, passes the conformance suite and
//! runs through `theory run`, as generated.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use theory_conformance::process::SpawnedProcessor;
use theory_conformance::{RunSpec, Target, run_suite};

use crate::support::{Project, binaries};

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// A project that is a Cargo workspace using this repository's SDK, like a user's would be.
fn cargo_project() -> Project {
    let project = Project::new();
    let root = repository_root();
    let manifest = format!(
        "[workspace]\nresolver = \"3\"\nmembers = [\"processors/*\"]\n\n[workspace.dependencies]\ntheory-processor = {{ path = \"{}\" }}\n\n[profile.dev]\ndebug = \"line-tables-only\"\n\n[profile.dev.package.\"*\"]\nopt-level = 2\n{}",
        root.join("crates/theory-processor").display(),
        // The same profile as the repository's; the SDK's crates are members of the repository's workspace, built at opt-level 0 there;
        // the same here, so the test reuses them instead of rebuilding them both ways.
        ["theory-processor", "theory-protocol"]
            .map(|name| format!("\n[profile.dev.package.{name}]\nopt-level = 0\n"))
            .concat()
    );
    std::fs::write(project.path().join("Cargo.toml"), manifest).unwrap();
    // The repository's lock: the same dependency versions, so compiled ones are reused.
    std::fs::copy(root.join("Cargo.lock"), project.path().join("Cargo.lock")).unwrap();
    project
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaffolded_processor_builds_starts_and_conforms() {
    let project = cargo_project();
    let created = project.run(&["scaffold", "--ref", "demo/echo@1", "--json"]);
    assert_eq!(created.code, 0, "{}", created.transcript());
    let mut files: Vec<String> = created.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file.as_str().unwrap().to_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "processors/demo-echo/Cargo.toml",
            "processors/demo-echo/Dockerfile",
            "processors/demo-echo/src/main.rs",
            "registry/processors/demo-echo.yaml"
        ]
    );
    let again = project.run(&["scaffold", "--ref", "demo/echo@1"]);
    assert_eq!(again.code, 1, "{}", again.transcript());
    assert!(again.stderr.contains("already exists"), "{}", again.transcript());
    let validated = project.run(&["registry", "validate", "--json"]);
    assert_eq!(validated.code, 0, "{}", validated.transcript());

    let target_dir = repository_root().join("target");
    // A clean environment: what `cargo test` sets for tests (LD_LIBRARY_PATH, CARGO_*) would make
    // build scripts rerun and rebuild shared dependencies for both workspaces.
    let mut cargo = Command::new(env!("CARGO"));
    cargo.env_clear();
    for name in ["PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
        if let Some(value) = std::env::var_os(name) {
            cargo.env(name, value);
        }
    }
    let built = cargo
        .current_dir(project.path())
        .args(["build", "-p", "demo-echo"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .expect("cargo runs");
    assert!(
        built.status.success(),
        "cargo build failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let binary = target_dir.join("debug/demo-echo");

    let processor = SpawnedProcessor::start(&binary, &[]).await.expect("the processor starts");
    let mut target = Target::new(&processor.base_url, RunSpec::mock(json!({"text": "hi"})));
    target.pid = Some(processor.pid);
    target.endurance_runs = 1_000;
    let report = run_suite(&target).await;
    eprintln!("{report}");
    assert!(report.failures().is_empty(), "conformance failures:\n{report}");
    drop(processor);

    let path = format!("{}:{}", target_dir.join("debug").display(), binaries().display());
    let run = project.env("THEORY_PROCESSOR_PATH", &path).run(&[
        "run",
        "--ref",
        "demo/echo@1",
        "--inputs-json",
        r#"{"text":"hi"}"#,
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let outputs = run.json()["outputs"].as_array().unwrap().len();
    assert_eq!(outputs, 2, "{}", run.transcript());
}
