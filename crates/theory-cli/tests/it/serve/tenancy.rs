//! API tokens: a server with tokens refuses callers without one, a token sees only its own runs
//! and its plan's, its runs are charged to its plan, scopes limit what it may do, and a revoked
//! token stops working at once.

use serde_json::{Value, json};

use super::{Server, token};
use crate::support::Project;

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

#[test]
fn a_server_without_tokens_or_off_loopback_without_them_refuses_to_start() {
    let project = Project::new();
    let refused = project.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(refused.code, 2, "{}", refused.transcript());
    assert!(refused.stderr.contains("needs API tokens"), "{}", refused.transcript());
    assert!(refused.stderr.contains("theory token create"), "{}", refused.transcript());
    let open = project.run(&["serve", "--no-auth", "--listen", "0.0.0.0:0"]);
    assert_eq!(open.code, 2, "{}", open.transcript());
    assert!(open.stderr.contains("loopback"), "{}", open.transcript());
}

#[test]
fn tokens_see_their_own_runs_and_their_plans_and_nothing_else() {
    let project = Project::new();
    for (key, budget) in [("team-a", "1000000"), ("team-b", "1000000")] {
        let made = project.run(&["plan", "create", "--key", key, "--budget-usd-micro", budget]);
        assert_eq!(made.code, 0, "{}", made.transcript());
    }
    let alice = bearer(&token(&project, &["--name", "alice", "--plan", "team-a"]));
    let carol = bearer(&token(&project, &["--name", "carol", "--plan", "team-a"]));
    let bob = bearer(&token(&project, &["--name", "bob"]));
    let reader = bearer(&token(&project, &["--name", "reader", "--scope", "runs:read"]));
    let admin = bearer(&token(
        &project,
        &["--name", "admin", "--scope", "runs:read,runs:write,plans:admin"],
    ));
    let listed = project.run(&["token", "list", "--json"]).json();
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 5);
    assert!(
        !listed.to_string().contains(alice.trim_start_matches("Bearer ")),
        "secrets never listed"
    );

    let server = Server::launch(&project, &[]);
    let probe = json!({"ref": "theory/probe@1", "inputs": {"text": "mine"}});
    // No token, a malformed one, an unknown one: 401 with a challenge.
    for headers in
        [vec![], vec![("Authorization", "Basic eDp5")], vec![("Authorization", "Bearer thy_0000")]]
    {
        let (status, answer) = server.submit(&probe, &headers);
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (401, Some("ERR_UNAUTHORIZED")),
            "{answer}"
        );
        assert!(answer["hint"].as_str().unwrap().contains("theory token create"), "{answer}");
    }
    let (status, _) = server.request("GET", "/healthz", &[], "");
    assert_eq!(status, 200, "health checks need no token");

    // Alice's run is charged to her plan without her naming it.
    let (status, run) = server.submit(&probe, &[("Authorization", &alice), ("Prefer", "wait")]);
    assert_eq!((status, run["status"].as_str()), (201, Some("succeeded")), "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let shown = project.run(&["executions", "show", &id, "--json"]).json();
    assert_eq!(shown["execution"]["plan_key"], "team-a", "{shown}");
    let (_, bobs) = server.submit(&probe, &[("Authorization", &bob), ("Prefer", "wait")]);
    let bobs = bobs["id"].as_str().unwrap().to_owned();

    // Bob sees none of it: every route answers as if the run did not exist.
    for path in [
        format!("/v1/runs/{id}"),
        format!("/v1/runs/{id}/receipt"),
        format!("/v1/runs/{id}/events"),
    ] {
        let (status, answer) = server.request("GET", &path, &[("Authorization", &bob)], "");
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (404, Some("ERR_NOT_FOUND")),
            "{path}: {answer}"
        );
    }
    let (status, _) =
        server.request("POST", &format!("/v1/runs/{id}/cancel"), &[("Authorization", &bob)], "");
    assert_eq!(status, 404);
    let ids = |secret: &str| -> Vec<String> {
        let (status, page) = server.request("GET", "/v1/runs", &[("Authorization", secret)], "");
        assert_eq!(status, 200, "{page}");
        page["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| run["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&bob), std::slice::from_ref(&bobs));
    assert_eq!(ids(&alice), std::slice::from_ref(&id));
    assert_eq!(ids(&carol), std::slice::from_ref(&id), "a token sees the runs charged to its plan");
    assert_eq!(ids(&admin), [bobs.clone(), id.clone()]);
    assert!(ids(&reader).is_empty(), "a token without a plan sees only what it submitted");
    let (status, _) =
        server.request("GET", &format!("/v1/runs/{id}/receipt"), &[("Authorization", &carol)], "");
    assert_eq!(status, 200);
}

