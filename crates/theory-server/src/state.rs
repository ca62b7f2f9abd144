//! What every route and worker of one front end shares: the orchestrator, the ledger (which
//! holds the queue), and the runs this front end runs — their cancellers, and a signal for the
//! requests that wait on them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use theory_core::Orchestrator;
use theory_core::cancel::Canceller;
use theory_ledger::Ledger;
use tokio::sync::{Notify, watch};

/// A run handed to a worker here as it was queued, with its request as the route read and
/// checked it (the worker need not do it again).
pub(crate) struct Handed {
    /// The queue row, claimed for this front end.
    pub(crate) queued: theory_ledger::QueuedRun,
    /// The request body and what checking it gave.
    pub(crate) request: (crate::api::RunBody, crate::api::CheckedRun),
}

/// Where a run watched by waiting requests is.
#[derive(Debug, Clone, Default)]
pub(crate) enum RunEnd {
    /// Not ended yet.
    #[default]
    Running,
    /// Its record is closed; with the row and record it ended with when they are known here
    /// (a waiting request answers from them without reading the ledger).
    Ended(Option<Arc<Closed>>),
}

/// A run that ended here: its queue row as the worker took it and its closed record.
#[derive(Debug)]
pub(crate) struct Closed {
    /// The queue row (who submitted it, when).
    pub(crate) queued: theory_ledger::QueuedRun,
    /// The record as the write that closed it returned it.
    pub(crate) record: theory_ledger::ExecutionRecord,
}

/// The shared state of one `theory serve`.
pub(crate) struct State {
    /// Runs the runs.
    pub(crate) orchestrator: Arc<Orchestrator>,
    /// The ledger: the queue, the runs' records.
    pub(crate) ledger: Ledger,
    /// `host:pid`: the claims and runs of this front end.
    pub(crate) owner: String,
    /// Wakes the workers when a run is queued here.
    pub(crate) work: Notify,
    /// Runs queued here already claimed for this front end's workers (a worker was free), in
    /// order: a worker takes these before it looks at the queue.
    handed: Mutex<std::collections::VecDeque<Handed>>,
    /// How many workers this front end has.
    workers: usize,
    /// How many runs were queued here for any worker (not handed over): a worker that found the
    /// queue empty looks again when this changes.
    queued_here: std::sync::atomic::AtomicU64,
    /// Cancellers of the runs this front end runs, by id.
    cancellers: Mutex<HashMap<String, Canceller>>,
    /// Signals the end of runs this front end runs, by id, to requests waiting on them.
    finished: Mutex<HashMap<String, watch::Sender<RunEnd>>>,
    /// Set when the server is shutting down: workers claim nothing more.
    pub(crate) stopping: watch::Sender<bool>,
    /// Whether requests need an API token (not under `--no-auth`).
    pub(crate) auth_required: bool,
    /// Runs at once per processor ref (`runtime.max_concurrency`), for those that say.
    pub(crate) limits: HashMap<String, u32>,
    /// The most runs the queue may hold before submissions are refused (`429`).
    pub(crate) max_queued_runs: i64,
    /// The largest upload taken.
    pub(crate) max_upload_bytes: u64,
    /// Signs and sends webhooks.
    pub(crate) webhooks: crate::webhooks::Webhooks,
    /// Durations measured here, for `/metrics`.
    pub(crate) metrics: crate::metrics::Metrics,
    /// The frames of the runs running here.
    pub(crate) logs: crate::events::Logs,
}

/// This front end's name on its claims: `host:pid#nonce`. The nonce tells a restarted server
/// from the one before it when both have the same pid (pid 1 in a container).
fn claim_owner() -> String {
    let mut random = [0_u8; 6];
    getrandom::fill(&mut random).unwrap_or_default();
    let nonce = u64::from_le_bytes([
        random[0], random[1], random[2], random[3], random[4], random[5], 0, 0,
    ]);
    format!("{}#{nonce:012x}", theory_ledger::this_owner())
}

