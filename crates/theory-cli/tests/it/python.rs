//! Python processors through `theory`: `replicate/generic@1` (a built-in Python processor)
//! prepared for the `process` runtime by `theory processor build`, then run mock and real —
//! real against the Replicate stand-in, with the official `replicate` client — through
//! `theory run` and `theory serve`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};
use theory_conformance::replicate::{ReplicateStandIn, replicate_file_bytes};

use crate::serve::Server;
use crate::support::{Outcome, Project, binary};

const TOKEN: &str = "r8_stand_in_token";

/// The Replicate stand-in behind a TLS front, as Replicate is: the client makes files only of
/// `https:` outputs. The front's CA is trusted through `SSL_CERT_FILE`.
struct HttpsStandIn {
    stand_in: ReplicateStandIn,
    base_url: String,
    ca_file: tempfile::NamedTempFile,
    relay: tokio::task::JoinHandle<()>,
}

impl HttpsStandIn {
    async fn start() -> HttpsStandIn {
        let stand_in = ReplicateStandIn::start(TOKEN).await.expect("the stand-in starts");
        let backend = stand_in.base_url.trim_start_matches("http://").to_owned();
        let (acceptor, ca_pem) = crate::modal_support::tls_acceptor();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("https://{}", listener.local_addr().expect("an address"));
        stand_in.serve_as(&base_url);
        let relay = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, backend) = (acceptor.clone(), backend.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        let ca_file = tempfile::NamedTempFile::new().expect("a temp file");
        std::fs::write(ca_file.path(), ca_pem).expect("write the CA");
        HttpsStandIn { stand_in, base_url, ca_file, relay }
    }

    /// A prepared project whose runs reach this stand-in with `token`.
    fn project(&self, token: &str) -> Project {
        python_project()
            .env("REPLICATE_API_TOKEN", token)
            .env("REPLICATE_BASE_URL", &self.base_url)
            .env("SSL_CERT_FILE", &self.ca_file.path().display().to_string())
            .env("REPLICATE_POLL_INTERVAL", "0.05")
    }
}

impl Drop for HttpsStandIn {
    fn drop(&mut self) {
        self.relay.abort();
    }
}
const SEED_MOCK_BODY: &str = r#"{"result":["https://example.invalid/mock.webp"]}"#;

/// `.theory/python/` of a project where `replicate/generic@1` was prepared: made once per test
/// process (pip installs its packages, from its cache when it can).
fn prepared_environments() -> &'static Path {
    static PREPARED: OnceLock<PathBuf> = OnceLock::new();
    PREPARED.get_or_init(|| {
        let folder = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-project");
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).expect("create the shared project");
        let mut command = Command::new(binary());
        command
            .current_dir(&folder)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("THEORY_PROJECT", &folder)
            .args(["processor", "build", "--ref", "replicate/generic@1", "--runtime", "process"])
            .arg("--json");
        // pip's cache and index settings, when the machine has them.
        for name in ["HOME", "PIP_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "THEORY_PYTHON"] {
            if let Ok(value) = std::env::var(name) {
                command.env(name, value);
            }
        }
        let output = command.output().expect("theory runs");
        assert!(
            output.status.success(),
            "theory processor build failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON report");
        assert_eq!(report["ok"], true);
        let packages = report["environment"]["packages"].as_array().expect("a package list");
        assert!(
            packages
                .iter()
                .any(|package| package.as_str().is_some_and(|p| p.starts_with("replicate=="))),
            "the processor's requirements.txt was installed: {packages:?}"
        );
        folder.join(".theory/python")
    })
}

/// A new project whose `.theory/python/` is the prepared one.
fn python_project() -> Project {
    let project = Project::new();
    std::fs::create_dir_all(project.path().join(".theory")).expect("create .theory");
    std::os::unix::fs::symlink(prepared_environments(), project.path().join(".theory/python"))
        .expect("link the prepared environments");
    project
}

fn run_replicate(project: &Project, mode: &str, inputs: &Value) -> Outcome {
    project.run(&[
        "run",
        "--ref",
        "replicate/generic@1",
        "--mode",
        mode,
        "--inputs-json",
        &inputs.to_string(),
        "--json",
    ])
}

fn read_output(project: &Project, world_path: &str) -> Vec<u8> {
    std::fs::read(project.path().join(".theory/artifacts").join(world_path.trim_start_matches('/')))
        .unwrap_or_else(|error| panic!("read {world_path}: {error}"))
}

/// The output of a success envelope whose path ends with `suffix`.
fn output_ending<'a>(envelope: &'a Value, suffix: &str) -> &'a Value {
    envelope["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .find(|output| output["path"].as_str().is_some_and(|path| path.ends_with(suffix)))
        .unwrap_or_else(|| panic!("no output ending {suffix}: {envelope:#}"))
}

