//! Behaviours of `theory run` through the real binary and real processor binaries.

use serde_json::Value;

use crate::support::{HELLO, Project};

#[test]
fn the_second_identical_run_is_cached_and_no_cache_runs_again() {
    let project = Project::new();
    let args = ["run", "--ref", "llm/litellm@1", "--inputs-json", HELLO, "--json"];
    let first = project.run(&args).json();
    let second = project.run(&args).json();
    assert_eq!(first["meta"]["cached"], false);
    assert_eq!(second["meta"]["cached"], true);
    assert_eq!(first["outputs"], second["outputs"]);
    let mut forced = args.to_vec();
    forced.push("--no-cache");
    let third = project.run(&forced).json();
    assert_eq!(third["meta"]["cached"], false);
    assert_ne!(third["execution_id"], first["execution_id"]);
}

#[test]
fn outputs_index_and_receipts_are_on_disk() {
    let project = Project::new();
    let envelope = project
        .run(&[
            "run",
            "--ref",
            "llm/litellm@1",
            "--inputs-json",
            HELLO,
            "--json",
            "--write-prefix",
            "/artifacts/outputs/demo/{execution_id}/",
        ])
        .json();
    let id = envelope["execution_id"].as_str().unwrap();
    let root = project.path().join(".theory/artifacts");
    let response = std::fs::read_to_string(
        root.join(format!("artifacts/outputs/demo/{id}/text/response.txt")),
    )
    .unwrap();
    assert_eq!(response, "MOCK: Hello");
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join(format!("artifacts/execution/{id}/outputs.json")))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(index["outputs"], envelope["outputs"]);
    let receipt =
        std::fs::read_to_string(root.join(format!("artifacts/execution/{id}/determinism.json")))
            .unwrap();
    assert_eq!(
        receipt,
        std::fs::read_to_string(root.join(format!("artifacts/outputs/demo/{id}/receipt.json")))
            .unwrap()
    );
    let receipt: Value = serde_json::from_str(&receipt).unwrap();
    assert_eq!(receipt["runtime"], "process");
    assert_eq!(receipt["image_digest"], envelope["meta"]["image_digest"]);
}

/// Returns the pids of `theory-probe` processes working in `folder`.
fn probes_in(folder: &std::path::Path) -> Vec<u32> {
    let folder = folder.canonicalize().unwrap_or_else(|_| folder.to_path_buf());
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe"));
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"));
            exe.is_ok_and(|exe| exe.ends_with("theory-probe")) && cwd.is_ok_and(|cwd| cwd == folder)
        })
        .collect()
}

#[test]
fn a_timeout_kills_the_processor_and_leaves_no_index() {
    let project = std::sync::Arc::new(Project::new());
    let runner = std::sync::Arc::clone(&project);
    let run = std::thread::spawn(move || {
        runner.run(&[
            "run",
            "--ref",
            "theory/probe@1",
            "--inputs-json",
            r#"{"sleep_ms": 60000, "ignore_cancel": true}"#,
            "--adapter-opts-json",
            r#"{"timeout_s": 2}"#,
            "--json",
        ])
    });
    // The processor must be seen running, so that its absence afterwards means something.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while probes_in(project.path()).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the probe never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let outcome = run.join().unwrap();
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert_eq!(outcome.json()["error"]["code"], "ERR_TIMEOUT");
    assert!(outcome.stderr.contains("hint: raise the timeout"), "{}", outcome.stderr);
    assert!(
        !project.state_files().iter().any(|file| file.contains("/execution/")),
        "{:?}",
        project.state_files()
    );
    assert!(probes_in(project.path()).is_empty(), "a processor survived its timeout");
}

