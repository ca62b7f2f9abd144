//! The `docker` runtime and `theory processor …` on a real Docker Engine, with the built-in
//! images that `scripts/test` builds first (`theory processor build`). Nothing here skips: without
//! Docker or the images, these tests fail and say what to start or build.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Outcome, Project};

const PROBE: &str = "theory/probe@1";

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// A project whose runs use Docker (auto choice) unless a test says otherwise.
fn docker_project() -> Project {
    assert!(
        Command::new("docker").arg("version").output().is_ok_and(|out| out.status.success()),
        "Docker is not answering: start it with scripts/services/docker start (scripts/test does)"
    );
    assert!(
        docker(&["image", "inspect", "theory-local/theory/probe:1"]).status.success(),
        "the probe image is missing: theory processor build --ref theory/probe@1 (scripts/test does)"
    );
    Project::new().env("THEORY_LOCAL_RUNTIME", "auto")
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().expect("docker CLI")
}

/// Names of Theory containers of `project`'s runs and services still present.
fn leftovers(project: &Project) -> Vec<String> {
    let label = format!(
        "label=com.theory.project={}",
        project.path().join(".theory").parent().unwrap().display()
    );
    let output = docker(&["ps", "-a", "--filter", &label, "--format", "{{.Names}}"]);
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
}

fn probe(project: &Project, inputs: &Value, extra: &[&str]) -> Outcome {
    let inputs = inputs.to_string();
    let mut args = vec!["run", "--ref", PROBE, "--inputs-json", &inputs, "--json", "--no-cache"];
    args.extend_from_slice(extra);
    project.run(&args)
}

fn index_files(project: &Project) -> Vec<String> {
    project.state_files().into_iter().filter(|file| file.ends_with("outputs.json")).collect()
}

#[test]
fn a_mock_run_picks_docker_when_the_image_is_here() {
    let project = docker_project();
    let outcome = probe(&project, &json!({"text": "in a box"}), &[]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let envelope = outcome.json();
    assert_eq!(envelope["meta"]["runtime"], "docker");
    let image = docker(&["image", "inspect", "--format", "{{.Id}}", "theory-local/theory/probe:1"]);
    assert_eq!(envelope["meta"]["image_digest"], String::from_utf8_lossy(&image.stdout).trim());
    let receipt = std::fs::read_to_string(
        project.path().join(".theory/artifacts").join(
            envelope["index_path"]
                .as_str()
                .unwrap()
                .trim_start_matches('/')
                .replace("outputs.json", "determinism.json"),
        ),
    )
    .unwrap();
    let receipt: Value = serde_json::from_str(&receipt).unwrap();
    assert_eq!(receipt["runtime"], "docker");
    assert_eq!(receipt["image_source"], "local-build");
    assert!(leftovers(&project).is_empty(), "containers left: {:?}", leftovers(&project));
}

/// Outputs and meta with what differs between runtimes (and runs) taken out.
fn comparable(envelope: &Value) -> Value {
    let id = envelope["execution_id"].as_str().unwrap();
    let outputs: Vec<Value> = envelope["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|output| {
            let mut output = output.clone();
            output["path"] = json!(output["path"].as_str().unwrap().replace(id, "ID"));
            output
        })
        .collect();
    let mut meta = envelope["meta"].clone();
    for key in ["runtime", "image_digest", "env_fingerprint", "duration_ms"] {
        meta.as_object_mut().unwrap().remove(key);
    }
    json!({"outputs": outputs, "meta": meta, "index": envelope["index_path"].as_str().unwrap().replace(id, "ID")})
}

