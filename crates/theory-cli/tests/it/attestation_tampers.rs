//! Signed runs are checked two ways — by `theory verify`, and by an independent verifier built on
//! maintained DSSE and in-toto libraries from the Python package index
//! (`tools/attest/verify_attestation.py`) — and each tamper (an output byte, a receipt field, the
//! signature, a deleted ledger row, a signed run passed off as unsigned) is caught by both. The
//! memo cache serves only a hit whose attestation still verifies.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;

use crate::attestations::run_probe;
use crate::support::{Outcome, Project};

/// The Python with securesystemslib, in-toto-attestation and blake3.
fn verifier_python() -> String {
    std::env::var("THEORY_ATTEST_PYTHON").expect(
        "THEORY_ATTEST_PYTHON names the independent verifier's python: export THEORY_ATTEST_PYTHON=\"$(scripts/setup-attest-verifier)\" (scripts/test does)",
    )
}

/// Runs the independent verifier on `ids`: its exit code and its lines.
fn independent(project: &Project, ids: &[&str]) -> (i32, String) {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/attest/verify_attestation.py");
    let state = project.path().join(".theory");
    let output = Command::new(verifier_python())
        .arg(script)
        .arg("--key")
        .arg(state.join("keys/signing.pub.pem"))
        .arg("--store")
        .arg(state.join("artifacts"))
        .arg("--ledger")
        .arg(state.join("theory.db"))
        .args(ids)
        .output()
        .expect("the verifier's python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// Changes a run's receipt with `change` and writes it as both copies: the record's and the one
/// beside the outputs.
fn forge_receipts(project: &Project, run: &Value, change: impl FnOnce(&mut Value)) {
    let id = run["execution_id"].as_str().unwrap();
    let receipt = record(project, id, "determinism.json");
    rewrite(&receipt, |bytes| {
        let mut receipt: Value = serde_json::from_slice(&bytes).unwrap();
        change(&mut receipt);
        serde_json::to_vec(&receipt).unwrap()
    });
    let copy = std::fs::read(&receipt).unwrap();
    let output = run["outputs"][0]["path"].as_str().unwrap();
    let folder = &output[1..output.rfind('/').unwrap()];
    rewrite(&project.path().join(".theory/artifacts").join(folder).join("receipt.json"), |_| copy);
}

fn record(project: &Project, id: &str, name: &str) -> PathBuf {
    project.path().join(format!(".theory/artifacts/artifacts/execution/{id}/{name}"))
}

fn verify(project: &Project, id: &str) -> Outcome {
    project.run(&["verify", id])
}

/// Rewrites a file in place, whatever its mode.
fn rewrite(path: &Path, change: impl FnOnce(Vec<u8>) -> Vec<u8>) {
    use std::os::unix::fs::PermissionsExt as _;
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(path, change(bytes)).unwrap();
}

fn sqlite(project: &Project, statement: &str) {
    let done = Command::new(verifier_python())
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect({:?}); c.execute({statement:?}); c.commit()",
            project.path().join(".theory/theory.db").display().to_string()
        ))
        .status()
        .unwrap();
    assert!(done.success(), "{statement}");
}

