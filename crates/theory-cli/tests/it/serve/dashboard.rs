//! The dashboard at `/`, driven in headless Chromium by `tools/browser/dashboard.cjs` (its
//! checks are listed there), against a server that requires tokens and holds two tenants' runs;
//! and the routes it reads besides the runs: `/`, `/v1/runs/{id}/verify`, `/v1/ledger/verify`.

use std::process::Command;

use serde_json::json;

use super::{Server, token};
use crate::support::Project;

#[test]
fn the_dashboard_works_in_a_real_browser_and_shows_a_tenant_only_its_own() {
    let command = std::env::var("THEORY_BROWSER").expect(
        "THEORY_BROWSER names the browser driver: export THEORY_BROWSER=\"$(scripts/setup-browser)\" (scripts/test does)",
    );
    let project = Project::new();
    let made = project.run(&["plan", "create", "--key", "team-a", "--budget-usd-micro", "5000000"]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    let alice = token(&project, &["--name", "alice", "--plan", "team-a"]);
    let bob = token(&project, &["--name", "bob"]);
    let server = Server::launch(&project, &[]);
    let (status, bobs) = server.submit(
        &json!({"ref": "theory/probe@1", "inputs": {"text": "bob's secret run"}}),
        &[("Authorization", &format!("Bearer {bob}")), ("Prefer", "wait")],
    );
    assert_eq!((status, bobs["status"].as_str()), (201, Some("succeeded")), "{bobs}");

    // A run whose processor crashes each time: tried again after a second (the default policy).
    let (status, crashing) = server.submit(
        &json!({"ref": "theory/probe@1", "inputs": {"crash": true}}),
        &[("Authorization", &format!("Bearer {alice}"))],
    );
    assert_eq!(status, 201, "{crashing}");
    let crashing = crashing["id"].as_str().expect("an id").to_owned();

    let mut words = command.split_whitespace();
    let mut driver = Command::new(words.next().expect("a command"));
    driver
        .args(words)
        .env("THEORY_UI_URL", format!("http://{}", server.address))
        .env("THEORY_UI_TOKEN", &alice)
        .env("THEORY_UI_PLAN", "team-a")
        .env("THEORY_UI_OTHER_RUN", bobs["id"].as_str().expect("an id"))
        .env("THEORY_UI_RETRIED_RUN", &crashing);
    let finished = driver.output().expect("the browser driver runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&finished.stdout),
        String::from_utf8_lossy(&finished.stderr)
    );
    assert!(finished.status.success(), "the dashboard failed in the browser:\n{said}");
    // Every check ran and said so (a driver that stopped early without failing would not).
    assert_eq!(said.lines().filter(|line| line.starts_with("ok: ")).count(), 21, "{said}");
    // The crashing run ends (its attempts spent) before the server is stopped.
    let auth = format!("Bearer {alice}");
    let (status, ended) = server.request(
        "GET",
        &format!("/v1/runs/{crashing}"),
        &[("Authorization", &auth), ("Prefer", "wait=30")],
        "",
    );
    assert_eq!((status, ended["status"].as_str()), (200, Some("failed")), "{ended}");
    assert_eq!(ended["attempts"], 3, "{ended}");
}

#[test]
fn the_page_is_served_from_the_binary_with_a_policy_that_allows_this_server_only() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let page = server.exchange("GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let policy = page.header("content-security-policy").expect("a policy");
    assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"));
    let tag = page.header("etag").expect("an ETag").to_owned();
    let again = server.exchange("GET", "/", &[("If-None-Match", &tag)], b"");
    assert_eq!(again.status, 304, "the same page is not sent twice");
    for asset in ["/ui/app.js", "/ui/app.css"] {
        let answer = server.exchange("GET", asset, &[], b"");
        assert_eq!(answer.status, 200, "{asset}");
        let text = String::from_utf8_lossy(&answer.body);
        // Nothing from another host: no absolute URL but the schema's own identifier.
        assert!(!text.contains("http://") && !text.contains("https://"), "{asset} names a host");
    }
}

#[test]
fn a_run_and_the_ledger_verify_through_the_api() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let (_, run) = server.submit(
        &json!({"ref": "theory/probe@1", "inputs": {"text": "check me"}}),
        &[("Prefer", "wait")],
    );
    let id = run["id"].as_str().expect("an id");
    let (status, verified) = server.request("GET", &format!("/v1/runs/{id}/verify"), &[], "");
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["outputs_checked"], 2, "{verified}");
    let (_, ledger) = server.request("GET", "/v1/ledger/verify", &[], "");
    assert_eq!((ledger["ok"].as_bool(), ledger["first_broken"].is_null()), (Some(true), true));

    // One byte of an output changed in the store: the run no longer verifies, and says where.
    let echo = project
        .path()
        .join(format!(".theory/artifacts/artifacts/outputs/theory_probe/{id}/echo.txt"));
    let mut bytes = std::fs::read(&echo).expect("the output");
    bytes[0] ^= 1;
    std::fs::write(&echo, bytes).expect("tampered");
    let (_, verified) = server.request("GET", &format!("/v1/runs/{id}/verify"), &[], "");
    assert_eq!(verified["ok"], false, "{verified}");
    assert!(verified["problems"].to_string().contains("echo.txt"), "{verified}");

    // An entry of the ledger rewritten behind its back: the chain names it first broken.
    let database = project.path().join(".theory/theory.db");
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        use sqlx::Connection as _;
        let url = format!("sqlite://{}", database.display());
        let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("the ledger");
        sqlx::query("UPDATE events SET body = '{\"rewritten\":true}' WHERE seq = 2")
            .execute(&mut connection)
            .await
            .expect("rewritten");
    });
    let (_, ledger) = server.request("GET", "/v1/ledger/verify", &[], "");
    assert_eq!(ledger["ok"], false, "{ledger}");
    assert_eq!(ledger["first_broken"]["seq"], 2, "{ledger}");
}
