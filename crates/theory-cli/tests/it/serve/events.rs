//! `GET /v1/runs/{id}/events`: a run's frames as Server-Sent Events while it runs, replayed
//! from the start, resumed after `Last-Event-ID`, read back from the ledger after a restart, and
//! the same over a WebSocket.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Server;
use crate::support::Project;

/// One Server-Sent Event: `id`, `event`, `data`, and when it arrived.
#[derive(Debug, Clone)]
pub(super) struct Sse {
    pub(super) id: Option<i64>,
    pub(super) event: String,
    pub(super) data: String,
    pub(super) at: Instant,
}

/// Reads a run's events until `end` (HTTP/1.0: the body ends when the connection does).
pub(super) fn follow(
    address: &str,
    id: &str,
    headers: &[(&str, &str)],
    mut each: impl FnMut(&Sse),
) -> Vec<Sse> {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_mins(1))).unwrap();
    let mut request = format!("GET /v1/runs/{id}/events HTTP/1.0\r\nAccept: text/event-stream\r\n");
    for (name, value) in headers {
        request += name;
        request += ": ";
        request += value;
        request += "\r\n";
    }
    request += "\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains(" 200 "), "the stream opens with 200: {line}");
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if line.to_ascii_lowercase().starts_with("content-type:") {
            assert!(line.contains("text/event-stream"), "{line}");
        }
    }
    let mut events = Vec::new();
    let mut current =
        Sse { id: None, event: String::new(), data: String::new(), at: Instant::now() };
    loop {
        line.clear();
        let read = reader.read_line(&mut line).unwrap();
        assert!(read > 0, "the stream ended without an end event: {events:?}");
        let text = line.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if current.event.is_empty() && current.data.is_empty() {
                continue;
            }
            current.at = Instant::now();
            each(&current);
            let end = current.event == "end";
            events.push(std::mem::replace(
                &mut current,
                Sse { id: None, event: String::new(), data: String::new(), at: Instant::now() },
            ));
            if end {
                return events;
            }
            continue;
        }
        let (field, value) = text.split_once(':').unwrap_or((text, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => current.id = Some(value.parse().unwrap()),
            "event" => value.clone_into(&mut current.event),
            "data" => current.data += value,
            _ => {}
        }
    }
}

fn frames_of(events: &[Sse]) -> Vec<(i64, String, String)> {
    events
        .iter()
        .filter(|event| event.event != "end")
        .map(|event| (event.id.expect("frames have ids"), event.event.clone(), event.data.clone()))
        .collect()
}

#[test]
fn a_runs_frames_stream_live_and_replay_from_the_start_or_after_an_id() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let (status, run) = server.submit(
        &json!({"ref": "theory/probe@1", "inputs": {"text": "one two three", "sleep_ms": 1500}}),
        &[],
    );
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let mut live_tokens = 0;
    let events = follow(&server.address, &id, &[], |event| {
        if event.event == "Token" {
            // The run is still sleeping when its tokens arrive: they stream, not replay.
            let status = server.get(&id)["status"].clone();
            assert!(status == "running" || status == "starting", "{status}");
            live_tokens += 1;
        }
    });
    assert_eq!(live_tokens, 3);
    let frames = frames_of(&events);
    let ids: Vec<i64> = frames.iter().map(|frame| frame.0).collect();
    assert_eq!(
        ids,
        (1..=i64::try_from(frames.len()).unwrap()).collect::<Vec<_>>(),
        "numbered from 1"
    );
    let tokens: Vec<String> = frames
        .iter()
        .filter(|frame| frame.1 == "Token")
        .map(|frame| {
            serde_json::from_str::<Value>(&frame.2).unwrap()["content"]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(tokens.concat(), "one two three");
    let kinds: Vec<&str> = frames.iter().map(|frame| frame.1.as_str()).collect();
    assert!(kinds.contains(&"Output"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"RunResult"), "{kinds:?}");
    let end: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
    assert_eq!(
        (end["id"].as_str(), end["status"].as_str()),
        (Some(id.as_str()), Some("succeeded"))
    );

    // Replayed whole to a late subscriber, and resumed after an id.
    assert_eq!(frames_of(&follow(&server.address, &id, &[], |_| {})), frames);
    let resumed = follow(&server.address, &id, &[("Last-Event-ID", "2")], |_| {});
    assert_eq!(frames_of(&resumed), frames[2..]);

    // From the ledger, after a restart.
    assert_eq!(server.stop(), Some(0));
    let server = Server::start(&project, &[]);
    assert_eq!(frames_of(&follow(&server.address, &id, &[], |_| {})), frames);

    // Over a WebSocket: the same frames after `?after=1`, then the end, then a close.
    let (mut socket, _) =
        tungstenite::connect(format!("ws://{}/v1/runs/{id}/events?after=1", server.address))
            .unwrap();
    let mut seen = Vec::new();
    loop {
        match socket.read().unwrap() {
            tungstenite::Message::Text(text) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                if message.get("end").is_some() {
                    assert_eq!(message["end"]["status"], "succeeded");
                    break;
                }
                seen.push((
                    message["seq"].as_i64().unwrap(),
                    message["frame"]["kind"].as_str().unwrap().to_owned(),
                    message["frame"].to_string(),
                ));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let expected: Vec<(i64, String, String)> = frames[1..]
        .iter()
        .map(|(seq, kind, data)| {
            (*seq, kind.clone(), serde_json::from_str::<Value>(data).unwrap().to_string())
        })
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn bad_event_requests_are_refused() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let (_, run) = server.submit(&json!({"ref": "theory/probe@1"}), &[("Prefer", "wait")]);
    let id = run["id"].as_str().unwrap();
    let (status, answer) =
        server.request("GET", &format!("/v1/runs/{id}/events"), &[("Last-Event-ID", "soon")], "");
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("ERR_USAGE")), "{answer}");
    let (status, answer) =
        server.request("GET", "/v1/runs/01NOSUCHRUN0000000000000000/events", &[], "");
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("ERR_NOT_FOUND")),
        "{answer}"
    );
}

#[test]
fn a_shutdown_ends_the_event_streams_instead_of_waiting_for_their_runs() {
    let project = Project::new();
    let server =
        Server::start(&project, &["--max-concurrent-runs", "1", "--shutdown-grace-s", "0"]);
    let (_, blocker) =
        server.submit(&json!({"ref": "theory/probe@1", "inputs": {"sleep_ms": 60000}}), &[]);
    server.wait_status(blocker["id"].as_str().unwrap(), "running");
    let (_, queued) =
        server.submit(&json!({"ref": "theory/probe@1", "inputs": {"text": "never"}}), &[]);
    let queued = queued["id"].as_str().unwrap().to_owned();
    let address = server.address.clone();
    let subscriber = std::thread::spawn(move || follow(&address, &queued, &[], |_| {}));
    std::thread::sleep(Duration::from_millis(300));
    let stopped_at = Instant::now();
    assert_eq!(server.stop(), Some(0));
    assert!(stopped_at.elapsed() < Duration::from_secs(10), "{:?}", stopped_at.elapsed());
    let events = subscriber.join().unwrap();
    let end: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
    assert_eq!(end["status"], "queued", "the stream ended with the run as it was: {end}");
}
