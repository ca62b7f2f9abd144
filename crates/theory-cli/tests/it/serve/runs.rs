//! `theory serve` as an application calls it: runs submitted over HTTP, waited for, looked up,
//! cancelled, refused when bad, idempotent with `Idempotency-Key`; queued runs survive a restart;
//! SIGTERM shuts down cleanly.

use serde_json::json;

use super::Server;
use crate::support::Project;

#[test]
fn a_run_submitted_over_http_is_waited_for_looked_up_and_recorded() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let (status, run) = server.submit(
        &json!({"ref": "theory/probe@1", "inputs": {"text": "over http"}}),
        &[("Prefer", "wait")],
    );
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["envelope"]["status"], "success");
    assert_eq!(run["mode"], "mock");
    let id = run["id"].as_str().unwrap();
    assert_eq!(run["envelope"]["execution_id"], id, "the run's id is its execution id");
    // The waiting request is answered from the record the closing write returned: the same
    // object as a look-up afterwards.
    assert_eq!(server.get(id), run);
    // The same record `theory run` leaves: the ledger has it, the store holds its outputs.
    let shown = project.run(&["executions", "show", id, "--json"]);
    assert_eq!(shown.json()["execution"]["status"], "success", "{}", shown.transcript());
    assert_eq!(project.run(&["verify", id]).code, 0);
    assert_eq!(server.stop(), Some(0), "SIGTERM ends theory serve with 0");
}

#[test]
fn bad_requests_are_refused_with_the_status_of_their_failure() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    for (body, status, code) in [
        (json!({"ref": "nope/missing@1"}), 404, "ERR_REGISTRY"),
        (
            json!({"ref": "theory/probe@1", "inputs": {"size_bytes": "many"}}),
            422,
            "ERR_INPUT_SCHEMA",
        ),
        (json!({"ref": "theory/probe@1", "mode": "expensive"}), 400, "ERR_USAGE"),
        (
            json!({"ref": "theory/probe@1", "write_prefix": "/artifacts/execution/"}),
            400,
            "ERR_USAGE",
        ),
        (json!({"ref": "theory/probe@1", "surprise": true}), 400, "ERR_USAGE"),
        (json!({"ref": "theory/probe@1", "env": "dev"}), 400, "ERR_USAGE"),
        (json!({"ref": "theory/probe@1", "adapter": "modal", "env": "prod"}), 400, "ERR_USAGE"),
    ] {
        let (got, answer) = server.submit(&body, &[]);
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
        assert!(answer["hint"].is_string(), "{answer}");
    }
    let (status, answer) = server.request("POST", "/v1/runs", &[], "{not json");
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("ERR_USAGE")));
    let (status, answer) = server.request("GET", "/v1/runs/01NOSUCHRUN0000000000000000", &[], "");
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("ERR_NOT_FOUND")));
    let (status, answer) = server.request("GET", "/readyz", &[], "");
    assert_eq!((status, answer["ok"].as_bool()), (200, Some(true)), "{answer}");
}

