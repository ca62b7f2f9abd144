//! Snapshots of what a user sees: success, each bad input, `--json` and plain output.

use crate::assert_transcript;
use crate::support::{HELLO, Project};

#[test]
fn success_json_and_plain() {
    let project = Project::new();
    let json = project.run(&[
        "run",
        "--ref",
        "llm/litellm@1",
        "--mode",
        "mock",
        "--inputs-json",
        HELLO,
        "--json",
    ]);
    assert_transcript!("run_mock_json", json);
    let plain = project.run_hello(&["--no-cache"]);
    assert_transcript!("run_mock_plain", plain);
}

#[test]
fn deprecated_aliases_warn_and_still_run() {
    let project = Project::new();
    let outcome = project.run(&[
        "run-processor",
        "--ref",
        "llm/litellm@1",
        "--adapter",
        "mock",
        "--mode",
        "smoke",
        "--inputs-json",
        HELLO,
    ]);
    assert_transcript!("deprecated_aliases", outcome);
}

#[test]
fn reference_errors() {
    let project = Project::new();
    assert_transcript!(
        "unknown_ref",
        project.run(&["run", "--ref", "llm/litelm@1", "--inputs-json", HELLO])
    );
    assert_transcript!(
        "unknown_ref_json",
        project.run(&["run", "--ref", "llm/litelm@1", "--inputs-json", HELLO, "--json"])
    );
    assert_transcript!(
        "malformed_ref",
        project.run(&["run", "--ref", "litellm", "--inputs-json", HELLO])
    );
}

#[test]
fn inputs_errors() {
    let project = Project::new();
    assert_transcript!(
        "invalid_json_flag",
        project.run(&["run", "--ref", "llm/litellm@1", "--inputs-json", "{\"messages\": ["])
    );
    std::fs::write(project.path().join("inputs.json"), "{\"messages\": 1,}").unwrap();
    assert_transcript!(
        "invalid_json_file",
        project.run(&["run", "--ref", "llm/litellm@1", "--inputs-file", "inputs.json"])
    );
    let stdin = project
        .run_with_stdin(&["run", "--ref", "llm/litellm@1", "--inputs", "-"], Some("not json"));
    assert_transcript!("invalid_json_stdin", stdin);
    assert_transcript!(
        "inputs_dash_only",
        project.run(&["run", "--ref", "llm/litellm@1", "--inputs", "inputs.json"])
    );
    let both = project.run_hello(&["--inputs-file", "inputs.json"]);
    assert_transcript!("inputs_exclusive", both);
    assert_transcript!(
        "schema_violation",
        project.run(&["run", "--ref", "llm/litellm@1", "--inputs-json", r#"{"messages":[]}"#])
    );
    assert_transcript!(
        "schema_violation_json",
        project.run(&[
            "run",
            "--ref",
            "llm/litellm@1",
            "--inputs-json",
            r#"{"prompt":"hi"}"#,
            "--json"
        ])
    );
}

#[test]
fn flag_errors() {
    let project = Project::new();
    let run = |extra: &[&str]| project.run_hello(extra);
    assert_transcript!(
        "write_prefix_without_slash",
        run(&["--write-prefix", "/artifacts/outputs/x"])
    );
    assert_transcript!("write_prefix_outside_artifacts", run(&["--write-prefix", "/streams/x/"]));
    assert_transcript!("write_prefix_escapes", run(&["--write-prefix", "/artifacts/../etc/"]));
    assert_transcript!("bad_adapter", run(&["--adapter", "cloud"]));
    assert_transcript!("bad_mode", run(&["--mode", "fast"]));
    assert_transcript!("bad_adapter_opts", run(&["--adapter-opts-json", r#"{"timeout":5}"#]));
    assert_transcript!("attach_unreferenced", run(&["--attach", "image=photo.jpg"]));
    assert_transcript!("plan_unknown", run(&["--plan", "my-plan"]));
    assert_transcript!("modal_not_enabled", run(&["--adapter", "modal"]));
    let enabled = Project::new().env("MODAL_ENABLED", "True");
    assert_transcript!("modal_not_deployed", enabled.run_hello(&["--adapter", "modal"]));
    assert_transcript!("mock_adapter_real_mode", run(&["--adapter", "mock", "--mode", "real"]));
}

#[test]
fn refusals_before_start() {
    let ci = Project::new().env("CI", "true").env("OPENAI_API_KEY", "sk-test-0123456789");
    assert_transcript!(
        "ci_safety",
        ci.run(&[
            "run",
            "--ref",
            "llm/litellm@1",
            "--mode",
            "real",
            "--inputs-json",
            HELLO,
            "--json"
        ])
    );
    let no_key = Project::new();
    assert_transcript!(
        "missing_secret",
        no_key.run(&["run", "--ref", "llm/litellm@1", "--mode", "real", "--inputs-json", HELLO])
    );
}

#[test]
fn registry_commands() {
    let project = Project::new();
    assert_transcript!("registry_list", project.run(&["registry", "list"]));
    assert_transcript!("registry_list_json", project.run(&["registry", "list", "--json"]));
    assert_transcript!("registry_show", project.run(&["registry", "show", "theory/probe@1"]));
    assert_transcript!(
        "registry_show_unknown",
        project.run(&["registry", "show", "theory/prob@1"])
    );
    assert_transcript!("registry_validate", project.run(&["registry", "validate", "--json"]));

    let broken = Project::new();
    let folder = broken.path().join("registry/processors");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("bad.yaml"), "ref: demo/bad@1\nimage: {platforms: {amd64: ghcr.io/x:latest}}\nruntime: {cpu: 1, memroy_gb: 2}\n").unwrap();
    std::fs::write(folder.join("dup.yaml"), "ref: demo/dup@1\n").unwrap();
    std::fs::write(folder.join("dup2.yml"), "ref: demo/dup@1\n").unwrap();
    let validate = broken.run(&["registry", "validate"]);
    assert_transcript!("registry_validate_broken", validate);
    let run = broken.run(&["run", "--ref", "demo/dup@1", "--inputs-json", HELLO, "--json"]);
    assert_transcript!("run_with_broken_registry", run);
}
