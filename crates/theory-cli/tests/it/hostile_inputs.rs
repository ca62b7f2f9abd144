//! Inputs that used to hang `theory` or fill its memory, and specs that used to pass
//! `registry validate` and then misbehave: each is refused at once with an error and a hint.

use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

use crate::support::{Outcome, Project};

/// Runs `args` and checks it is refused quickly with `error:` and `hint:`.
fn refused_fast(project: &Project, args: &[&str], code: i32, needle: &str) -> Outcome {
    let started = Instant::now();
    let outcome = project.run(args);
    assert!(started.elapsed() < Duration::from_secs(10), "{args:?} took {:?}", started.elapsed());
    assert_eq!(outcome.code, code, "{args:?}: {}", outcome.transcript());
    assert!(outcome.stderr.contains(needle), "{args:?}: {}", outcome.stderr);
    assert!(outcome.stderr.contains("hint: "), "{args:?}: {}", outcome.stderr);
    outcome
}

fn fifo(project: &Project, name: &str) -> String {
    let path = project.path().join(name);
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).unwrap();
    }
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
    path.display().to_string()
}

#[test]
fn devices_fifos_and_oversized_inputs_are_refused_at_once() {
    let project = Project::new();
    let run = ["run", "--ref", "theory/probe@1", "--inputs-file"];
    refused_fast(
        &project,
        &[&run[..], &["/dev/urandom"]].concat(),
        2,
        "a device, not a regular file",
    );
    let pipe = fifo(&project, "inputs.json");
    refused_fast(&project, &[&run[..], &[pipe.as_str()]].concat(), 2, "a FIFO");
    // Over the limit: refused without reading the whole file.
    let big = project.path().join("big.json");
    std::fs::write(&big, format!("{{\"text\":\"{}\"}}", "x".repeat(4096))).unwrap();
    let small = Project::new().env("THEORY_MAX_INPUTS_BYTES", "1024");
    let big = big.display().to_string();
    refused_fast(
        &small,
        &[&run[..], &[big.as_str()]].concat(),
        2,
        "larger than the limit of 1024 bytes",
    );
    let outcome = small.run_with_stdin(
        &["run", "--ref", "theory/probe@1", "--inputs", "-"],
        Some(&format!("{{\"text\":\"{}\"}}", "x".repeat(4096))),
    );
    assert_eq!(outcome.code, 2, "{}", outcome.transcript());
    assert!(outcome.stderr.contains("larger than the limit"), "{}", outcome.stderr);
    let bad_limit = Project::new().env("THEORY_MAX_INPUTS_BYTES", "lots");
    refused_fast(&bad_limit, &["run", "--ref", "theory/probe@1"], 2, "THEORY_MAX_INPUTS_BYTES");
}

