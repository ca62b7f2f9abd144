//! `theory keys generate|show`: the signing key is made owner-only, never printed, never
//! replaced by accident, refused when others may read it, and may come from
//! `THEORY_SIGNING_KEY` (PEM text or a file's path).

use std::os::unix::fs::PermissionsExt as _;

use crate::support::Project;

#[test]
fn a_key_is_made_owner_only_and_only_its_public_half_is_ever_printed() {
    let project = Project::new();
    let none = project.run(&["keys", "show"]);
    assert_ne!(none.code, 0, "{}", none.transcript());
    assert!(
        none.stderr.contains("no signing key") && none.stderr.contains("theory keys generate"),
        "{}",
        none.transcript()
    );

    let made = project.run(&["keys", "generate", "--json"]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    let made = made.json();
    let key_id = made["key_id"].as_str().expect("a key id").to_owned();
    assert!(key_id.starts_with("ed25519:"), "{made}");
    let private = project.path().join(".theory/keys/signing.pem");
    let file_mode = std::fs::metadata(&private).expect("the key file").permissions().mode() & 0o777;
    assert_eq!(file_mode, 0o600, "owner-only");
    let folder = std::fs::metadata(private.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    assert_eq!(folder, 0o700);
    let public =
        std::fs::read_to_string(project.path().join(".theory/keys/signing.pub.pem")).unwrap();
    assert_eq!(made["public_key_pem"], public.as_str());

    let shown = project.run(&["keys", "show"]);
    assert_eq!(shown.code, 0, "{}", shown.transcript());
    assert_eq!(shown.stdout.trim(), public.trim(), "show prints the public key as PEM");
    for outcome in [&shown, &project.run(&["keys", "show", "--json"])] {
        assert!(!outcome.stdout.contains("PRIVATE KEY") && !outcome.stderr.contains("PRIVATE KEY"));
    }

    // Not replaced by accident; replaced on purpose, with a new id.
    let again = project.run(&["keys", "generate"]);
    assert_eq!(again.code, 2, "{}", again.transcript());
    assert!(again.stderr.contains("--force"), "{}", again.transcript());
    let replaced = project.run(&["keys", "generate", "--force", "--json"]);
    assert_eq!(replaced.code, 0, "{}", replaced.transcript());
    assert_ne!(replaced.json()["key_id"].as_str(), Some(key_id.as_str()));
    // The old public half is kept beside it, not trusted.
    let retired = replaced.json()["retired_public_key"].as_str().unwrap().to_owned();
    let kept = std::fs::read_to_string(&retired).unwrap();
    let kept = theory_core::attestation::PublicKey::from_pem(&kept).unwrap();
    assert_eq!(kept.key_id(), key_id);
    let listed = project.run(&["keys", "trusted", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.transcript());
    let trusted = listed.json().to_string();
    assert!(!trusted.contains(&key_id), "a retired key is not trusted: {trusted}");
    let new_id = replaced.json()["key_id"].as_str().unwrap().to_owned();
    assert!(trusted.contains(&new_id), "the new key is trusted: {trusted}");

    // A key others may read is refused, saying how to mend it.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = project.run(&["keys", "show"]);
    assert_eq!(refused.code, 2, "{}", refused.transcript());
    assert!(refused.stderr.contains("chmod 600"), "{}", refused.transcript());
}

#[test]
fn the_key_may_come_from_theory_signing_key_as_pem_or_a_path() {
    let maker = Project::new();
    let made = maker.run(&["keys", "generate", "--json"]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    let key_id = made.json()["key_id"].as_str().unwrap().to_owned();
    let private = maker.path().join(".theory/keys/signing.pem");
    let pem = std::fs::read_to_string(&private).unwrap();

    let by_text = Project::new().env("THEORY_SIGNING_KEY", &pem);
    let shown = by_text.run(&["keys", "show", "--json"]);
    assert_eq!(shown.code, 0, "{}", shown.transcript());
    assert_eq!(
        (shown.json()["key_id"].as_str(), shown.json()["source"].as_str()),
        (Some(key_id.as_str()), Some("THEORY_SIGNING_KEY"))
    );

    let by_path = Project::new().env("THEORY_SIGNING_KEY", private.to_str().unwrap());
    let shown = by_path.run(&["keys", "show", "--json"]);
    assert_eq!(shown.code, 0, "{}", shown.transcript());
    assert_eq!(shown.json()["key_id"].as_str(), Some(key_id.as_str()));

    let broken = Project::new().env(
        "THEORY_SIGNING_KEY",
        "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
    );
    let refused = broken.run(&["keys", "show"]);
    assert_eq!(refused.code, 2, "{}", refused.transcript());
    assert!(refused.stderr.contains("THEORY_SIGNING_KEY"), "{}", refused.transcript());
    assert!(
        !refused.stderr.contains("nope"),
        "the variable's value is never echoed: {}",
        refused.transcript()
    );
}
