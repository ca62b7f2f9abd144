//! The ledger through the CLI: plans and `--plan`, executions recorded and shown with receipts,
//! `theory ledger verify`, recovery after a killed orchestrator, and PostgreSQL by `DATABASE_URL`.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;

use crate::support::{HELLO, Project, binaries, binary};

/// A project whose registry holds `theory/probe@7`: the probe with a budget predicate that
/// reserves 5000 micro-USD for each real run.
fn priced_project() -> Project {
    let project = Project::new();
    project.probe_variant("theory/probe@7", "probe7.yaml", |spec| {
        format!(
            "{spec}predicates:\n  admission:\n    - {{id: budget.available@1, args: {{required_usd_micro: 5000}}}}\n"
        )
    });
    project
}

fn real_probe(project: &Project, plan: &str, inputs: &str) -> crate::support::Outcome {
    project.run(&[
        "run",
        "--ref",
        "theory/probe@7",
        "--mode",
        "real",
        "--plan",
        plan,
        "--inputs-json",
        inputs,
        "--json",
        "--no-cache",
    ])
}

fn plan(project: &Project, key: &str) -> Value {
    let shown = project.run(&["plan", "show", key, "--json"]);
    assert_eq!(shown.code, 0, "{}", shown.transcript());
    shown.json()
}

