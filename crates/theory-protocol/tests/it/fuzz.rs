//! Fuzzing what a peer sends (proptest, with shrinking): text frames, the first frame of a
//! connection, output paths and inputs take arbitrary and mutated input without panicking, and a
//! frame that parses says the same after a round trip. Bounded: `FUZZ_CASES` cases per property
//! (default 5000).

use proptest::prelude::*;
use proptest::test_runner::Config;
use theory_protocol::{Frame, RunOpen, is_refused_path_char, normalize_inputs, validate_relpath};

fn config() -> Config {
    let cases =
        std::env::var("FUZZ_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(5000);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// Real frames of every kind, then edited at random.
fn mutated_frame() -> impl Strategy<Value = String> {
    let frames = [
        r#"{"kind":"RunOpen","role":"client","execution_id":"E1","payload":{"mode":"mock","inputs":{"schema":"v1","params":{}},"write_prefix":"/artifacts/outputs/x/","files":{}}}"#,
        r#"{"kind":"Ack","execution_id":"E1"}"#,
        r#"{"kind":"Token","text":"hi"}"#,
        r#"{"kind":"Event","phase":"control_noop","op":"pause"}"#,
        r#"{"kind":"Log","level":"info","msg":"m"}"#,
        r#"{"kind":"Output","path":"a/b.txt","cid":"b3:0000000000000000000000000000000000000000000000000000000000000000","size_bytes":3,"mime":"text/plain"}"#,
        r#"{"kind":"Control","op":"cancel"}"#,
        r#"{"kind":"RunResult","status":"success","execution_id":"E1","outputs":[],"index_path":"/artifacts/execution/E1/outputs.json","meta":{}}"#,
    ];
    let edit = (any::<prop::sample::Index>(), 0..3u8, any::<char>());
    (prop::sample::select(frames.to_vec()), prop::collection::vec(edit, 0..6)).prop_map(
        |(frame, edits)| {
            let mut chars: Vec<char> = frame.chars().collect();
            for (index, kind, c) in edits {
                let at = index.index(chars.len().max(1)).min(chars.len().saturating_sub(1));
                match kind {
                    0 if !chars.is_empty() => chars[at] = c,
                    1 if !chars.is_empty() => {
                        chars.remove(at);
                    }
                    _ => chars.insert(at, c),
                }
            }
            chars.into_iter().collect()
        },
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn frames_never_panic_and_round_trip(text in prop_oneof![mutated_frame(), "\\PC{0,120}"]) {
        if let Ok((frame, t)) = Frame::from_json(&text) {
            let again = Frame::from_json(&frame.to_json(t)).map(|(frame, _)| frame);
            prop_assert_eq!(again.ok(), Some(frame));
        }
        let _ = RunOpen::parse_first_frame(&text);
    }

    #[test]
    fn relpaths_never_panic_and_accept_only_clean_ones(relpath in "\\PC{0,30}|[a-z./\\\\%\u{202e}]{0,20}") {
        if validate_relpath(&relpath).is_ok() {
            prop_assert!(!relpath.starts_with('/'));
            prop_assert!(!relpath.chars().any(is_refused_path_char));
            prop_assert!(!relpath.split('/').any(|segment| segment.is_empty() || segment == "." || segment == ".."));
        }
    }

    #[test]
    fn inputs_never_panic(text in "\\PC{0,120}") {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
            let _ = normalize_inputs(value);
        }
    }
}
