//! Prompts in the registry (seed 004): `{"$prompt":"name@N","vars":{…}}` in the inputs is
//! rendered from `registry/prompts/` before the schema check, the receipt names the prompt and
//! its template's hash, and every bad reference or prompt file is refused before anything starts.

use serde_json::{Value, json};

use crate::support::{Outcome, Project};

const SUMMARY: &str = "Summarize the following text in at most {max_sentences} sentences, in a {tone} tone.\n\n{text}";

/// Runs `llm/litellm@1` in mock mode with `content` as the user's message.
fn ask(project: &Project, content: &Value) -> Outcome {
    let inputs = json!({"messages": [{"role": "user", "content": content}]}).to_string();
    project.run(&["run", "--ref", "llm/litellm@1", "--inputs-json", &inputs, "--json"])
}

/// The mock's reply and the receipt of a successful run.
fn reply_and_receipt(project: &Project, outcome: &Outcome) -> (String, Value) {
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let envelope = outcome.json();
    let id = envelope["execution_id"].as_str().unwrap();
    let root = project.path().join(".theory/artifacts");
    let response = envelope["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|output| output["path"].as_str().unwrap())
        .find(|path| path.ends_with("/text/response.txt"))
        .unwrap();
    let reply = std::fs::read_to_string(root.join(&response[1..])).unwrap();
    let receipt =
        std::fs::read_to_string(root.join(format!("artifacts/execution/{id}/determinism.json")));
    (reply, serde_json::from_str(&receipt.unwrap()).unwrap())
}

/// `b3:` of a value's compact JSON, its keys written in sorted order by the caller.
fn b3_of(value: &Value) -> String {
    format!("b3:{}", blake3::hash(value.to_string().as_bytes()).to_hex())
}

fn prompt_hash(project: &Project, id: &str) -> String {
    let shown = project.run(&["registry", "show", id, "--json"]);
    assert_eq!(shown.code, 0, "{}", shown.transcript());
    shown.json()["hash"].as_str().unwrap().to_owned()
}

#[test]
fn a_prompt_is_rendered_into_the_inputs_and_named_in_the_receipt() {
    let project = Project::new();
    let outcome =
        ask(&project, &json!({"$prompt": "summarize@1", "vars": {"text": "The cat sat."}}));
    let (reply, receipt) = reply_and_receipt(&project, &outcome);
    assert_eq!(
        reply,
        "MOCK: Summarize the following text in at most 3 sentences, in a neutral tone.\n\nThe cat sat."
    );
    let hash = prompt_hash(&project, "summarize@1");
    // The canonical JSON of the template and its defaults (keys sorted, compact).
    let identity = json!({"defaults": {"max_sentences": "3", "text": null, "tone": "neutral"}, "template": SUMMARY});
    assert_eq!(hash, b3_of(&identity));
    assert_eq!(receipt["prompts"], json!([{"id": "summarize@1", "hash": hash}]));

    // Numbers and booleans are variables too; other values give another inputs hash.
    let other = ask(
        &project,
        &json!({"$prompt": "summarize@1", "vars": {"text": "The cat sat.", "max_sentences": 1, "tone": "dry"}}),
    );
    let (reply, other) = reply_and_receipt(&project, &other);
    assert!(reply.contains("at most 1 sentences, in a dry tone"), "{reply}");
    assert_ne!(other["inputs_hash"], receipt["inputs_hash"]);

    // A run without prompts has no prompts field in its receipt.
    let (_, plain) = reply_and_receipt(&project, &ask(&project, &json!("Hello")));
    assert!(plain.get("prompts").is_none(), "{plain}");
}

#[test]
fn a_project_prompt_is_used_anywhere_in_the_inputs_and_replaces_a_built_in_one() {
    let project = Project::new();
    let folder = project.path().join("registry/prompts");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("greet.yaml"),
        "id: greet@2\ntemplate: \"Hello {name}, {{literally}}\"\nvars:\n  name:\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("summarize.yaml"),
        "id: summarize@1\ntemplate: \"Short: {text}\"\nvars:\n  text: {}\n",
    )
    .unwrap();
    let content = json!(["A", {"$prompt": "greet@2", "vars": {"name": "Ada"}}, {"$prompt": "summarize@1", "vars": {"text": "x"}}]);
    let (reply, receipt) = reply_and_receipt(&project, &ask(&project, &content));
    assert_eq!(reply, "MOCK: A Hello Ada, {literally} Short: x");
    let ids: Vec<&str> = receipt["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|used| used["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["greet@2", "summarize@1"]);
    let identity = json!({"defaults": {"text": null}, "template": "Short: {text}"});
    assert_eq!(receipt["prompts"][1]["hash"], b3_of(&identity));
}

