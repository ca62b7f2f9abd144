//! `theory verify` and `theory ledger verify` catch what the chain alone did not: outputs,
//! indexes and receipts changed in the store, a plan's money changed in the database, a ledger
//! cut short or replaced, a damaged or emptied ledger file.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;

use crate::support::{Outcome, Project};

fn probe(project: &Project, text: &str) -> Value {
    let inputs = serde_json::json!({"text": text}).to_string();
    let outcome =
        project.run(&["run", "--ref", "theory/probe@1", "--inputs-json", &inputs, "--json"]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    outcome.json()
}

fn object_file(project: &Project, path: &str) -> std::path::PathBuf {
    project.path().join(".theory/artifacts").join(path.trim_start_matches('/'))
}

/// Replaces an object's bytes behind Theory's back (as anyone who can write the store could).
fn overwrite(project: &Project, path: &str, bytes: &[u8]) {
    let file = object_file(project, path);
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, bytes).unwrap();
}

fn sql(project: &Project, statements: &[&str]) {
    let database = format!("sqlite://{}", project.path().join(".theory/theory.db").display());
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(&database).await.unwrap();
        for statement in statements {
            sqlx::query(statement).execute(&mut connection).await.unwrap();
        }
        connection.close().await.unwrap();
    });
}

fn verify(project: &Project, args: &[&str]) -> Outcome {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    project.run(&all)
}

#[test]
fn theory_verify_rehashes_outputs_indexes_and_receipts() {
    let project = Project::new();
    let first = probe(&project, "one");
    let second = probe(&project, "two");
    let (a, b) =
        (first["execution_id"].as_str().unwrap(), second["execution_id"].as_str().unwrap());
    let clean = verify(&project, &["--all", "--json"]);
    assert_eq!(clean.code, 0, "{}", clean.transcript());
    let report = clean.json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["runs"].as_array().unwrap().len(), 2);
    assert_eq!(report["runs"][0]["outputs_checked"], 2, "{report}");
    let plain = verify(&project, &[a]);
    assert!(plain.stdout.starts_with(&format!("ok     {a}")), "{}", plain.transcript());

    // One output byte changed: the run drifts, naming the path; the other run still holds.
    let echo = first["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"].as_str().unwrap().ends_with("echo.txt"))
        .unwrap();
    overwrite(&project, echo["path"].as_str().unwrap(), b"onE");
    let drifted = verify(&project, &[a, b, "--json"]);
    assert_eq!(drifted.code, 1, "{}", drifted.transcript());
    let report = drifted.json();
    assert_eq!(report["runs"][1]["drifts"], serde_json::json!([]));
    let drifts = report["runs"][0]["drifts"].to_string();
    assert!(drifts.contains("echo.txt hashes to"), "{drifts}");

    // A receipt field changed, and the copy beside the outputs no longer matches.
    let receipt = format!("/artifacts/execution/{b}/determinism.json");
    let text = std::fs::read_to_string(object_file(&project, &receipt)).unwrap();
    overwrite(
        &project,
        &receipt,
        text.replace("\"mode\":\"mock\"", "\"mode\":\"real\"").as_bytes(),
    );
    let drifted = verify(&project, &[b]);
    assert_eq!(drifted.code, 1, "{}", drifted.transcript());
    assert!(drifted.stdout.contains("differs from"), "{}", drifted.transcript());
    assert!(drifted.stderr.contains("hint: "), "{}", drifted.transcript());

    // An output removed, an index rewritten.
    let meta = second["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"].as_str().unwrap().ends_with("meta.json"))
        .unwrap();
    std::fs::remove_file(object_file(&project, meta["path"].as_str().unwrap())).unwrap();
    let drifted = verify(&project, &[b]);
    assert!(drifted.stdout.contains("missing from the store"), "{}", drifted.transcript());
    overwrite(&project, second["index_path"].as_str().unwrap(), b"{\"outputs\":[]}");
    let drifted = verify(&project, &[b]);
    assert!(
        drifted.stdout.contains("does not list what the run's envelope lists"),
        "{}",
        drifted.transcript()
    );

    let usage = verify(&project, &[]);
    assert_eq!(usage.code, 2, "{}", usage.transcript());
    assert!(usage.stderr.contains("--all"), "{}", usage.stderr);
}