#[test]
fn signed_runs_verify_both_ways_and_every_tamper_is_caught_by_both() {
    let project = Project::new();
    let made = project.run(&["keys", "generate"]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    let runs: Vec<Value> = [
        "intact",
        "output byte",
        "receipt field",
        "signature",
        "ledger row",
        "downgrade",
        "ledger says",
    ]
    .iter()
    .map(|text| run_probe(&project, text))
    .collect();
    let ids: Vec<&str> = runs.iter().map(|run| run["execution_id"].as_str().unwrap()).collect();

    // Untouched, both verifiers accept every run, and theory verify says what it checked.
    let checked = project.run(&["verify", "--all", "--require-signed", "--json"]);
    assert_eq!(checked.code, 0, "{}", checked.transcript());
    for run in checked.json()["runs"].as_array().unwrap() {
        assert_eq!(run["attestation"], "verified", "{run}");
        assert!(run["key_id"].as_str().unwrap().starts_with("ed25519:"), "{run}");
    }
    let (code, lines) = independent(&project, &ids);
    assert_eq!((code, lines.matches("ok ").count()), (0, ids.len()), "{lines}");

    // An output byte.
    let output = runs[1]["outputs"][0]["path"].as_str().unwrap();
    rewrite(&project.path().join(".theory/artifacts").join(&output[1..]), |mut bytes| {
        bytes[0] ^= 1;
        bytes
    });
    // A receipt field (both copies, as a careful forger would).
    forge_receipts(&project, &runs[2], |receipt| receipt["mode"] = "real".into());
    // The signature.
    rewrite(&record(&project, ids[3], "attestation.json"), |bytes| flip_signature(&bytes));
    // A deleted ledger row: the admission of the last run.
    let receipt: Value = serde_json::from_slice(
        &std::fs::read(record(&project, ids[4], "determinism.json")).unwrap(),
    )
    .unwrap();
    let position = receipt["ledger_position"].as_u64().unwrap();
    sqlite(&project, &format!("DELETE FROM events WHERE seq = {position}"));
    // Passed off as unsigned: the attestation removed, both receipts saying "not signed" and
    // changed at will.
    std::fs::remove_file(record(&project, ids[5], "attestation.json")).unwrap();
    forge_receipts(&project, &runs[5], |receipt| {
        receipt["attestation"] = serde_json::json!({"signed": false});
        receipt["processor_ref"] = "theory/other@1".into();
    });

    // The ledger's finishing entry rewritten to say nobody signed the run.
    sqlite(
        &project,
        &format!(
            "UPDATE events SET body = json_set(body, '$.signed_by', NULL) WHERE kind = 'execution.finished' AND execution_id = '{}'",
            ids[6]
        ),
    );

    let intact = verify(&project, ids[0]);
    assert_eq!(intact.code, 0, "{}", intact.transcript());
    assert!(intact.stdout.contains("signed by ed25519:"), "{}", intact.stdout);
    for (id, theirs, ours) in [
        (ids[1], "does not hash to its subject's digest", "hashes to"),
        (
            ids[2],
            "differs from the signed predicate in mode",
            "differs from the one signed, in: mode",
        ),
        (ids[3], "signature: VerificationError", "does not verify"),
        (ids[4], "ledger does not hold the run's admission", "ledger holds no entry at position"),
        (ids[5], "attestation.json", "the ledger records the run was signed by ed25519:"),
        (ids[6], "does not record the run as signed by", "the ledger records it not signed"),
    ] {
        let outcome = verify(&project, id);
        assert_eq!(
            outcome.code,
            1,
            "theory verify missed a tamper of {id}: {}",
            outcome.transcript()
        );
        assert!(outcome.stdout.contains(ours), "{id}: {}", outcome.transcript());
        let (code, lines) = independent(&project, &[id]);
        assert_eq!(code, 1, "the independent verifier missed a tamper of {id}: {lines}");
        assert!(lines.contains(theirs), "{id}: {lines}");
    }
}

/// Flips one bit of the envelope's first signature.
fn flip_signature(bytes: &[u8]) -> Vec<u8> {
    let mut envelope: Value = serde_json::from_slice(bytes).unwrap();
    let engine = base64::engine::general_purpose::STANDARD;
    let mut sig = engine.decode(envelope["signatures"][0]["sig"].as_str().unwrap()).unwrap();
    sig[10] ^= 0x20;
    envelope["signatures"][0]["sig"] = engine.encode(sig).into();
    serde_json::to_vec(&envelope).unwrap()
}

#[test]
fn the_memo_cache_serves_a_hit_only_while_its_attestation_verifies() {
    let project = Project::new();
    let made = project.run(&["keys", "generate"]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    let first = run_probe(&project, "memo");
    let id = first["execution_id"].as_str().unwrap().to_owned();
    let again = run_probe(&project, "memo");
    assert_eq!(again["meta"]["cached"], true, "a verified run is reused: {again}");
    // The hit's own record verifies through the run it reused.
    let checked = project.run(&["verify", "--all", "--require-signed", "--json"]);
    assert_eq!(checked.code, 0, "{}", checked.transcript());
    let runs = checked.json()["runs"].clone();
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "{runs}");
    assert!(runs.as_array().unwrap().iter().all(|run| run["attestation"] == "verified"), "{runs}");

    // The signature no longer verifies: the run is made again, not served.
    rewrite(&record(&project, &id, "attestation.json"), |bytes| flip_signature(&bytes));
    let rerun = run_probe(&project, "memo");
    assert_eq!(rerun["meta"]["cached"], false, "a hit with a broken signature was served: {rerun}");
    let fresh = rerun["execution_id"].as_str().unwrap().to_owned();
    assert_ne!(fresh, id);
    // The new run is signed, and is what the next identical run reuses.
    let reused = run_probe(&project, "memo");
    assert_eq!(
        (reused["meta"]["cached"].as_bool(), reused["execution_id"].as_str()),
        (Some(true), Some(fresh.as_str()))
    );

    // A valid attestation, of another run (another memo key, other outputs), put in its place.
    let other = run_probe(&project, "another question");
    let borrowed = std::fs::read(record(
        &project,
        other["execution_id"].as_str().unwrap(),
        "attestation.json",
    ))
    .unwrap();
    rewrite(&record(&project, &fresh, "attestation.json"), |_| borrowed);
    let replayed = run_probe(&project, "memo");
    assert_eq!(
        replayed["meta"]["cached"], false,
        "another run's attestation was accepted: {replayed}"
    );
    let last = replayed["execution_id"].as_str().unwrap();

    // Without the attestation at all, the same: a hit the project cannot check is not served.
    std::fs::remove_file(record(&project, last, "attestation.json")).unwrap();
    let unsigned_hit = run_probe(&project, "memo");
    assert_eq!(unsigned_hit["meta"]["cached"], false, "{unsigned_hit}");
}