#[test]
fn docker_and_process_envelopes_differ_only_in_runtime_fields() {
    let project = docker_project();
    let inputs = json!({"text": "same everywhere", "size_bytes": 300_000});
    let docker_run = probe(&project, &inputs, &["--adapter-opts-json", r#"{"runtime":"docker"}"#]);
    let process_run =
        probe(&project, &inputs, &["--adapter-opts-json", r#"{"runtime":"process"}"#]);
    assert_eq!(docker_run.code, 0, "{}", docker_run.transcript());
    assert_eq!(process_run.code, 0, "{}", process_run.transcript());
    let (in_docker, on_host) = (docker_run.json(), process_run.json());
    assert_eq!(in_docker["meta"]["runtime"], "docker");
    assert_eq!(on_host["meta"]["runtime"], "process");
    assert_ne!(in_docker["meta"]["env_fingerprint"], on_host["meta"]["env_fingerprint"]);
    assert_eq!(comparable(&in_docker), comparable(&on_host));
}

#[test]
fn a_container_that_crashes_mid_run_gives_an_error_and_no_index() {
    let project = docker_project();
    let outcome = probe(
        &project,
        &json!({"crash": true}),
        &["--adapter-opts-json", r#"{"runtime":"docker"}"#],
    );
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    let envelope = outcome.json();
    assert_eq!(envelope["status"], "error", "{}", outcome.transcript());
    assert_eq!(envelope["meta"]["runtime"], "docker");
    assert!(index_files(&project).is_empty(), "an index was written: {:?}", project.state_files());
    assert!(leftovers(&project).is_empty(), "containers left: {:?}", leftovers(&project));
}

#[test]
fn a_hung_processor_times_out_and_its_container_is_killed() {
    let project = docker_project();
    let outcome = probe(
        &project,
        &json!({"sleep_ms": 120_000, "ignore_cancel": true}),
        &["--adapter-opts-json", r#"{"runtime":"docker","timeout_s":2}"#],
    );
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert_eq!(outcome.json()["error"]["code"], "ERR_TIMEOUT", "{}", outcome.transcript());
    assert!(index_files(&project).is_empty());
    assert!(leftovers(&project).is_empty(), "containers left: {:?}", leftovers(&project));
}

#[test]
fn docker_down_is_err_docker_and_a_real_run_never_falls_back() {
    let project = docker_project().env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let forced = probe(&project, &json!({}), &["--adapter-opts-json", r#"{"runtime":"docker"}"#]);
    assert_eq!(forced.code, 1, "{}", forced.transcript());
    assert_eq!(forced.json()["error"]["code"], "ERR_DOCKER");
    assert!(forced.stderr.contains("hint: start the Docker Engine"), "{}", forced.transcript());
    let real = probe(&project, &json!({}), &["--mode", "real"]);
    assert_eq!(real.code, 1, "{}", real.transcript());
    assert_eq!(real.json()["error"]["code"], "ERR_DOCKER", "{}", real.transcript());
    assert!(real.stderr.contains(r#"{"runtime":"process"}"#), "{}", real.transcript());
    let mock = probe(&project, &json!({}), &[]);
    assert_eq!(mock.code, 0, "{}", mock.transcript());
    assert_eq!(mock.json()["meta"]["runtime"], "process");
}

#[test]
fn a_missing_image_is_err_image_not_found_with_the_build_command() {
    let project = docker_project();
    project.probe_variant("theory/probe@97", "probe97.yaml", |spec| spec);
    let outcome = project.run(&[
        "run",
        "--ref",
        "theory/probe@97",
        "--json",
        "--adapter-opts-json",
        r#"{"runtime":"docker"}"#,
    ]);
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert_eq!(outcome.json()["error"]["code"], "ERR_IMAGE_NOT_FOUND");
    assert!(
        outcome
            .stderr
            .contains("hint: build it with `theory processor build --ref theory/probe@97`"),
        "{}",
        outcome.transcript()
    );
}

#[test]
fn building_twice_gives_the_same_image_id() {
    let project = Project::new();
    let root = repository_root();
    let root = root.to_str().unwrap();
    let first = project.run(&["--project", root, "processor", "build", "--ref", PROBE, "--json"]);
    assert_eq!(first.code, 0, "{}", first.transcript());
    let second = project.run(&["--project", root, "processor", "build", "--ref", PROBE, "--json"]);
    assert_eq!(second.code, 0, "{}", second.transcript());
    let id =
        |outcome: &Outcome| outcome.json()["builds"][0]["image_id"].as_str().unwrap().to_owned();
    assert_eq!(id(&first), id(&second));
    let inspected = docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{.Created}}",
        "theory-local/theory/probe:1",
    ]);
    let inspected = String::from_utf8_lossy(&inspected.stdout);
    assert_eq!(inspected.trim(), format!("{} 1970-01-01T00:00:00Z", id(&first)));
}

#[test]
fn a_platform_this_machine_cannot_build_fails_clearly() {
    let project = Project::new();
    let root = repository_root();
    let outcome = project.run(&[
        "--project",
        root.to_str().unwrap(),
        "processor",
        "build",
        "--ref",
        PROBE,
        "--platforms",
        "linux/amd64,linux/arm64",
    ]);
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert!(
        outcome.stderr.contains("linux/arm64 cannot be built here"),
        "{}",
        outcome.transcript()
    );
    let unknown =
        project.run(&["processor", "build", "--ref", PROBE, "--platforms", "linux/s390x"]);
    assert_eq!(unknown.code, 2, "{}", unknown.transcript());
}

#[test]
fn push_then_pin_then_run_from_the_pin() {
    let project = docker_project();
    let registry = project.path().join("registry/processors");
    std::fs::create_dir_all(&registry).unwrap();
    let original =
        std::fs::read_to_string(repository_root().join("registry/processors/theory-probe.yaml"))
            .unwrap();
    std::fs::write(registry.join("probe.yaml"), &original).unwrap();
    let pushed = project.run(&[
        "processor",
        "push",
        "--ref",
        PROBE,
        "--registry",
        "127.0.0.1:5000/theory-test",
        "--platforms",
        "linux/amd64",
        "--json",
    ]);
    assert_eq!(pushed.code, 0, "{}", pushed.transcript());
    let oci = pushed.json()["pushes"][0]["oci"].as_str().unwrap().to_owned();
    assert!(oci.starts_with("127.0.0.1:5000/theory-test/theory/probe@sha256:"), "{oci}");
    // A container started from the local build before the pin no longer matches after it.
    let started = project.run(&["local", "start", "--ref", PROBE]);
    assert_eq!(started.code, 0, "{}", started.transcript());
    let pinned = project.run(&[
        "processor",
        "pin",
        "--ref",
        PROBE,
        "--platform",
        "amd64",
        "--oci",
        &oci,
        "--json",
    ]);
    assert_eq!(pinned.code, 0, "{}", pinned.transcript());
    let edited = std::fs::read_to_string(registry.join("probe.yaml")).unwrap();
    for line in original.lines() {
        assert!(edited.lines().any(|kept| kept == line), "lost line {line:?}:\n{edited}");
    }
    assert!(edited.contains(&format!("amd64: \"{oci}\"")), "{edited}");
    let stale = project.run(&["local", "run", "--ref", PROBE, "--json"]);
    assert_eq!(stale.code, 1, "{}", stale.transcript());
    assert_eq!(stale.json()["error"]["code"], "ERR_REGISTRY_MISMATCH", "{}", stale.transcript());
    assert_eq!(project.run(&["local", "stop", "--all"]).code, 0);
    let run = probe(
        &project,
        &json!({"text": "pinned"}),
        &["--adapter-opts-json", r#"{"runtime":"docker"}"#],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let digest = oci.split_once('@').unwrap().1;
    assert_eq!(run.json()["meta"]["image_digest"], digest);
    let no_registry = project.run(&["processor", "push", "--ref", PROBE]);
    assert_eq!(no_registry.code, 2, "{}", no_registry.transcript());
    let bad_pin =
        project.run(&["processor", "pin", "--ref", PROBE, "--platform", "amd64", "--oci", "nope"]);
    assert_eq!(bad_pin.code, 2, "{}", bad_pin.transcript());
}

#[test]
fn local_start_run_status_logs_stop() {
    const CANARY: &str = "canary-secret-7f3a9c";
    let project = docker_project().env("THEORY_PROBE_SECRET", CANARY);
    let not_started = project.run(&["local", "run", "--ref", PROBE, "--json"]);
    assert_eq!(not_started.code, 1, "{}", not_started.transcript());
    assert!(
        not_started.stderr.contains("no local container runs theory/probe@1"),
        "{}",
        not_started.transcript()
    );
    assert!(not_started.stderr.contains("theory local start --ref theory/probe@1"));

    let started = project.run(&["local", "start", "--ref", PROBE, "--json"]);
    assert_eq!(started.code, 0, "{}", started.transcript());
    let port = started.json()["container"]["port"].as_u64().unwrap();
    assert_eq!(started.json()["reused"], false);
    let book: Value = serde_json::from_str(
        &std::fs::read_to_string(project.path().join(".theory/local_ports.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(book[PROBE], port);
    let again = project.run(&["local", "start", "--ref", PROBE, "--json"]);
    assert_eq!(again.json()["reused"], true, "{}", again.transcript());

    // A real run needs the secret in the container, not in this shell.
    let inputs = json!({"text": "served", "require_secret": "THEORY_PROBE_SECRET"}).to_string();
    let ran = project.run_unset(
        "THEORY_PROBE_SECRET",
        &["local", "run", "--ref", PROBE, "--mode", "real", "--inputs-json", &inputs, "--json"],
    );
    assert_eq!(ran.code, 0, "{}", ran.transcript());
    assert_eq!(ran.json()["meta"]["runtime"], "docker");

    let status = project.run(&["local", "status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.transcript());
    let listed = status.json();
    let entry = listed["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|container| container["port"] == port)
        .cloned()
        .unwrap_or_else(|| panic!("not in status: {}", status.transcript()));
    assert_eq!(entry["ref"], PROBE);
    assert_eq!(entry["healthy"], true);
    let logs = project.run(&["local", "logs", "--ref", PROBE]);
    assert_eq!(logs.code, 0, "{}", logs.transcript());
    assert!(logs.stdout.contains("listening"), "{}", logs.transcript());
    let name = entry["container"].as_str().unwrap();
    let labels = docker(&["inspect", "--format", "{{json .Config.Labels}}", name]);
    for text in [
        &status.stdout,
        &status.stderr,
        &logs.stdout,
        &logs.stderr,
        &started.stdout,
        &started.stderr,
        &String::from_utf8_lossy(&labels.stdout).into_owned(),
    ] {
        assert!(!text.contains(CANARY), "the secret leaked: {text}");
    }

    let stopped = project.run(&["local", "stop", "--ref", PROBE, "--json"]);
    assert_eq!(stopped.code, 0, "{}", stopped.transcript());
    assert_eq!(stopped.json()["stopped"][0]["ref"], PROBE);
    assert!(leftovers(&project).is_empty(), "containers left: {:?}", leftovers(&project));
    let restarted = project.run(&["local", "start", "--ref", PROBE, "--json"]);
    assert_eq!(restarted.json()["container"]["port"], port, "the port did not persist");
    let all = project.run(&["local", "stop", "--all"]);
    assert_eq!(all.code, 0, "{}", all.transcript());
    assert!(leftovers(&project).is_empty(), "containers left: {:?}", leftovers(&project));
}

#[test]
fn local_start_fails_fast_naming_missing_secrets() {
    let project = docker_project();
    let outcome = project.run(&["local", "start", "--ref", "llm/litellm@1", "--json"]);
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert_eq!(outcome.json()["error"]["code"], "ERR_MISSING_SECRET");
    assert!(outcome.stderr.contains("needs OPENAI_API_KEY"), "{}", outcome.transcript());
    assert!(leftovers(&project).is_empty());
}

#[test]
fn the_thumbnail_gives_the_same_bytes_in_its_container_as_on_the_host() {
    use crate::attachments::{check_thumbnail, thumbnail, with_photo};
    assert!(
        docker(&["image", "inspect", "theory-local/image/thumbnail:1"]).status.success(),
        "the thumbnail image is missing: theory processor build --ref image/thumbnail@1 (scripts/test does)"
    );
    let project = docker_project().env("THEORY_LOCAL_RUNTIME", "docker");
    with_photo(&project);
    let boxed = thumbnail(&project, &["--save-dir", "saved"]);
    assert_eq!(boxed.code, 0, "{}", boxed.transcript());
    let boxed = boxed.json();
    assert_eq!(boxed["meta"]["runtime"], "docker");
    check_thumbnail(&project, &boxed);
    let host = thumbnail(&project, &["--adapter-opts-json", r#"{"runtime":"process"}"#]);
    assert_eq!(host.code, 0, "{}", host.transcript());
    let cids = |envelope: &Value| {
        envelope["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|output| output["cid"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(cids(&boxed), cids(&host.json()));
    assert!(leftovers(&project).is_empty(), "containers left: {:?}", leftovers(&project));
}

#[test]
fn a_container_cannot_reach_a_loopback_store_so_bytes_stream_through_theory() {
    use crate::attachments::{minio, receipt_in_bucket, thumbnail, with_photo};
    let project = minio(docker_project().env("THEORY_LOCAL_RUNTIME", "docker"));
    with_photo(&project);
    let outcome = thumbnail(&project, &[]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    assert_eq!(receipt_in_bucket(&outcome.json())["transfer"], "stream");
    let direct = thumbnail(&project, &["--transfer", "direct"]);
    assert_eq!(direct.code, 1, "{}", direct.transcript());
    assert!(direct.stderr.contains("loopback"), "{}", direct.transcript());
    assert!(leftovers(&project).is_empty(), "containers left: {:?}", leftovers(&project));
}

#[test]
fn a_gpu_spec_reaches_docker_as_a_device_request_and_is_refused_clearly_without_gpus() {
    let project = docker_project();
    project.probe_variant(PROBE, "probe-gpu.yaml", |spec| spec.replace("gpu: null", "gpu: T4"));
    let outcome = probe(&project, &json!({}), &["--adapter-opts-json", r#"{"runtime":"docker"}"#]);
    // This machine's engine has no GPU driver: the request reached it, and was refused by name.
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert_eq!(outcome.json()["error"]["code"], "ERR_DOCKER", "{}", outcome.transcript());
    let message = outcome.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("asks for a GPU (T4) and this Docker Engine has none to give"),
        "{message}"
    );
    assert!(outcome.stderr.contains("--adapter modal"), "{}", outcome.transcript());
    assert!(leftovers(&project).is_empty(), "{:?}", leftovers(&project));
}

/// The registry of `scripts/services/registry` that needs a login, and its login.
const PRIVATE_REGISTRY: &str = "127.0.0.1:5001";
const PRIVATE_USER: &str = "theory-test";
const PRIVATE_PASSWORD: &str = "theory-test-password";

/// Pushes the probe's image to a new repository `name` of the private registry with `docker
/// login` credentials kept in `config`, removes every local name of it there, and returns its
/// pin `repo@sha256:…`. (A new repository each time: the engine remembers a repository it once
/// pulled with credentials.)
fn push_private_probe(config: &Path, name: &str) -> String {
    let answers = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{PRIVATE_REGISTRY}/v2/"),
        ])
        .output()
        .expect("curl runs");
    assert_eq!(
        String::from_utf8_lossy(&answers.stdout),
        "401",
        "no registry with a login on {PRIVATE_REGISTRY}: scripts/services/registry start (scripts/test does)"
    );
    let config = config.to_str().unwrap();
    let unique =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let repository = format!("{PRIVATE_REGISTRY}/theory-test/{name}-{unique}");
    let tag = format!("{repository}:{}", std::process::id());
    let login = Command::new("docker")
        .args([
            "--config",
            config,
            "login",
            "-u",
            PRIVATE_USER,
            "--password-stdin",
            PRIVATE_REGISTRY,
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(PRIVATE_PASSWORD.as_bytes())?;
            child.wait_with_output()
        })
        .expect("docker login runs");
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
    assert!(docker(&["tag", "theory-local/theory/probe:1", &tag]).status.success());
    let pushed = Command::new("docker").args(["--config", config, "push", &tag]).output().unwrap();
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    let inspected = docker(&["image", "inspect", "--format", "{{json .RepoDigests}}", &tag]);
    let digests: Vec<String> = serde_json::from_slice(&inspected.stdout).unwrap();
    let pin = digests.into_iter().find(|digest| digest.starts_with(&repository)).expect("a digest");
    forget_local(&tag, &pin);
    pin
}

/// Removes the private registry's names of the image here, so a run must pull it.
fn forget_local(tag: &str, pin: &str) {
    let _ = docker(&["rmi", tag]);
    let _ = docker(&["rmi", pin]);
    assert!(!docker(&["image", "inspect", pin]).status.success(), "{pin} is still here");
}

#[test]
fn a_pinned_image_in_a_private_registry_is_pulled_with_credentials_and_refused_clearly_without() {
    let project = docker_project();
    let login = tempfile::tempdir().unwrap();
    let pin = push_private_probe(login.path(), "variables");
    let pinned = |pin: &str| {
        let pin = pin.to_owned();
        move |spec: String| {
            spec.replace(
                "image:\n  build: {context: processors/probe, dockerfile: Dockerfile, binary: theory-probe}",
                &format!("image:\n  platforms: {{amd64: \"{pin}\"}}"),
            )
        }
    };
    project.probe_variant("theory/probe@96", "probe96.yaml", pinned(&pin));
    let run = |project: &Project| {
        project.run(&[
            "run",
            "--ref",
            "theory/probe@96",
            "--inputs-json",
            "{}",
            "--json",
            "--no-cache",
            "--adapter-opts-json",
            r#"{"runtime":"docker"}"#,
        ])
    };
    // The same project folder, with more variables set.
    let with = |pairs: &[(&str, &str)]| {
        let mut same = Project::new()
            .env("THEORY_LOCAL_RUNTIME", "auto")
            .env("THEORY_PROJECT", project.path().to_str().unwrap());
        for (name, value) in pairs {
            same = same.env(name, value);
        }
        same
    };
    // No credentials: refused, with the seeds' troubleshooting text.
    let refused = run(&project);
    assert_eq!(refused.code, 1, "{}", refused.transcript());
    assert_eq!(refused.json()["error"]["code"], "ERR_IMAGE_NOT_FOUND");
    assert!(
        refused.stderr.contains("Unauthorized image pulls: fix REGISTRY_AUTH"),
        "{}",
        refused.transcript()
    );
    assert!(
        refused.stderr.contains("none were found for this registry"),
        "{}",
        refused.transcript()
    );
    // A wrong password is named as refused, and never shown.
    let wrong = run(&with(&[
        ("REGISTRY_SERVER", PRIVATE_REGISTRY),
        ("REGISTRY_USERNAME", PRIVATE_USER),
        ("REGISTRY_PASSWORD", "not-the-password"),
    ]));
    assert!(wrong.stderr.contains("the credentials given were refused"), "{}", wrong.transcript());
    assert!(
        !wrong.stdout.contains("not-the-password") && !wrong.stderr.contains("not-the-password")
    );
    // REGISTRY_USERNAME and REGISTRY_PASSWORD.
    let with_variables = run(&with(&[
        ("REGISTRY_SERVER", PRIVATE_REGISTRY),
        ("REGISTRY_USERNAME", PRIVATE_USER),
        ("REGISTRY_PASSWORD", PRIVATE_PASSWORD),
    ]));
    assert_eq!(with_variables.code, 0, "{}", with_variables.transcript());
    assert_eq!(with_variables.json()["meta"]["image_digest"], pin.split_once('@').unwrap().1);
    forget_local(&format!("{}:none", pin.split_once('@').unwrap().0), &pin);
    // The user's `docker login`, for another repository.
    let other = push_private_probe(login.path(), "docker-login");
    project.probe_variant("theory/probe@96", "probe96.yaml", pinned(&other));
    let without = run(&project);
    assert!(without.stderr.contains("Unauthorized image pulls"), "{}", without.transcript());
    let with_login = run(&with(&[("DOCKER_CONFIG", login.path().to_str().unwrap())]));
    assert_eq!(with_login.code, 0, "{}", with_login.transcript());
    forget_local(&format!("{}:none", other.split_once('@').unwrap().0), &other);
}

/// What another machine's `theory processor push --platforms linux/arm64` leaves in the local
/// registry: an arm64 image (one empty layer) tagged `tag`, put through the registry's API.
fn put_arm64_image(path: &str, tag: &str) -> String {
    use sha2::Digest as _;
    let base = "http://127.0.0.1:5000";
    let digest = |bytes: &[u8]| format!("sha256:{:x}", sha2::Sha256::digest(bytes));
    // reqwest is built without a TLS provider of its own; plain HTTP here, but it asks.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let upload = |bytes: Vec<u8>| {
            let client = client.clone();
            async move {
                let started = client
                    .post(format!("{base}/v2/{path}/blobs/uploads/"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(started.status(), 202);
                let location = started.headers()["location"].to_str().unwrap().to_owned();
                let location =
                    if location.starts_with('/') { format!("{base}{location}") } else { location };
                let separator = if location.contains('?') { '&' } else { '?' };
                let put = client
                    .put(format!("{location}{separator}digest={}", digest(&bytes)))
                    .header("content-type", "application/octet-stream")
                    .body(bytes.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(put.status(), 201, "{:?}", put.text().await);
                (digest(&bytes), bytes.len())
            }
        };
        let layer = vec![0_u8; 1024];
        let (layer_digest, layer_size) = upload(layer).await;
        let config = serde_json::to_vec(&json!({
            "architecture": "arm64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }))
        .unwrap();
        let (config_digest, config_size) = upload(config).await;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
        }))
        .unwrap();
        let put = client
            .put(format!("{base}/v2/{path}/manifests/{tag}"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "{:?}", put.text().await);
        digest(&manifest)
    })
}

#[test]
fn push_publishes_one_index_of_every_platform_and_pin_asks_the_registry() {
    let project = docker_project();
    project.probe_variant(PROBE, "probe.yaml", |spec| spec);
    let path = format!("theory-index-{}/theory/probe", std::process::id());
    let repository = format!("127.0.0.1:5000/{path}");
    let registry = format!("127.0.0.1:5000/theory-index-{}", std::process::id());

    // The seeds' platforms by default: arm64 is neither built here nor in the registry.
    let refused = project.run(&["processor", "push", "--ref", PROBE, "--registry", &registry]);
    assert_eq!(refused.code, 1, "{}", refused.transcript());
    assert!(
        refused.stderr.contains("linux/arm64 of theory/probe@1 is neither built on this machine"),
        "{}",
        refused.transcript()
    );

    // Once another machine pushed arm64, one index lists both.
    let arm64 = put_arm64_image(&path, "1-arm64");
    let pushed = project.run(&[
        "processor",
        "push",
        "--ref",
        PROBE,
        "--registry",
        &registry,
        "--pin",
        "--json",
    ]);
    assert_eq!(pushed.code, 0, "{}", pushed.transcript());
    let report = pushed.json();
    let platforms = report["pushes"].as_array().unwrap();
    assert_eq!(platforms[0]["source"], "pushed");
    assert_eq!(
        (platforms[1]["source"].as_str(), platforms[1]["digest"].as_str()),
        (Some("registry"), Some(arm64.as_str()))
    );
    assert_eq!(report["index"]["platforms"], json!(["linux/amd64", "linux/arm64"]));
    let index: Value =
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(
            async {
                reqwest::Client::new()
                    .get(format!("http://127.0.0.1:5000/v2/{path}/manifests/1"))
                    .header("accept", "application/vnd.oci.image.index.v1+json")
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap()
            },
        );
    let listed: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["platform"]["architecture"].as_str().unwrap().to_owned(),
                entry["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let amd64 = platforms[0]["digest"].as_str().unwrap().to_owned();
    assert_eq!(listed, [("amd64".to_owned(), amd64.clone()), ("arm64".to_owned(), arm64.clone())]);
    let spec =
        std::fs::read_to_string(project.path().join("registry/processors/probe.yaml")).unwrap();
    for digest in [&amd64, &arm64] {
        assert!(spec.contains(&format!("{repository}@{digest}")), "{spec}");
    }

    // pin --verify-digest asks the registry before writing anything.
    let pin = |platform: &str, digest: &str| {
        project.run(&[
            "processor",
            "pin",
            "--ref",
            PROBE,
            "--platform",
            platform,
            "--oci",
            &format!("{repository}@{digest}"),
            "--verify-digest",
            "--json",
        ])
    };
    assert_eq!(pin("amd64", &amd64).code, 0);
    let index_digest =
        report["index"]["oci"].as_str().unwrap().split_once('@').unwrap().1.to_owned();
    let missing = format!("sha256:{}", "0".repeat(64));
    for (platform, digest, code) in [
        ("amd64", arm64.as_str(), "ERR_REGISTRY_MISMATCH"),
        ("amd64", index_digest.as_str(), "ERR_REGISTRY_MISMATCH"),
        ("arm64", missing.as_str(), "ERR_IMAGE_NOT_FOUND"),
    ] {
        let outcome = pin(platform, digest);
        assert_eq!(outcome.code, 1, "{}", outcome.transcript());
        assert_eq!(outcome.json()["error"]["code"], code, "{}", outcome.transcript());
    }
    assert_eq!(
        std::fs::read_to_string(project.path().join("registry/processors/probe.yaml")).unwrap(),
        spec
    );
}

#[test]
fn push_to_a_registry_with_a_login_uses_the_registry_credentials() {
    let project = docker_project();
    project.probe_variant(PROBE, "probe.yaml", |spec| spec);
    let unique =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let registry = format!("{PRIVATE_REGISTRY}/theory-push-{unique}");
    let args = [
        "processor",
        "push",
        "--ref",
        PROBE,
        "--registry",
        &registry,
        "--platforms",
        "linux/amd64",
        "--json",
    ];
    // An empty Docker configuration: no `docker login` to fall back on.
    let empty = tempfile::tempdir().unwrap();
    let anonymous = project.env("DOCKER_CONFIG", empty.path().to_str().unwrap());
    let refused = anonymous.run(&args);
    assert_eq!(refused.code, 1, "{}", refused.transcript());
    assert!(refused.stderr.contains("REGISTRY_USERNAME"), "{}", refused.transcript());
    let logged_in = anonymous
        .env("REGISTRY_USERNAME", PRIVATE_USER)
        .env("REGISTRY_PASSWORD", PRIVATE_PASSWORD)
        .env("REGISTRY_SERVER", PRIVATE_REGISTRY);
    let pushed = logged_in.run(&args);
    assert_eq!(pushed.code, 0, "{}", pushed.transcript());
    let oci = pushed.json()["pushes"][0]["oci"].as_str().unwrap().to_owned();
    assert!(
        pushed.json()["index"]["oci"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{registry}/theory/probe@sha256:"))
    );
    // The registry API (Basic login) answers the digest check too.
    let verified = logged_in.run(&[
        "processor",
        "pin",
        "--ref",
        PROBE,
        "--platform",
        "amd64",
        "--oci",
        &oci,
        "--verify-digest",
    ]);
    assert_eq!(verified.code, 0, "{}", verified.transcript());
}