#[test]
fn an_attachment_must_be_a_regular_file_and_a_private_one_stays_private() {
    let project = Project::new();
    let pipe = fifo(&project, "photo.png");
    let attach = format!("photo={pipe}");
    let inputs = r#"{"image":{"$attach":"photo"}}"#;
    let outcome = refused_fast(
        &project,
        &["run", "--ref", "image/thumbnail@1", "--attach", &attach, "--inputs-json", inputs],
        1,
        "ERR_ATTACHMENT",
    );
    assert!(outcome.stderr.contains("FIFO"), "{}", outcome.stderr);
    // A symbolic link to a file only its owner may read: the stored copy is owner-only too.
    let secret = project.path().join("secret.png");
    std::fs::write(&secret, crate::attachments::png()).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = project.path().join("link.png");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let attach = format!("photo={}", link.display());
    let outcome = project.run(&[
        "run",
        "--ref",
        "image/thumbnail@1",
        "--attach",
        &attach,
        "--inputs-json",
        inputs,
        "--json",
    ]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let stored =
        crate::support::files_under(&project.path().join(".theory/artifacts/artifacts/inputs"));
    assert_eq!(stored.len(), 1, "{stored:?}");
    let mode = std::fs::metadata(&stored[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the private file was stored readable by others: {mode:o}");
}

#[test]
fn a_fifo_in_the_registry_is_an_error_not_a_hang() {
    let project = Project::new();
    fifo(&project, "registry/processors/x.yaml");
    let started = Instant::now();
    let outcome = project.run(&["registry", "validate"]);
    assert!(started.elapsed() < Duration::from_secs(10), "registry validate hung");
    assert_ne!(outcome.code, 0, "{}", outcome.transcript());
    assert!(
        outcome.stderr.contains("x.yaml") && outcome.stderr.contains("FIFO"),
        "{}",
        outcome.stderr
    );
    // Every other command reports it too, at once, instead of waiting for a writer.
    let started = Instant::now();
    let outcome = project.run(&["run", "--ref", "theory/probe@1"]);
    assert!(started.elapsed() < Duration::from_secs(10), "theory run hung");
    assert_ne!(outcome.code, 0, "{}", outcome.transcript());
}

#[test]
fn specs_and_policies_with_dangerous_values_fail_validation() {
    for (binary, accepted) in
        [("../../../bin/sh", false), ("/bin/sh", false), ("..", false), ("theory-probe", true)]
    {
        let project = Project::new();
        project.probe_variant("test/binary@1", "binary.yaml", |spec| {
            spec.replace("binary: theory-probe", &format!("binary: {binary:?}"))
        });
        let outcome = project.run(&["registry", "validate"]);
        assert_eq!(outcome.code == 0, accepted, "{binary}: {}", outcome.transcript());
        if !accepted {
            assert!(outcome.stderr.contains("image.build.binary"), "{}", outcome.stderr);
            assert!(outcome.stderr.contains("plain file name"), "{}", outcome.stderr);
        }
    }
    for (policy, key) in [
        ("retry: {max_attempts: 3, backoff_ms: [18446744073709551615]}", "retry.backoff_ms"),
        ("retry: {max_attempts: 1000000000}", "retry.max_attempts"),
        ("leases: {default_ttl_s: 0}", "leases.default_ttl_s"),
    ] {
        let project = Project::new();
        let folder = project.path().join("registry/policies");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("default.yaml"), format!("id: default@1\n{policy}\n")).unwrap();
        let outcome = project.run(&["registry", "validate"]);
        assert_ne!(outcome.code, 0, "{policy}: {}", outcome.transcript());
        assert!(outcome.stderr.contains(key), "{policy}: {}", outcome.stderr);
    }
}

#[test]
fn adapter_options_must_be_an_object() {
    let project = Project::new();
    for text in ["[1]", "[120, \"process\"]", "5", "null"] {
        refused_fast(
            &project,
            &["run", "--ref", "theory/probe@1", "--adapter-opts-json", text],
            2,
            "expected a JSON object",
        );
    }
}

#[test]
fn save_targets_are_checked_before_the_run_starts() {
    let project = Project::new();
    std::fs::write(project.path().join("a-file"), b"x").unwrap();
    let run = ["run", "--ref", "theory/probe@1"];
    refused_fast(&project, &[&run[..], &["--save-dir", "a-file"]].concat(), 2, "is not a folder");
    let folder = project.path().display().to_string();
    refused_fast(
        &project,
        &[&run[..], &["--save-first", folder.as_str()]].concat(),
        2,
        "it is a folder",
    );
    refused_fast(
        &project,
        &[&run[..], &["--save-first", "a-file/x.txt"]].concat(),
        2,
        "is not a folder",
    );
    // Nothing ran for them.
    let listed = project.run(&["executions", "list", "--json"]).json();
    assert_eq!(listed["executions"], serde_json::json!([]), "{listed}");
    let saved = project
        .run(&[&run[..], &["--save-dir", "out/all", "--save-first", "out/first.txt"]].concat());
    assert_eq!(saved.code, 0, "{}", saved.transcript());
    assert!(project.path().join("out/first.txt").is_file());
}

#[test]
fn the_docker_hint_says_each_thing_once_and_only_where_it_helps() {
    let project = Project::new()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("THEORY_LOCAL_RUNTIME", "auto");
    let real = project.run(&["run", "--ref", "theory/probe@1", "--mode", "real"]);
    assert_eq!(real.code, 1, "{}", real.transcript());
    let hint = real.stderr.lines().find(|line| line.starts_with("hint: ")).unwrap_or_default();
    assert_eq!(hint.matches("--adapter-opts-json").count(), 1, "{hint}");
    assert_eq!(hint.matches("Docker Engine").count(), 1, "{hint}");
    for command in [
        &["local", "status"][..],
        &["local", "stop", "--all"],
        &["local", "logs", "--ref", "theory/probe@1"],
    ] {
        let outcome = project.run(command);
        assert_ne!(outcome.code, 0, "{}", outcome.transcript());
        assert!(outcome.stderr.contains("ERR_DOCKER"), "{}", outcome.stderr);
        assert!(!outcome.stderr.contains("--adapter-opts-json"), "{command:?}: {}", outcome.stderr);
    }
}
