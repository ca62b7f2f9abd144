//! A deliberately low-level `theory.run.v1` test client: it can send anything, and it records
//! everything it receives, verifying output bytes while they stream.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use theory_protocol::{
    Cid, CidHasher, Envelope, FileHeader, FileSpec, Frame, Mode, OutputHeader, Role, RunOpen,
    RunPayload, SUBPROTOCOL,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Outputs up to this size are kept in memory by [`Transcript`]; larger ones are only hashed.
pub const KEEP_OUTPUT_BYTES: u64 = 1024 * 1024;

/// An open WebSocket to `/run`.
pub struct Connection {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    seen: Vec<Frame>,
    /// The subprotocol the server accepted with, if any.
    pub accepted_protocol: Option<String>,
}

/// How a connection attempt ended when the server refused to upgrade.
#[derive(Debug)]
pub enum ConnectError {
    /// The server answered with an HTTP status instead of upgrading.
    Refused(u16),
    /// Anything else (no server, bad URL).
    Other(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Refused(status) => {
                write!(formatter, "upgrade refused with HTTP {status}")
            }
            ConnectError::Other(reason) => formatter.write_str(reason),
        }
    }
}

/// Turns `http://host:port` into `ws://host:port/run`.
pub fn run_url(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let base =
        base.strip_prefix("http").map_or_else(|| base.to_owned(), |rest| format!("ws{rest}"));
    format!("{base}/run")
}

/// Opens `/run`, offering `protocol` (normally [`SUBPROTOCOL`]) or none.
pub async fn connect(base_url: &str, protocol: Option<&str>) -> Result<Connection, ConnectError> {
    let mut request = run_url(base_url)
        .into_client_request()
        .map_err(|error| ConnectError::Other(error.to_string()))?;
    if let Some(protocol) = protocol {
        let value = protocol.parse().map_err(|_| ConnectError::Other("bad protocol".into()))?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", value);
    }
    // Boxed: with TLS support compiled in, the connect future is large.
    match Box::pin(tokio_tungstenite::connect_async(request)).await {
        Ok((socket, response)) => {
            let accepted_protocol = response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            Ok(Connection { socket, seen: Vec::new(), accepted_protocol })
        }
        Err(tungstenite::Error::Http(response)) => {
            Err(ConnectError::Refused(response.status().as_u16()))
        }
        Err(error) => Err(ConnectError::Other(error.to_string())),
    }
}

/// Opens `/run` with the right subprotocol, panicking on failure (for tests).
pub async fn open(base_url: &str) -> Result<Connection, String> {
    connect(base_url, Some(SUBPROTOCOL))
        .await
        .map_err(|error| format!("cannot open {base_url}: {error}"))
}

/// Builds a `RunOpen` frame for a client starting a run.
pub fn client_open(
    execution_id: &str,
    mode: Mode,
    inputs: serde_json::Value,
    write_prefix: Option<&str>,
) -> Frame {
    let execution_id: theory_protocol::ExecutionId =
        execution_id.parse().expect("test execution ids are valid");
    Frame::RunOpen(RunOpen {
        role: Role::Client,
        payload: Some(RunPayload {
            execution_id: Some(execution_id.clone()),
            mode,
            inputs: inputs.into(),
            write_prefix: write_prefix.map(str::to_owned),
            put_urls: None,
            files: std::collections::BTreeMap::new(),
        }),
        execution_id,
    })
}

/// Returns the payload of a client `RunOpen`, to adjust it (`put_urls`, `files`).
pub fn payload_mut(frame: &mut Frame) -> &mut RunPayload {
    match frame {
        Frame::RunOpen(RunOpen { payload: Some(payload), .. }) => payload,
        _ => panic!("payload_mut needs a client RunOpen"),
    }
}

/// Builds a `RunOpen` frame for an observer or controller attaching to a run.
pub fn attach_open(execution_id: &str, role: Role) -> Frame {
    Frame::RunOpen(RunOpen {
        role,
        execution_id: execution_id.parse().expect("valid"),
        payload: None,
    })
}

/// One output as received: its header, what actually arrived, and (when small) the bytes.
#[derive(Debug, Clone)]
pub struct ReceivedOutput {
    /// The `Output` header.
    pub header: OutputHeader,
    /// Bytes that arrived after the header.
    pub received_bytes: u64,
    /// CID of the bytes that arrived.
    pub received_cid: Cid,
    /// The bytes, when at most [`KEEP_OUTPUT_BYTES`].
    pub bytes: Option<Bytes>,
    /// When the header arrived.
    pub header_at: Instant,
    /// When the last byte arrived.
    pub finished_at: Instant,
}

impl ReceivedOutput {
    /// Returns whether the bytes match the header's size and CID.
    pub fn is_intact(&self) -> bool {
        self.received_bytes == self.header.size_bytes && self.received_cid == self.header.cid
    }
}

/// Everything a connection received, in order.
#[derive(Debug, Default, Clone)]
pub struct Transcript {
    /// Text frames, decoded.
    pub frames: Vec<Frame>,
    /// Outputs, with their bytes verified.
    pub outputs: Vec<ReceivedOutput>,
    /// The close code and reason, if the server closed.
    pub close: Option<(u16, String)>,
    /// Binary frames received.
    pub binary_frames: usize,
    /// Protocol violations noticed while reading.
    pub violations: Vec<String>,
    /// Whether reading stopped because the deadline passed.
    pub timed_out: bool,
}

impl Transcript {
    /// Returns the `RunResult` envelope, if exactly one arrived.
    pub fn result(&self) -> Option<&Envelope> {
        let mut results = self.frames.iter().filter_map(|frame| match frame {
            Frame::RunResult(envelope) => Some(envelope),
            _ => None,
        });
        let first = results.next();
        if results.next().is_some() { None } else { first }
    }

