//! The SDK served in-process: a closure runner, `serve_on`, and graceful shutdown.

mod replay;
mod serve;
mod uploads;