#[test]
fn plans_and_scopes_limit_what_a_token_may_do_and_revoking_it_stops_it() {
    let project = Project::new();
    for key in ["team-a", "team-b"] {
        let made = project.run(&["plan", "create", "--key", key, "--budget-usd-micro", "1000000"]);
        assert_eq!(made.code, 0, "{}", made.transcript());
    }
    let alice = bearer(&token(&project, &["--name", "alice", "--plan", "team-a"]));
    let bob = bearer(&token(&project, &["--name", "bob"]));
    let reader = bearer(&token(&project, &["--name", "reader", "--scope", "runs:read"]));
    let admin = bearer(&token(
        &project,
        &["--name", "admin", "--scope", "runs:read,runs:write,plans:admin"],
    ));
    let server = Server::launch(&project, &[]);
    let probe = json!({"ref": "theory/probe@1", "inputs": {"text": "mine"}});
    // A token charges and sees its own; naming another is 403; only an admin makes plans.
    let other = json!({"ref": "theory/probe@1", "plan": "team-b"});
    for secret in [&alice, &bob] {
        let (status, answer) = server.submit(&other, &[("Authorization", secret)]);
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (403, Some("ERR_FORBIDDEN")),
            "{answer}"
        );
    }
    let (status, _) = server.submit(&other, &[("Authorization", &admin), ("Prefer", "wait")]);
    assert_eq!(status, 201);
    let (_, plans) = server.request("GET", "/v1/plans", &[("Authorization", &alice)], "");
    let keys: Vec<&str> = plans["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|plan| plan["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["team-a"]);
    let (status, _) = server.request("GET", "/v1/plans/team-b", &[("Authorization", &alice)], "");
    assert_eq!(status, 404);
    let new_plan = json!({"key": "team-c", "budget_usd_micro": 5}).to_string();
    let (status, answer) =
        server.request("POST", "/v1/plans", &[("Authorization", &alice)], &new_plan);
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("ERR_FORBIDDEN")),
        "{answer}"
    );
    let (status, _) = server.request("POST", "/v1/plans", &[("Authorization", &admin)], &new_plan);
    assert_eq!(status, 201);

    // Scopes: a read-only token cannot submit or cancel.
    let (status, answer) = server.submit(&probe, &[("Authorization", &reader)]);
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("ERR_FORBIDDEN")),
        "{answer}"
    );
    assert!(answer["error"]["message"].as_str().unwrap().contains("runs:write"), "{answer}");

    // Revoked: it stops working at once.
    assert_eq!(project.run(&["token", "revoke", "alice"]).code, 0);
    let (status, _) = server.request("GET", "/v1/runs", &[("Authorization", &alice)], "");
    assert_eq!(status, 401);
    let listed: Value = project.run(&["token", "list", "--json"]).json();
    assert!(listed["tokens"][0]["revoked_at_ms"].is_i64(), "{listed}");
}

#[test]
fn token_commands_refuse_bad_input_with_a_hint() {
    let project = Project::new();
    for (args, needle) in [
        (vec!["token", "create", "--name", "a b"], "a token name"),
        (vec!["token", "create", "--name", "x", "--scope", "root"], "unknown scope"),
        (vec!["token", "create", "--name", "x", "--plan", "nope"], "no plan"),
        (vec!["token", "revoke", "ghost"], "no token named"),
    ] {
        let refused = project.run(&args);
        assert_ne!(refused.code, 0, "{}", refused.transcript());
        assert!(refused.stderr.contains(needle), "{needle}: {}", refused.transcript());
        assert!(refused.stderr.contains("hint:"), "{}", refused.transcript());
    }
    token(&project, &["--name", "x"]);
    let twice = project.run(&["token", "create", "--name", "x"]);
    assert!(twice.stderr.contains("exists already"), "{}", twice.transcript());
}