#[test]
fn a_mock_run_of_the_python_processor_returns_the_seeds_body_with_no_network_and_no_secret() {
    let project = python_project();
    let outcome =
        run_replicate(&project, "mock", &json!({"schema": "v1", "params": {"prompt": "a cat"}}));
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let envelope = outcome.json();
    assert_eq!(envelope["status"], "success");
    assert_eq!(envelope["meta"]["runtime"], "process");
    let response = output_ending(&envelope, "outputs/response.json");
    let bytes = read_output(&project, response["path"].as_str().expect("a path"));
    assert_eq!(String::from_utf8(bytes).expect("text"), SEED_MOCK_BODY);
    // What runs is named by the launcher, whose text carries the environment's identity.
    let launcher = prepared_environments().join("replicate_generic-1/serve");
    let text = std::fs::read_to_string(&launcher).expect("the launcher");
    assert!(text.contains("# identity: b3:"), "{text}");
    let launcher_hash = theory_local::hash_file(&launcher).expect("hash the launcher");
    assert_eq!(envelope["meta"]["image_digest"], launcher_hash.as_str());
}

#[test]
fn the_python_processor_takes_inputs_sent_in_several_websocket_fragments() {
    // 3 MB of inputs: `theory` sends the `RunOpen` as one message in 1 MiB fragments. The text
    // is three-byte characters behind 0, 1 or 2 letters, so in one of the runs a fragment ends
    // inside a character.
    let project = python_project();
    for padding in 0..3 {
        let prompt = format!("{}{}", "a".repeat(padding), "€".repeat(1_000_000));
        let inputs = json!({"schema": "v1", "params": {"prompt": prompt}});
        let file = project.path().join("inputs.json");
        std::fs::write(&file, inputs.to_string()).expect("write the inputs");
        let outcome = project.run(&[
            "run",
            "--ref",
            "replicate/generic@1",
            "--mode",
            "mock",
            "--no-cache",
            "--inputs-file",
            "inputs.json",
            "--json",
        ]);
        assert_eq!(outcome.code, 0, "{}", outcome.transcript());
        assert_eq!(outcome.json()["status"], "success");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_run_keeps_every_file_the_prediction_made_as_an_output() {
    let https = HttpsStandIn::start().await;
    let project = https.project(TOKEN);
    let inputs = json!({"schema": "v1", "model": "theory/images", "params": {"prompt": "a red fox", "num_outputs": 2, "size_bytes": 300_000}});
    let outcome =
        tokio::task::spawn_blocking(move || (run_replicate(&project, "real", &inputs), project))
            .await
            .expect("the run ends");
    let (outcome, project) = outcome;
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let envelope = outcome.json();
    for index in 0..2_u64 {
        let file = output_ending(&envelope, &format!("outputs/{index}.webp"));
        let bytes = read_output(&project, file["path"].as_str().expect("a path"));
        assert_eq!(bytes, replicate_file_bytes("a red fox", index, 300_000), "file {index}");
    }
    let response = output_ending(&envelope, "outputs/response.json");
    let body: Value =
        serde_json::from_slice(&read_output(&project, response["path"].as_str().expect("a path")))
            .expect("JSON");
    assert_eq!(body["result"], json!(["outputs/0.webp", "outputs/1.webp"]));
    assert!(
        body["sources"]["outputs/0.webp"]
            .as_str()
            .is_some_and(|url| url.starts_with(&https.base_url)),
        "{body}"
    );
    let created = https.stand_in.requests();
    assert!(
        created.iter().any(|(method, path, prefer)| method == "POST"
            && path == "/v1/models/theory/images/predictions"
            && prefer.as_deref().is_some_and(|prefer| prefer.starts_with("wait"))),
        "the client asked to wait: {created:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_prediction_is_polled_and_a_failed_one_or_a_refused_token_is_err_provider() {
    let https = std::sync::Arc::new(HttpsStandIn::start().await);
    let shared = std::sync::Arc::clone(&https);
    let outcomes = tokio::task::spawn_blocking(move || {
        let project = shared.project(TOKEN);
        let slow = run_replicate(
            &project,
            "real",
            &json!({"model": "theory/slow", "params": {"prompt": "slow"}}),
        );
        let failed =
            run_replicate(&project, "real", &json!({"model": "theory/fails", "params": {}}));
        let wrong = shared.project("r8_wrong");
        let refused =
            run_replicate(&wrong, "real", &json!({"model": "theory/images", "params": {}}));
        let missing = run_replicate(&python_project(), "real", &json!({"model": "theory/images"}));
        (slow, failed, refused, missing)
    })
    .await
    .expect("the runs end");
    let (slow, failed, refused, missing) = outcomes;
    assert_eq!(slow.code, 0, "{}", slow.transcript());
    let polls = https
        .stand_in
        .requests()
        .iter()
        .filter(|(method, path, _)| method == "GET" && path.starts_with("/v1/predictions/"))
        .count();
    assert!(polls >= 2, "the slow prediction was polled: {:?}", https.stand_in.requests());
    for (what, outcome, says) in [
        ("failed model", &failed, "the model failed"),
        ("refused token", &refused, "Replicate refused the prediction"),
    ] {
        assert_ne!(outcome.code, 0, "{what}: {}", outcome.transcript());
        let envelope = outcome.json();
        assert_eq!(envelope["error"]["code"], "ERR_PROVIDER", "{what}: {envelope:#}");
        assert!(
            envelope["error"]["message"].as_str().is_some_and(|message| message.contains(says)),
            "{what}: {envelope:#}"
        );
    }
    assert_eq!(missing.json()["error"]["code"], "ERR_MISSING_SECRET", "{}", missing.transcript());
}

#[test]
fn an_unprepared_python_processor_is_refused_with_the_command_that_prepares_it() {
    let project = Project::new();
    let outcome = run_replicate(&project, "mock", &json!({"params": {}}));
    assert_ne!(outcome.code, 0, "{}", outcome.transcript());
    assert_eq!(outcome.json()["error"]["code"], "ERR_ADAPTER");
    assert!(
        outcome
            .stderr
            .contains("hint: prepare it with `theory processor build --ref replicate/generic@1 --runtime process`"),
        "{}",
        outcome.transcript()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn theory_serve_runs_the_python_processor_mock_and_real() {
    let https = std::sync::Arc::new(HttpsStandIn::start().await);
    let shared = std::sync::Arc::clone(&https);
    tokio::task::spawn_blocking(move || {
        let project = shared.project(TOKEN);
        let server = Server::start(&project, &[]);
        let mock = json!({"ref": "replicate/generic@1", "mode": "mock", "inputs": {"params": {"prompt": "x"}}});
        let (status, run) = server.submit(&mock, &[("Prefer", "wait")]);
        assert_eq!(status, 201, "{run:#}");
        assert_eq!(run["status"], "succeeded", "{run:#}");
        let real = json!({"ref": "replicate/generic@1", "mode": "real", "inputs": {"model": "theory/images", "params": {"prompt": "served", "num_outputs": 1}}});
        let (status, run) = server.submit(&real, &[("Prefer", "wait")]);
        assert_eq!(status, 201, "{run:#}");
        assert_eq!(run["status"], "succeeded", "{run:#}");
        let image = run["envelope"]["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .find(|output| output["path"].as_str().is_some_and(|path| path.ends_with("outputs/0.webp")))
            .unwrap_or_else(|| panic!("the image is an output: {run:#}"))
            .clone();
        let bytes = read_output(&project, image["path"].as_str().expect("a path"));
        assert_eq!(bytes, replicate_file_bytes("served", 0, 70_000));
    })
    .await
    .expect("the server test ends");
}

/// A project's `theory local` containers, stopped when this is dropped (a failed assertion
/// included).
struct LocalServices(Option<Project>);

impl LocalServices {
    fn stop(mut self) -> Outcome {
        let project = self.0.take().expect("a project");
        project.run(&["local", "stop", "--all"])
    }
}

impl Drop for LocalServices {
    fn drop(&mut self) {
        if let Some(project) = self.0.take() {
            let _ = project.run(&["local", "stop", "--all"]);
        }
    }
}

/// A project holding `theory/pyprobe@1`: the SDK's example probe as a Python processor whose
/// Dockerfile installs from the wheels `theory processor build` adds, like any user's would.
fn pyprobe_project() -> Project {
    let project = Project::new().env("THEORY_LOCAL_RUNTIME", "docker");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let context = project.path().join("pyprobe");
    std::fs::create_dir_all(&context).expect("create the context");
    std::fs::copy(root.join("sdk/python/examples/probe.py"), context.join("probe.py"))
        .expect("copy the probe");
    std::fs::write(
        context.join("Dockerfile"),
        "FROM theory-base/python:3.11-bookworm\n\
         COPY .theory-wheels /tmp/wheels\n\
         COPY .theory-sdk /opt/theory-sdk\n\
         RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-index --find-links /tmp/wheels \
         --no-cache-dir -r /opt/theory-sdk/requirements.txt && rm -rf /tmp/wheels\n\
         COPY probe.py /app/probe.py\n\
         ENV PYTHONPATH=/opt/theory-sdk PORT=8000 THEORY_CANCEL_GRACE_MS=1500 THEORY_RUN_RETENTION_S=60\n\
         ENTRYPOINT [\"/opt/venv/bin/python\", \"-m\", \"theory_processor\", \"serve\", \"/app/probe.py\", \"--ref\", \"theory/pyprobe@1\"]\n",
    )
    .expect("write the Dockerfile");
    let registry = project.path().join("registry/processors");
    std::fs::create_dir_all(&registry).expect("create the registry");
    std::fs::write(
        registry.join("pyprobe.yaml"),
        "ref: theory/pyprobe@1\nname: Python probe\ndescription: the SDK's example probe\n\
         image:\n  build: {context: pyprobe, dockerfile: Dockerfile, python: probe.py}\n\
         runtime: {cpu: 2, memory_gb: 2, timeout_s: 120, gpu: null}\n\
         secrets: {required: [], optional: []}\n\
         inputs: {type: object}\noutputs: []\n",
    )
    .expect("write the spec");
    project
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_probe_in_its_container_passes_the_whole_suite() {
    let project = pyprobe_project();
    let (built, started, project) = tokio::task::spawn_blocking(move || {
        let built = project.run(&[
            "processor",
            "build",
            "--ref",
            "theory/pyprobe@1",
            "--runtime",
            "docker",
            "--json",
        ]);
        let started = project.run(&["local", "start", "--ref", "theory/pyprobe@1", "--json"]);
        (built, started, project)
    })
    .await
    .expect("the build ends");
    // Whatever fails below, the container goes.
    let services = LocalServices(Some(project));
    assert_eq!(built.code, 0, "{}", built.transcript());
    assert!(
        built.stderr.contains("Successfully built"),
        "the engine's output is shown: {}",
        built.transcript()
    );
    let image_id = built.json()["builds"][0]["image_id"].as_str().expect("an image id").to_owned();
    assert_eq!(started.code, 0, "{}", started.transcript());
    let container = started.json()["container"].clone();
    let port = container["port"].as_u64().expect("a port");
    let inspect = Command::new("docker")
        .args(["inspect", "--format", "{{.State.Pid}} {{.Image}}"])
        .arg(container["container"].as_str().expect("a container name"))
        .output()
        .expect("docker inspect");
    let inspected = String::from_utf8_lossy(&inspect.stdout).trim().to_owned();
    let (pid, image) = inspected.split_once(' ').expect("a pid and an image");
    assert_eq!(image, image_id, "the container runs the image just built");
    let mut target = theory_conformance::Target::new(
        format!("http://127.0.0.1:{port}"),
        theory_conformance::RunSpec::mock(json!({"text": "hello container"})),
    )
    .with_probe_runs();
    target.pid = pid.parse().ok();
    // The container reaches the suite's stand-in object store through its network's gateway
    // (the container's own: some engines leave the bridge's IPAM gateway unset).
    let gateway = Command::new("docker")
        .args(["inspect", "--format", "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}"])
        .arg(container["container"].as_str().expect("a container name"))
        .output()
        .expect("docker inspect");
    let gateway = String::from_utf8_lossy(&gateway.stdout).trim().to_owned();
    assert!(!gateway.is_empty(), "the container has no gateway");
    target.host_address = Some(gateway);
    target.cancel_grace = std::time::Duration::from_millis(1500);
    let report = theory_conformance::run_suite(&target).await;
    eprintln!("{report}");
    let stopped = tokio::task::spawn_blocking(move || services.stop()).await.expect("stop");
    assert_eq!(stopped.code, 0, "{}", stopped.transcript());
    assert!(report.failures().is_empty(), "conformance failures:\n{report}");
    assert!(report.not_applicable().is_empty(), "checks not applied:\n{report}");
}

#[test]
fn replicate_generic_runs_mock_in_the_image_built_from_the_local_base() {
    let image = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", "theory-local/replicate/generic:1"])
        .output()
        .expect("docker CLI");
    assert!(
        image.status.success(),
        "the image is missing: theory processor build --ref replicate/generic@1 (scripts/test does)"
    );
    let image_id = String::from_utf8_lossy(&image.stdout).trim().to_owned();
    let project = Project::new().env("THEORY_LOCAL_RUNTIME", "docker");
    let outcome = run_replicate(&project, "mock", &json!({"params": {"prompt": "boxed"}}));
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let envelope = outcome.json();
    assert_eq!(envelope["meta"]["runtime"], "docker");
    assert_eq!(
        envelope["meta"]["image_digest"],
        image_id.as_str(),
        "the receipt names the image built"
    );
    let response = output_ending(&envelope, "outputs/response.json");
    let bytes = read_output(&project, response["path"].as_str().expect("a path"));
    assert_eq!(String::from_utf8(bytes).expect("text"), SEED_MOCK_BODY);
}
