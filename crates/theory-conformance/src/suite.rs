//! The ordered list of checks and how a target's missing run kinds map to "not applicable".

use std::future::Future;

use crate::checks::{cancel, failures, files, http, replay, resources, runs, uploads};
use crate::{Outcome, Report, RunSpec, Target};

const NO_SLOW: &str = "the target has no slow run";
const NO_PID: &str = "the target's process id is unknown";

impl Report {
    async fn record(
        &mut self,
        name: &'static str,
        check: impl Future<Output = Result<String, String>>,
    ) {
        // Boxed: a check holds sockets whose futures are large.
        let outcome = match Box::pin(check).await {
            Ok(detail) => Outcome::Passed(detail),
            Err(reason) => Outcome::Failed(reason),
        };
        self.outcomes.push((name, outcome));
        if let Some(stats) = self.pid.and_then(|pid| crate::process::process_stats(pid).ok()) {
            self.memory_after.push((name, stats.rss_bytes));
        }
    }

    fn not_applicable_because(&mut self, name: &'static str, reason: &str) {
        self.outcomes.push((name, Outcome::NotApplicable(reason.to_owned())));
    }

    async fn record_with<'a, F, Fut>(
        &mut self,
        name: &'static str,
        spec: Option<&'a RunSpec>,
        missing: &str,
        check: F,
    ) where
        F: FnOnce(&'a RunSpec) -> Fut,
        Fut: Future<Output = Result<String, String>>,
    {
        match spec {
            Some(spec) => self.record(name, check(spec)).await,
            None => self.not_applicable_because(name, missing),
        }
    }
}

/// Runs every check against `target`, in order, and reports each outcome.
pub async fn run_suite(target: &Target) -> Report {
    let mut report = Report { pid: target.pid, ..Report::default() };
    handshake_checks(&mut report, target).await;
    run_checks(&mut report, target).await;
    control_checks(&mut report, target).await;
    resource_checks(&mut report, target).await;
    report
}

async fn handshake_checks(report: &mut Report, target: &Target) {
    report.record("health", http::health(target)).await;
    report.record("info", http::info(target)).await;
    report.record("subprotocol_required", http::subprotocol(target)).await;
    report.record("close_codes", http::close_codes(target)).await;
}

async fn run_checks(report: &mut Report, target: &Target) {
    report.record("ack_and_event_order", runs::quick_run(target)).await;
    report.record("write_prefix_rules", runs::write_prefix(target)).await;
    report.record("mock_determinism", runs::determinism(target)).await;
    report.record("concurrent_runs", runs::concurrent_runs(target)).await;
    report.record("replay_after_finish", replay::replay_after_finish(target)).await;
    report.record("input_file_frames", files::input_file_frames(target)).await;
    report.record("input_file_urls", files::input_file_urls(target)).await;
    report.record("put_urls_plan", uploads::put_urls(target)).await;
    report.record("upload_failure", uploads::upload_failure(target)).await;
    let bad_path = target.bad_path.as_ref();
    let missing = "the target cannot be asked for a bad output path";
    report
        .record_with("output_path_rules", bad_path, missing, |bad| {
            failures::output_path_rules(target, bad)
        })
        .await;
    let missing = "the target cannot be asked to panic";
    report
        .record_with("handler_panic", target.panics.as_ref(), missing, |panics| {
            failures::handler_panic(target, panics)
        })
        .await;
}

async fn control_checks(report: &mut Report, target: &Target) {
    report.record("cancel_before_start", cancel::cancel_pending(target)).await;
    report.record("control_noop", cancel::control_noop(target)).await;
    let slow = target.slow.as_ref();
    report
        .record_with("replay_while_running", slow, NO_SLOW, |slow| {
            replay::replay_while_running(target, slow)
        })
        .await;
    report
        .record_with("cancel_running_handler", slow, NO_SLOW, |slow| {
            cancel::cancel_running(target, slow)
        })
        .await;
    report
        .record_with("healthz_during_run", slow, NO_SLOW, |slow| {
            cancel::health_during_run(target, slow)
        })
        .await;
    let missing = "the target has no run that ignores cancel";
    report
        .record_with("hard_stop_after_grace", target.stubborn.as_ref(), missing, |stubborn| {
            cancel::hard_stop(target, stubborn)
        })
        .await;
}

async fn resource_checks(report: &mut Report, target: &Target) {
    let name = "large_output_bounded_memory";
    match (target.large.as_ref(), target.pid) {
        (Some(large), Some(pid)) => {
            report.record(name, resources::large_output(target, large, pid)).await;
        }
        (None, _) => report.not_applicable_because(name, "the target has no large-output run"),
        (_, None) => report.not_applicable_because(name, NO_PID),
    }
    if let Some(pid) = target.pid {
        report.record("endurance_no_growth", resources::endurance(target, pid)).await;
        report.record("control_flood_bounded", cancel::control_flood(target, pid)).await;
    } else {
        report.not_applicable_because("endurance_no_growth", NO_PID);
        report.not_applicable_because("control_flood_bounded", NO_PID);
    }
}