    /// Returns the kinds of text frames, in order (`Event:started`, `Token`, …).
    pub fn kinds(&self) -> Vec<String> {
        self.frames
            .iter()
            .map(|frame| match frame {
                Frame::Event(event) => format!("Event:{}", event.phase),
                other => other.kind().to_owned(),
            })
            .collect()
    }

    /// Returns the concatenated `Token` texts.
    pub fn text(&self) -> String {
        self.frames
            .iter()
            .filter_map(|frame| match frame {
                Frame::Token(token) => Some(token.text.as_str()),
                _ => None,
            })
            .collect()
    }
}

impl Connection {
    /// Sends a text frame.
    pub async fn send(&mut self, frame: &Frame) -> Result<(), String> {
        self.send_text(frame.to_json(None)).await
    }

    /// Sends raw text, valid or not.
    pub async fn send_text(&mut self, text: String) -> Result<(), String> {
        self.socket.send(Message::Text(text.into())).await.map_err(|error| error.to_string())
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Bytes) -> Result<(), String> {
        self.socket.send(Message::Binary(bytes)).await.map_err(|error| error.to_string())
    }

    /// Sends an input file: its `File` frame, then its bytes in chunks.
    pub async fn send_file(
        &mut self,
        path: &str,
        spec: &FileSpec,
        bytes: &[u8],
    ) -> Result<(), String> {
        let header = FileHeader {
            path: path.to_owned(),
            cid: spec.cid,
            size_bytes: spec.size_bytes,
            mime: spec.mime.clone(),
        };
        self.send(&Frame::File(header)).await?;
        for chunk in bytes.chunks(64 * 1024) {
            self.send_binary(Bytes::copy_from_slice(chunk)).await?;
        }
        Ok(())
    }

    /// Returns the next text frame; `None` on close, error or deadline. Use it only before
    /// outputs stream: binary frames are skipped. The frames it returns still appear in the
    /// [`Transcript`] that [`Connection::collect`] returns later.
    pub async fn next_frame(&mut self, deadline: Duration) -> Option<Frame> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            match tokio::time::timeout_at(until, self.socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let frame = Frame::from_json(text.as_str()).ok().map(|(frame, _)| frame)?;
                    self.seen.push(frame.clone());
                    return Some(frame);
                }
                Ok(Some(Ok(
                    Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_),
                ))) => {}
                _ => return None,
            }
        }
    }

    /// Reads until the server closes or `deadline` passes, verifying outputs as they stream.
    pub async fn collect(mut self, deadline: Duration) -> Transcript {
        let mut transcript =
            Transcript { frames: std::mem::take(&mut self.seen), ..Transcript::default() };
        let mut current: Option<(OutputHeader, CidHasher, Option<Vec<u8>>, Instant)> = None;
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let message = match tokio::time::timeout_at(until, self.socket.next()).await {
                Err(_) => {
                    transcript.timed_out = true;
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(error))) => {
                    transcript.violations.push(format!("read error: {error}"));
                    break;
                }
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    if let Some((header, ..)) = &current {
                        transcript
                            .violations
                            .push(format!("text frame inside the bytes of output {}", header.path));
                    }
                    match Frame::from_json(text.as_str()) {
                        Ok((Frame::Output(header), _)) => {
                            let keep = (header.size_bytes <= KEEP_OUTPUT_BYTES).then(Vec::new);
                            transcript.frames.push(Frame::Output(header.clone()));
                            if header.size_bytes == 0 {
                                finish_output(
                                    &mut transcript,
                                    header,
                                    &CidHasher::new(),
                                    keep,
                                    Instant::now(),
                                );
                            } else {
                                current = Some((header, CidHasher::new(), keep, Instant::now()));
                            }
                        }
                        Ok((frame, _)) => transcript.frames.push(frame),
                        Err(error) => {
                            transcript.violations.push(format!("undecodable frame: {error}"));
                        }
                    }
                }
                Message::Binary(bytes) => {
                    transcript.binary_frames += 1;
                    let Some((header, hasher, keep, _)) = current.as_mut() else {
                        transcript.violations.push("binary frame without an Output header".into());
                        continue;
                    };
                    hasher.update(&bytes);
                    if let Some(keep) = keep.as_mut() {
                        keep.extend_from_slice(&bytes);
                    }
                    if hasher.size_bytes() >= header.size_bytes
                        && let Some((header, hasher, keep, header_at)) = current.take()
                    {
                        finish_output(&mut transcript, header, &hasher, keep, header_at);
                    }
                }
                Message::Close(frame) => {
                    transcript.close = Some(
                        frame.map_or((u16::from(CloseCode::Status), String::new()), |frame| {
                            (u16::from(frame.code), frame.reason.to_string())
                        }),
                    );
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
        if let Some((header, ..)) = current {
            transcript.violations.push(format!("output {} ended early", header.path));
        }
        transcript
    }
}

fn finish_output(
    transcript: &mut Transcript,
    header: OutputHeader,
    hasher: &CidHasher,
    keep: Option<Vec<u8>>,
    header_at: Instant,
) {
    transcript.outputs.push(ReceivedOutput {
        header_at,
        finished_at: Instant::now(),
        received_bytes: hasher.size_bytes(),
        received_cid: hasher.finalize(),
        bytes: keep.map(Bytes::from),
        header,
    });
}

/// Runs one client session to the end: open, send `RunOpen`, collect.
pub async fn run_once(
    base_url: &str,
    open_frame: &Frame,
    deadline: Duration,
) -> Result<Transcript, String> {
    let mut connection = open(base_url).await?;
    connection.send(open_frame).await?;
    Ok(connection.collect(deadline).await)
}
