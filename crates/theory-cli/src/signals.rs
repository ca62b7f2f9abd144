//! SIGINT and SIGTERM during a run: the first cancels it cleanly (the processor is stopped, the
//! run's outputs removed, the ledger closes it as `ERR_CANCELLED`, and `theory` exits 130 or
//! 143); a second one leaves at once, killing the processors' process groups (the processor
//! itself dies with `theory` anyway, see `theory-local`). Once the run is recorded, a signal
//! ends `theory` at once (the default action tokio's handler replaced).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use theory_core::cancel::Canceller;
use tokio::signal::unix::{SignalKind, signal};

/// Listens for SIGINT and SIGTERM while it lives.
pub(crate) struct Interrupts {
    received: Arc<AtomicI32>,
    run_over: Arc<std::sync::atomic::AtomicBool>,
    listener: tokio::task::JoinHandle<()>,
}

impl Interrupts {
    /// Cancels through `canceller` on the first signal.
    pub(crate) fn cancel_with(canceller: Canceller) -> std::io::Result<Interrupts> {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let received = Arc::new(AtomicI32::new(0));
        let run_over = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, over) = (Arc::clone(&received), Arc::clone(&run_over));
        let listener = tokio::spawn(async move {
            loop {
                let (number, name) = tokio::select! {
                    _ = interrupt.recv() => (SignalKind::interrupt().as_raw_value(), "SIGINT"),
                    _ = terminate.recv() => (SignalKind::terminate().as_raw_value(), "SIGTERM"),
                };
                if over.load(Ordering::SeqCst) {
                    // The run is recorded; what is left (printing, saving) just stops.
                    std::process::exit(128 + number);
                }
                if seen.swap(number, Ordering::SeqCst) != 0 {
                    crate::print::print_error(
                        &format!("{name} received again: leaving without cleaning up"),
                        Some("the next theory command marks the run failed"),
                    );
                    theory_local::kill_process_groups();
                    std::process::exit(128 + number);
                }
                crate::print::print_warning(&format!(
                    "{name} received: cancelling the run (send it again to leave at once)"
                ));
                canceller.cancel(format!("{name} received"));
            }
        });
        Ok(Interrupts { received, run_over, listener })
    }

    /// Says the run is over (recorded): a signal from now on ends `theory` at once.
    pub(crate) fn run_over(&self) {
        self.run_over.store(true, Ordering::SeqCst);
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
