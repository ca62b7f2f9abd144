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

    let binary = cargo_build(&project, "demo-echo");

    conforms(&binary).await;

    let folder = binary.parent().expect("a folder");
    let path = format!("{}:{}", folder.display(), binaries().display());
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

/// Starts a scaffolded processor as generated (`PORT=0`) and runs the conformance suite against
/// it, 1,000 runs of endurance; it is stopped after.
async fn conforms(program: &Path) {
    let processor = SpawnedProcessor::start(program, &[]).await.expect("the processor starts");
    let mut target = Target::new(&processor.base_url, RunSpec::mock(json!({"text": "hi"})));
    target.pid = Some(processor.pid);
    target.endurance_runs = 1_000;
    let report = run_suite(&target).await;
    eprintln!("{report}");
    assert!(report.failures().is_empty(), "conformance failures:\n{report}");
}

/// `cargo build -p {package}` in `project`, sharing this repository's target folder so compiled
/// dependencies are reused (the project has this workspace's lock), in a clean environment: what
/// `cargo test` sets for tests (`LD_LIBRARY_PATH`, `CARGO_*`) would make build scripts rerun and
/// rebuild shared dependencies for both workspaces.
fn cargo_build(project: &Project, package: &str) -> PathBuf {
    let target_dir = repository_root().join("target");
    let mut cargo = Command::new(env!("CARGO"));
    cargo.env_clear();
    for name in ["PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
        if let Some(value) = std::env::var_os(name) {
            cargo.env(name, value);
        }
    }
    let built = cargo
        .current_dir(project.path())
        .args(["build", "-p", package])
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .expect("cargo runs");
    assert!(
        built.status.success(),
        "cargo build failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    target_dir.join("debug").join(package)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_processor_scaffolded_in_an_empty_folder_builds_with_the_embedded_sdk() {
    let project = Project::new();
    let created = project.run(&["scaffold", "--ref", "fresh/hello@1", "--lang", "rust", "--json"]);
    assert_eq!(created.code, 0, "{}", created.transcript());
    let manifest = std::fs::read_to_string(project.path().join("Cargo.toml")).expect("a workspace");
    assert!(manifest.contains(r#"members = ["processors/fresh-hello"]"#), "{manifest}");
    assert!(project.path().join("theory-sdk/theory-processor/src/lib.rs").is_file());
    assert!(project.path().join("Cargo.lock").is_file());
    // A second processor joins the workspace; the SDK and the lock are not written again.
    let second = project.run(&["scaffold", "--ref", "fresh/other@1", "--json"]);
    assert_eq!(second.code, 0, "{}", second.transcript());
    let files = second.json()["files"].as_array().expect("files").len();
    assert_eq!(files, 4, "{}", second.transcript());
    let manifest = std::fs::read_to_string(project.path().join("Cargo.toml")).expect("a workspace");
    assert!(
        manifest.contains(r#"members = ["processors/fresh-hello", "processors/fresh-other"]"#),
        "{manifest}"
    );

    let built = cargo_build(&project, "fresh-hello");
    // As a plain `cargo build` in the project would leave it: in the project's own target folder,
    // where `theory run` finds it.
    let own = project.path().join("target/debug");
    std::fs::create_dir_all(&own).expect("create target/debug");
    std::fs::rename(&built, own.join("fresh-hello")).expect("move the binary");
    conforms(&own.join("fresh-hello")).await;
    let run = project.run(&[
        "run",
        "--ref",
        "fresh/hello@1",
        "--inputs-json",
        r#"{"text":"hi"}"#,
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(run.json()["outputs"].as_array().expect("outputs").len(), 2, "{}", run.transcript());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_processor_scaffolded_in_an_empty_folder_prepares_runs_conforms_and_builds() {
    let project = Project::new().with_pip_settings();
    let created = project.run(&["scaffold", "--ref", "py/hello@1", "--lang", "python", "--json"]);
    assert_eq!(created.code, 0, "{}", created.transcript());
    let mut files: Vec<String> = created.json()["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|file| file.as_str().expect("a path").to_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "processors/py-hello/Dockerfile",
            "processors/py-hello/provider.py",
            "processors/py-hello/requirements.txt",
            "registry/processors/py-hello.yaml"
        ]
    );
    let prepared =
        project.run(&["processor", "build", "--ref", "py/hello@1", "--runtime", "process"]);
    assert_eq!(prepared.code, 0, "{}", prepared.transcript());
    let run =
        project.run(&["run", "--ref", "py/hello@1", "--inputs-json", r#"{"text":"hi"}"#, "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(run.json()["meta"]["runtime"], "process");
    assert_eq!(run.json()["outputs"].as_array().expect("outputs").len(), 2, "{}", run.transcript());

    let launcher = project.path().join(".theory/python/py_hello-1/serve");
    conforms(&launcher).await;

    let project = project.env("THEORY_LOCAL_RUNTIME", "docker");
    let imaged = project.run(&[
        "processor",
        "build",
        "--ref",
        "py/hello@1",
        "--runtime",
        "docker",
        "--json",
    ]);
    assert_eq!(imaged.code, 0, "{}", imaged.transcript());
    let in_docker =
        project.run(&["run", "--ref", "py/hello@1", "--inputs-json", r#"{"text":"hi"}"#, "--json"]);
    assert_eq!(in_docker.code, 0, "{}", in_docker.transcript());
    assert_eq!(in_docker.json()["meta"]["runtime"], "docker");
    assert_eq!(in_docker.json()["meta"]["image_digest"], imaged.json()["builds"][0]["image_id"]);
}

#[test]
fn a_python_processor_scaffolded_in_a_cargo_workspace_leaves_it_buildable() {
    let project = cargo_project();
    let created = project.run(&["scaffold", "--ref", "py/inside@1", "--lang", "python"]);
    assert_eq!(created.code, 0, "{}", created.transcript());
    let manifest =
        std::fs::read_to_string(project.path().join("Cargo.toml")).expect("the manifest");
    assert!(manifest.contains(r#"exclude = ["processors/py-inside"]"#), "{manifest}");
    // Cargo still loads the workspace: the Python folder is not taken for a crate.
    let metadata = Command::new(env!("CARGO"))
        .current_dir(project.path())
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .output()
        .expect("cargo runs");
    assert!(
        metadata.status.success(),
        "cargo metadata failed:\n{}",
        String::from_utf8_lossy(&metadata.stderr)
    );
}