#[test]
fn a_failed_run_leaves_no_index_and_no_receipt() {
    let project = Project::new();
    let outcome = project.run(&[
        "run",
        "--ref",
        "theory/probe@1",
        "--inputs-json",
        r#"{"fail": {"code": "ERR_PROVIDER", "message": "nope"}}"#,
    ]);
    assert_eq!(outcome.code, 1);
    assert!(outcome.stdout.is_empty(), "plain mode prints nothing on stdout for an error");
    assert!(outcome.stderr.contains("error: ERR_PROVIDER: nope"), "{}", outcome.stderr);
    let files = project.state_files();
    assert!(!files.iter().any(|file| file.contains("artifacts/artifacts/")), "{files:?}");
}

#[test]
fn save_dir_and_save_first_copy_outputs_out() {
    let project = Project::new();
    let outcome =
        project.run_hello(&["--save-dir", "saved", "--save-first", "first.txt", "--json"]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let envelope = outcome.json();
    let response = envelope["outputs"][1]["path"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(project.path().join("saved").join(&response[1..])).unwrap(),
        "MOCK: Hello"
    );
    // The first output the spec declares is the reply, though meta.json sorts first.
    let first = std::fs::read_to_string(project.path().join("first.txt")).unwrap();
    assert_eq!(first, "MOCK: Hello");
}

#[test]
fn stream_shows_tokens_as_they_arrive() {
    let project = Project::new();
    let outcome = project.run_hello(&["--stream", "--no-cache"]);
    assert_eq!(outcome.code, 0);
    assert!(
        outcome.stderr.contains("[event] started") && outcome.stderr.contains("MOCK: Hello"),
        "{}",
        outcome.stderr
    );
    assert_eq!(outcome.stdout.lines().count(), 1, "stdout holds exactly the index path");
}

#[test]
fn inputs_from_a_file_and_from_stdin() {
    let project = Project::new();
    std::fs::write(project.path().join("inputs.json"), HELLO).unwrap();
    let from_file = project
        .run(&["run", "--ref", "llm/litellm@1", "--inputs-file", "inputs.json", "--json"])
        .json();
    let from_stdin = project
        .run_with_stdin(
            &["run", "--ref", "llm/litellm@1", "--inputs", "-", "--json", "--no-cache"],
            Some(HELLO),
        )
        .json();
    assert_eq!(from_file["outputs"][1]["cid"], from_stdin["outputs"][1]["cid"]);
}

#[test]
fn json_logs_carry_the_execution_span() {
    let project = Project::new().env("THEORY_LOG_FORMAT", "json").env("THEORY_LOG", "info");
    let outcome = project.run_hello(&["--json"]);
    let id = outcome.json()["execution_id"].as_str().unwrap().to_owned();
    let lines: Vec<Value> = outcome
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let span = &lines
        .iter()
        .find(|line| line["fields"]["message"] == "run succeeded")
        .expect("a success line")["span"];
    assert_eq!(span["execution_id"], id.as_str());
    assert_eq!(
        (span["processor_ref"].as_str(), span["adapter"].as_str(), span["mode"].as_str()),
        (Some("llm/litellm@1"), Some("local"), Some("mock"))
    );
}

fn copy_folder(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_project_with_the_repository_registry_runs() {
    // The quick start runs from the repository root, whose registry/ holds the built-in files.
    let project = Project::new();
    copy_folder(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../registry")),
        &project.path().join("registry"),
    );
    let validate = project.run(&["registry", "validate"]);
    assert_eq!(validate.code, 0, "{}", validate.transcript());
    let run = project.run_hello(&["--json"]);
    assert_eq!(run.json()["status"], "success", "{}", run.transcript());
}

#[test]
fn the_readme_documents_every_environment_variable() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("the README");
    let missing: Vec<&str> = theory_core::env::names::ALL
        .iter()
        .copied()
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "the README does not document {missing:?}");
}

/// A real run of `llm/litellm@1` with `inputs` and `extra` flags, `--json`.
fn real_llm(project: &Project, inputs: &Value, extra: &[&str]) -> crate::support::Outcome {
    let inputs = inputs.to_string();
    let args =
        ["run", "--ref", "llm/litellm@1", "--mode", "real", "--inputs-json", &inputs, "--json"];
    project.run(&[&args[..], extra].concat())
}