#[test]
fn a_plan_is_charged_by_real_runs_and_refuses_what_it_cannot_cover() {
    let project = priced_project();
    let created =
        project.run(&["plan", "create", "--key", "team", "--budget-usd-micro", "12000", "--json"]);
    assert_eq!(created.code, 0, "{}", created.transcript());
    assert_eq!(created.json()["available_usd_micro"], 12000);
    for _ in 0..2 {
        let outcome = real_probe(&project, "team", r#"{"text":"hi"}"#);
        assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    }
    let team = plan(&project, "team");
    assert_eq!(
        (team["spent_usd_micro"].as_i64(), team["reserved_usd_micro"].as_i64()),
        (Some(10000), Some(0))
    );
    let refused = real_probe(&project, "team", r#"{"text":"hi"}"#);
    assert_eq!(refused.code, 1, "{}", refused.transcript());
    assert!(
        refused
            .stderr
            .contains("ERR_BUDGET: plan team has 2000 µUSD available; this run needs 5000"),
        "{}",
        refused.transcript()
    );
    assert!(
        project.state_files().iter().filter(|file| file.ends_with("outputs.json")).count() == 2,
        "the refused run wrote an index: {:?}",
        project.state_files()
    );
    // Mock runs cost nothing and reserve nothing.
    let mock = project.run(&[
        "run",
        "--ref",
        "theory/probe@7",
        "--plan",
        "team",
        "--inputs-json",
        "{}",
        "--json",
    ]);
    assert_eq!(mock.code, 0, "{}", mock.transcript());
    let unknown = real_probe(&project, "nobody", "{}");
    assert_eq!(unknown.code, 1, "{}", unknown.transcript());
    assert!(unknown.stderr.contains("theory plan create --key nobody"), "{}", unknown.transcript());
    let again = project.run(&["plan", "create", "--key", "team", "--budget-usd-micro", "1"]);
    assert_eq!(again.code, 1, "{}", again.transcript());
    let bad = project.run(&["plan", "create", "--key", "team", "--budget-usd-micro", "-5"]);
    assert_eq!(bad.code, 2, "{}", bad.transcript());
    let listed = project.run(&["plan", "list", "--json"]);
    assert_eq!(listed.json()["plans"].as_array().unwrap().len(), 1, "{}", listed.transcript());
}

#[test]
fn every_run_is_recorded_and_shown_with_its_receipt_and_the_chain_verifies() {
    let project = Project::new();
    let ok = project.run_hello(&["--json", "--no-cache"]);
    assert_eq!(ok.code, 0, "{}", ok.transcript());
    let id = ok.json()["execution_id"].as_str().unwrap().to_owned();
    let failed = project.run(&[
        "run",
        "--ref",
        "llm/litellm@1",
        "--inputs-json",
        r#"{"messages":[]}"#,
        "--json",
    ]);
    assert_eq!(failed.code, 1, "{}", failed.transcript());
    let listed = project.run(&["executions", "list", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.transcript());
    let executions = listed.json()["executions"].as_array().unwrap().clone();
    assert_eq!(executions.len(), 2, "{}", listed.transcript());
    assert_eq!(executions[0]["status"], "error");
    assert_eq!(executions[0]["error_code"], "ERR_INPUT_SCHEMA");
    assert_eq!(
        (executions[1]["id"].as_str(), executions[1]["status"].as_str()),
        (Some(id.as_str()), Some("success"))
    );
    let shown = project.run(&["executions", "show", &id, "--json"]);
    assert_eq!(shown.code, 0, "{}", shown.transcript());
    let shown = shown.json();
    assert_eq!(shown["receipt"]["execution_id"], id.as_str());
    assert_eq!(shown["execution"]["envelope"]["status"], "success");
    let kinds: Vec<&str> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    // The run held a lease on its write prefix from admission to its end.
    assert_eq!(
        kinds,
        ["lease.acquired", "execution.started", "execution.finished", "lease.released"]
    );
    let missing = project.run(&["executions", "show", "01NOPE"]);
    assert_eq!(missing.code, 1, "{}", missing.transcript());

    let verified = project.run(&["ledger", "verify", "--json"]);
    assert_eq!(verified.code, 0, "{}", verified.transcript());
    assert_eq!(verified.json()["entries"], 6);
    let database = format!("sqlite://{}", project.path().join(".theory/theory.db").display());
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(&database).await.unwrap();
        sqlx::query("UPDATE events SET kind = 'execution.forged' WHERE seq = 2")
            .execute(&mut connection)
            .await
            .unwrap();
    });
    let tampered = project.run(&["ledger", "verify"]);
    assert_eq!(tampered.code, 1, "{}", tampered.transcript());
    assert!(
        tampered.stderr.contains("ledger entry 2 was tampered with"),
        "{}",
        tampered.transcript()
    );
}

#[test]
fn runs_of_a_killed_orchestrator_are_failed_and_their_reservation_released() {
    let project = priced_project();
    assert_eq!(
        project.run(&["plan", "create", "--key", "p", "--budget-usd-micro", "5000"]).code,
        0
    );
    let mut theory = std::process::Command::new(binary())
        .current_dir(project.path())
        .env_clear()
        .env("THEORY_PROJECT", project.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("THEORY_PROCESSOR_PATH", binaries())
        .env("THEORY_LOCAL_RUNTIME", "process")
        .args([
            "run",
            "--ref",
            "theory/probe@7",
            "--mode",
            "real",
            "--plan",
            "p",
            "--inputs-json",
            r#"{"sleep_ms":3000}"#,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = project.run(&["executions", "list", "--json"]).json();
        if listed["executions"]
            .as_array()
            .is_some_and(|runs| runs.iter().any(|run| run["status"] == "running"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the run never showed as running");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(plan(&project, "p")["reserved_usd_micro"], 5000);
    theory.kill().unwrap();
    theory.wait().unwrap();
    // The next command that opens the ledger notices the owner is gone.
    let p = plan(&project, "p");
    assert_eq!(
        (p["reserved_usd_micro"].as_i64(), p["spent_usd_micro"].as_i64()),
        (Some(0), Some(0))
    );
    let listed = project.run(&["executions", "list", "--json"]).json();
    let run = &listed["executions"][0];
    assert_eq!(
        (run["status"].as_str(), run["error_code"].as_str()),
        (Some("error"), Some("ERR_RUNTIME"))
    );
}

#[test]
fn database_url_puts_the_ledger_in_postgresql_and_a_bad_one_is_named_not_shown() {
    let url = crate::support::postgres_database("theory_cli");
    let project = Project::new().env("DATABASE_URL", &url);
    let ok = project.run(&["run", "--ref", "llm/litellm@1", "--inputs-json", HELLO, "--json"]);
    assert_eq!(ok.code, 0, "{}", ok.transcript());
    let listed = project.run(&["executions", "list", "--json"]);
    assert_eq!(listed.json()["executions"].as_array().unwrap().len(), 1, "{}", listed.transcript());
    assert!(
        !project.path().join(".theory/theory.db").exists(),
        "SQLite was used despite DATABASE_URL"
    );
    assert_eq!(project.run(&["ledger", "verify"]).code, 0);

    let secret = "postgres://postgres:hunter2-secret@127.0.0.1:1/nowhere";
    let wrong = Project::new().env("DATABASE_URL", secret);
    let outcome = wrong.run(&["run", "--ref", "llm/litellm@1", "--inputs-json", HELLO]);
    assert_eq!(outcome.code, 2, "{}", outcome.transcript());
    assert!(outcome.stderr.contains("DATABASE_URL"), "{}", outcome.transcript());
    assert!(!outcome.stderr.contains("hunter2"), "{}", outcome.transcript());
}

#[test]
fn a_live_run_leases_its_write_prefix_and_an_overlapping_run_is_refused() {
    let project = Project::new();
    let prefix = "/artifacts/outputs/shared/";
    let mut first = std::process::Command::new(binary())
        .current_dir(project.path())
        .env_clear()
        .env("THEORY_PROJECT", project.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("THEORY_PROCESSOR_PATH", binaries())
        .env("THEORY_LOCAL_RUNTIME", "process")
        .args(["run", "--ref", "theory/probe@1", "--write-prefix", prefix, "--no-cache"])
        .args(["--inputs-json", r#"{"sleep_ms":2500}"#])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let holder = loop {
        let listed = project.run(&["executions", "list", "--json"]).json();
        let running = listed["executions"]
            .as_array()
            .and_then(|runs| runs.iter().find(|run| run["status"] == "running").cloned());
        if let Some(run) = running {
            break run["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "the first run never showed as running");
        std::thread::sleep(Duration::from_millis(50));
    };
    for overlapping in [prefix, "/artifacts/outputs/shared/inner/"] {
        let second = project.run(&[
            "run",
            "--ref",
            "theory/probe@1",
            "--write-prefix",
            overlapping,
            "--no-cache",
            "--inputs-json",
            "{}",
        ]);
        assert_eq!(second.code, 1, "{}", second.transcript());
        assert!(
            second.stderr.contains("ERR_LEASE") && second.stderr.contains(&holder),
            "{}",
            second.transcript()
        );
    }
    assert!(first.wait().unwrap().success());
    // Released when the first run ended (the prefix itself now holds the first run's record,
    // which is never replaced: a folder inside it is free).
    let third = project.run(&[
        "run",
        "--ref",
        "theory/probe@1",
        "--write-prefix",
        "/artifacts/outputs/shared/inner/",
        "--no-cache",
        "--inputs-json",
        "{}",
    ]);
    assert_eq!(third.code, 0, "{}", third.transcript());
}

#[test]
fn a_failed_success_predicate_is_err_predicate_with_no_index_and_is_recorded() {
    let project = Project::new();
    let with = |predicate: &'static str| {
        move |spec: String| format!("{spec}predicates:\n  success:\n    - {predicate}\n")
    };
    std::fs::create_dir_all(project.path().join("registry/schemas")).unwrap();
    std::fs::write(
        project.path().join("registry/schemas/strict.yaml"),
        "id: probe.strict@1\nschema: {type: object, required: [never_there]}\n",
    )
    .unwrap();
    project.probe_variant(
        "theory/probe@8",
        "p8.yaml",
        with(r#"{id: json.schema_ok@1, args: {schema: probe.strict@1, path: "${outputs.meta.json}"}}"#),
    );
    project.probe_variant(
        "theory/probe@9",
        "p9.yaml",
        with(r#"{id: artifact.exists@1, args: {path: "${outputs.missing.txt}"}}"#),
    );
    for (reference, message) in [
        ("theory/probe@8", "success predicate json.schema_ok@1 failed"),
        ("theory/probe@9", "success predicate artifact.exists@1 failed"),
    ] {
        let outcome = project.run(&["run", "--ref", reference, "--inputs-json", "{}", "--json"]);
        assert_eq!(outcome.code, 1, "{}", outcome.transcript());
        assert_eq!(outcome.json()["error"]["code"], "ERR_PREDICATE", "{}", outcome.transcript());
        assert!(outcome.stderr.contains(message), "{}", outcome.transcript());
    }
    assert!(
        project
            .state_files()
            .iter()
            .all(|file| !file.contains("/outputs/") && !file.ends_with("outputs.json")),
        "a run that failed its predicate left files: {:?}",
        project.state_files()
    );
    let listed = project.run(&["executions", "list", "--json"]).json();
    let codes: Vec<&str> = listed["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["error_code"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(codes, ["ERR_PREDICATE", "ERR_PREDICATE"]);
    // The processor ran and reported what it cost: the plan is charged, and its settlement names
    // the predicate's failure.
    assert_eq!(
        project.run(&["plan", "create", "--key", "p", "--budget-usd-micro", "1000"]).code,
        0
    );
    let charged = project.run(&[
        "run",
        "--ref",
        "theory/probe@8",
        "--mode",
        "real",
        "--plan",
        "p",
        "--inputs-json",
        r#"{"usage":{"cost_usd_micro":42}}"#,
        "--json",
    ]);
    assert_eq!(charged.code, 1, "{}", charged.transcript());
    let envelope = charged.json();
    assert_eq!(envelope["meta"]["usage"]["cost_usd_micro"], 42, "{}", charged.transcript());
    let id = envelope["execution_id"].as_str().unwrap();
    let shown = project.run(&["executions", "show", id, "--json"]).json();
    let settled = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["kind"] == "plan.settled")
        .unwrap_or_else(|| panic!("no settlement: {shown}"))
        .clone();
    assert_eq!(settled["body"]["error_code"], "ERR_PREDICATE", "{settled}");
    assert_eq!(settled["body"]["charged_usd_micro"], 42, "{settled}");
    assert_eq!(plan(&project, "p")["spent_usd_micro"], 42);
    // The built-in litellm spec checks its own outputs the same way, and passes.
    let ok = project.run(&["run", "--ref", "llm/litellm@1", "--inputs-json", HELLO]);
    assert_eq!(ok.code, 0, "{}", ok.transcript());
}

#[test]
fn transient_failures_are_retried_by_the_policy_and_each_attempt_is_recorded() {
    let project = Project::new();
    std::fs::create_dir_all(project.path().join("registry/policies")).unwrap();
    std::fs::write(
        project.path().join("registry/policies/default.yaml"),
        "id: default@1\nretry: {max_attempts: 3, backoff_ms: [10, 20]}\nleases: {default_ttl_s: 60}\n",
    )
    .unwrap();
    // A processor that dies mid-run loses the connection: transient, tried three times.
    let crashed = project.run(&[
        "run",
        "--ref",
        "theory/probe@1",
        "--inputs-json",
        r#"{"crash":true}"#,
        "--json",
        "--no-cache",
    ]);
    assert_eq!(crashed.code, 1, "{}", crashed.transcript());
    assert_eq!(crashed.json()["error"]["code"], "ERR_CONNECTION", "{}", crashed.transcript());
    // A provider error is the processor's answer, never retried.
    let refused = project.run(&[
        "run",
        "--ref",
        "theory/probe@1",
        "--json",
        "--no-cache",
        "--inputs-json",
        r#"{"fail":{"code":"ERR_PROVIDER","message":"quota"}}"#,
    ]);
    assert_eq!(refused.json()["error"]["code"], "ERR_PROVIDER", "{}", refused.transcript());
    let listed = project.run(&["executions", "list", "--json"]).json();
    let runs = listed["executions"].as_array().unwrap();
    assert_eq!(
        (runs[0]["error_code"].as_str(), runs[0]["attempts"].as_i64()),
        (Some("ERR_PROVIDER"), Some(1))
    );
    assert_eq!(
        (runs[1]["error_code"].as_str(), runs[1]["attempts"].as_i64()),
        (Some("ERR_CONNECTION"), Some(3))
    );
    let id = runs[1]["id"].as_str().unwrap();
    let shown = project.run(&["executions", "show", id, "--json"]).json();
    let failed_attempts = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "execution.attempt_failed")
        .count();
    assert_eq!(failed_attempts, 2);
}

#[test]
fn a_plan_is_charged_the_usage_priced_by_the_spec_or_the_reported_cost() {
    let project = Project::new();
    project.probe_variant("theory/probe@10", "probe10.yaml", |spec| {
        format!(
            "{spec}pricing:\n  usd_micro_per: {{tokens_in: 0.5, tokens_out: 2.5}}\n  estimate_usage: {{tokens_in: 1000, tokens_out: 1000}}\n"
        )
    });
    assert_eq!(
        project.run(&["plan", "create", "--key", "p", "--budget-usd-micro", "10000"]).code,
        0
    );
    let run = |usage: &str, cache: bool| {
        let inputs = format!(r#"{{"usage":{usage}}}"#);
        let mut args =
            vec!["run", "--ref", "theory/probe@10", "--mode", "real", "--plan", "p", "--json"];
        args.extend(["--inputs-json", inputs.as_str()]);
        if !cache {
            args.push("--no-cache");
        }
        let outcome = project.run(&args);
        assert_eq!(outcome.code, 0, "{}", outcome.transcript());
        outcome.json()
    };

    // Admission reserves the priced estimate (500 + 2500); settlement charges 11×0.5 + 101×2.5
    // = 258 (rounded up) and releases the rest.
    let priced = run(r#"{"tokens_in":11,"tokens_out":101}"#, false);
    let id = priced["execution_id"].as_str().unwrap();
    let shown = project.run(&["executions", "show", id, "--json"]).json();
    assert_eq!(shown["execution"]["reserved_usd_micro"], 3000);
    assert_eq!(shown["execution"]["cost_usd_micro"], 258);
    assert_eq!(shown["receipt"]["cost_usd_micro"], 258);
    assert_eq!(plan(&project, "p")["spent_usd_micro"], 258);

    // A cost the processor reports wins over the pricing.
    run(r#"{"tokens_out":100,"cost_usd_micro":42}"#, false);
    assert_eq!(plan(&project, "p")["spent_usd_micro"], 300);

    // The same run again comes from the memo cache: it ran nothing and costs nothing.
    let cached = run(r#"{"tokens_out":100,"cost_usd_micro":42}"#, true);
    assert_eq!(cached["meta"]["cached"], true);
    let team = plan(&project, "p");
    assert_eq!(
        (team["spent_usd_micro"].as_i64(), team["reserved_usd_micro"].as_i64()),
        (Some(300), Some(0))
    );

    // A price that is no number of micro-USD is named when the registry loads.
    let bad = std::fs::read_to_string(project.path().join("registry/processors/probe10.yaml"))
        .unwrap()
        .replace("tokens_out: 2.5}", "tokens_out: -1}");
    std::fs::write(project.path().join("registry/processors/probe10.yaml"), bad).unwrap();
    let refused = project.run(&["registry", "validate"]);
    assert_eq!(refused.code, 1, "{}", refused.transcript());
    assert!(
        refused.stderr.contains("pricing.usd_micro_per.tokens_out"),
        "{}",
        refused.transcript()
    );
}