#[test]
fn theory_verify_all_rehashes_attachments() {
    let project = Project::new();
    let photo = crate::attachments::with_photo(&project);
    let outcome = crate::attachments::thumbnail(&project, &[]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    assert_eq!(verify(&project, &["--all"]).code, 0);
    let stored =
        crate::support::files_under(&project.path().join(".theory/artifacts/artifacts/inputs"));
    assert_eq!(stored.len(), 1);
    let mut tampered = photo.clone();
    tampered[40] ^= 1;
    std::fs::remove_file(&stored[0]).unwrap();
    std::fs::write(&stored[0], tampered).unwrap();
    let drifted = verify(&project, &["--all"]);
    assert_eq!(drifted.code, 1, "{}", drifted.transcript());
    assert!(drifted.stdout.contains("not to the CID in its path"), "{}", drifted.transcript());
}

#[test]
fn ledger_verify_recomputes_plans_from_the_event_log() {
    let project = Project::new();
    assert_eq!(
        project.run(&["plan", "create", "--key", "team", "--budget-usd-micro", "5000"]).code,
        0
    );
    assert_eq!(project.run(&["ledger", "verify"]).code, 0);
    sql(&project, &["UPDATE plans SET budget_usd_micro = 5000000 WHERE plan_key = 'team'"]);
    let tampered = project.run(&["ledger", "verify", "--json"]);
    assert_eq!(tampered.code, 1, "{}", tampered.transcript());
    let report = tampered.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["drifts"][0]["subject"], "plan team");
    assert_eq!(report["drifts"][0]["field"], "budget_usd_micro");
    assert_eq!(
        (report["drifts"][0]["table"].as_str(), report["drifts"][0]["log"].as_str()),
        (Some("5000000"), Some("5000"))
    );
    // An execution marked successful behind the ledger's back.
    let project = Project::new();
    let outcome = project.run(&[
        "run",
        "--ref",
        "theory/probe@1",
        "--inputs-json",
        r#"{"fail":{"code":"ERR_PROVIDER","message":"no"}}"#,
    ]);
    assert_eq!(outcome.code, 1);
    sql(&project, &["UPDATE executions SET status = 'success', error_code = NULL"]);
    let tampered = project.run(&["ledger", "verify"]);
    assert_eq!(tampered.code, 1, "{}", tampered.transcript());
    assert!(
        tampered.stderr.contains("status: the table holds success, the event log says error"),
        "{}",
        tampered.stderr
    );
}

#[test]
fn a_ledger_cut_short_or_replaced_is_caught_by_the_receipts() {
    let project = Project::new();
    probe(&project, "one");
    let last = probe(&project, "two");
    assert_eq!(project.run(&["ledger", "verify"]).code, 0);
    // The last run's transactions lost (as garbage in the WAL drops them): the chain that is
    // left is whole, the tables agree with it, but the receipt in the store points past its end.
    let id = last["execution_id"].as_str().unwrap();
    sql(
        &project,
        &[
            &format!(
                "DELETE FROM events WHERE seq >= (SELECT MIN(seq) FROM events WHERE execution_id = '{id}')"
            ),
            &format!("DELETE FROM executions WHERE id = '{id}'"),
        ],
    );
    let short = project.run(&["ledger", "verify"]);
    assert_eq!(short.code, 1, "{}", short.transcript());
    assert!(
        short.stderr.contains(&format!("the receipt of execution {id} records ledger position")),
        "{}",
        short.stderr
    );
    assert!(short.stderr.contains("cut short or replaced"), "{}", short.stderr);
    // The ledger deleted (its files together): a new one starts, and the receipts say it is not
    // the old one.
    for file in ["theory.db", "theory.db-wal", "theory.db-shm"] {
        let _ = std::fs::remove_file(project.path().join(".theory").join(file));
    }
    let replaced = project.run(&["ledger", "verify"]);
    assert_eq!(replaced.code, 1, "{}", replaced.transcript());
    assert!(replaced.stderr.contains("cut short or replaced"), "{}", replaced.stderr);
}

