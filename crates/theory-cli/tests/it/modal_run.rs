//! `theory run --adapter modal` and `theory modal run|verify-digest` against an endpoint on
//! loopback posing as the deployed URL: the probe behind TLS and Modal's proxy auth (see
//! `modal_support`). The session is the same as locally, so are the envelope and the index.

use serde_json::{Value, json};

use crate::modal_support::{DIGEST, Endpoint, Standin, TOKEN, modal_project, pin};
use crate::support::{Outcome, Project};

const REF: &str = "theory/probe@5";
const INPUTS: &str = r#"{"text":"over the wire"}"#;

/// A project with the probe deployed (through the stand-in) to staging at `endpoint`, trusting
/// its CA and holding the proxy auth token.
fn deployed(endpoint: &Endpoint) -> (Project, Standin) {
    let (project, standin) = modal_project(str::to_owned);
    let project = project
        .env("MODAL_STANDIN_URL", &endpoint.url)
        .env("SSL_CERT_FILE", &endpoint.ca_file.display().to_string())
        .env("MODAL_PROXY_TOKEN_ID", TOKEN.0)
        .env("MODAL_PROXY_TOKEN_SECRET", TOKEN.1)
        .env("THEORY_MODAL_STARTUP_S", "10");
    let outcome =
        project.run(&["modal", "start", "--ref", REF, "--env", "staging", "--oci", &pin()]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    (project, standin)
}

fn run(project: &Project, extra: &[&str]) -> Outcome {
    let mut args = vec!["run", "--ref", REF, "--inputs-json", INPUTS, "--json", "--no-cache"];
    args.extend_from_slice(extra);
    project.run(&args)
}

fn stored(project: &Project, world_path: &str) -> Value {
    let path = project.path().join(".theory/artifacts").join(world_path.trim_start_matches('/'));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_run_on_modal_speaks_the_protocol_over_wss_with_the_proxy_token() {
    let endpoint = Endpoint::start(DIGEST);
    let (project, _standin) = deployed(&endpoint);
    let outcome = run(&project, &["--adapter", "modal", "--env", "staging"]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let envelope = outcome.json();
    assert_eq!(envelope["status"], "success");
    assert_eq!(envelope["meta"]["adapter"], "modal");
    assert_eq!(envelope["meta"]["runtime"], "modal");
    assert_eq!(envelope["meta"]["image_digest"], DIGEST);
    let index = stored(&project, envelope["index_path"].as_str().unwrap());
    assert!(index.to_string().contains("echo.txt"), "{index}");
    let receipt_path =
        envelope["index_path"].as_str().unwrap().replace("outputs.json", "determinism.json");
    let receipt = stored(&project, &receipt_path);
    assert_eq!(receipt["runtime"], "modal");

    let seen = endpoint.seen();
    assert!(seen.iter().all(|request| request.authorized), "{seen:?}");
    let lines: Vec<&str> = seen.iter().map(|request| request.line.as_str()).collect();
    assert!(lines.iter().any(|line| line.starts_with("GET /healthz ")), "{lines:?}");
    assert!(lines.iter().any(|line| line.starts_with("GET /info ")), "{lines:?}");
    assert!(lines.iter().any(|line| line.starts_with("GET /run ")), "{lines:?}");

    // `theory modal run` is the same run; MODAL_ENVIRONMENT picks the environment.
    let outcome = project.env("MODAL_ENVIRONMENT", "staging").run(&[
        "modal",
        "run",
        "--ref",
        REF,
        "--inputs-json",
        INPUTS,
        "--json",
        "--no-cache",
    ]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    assert_eq!(outcome.json()["meta"]["adapter"], "modal");
}

/// Drops what differs by adapter and by run: ids, timings, the runtime's identity.
fn comparable(envelope: &Value, execution_id: &str) -> Value {
    let text = envelope.to_string().replace(execution_id, "[ID]");
    let mut value: Value = serde_json::from_str(&text).unwrap();
    let meta = value["meta"].as_object_mut().unwrap();
    for field in ["adapter", "runtime", "image_digest", "env_fingerprint", "duration_ms"] {
        meta.remove(field);
    }
    value.as_object_mut().unwrap().remove("duration_ms");
    value
}

#[test]
fn local_and_modal_envelopes_and_indexes_are_the_same_apart_from_the_adapter() {
    let endpoint = Endpoint::start(DIGEST);
    let (project, _standin) = deployed(&endpoint);
    for mode in ["mock", "real"] {
        let local = run(&project, &["--mode", mode]);
        let modal = run(&project, &["--mode", mode, "--adapter", "modal", "--env", "staging"]);
        assert_eq!(local.code, 0, "{}", local.transcript());
        assert_eq!(modal.code, 0, "{}", modal.transcript());
        let (local, modal) = (local.json(), modal.json());
        assert_eq!(local["meta"]["adapter"], "local");
        let id = |envelope: &Value| envelope["execution_id"].as_str().unwrap().to_owned();
        assert_eq!(
            comparable(&local, &id(&local)),
            comparable(&modal, &id(&modal)),
            "mode {mode}:\nlocal {local:#}\nmodal {modal:#}"
        );
        let index = |envelope: &Value| {
            let index = stored(&project, envelope["index_path"].as_str().unwrap());
            comparable(&json!({"meta": {}, "index": index}), &id(envelope))
        };
        assert_eq!(index(&local), index(&modal), "mode {mode}");
    }
}

#[test]
fn without_the_proxy_token_nothing_starts() {
    let endpoint = Endpoint::start(DIGEST);
    let (project, _standin) = deployed(&endpoint);
    let outcome = project.run_unset(
        "MODAL_PROXY_TOKEN_SECRET",
        &["run", "--ref", REF, "--adapter", "modal", "--env", "staging", "--json"],
    );
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert_eq!(outcome.json()["error"]["code"], "ERR_MODAL");
    assert!(outcome.stderr.contains("MODAL_PROXY_TOKEN_SECRET"), "{}", outcome.stderr);
    assert!(endpoint.seen().is_empty(), "{:?}", endpoint.seen());
    // The refusal is on record, and it holds nothing.
    let executions = project.run(&["executions", "list", "--json"]).json();
    let recorded = &executions["executions"][0];
    assert_eq!(recorded["error_code"], "ERR_MODAL", "{executions}");
    assert_eq!(recorded["runtime"], "", "{executions}");
    assert_eq!(recorded["reserved_usd_micro"], 0, "{executions}");
}

#[test]
fn a_refused_token_is_named_at_once() {
    let endpoint = Endpoint::start(DIGEST);
    let (project, _standin) = deployed(&endpoint);
    let project = project.env("MODAL_PROXY_TOKEN_SECRET", "ws-wrong");
    let outcome = run(&project, &["--adapter", "modal", "--env", "staging"]);
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert!(outcome.stderr.contains("refused the proxy auth token"), "{}", outcome.stderr);
    assert_eq!(endpoint.seen().len(), 1, "{:?}", endpoint.seen());
}

#[test]
fn a_deployment_of_another_image_is_refused_and_verify_digest_says_so() {
    let endpoint = Endpoint::start(DIGEST);
    let (project, _standin) = deployed(&endpoint);
    let verified =
        project.run(&["modal", "verify-digest", "--ref", REF, "--env", "staging", "--json"]);
    assert_eq!(verified.code, 0, "{}", verified.transcript());
    assert_eq!(verified.json()["deployed"], DIGEST);

    let other = format!("127.0.0.1:5000/theory/probe@sha256:{}", "7".repeat(64));
    let mismatch = project.run(&[
        "modal",
        "verify-digest",
        "--ref",
        REF,
        "--env",
        "staging",
        "--oci",
        &other,
        "--json",
    ]);
    assert_eq!(mismatch.code, 1, "{}", mismatch.transcript());
    assert_eq!(mismatch.json()["error"]["code"], "ERR_REGISTRY_MISMATCH");

    // The spec now pins another image: the run is refused before the endpoint is asked.
    let spec_path = project.path().join("registry/processors/probe5.yaml");
    let spec = std::fs::read_to_string(&spec_path).unwrap().replace(&pin(), &other);
    std::fs::write(&spec_path, spec).unwrap();
    let before = endpoint.seen().len();
    let refused = run(&project, &["--adapter", "modal", "--env", "staging"]);
    assert_eq!(refused.code, 1, "{}", refused.transcript());
    assert_eq!(refused.json()["error"]["code"], "ERR_REGISTRY_MISMATCH");
    assert_eq!(endpoint.seen().len(), before);
}

#[test]
fn an_endpoint_reporting_another_digest_is_refused() {
    let endpoint = Endpoint::start(&format!("sha256:{}", "8".repeat(64)));
    let (project, _standin) = deployed(&endpoint);
    let outcome = run(&project, &["--adapter", "modal", "--env", "staging"]);
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert_eq!(outcome.json()["error"]["code"], "ERR_REGISTRY_MISMATCH");
    assert!(outcome.stderr.contains("reports image sha256:8888"), "{}", outcome.stderr);
}

#[test]
fn a_run_without_a_deployment_says_how_to_make_one() {
    let (project, _standin) = modal_project(str::to_owned);
    let outcome = run(&project, &["--adapter", "modal"]);
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert!(
        outcome.stderr.contains("theory/probe@5 is not deployed to Modal environment main"),
        "{}",
        outcome.stderr
    );
    let flag_elsewhere = project.run(&["run", "--ref", REF, "--env", "staging"]);
    assert_eq!(flag_elsewhere.code, 2, "{}", flag_elsewhere.transcript());
}