/// The inputs of a one-message chat with `model`.
fn chat(model: &str) -> Value {
    serde_json::json!({"messages": [{"role": "user", "content": "Hi"}], "model": model})
}

#[test]
fn a_real_run_needs_the_key_of_the_provider_its_model_names() {
    // Nothing listens on the discard port: a run past the key check fails at the provider.
    let project = Project::new()
        .env("OPENAI_API_BASE", "http://127.0.0.1:9/v1")
        .env("ANTHROPIC_API_BASE", "http://127.0.0.1:9");
    let real = |project: &Project, model: &str| {
        let outcome = real_llm(project, &chat(model), &[]);
        assert_eq!(outcome.code, 1, "{}", outcome.transcript());
        let error = outcome.json()["error"].clone();
        (error["code"].as_str().unwrap().to_owned(), error["message"].as_str().unwrap().to_owned())
    };
    let missing = |name: &str| {
        ("ERR_MISSING_SECRET".to_owned(), format!("required secret {name} is not set"))
    };
    assert_eq!(real(&project, "anthropic/claude-3-5-haiku-latest"), missing("ANTHROPIC_API_KEY"));
    assert_eq!(real(&project, "openai/gpt-4o-mini"), missing("OPENAI_API_KEY"));
    assert_eq!(real(&project, "gpt-4o-mini"), missing("OPENAI_API_KEY"));
    assert_eq!(real(&project, "groq/llama-3.1-8b-instant"), missing("GROQ_API_KEY"));
    // A provider the spec does not list is the processor's to refuse.
    let (code, message) = real(&project, "nope/model");
    assert_eq!(code, "ERR_INPUT_SCHEMA");
    assert!(message.contains("unknown provider \"nope\""), "{message}");
    // With only Anthropic's key, an Anthropic run gets past the check to the provider.
    let anthropic = Project::new()
        .env("ANTHROPIC_API_KEY", "sk-ant-test")
        .env("ANTHROPIC_API_BASE", "http://127.0.0.1:9");
    let (code, message) = real(&anthropic, "anthropic/claude-3-5-haiku-latest");
    assert_eq!(code, "ERR_PROVIDER", "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_llm_run_is_priced_by_the_row_of_the_model_it_asked_for() {
    use theory_conformance::llm::{KEY, LlmStandIn};
    let stand_in = LlmStandIn::start().await;
    let openai_base = format!("{}/v1", stand_in.base_url);
    let project = Project::new()
        .env("OPENAI_API_KEY", KEY)
        .env("ANTHROPIC_API_KEY", KEY)
        .env("OPENAI_API_BASE", &openai_base)
        .env("ANTHROPIC_API_BASE", &stand_in.base_url);
    let cost = |model: &str| {
        let outcome = real_llm(&project, &chat(model), &[]);
        assert_eq!(outcome.code, 0, "{}", outcome.transcript());
        let id = outcome.json()["execution_id"].as_str().unwrap().to_owned();
        let shown = project.run(&["executions", "show", &id, "--json"]).json();
        (shown["receipt"]["cost_usd_micro"].as_u64(), shown["execution"]["cost_usd_micro"].as_u64())
    };
    // The stand-in reports 7 tokens in and 3 out for OpenAI: 7×0.15 + 3×0.6 = 2.85 → 3.
    assert_eq!(cost("openai/gpt-4o-mini"), (Some(3), Some(3)));
    // 9 in and 2 out for Anthropic: 9×0.8 + 2×4 = 15.2 → 16.
    assert_eq!(cost("anthropic/claude-3-5-haiku-latest"), (Some(16), Some(16)));
    // A model without a row: the cost is unknown (a plan is charged the run's estimate).
    assert_eq!(cost("openai/some-new-model"), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memo_cache_answers_only_the_same_question() {
    use theory_conformance::llm::{KEY, LlmStandIn};
    let (first, second) = (LlmStandIn::start().await, LlmStandIn::start().await);
    let against = |stand_in: &LlmStandIn| {
        Project::new()
            .env("OPENAI_API_KEY", KEY)
            .env("OPENAI_API_BASE", &format!("{}/v1", stand_in.base_url))
    };
    let project = against(&first);
    let ask = |project: &Project, inputs: &Value, extra: &[&str]| {
        let outcome = real_llm(project, inputs, extra);
        assert_eq!(outcome.code, 0, "{}", outcome.transcript());
        outcome.json()["meta"]["cached"] == true
    };
    let sampled = serde_json::json!({"messages": [{"role": "user", "content": "Hi"}]});
    // Sampling varies: the same real inputs run again, unless the caller asks for reuse.
    assert!(!ask(&project, &sampled, &[]));
    assert!(!ask(&project, &sampled, &[]));
    assert!(ask(&project, &sampled, &["--reuse-real"]));
    assert_eq!(first.requests().len(), 2);
    // Temperature 0 makes the run reproducible: the second is answered from the cache.
    let fixed =
        serde_json::json!({"messages": [{"role": "user", "content": "Hi"}], "temperature": 0});
    assert!(!ask(&project, &fixed, &[]));
    assert!(ask(&project, &fixed, &[]));
    assert_eq!(first.requests().len(), 3);
    // The same question to another endpoint is another question, in the same project folder.
    let moved = Project::new()
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_API_BASE", &format!("{}/v1", second.base_url));
    let moved = moved.env("THEORY_PROJECT", project.path().to_str().unwrap());
    assert!(!ask(&moved, &fixed, &[]));
    assert_eq!((first.requests().len(), second.requests().len()), (3, 1));
    // Mock runs are reused as before.
    let mock = against(&second);
    let hello = |project: &Project| project.run_hello(&["--json"]).json()["meta"]["cached"] == true;
    assert!(!hello(&mock));
    assert!(hello(&mock));
}

#[test]
fn a_broken_spec_file_leaves_out_only_what_it_defines() {
    let project = Project::new();
    let folder = project.path().join("registry/processors");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("bad.yaml"), "ref: demo/bad@1\nruntime: {cpu: 1, memroy_gb: 2}\n")
        .unwrap();
    // A broken copy of a built-in processor: the built-in one must not answer in its place.
    std::fs::write(folder.join("litellm.yaml"), "ref: llm/litellm@1\nsurprise: 1\n").unwrap();
    // A run parses the spec it uses, not the broken one beside it: nothing to warn about.
    let probe = project.run(&["run", "--ref", "theory/probe@1", "--inputs-json", "{}", "--json"]);
    assert_eq!(probe.code, 0, "{}", probe.transcript());
    assert!(!probe.stderr.contains("bad.yaml"), "{}", probe.stderr);
    // A command that reads every spec warns of it.
    let listed = project.run(&["registry", "list"]);
    assert!(
        listed.stderr.contains("warning: registry/processors/bad.yaml: key runtime.memroy_gb"),
        "{}",
        listed.stderr
    );
    for reference in ["demo/bad@1", "llm/litellm@1"] {
        let refused = project.run(&["run", "--ref", reference, "--inputs-json", HELLO, "--json"]);
        assert_eq!(refused.code, 1, "{}", refused.transcript());
        let error = refused.json()["error"].clone();
        assert_eq!(error["code"], "ERR_REGISTRY");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{reference} is defined in a file with a problem")),
            "{error}"
        );
    }
    let shown = project.run(&["registry", "show", "llm/litellm@1"]);
    assert_eq!(shown.code, 1);
    assert!(shown.stderr.contains("unknown field `surprise`"), "{}", shown.stderr);
    let listed = project.run(&["registry", "list", "--json"]).json();
    let refs: Vec<&str> =
        listed.as_array().unwrap().iter().map(|entry| entry["ref"].as_str().unwrap()).collect();
    assert!(refs.contains(&"theory/probe@1") && !refs.contains(&"llm/litellm@1"), "{refs:?}");
    // Every problem in one pass.
    let validate = project.run(&["registry", "validate", "--json"]);
    assert_eq!(validate.code, 1);
    assert_eq!(validate.json()["errors"].as_array().unwrap().len(), 2, "{}", validate.stdout);

    // A file that is not YAML still names its ref (a comment after it is not part of it).
    std::fs::write(folder.join("commented.yaml"), "ref: demo/commented@1  # ours\nbad: [\n")
        .unwrap();
    let commented =
        project.run(&["run", "--ref", "demo/commented@1", "--inputs-json", "{}", "--json"]);
    assert!(
        commented.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("demo/commented@1 is defined in a file with a problem"),
        "{}",
        commented.transcript()
    );
    // A broken default policy leaves runs without retry and lease rules: nothing runs.
    let policy = Project::new();
    std::fs::create_dir_all(policy.path().join("registry/policies")).unwrap();
    std::fs::write(
        policy.path().join("registry/policies/default.yaml"),
        "id: default@1
retry: {max_attempts: 0}
",
    )
    .unwrap();
    let unsafe_run =
        policy.run(&["run", "--ref", "theory/probe@1", "--inputs-json", "{}", "--json"]);
    assert_eq!(unsafe_run.json()["error"]["code"], "ERR_REGISTRY", "{}", unsafe_run.transcript());
    // A file whose ref cannot be read could define anything: nothing runs.
    std::fs::write(folder.join("unnamed.yaml"), "[not, a, mapping\n").unwrap();
    let unsure = project.run(&["run", "--ref", "theory/probe@1", "--inputs-json", "{}", "--json"]);
    assert_eq!(unsure.code, 1, "{}", unsure.transcript());
    assert_eq!(unsure.json()["error"]["code"], "ERR_REGISTRY");
}

#[test]
fn version_names_the_commit_and_completions_and_the_manual_are_printed() {
    let project = Project::new();
    let version = project.run(&["--version"]);
    assert_eq!(version.code, 0, "{}", version.transcript());
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git runs");
    let head = String::from_utf8(head.stdout).unwrap();
    // The binary was built from this checkout; a commit made since names a newer one.
    assert!(version.stdout.starts_with("theory 0.1.0 (commit "), "{}", version.stdout);
    assert!(
        version.stdout.trim().len() == "theory 0.1.0 (commit )".len() + head.trim().len(),
        "{} vs {head}",
        version.stdout
    );
    for (shell, mark) in [
        ("bash", "complete -F _theory"),
        ("zsh", "#compdef theory"),
        ("fish", "complete -c theory"),
    ] {
        let script = project.run(&["completions", shell]);
        assert_eq!(script.code, 0, "{}", script.transcript());
        assert!(script.stdout.contains(mark) && script.stdout.contains("reuse-real"), "{shell}");
    }
    let refused = project.run(&["completions", "tcsh"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("possible values: bash"), "{}", refused.stderr);
    let manual = project.run(&["man"]);
    assert_eq!(manual.code, 0);
    assert!(
        manual.stdout.contains(".TH theory 1") && manual.stdout.contains("completions"),
        "{}",
        manual.stdout
    );
    assert!(project.state_files().is_empty(), "nothing is written: {:?}", project.state_files());
    // `registry show` takes --ref as the other commands do.
    let by_flag = project.run(&["registry", "show", "--ref", "theory/probe@1", "--json"]);
    let by_position = project.run(&["registry", "show", "theory/probe@1", "--json"]);
    assert_eq!((by_flag.code, &by_flag.stdout), (0, &by_position.stdout));
}

#[test]
fn executions_list_filters_by_status_in_a_table_people_read_and_show_takes_a_short_id() {
    let project = Project::new();
    let ok = project.run_hello(&["--json"]).json();
    let failed = project.run(&[
        "run",
        "--ref",
        "theory/probe@1",
        "--inputs-json",
        r#"{"fail":"ERR_RUNTIME"}"#,
        "--json",
    ]);
    assert_eq!(failed.code, 1, "{}", failed.transcript());
    let table = project.run(&["executions", "list"]);
    assert_eq!(table.code, 0, "{}", table.transcript());
    let header = table.stdout.lines().next().unwrap();
    for title in ["ID", "REF", "STATUS", "COST", "TOOK", "STARTED"] {
        assert!(header.contains(title), "{header}");
    }
    assert!(
        table.stdout.contains("just now") || table.stdout.contains(" s ago"),
        "{}",
        table.stdout
    );
    let only = |status: &str| -> Vec<String> {
        let listed = project.run(&["executions", "list", "--status", status, "--json"]).json();
        listed["executions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|record| record["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(only("success"), ["success"]);
    assert_eq!(only("error"), ["error"]);
    let bad = project.run(&["executions", "list", "--status", "done"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("possible values: running, success, error"), "{}", bad.stderr);

    let id = ok["execution_id"].as_str().unwrap();
    let short = id[..id.len() - 4].to_ascii_lowercase();
    let shown = project.run(&["executions", "show", &short, "--json"]);
    assert_eq!(shown.code, 0, "{}", shown.transcript());
    assert_eq!(shown.json()["execution"]["id"], id);
    // Both runs' ids start with the same millisecond-time digits.
    let ambiguous = project.run(&["executions", "show", &id[..2]]);
    assert_ne!(ambiguous.code, 0);
    assert!(
        ambiguous.stderr.contains("more than one execution's id starts with"),
        "{}",
        ambiguous.stderr
    );
    let unknown = project.run(&["executions", "show", "zz-9"]);
    assert!(unknown.stderr.contains("no execution with id zz-9"), "{}", unknown.stderr);
}

#[test]
fn artifacts_ls_cat_and_get_read_the_store_by_world_path() {
    let project = Project::new();
    let run = project.run_hello(&[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    // The plain output of `theory run` is the index's world path: artifacts reads it.
    let index = run.stdout.trim();
    let printed = project.run(&["artifacts", "cat", index]);
    assert_eq!(printed.code, 0, "{}", printed.transcript());
    let outputs: Value = serde_json::from_str(&printed.stdout).unwrap();
    let response = outputs["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|output| output["path"].as_str().unwrap())
        .find(|path| path.ends_with("/text/response.txt"))
        .unwrap()
        .to_owned();
    assert_eq!(project.run(&["artifacts", "cat", &response]).stdout, "MOCK: Hello");

    let listed = project.run(&["artifacts", "ls", "/artifacts/outputs/", "--json"]).json();
    let paths: Vec<&str> = listed["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|object| object["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&response.as_str()), "{paths:?}");
    let plain = project.run(&["artifacts", "ls"]);
    assert!(
        plain
            .stdout
            .lines()
            .any(|line| line.ends_with(index) && line.trim_start().starts_with(char::is_numeric)),
        "{}",
        plain.stdout
    );

    let got = project.run(&["artifacts", "get", &response]);
    assert_eq!(got.code, 0, "{}", got.transcript());
    assert_eq!(
        std::fs::read_to_string(project.path().join("response.txt")).unwrap(),
        "MOCK: Hello"
    );
    let again = project.run(&["artifacts", "get", &response]);
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("exists already") && again.stderr.contains("--force"),
        "{}",
        again.stderr
    );
    let forced = project.run(&["artifacts", "get", &response, "-o", "out/reply.txt", "--json"]);
    assert_eq!(forced.code, 0, "{}", forced.transcript());
    assert_eq!(
        std::fs::read_to_string(project.path().join("out/reply.txt")).unwrap(),
        "MOCK: Hello"
    );

    let missing = project.run(&["artifacts", "cat", "/artifacts/outputs/nothing.txt"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("is not in the store")
            && missing.stderr.contains("theory artifacts ls"),
        "{}",
        missing.stderr
    );
    let bad = project.run(&["artifacts", "cat", "../etc/passwd"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("is not a world path"), "{}", bad.stderr);
    let nothing = project.run(&["artifacts", "get", "/artifacts/outputs/nothing.txt"]);
    assert_eq!(nothing.code, 1);
    assert!(!project.path().join("nothing.txt").exists(), "a failed get leaves no file");
    let leftovers: Vec<_> = std::fs::read_dir(project.path())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().contains(".part-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn quiet_says_only_errors_and_verbose_says_more() {
    let project = Project::new().env("THEORY_LOG", "info");
    let normal = project.run_hello(&["--no-cache"]);
    assert!(normal.stderr.contains("INFO"), "{}", normal.stderr);
    let quiet = project.run_hello(&["--no-cache", "-q"]);
    assert_eq!(quiet.code, 0, "{}", quiet.transcript());
    assert_eq!(quiet.stderr, "", "quiet run said something");
    let verbose = project.run_hello(&["--no-cache", "-v"]);
    assert!(verbose.stderr.contains("DEBUG"), "{}", verbose.stderr);
    let both = project.run_hello(&["-q", "-v"]);
    assert_eq!(both.code, 2, "{}", both.transcript());
    // Errors still show when quiet.
    let failed = project.run(&["run", "--ref", "theory/nope@1", "--inputs-json", "{}", "--quiet"]);
    assert!(failed.stderr.contains("error: ERR_REGISTRY"), "{}", failed.stderr);
    // Warnings are left unsaid too.
    let alias = project.run(&[
        "run",
        "--ref",
        "llm/litellm@1",
        "--mode",
        "smoke",
        "--inputs-json",
        HELLO,
        "-q",
    ]);
    assert!(!alias.stderr.contains("warning"), "{}", alias.stderr);
}

#[test]
fn theory_toml_holds_the_settings_a_team_shares_and_the_environment_wins() {
    let project = Project::new();
    let write = |text: &str| std::fs::write(project.path().join("theory.toml"), text).unwrap();
    write("[settings]\nTHEORY_ADAPTER = \"modal\"\n");
    // The project's default adapter is Modal (not enabled here): the run says so.
    let modal = project.run_hello(&["--json"]);
    assert_eq!(modal.code, 1, "{}", modal.transcript());
    assert_eq!(modal.json()["error"]["code"], "ERR_MODAL");
    // Inputs over the project's cap are refused; the environment's value wins over the file's.
    write("[settings]\nTHEORY_MAX_INPUTS_BYTES = 40\n");
    let local = project.run_hello(&["--adapter", "local"]);
    assert_eq!(local.code, 2, "{}", local.transcript());
    assert!(local.stderr.contains("40"), "{}", local.stderr);
    let roomy = Project::new()
        .env("THEORY_MAX_INPUTS_BYTES", "100000")
        .env("THEORY_PROJECT", project.path().to_str().unwrap());
    assert_eq!(roomy.run_hello(&["--adapter", "local"]).code, 0);

    for (text, message) in [
        ("[settings]\nOPENAI_API_KEY = \"sk-x\"\n", "looks like a secret"),
        ("[settings]\nNOT_A_SETTING = \"x\"\n", "is not one of Theory's settings"),
        ("[setings]\nTHEORY_ADAPTER = \"local\"\n", "unknown field"),
        ("[settings]\nTHEORY_ADAPTER = [\"local\"]\n", "must be a string"),
        ("[settings\n", "theory.toml"),
        ("[settings]\nTHEORY_ALLOW_REAL_IN_CI = \"1\"\n", "guards spending"),
        ("[settings]\nDATABASE_URL = \"postgres://u:sk-x@db/theory\"\n", "holds a password"),
    ] {
        write(text);
        let refused = project.run(&["executions", "list"]);
        assert_eq!(refused.code, 2, "{text}: {}", refused.transcript());
        assert!(
            refused.stderr.contains("theory.toml") && refused.stderr.contains(message),
            "{text}: {}",
            refused.stderr
        );
        assert!(!refused.stderr.contains("sk-x"), "a secret value was echoed");
    }
}
