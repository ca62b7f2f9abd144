//! Sending a frame whose JSON may be megabytes (a `RunOpen` with large inputs) without holding
//! its text whole.
//!
//! The WebSocket copies every frame it sends into its write buffer, so a text message built
//! first and sent as one frame is in memory three times: the inputs, their text, the buffer. A
//! frame with large inputs is instead encoded on a blocking thread into chunks of
//! [`FRAGMENT_BYTES`], each sent as one fragment of a single text message (RFC 6455 §5.4) while
//! the next is encoded: the text is never more than two chunks at a time.

use futures_util::{Sink, SinkExt};
use serde_json::Value;
use theory_protocol::Frame;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WireFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Error, Message};

/// The size of one fragment, and the size of inputs past which a `RunOpen` is streamed.
pub(crate) const FRAGMENT_BYTES: usize = 1 << 20;

/// Sends `frame` as one text message; a `RunOpen` with large inputs in fragments, encoded as
/// they go.
pub(crate) async fn send_frame<S>(socket: &mut S, frame: Frame) -> Result<(), Error>
where
    S: Sink<Message, Error = Error> + Unpin,
{
    let large = match &frame {
        Frame::RunOpen(open) => open
            .payload
            .as_ref()
            .is_some_and(|payload| text_bytes(&payload.inputs) > FRAGMENT_BYTES),
        _ => false,
    };
    if !large {
        return socket.send(Message::Text(frame.to_json(None).into())).await;
    }
    let (chunks, mut encoded) = mpsc::channel::<Vec<u8>>(1);
    // Sent chunks' buffers go back to the encoder: two or three are ever allocated, so the
    // text costs no fresh pages after the first few.
    let (spent, returned) = std::sync::mpsc::channel::<Vec<u8>>();
    // Detached on purpose: when sending fails and `encoded` is dropped, the encoder's next
    // chunk finds no receiver and it stops.
    drop(tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter { chunks, returned, chunk: Vec::with_capacity(FRAGMENT_BYTES) };
        frame.write_json(None, &mut out)?;
        out.finish()
    }));
    let mut held: Option<Vec<u8>> = None;
    let mut first = true;
    while let Some(chunk) = encoded.recv().await {
        if let Some(previous) = held.replace(chunk) {
            let (message, shared) = fragment(previous, first, false);
            socket.send(message).await?;
            // Sent: the WebSocket copied the bytes and let go of them.
            if let Ok(buffer) = shared.try_into_mut() {
                let mut buffer = Vec::from(buffer);
                buffer.clear();
                let _ = spent.send(buffer);
            }
            first = false;
        }
    }
    match held {
        Some(last) => socket.send(fragment(last, first, true).0).await,
        // Encoding a frame cannot fail; nothing came only if the encoder could not run.
        None => Err(Error::Io(std::io::Error::other("the RunOpen frame could not be encoded"))),
    }
}

/// One fragment of the message, and its bytes (shared with it, to be taken back once sent).
fn fragment(bytes: Vec<u8>, first: bool, last: bool) -> (Message, bytes::Bytes) {
    let opcode = OpCode::Data(if first { Data::Text } else { Data::Continue });
    let shared = bytes::Bytes::from(bytes);
    (Message::Frame(WireFrame::message(shared.clone(), opcode, last)), shared)
}

/// Roughly how many bytes `value`'s JSON text takes (its strings and keys, not their escapes):
/// enough to tell kilobytes from megabytes without encoding it.
fn text_bytes(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len() + 2,
        Value::Array(items) => items.iter().map(|item| text_bytes(item) + 1).sum::<usize>() + 2,
        Value::Object(members) => {
            members.iter().map(|(key, member)| key.len() + 4 + text_bytes(member)).sum::<usize>()
                + 2
        }
        _ => 8,
    }
}

/// Cuts what is written into chunks of [`FRAGMENT_BYTES`] and hands each over as it fills.
struct ChunkWriter {
    chunks: mpsc::Sender<Vec<u8>>,
    /// Buffers of chunks already sent, to fill again.
    returned: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
}

impl ChunkWriter {
    fn hand_over(&mut self) -> std::io::Result<()> {
        let next = self.returned.try_recv().unwrap_or_else(|_| Vec::with_capacity(FRAGMENT_BYTES));
        let full = std::mem::replace(&mut self.chunk, next);
        self.chunks
            .blocking_send(full)
            .map_err(|_| std::io::Error::other("the connection stopped taking the frame"))
    }

    fn finish(mut self) -> std::io::Result<()> {
        if self.chunk.is_empty() { Ok(()) } else { self.hand_over() }
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = FRAGMENT_BYTES - self.chunk.len();
        let taken = bytes.len().min(room);
        self.chunk.extend_from_slice(&bytes[..taken]);
        if self.chunk.len() == FRAGMENT_BYTES {
            self.hand_over()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::text_bytes;

    #[test]
    fn the_estimate_is_near_the_text_length() {
        let value = json!({"params": {"text": "x".repeat(5000), "list": [1, 2.5, null, "ab"]}});
        let exact = serde_json::to_string(&value).unwrap().len();
        let estimate = text_bytes(&value);
        assert!(estimate.abs_diff(exact) < 64, "estimate {estimate}, text {exact}");
    }
}
