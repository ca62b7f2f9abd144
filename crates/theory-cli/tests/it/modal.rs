//! `theory modal start|sync-secrets|stop|status|logs|deploy` driving a `modal` stand-in that
//! records what it was asked (see `modal_support`): the arguments and variables each command
//! hands the official CLI, the seeds' naming rules, and the errors before anything is asked.

use serde_json::{Value, json};

use crate::modal_support::{Standin, modal_project, pin};
use crate::support::{Outcome, Project};

const REF: &str = "theory/probe@5";
const URL: &str = "https://acme--theory-probe-serve.modal.run";

/// The probe with resources and required secrets worth checking.
fn sized(spec: &str) -> String {
    spec.replace(
        "runtime: {cpu: 1, memory_gb: 1, timeout_s: 120, gpu: null}",
        "runtime: {cpu: 2, memory_gb: 3, timeout_s: 90, gpu: T4}",
    )
    .replace("required: []", "required: [ALPHA_KEY, BETA_KEY, GAMMA_KEY]")
}

fn project() -> (Project, Standin) {
    let (project, standin) = modal_project(sized);
    (project.env("MODAL_STANDIN_URL", URL), standin)
}

fn start(project: &Project, env: &str) -> Outcome {
    project.run(&["modal", "start", "--ref", REF, "--env", env, "--oci", &pin(), "--json"])
}

fn error_code(outcome: &Outcome) -> Value {
    outcome.json()["error"]["code"].clone()
}

#[test]
fn start_deploys_the_generated_module_with_the_specs_resources_and_secrets() {
    let (project, standin) = project();
    let project = project.env("GIT_BRANCH", "feat/Fast_Path").env("GIT_USER", "Ada L");
    let outcome = start(&project, "dev");
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let deployment = &outcome.json()["deployment"];
    assert_eq!(deployment["app_name"], "feat-fast-path-ada-l-theory-probe");
    assert_eq!(deployment["url"], URL);
    assert_eq!(deployment["image_ref"], pin());
    assert!(outcome.stderr.contains("theory modal sync-secrets"), "{}", outcome.stderr);

    let calls = standin.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call["argv"], json!(["deploy", "-m", "modal_app", "--env", "dev"]));
    let module_folder = project.path().join(".theory/modal");
    assert_eq!(call["cwd"], module_folder.canonicalize().unwrap().display().to_string());
    assert!(module_folder.join("modal_app.py").is_file());
    let env = &call["env"];
    assert_eq!(env["PROCESSOR_REF"], REF);
    assert_eq!(env["IMAGE_REF"], pin());
    assert_eq!(env["MODAL_APP_NAME"], "feat-fast-path-ada-l-theory-probe");
    assert_eq!(env["CPU"], "2");
    assert_eq!(env["MEMORY_MIB"], "3072");
    assert_eq!(env["TIMEOUT_S"], "90");
    assert_eq!(env["GPU"], "T4");
    assert_eq!(env["TOOL_SECRETS"], "ALPHA_KEY,BETA_KEY,GAMMA_KEY");
    assert_eq!(env["PROCESSOR_ENTRYPOINT"], "/theory-probe");
    assert_eq!(env["PROXY_AUTH"], "1");
    // Modal's own credentials reach the CLI untouched.
    assert_eq!(env["MODAL_TOKEN_ID"], "ak-standin");

    let status = project.run(&["modal", "status", "--ref", REF, "--env", "dev", "--json"]);
    assert_eq!(status.code, 0, "{}", status.transcript());
    let status = status.json();
    assert_eq!(status["state"], "deployed");
    assert_eq!(status["deployment"]["url"], URL);
    assert_eq!(standin.commands()[1], "app list --json --env dev");
}

#[test]
fn staging_and_main_apps_are_named_by_the_ref_alone() {
    let (project, standin) = project();
    for env in ["staging", "main"] {
        let outcome = start(&project, env);
        assert_eq!(outcome.code, 0, "{}", outcome.transcript());
        assert_eq!(outcome.json()["deployment"]["app_name"], "theory-probe");
    }
    let apps = standin.read("apps.json");
    assert_eq!(apps, json!({"main/theory-probe": "deployed", "staging/theory-probe": "deployed"}));
}

#[test]
fn dev_needs_the_branch_and_the_user_and_nothing_is_asked_without_them() {
    let (project, standin) = project();
    let outcome = start(&project.env("GIT_USER", "ada"), "dev");
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert_eq!(error_code(&outcome), "ERR_MODAL");
    assert!(outcome.stderr.contains("GIT_BRANCH is required for --env dev"), "{}", outcome.stderr);
    assert!(standin.calls().is_empty(), "{:?}", standin.calls());
}

