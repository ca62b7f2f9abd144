//! `theory run --server URL`: the same run, submitted through `theory serve` instead of run
//! here. Attachments are uploaded (`POST /v1/uploads`) and their references put in the inputs;
//! the run is submitted with `Prefer: wait` and waited for; `--stream` follows its events;
//! SIGINT or SIGTERM cancels it on the server. The output, `--save-dir`/`--save-first` and the
//! exit status are those of a local run.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use theory_core::attachments::{self, Attachment};
use theory_core::env::names;
use theory_core::{ArtifactStore, ByteStream, Failure, ObjectWriter, StoreError, WorldPath};
use theory_protocol::{Envelope, ErrorCode, Frame};

use super::Context;
use crate::args::RunArgs;
use crate::usage::usage;

/// How long one `Prefer: wait` request holds (the server's own cap is 60 s).
const WAIT_S: u64 = 55;

/// The server: its base URL and an HTTP client carrying the token.
#[derive(Clone)]
struct Remote {
    base: String,
    http: reqwest::Client,
}

fn connection(base: &str, error: &reqwest::Error) -> Failure {
    Failure::with_hint(
        ErrorCode::Connection,
        format!("cannot reach the server at {base}: {}", without_url(error)),
        "check --server (or THEORY_SERVER), and that theory serve runs there",
    )
}

