//! Logs on stderr — human-readable, or JSON lines with `THEORY_LOG_FORMAT=json` — with every
//! secret value from the environment replaced at the writer, whatever emitted it.

use std::io::{self, IsTerminal, Write};

use theory_core::Redactor;
use theory_core::env::names;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The default filter: what Theory does, and warnings from everything else.
const DEFAULT_FILTER: &str =
    "warn,theory_cli=info,theory_core=info,theory_local=info,theory_store=info";

/// A stderr writer that redacts each write (the formatter writes one event per call).
#[derive(Clone)]
pub(crate) struct RedactingStderr {
    redactor: Redactor,
}

impl RedactingStderr {
    pub(crate) fn new(redactor: Redactor) -> RedactingStderr {
        RedactingStderr { redactor }
    }
}

impl Write for RedactingStderr {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buffer);
        io::stderr().lock().write_all(self.redactor.redact(&text).as_bytes())?;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingStderr;

    fn make_writer(&'a self) -> RedactingStderr {
        self.clone()
    }
}

/// How much `-q` and `-v` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// Neither flag: `THEORY_LOG`, `RUST_LOG` or the default filter.
    Normal,
    /// `-v` (1), `-vv` (2), `-vvv` (3 or more).
    Verbose(u8),
}

/// The filter a flag asks for, when one does.
fn flag_filter(verbosity: Verbosity) -> Option<&'static str> {
    match verbosity {
        Verbosity::Quiet => Some("error"),
        Verbosity::Normal => None,
        Verbosity::Verbose(1) => Some(
            "warn,theory_cli=debug,theory_core=debug,theory_local=debug,theory_store=debug,theory_engine=debug,theory_ledger=debug",
        ),
        Verbosity::Verbose(2) => Some("debug"),
        Verbosity::Verbose(_) => Some("trace"),
    }
}

/// Installs the subscriber: `-q`/`-v`, else `THEORY_LOG` or `RUST_LOG`, filter the events.
pub(crate) fn init(redactor: &Redactor, json: bool, verbosity: Verbosity) {
    let filter = match flag_filter(verbosity) {
        Some(filter) => EnvFilter::new(filter),
        None => EnvFilter::try_from_env(names::LOG)
            .or_else(|_| EnvFilter::try_from_default_env())
            .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER)),
    };
    let writer = RedactingStderr::new(redactor.clone());
    let colour = std::io::stderr().is_terminal() && std::env::var_os(names::NO_COLOR).is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(colour);
    let _ = if json {
        builder.json().with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.compact().without_time().try_init()
    };
}
