//! Writing JSON text fast where a frame carries megabytes: the same text `serde_json` writes,
//! but a string that needs no escapes (nearly all of them) is copied as it is instead of being
//! looked at one byte at a time.

use std::io::{self, Write};

use serde_json::Value;

/// Writes `value` as compact JSON, exactly as `serde_json::to_writer` would.
pub fn write_value(value: &Value, out: &mut impl Write) -> io::Result<()> {
    match value {
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.write_all(b"[")?;
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.write_all(b",")?;
                }
                write_value(item, out)?;
            }
            out.write_all(b"]")
        }
        Value::Object(members) => {
            out.write_all(b"{")?;
            for (index, (key, member)) in members.iter().enumerate() {
                if index > 0 {
                    out.write_all(b",")?;
                }
                write_string(key, out)?;
                out.write_all(b":")?;
                write_value(member, out)?;
            }
            out.write_all(b"}")
        }
        scalar => serde_json::to_writer(out, scalar).map_err(io::Error::from),
    }
}

/// Writes `text` as a JSON string: escaped by `serde_json` when it needs escapes (`"`, `\`,
/// control characters — the same rules as ECMAScript's `JSON.stringify`, so RFC 8785's), else
/// copied between quotes.
pub fn write_string(text: &str, out: &mut impl Write) -> io::Result<()> {
    if needs_escapes(text) {
        return serde_json::to_writer(out, text).map_err(io::Error::from);
    }
    out.write_all(b"\"")?;
    out.write_all(text.as_bytes())?;
    out.write_all(b"\"")
}

/// Whether JSON escapes anything in `text`; checked 64 bytes at a time without branches inside
/// a block, so the compiler can use vector instructions.
fn needs_escapes(text: &str) -> bool {
    text.as_bytes().chunks(64).any(|block| {
        let found = block.iter().fold(0_u8, |found, &byte| {
            found | u8::from(byte < 0x20) | u8::from(byte == b'"') | u8::from(byte == b'\\')
        });
        found != 0
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::write_value;

    fn written(value: &Value) -> String {
        let mut text = Vec::new();
        write_value(value, &mut text).unwrap();
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn the_same_text_as_serde_json() {
        let long = "y".repeat(200);
        let value = json!({
            "b": [1, -2, 2.5, 1e300, u64::MAX, null, true, false],
            "a": {"": "", "q\"uote": "back\\slash", "ctl": "\u{0}\u{8}\t\n\u{c}\r\u{1f}\u{7f}"},
            "long": long,
            "late\"": format!("{long}\"{long}"),
            "unicode": "é \u{1f600} \u{2028}",
        });
        assert_eq!(written(&value), serde_json::to_string(&value).unwrap());
    }
}
