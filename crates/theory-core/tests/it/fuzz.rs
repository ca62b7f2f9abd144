//! Fuzzing the parsers of untrusted text with shrinking (proptest): world paths, write prefixes,
//! processor refs and registry YAML take arbitrary and mutated input without panicking, and what
//! they accept holds their rules. The case count is fixed (`FUZZ_CASES`, default 5000 per
//! property), so `scripts/test` spends a bounded time here; a failure shrinks to a minimal input.

use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::test_runner::Config;
use theory_core::registry::{DocumentKind, Registry, Source};
use theory_core::{ProcessorRef, RESERVED_FACETS, WorldPath, WritePrefix};
use theory_protocol::is_refused_path_char;

fn config() -> Config {
    let cases =
        std::env::var("FUZZ_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(5000);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// Text that looks like a path: slashes, dots, percents, facets, and any character at all.
fn path_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just("/artifacts/".to_owned()),
        Just("/artifacts/execution/".to_owned()),
        Just("/artifacts/inputs/".to_owned()),
        Just("/streams/".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("%".to_owned()),
        Just("%2F".to_owned()),
        Just("%E2%80%AE".to_owned()),
        Just("{execution_id}".to_owned()),
        "[a-zA-Z0-9._ -]{1,8}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

/// The built-in probe spec with random edits: characters replaced, cut, inserted, lines moved.
fn mutated_spec() -> impl Strategy<Value = String> {
    let spec = include_str!("../../../../registry/processors/theory-probe.yaml");
    let edit = (any::<prop::sample::Index>(), 0..4u8, any::<char>());
    prop::collection::vec(edit, 1..8).prop_map(move |edits| {
        let mut chars: Vec<char> = spec.chars().collect();
        for (index, kind, c) in edits {
            if chars.is_empty() {
                break;
            }
            let at = index.index(chars.len());
            match kind {
                0 => chars[at] = c,
                1 => {
                    chars.remove(at);
                }
                2 => chars.insert(at, c),
                _ => {
                    let end = (at + 40).min(chars.len());
                    let cut: Vec<char> = chars.drain(at..end).collect();
                    chars.splice(0..0, cut);
                }
            }
        }
        chars.into_iter().collect()
    })
}

fn load(text: String) {
    let source = Source {
        origin: "registry/processors/fuzz.yaml".into(),
        kind: DocumentKind::Processor,
        text,
        builtin: false,
    };
    // Any outcome but a panic is fine: the errors name the file.
    if let Err(errors) = Registry::load(vec![source]) {
        assert!(errors.iter().all(|error| error.origin == "registry/processors/fuzz.yaml"));
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn world_paths_never_panic_and_accept_only_clean_paths(raw in path_text()) {
        if let Ok(path) = raw.parse::<WorldPath>() {
            let text = path.as_str();
            prop_assert!(text.starts_with("/artifacts/") || text.starts_with("/streams/"));
            prop_assert!(!text.chars().any(is_refused_path_char), "{text:?}");
            prop_assert!(!text.split('/').skip(1).any(|segment| segment.is_empty() || segment == "." || segment == ".."));
            let again = text.parse::<WorldPath>().ok();
            prop_assert_eq!(again, Some(path.clone()));
        }
    }

    #[test]
    fn write_prefixes_never_panic_and_stay_out_of_the_record_facets(raw in path_text()) {
        if let Ok(prefix) = raw.parse::<WritePrefix>() {
            let lowered = prefix.as_str().to_lowercase();
            prop_assert!(lowered.starts_with("/artifacts/") && lowered.ends_with('/'));
            prop_assert!(!RESERVED_FACETS.iter().any(|facet| lowered.starts_with(facet)), "{prefix}");
            prop_assert!(!prefix.as_str().chars().any(is_refused_path_char));
        }
    }

    #[test]
    fn refs_never_panic(raw in "\\PC{0,40}|[a-z/@._-]{0,20}") {
        if let Ok(reference) = raw.parse::<ProcessorRef>() {
            let again = reference.as_str().parse::<ProcessorRef>().ok();
            prop_assert_eq!(again, Some(reference.clone()));
        }
    }

    #[test]
    fn mutated_specs_never_panic(text in mutated_spec()) {
        load(text);
    }

    #[test]
    fn arbitrary_yaml_never_panics(text in "\\PC{0,200}") {
        load(text);
    }
}

#[test]
fn deeply_nested_yaml_is_an_error_not_a_crash() {
    for depth in [1_000, 100_000] {
        load(format!("ref: a/b@1\ninputs: {}{}", "[".repeat(depth), "]".repeat(depth)));
        load(format!("ref: a/b@1\ninputs: {}1", "- ".repeat(depth)));
        load(format!("ref: a/b@1\ninputs: {}x{}", "{a: ".repeat(depth), "}".repeat(depth)));
    }
}

#[test]
fn a_billion_laughs_is_refused_quickly() {
    let mut text = String::from("ref: a/b@1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..12 {
        let previous = format!("*a{}", level - 1);
        let list = [previous.as_str(); 10].join(", ");
        writeln!(text, "a{level}: &a{level} [{list}]").unwrap();
    }
    let started = std::time::Instant::now();
    load(text);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
}
