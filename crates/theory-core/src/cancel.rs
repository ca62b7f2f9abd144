//! Cancelling a run from outside it: the CLI's SIGINT/SIGTERM handler (and later an API call)
//! holds a [`Canceller`]; the run holds the [`Cancel`] and stops at once, the normal failure path
//! taking over: the instance is stopped, the run's outputs are removed, the ledger closes the
//! record as `ERR_CANCELLED`.

use tokio::sync::watch;

/// The side that asks for the stop.
#[derive(Debug)]
pub struct Canceller {
    sender: watch::Sender<Option<String>>,
}

/// The side a run watches; cloneable. [`Cancel::default`] is never cancelled.
#[derive(Debug, Clone)]
pub struct Cancel {
    receiver: watch::Receiver<Option<String>>,
}

/// Makes a connected pair.
pub fn cancellation() -> (Canceller, Cancel) {
    let (sender, receiver) = watch::channel(None);
    (Canceller { sender }, Cancel { receiver })
}

impl Canceller {
    /// Asks the run to stop, saying why (`SIGINT received`); the first reason given stays.
    pub fn cancel(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.sender.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }
}

impl Default for Cancel {
    fn default() -> Cancel {
        cancellation().1
    }
}

impl Cancel {
    /// Why the run was cancelled, if it was.
    pub fn reason(&self) -> Option<String> {
        self.receiver.borrow().clone()
    }

    /// Waits until the run is cancelled and returns why; never returns when it never is.
    pub async fn cancelled(&self) -> String {
        let mut receiver = self.receiver.clone();
        loop {
            if let Some(reason) = receiver.borrow_and_update().clone() {
                return reason;
            }
            if receiver.changed().await.is_err() {
                // The canceller is gone without cancelling: nothing will.
                return std::future::pending().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cancel, cancellation};

    #[tokio::test]
    async fn the_first_reason_wakes_every_watcher() {
        let (canceller, cancel) = cancellation();
        let watcher = tokio::spawn({
            let cancel = cancel.clone();
            async move { cancel.cancelled().await }
        });
        assert_eq!(cancel.reason(), None);
        canceller.cancel("SIGINT received");
        canceller.cancel("SIGTERM received");
        assert_eq!(watcher.await.unwrap(), "SIGINT received");
        assert_eq!(cancel.reason().as_deref(), Some("SIGINT received"));
        let never = Cancel::default();
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), never.cancelled()).await;
        assert!(waited.is_err(), "a default Cancel fired");
    }
}