/// Runs a command and checks it fails at once with one error line naming the ledger file and a
/// hint of what to do.
fn refused_at_once(project: &Project, what: &str) {
    for args in
        [&["executions", "list"][..], &["ledger", "verify"], &["run", "--ref", "theory/probe@1"]]
    {
        let started = Instant::now();
        let outcome = project.run(args);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: {args:?} took {:?}",
            started.elapsed()
        );
        assert_ne!(outcome.code, 0, "{what}: {}", outcome.transcript());
        let lines: Vec<&str> = outcome.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{what}: {args:?}: {}", outcome.stderr);
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains("theory.db"),
            "{what}: {}",
            outcome.stderr
        );
        assert!(
            lines[1].starts_with("hint: ") && lines[1].contains("away together"),
            "{what}: {}",
            outcome.stderr
        );
    }
}

#[test]
fn a_damaged_or_emptied_ledger_fails_at_once_and_is_never_replaced() {
    let project = Project::new();
    probe(&project, "one");
    let file = project.path().join(".theory/theory.db");
    // A backup of a SQLite ledger in WAL mode is the file and its write-ahead log.
    let wal = project.path().join(".theory/theory.db-wal");
    let original = std::fs::read(&file).unwrap();
    let original_wal = std::fs::read(&wal).ok();
    // Emptied: SQLite would take it for a new database; Theory refuses.
    std::fs::write(&file, b"").unwrap();
    refused_at_once(&project, "empty");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 0, "the emptied ledger was re-created");
    // Damaged: its header overwritten.
    let mut damaged = original.clone();
    damaged[..16].copy_from_slice(b"not a database!\0");
    std::fs::write(&file, &damaged).unwrap();
    refused_at_once(&project, "damaged");
    // Another SQLite database in its place.
    std::fs::remove_file(&file).unwrap();
    let other = format!("sqlite://{}?mode=rwc", file.display());
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(&other).await.unwrap();
        sqlx::query("CREATE TABLE notes (x TEXT)").execute(&mut connection).await.unwrap();
        connection.close().await.unwrap();
    });
    refused_at_once(&project, "foreign");
    // Moved away without its write-ahead log: a new ledger beside the old log could take the
    // old log's pages, so none is started.
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&wal, original_wal.as_deref().unwrap_or(b"a log")).unwrap();
    refused_at_once(&project, "orphaned write-ahead log");
    assert!(!file.exists(), "a ledger was started beside an orphaned write-ahead log");
    // Restored from the backup, it works again.
    std::fs::write(&file, &original).unwrap();
    let _ = std::fs::remove_file(project.path().join(".theory/theory.db-shm"));
    match &original_wal {
        Some(bytes) => std::fs::write(&wal, bytes).unwrap(),
        None => {
            let _ = std::fs::remove_file(&wal);
        }
    }
    let restored = project.run(&["ledger", "verify"]);
    assert_eq!(restored.code, 0, "{}", restored.transcript());
}

#[test]
fn a_run_the_ledger_cannot_record_is_not_reported_as_a_success() {
    let url = crate::support::postgres_database("theory_unrecorded");
    let project = Project::new().env("DATABASE_URL", &url);
    assert_eq!(project.run(&["executions", "list"]).code, 0, "the ledger is created");
    // The database refuses to close any run from now on (as a full disk or a lost server would).
    crate::support::postgres(
        &url,
        &["ALTER TABLE executions ADD CONSTRAINT stays_open CHECK (status = 'running') NOT VALID"],
    );
    let outcome = project.run(&[
        "run",
        "--ref",
        "theory/probe@1",
        "--inputs-json",
        r#"{"text":"lost"}"#,
        "--json",
    ]);
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    let envelope = outcome.json();
    assert_eq!(envelope["error"]["code"], "ERR_LEDGER", "{envelope}");
    assert!(outcome.stderr.contains("could not record"), "{}", outcome.stderr);
    // Nothing of the run stays visible: no outputs, no index, no receipt.
    let artifacts = project.path().join(".theory/artifacts/artifacts");
    assert_eq!(
        crate::support::files_under(&artifacts.join("outputs")),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(
        crate::support::files_under(&artifacts.join("execution")),
        Vec::<std::path::PathBuf>::new()
    );
    // Once the database accepts writes again, the next command closes the record as failed.
    crate::support::postgres(&url, &["ALTER TABLE executions DROP CONSTRAINT stays_open"]);
    let listed = project.run(&["executions", "list", "--json"]).json();
    assert_eq!(listed["executions"][0]["status"], "error", "{listed}");
}
