//! Two `theory serve` front ends on one PostgreSQL ledger and one S3 store: a run submitted to
//! one is seen, streamed, fetched and cancelled through the other.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Server;
use super::events::follow;
use crate::attachments::minio;
use crate::support::{Project, postgres_database};

fn wait_for(server: &Server, id: &str, wanted: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let object = server.get(id);
        if wanted.contains(&object["status"].as_str().unwrap_or_default()) {
            return object;
        }
        assert!(Instant::now() < deadline, "run {id} never reached {wanted:?}: {object}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn a_run_submitted_to_one_front_end_is_seen_streamed_and_cancelled_through_the_other() {
    let database = postgres_database("two_front_ends");
    let one = minio(Project::new()).env("DATABASE_URL", &database);
    let other = minio(Project::new()).env("DATABASE_URL", &database);
    let first = Server::start(&one, &[]);
    let second = Server::start(&other, &[]);

    let (status, run) = first.submit(
        &json!({"ref": "theory/probe@1", "inputs": {"text": "across front ends", "sleep_ms": 1500}}),
        &[],
    );
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    wait_for(&second, &id, &["starting", "running"]);
    // Streamed through the second: the tokens arrive while the run still sleeps, wherever it runs.
    let mut live = 0;
    let events = follow(&second.address, &id, &[], |event| {
        if event.event == "Token" && second.get(&id)["status"] == "running" {
            live += 1;
        }
    });
    assert_eq!(live, 3, "the tokens stream from the other front end: {events:?}");
    let end: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
    assert_eq!(end["status"], "succeeded", "{end}");
    // Its outputs come from the shared store through either.
    let output = end["envelope"]["outputs"][0]["path"].as_str().unwrap().to_owned();
    let fetched = second.exchange("GET", &format!("/v1/artifacts{output}"), &[], b"");
    assert_eq!(fetched.status, 200);
    assert_eq!(
        first.exchange("GET", &format!("/v1/artifacts{output}"), &[], b"").body,
        fetched.body
    );
    assert_eq!(first.get(&id)["envelope"], second.get(&id)["envelope"]);

    // Cancelled through the front end that did not take it.
    let (_, sleeping) = second.submit(
        &json!({"ref": "theory/probe@1", "inputs": {"text": "cancel me", "sleep_ms": 60000}}),
        &[],
    );
    let sleeping = sleeping["id"].as_str().unwrap().to_owned();
    wait_for(&first, &sleeping, &["running"]);
    let (status, _) = first.request("POST", &format!("/v1/runs/{sleeping}/cancel"), &[], "");
    assert_eq!(status, 200);
    let cancelled = wait_for(&second, &sleeping, &["cancelled"]);
    assert_eq!(cancelled["envelope"]["error"]["code"], "ERR_CANCELLED", "{cancelled}");
    // Both list both runs.
    for server in [&first, &second] {
        let (_, page) = server.request("GET", "/v1/runs", &[], "");
        assert_eq!(page["runs"].as_array().unwrap().len(), 2, "{page}");
    }
    assert_eq!(first.stop(), Some(0));
    assert_eq!(second.stop(), Some(0));
}
