//! Hostile requests: every one gets a clear error document (never a 5xx but for the ledger or
//! store not answering), and the server keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use super::Server;
use crate::support::Project;

/// Sends raw bytes; returns the status code (0 when the server closed without one).
fn raw(server: &Server, bytes: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[test]
fn hostile_requests_get_clear_errors_and_the_server_keeps_serving() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let (_, run) = server.submit(&json!({"ref": "theory/probe@1"}), &[("Prefer", "wait")]);
    let id = run["id"].as_str().unwrap().to_owned();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: Vec<(&str, String, String)> = vec![
        ("POST", "/v1/runs".into(), deep.clone()),
        (
            "POST",
            "/v1/runs".into(),
            json!({"ref": "theory/probe@1", "inputs": {"text": "x".repeat(100)}, "mode": ["real"]})
                .to_string(),
        ),
        ("POST", "/v1/runs".into(), json!({"ref": "../../etc/passwd@1"}).to_string()),
        ("POST", "/v1/runs".into(), json!({"ref": "theory/probe@1", "inputs": [1, 2]}).to_string()),
        (
            "POST",
            "/v1/runs".into(),
            json!({"ref": "theory/probe@1", "write_prefix": "/../../x/"}).to_string(),
        ),
        (
            "POST",
            "/v1/runs".into(),
            json!({"ref": "theory/probe@1", "adapter_opts": {"timeout_s": -1}}).to_string(),
        ),
        ("POST", "/v1/runs".into(), json!({"ref": "theory/probe@1", "plan": "a b"}).to_string()),
        (
            "POST",
            "/v1/runs".into(),
            json!({"ref": "theory/probe@1", "webhook": "http://"}).to_string(),
        ),
        ("GET", "/v1/runs?limit=-5".into(), String::new()),
        ("GET", "/v1/runs?cursor=%00%ff".into(), String::new()),
        ("GET", "/v1/runs?status=whatever".into(), String::new()),
        ("GET", "/v1/runs/..%2F..%2Fetc".into(), String::new()),
        ("GET", format!("/v1/runs/{id}/events?after=99999999999999999999"), String::new()),
        ("GET", "/v1/artifacts/..%2F..%2Fetc%2Fpasswd".into(), String::new()),
        ("GET", "/v1/artifacts/artifacts/inputs/not-a-cid/x".into(), String::new()),
        ("GET", "/v1/processors/%ff%fe".into(), String::new()),
        ("POST", "/v1/plans".into(), json!({"key": "x", "budget_usd_micro": -1}).to_string()),
        ("POST", "/v1/plans".into(), "[]".into()),
        ("GET", "/v1/plans/%00".into(), String::new()),
        ("DELETE", "/v1/runs".into(), String::new()),
        ("GET", "/v2/anything".into(), String::new()),
    ];
    for (method, path, body) in &bodies {
        let (status, answer) = server.request(method, path, &[], body);
        assert!((400..500).contains(&status), "{method} {path}: {status} {answer}");
        if status != 404 && status != 405 {
            assert!(
                answer["error"]["code"].as_str().is_some_and(|code| code.starts_with("ERR_")),
                "{method} {path}: {answer}"
            );
        }
    }
    // A range far past the end, an If-None-Match of garbage, a wrong Last-Event-ID.
    let output = run["envelope"]["outputs"][0]["path"].as_str().unwrap().to_owned();
    let answer = server.exchange(
        "GET",
        &format!("/v1/artifacts{output}"),
        &[("Range", "bytes=99999999999999999999-")],
        b"",
    );
    assert!(matches!(answer.status, 200 | 416), "{}", answer.status);
    let answer = server.exchange(
        "GET",
        &format!("/v1/artifacts{output}"),
        &[("If-None-Match", "W/\"garbage\", *x")],
        b"",
    );
    assert_eq!(answer.status, 200);
    // Malformed HTTP, a header section far too large, a body far over the limit.
    assert_eq!(raw(&server, b"NOT HTTP AT ALL\r\n\r\n"), 400);
    let huge_header =
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(1 << 20));
    assert!(
        matches!(raw(&server, huge_header.as_bytes()), 0 | 400 | 431),
        "a huge header is refused"
    );
    let over = format!(
        "POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        65 * 1024 * 1024
    );
    assert_eq!(raw(&server, over.as_bytes()), 413);
    // Still serving, and the run it ran is intact.
    let (status, health) = server.request("GET", "/healthz", &[], "");
    assert_eq!((status, health["ok"].as_bool()), (200, Some(true)));
    let again: Value = server.get(&id);
    assert_eq!(again["envelope"], run["envelope"]);
    assert_eq!(project.run(&["verify", &id]).code, 0);
}
