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

/// Installs the subscriber: `THEORY_LOG` or `RUST_LOG` filter the events.
pub(crate) fn init(redactor: &Redactor, json: bool) {
    let filter = EnvFilter::try_from_env(names::LOG)
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
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