/// A reqwest error without the URL it names (it may carry credentials).
fn without_url(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

impl Remote {
    fn new(base: &str, context: &Context) -> Result<Remote, Failure> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(usage(
                format!("--server {base:?} is not an http or https URL"),
                "use --server http://127.0.0.1:8686",
            ));
        }
        let tls = theory_core::tls::client_config(&context.env).map_err(|error| {
            usage(format!("cannot set up TLS: {error}"), "check SSL_CERT_FILE, or unset it")
        })?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = context.env.get(names::TOKEN).filter(|token| !token.is_empty()) {
            let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| {
                    usage("THEORY_TOKEN is not a valid header value", "copy the token again")
                })?;
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| {
                usage(format!("cannot build an HTTP client: {error}"), "report this")
            })?;
        Ok(Remote { base, http })
    }

    /// Sends a request; a refusal becomes the failure its error document names.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
        let response = request.send().await.map_err(|error| connection(&self.base, &error))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let document: Value = response.json().await.unwrap_or(Value::Null);
        let code = document["error"]["code"].as_str().map_or(ErrorCode::Runtime, ErrorCode::parse);
        let message = document["error"]["message"]
            .as_str()
            .map_or_else(|| format!("the server answered {status}"), str::to_owned);
        let mut failure = Failure::new(code, message);
        failure.hint = document["hint"].as_str().map(str::to_owned);
        Err(failure)
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let response = self.send(request).await?;
        response.json().await.map_err(|error| {
            Failure::new(
                ErrorCode::Protocol,
                format!("the server's answer is not JSON: {}", without_url(&error)),
            )
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Runs `theory run --server URL …`.
pub(crate) async fn run(
    server: &str,
    args: RunArgs,
    context: Context,
) -> Result<ExitCode, Failure> {
    let remote = Remote::new(server, &context)?;
    let inputs =
        super::run::read_inputs(&args.inputs, super::run::max_inputs_bytes(&context.env)?)?;
    let (mode, adapter) = super::run::resolve_mode_and_adapter(
        args.mode.as_deref(),
        &super::run::adapter_name(&args, &context.env),
        &inputs,
    )?;
    super::run::check_flags(&args)?;
    let plan = super::run::plan_key(&args)?;
    let attached = args
        .attach
        .iter()
        .map(|text| Attachment::parse(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| usage(format!("--attach: {error}"), "use --attach photo=./photo.jpg"))?;
    let resolved = attachments::resolve(&attached, &inputs).await?;
    for attachment in &resolved {
        upload(&remote, attachment).await?;
    }
    let inputs = attachments::rewrite(inputs, &resolved)?;
    let mut body = json!({
        "ref": args.reference,
        "mode": mode.as_str(),
        "adapter": adapter.as_str(),
        "inputs": inputs,
        "transfer": args.transfer,
        "no_cache": args.cache.no_cache,
        "reuse_real": args.cache.reuse_real,
    });
    for (name, value) in [
        ("write_prefix", args.write_prefix.clone().map(Value::String)),
        ("plan", plan.map(|plan| Value::String(plan.as_str().to_owned()))),
        ("env", args.env.clone().map(Value::String)),
        (
            "adapter_opts",
            args.adapter_opts_json.as_deref().and_then(|text| serde_json::from_str(text).ok()),
        ),
    ] {
        if let Some(value) = value {
            body[name] = value;
        }
    }
    if let Some(platform) = &args.platform {
        body["adapter_opts"]["platform"] = Value::String(platform.clone());
    }
    let submitted = remote
        .json(remote.http.post(remote.url("/v1/runs")).json(&body))
        .await
        .map_err(|failure| refused(failure, args.json))?;
    let id = submitted["id"].as_str().unwrap_or_default().to_owned();
    let follower = args.stream.then(|| {
        let printer = super::run::StreamPrinter { redactor: context.redactor.clone() };
        tokio::spawn(follow(remote.clone(), id.clone(), printer))
    });
    let (canceller, cancel) = theory_core::cancel::cancellation();
    let interrupts = crate::signals::Interrupts::cancel_with(canceller).map_err(|error| {
        usage(format!("cannot listen for SIGINT and SIGTERM: {error}"), "report this as a bug")
    })?;
    let mut run = submitted;
    let mut cancel_sent = false;
    while !matches!(run["status"].as_str(), Some("succeeded" | "failed" | "cancelled")) {
        let waiting = remote.json(
            remote
                .http
                .get(remote.url(&format!("/v1/runs/{id}")))
                .header("Prefer", format!("wait={WAIT_S}")),
        );
        run = tokio::select! {
            answer = waiting => answer?,
            _ = cancel.cancelled(), if !cancel_sent => {
                cancel_sent = true;
                remote.json(remote.http.post(remote.url(&format!("/v1/runs/{id}/cancel")))).await?
            }
        };
    }
    if let Some(follower) = follower {
        // The stream ends with the run; give it a moment to print its last frames.
        let _ = tokio::time::timeout(Duration::from_secs(5), follower).await;
    }
    let interrupted = interrupts.exit_code();
    interrupts.run_over();
    let envelope: Envelope = serde_json::from_value(run["envelope"].clone()).map_err(|error| {
        Failure::new(
            ErrorCode::Protocol,
            format!("the run {id} ended without an envelope: {error}"),
        )
    })?;
    let outcome = theory_core::RunOutcome { envelope, hint: None };
    let outputs = ServerOutputs { remote, run: id };
    // The spec the server runs is the registry's; this project's copy names the outputs.
    let declared = match (&context.registry, args.reference.parse()) {
        (Ok(registry), Ok(reference)) => super::run::declared_outputs(registry, &reference),
        _ => Vec::new(),
    };
    let code = super::run::report(&outcome, &args, &outputs, interrupted, &declared).await;
    drop(interrupts);
    Ok(code)
}

/// A refusal before the run was queued: printed as a local run prints the same failure (an
/// error envelope with `--json`), usage errors exiting 2.
fn refused(failure: Failure, json: bool) -> Failure {
    if json && !matches!(failure.code, ErrorCode::Usage | ErrorCode::Config) {
        let envelope = Envelope::error(
            theory_core::new_execution_id(),
            failure.code.clone(),
            failure.message.clone(),
        );
        crate::print::print_json(&envelope);
    }
    failure
}

/// Uploads an attachment's file, streamed.
async fn upload(
    remote: &Remote,
    attachment: &attachments::ResolvedAttachment,
) -> Result<(), Failure> {
    let file = tokio::fs::File::open(&attachment.file).await.map_err(|error| {
        Failure::with_hint(
            ErrorCode::Attachment,
            format!(
                "attachment {}: cannot read {}: {error}",
                attachment.name,
                attachment.file.display()
            ),
            "attach a readable regular file",
        )
    })?;
    let name = attachment.world_path.as_str().rsplit('/').next().unwrap_or("upload").to_owned();
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let answer = remote
        .json(
            remote
                .http
                .post(remote.url(&format!("/v1/uploads?name={}", percent_encoded(&name))))
                .header("content-type", attachment.mime.as_str())
                .header("content-length", attachment.size_bytes)
                .body(body),
        )
        .await?;
    if answer["cid"].as_str() != Some(attachment.cid.to_string().as_str()) {
        return Err(Failure::with_hint(
            ErrorCode::Attachment,
            format!(
                "attachment {}: the server stored other bytes than were read here",
                attachment.name
            ),
            "attach a file nothing else is writing",
        ));
    }
    Ok(())
}

/// `text` with everything but RFC 3986's unreserved characters percent-encoded.
fn percent_encoded(text: &str) -> String {
    text.bytes().fold(String::with_capacity(text.len()), |mut out, byte| {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
        out
    })
}

/// A world path with each segment percent-encoded.
fn encoded_path(path: &str) -> String {
    path.split('/').map(percent_encoded).collect::<Vec<_>>().join("/")
}

/// Prints the run's tokens, events and logs as they arrive (`--stream`).
async fn follow(remote: Remote, id: String, printer: super::run::StreamPrinter) {
    use theory_core::session::FrameObserver;
    let request = remote.http.get(remote.url(&format!("/v1/runs/{id}/events")));
    let Ok(response) = remote.send(request).await else { return };
    let mut lines = tokio_util::codec::FramedRead::new(
        tokio_util::io::StreamReader::new(response.bytes_stream().map_err(std::io::Error::other)),
        tokio_util::codec::LinesCodec::new_with_max_length(16 * 1024 * 1024),
    );
    while let Some(Ok(line)) = lines.next().await {
        if line.starts_with("event:") && line.contains("end") {
            return;
        }
        let Some(data) = line.strip_prefix("data:") else { continue };
        if let Ok((frame, _)) = Frame::from_json(data.trim_start()) {
            printer.frame(&frame);
        }
    }
}

/// The outputs of a run on the server, read through `GET /v1/artifacts` (for `--save-dir` and
/// `--save-first`); nothing is written through it.
struct ServerOutputs {
    remote: Remote,
    run: String,
}

fn read_only() -> StoreError {
    StoreError::Backend("the server's store is read through its API only".into())
}

#[async_trait]
impl ArtifactStore for ServerOutputs {
    fn kind(&self) -> &'static str {
        "server"
    }

    async fn begin(
        &self,
        _path: &WorldPath,
        _mime: &str,
    ) -> Result<Box<dyn ObjectWriter>, StoreError> {
        Err(read_only())
    }

    async fn exists(&self, path: &WorldPath) -> Result<bool, StoreError> {
        Ok(self.size(path).await?.is_some())
    }

    async fn list(&self, _prefix: &str) -> Result<Vec<WorldPath>, StoreError> {
        Err(read_only())
    }

    async fn size(&self, path: &WorldPath) -> Result<Option<u64>, StoreError> {
        let url = self.remote.url(&format!("/v1/artifacts{}", encoded_path(path.as_str())));
        let response = self
            .remote
            .http
            .head(format!("{url}?run={}", percent_encoded(&self.run)))
            .send()
            .await
            .map_err(|error| StoreError::Backend(without_url(&error)))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(response.content_length())
    }

    async fn open(&self, path: &WorldPath) -> Result<Option<ByteStream>, StoreError> {
        let url = self.remote.url(&format!("/v1/artifacts{}", encoded_path(path.as_str())));
        let response = self
            .remote
            .http
            .get(format!("{url}?run={}", percent_encoded(&self.run)))
            .send()
            .await
            .map_err(|error| StoreError::Backend(without_url(&error)))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(StoreError::Backend(format!(
                "{path}: the server answered {}",
                response.status()
            )));
        }
        Ok(Some(
            response
                .bytes_stream()
                .map_err(|error| std::io::Error::other(without_url(&error)))
                .boxed(),
        ))
    }

    async fn delete(&self, _path: &WorldPath) -> Result<(), StoreError> {
        Err(read_only())
    }
}
