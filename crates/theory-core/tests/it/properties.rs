//! Properties of the types that cannot hold bad values.

use proptest::prelude::*;
use theory_core::{ProcessorRef, WorldPath, WritePrefix};

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ._-]{1,12}",
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just(String::new()),
        Just("%2e%2e".to_owned()),
        Just("%2F".to_owned()),
        Just("e\u{301}".to_owned()),
        Just(".git".to_owned()),
        "[%a-f0-9]{1,6}",
        "\\PC{1,4}",
    ]
}

proptest! {
    #[test]
    fn canonicalization_is_idempotent(segments in prop::collection::vec(segment(), 1..6), facet in prop_oneof![Just("artifacts"), Just("streams"), Just("other")]) {
        let raw = format!("/{facet}/{}", segments.join("/"));
        if let Ok(path) = raw.parse::<WorldPath>() {
            let again: WorldPath = path.as_str().parse().expect("a canonical path parses");
            prop_assert_eq!(&again, &path);
            prop_assert!(path.as_str().starts_with("/artifacts/") || path.as_str().starts_with("/streams/"));
        }
    }

    #[test]
    fn nothing_escapes_its_prefix(segments in prop::collection::vec(segment(), 1..6)) {
        let prefix: WritePrefix = "/artifacts/outputs/run/".parse().unwrap();
        let relative = segments.join("/");
        if let Ok(joined) = WorldPath::join(&prefix, &relative) {
            prop_assert!(prefix.contains(&joined), "{} escaped {}", joined, prefix);
            prop_assert!(!joined.as_str().split('/').any(|segment| segment == ".." || segment == "."));
        }
    }

    #[test]
    fn refs_round_trip(namespace in "[a-z0-9][a-z0-9_-]{0,10}", name in "[a-z0-9][a-z0-9_-]{0,10}", version in "[0-9a-zA-Z._-]{1,6}") {
        let text = format!("{namespace}/{name}@{version}");
        let reference: ProcessorRef = text.parse().expect("valid ref");
        prop_assert_eq!(reference.as_str(), text.as_str());
        prop_assert_eq!(reference.slug(), format!("{namespace}_{name}"));
    }
}
