//! Whom `theory verify` and the memo cache trust: the project's signing key, public keys in
//! `registry/keys/`, `[trust] public_keys` in theory.toml, and `--key`; a third party with only
//! the public key and the store checks a run; a private key where a public one belongs is refused.

use serde_json::Value;

use crate::support::Project;

fn signed_run(project: &Project) -> String {
    let made = project.run(&["keys", "generate"]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    crate::attestations::run_probe(project, "trust")["execution_id"].as_str().unwrap().to_owned()
}

#[test]
fn a_run_verifies_with_whichever_trusted_place_holds_its_public_key_and_not_without_one() {
    let project = Project::new();
    let id = signed_run(&project);
    let keys = project.path().join(".theory/keys");
    let public = std::fs::read_to_string(keys.join("signing.pub.pem")).unwrap();
    // The verifier has the store and the public key only: the secret goes away.
    let aside = project.path().join("public.pem");
    std::fs::write(&aside, &public).unwrap();
    std::fs::remove_dir_all(&keys).unwrap();

    let untrusted = project.run(&["verify", &id]);
    assert_eq!(untrusted.code, 1, "{}", untrusted.transcript());
    assert!(
        untrusted.stdout.contains("no public key is trusted to check it"),
        "{}",
        untrusted.stdout
    );

    let other = project.path().join("other.pem");
    let stranger = theory_core::attestation::SigningKey::generate().unwrap();
    std::fs::write(&other, stranger.public().to_pem()).unwrap();
    let wrong = project.run(&["verify", &id, "--key", other.to_str().unwrap()]);
    assert_eq!(wrong.code, 1, "{}", wrong.transcript());
    assert!(wrong.stdout.contains("is not a trusted key"), "{}", wrong.stdout);

    let given = project.run(&["verify", &id, "--key", aside.to_str().unwrap(), "--json"]);
    assert_eq!(given.code, 0, "{}", given.transcript());
    assert_eq!(given.json()["runs"][0]["attestation"], "verified");

    std::fs::create_dir_all(project.path().join("registry/keys")).unwrap();
    std::fs::write(project.path().join("registry/keys/ci.pem"), &public).unwrap();
    let listed = project.run(&["keys", "trusted", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.transcript());
    let trusted: Value = listed.json()["trusted_keys"].clone();
    assert!(trusted[0]["source"].as_str().unwrap().ends_with("registry/keys/ci.pem"), "{trusted}");
    assert_eq!(project.run(&["verify", &id]).code, 0, "trusted through registry/keys/");
    std::fs::remove_file(project.path().join("registry/keys/ci.pem")).unwrap();

    let table = format!("[trust]\npublic_keys = [\"\"\"\n{public}\"\"\"]\n");
    std::fs::write(project.path().join("theory.toml"), table).unwrap();
    let through_file = project.run(&["verify", &id]);
    assert_eq!(through_file.code, 0, "trusted through theory.toml: {}", through_file.transcript());
}

#[test]
fn a_private_key_where_a_public_one_belongs_is_refused_with_a_hint() {
    let project = Project::new();
    let made = project.run(&["keys", "generate"]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    let secret = project.path().join(".theory/keys/signing.pem");
    let passed = project.run(&["verify", "--all", "--key", secret.to_str().unwrap()]);
    assert_eq!(passed.code, 2, "{}", passed.transcript());
    assert!(passed.stderr.contains("only public halves belong"), "{}", passed.stderr);
    assert!(passed.stderr.contains("hint: "), "{}", passed.stderr);

    std::fs::create_dir_all(project.path().join("registry/keys")).unwrap();
    std::fs::copy(&secret, project.path().join("registry/keys/leaked.pem")).unwrap();
    for args in [&["keys", "trusted"][..], &["verify", "--all"]] {
        let refused = project.run(args);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.transcript());
        assert!(refused.stderr.contains("only public halves belong"), "{}", refused.stderr);
    }
}

#[test]
fn an_attestation_re_signed_with_another_trusted_key_is_caught_by_the_ledger_s_record() {
    use theory_core::attestation::{Envelope, SigningKey};
    let project = Project::new();
    let id = signed_run(&project);
    // A second key the project also trusts (a CI key, say) re-signs the same statement.
    let other = SigningKey::generate().unwrap();
    std::fs::create_dir_all(project.path().join("registry/keys")).unwrap();
    std::fs::write(project.path().join("registry/keys/ci.pem"), other.public().to_pem()).unwrap();
    let file =
        project.path().join(format!(".theory/artifacts/artifacts/execution/{id}/attestation.json"));
    let stored: Envelope = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let listed = project.run(&["keys", "trusted", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.transcript());
    let keys: Vec<_> = listed.json()["trusted_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["key_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let own = keys.iter().find(|key| *key != other.public().key_id()).unwrap().clone();
    let pem = std::fs::read_to_string(project.path().join(".theory/keys/signing.pub.pem")).unwrap();
    let statement =
        stored.verify(&[theory_core::attestation::PublicKey::from_pem(&pem).unwrap()]).unwrap();
    std::fs::set_permissions(
        &file,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(&file, other.sign(&statement).to_canonical_json()).unwrap();

    let checked = project.run(&["verify", &id]);
    assert_eq!(checked.code, 1, "{}", checked.transcript());
    let expected = format!(
        "the attestation is signed by {}; the ledger records {own} signed the run",
        other.public().key_id()
    );
    assert!(checked.stdout.contains(&expected), "{}", checked.stdout);
}
