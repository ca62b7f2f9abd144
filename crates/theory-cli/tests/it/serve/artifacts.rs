//! `POST /v1/uploads` and `GET|HEAD /v1/artifacts/{path}`: a file uploaded (raw or as a form)
//! reaches the processor by its CID; outputs come back streamed with `ETag`, `Range` and their
//! media type; bad uploads are refused; another tenant's outputs are not there for them.

use serde_json::{Value, json};

use super::Server;
use crate::support::Project;

fn upload(server: &Server, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let answer = server.exchange("POST", path, headers, body);
    (answer.status, serde_json::from_slice(&answer.body).unwrap_or(Value::Null))
}

#[test]
fn an_upload_reaches_the_processor_and_outputs_come_back_with_etag_and_ranges() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let bytes = b"uploaded through the API\n";
    let (status, reference) =
        upload(&server, "/v1/uploads?name=note.txt", &[("Content-Type", "text/plain")], bytes);
    assert_eq!(status, 201, "{reference}");
    let cid = reference["cid"].as_str().unwrap().to_owned();
    assert_eq!(reference["$artifact"], format!("/artifacts/inputs/{cid}/note.txt"));
    assert_eq!(reference["mime"], "text/plain");
    assert_eq!(reference.as_object().unwrap().len(), 3, "{reference}");
    // The same bytes again: the same reference, stored once.
    assert_eq!(upload(&server, "/v1/uploads?name=note.txt", &[], bytes), (201, reference.clone()));
    // As a multipart form, named by its file name.
    let form = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"form.txt\"\r\nContent-Type: text/plain\r\n\r\nuploaded through the API\n\r\n--XyZ--\r\n";
    let (status, from_form) = upload(
        &server,
        "/v1/uploads",
        &[("Content-Type", "multipart/form-data; boundary=XyZ")],
        form,
    );
    assert_eq!(status, 201, "{from_form}");
    assert_eq!(from_form["cid"], reference["cid"], "the same bytes, the same CID");
    assert_eq!(from_form["$artifact"], format!("/artifacts/inputs/{cid}/form.txt"));

    let (status, run) = server.submit(
        &json!({"ref": "theory/probe@1", "inputs": {"text": "with a file", "files": {"note": reference}}}),
        &[("Prefer", "wait")],
    );
    assert_eq!((status, run["status"].as_str()), (201, Some("succeeded")), "{run}");
    let outputs = run["envelope"]["outputs"].as_array().unwrap();
    let meta = outputs
        .iter()
        .find(|output| output["path"].as_str().unwrap().ends_with("/meta.json"))
        .unwrap();
    let echo = outputs
        .iter()
        .find(|output| output["path"].as_str().unwrap().ends_with("/echo.txt"))
        .unwrap();

    let got = server.exchange(
        "GET",
        &format!("/v1/artifacts{}", meta["path"].as_str().unwrap()),
        &[],
        b"",
    );
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("application/json"));
    let written: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(written["input_files"], json!([cid]), "the processor got the upload by its CID");

    let echo_path = format!("/v1/artifacts{}", echo["path"].as_str().unwrap());
    let whole = server.exchange("GET", &echo_path, &[], b"");
    assert_eq!((whole.status, whole.body.as_slice()), (200, b"with a file".as_slice()));
    let etag = format!("\"{}\"", echo["cid"].as_str().unwrap());
    assert_eq!(whole.header("etag"), Some(etag.as_str()));
    assert_eq!(whole.header("content-type"), Some("text/plain"));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    let part = server.exchange("GET", &echo_path, &[("Range", "bytes=5-5")], b"");
    assert_eq!((part.status, part.body.as_slice()), (206, b"a".as_slice()));
    assert_eq!(part.header("content-range"), Some("bytes 5-5/11"));
    let tail = server.exchange("GET", &echo_path, &[("Range", "bytes=-4")], b"");
    assert_eq!((tail.status, tail.body.as_slice()), (206, b"file".as_slice()));
    let beyond = server.exchange("GET", &echo_path, &[("Range", "bytes=11-")], b"");
    assert_eq!((beyond.status, beyond.header("content-range")), (416, Some("bytes */11")));
    let cached = server.exchange("GET", &echo_path, &[("If-None-Match", &etag)], b"");
    assert_eq!((cached.status, cached.body.len()), (304, 0));
    let head = server.exchange("HEAD", &echo_path, &[], b"");
    assert_eq!((head.status, head.header("content-length")), (200, Some("11")));
    let input =
        server.exchange("GET", &format!("/v1/artifacts/artifacts/inputs/{cid}/note.txt"), &[], b"");
    assert_eq!((input.status, input.body.as_slice()), (200, bytes.as_slice()));
    let receipt = server.exchange(
        "GET",
        &format!(
            "/v1/artifacts/artifacts/execution/{}/determinism.json",
            run["id"].as_str().unwrap()
        ),
        &[],
        b"",
    );
    assert_eq!(receipt.status, 200, "a run's record files are served too");
    for missing in [
        "/v1/artifacts/artifacts/outputs/nothing/here.txt",
        "/v1/artifacts/etc/passwd",
        "/v1/artifacts/artifacts/../x",
    ] {
        let answer = server.exchange("GET", missing, &[], b"");
        assert_eq!(answer.status, 404, "{missing}: {}", String::from_utf8_lossy(&answer.body));
    }
}

