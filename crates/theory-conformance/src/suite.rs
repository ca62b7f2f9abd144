//! The ordered list of checks and how a target's missing run kinds map to "not applicable".

use std::future::Future;

use crate::checks::{cancel, failures, files, http, replay, resources, runs, uploads};
use crate::{Outcome, Report, RunSpec, Target};

async fn record(
    report: &mut Report,
    name: &'static str,
    check: impl Future<Output = Result<String, String>>,
) {
    let outcome = match check.await {
        Ok(detail) => Outcome::Passed(detail),
        Err(reason) => Outcome::Failed(reason),
    };
    report.outcomes.push((name, outcome));
    if let Some(stats) = report
        .pid
        .and_then(|pid| crate::process::process_stats(pid).ok())
    {
        report.memory_after.push((name, stats.rss_bytes));
    }
}

async fn record_with<'a, F, Fut>(
    report: &mut Report,
    name: &'static str,
    spec: Option<&'a RunSpec>,
    missing: &str,
    check: F,
) where
    F: FnOnce(&'a RunSpec) -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    match spec {
        Some(spec) => record(report, name, check(spec)).await,
        None => report
            .outcomes
            .push((name, Outcome::NotApplicable(missing.to_owned()))),
    }
}

/// Runs every check against `target`, in order, and reports each outcome.
pub async fn run_suite(target: &Target) -> Report {
    let mut report = Report {
        pid: target.pid,
        ..Report::default()
    };
    let report = &mut report;
    record(report, "health", http::health(target)).await;
    record(report, "info", http::info(target)).await;
    record(report, "subprotocol_required", http::subprotocol(target)).await;
    record(report, "close_codes", http::close_codes(target)).await;
    record(report, "ack_and_event_order", runs::quick_run(target)).await;
    record(report, "write_prefix_rules", runs::write_prefix(target)).await;
    record(report, "mock_determinism", runs::determinism(target)).await;
    record(report, "concurrent_runs", runs::concurrent_runs(target)).await;
    record(
        report,
        "replay_after_finish",
        replay::replay_after_finish(target),
    )
    .await;
    record(
        report,
        "input_file_frames",
        files::input_file_frames(target),
    )
    .await;
    record(report, "input_file_urls", files::input_file_urls(target)).await;
    record(report, "put_urls_plan", uploads::put_urls(target)).await;
    record(report, "upload_failure", uploads::upload_failure(target)).await;
    record(
        report,
        "cancel_before_start",
        cancel::cancel_pending(target),
    )
    .await;
    record(report, "control_noop", cancel::control_noop(target)).await;
    let no_slow = "the target has no slow run";
    record_with(
        report,
        "replay_while_running",
        target.slow.as_ref(),
        no_slow,
        |slow| replay::replay_while_running(target, slow),
    )
    .await;
    record_with(
        report,
        "cancel_running_handler",
        target.slow.as_ref(),
        no_slow,
        |slow| cancel::cancel_running(target, slow),
    )
    .await;
    record_with(
        report,
        "healthz_during_run",
        target.slow.as_ref(),
        no_slow,
        |slow| cancel::health_during_run(target, slow),
    )
    .await;
    record_with(
        report,
        "hard_stop_after_grace",
        target.stubborn.as_ref(),
        "the target has no run that ignores cancel",
        |stubborn| cancel::hard_stop(target, stubborn),
    )
    .await;
    record_with(
        report,
        "output_path_rules",
        target.bad_path.as_ref(),
        "the target cannot be asked for a bad output path",
        |bad| failures::output_path_rules(target, bad),
    )
    .await;
    record_with(
        report,
        "handler_panic",
        target.panics.as_ref(),
        "the target cannot be asked to panic",
        |panics| failures::handler_panic(target, panics),
    )
    .await;
    let no_pid = "the target's process id is unknown";
    match (target.large.as_ref(), target.pid) {
        (Some(large), Some(pid)) => {
            record(
                report,
                "large_output_bounded_memory",
                resources::large_output(target, large, pid),
            )
            .await
        }
        (None, _) => report.outcomes.push((
            "large_output_bounded_memory",
            Outcome::NotApplicable("the target has no large-output run".into()),
        )),
        (_, None) => report.outcomes.push((
            "large_output_bounded_memory",
            Outcome::NotApplicable(no_pid.into()),
        )),
    }
    match target.pid {
        Some(pid) => {
            record(
                report,
                "endurance_no_growth",
                resources::endurance(target, pid),
            )
            .await
        }
        None => report
            .outcomes
            .push(("endurance_no_growth", Outcome::NotApplicable(no_pid.into()))),
    }
    std::mem::take(report)
}
