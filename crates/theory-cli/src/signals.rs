//! SIGINT and SIGTERM during a run: the first cancels it cleanly (the processor is stopped, the
//! run's outputs removed, the ledger closes it as `ERR_CANCELLED`, and `theory` exits 130 or
//! 143); a second one leaves at once (the processor dies with `theory`, see `theory-local`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use theory_core::cancel::Canceller;
use tokio::signal::unix::{SignalKind, signal};

/// Listens for SIGINT and SIGTERM while it lives.
pub(crate) struct Interrupts {
    received: Arc<AtomicI32>,
    listener: tokio::task::JoinHandle<()>,
}

impl Interrupts {
    /// Cancels through `canceller` on the first signal.
    pub(crate) fn cancel_with(canceller: Canceller) -> std::io::Result<Interrupts> {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let received = Arc::new(AtomicI32::new(0));
        let seen = Arc::clone(&received);
        let listener = tokio::spawn(async move {
            loop {
                let (number, name) = tokio::select! {
                    _ = interrupt.recv() => (SignalKind::interrupt().as_raw_value(), "SIGINT"),
                    _ = terminate.recv() => (SignalKind::terminate().as_raw_value(), "SIGTERM"),
                };
                if seen.swap(number, Ordering::SeqCst) != 0 {
                    crate::print::print_error(
                        &format!("{name} received again: leaving without cleaning up"),
                        Some("the next theory command marks the run failed"),
                    );
                    std::process::exit(128 + number);
                }
                crate::print::print_warning(&format!(
                    "{name} received: cancelling the run (send it again to leave at once)"
                ));
                canceller.cancel(format!("{name} received"));
            }
        });
        Ok(Interrupts { received, listener })
    }

    /// The exit status a signal asks for (128 + its number), if one came.
    pub(crate) fn exit_code(&self) -> Option<u8> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            number => u8::try_from(128 + number).ok(),
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.listener.abort();
    }
}
