//! RFC 8785 (JCS) canonical JSON of a [`Value`], written as it is produced.
//!
//! `serde_json_canonicalizer` gathers each object's members in a buffer to sort them, so the
//! canonical text of megabytes of inputs would be held whole, and copied once more per level of
//! nesting. A `Value` is already a tree: its members can be put in JCS order (by UTF-16 code
//! units) by sorting references, and written straight out. Numbers — the formatting JCS takes
//! from ECMAScript — are still written by `serde_json_canonicalizer`; strings as JSON escapes
//! them, which is JCS's escaping. A property test checks the text against that crate, byte for byte.

use std::io::{self, Write};

use serde_json::Value;
use theory_protocol::json_text::write_string;

/// Writes the canonical form of `value` to `out`, holding no more than one scalar of it.
pub(crate) fn write_canonical(value: &Value, out: &mut impl Write) -> io::Result<()> {
    match value {
        Value::Array(items) => {
            out.write_all(b"[")?;
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.write_all(b",")?;
                }
                write_canonical(item, out)?;
            }
            out.write_all(b"]")
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|(left, _), (right, _)| left.encode_utf16().cmp(right.encode_utf16()));
            out.write_all(b"{")?;
            for (index, (key, member)) in sorted.into_iter().enumerate() {
                if index > 0 {
                    out.write_all(b",")?;
                }
                write_string(key, out)?;
                out.write_all(b":")?;
                write_canonical(member, out)?;
            }
            out.write_all(b"}")
        }
        // JCS escapes strings as ECMAScript's `JSON.stringify` does, which is what JSON does.
        Value::String(text) => write_string(text, out),
        scalar => serde_json_canonicalizer::to_writer(scalar, out).map_err(io::Error::other),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::write_canonical;

    fn canonical(value: &Value) -> String {
        let mut text = Vec::new();
        write_canonical(value, &mut text).unwrap();
        String::from_utf8(text).unwrap()
    }

    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_same_text_as_serde_json_canonicalizer(value in values()) {
            let expected = serde_json_canonicalizer::to_string(&value).unwrap();
            prop_assert_eq!(canonical(&value), expected);
        }
    }

    #[test]
    fn members_sort_by_utf16_code_units_and_numbers_print_as_ecmascript_does() {
        // U+FFFD sorts after U+1F600 by code point, before it by UTF-16 code unit (0xD83D).
        let value =
            json!({"\u{fffd}": 1, "\u{1f600}": 2, "b": [1.0, 1e21, -0.0, "\u{1}\"\\"], "a": null});
        assert_eq!(
            canonical(&value),
            "{\"a\":null,\"b\":[1,1e+21,0,\"\\u0001\\\"\\\\\"],\"\u{1f600}\":2,\"\u{fffd}\":1}"
        );
    }
}
