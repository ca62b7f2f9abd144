//! Records are immutable: no run can change another run's index, receipt, outputs or stored
//! attachments, nor its own record; a collision is refused before anything is written and names
//! the execution that owns the path; the old run stays verifiable. Tried as a hostile user would.

use serde_json::Value;
use theory_protocol::Cid;

use crate::support::{Outcome, Project};

/// Runs the probe with `inputs` and extra flags, `--json`.
fn probe(project: &Project, inputs: &str, extra: &[&str]) -> Outcome {
    let mut args = vec!["run", "--ref", "theory/probe@1", "--inputs-json", inputs, "--json"];
    args.extend_from_slice(extra);
    project.run(&args)
}

/// The bytes of an object of the filesystem store.
fn object(project: &Project, path: &str) -> Vec<u8> {
    std::fs::read(project.path().join(".theory/artifacts").join(path.trim_start_matches('/')))
        .unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Checks that every output of a success envelope still hashes to its CID, and that its index
/// and receipt are the ones it wrote.
fn still_verifies(project: &Project, envelope: &Value) {
    for output in envelope["outputs"].as_array().unwrap() {
        let path = output["path"].as_str().unwrap();
        let cid: Cid = output["cid"].as_str().unwrap().parse().unwrap();
        assert_eq!(Cid::of(&object(project, path)), cid, "{path} no longer hashes to its CID");
    }
    let index: Value =
        serde_json::from_slice(&object(project, envelope["index_path"].as_str().unwrap())).unwrap();
    assert_eq!(index["outputs"], envelope["outputs"], "the index was changed");
}

fn victim(project: &Project) -> (Value, String) {
    let outcome = probe(project, r#"{"text":"victim","relpath":"extra/note.txt"}"#, &[]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let envelope = outcome.json();
    let id = envelope["execution_id"].as_str().unwrap().to_owned();
    (envelope, id)
}

#[test]
fn write_prefixes_in_the_record_facets_are_refused_before_anything_starts() {
    let project = Project::new();
    let (envelope, id) = victim(&project);
    let attachment = "/artifacts/inputs/b3:0000/";
    for (prefix, relpath) in [
        ("/artifacts/execution/".to_owned(), format!("{id}/outputs.json")),
        (format!("/artifacts/execution/{id}/"), "determinism.json".to_owned()),
        ("/artifacts/execution/{execution_id}/".to_owned(), "determinism.json".to_owned()),
        (attachment.to_owned(), "photo.jpg".to_owned()),
        ("/artifacts/Execution/".to_owned(), format!("{id}/outputs.json")),
    ] {
        let inputs = serde_json::json!({"relpath": relpath}).to_string();
        let outcome = probe(&project, &inputs, &["--write-prefix", &prefix, "--no-cache"]);
        assert_eq!(outcome.code, 2, "{prefix}: {}", outcome.transcript());
        assert!(outcome.stderr.contains("only Theory writes"), "{}", outcome.stderr);
        assert!(outcome.stdout.is_empty());
    }
    still_verifies(&project, &envelope);
}

#[test]
fn a_run_cannot_write_into_another_runs_prefix() {
    let project = Project::new();
    let (envelope, id) = victim(&project);
    // Straight into the victim's own prefix: its receipt is there, so nothing starts.
    let prefix = format!("/artifacts/outputs/theory_probe/{id}/");
    let outcome =
        probe(&project, r#"{"text":"attacker"}"#, &["--write-prefix", &prefix, "--no-cache"]);
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    let error = &outcome.json()["error"];
    assert_eq!(error["code"], "ERR_COLLISION");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(&format!("belongs to execution {id}")), "{message}");
    assert!(outcome.stderr.contains("hint: "), "{}", outcome.stderr);
    // From a parent prefix, through a relative path that lands on the victim's output: refused
    // as the output is announced, before a byte of it is written.
    let outcome = probe(
        &project,
        &serde_json::json!({"text": "attacker", "relpath": format!("{id}/extra/note.txt")})
            .to_string(),
        &["--write-prefix", "/artifacts/outputs/theory_probe/", "--no-cache"],
    );
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    let message = outcome.json()["error"]["message"].as_str().unwrap().to_owned();
    assert_eq!(outcome.json()["error"]["code"], "ERR_COLLISION", "{message}");
    assert!(message.contains(&format!("/artifacts/outputs/theory_probe/{id}/extra/note.txt")));
    assert!(message.contains(&format!("belongs to execution {id}")), "{message}");
    // The failed run left nothing of its own behind.
    assert!(
        !project.path().join(".theory/artifacts/artifacts/outputs/theory_probe/echo.txt").exists()
    );
    still_verifies(&project, &envelope);
}

#[test]
fn runs_sharing_a_static_prefix_cannot_rewrite_each_other() {
    let project = Project::new();
    let prefix = "/artifacts/outputs/text/";
    let first = probe(&project, r#"{"text":"one"}"#, &["--write-prefix", prefix]);
    assert_eq!(first.code, 0, "{}", first.transcript());
    let first = first.json();
    // The same inputs again: answered from the memo cache, nothing written.
    let again = probe(&project, r#"{"text":"one"}"#, &["--write-prefix", prefix]);
    assert_eq!(again.json()["meta"]["cached"], true, "{}", again.transcript());
    // Other inputs, or a forced run, would replace the first run's files: refused, naming it.
    for (inputs, extra) in [(r#"{"text":"two"}"#, None), (r#"{"text":"one"}"#, Some("--no-cache"))]
    {
        let mut flags = vec!["--write-prefix", prefix];
        flags.extend(extra);
        let outcome = probe(&project, inputs, &flags);
        assert_eq!(outcome.code, 1, "{}", outcome.transcript());
        let error = &outcome.json()["error"];
        assert_eq!(error["code"], "ERR_COLLISION");
        let owner = first["execution_id"].as_str().unwrap();
        assert!(error["message"].as_str().unwrap().contains(owner), "{error}");
    }
    still_verifies(&project, &first);
    // With {execution_id} in the prefix every run has its own folder.
    let own = "/artifacts/outputs/text/{execution_id}/";
    for text in ["two", "three"] {
        let outcome = probe(&project, &format!(r#"{{"text":"{text}"}}"#), &["--write-prefix", own]);
        assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    }
}

#[test]
fn bidirectional_and_invisible_characters_are_refused_in_paths() {
    let project = Project::new();
    let outcome =
        probe(&project, "{}", &["--write-prefix", "/artifacts/outputs/cod\u{202e}exe.txt/"]);
    assert_eq!(outcome.code, 2, "{}", outcome.transcript());
    assert!(outcome.stderr.contains("invisible formatting character"), "{}", outcome.stderr);
    for relpath in ["evil\u{202e}txt.exe", "zero\u{200b}width.txt", "\u{2066}isolate.txt"] {
        let inputs = serde_json::json!({"relpath": relpath}).to_string();
        let outcome = probe(&project, &inputs, &["--no-cache"]);
        assert_eq!(outcome.code, 1, "{}", outcome.transcript());
        assert_eq!(outcome.json()["error"]["code"], "ERR_OUTPUT_PATH", "{relpath:?}");
    }
}
