//! `theory run --server URL`: a run submitted through `theory serve` prints and exits as a local
//! run does — envelope, index path, `--stream`, `--attach`, `--save-dir`, failures, a server
//! that is not there, a token from `THEORY_TOKEN`, and SIGINT cancelling the run on the server.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::Server;
use crate::support::{Project, binaries, binary};

fn url(server: &Server) -> String {
    format!("http://{}", server.address)
}

#[test]
fn a_run_through_the_server_prints_and_exits_as_a_local_run() {
    let client = Project::new();
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let base = url(&server);
    let remote = client.run(&[
        "run",
        "--server",
        &base,
        "--ref",
        "theory/probe@1",
        "--inputs-json",
        r#"{"text":"remote run"}"#,
        "--json",
    ]);
    assert_eq!(remote.code, 0, "{}", remote.transcript());
    let envelope = remote.json();
    let local = project.run(&[
        "run",
        "--ref",
        "theory/probe@1",
        "--inputs-json",
        r#"{"text":"local run"}"#,
        "--json",
    ]);
    let keys = |value: &Value| value.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&envelope), keys(&local.json()), "the same envelope");
    assert_eq!(envelope["status"], "success");
    // The run is the server's: its ledger has it, this folder has none.
    let id = envelope["execution_id"].as_str().unwrap();
    assert_eq!(project.run(&["executions", "show", id, "--json"]).code, 0);
    assert!(!client.path().join(".theory").exists(), "nothing ran here");

    let plain = client.run(&[
        "run",
        "--server",
        &base,
        "--ref",
        "theory/probe@1",
        "--inputs-json",
        r#"{"text":"plain"}"#,
        "--stream",
    ]);
    assert_eq!(plain.code, 0, "{}", plain.transcript());
    assert!(
        plain.stdout.trim().ends_with("/outputs.json"),
        "the index path: {}",
        plain.transcript()
    );
    assert!(plain.stderr.contains("plain"), "--stream prints the tokens: {}", plain.transcript());

    // An attachment (a name with a space) is uploaded; --save-dir reads the outputs back.
    std::fs::write(client.path().join("my note.txt"), "attached remotely").unwrap();
    let saved = client.path().join("saved");
    let attached = client.run(&[
        "run",
        "--server",
        &base,
        "--ref",
        "theory/probe@1",
        "--inputs-json",
        r#"{"text":"with file","files":{"doc":{"$attach":"doc"}}}"#,
        "--attach",
        "doc=my note.txt",
        "--save-dir",
        saved.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(attached.code, 0, "{}", attached.transcript());
    let outputs = attached.json()["outputs"].as_array().unwrap().clone();
    let meta = outputs
        .iter()
        .find(|output| output["path"].as_str().unwrap().ends_with("meta.json"))
        .unwrap();
    let written: Value = serde_json::from_slice(
        &std::fs::read(saved.join(meta["path"].as_str().unwrap().trim_start_matches('/'))).unwrap(),
    )
    .unwrap();
    assert_eq!(written["input_files"].as_array().unwrap().len(), 1, "{written}");
}

#[test]
fn failures_through_the_server_are_those_of_a_local_run() {
    let client = Project::new();
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let base = url(&server);
    // Failures: the run's own (exit 1), a refusal (the same envelope as locally), no server.
    let failed = client.run(&[
        "run",
        "--server",
        &base,
        "--ref",
        "theory/probe@1",
        "--inputs-json",
        r#"{"fail":{"code":"ERR_PROVIDER","message":"upstream said no"}}"#,
    ]);
    assert_eq!(failed.code, 1, "{}", failed.transcript());
    assert!(failed.stderr.contains("ERR_PROVIDER: upstream said no"), "{}", failed.transcript());
    let schema = client.run(&[
        "run",
        "--server",
        &base,
        "--ref",
        "theory/probe@1",
        "--inputs-json",
        r#"{"size_bytes":"many"}"#,
        "--json",
    ]);
    assert_eq!(schema.code, 1, "{}", schema.transcript());
    assert_eq!(schema.json()["error"]["code"], "ERR_INPUT_SCHEMA");
    let nowhere = client.run(&["run", "--server", "http://127.0.0.1:9", "--ref", "theory/probe@1"]);
    assert_eq!(nowhere.code, 1, "{}", nowhere.transcript());
    assert!(
        nowhere.stderr.contains("cannot reach the server") && nowhere.stderr.contains("hint:"),
        "{}",
        nowhere.transcript()
    );
    let bad = client.run(&["run", "--server", "ftp://x", "--ref", "theory/probe@1"]);
    assert_eq!(bad.code, 2, "{}", bad.transcript());
}

#[test]
fn the_server_and_token_come_from_the_environment_and_sigint_cancels_on_the_server() {
    let project = Project::new();
    let made = project.run(&["token", "create", "--name", "cli", "--json"]);
    let secret = made.json()["secret"].as_str().unwrap().to_owned();
    let server = Server::launch(&project, &[]);
    let base = url(&server);
    let client = Project::new().env("THEORY_SERVER", &base);
    let anonymous = client.run(&["run", "--ref", "theory/probe@1"]);
    assert_eq!(anonymous.code, 1, "{}", anonymous.transcript());
    assert!(anonymous.stderr.contains("ERR_UNAUTHORIZED"), "{}", anonymous.transcript());
    let client = client.env("THEORY_TOKEN", &secret);
    let done = client.run(&["run", "--ref", "theory/probe@1", "--json"]);
    assert_eq!(done.code, 0, "{}", done.transcript());

    let child = Command::new(binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("THEORY_PROCESSOR_PATH", binaries())
        .env("THEORY_SERVER", &base)
        .env("THEORY_TOKEN", &secret)
        .env("THEORY_PROJECT", client.path())
        .current_dir(client.path())
        .args([
            "run",
            "--ref",
            "theory/probe@1",
            "--inputs-json",
            r#"{"sleep_ms":60000}"#,
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let auth = format!("Bearer {secret}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) =
            server.request("GET", "/v1/runs?status=running", &[("Authorization", &auth)], "");
        if !page["runs"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    let envelope: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(envelope["error"]["code"], "ERR_CANCELLED", "{envelope}");
}