#[test]
fn an_idempotency_key_makes_one_run_of_two_submissions() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let body = json!({"ref": "theory/probe@1", "inputs": {"text": "once"}});
    let (first, created) =
        server.submit(&body, &[("Idempotency-Key", "order-17"), ("Prefer", "wait")]);
    let (second, again) = server.submit(&body, &[("Idempotency-Key", "order-17")]);
    assert_eq!((first, second), (201, 200));
    assert_eq!(created["id"], again["id"]);
    let other = json!({"ref": "theory/probe@1", "inputs": {"text": "twice"}});
    let (status, conflict) = server.submit(&other, &[("Idempotency-Key", "order-17")]);
    assert_eq!(status, 409, "{conflict}");
    let listed = project.run(&["executions", "list", "--json"]).json();
    assert_eq!(listed["executions"].as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn a_running_run_is_cancelled_and_a_queued_one_never_starts() {
    let project = Project::new();
    let server = Server::start(&project, &["--max-concurrent-runs", "1"]);
    let sleeping = json!({"ref": "theory/probe@1", "inputs": {"sleep_ms": 60000}});
    let (_, running) = server.submit(&sleeping, &[]);
    let running = running["id"].as_str().unwrap().to_owned();
    server.wait_status(&running, "running");
    let (status, queued) =
        server.submit(&json!({"ref": "theory/probe@1", "inputs": {"text": "behind"}}), &[]);
    assert_eq!((status, queued["status"].as_str()), (201, Some("queued")), "{queued}");
    let queued = queued["id"].as_str().unwrap().to_owned();
    let (status, _) = server.request("POST", &format!("/v1/runs/{queued}/cancel"), &[], "");
    assert_eq!(status, 200);
    assert_eq!(server.get(&queued)["status"], "cancelled");
    let (status, _) = server.request("POST", &format!("/v1/runs/{running}/cancel"), &[], "");
    assert_eq!(status, 200);
    let cancelled = server.wait_status(&running, "cancelled");
    assert_eq!(cancelled["envelope"]["error"]["code"], "ERR_CANCELLED", "{cancelled}");
    // The queued run was never admitted: the ledger has one run, the cancelled one.
    let listed = project.run(&["executions", "list", "--json"]).json();
    assert_eq!(listed["executions"].as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn queued_runs_survive_a_restart() {
    let project = Project::new();
    let server =
        Server::start(&project, &["--max-concurrent-runs", "1", "--shutdown-grace-s", "0"]);
    let (_, first) =
        server.submit(&json!({"ref": "theory/probe@1", "inputs": {"sleep_ms": 60000}}), &[]);
    let first = first["id"].as_str().unwrap().to_owned();
    server.wait_status(&first, "running");
    let (_, waiting) =
        server.submit(&json!({"ref": "theory/probe@1", "inputs": {"text": "after restart"}}), &[]);
    let waiting = waiting["id"].as_str().unwrap().to_owned();
    // Shut down with no grace: the running run is cancelled, the queued one stays queued.
    assert_eq!(server.stop(), Some(0));
    let server = Server::start(&project, &[]);
    assert_eq!(server.get(&first)["status"], "cancelled");
    let done = server.wait_status(&waiting, "succeeded");
    assert_eq!(done["envelope"]["status"], "success", "{done}");
}

#[test]
fn runs_are_listed_newest_first_with_filters_and_a_cursor() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let mut ids = Vec::new();
    for text in ["one", "two", "three"] {
        let (_, run) = server.submit(
            &json!({"ref": "theory/probe@1", "inputs": {"text": text}}),
            &[("Prefer", "wait")],
        );
        ids.push(run["id"].as_str().unwrap().to_owned());
    }
    let (_, failing) = server.submit(
        &json!({"ref": "theory/probe@1", "inputs": {"fail": {"code": "ERR_PROVIDER", "message": "no"}}}),
        &[("Prefer", "wait")],
    );
    assert_eq!(failing["status"], "failed", "{failing}");
    let (status, page) = server.request("GET", "/v1/runs?limit=2", &[], "");
    assert_eq!(status, 200, "{page}");
    let first: Vec<&str> =
        page["runs"].as_array().unwrap().iter().map(|run| run["id"].as_str().unwrap()).collect();
    assert_eq!(first, [failing["id"].as_str().unwrap(), ids[2].as_str()]);
    let cursor = page["next_cursor"].as_str().expect("a cursor for the rest");
    let (_, rest) = server.request("GET", &format!("/v1/runs?limit=2&cursor={cursor}"), &[], "");
    let rest: Vec<&str> =
        rest["runs"].as_array().unwrap().iter().map(|run| run["id"].as_str().unwrap()).collect();
    assert_eq!(rest, [ids[1].as_str(), ids[0].as_str()]);
    let (_, succeeded) =
        server.request("GET", "/v1/runs?status=succeeded&ref=theory/probe@1", &[], "");
    assert_eq!(succeeded["runs"].as_array().unwrap().len(), 3, "{succeeded}");
    let (_, failed) = server.request("GET", "/v1/runs?status=failed", &[], "");
    assert_eq!(failed["runs"].as_array().unwrap().len(), 1, "{failed}");
    let (status, _) = server.request("GET", "/v1/runs?limit=1000", &[], "");
    assert_eq!(status, 400);
}

#[test]
fn receipts_processors_and_plans_can_be_looked_up() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let (_, run) = server.submit(&json!({"ref": "theory/probe@1"}), &[("Prefer", "wait")]);
    let id = run["id"].as_str().unwrap();
    let (status, receipt) = server.request("GET", &format!("/v1/runs/{id}/receipt"), &[], "");
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["execution_id"], id);
    assert!(receipt["inputs_hash"].as_str().is_some_and(|hash| hash.starts_with("b3:")));
    let (status, listed) = server.request("GET", "/v1/processors", &[], "");
    assert_eq!(status, 200);
    assert!(
        listed["processors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["ref"] == "llm/litellm@1")
    );
    let (status, probe) = server.request("GET", "/v1/processors/theory/probe@1", &[], "");
    assert_eq!(status, 200, "{probe}");
    assert_eq!(probe["inputs"]["type"], "object");
    let (status, _) = server.request("GET", "/v1/processors/nope/nothing@1", &[], "");
    assert_eq!(status, 404);
    let (status, plan) = server.request(
        "POST",
        "/v1/plans",
        &[],
        &json!({"key": "team", "budget_usd_micro": 5000}).to_string(),
    );
    assert_eq!((status, plan["available_usd_micro"].as_i64()), (201, Some(5000)), "{plan}");
    let (status, _) = server.request(
        "POST",
        "/v1/plans",
        &[],
        &json!({"key": "team", "budget_usd_micro": 1}).to_string(),
    );
    assert_eq!(status, 409);
    let (status, plan) = server.request("GET", "/v1/plans/team", &[], "");
    assert_eq!((status, plan["budget_usd_micro"].as_i64()), (200, Some(5000)));
    let (_, plans) = server.request("GET", "/v1/plans", &[], "");
    assert_eq!(plans["plans"].as_array().unwrap().len(), 1);
    let (status, _) = server.request("GET", "/v1/plans/absent", &[], "");
    assert_eq!(status, 404);
}

#[test]
fn a_processor_runs_no_more_runs_at_once_than_its_spec_allows() {
    let project = Project::new();
    project.probe_variant("test/solo@1", "solo.yaml", |spec| {
        spec.replace("gpu: null}", "gpu: null, max_concurrency: 1}")
    });
    let server = Server::start(&project, &["--max-concurrent-runs", "4"]);
    let started = std::time::Instant::now();
    // Inputs that differ: no run is a memo-cache hit of another.
    let ids: Vec<String> = (0..3)
        .map(|n| {
            let solo =
                json!({"ref": "test/solo@1", "inputs": {"sleep_ms": 300, "text": format!("{n}")}});
            server.submit(&solo, &[]).1["id"].as_str().unwrap().to_owned()
        })
        .collect();
    // Another processor is not held up behind them.
    let (_, other) = server.submit(&json!({"ref": "theory/probe@1"}), &[("Prefer", "wait")]);
    assert_eq!(other["status"], "succeeded", "{other}");
    for id in &ids {
        server.wait_status(id, "succeeded");
    }
    // The ledger's records of the three runs: each started after the one before it ended.
    let mut spans: Vec<(i64, i64)> = ids
        .iter()
        .map(|id| {
            let shown = project.run(&["executions", "show", id, "--json"]).json();
            let record = &shown["execution"];
            (record["started_at_ms"].as_i64().unwrap(), record["finished_at_ms"].as_i64().unwrap())
        })
        .collect();
    spans.sort_unstable();
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "max_concurrency: 1 runs one at a time: {spans:?}");
    }
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "{:?}", started.elapsed());
}