#[test]
fn bad_uploads_and_references_are_refused() {
    let project = Project::new();
    let server = Server::start(&project, &["--max-upload-bytes", "1000"]);
    let (status, answer) = upload(&server, "/v1/uploads", &[], &[7; 1001]);
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("ERR_LIMIT")), "{answer}");
    assert!(answer["hint"].as_str().unwrap().contains("--max-upload-bytes"), "{answer}");
    let (status, answer) = upload(&server, "/v1/uploads?name=../../etc/passwd", &[], b"x");
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("ERR_USAGE")), "{answer}");
    let (status, answer) = upload(
        &server,
        "/v1/uploads",
        &[("Content-Type", "multipart/form-data; boundary=Q")],
        b"--Q--\r\n",
    );
    assert_eq!(status, 400, "{answer}");
    let missing = json!({"$artifact": "/artifacts/inputs/b3:0000000000000000000000000000000000000000000000000000000000000000/x.txt", "cid": "b3:0000000000000000000000000000000000000000000000000000000000000000", "mime": "text/plain"});
    let (_, reference) = upload(&server, "/v1/uploads?name=x.txt", &[], b"x");
    let elsewhere = json!({"$artifact": "/artifacts/outputs/x.txt", "cid": reference["cid"], "mime": "text/plain"});
    for bad in [missing, elsewhere] {
        let (status, answer) = server
            .submit(&json!({"ref": "theory/probe@1", "inputs": {"files": {"note": bad}}}), &[]);
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("ERR_ATTACHMENT")),
            "{answer}"
        );
    }
}

#[test]
fn another_tenants_outputs_are_not_there() {
    let project = Project::new();
    let secret = |name: &str| -> String {
        let made = project.run(&["token", "create", "--name", name, "--json"]);
        format!("Bearer {}", made.json()["secret"].as_str().unwrap())
    };
    let (alice, bob) = (secret("alice"), secret("bob"));
    let server = Server::launch(&project, &[]);
    let (_, run) = server.submit(
        &json!({"ref": "theory/probe@1"}),
        &[("Authorization", &alice), ("Prefer", "wait")],
    );
    let output = run["envelope"]["outputs"][0]["path"].as_str().unwrap().to_owned();
    let path = format!("/v1/artifacts{output}");
    assert_eq!(server.exchange("GET", &path, &[("Authorization", &alice)], b"").status, 200);
    assert_eq!(server.exchange("GET", &path, &[("Authorization", &bob)], b"").status, 404);
    let (_, reference) = upload(&server, "/v1/uploads", &[("Authorization", &bob)], b"bob's");
    assert!(reference["cid"].is_string(), "{reference}");
    assert_eq!(upload(&server, "/v1/uploads", &[], b"anyone").0, 401);
}
