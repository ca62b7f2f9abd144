//! Webhooks: a run's `start`, `output`, `logs` and `completed` messages reach the target in
//! order with Standard Webhooks headers, the filter holds, a refused message is tried again and
//! every attempt is recorded; a server without a secret refuses webhooks. (The signatures are
//! checked by an independent implementation in the Python client's tests.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use super::Server;
use crate::support::Project;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request the target received: its headers (lower-case names) and JSON body.
struct Received {
    headers: Vec<(String, String)>,
    body: Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(field, _)| field == name).map(|(_, value)| value.as_str())
    }
}

/// A webhook target on a free port: answers 500 to the first `refuse` requests, then 204.
fn target(refuse: usize) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/theory?token=secret-in-url", listener.local_addr().unwrap());
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for (count, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let Some((name, value)) = line.trim_end().split_once(':') else { break };
                headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            }
            let length: usize = headers
                .iter()
                .find(|(name, _)| name == "content-length")
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let status =
                if count < refuse { "500 Internal Server Error" } else { "204 No Content" };
            let _ = stream.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if sender.send(Received { headers, body }).is_err() {
                return;
            }
        }
    });
    (url, receiver)
}

#[test]
fn a_runs_webhooks_arrive_in_order_signed_and_retried() {
    let project = Project::new();
    let server = Server::launch_with(
        &project,
        &["--no-auth", "--allow-private-webhooks"],
        &[("THEORY_WEBHOOK_SECRET", SECRET), ("THEORY_WEBHOOK_RETRY_S", "0.1,0.1")],
    );
    let (url, received) = target(1);
    let (status, run) = server.submit(
        &json!({"ref": "theory/probe@1", "inputs": {"text": "hooked run"}, "webhook": url}),
        &[("Prefer", "wait")],
    );
    assert_eq!((status, run["status"].as_str()), (201, Some("succeeded")), "{run}");
    let id = run["id"].as_str().unwrap();
    let mut messages = Vec::new();
    while let Ok(message) = received.recv_timeout(Duration::from_secs(10)) {
        let done = message.body["type"] == "run.completed";
        messages.push(message);
        if done {
            break;
        }
    }
    let types: Vec<&str> =
        messages.iter().map(|message| message.body["type"].as_str().unwrap()).collect();
    // The first `start` was refused and sent again, with the same id and a new signature.
    assert_eq!(types.first(), Some(&"run.start"));
    assert_eq!(types.get(1), Some(&"run.start"));
    assert_eq!(messages[0].header("webhook-id"), messages[1].header("webhook-id"));
    assert_eq!(types.last(), Some(&"run.completed"), "{types:?}");
    assert!(types.contains(&"run.logs") && types.contains(&"run.output"), "{types:?}");
    for message in &messages {
        assert!(message.header("webhook-id").unwrap().starts_with("msg_"));
        assert!(message.header("webhook-timestamp").unwrap().parse::<i64>().is_ok());
        assert!(message.header("webhook-signature").unwrap().starts_with("v1,"));
        assert_eq!(message.body["data"]["id"], id);
    }
    let completed = messages.last().unwrap();
    assert_eq!(completed.body["data"]["status"], "succeeded");
    assert_eq!(completed.body["data"]["envelope"], run["envelope"]);
    let logs = messages.iter().rev().find(|message| message.body["type"] == "run.logs").unwrap();
    assert!(logs.body["data"]["logs"].as_str().unwrap().contains("hooked run"), "{}", logs.body);

    // Every attempt is recorded, the refused one with its status; the URL is not.
    let (status, deliveries) = server.request("GET", &format!("/v1/runs/{id}/webhooks"), &[], "");
    assert_eq!(status, 200);
    let attempts = deliveries["deliveries"].as_array().unwrap();
    assert_eq!(attempts.len(), messages.len(), "{deliveries}");
    assert_eq!(
        (attempts[0]["status_code"].as_i64(), attempts[0]["attempt"].as_i64()),
        (Some(500), Some(1))
    );
    assert_eq!(
        (attempts[1]["status_code"].as_i64(), attempts[1]["attempt"].as_i64()),
        (Some(204), Some(2))
    );
    assert!(!deliveries.to_string().contains("secret-in-url"));

    // Only what the filter names.
    let (url, received) = target(0);
    let (_, filtered) = server.submit(
        &json!({"ref": "theory/probe@1", "inputs": {"text": "filtered"}, "webhook": url, "webhook_events_filter": ["completed"]}),
        &[("Prefer", "wait")],
    );
    let only = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(only.body["type"], "run.completed");
    assert_eq!(only.body["data"]["id"], filtered["id"]);
    assert!(received.recv_timeout(Duration::from_millis(700)).is_err(), "nothing but completed");
}

#[test]
fn webhooks_need_a_secret_and_a_good_url() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    for (body, code) in [
        (json!({"ref": "theory/probe@1", "webhook": "https://example.com/h"}), "ERR_CONFIG"),
        (json!({"ref": "theory/probe@1", "webhook": "file:///etc/passwd"}), "ERR_USAGE"),
        // A tenant may not reach the server's own network, unless the server allows it.
        (json!({"ref": "theory/probe@1", "webhook": "http://127.0.0.1:8080/x"}), "ERR_USAGE"),
        (json!({"ref": "theory/probe@1", "webhook": "http://169.254.169.254/latest"}), "ERR_USAGE"),
        (json!({"ref": "theory/probe@1", "webhook": "http://[::1]/x"}), "ERR_USAGE"),
        (json!({"ref": "theory/probe@1", "webhook_events_filter": ["start"]}), "ERR_USAGE"),
        (
            json!({"ref": "theory/probe@1", "webhook": "https://example.com/h", "webhook_events_filter": ["never"]}),
            "ERR_USAGE",
        ),
    ] {
        let (status, answer) = server.submit(&body, &[]);
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}: {answer}"
        );
        assert!(answer["hint"].is_string(), "{answer}");
    }
    let refused = Project::new().env("THEORY_WEBHOOK_SECRET", "whsec_short").run(&[
        "serve",
        "--no-auth",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(refused.code, 2, "{}", refused.transcript());
    assert!(refused.stderr.contains("THEORY_WEBHOOK_SECRET"), "{}", refused.transcript());
}