#[test]
fn bad_prompt_references_are_refused_before_anything_starts() {
    let project = Project::new();
    let cases = [
        (
            json!({"$prompt": "summarize@1"}),
            "ERR_INPUT_SCHEMA",
            "needs the variable \"text\"",
            "required: text",
        ),
        (
            json!({"$prompt": "sumarize@1", "vars": {"text": "x"}}),
            "ERR_REGISTRY",
            "unknown prompt",
            "known prompts: summarize@1",
        ),
        (
            json!({"$prompt": "summarize@1", "vars": {"text": "x", "mood": "y"}}),
            "ERR_INPUT_SCHEMA",
            "no variable \"mood\"",
            "theory registry show summarize@1",
        ),
        (
            json!({"$prompt": "summarize@1", "vars": {"text": ["x"]}}),
            "ERR_INPUT_SCHEMA",
            "must be a string, a number or a boolean",
            "text",
        ),
        (
            json!({"$prompt": "summarize@1", "text": "x"}),
            "ERR_INPUT_SCHEMA",
            "must be {\"$prompt\"",
            "vars",
        ),
        (json!({"$prompt": 1}), "ERR_INPUT_SCHEMA", "must be {\"$prompt\"", "vars"),
    ];
    for (content, code, message, hint) in cases {
        let outcome = ask(&project, &content);
        assert_eq!(outcome.code, 1, "{content}: {}", outcome.transcript());
        let envelope = outcome.json();
        assert_eq!(envelope["error"]["code"], code, "{content}: {}", outcome.transcript());
        let said = envelope["error"]["message"].as_str().unwrap();
        assert!(said.contains(message), "{content}: {said}");
        assert!(
            outcome.stderr.contains("hint: ") && outcome.stderr.contains(hint),
            "{content}: {}",
            outcome.stderr
        );
    }
    assert!(
        project.state_files().iter().all(|file| !file.contains("/outputs/")),
        "a refused run wrote outputs: {:?}",
        project.state_files()
    );
}

#[test]
fn broken_prompt_files_are_each_named_with_their_key() {
    let project = Project::new();
    let folder = project.path().join("registry/prompts");
    std::fs::create_dir_all(&folder).unwrap();
    let files = [
        (
            "undeclared.yaml",
            "id: a@1\ntemplate: \"{who}\"\n",
            "key template: {who} is not declared under vars",
        ),
        (
            "unused.yaml",
            "id: b@1\ntemplate: \"hi\"\nvars:\n  who:\n",
            "key vars.who: the template never uses it",
        ),
        ("unclosed.yaml", "id: c@1\ntemplate: \"{who\"\nvars:\n  who:\n", "is not closed"),
        ("badid.yaml", "id: c\ntemplate: \"hi\"\n", "key id: \"c\" is not name@N"),
        ("typo.yaml", "id: d@1\ntemplat: \"hi\"\n", "unknown field `templat`"),
    ];
    for (file, text, _) in files {
        std::fs::write(folder.join(file), text).unwrap();
    }
    let outcome = project.run(&["registry", "validate"]);
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    for (file, _, message) in files {
        let line = outcome
            .stderr
            .lines()
            .find(|line| line.contains(&format!("registry/prompts/{file}")))
            .unwrap_or_else(|| panic!("{file} is not named: {}", outcome.stderr));
        assert!(line.contains(message), "{file}: {line}");
    }
}

#[test]
fn prompts_are_listed_and_shown() {
    let project = Project::new();
    let listed = project.run(&["registry", "list"]);
    assert_eq!(listed.code, 0, "{}", listed.transcript());
    let row = listed.stdout.lines().find(|line| line.starts_with("summarize@1")).unwrap();
    assert!(row.contains("max_sentences,text,tone"), "{row}");
    let shown = project.run(&["registry", "show", "summarize@1"]);
    assert_eq!(shown.code, 0, "{}", shown.transcript());
    assert!(shown.stdout.contains("  text (required) — The text to summarize"), "{}", shown.stdout);
    assert!(shown.stdout.contains("  tone (default \"neutral\")"), "{}", shown.stdout);
    let unknown = project.run(&["registry", "show", "nope@1"]);
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("error: unknown prompt nope@1"), "{}", unknown.stderr);
    let valid = project.run(&["registry", "validate", "--json"]).json();
    assert_eq!(valid["prompts"], 1);
}

#[test]
fn theory_serve_renders_prompts_before_its_schema_check() {
    let project = Project::new();
    let server = crate::serve::Server::start(&project, &[]);
    let content = json!({"$prompt": "summarize@1", "vars": {"text": "Over HTTP."}});
    let (status, run) = server.submit(
        &json!({"ref": "llm/litellm@1", "inputs": {"messages": [{"role": "user", "content": content}]}}),
        &[("Prefer", "wait")],
    );
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");
    let id = run["id"].as_str().unwrap();
    let shown = project.run(&["executions", "show", id, "--json"]).json();
    assert_eq!(shown["receipt"]["prompts"][0]["id"], "summarize@1", "{shown}");
    let (status, refused) = server.submit(
        &json!({"ref": "llm/litellm@1", "inputs": {"messages": [{"content": {"$prompt": "summarize@1"}}]}}),
        &[],
    );
    assert_eq!((status, &refused["error"]["code"]), (422, &json!("ERR_INPUT_SCHEMA")), "{refused}");
    assert_eq!(server.stop(), Some(0));
}