#[test]
fn a_full_queue_an_unknown_plan_and_an_empty_budget_are_refused_before_queueing() {
    let project = Project::new();
    let made = project.run(&["plan", "create", "--key", "empty", "--budget-usd-micro", "0"]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    let server = Server::start(&project, &["--max-concurrent-runs", "1", "--max-queued-runs", "1"]);
    let (_, running) =
        server.submit(&json!({"ref": "theory/probe@1", "inputs": {"sleep_ms": 60000}}), &[]);
    server.wait_status(running["id"].as_str().unwrap(), "running");
    let (status, _) =
        server.submit(&json!({"ref": "theory/probe@1", "inputs": {"text": "waits"}}), &[]);
    assert_eq!(status, 201);
    let (status, full) =
        server.submit(&json!({"ref": "theory/probe@1", "inputs": {"text": "one too many"}}), &[]);
    assert_eq!((status, full["error"]["code"].as_str()), (429, Some("ERR_LIMIT")), "{full}");
    assert!(full["hint"].is_string(), "{full}");
    let (status, _) = server.request(
        "POST",
        &format!("/v1/runs/{}/cancel", running["id"].as_str().unwrap()),
        &[],
        "",
    );
    assert_eq!(status, 200);

    let server = Server::start(&project, &[]);
    let (status, unknown) =
        server.submit(&json!({"ref": "theory/probe@1", "plan": "nowhere"}), &[]);
    assert_eq!(
        (status, unknown["error"]["code"].as_str()),
        (404, Some("ERR_NOT_FOUND")),
        "{unknown}"
    );
    let (status, broke) =
        server.submit(&json!({"ref": "theory/probe@1", "plan": "empty", "mode": "real"}), &[]);
    assert_eq!((status, broke["error"]["code"].as_str()), (429, Some("ERR_BUDGET")), "{broke}");
    // Mock runs cost nothing: an empty plan takes them.
    let (status, mock) =
        server.submit(&json!({"ref": "theory/probe@1", "plan": "empty"}), &[("Prefer", "wait")]);
    assert_eq!((status, mock["status"].as_str()), (201, Some("succeeded")), "{mock}");
}

#[test]
fn put_with_a_client_chosen_id_makes_the_run_once() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let id = theory_core::new_execution_id().to_string();
    let body = json!({"ref": "theory/probe@1", "inputs": {"text": "put once"}}).to_string();
    let (status, first) =
        server.request("PUT", &format!("/v1/runs/{id}"), &[("Prefer", "wait")], &body);
    assert_eq!((status, first["id"].as_str()), (201, Some(id.as_str())), "{first}");
    assert_eq!(first["status"], "succeeded", "{first}");
    let (status, again) = server.request("PUT", &format!("/v1/runs/{id}"), &[], &body);
    assert_eq!((status, again["id"].as_str()), (200, Some(id.as_str())), "{again}");
    let other = json!({"ref": "theory/probe@1", "inputs": {"text": "another"}}).to_string();
    let (status, conflict) = server.request("PUT", &format!("/v1/runs/{id}"), &[], &other);
    assert_eq!(status, 409, "{conflict}");
    for bad_id in [".hidden", "a%20b", "x%2Fy"] {
        let (status, bad) = server.request("PUT", &format!("/v1/runs/{bad_id}"), &[], &body);
        assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("ERR_USAGE")), "{bad}");
    }
    // A run `theory run` made holds its id too.
    let local = project.run(&["run", "--ref", "theory/probe@1", "--json"]).json();
    let taken = local["execution_id"].as_str().unwrap();
    let (status, _) = server.request("PUT", &format!("/v1/runs/{taken}"), &[], &body);
    assert_eq!(status, 409);
    let listed = project.run(&["executions", "list", "--json"]).json();
    assert_eq!(listed["executions"].as_array().unwrap().len(), 2, "{listed}");
    // An id a client chose, in any case and with `-`, is shown by its exact text.
    let chosen = "nightly-Run_1";
    let (status, made) =
        server.request("PUT", &format!("/v1/runs/{chosen}"), &[("Prefer", "wait")], &other);
    assert_eq!(status, 201, "{made}");
    let shown = project.run(&["executions", "show", chosen, "--json"]);
    assert_eq!(shown.code, 0, "{}", shown.transcript());
    assert_eq!(shown.json()["execution"]["id"], chosen);
}

#[test]
fn the_ci_guard_refuses_a_real_run_as_the_command_line_does() {
    let project = Project::new();
    let server = Server::launch_with(&project, &["--no-auth"], &[("CI", "true")]);
    let (status, refused) = server.submit(&json!({"ref": "theory/probe@1", "mode": "real"}), &[]);
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("ERR_CI_SAFETY")),
        "{refused}"
    );
    assert!(refused["hint"].as_str().unwrap().contains("THEORY_ALLOW_REAL_IN_CI"), "{refused}");
    let (status, mock) = server.submit(&json!({"ref": "theory/probe@1"}), &[("Prefer", "wait")]);
    assert_eq!((status, mock["status"].as_str()), (201, Some("succeeded")), "{mock}");
}
