//! Properties: normalization is idempotent, relpath validation never lets a path escape, and
//! every text frame round-trips.

use proptest::prelude::*;
use serde_json::{Value, json};
use theory_protocol::{Frame, Log, Token, normalize_inputs, validate_relpath};

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn json_object() -> impl Strategy<Value = Value> {
    let value = json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    });
    prop::collection::btree_map("(schema|params|model|mode|files|[a-z]{1,6})", value, 0..5)
        .prop_map(|map| Value::Object(map.into_iter().collect()))
}

proptest! {
    #[test]
    fn normalization_is_idempotent(inputs in json_object()) {
        if let Ok(once) = normalize_inputs(inputs) {
            let twice = normalize_inputs(once.value.clone()).expect("normalized inputs normalize again");
            prop_assert_eq!(&twice.value, &once.value);
            prop_assert_eq!(&once.value["schema"], &json!("v1"));
            prop_assert!(once.value["params"].is_object());
        }
    }

    #[test]
    fn accepted_relpaths_stay_inside(relpath in "[a-z./\\\\]{0,12}") {
        if validate_relpath(&relpath).is_ok() {
            prop_assert!(!relpath.starts_with('/'));
            prop_assert!(relpath.split('/').all(|segment| !segment.is_empty() && segment != "." && segment != ".."));
        }
    }

    #[test]
    fn text_frames_round_trip(text in any::<String>(), t in proptest::option::of(any::<u64>())) {
        for frame in [Frame::Token(Token { text: text.clone() }), Frame::Log(Log { level: "info".into(), msg: text.clone() })] {
            prop_assert_eq!(Frame::from_json(&frame.to_json(t)).unwrap(), (frame, t));
        }
    }
}
