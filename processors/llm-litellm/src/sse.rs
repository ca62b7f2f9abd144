//! An incremental parser of `text/event-stream` (server-sent events), fed chunks as they arrive.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, when one was given.
    pub name: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Parser state across chunks; chunk boundaries may fall anywhere, even inside a UTF-8 character.
#[derive(Debug, Default)]
pub struct SseParser {
    pending: Vec<u8>,
    name: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    /// Starts an empty parser.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds a chunk and returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|&byte| byte == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                events.push(event);
            }
        }
        events
    }

    /// Ends the stream, dispatching an event left without its blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            let _ = self.line(&String::from_utf8_lossy(&rest));
        }
        self.dispatch()
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => self.data.push(value.to_owned()),
            "event" => self.name = Some(value.to_owned()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let name = self.name.take();
        if self.data.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.data).join("\n");
        Some(SseEvent { name, data })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{SseEvent, SseParser};

    const STREAM: &str = "event: message_start\ndata: {\"a\":1}\n\n: keep-alive\n\ndata: first\r\ndata: second\r\n\r\ndata: é\n\ndata:[DONE]\n\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            SseEvent { name: Some("message_start".into()), data: "{\"a\":1}".into() },
            SseEvent { name: None, data: "first\nsecond".into() },
            SseEvent { name: None, data: "é".into() },
            SseEvent { name: None, data: "[DONE]".into() },
        ]
    }

    #[test]
    fn parses_a_whole_stream() {
        let mut parser = SseParser::new();
        let mut events = parser.push(STREAM.as_bytes());
        events.extend(parser.finish());
        assert_eq!(events, expected());
    }

    #[test]
    fn a_last_event_without_blank_line_is_kept() {
        let mut parser = SseParser::new();
        assert!(parser.push(b"data: tail").is_empty());
        assert_eq!(parser.finish(), Some(SseEvent { name: None, data: "tail".into() }));
    }

    proptest! {
        #[test]
        fn chunking_never_changes_the_events(cuts in prop::collection::btree_set(1..STREAM.len(), 0..12)) {
            let bytes = STREAM.as_bytes();
            let mut parser = SseParser::new();
            let mut events = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                events.extend(parser.push(&bytes[start..cut]));
                start = cut;
            }
            events.extend(parser.finish());
            prop_assert_eq!(events, expected());
        }
    }
}
