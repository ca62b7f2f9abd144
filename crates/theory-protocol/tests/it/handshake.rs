//! The first-frame rules: which refusals close with 1002 and which with 1008.

use theory_protocol::{HandshakeError, RunOpen, close_code};

fn code(text: &str) -> Option<u16> {
    RunOpen::parse_first_frame(text).err().map(|error| error.close_code())
}

#[test]
fn protocol_errors_close_with_1002() {
    for text in [
        "not json",
        "[1,2]",
        r#"{"kind":"Token","content":{"text":"x"}}"#,
        r#"{"kind":"RunOpen"}"#,
        r#"{"kind":"RunOpen","content":"x"}"#,
        r#"{"kind":"RunOpen","content":{"role":"client","execution_id":"E1","payload":{"mode":"fast"}}}"#,
    ] {
        assert_eq!(code(text), Some(close_code::PROTOCOL_ERROR), "{text}");
    }
}

#[test]
fn policy_violations_close_with_1008() {
    for text in [
        r#"{"kind":"RunOpen","content":{"role":"admin","execution_id":"E1"}}"#,
        r#"{"kind":"RunOpen","content":{"execution_id":"E1"}}"#,
        r#"{"kind":"RunOpen","content":{"role":"client","execution_id":""}}"#,
        r#"{"kind":"RunOpen","content":{"role":"client"}}"#,
        r#"{"kind":"RunOpen","content":{"role":"client","execution_id":"../x"}}"#,
        r#"{"kind":"RunOpen","content":{"role":"client","execution_id":"E1","payload":{"execution_id":"E2"}}}"#,
    ] {
        assert_eq!(code(text), Some(close_code::POLICY_VIOLATION), "{text}");
    }
}

#[test]
fn roles_are_case_insensitive() {
    for role in ["client", "Client", "OBSERVER", "controller"] {
        let text =
            format!(r#"{{"kind":"RunOpen","content":{{"role":"{role}","execution_id":"E1"}}}}"#);
        assert!(RunOpen::parse_first_frame(&text).is_ok(), "{role}");
    }
    let error = RunOpen::parse_first_frame(
        r#"{"kind":"RunOpen","content":{"role":"x","execution_id":"E1"}}"#,
    );
    assert!(matches!(error, Err(HandshakeError::Policy(_))));
}