/// Whether the front end that made a claim is gone: an earlier life of this process (same
/// `host:pid`, another nonce), or a process of this host that is not running.
pub(crate) fn claimer_is_gone(owner: &str, ours: &str) -> bool {
    match (owner.split_once('#'), ours.split_once('#')) {
        (Some((base, nonce)), Some((our_base, our_nonce))) if base == our_base => {
            nonce != our_nonce
        }
        (Some((base, _)), _) => theory_ledger::owner_is_gone(base),
        (None, _) => theory_ledger::owner_is_gone(owner),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    /// State over an orchestrator and its ledger.
    pub(crate) fn new(
        orchestrator: Arc<Orchestrator>,
        ledger: Ledger,
        options: &crate::ServeOptions,
        webhooks: crate::webhooks::Webhooks,
    ) -> State {
        let limits = orchestrator
            .registry
            .processors()
            .filter_map(|entry| {
                let spec = &entry.spec;
                spec.runtime.max_concurrency.map(|limit| (spec.reference.to_string(), limit))
            })
            .collect();
        State {
            webhooks,
            metrics: crate::metrics::Metrics::default(),
            limits,
            auth_required: options.auth_required,
            max_upload_bytes: options.max_upload_bytes,
            max_queued_runs: i64::try_from(options.max_queued_runs).unwrap_or(i64::MAX),
            logs: crate::events::Logs::new(ledger.clone()),
            ledger: {
                // Waiting requests are answered from the records the closing writes return.
                ledger.keep_closed();
                ledger.checkpoint_in_background();
                ledger
            },
            orchestrator,
            owner: claim_owner(),
            work: Notify::new(),
            handed: Mutex::new(std::collections::VecDeque::new()),
            workers: options.max_concurrent_runs.max(1),
            queued_here: std::sync::atomic::AtomicU64::new(0),
            cancellers: Mutex::new(HashMap::new()),
            finished: Mutex::new(HashMap::new()),
            stopping: watch::Sender::new(false),
        }
    }

    /// Whether a run of `reference` queued now can be handed straight to a worker here: one is
    /// free, the processor has no limit of runs at once (those are counted over every front end
    /// at claim time), and the server is not stopping.
    pub(crate) fn can_hand_over(&self, reference: &str) -> bool {
        let running = lock(&self.cancellers).len();
        !self.limits.contains_key(reference)
            && !*self.stopping.borrow()
            && running + lock(&self.handed).len() < self.workers
    }

    /// Gives a run claimed as it was queued to the next free worker.
    pub(crate) fn hand_over(&self, run: Handed) {
        lock(&self.handed).push_back(run);
        self.work.notify_one();
    }

    /// Says a run was queued here for the first worker of any front end, and wakes one here.
    pub(crate) fn queued_for_any(&self) {
        self.queued_here.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.work.notify_one();
    }

    /// How many runs were queued here for any worker so far.
    pub(crate) fn queued_here(&self) -> u64 {
        self.queued_here.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The next run handed over, if there is one.
    pub(crate) fn take_handed(&self) -> Option<Handed> {
        lock(&self.handed).pop_front()
    }

    /// Remembers the canceller of a run starting here.
    pub(crate) fn running(&self, id: &str, canceller: Canceller) {
        lock(&self.cancellers).insert(id.to_owned(), canceller);
    }

    /// Cancels a run running here; `false` when it does not run here.
    pub(crate) fn cancel_here(&self, id: &str, reason: &str) -> bool {
        lock(&self.cancellers).get(id).map(|canceller| canceller.cancel(reason)).is_some()
    }

    /// Cancels every run running here (the grace period of a shutdown is over).
    pub(crate) fn cancel_all(&self, reason: &str) {
        for canceller in lock(&self.cancellers).values() {
            canceller.cancel(reason);
        }
    }

    /// How many runs run here now.
    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.cancellers).len()
    }

    /// Whether runs still run here.
    pub(crate) fn busy(&self) -> bool {
        !lock(&self.cancellers).is_empty()
    }

    /// A receiver told when the run ends here (it may end elsewhere: waiters also look).
    pub(crate) fn watch_finish(&self, id: &str) -> watch::Receiver<RunEnd> {
        lock(&self.finished).entry(id.to_owned()).or_default().subscribe()
    }

    /// Forgets the signal of a run no request waits on and that does not run here.
    pub(crate) fn unwatch(&self, id: &str) {
        let running = lock(&self.cancellers).contains_key(id);
        let mut finished = lock(&self.finished);
        if !running && finished.get(id).is_some_and(|sender| sender.receiver_count() == 0) {
            finished.remove(id);
        }
    }

    /// Tells the requests waiting on a run that its record is closed (its status is final),
    /// with the row and record it closed with when they are known.
    pub(crate) fn settled(&self, id: &str, closed: Option<Arc<Closed>>) {
        if let Some(sender) = lock(&self.finished).remove(id) {
            let _ = sender.send(RunEnd::Ended(closed));
        }
    }

    /// Says the run ended and forgets it.
    pub(crate) fn ended(&self, id: &str) {
        lock(&self.cancellers).remove(id);
        self.logs.close(id);
        self.settled(id, None);
    }
}

#[cfg(test)]
mod tests {
    use super::claimer_is_gone;

    #[test]
    fn an_earlier_life_of_this_process_is_gone_and_this_one_is_not() {
        let ours = format!("{}#00000000aaaa", theory_ledger::this_owner());
        let earlier = format!("{}#00000000bbbb", theory_ledger::this_owner());
        assert!(claimer_is_gone(&earlier, &ours), "same host and pid, another life");
        assert!(!claimer_is_gone(&ours, &ours));
        assert!(
            !claimer_is_gone("elsewhere:1#00000000cccc", &ours),
            "another host: not known gone"
        );
    }
}
