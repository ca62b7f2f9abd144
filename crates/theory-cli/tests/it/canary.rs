//! A canary secret planted in the environment never appears in any output, log or file.

use crate::support::{Outcome, Project, files_under};

const OPENAI_CANARY: &str = "sk-canary-7f3e9d2b1a0c5d";
const PROBE_CANARY: &str = "probe-canary-5e4d3c2b1a09";

fn assert_clean(what: &str, text: &str) {
    for canary in [OPENAI_CANARY, PROBE_CANARY] {
        assert!(!text.contains(canary), "{what} leaks a secret:\n{text}");
    }
}

#[test]
fn a_canary_secret_never_appears_anywhere() {
    let project = Project::new()
        .env("OPENAI_API_KEY", OPENAI_CANARY)
        .env("THEORY_PROBE_SECRET", PROBE_CANARY)
        .env("THEORY_LOG", "debug")
        .env("THEORY_PROCESSOR_LOG", "debug")
        // Nothing listens on the discard port: the real run fails at the provider.
        .env("OPENAI_API_BASE", "http://127.0.0.1:9/v1");
    let hello = r#"{"messages":[{"role":"user","content":"Hello"}]}"#;
    let leak = r#"{"require_secret":"THEORY_PROBE_SECRET","leak_secret":true}"#;
    let mut outcomes: Vec<(&str, Outcome)> = vec![
        (
            "mock run",
            project.run(&[
                "run",
                "--ref",
                "llm/litellm@1",
                "--inputs-json",
                hello,
                "--json",
                "--stream",
            ]),
        ),
        (
            "real run",
            project.run(&[
                "run",
                "--ref",
                "llm/litellm@1",
                "--mode",
                "real",
                "--inputs-json",
                hello,
                "--json",
                "--stream",
            ]),
        ),
        (
            "leaking probe",
            project.run(&[
                "run",
                "--ref",
                "theory/probe@1",
                "--mode",
                "real",
                "--inputs-json",
                leak,
                "--json",
                "--stream",
            ]),
        ),
        ("registry", project.run(&["registry", "show", "llm/litellm@1", "--json"])),
    ];
    let json_logs = Project::new()
        .env("THEORY_PROBE_SECRET", PROBE_CANARY)
        .env("THEORY_LOG", "debug")
        .env("THEORY_LOG_FORMAT", "json");
    outcomes.push((
        "json logs",
        json_logs.run(&[
            "run",
            "--ref",
            "theory/probe@1",
            "--mode",
            "real",
            "--inputs-json",
            leak,
            "--json",
        ]),
    ));

    // The runs did what they should, so the check is not vacuous.
    assert_eq!(
        outcomes[1].1.json()["error"]["code"],
        "ERR_PROVIDER",
        "{}",
        outcomes[1].1.transcript()
    );
    assert_eq!(
        outcomes[2].1.json()["error"]["code"],
        "ERR_RUNTIME",
        "{}",
        outcomes[2].1.transcript()
    );
    assert!(outcomes[2].1.stdout.contains("[REDACTED]"), "{}", outcomes[2].1.transcript());
    assert!(outcomes[2].1.stderr.contains("the secret is [REDACTED]"), "{}", outcomes[2].1.stderr);
    for (what, outcome) in &outcomes {
        assert_clean(&format!("{what} stdout"), &outcome.stdout);
        assert_clean(&format!("{what} stderr"), &outcome.stderr);
    }
    let mut files = files_under(project.path());
    files.extend(files_under(json_logs.path()));
    assert!(
        files.iter().any(|file| file.ends_with("determinism.json")),
        "no receipt was written: {files:?}"
    );
    for file in files {
        assert_clean(
            &file.display().to_string(),
            &String::from_utf8_lossy(&std::fs::read(&file).unwrap()),
        );
    }
}
