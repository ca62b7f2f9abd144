//! Every successful run leaves an attestation beside its receipt when the project has a signing
//! key: an in-toto statement of its outputs and receipt in a DSSE envelope, signed with
//! Ed25519; without a key the run is unsigned and its receipt says so.

use serde_json::Value;
use theory_core::attestation::{Envelope, PublicKey};

use crate::support::Project;

fn record(project: &Project, id: &str, name: &str) -> Option<String> {
    std::fs::read_to_string(
        project.path().join(format!(".theory/artifacts/artifacts/execution/{id}/{name}")),
    )
    .ok()
}

/// A mock run of the probe with `text`: its envelope.
pub(crate) fn run_probe(project: &Project, text: &str) -> Value {
    let inputs = format!(r#"{{"text":"{text}"}}"#);
    let ran = project.run(&[
        "run",
        "--ref",
        "theory/probe@1",
        "--mode",
        "mock",
        "--json",
        "--inputs-json",
        &inputs,
    ]);
    assert_eq!(ran.code, 0, "{}", ran.transcript());
    ran.json()
}

#[test]
fn without_a_key_a_run_is_unsigned_and_its_receipt_says_so() {
    let project = Project::new();
    let envelope = run_probe(&project, "unsigned");
    let id = envelope["execution_id"].as_str().unwrap();
    let receipt: Value =
        serde_json::from_str(&record(&project, id, "determinism.json").unwrap()).unwrap();
    assert_eq!(receipt["attestation"], serde_json::json!({"signed": false}), "{receipt}");
    assert!(record(&project, id, "attestation.json").is_none());
    let checked = project.run(&["verify", id]);
    assert_eq!(checked.code, 0, "{}", checked.transcript());
    assert!(checked.stdout.contains("unsigned (recorded so)"), "{}", checked.stdout);
    let required = project.run(&["verify", "--require-signed", id]);
    assert_eq!(required.code, 1, "{}", required.transcript());
    assert!(required.stdout.contains("signatures are required"), "{}", required.stdout);
}

#[test]
fn a_signed_run_s_attestation_verifies_with_the_public_key_and_names_its_outputs_and_receipt() {
    let project = Project::new();
    let made = project.run(&["keys", "generate", "--json"]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    let public = PublicKey::from_pem(made.json()["public_key_pem"].as_str().unwrap()).unwrap();
    let envelope = run_probe(&project, "signed");
    let id = envelope["execution_id"].as_str().unwrap();

    let stored: Envelope =
        serde_json::from_str(&record(&project, id, "attestation.json").expect("an attestation"))
            .unwrap();
    let statement = stored.verify(std::slice::from_ref(&public)).expect("it verifies");
    let receipt: Value =
        serde_json::from_str(&record(&project, id, "determinism.json").unwrap()).unwrap();
    assert_eq!(statement.predicate, receipt, "the predicate is the receipt");
    assert_eq!(receipt["attestation"]["key_id"], public.key_id());
    let subjects: Vec<(String, String)> = statement
        .subject
        .iter()
        .map(|subject| (subject.name.clone(), format!("b3:{}", subject.digest["blake3"])))
        .collect();
    let outputs: Vec<(String, String)> = envelope["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|output| {
            (
                output["path"].as_str().unwrap().to_owned(),
                output["cid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(subjects, outputs, "the subjects are the outputs");
    let index = record(&project, id, "outputs.json").unwrap();
    assert!(!index.contains("attestation"), "never listed as an output: {index}");

    // Another key does not verify it.
    let other = theory_core::attestation::SigningKey::generate().unwrap();
    assert!(stored.verify(std::slice::from_ref(other.public())).is_err());
}

#[test]
fn the_api_serves_a_run_s_attestation_and_says_why_an_unsigned_run_has_none() {
    let project = Project::new();
    let made = project.run(&["keys", "generate", "--json"]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    let public = PublicKey::from_pem(made.json()["public_key_pem"].as_str().unwrap()).unwrap();
    let server = crate::serve::Server::start(&project, &[]);
    let (status, run) = server.submit(
        &serde_json::json!({"ref": "theory/probe@1", "inputs": {"text": "over http"}}),
        &[("Prefer", "wait")],
    );
    assert_eq!((status, run["status"].as_str()), (201, Some("succeeded")), "{run}");
    let id = run["id"].as_str().unwrap();
    let (code, stored) = server.request("GET", &format!("/v1/runs/{id}/attestation"), &[], "");
    assert_eq!(code, 200, "{stored}");
    let envelope: Envelope = serde_json::from_value(stored).unwrap();
    let statement = envelope.verify(std::slice::from_ref(&public)).expect("it verifies");
    assert_eq!(statement.predicate["execution_id"], id);
    let (_, verified) = server.request("GET", &format!("/v1/runs/{id}/verify"), &[], "");
    assert_eq!(
        (verified["attestation"].as_str(), verified["key_id"].as_str()),
        (Some("verified"), Some(public.key_id())),
        "the server checks the signature with the keys it trusts: {verified}"
    );
    drop(server);

    let unsigned = Project::new();
    let server = crate::serve::Server::start(&unsigned, &[]);
    let (_, run) = server.submit(
        &serde_json::json!({"ref": "theory/probe@1", "inputs": {"text": "unsigned"}}),
        &[("Prefer", "wait")],
    );
    let id = run["id"].as_str().unwrap();
    let (status, answer) = server.request("GET", &format!("/v1/runs/{id}/attestation"), &[], "");
    assert_eq!(status, 404, "{answer}");
    let (_, verified) = server.request("GET", &format!("/v1/runs/{id}/verify"), &[], "");
    assert_eq!(
        (verified["ok"].as_bool(), verified["attestation"].as_str()),
        (Some(true), Some("unsigned"))
    );
    assert!(
        answer["hint"].as_str().unwrap_or_default().contains("theory keys generate"),
        "{answer}"
    );
}
