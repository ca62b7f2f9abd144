//! The SDK a Theory processor links: write a runner, call one function, and the program speaks
//! `theory.run.v1` (see `theory_protocol`).
//!
//! # Layout
//!
//! - [`Processor`] (`processor`): the runner trait; any `Fn(Inputs, Context) -> Future` is one.
//! - [`Inputs`], [`Context`], [`ProcessorResult`], [`OutputItem`], [`ProcessorError`]: what a
//!   runner reads, uses and returns.
//! - `server`: the axum app — `GET /healthz`, `GET /info`, `WS /run` — and [`main`], [`serve`],
//!   [`serve_on`], [`router`] to start it.
//! - `connection`: one WebSocket: handshake rules and close codes, `Ack`, replay then live frames,
//!   control frames.
//! - `run`: one run's append-only log of frames that every connection reads at its own pace
//!   (so late joiners get a replay and a slow reader never stalls the run), and the run table.
//! - `driver`: one run's life: inputs → files → handler task → outputs → `RunResult`.
//! - `files`, `outputs`, `upload`: input files in, outputs out (frames or `put_urls`).
//!
//! # Data flow
//!
//! A `client` connection's `RunOpen` creates the run, its `File` frames are written to the run's
//! scratch folder while hashed, and the driver task starts the handler. Tokens, logs and events
//! the handler emits through its [`Context`] are appended to the run's log; outputs are hashed,
//! then appended as `Output` entries whose bytes are streamed from memory or from their file by
//! each connection. The log ends with exactly one `RunResult`, then every connection closes with
//! 1000. A controller's `preempt` cancels the handler's token, waits the grace period, then
//! aborts the handler task; a panic in the handler is caught as `ERR_RUNTIME`.
//!
//! # Example
//!
//! ```no_run
//! use theory_processor::{Context, Identity, Inputs, OutputItem, ProcessorError, ProcessorResult};
//!
//! async fn echo(inputs: Inputs, context: Context) -> Result<ProcessorResult, ProcessorError> {
//!     let text = inputs.param("text").and_then(|text| text.as_str()).unwrap_or_default().to_owned();
//!     context.token(text.clone());
//!     Ok(ProcessorResult { outputs: vec![OutputItem::text("echo.txt", text)], ..Default::default() })
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     theory_processor::main(Identity::new("demo/echo@1"), echo)
//! }
//! ```

mod config;
mod connection;
mod context;
mod driver;
mod files;
pub mod http;
mod identity;
mod inputs;
pub mod logging;
mod output_file;
mod outputs;
mod processor;
mod result;
mod run;
mod server;
mod upload;

pub use config::{ConfigError, ServerConfig, env};
pub use context::{Context, InputFile};
pub use identity::Identity;
pub use inputs::Inputs;
pub use output_file::OutputFile;
pub use processor::Processor;
pub use result::{OutputBody, OutputItem, ProcessorError, ProcessorResult};
pub use server::{ServeError, main, router, serve, serve_on};
pub use theory_protocol as protocol;
