//! Progress on stderr for long work (image load, push): a bar on a terminal, a line per step
//! otherwise, so CI logs show what happened without control characters.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-counting progress bar.
pub(crate) struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    /// Starts a bar for `what`; on a non-terminal stderr prints `what…` once.
    pub(crate) fn bytes(what: &str) -> Bar {
        if crate::print::quiet() {
            return Bar { bar: None };
        }
        if !std::io::stderr().is_terminal() {
            eprintln!("{what}…");
            return Bar { bar: None };
        }
        let bar = ProgressBar::new(0);
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {wide_msg:.dim}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(what.to_owned());
        Bar { bar: Some(bar) }
    }

    /// Sets where the work is.
    pub(crate) fn update(&self, done: u64, total: Option<u64>) {
        if let Some(bar) = &self.bar {
            if let Some(total) = total {
                bar.set_length(total.max(done));
            }
            bar.set_position(done);
        }
    }

    /// Ends the bar with a closing line.
    pub(crate) fn finish(self, line: &str) {
        match self.bar {
            Some(bar) => bar.finish_with_message(line.to_owned()),
            None => eprintln!("{line}"),
        }
    }
}
