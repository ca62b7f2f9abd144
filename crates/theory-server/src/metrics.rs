//! `GET /metrics`: Prometheus' text format. Runs by processor and status and the queue's depth
//! come from the ledger (so they count every front end); run and queue-wait durations and the
//! runs under way are this front end's own.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State as Shared;
use axum::response::{IntoResponse, Response};
use theory_ledger::Scope;

use crate::auth::Caller;
use crate::errors::ApiError;
use crate::state::State;

/// Upper bounds of the duration buckets, in seconds.
const BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

/// A Prometheus histogram of durations.
#[derive(Debug, Default)]
struct Histogram {
    /// Observations at most each bound (not yet cumulative).
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.counts[bucket] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

/// What this front end measures.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    inner: Mutex<Measured>,
}

#[derive(Debug, Default)]
struct Measured {
    run_duration: Histogram,
    queue_wait: Histogram,
}

impl Metrics {
    /// A run ran for `ran` after waiting `waited` in the queue.
    pub(crate) fn finished(&self, waited: Duration, ran: Duration) {
        let mut measured = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        measured.queue_wait.observe(waited.as_secs_f64());
        measured.run_duration.observe(ran.as_secs_f64());
    }
}

/// Escapes a label value.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `GET /metrics` (a token that administers plans, when tokens are required: it counts every
/// tenant's runs).
pub(crate) async fn metrics(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.needs(Scope::PlansAdmin)?;
    let counts = state.ledger.run_counts().await?;
    let depth = state.ledger.queue_depth().await?;
    let mut out = String::with_capacity(4096);
    out.push_str("# HELP theory_runs Runs the queue holds, by processor and status.\n# TYPE theory_runs gauge\n");
    for (processor, status, count) in counts {
        let _ = writeln!(
            out,
            "theory_runs{{processor=\"{}\",status=\"{}\"}} {count}",
            label(&processor),
            label(&status)
        );
    }
    let _ = writeln!(
        out,
        "# HELP theory_queue_depth Runs waiting for a worker.\n# TYPE theory_queue_depth gauge\ntheory_queue_depth {depth}"
    );
    let _ = writeln!(
        out,
        "# HELP theory_runs_in_flight Runs under way on this front end.\n# TYPE theory_runs_in_flight gauge\ntheory_runs_in_flight {}",
        state.in_flight()
    );
    let _ = writeln!(
        out,
        "# HELP theory_warm_instances Started processor instances kept for the next run.\n# TYPE theory_warm_instances gauge\ntheory_warm_instances {}",
        state.orchestrator.warm.as_ref().map_or(0, |pool| pool.len())
    );
    {
        let measured =
            state.metrics.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        measured.run_duration.render(
            "theory_run_duration_seconds",
            "How long runs of this front end took, from claim to end.",
            &mut out,
        );
        measured.queue_wait.render(
            "theory_queue_wait_seconds",
            "How long runs of this front end waited in the queue.",
            &mut out,
        );
    }
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out)
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn a_histogram_renders_cumulative_buckets() {
        let mut histogram = Histogram::default();
        for seconds in [0.0005, 0.002, 0.002, 3.0, 100.0] {
            histogram.observe(seconds);
        }
        let mut out = String::new();
        histogram.render("t", "help", &mut out);
        assert!(out.contains("t_bucket{le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("t_bucket{le=\"0.0025\"} 3\n"), "{out}");
        assert!(out.contains("t_bucket{le=\"5\"} 4\n"), "{out}");
        assert!(out.contains("t_bucket{le=\"60\"} 4\n"), "{out}");
        assert!(out.contains("t_bucket{le=\"+Inf\"} 5\n"), "{out}");
        assert!(out.contains("t_count 5\n"), "{out}");
    }
}