#[test]
fn a_missing_modal_cli_is_named_with_its_install_command() {
    let (project, _standin) = project();
    let empty = project.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let project = project.env("PATH", &empty.display().to_string());
    let outcome = start(&project, "staging");
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert_eq!(error_code(&outcome), "ERR_MODAL");
    assert!(outcome.stderr.contains("the modal CLI is not installed"), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("hint: install it with `pip install modal`"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn missing_modal_tokens_are_an_error_before_the_cli_is_asked() {
    let (project, standin) = project();
    let outcome = project.run_unset(
        "MODAL_TOKEN_SECRET",
        &["modal", "start", "--ref", REF, "--env", "main", "--oci", &pin()],
    );
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert!(outcome.stderr.contains("no Modal credentials"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("modal token new"), "{}", outcome.stderr);
    assert!(standin.calls().is_empty());
}

#[test]
fn an_unpinned_image_is_refused() {
    let (project, standin) = project();
    let outcome = project.run(&[
        "modal",
        "start",
        "--ref",
        REF,
        "--env",
        "main",
        "--oci",
        "127.0.0.1:5000/theory/probe:1",
    ]);
    assert_eq!(outcome.code, 2, "{}", outcome.transcript());
    assert!(outcome.stderr.contains("--oci"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("repo@sha256:"), "{}", outcome.stderr);
    assert!(standin.calls().is_empty());
}

#[test]
fn sync_secrets_creates_and_updates_by_name_and_never_shows_a_value() {
    let (project, standin) = project();
    standin.write("secrets.json", &json!({"main/BETA_KEY": {"values": {"BETA_KEY": "old"}}}));
    let project = project.env("ALPHA_KEY", "alpha-value-1234").env("BETA_KEY", "beta-value-5678");
    let outcome = project.run(&["modal", "sync-secrets", "--ref", REF, "--env", "main", "--json"]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let report = outcome.json();
    assert_eq!(report["created"], json!(["ALPHA_KEY"]));
    assert_eq!(report["updated"], json!(["BETA_KEY"]));
    assert_eq!(report["missing"], json!(["GAMMA_KEY"]));
    assert!(outcome.stderr.contains("missing: GAMMA_KEY"), "{}", outcome.stderr);
    for value in ["alpha-value-1234", "beta-value-5678"] {
        assert!(!outcome.transcript().contains(value), "{}", outcome.transcript());
        assert!(!standin.commands().iter().any(|command| command.contains(value)));
    }
    let secrets = standin.read("secrets.json");
    assert_eq!(secrets["main/ALPHA_KEY"]["values"], json!({"ALPHA_KEY": "alpha-value-1234"}));
    assert_eq!(secrets["main/BETA_KEY"]["values"], json!({"BETA_KEY": "beta-value-5678"}));
    assert_eq!(secrets["main/ALPHA_KEY"]["mode"], "0o600");
    let commands = standin.commands();
    assert_eq!(commands[0], "secret list --json --env main");
    assert!(commands[1].ends_with(" ALPHA_KEY --env main"), "{commands:?}");
    assert!(commands[2].contains(" --force BETA_KEY"), "{commands:?}");
    // The temporary files holding the values are gone.
    let files: Vec<&str> = commands
        .iter()
        .flat_map(|command| command.split_whitespace())
        .filter(|word| word.starts_with('/'))
        .collect();
    assert_eq!(files.len(), 2, "{commands:?}");
    for file in files {
        assert!(!std::path::Path::new(file).exists(), "{file} is left behind");
    }
}

#[test]
fn sync_secrets_fail_on_missing_syncs_nothing() {
    let (project, standin) = project();
    let project = project.env("ALPHA_KEY", "alpha-value-1234");
    let outcome = project.run(&[
        "modal",
        "sync-secrets",
        "--ref",
        REF,
        "--env",
        "main",
        "--fail-on-missing",
        "--json",
    ]);
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert_eq!(error_code(&outcome), "ERR_MISSING_SECRET");
    assert!(outcome.stderr.contains("BETA_KEY, GAMMA_KEY"), "{}", outcome.stderr);
    assert!(standin.calls().is_empty(), "{:?}", standin.commands());
}

#[test]
fn stop_stops_the_app_and_forgets_the_deployment() {
    let (project, standin) = project();
    assert_eq!(start(&project, "staging").code, 0);
    let outcome = project.run(&["modal", "stop", "--ref", REF, "--env", "staging", "--json"]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    assert_eq!(outcome.json()["app_name"], "theory-probe");
    assert_eq!(standin.commands()[1], "app stop --yes theory-probe --env staging");
    let status = project.run(&["modal", "status", "--ref", REF, "--env", "staging", "--json"]);
    let status = status.json();
    assert_eq!(status["state"], "stopped");
    assert_eq!(status["deployment"], Value::Null);
    // A second stop names what the CLI said.
    let again = project.run(&["modal", "stop", "--ref", REF, "--env", "main"]);
    assert_eq!(again.code, 1, "{}", again.transcript());
    assert!(again.stderr.contains("Could not find a deployed app named"), "{}", again.stderr);
}

#[test]
fn status_of_an_app_never_deployed_says_so() {
    let (project, _standin) = project();
    let outcome = project.run(&["modal", "status", "--ref", REF, "--env", "main"]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    assert_eq!(
        outcome.stdout,
        "REF\tENV\tAPP\tSTATE\tURL\tIMAGE\ntheory/probe@5\tmain\ttheory-probe\tnot deployed\t-\t-\n"
    );
}

#[test]
fn logs_print_what_the_cli_streams_with_follow_and_tail_passed_on() {
    let (project, standin) = project();
    assert_eq!(start(&project, "main").code, 0);
    let outcome = project.run(&[
        "modal", "logs", "--ref", REF, "--env", "main", "--tail", "50", "--follow", "--json",
    ]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let lines: Vec<Value> =
        outcome.stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines[1], json!({"line": "processor listening on 0.0.0.0:8000"}));
    assert_eq!(lines.len(), 3);
    assert_eq!(standin.commands()[1], "app logs theory-probe --follow --tail 50 --env main");
}

#[test]
fn deploy_is_sync_modal_parameterized_by_the_environment() {
    let (project, standin) = project();
    let image = pin();
    let project = project
        .env("PROCESSOR_REF", REF)
        .env("IMAGE_REF", &image)
        .env("TIMEOUT_S", "300")
        .env("CPU", "4")
        .env("MEMORY_MIB", "8192")
        .env("GPU", "A10G")
        .env("TOOL_SECRETS", "ALPHA_KEY,BETA_KEY")
        .env("MODAL_APP_NAME", "theory-rt-probe");
    let outcome = project.run(&["modal", "deploy", "--env", "staging", "--json"]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    assert_eq!(outcome.json()["deployment"]["app_name"], "theory-rt-probe");
    let calls = standin.calls();
    assert_eq!(calls[0]["argv"], json!(["deploy", "-m", "modal_app", "--env", "staging"]));
    let env = &calls[0]["env"];
    for (name, value) in [
        ("PROCESSOR_REF", REF),
        ("IMAGE_REF", image.as_str()),
        ("TIMEOUT_S", "300"),
        ("CPU", "4"),
        ("MEMORY_MIB", "8192"),
        ("GPU", "A10G"),
        ("TOOL_SECRETS", "ALPHA_KEY,BETA_KEY"),
        ("MODAL_APP_NAME", "theory-rt-probe"),
    ] {
        assert_eq!(env[name], value, "{name}");
    }
    assert_eq!(standin.read("apps.json"), json!({"staging/theory-rt-probe": "deployed"}));

    let unpinned = project.env("IMAGE_REF", "127.0.0.1:5000/theory/probe:1");
    let outcome = unpinned.run(&["modal", "deploy", "--env", "staging"]);
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert!(outcome.stderr.contains("IMAGE_REF"), "{}", outcome.stderr);
    assert_eq!(standin.calls().len(), 1);
}

#[test]
fn a_failing_cli_is_quoted() {
    let (project, _standin) = project();
    let outcome = project.run(&["modal", "logs", "--ref", REF, "--env", "main"]);
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert!(outcome.stderr.contains("error: ERR_MODAL"), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("Could not find a deployed app named 'theory-probe'"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn a_deployment_is_seen_by_everyone_on_the_same_ledger() {
    let url = crate::support::postgres_database("modal_shared");
    let (alice, _standin) = project();
    let alice = alice.env("DATABASE_URL", &url);
    assert_eq!(start(&alice, "staging").code, 0);
    assert!(!alice.path().join(".theory/modal_deployments.json").exists());

    // A teammate's checkout (or CI) with the same DATABASE_URL finds it.
    let (bob, _standin) = project();
    let status = bob
        .env("DATABASE_URL", &url)
        .run(&["modal", "status", "--ref", REF, "--env", "staging", "--json"]);
    assert_eq!(status.code, 0, "{}", status.transcript());
    let deployment = &status.json()["deployment"];
    assert_eq!(deployment["url"], URL);
    assert_eq!(deployment["image_ref"], pin());
    // Without the shared ledger, nothing is deployed.
    let (carol, _standin) = project();
    let alone = carol.run(&["modal", "status", "--ref", REF, "--env", "staging", "--json"]);
    assert_eq!(alone.json()["deployment"], Value::Null, "{}", alone.transcript());
}

#[test]
fn start_without_oci_deploys_the_specs_amd64_pin_and_says_when_there_is_none() {
    let (project, standin) = project();
    let outcome = project.run(&["modal", "start", "--ref", REF, "--env", "main", "--json"]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    assert_eq!(outcome.json()["deployment"]["image_ref"], pin());
    assert_eq!(standin.calls()[0]["env"]["IMAGE_REF"], pin());

    let unpinned = Project::new().env("MODAL_ENABLED", "true");
    let refused = unpinned.run(&["modal", "start", "--ref", "theory/probe@1", "--env", "main"]);
    assert_eq!(refused.code, 2, "{}", refused.transcript());
    assert!(refused.stderr.contains("has no amd64 pin to deploy"), "{}", refused.transcript());
}
