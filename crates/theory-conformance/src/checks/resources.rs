//! Bounded resources: large outputs stream with bounded memory, and thousands of runs in a row
//! grow neither threads, file descriptors nor memory.

use std::time::Instant;

use theory_protocol::Envelope;

use super::support::{QUICK, ensure, fresh_id, verify_success};
use crate::client::{client_open, run_once};
use crate::process::process_stats;
use crate::{RunSpec, Target};

const MIB: f64 = 1024.0 * 1024.0;

pub(crate) async fn large_output(
    target: &Target,
    large: &RunSpec,
    pid: u32,
) -> Result<String, String> {
    let id = fresh_id("large");
    let started = Instant::now();
    let frame = client_open(&id, large.mode, large.inputs.clone(), None);
    let transcript = run_once(&target.base_url, &frame, QUICK * 10).await?;
    let elapsed = started.elapsed();
    verify_success(&transcript, &id, None)?;
    let largest = transcript.outputs.iter().map(|output| output.received_bytes).max().unwrap_or(0);
    ensure(largest >= target.large_min_bytes, || {
        format!("largest output has only {largest} bytes")
    })?;
    let stats = process_stats(pid).map_err(|error| error.to_string())?;
    ensure(stats.peak_rss_bytes <= target.max_peak_rss_bytes, || {
        format!(
            "peak RSS {:.1} MiB is over {:.1} MiB",
            stats.peak_rss_bytes as f64 / MIB,
            target.max_peak_rss_bytes as f64 / MIB
        )
    })?;
    let total: u64 = transcript.outputs.iter().map(|output| output.received_bytes).sum();
    Ok(format!(
        "{:.0} MiB verified in {elapsed:?} ({:.0} MiB/s end to end); server peak RSS {:.1} MiB",
        total as f64 / MIB,
        total as f64 / MIB / elapsed.as_secs_f64(),
        stats.peak_rss_bytes as f64 / MIB
    ))
}

pub(crate) async fn endurance(target: &Target, pid: u32) -> Result<String, String> {
    let runs = target.endurance_runs;
    let warm_up = (runs / 10).max(1);
    let started = Instant::now();
    let mut baseline = None;
    let mut latencies = Vec::with_capacity(runs);
    for index in 0..runs {
        if index == warm_up {
            baseline = Some(process_stats(pid).map_err(|error| error.to_string())?);
        }
        let id = fresh_id("endurance");
        let run_started = Instant::now();
        let frame = client_open(&id, target.quick.mode, target.quick.inputs.clone(), None);
        let transcript = run_once(&target.base_url, &frame, QUICK).await?;
        if !matches!(transcript.result(), Some(Envelope::Success(_))) {
            verify_success(&transcript, &id, None)
                .map_err(|error| format!("run {index}: {error}"))?;
        }
        latencies.push(run_started.elapsed());
    }
    let elapsed = started.elapsed();
    let before = baseline.ok_or("too few runs for a baseline")?;
    let after = process_stats(pid).map_err(|error| error.to_string())?;
    ensure(after.threads <= before.threads + 2, || {
        format!("threads grew from {} to {}", before.threads, after.threads)
    })?;
    ensure(after.fds <= before.fds + 4, || {
        format!("file descriptors grew from {} to {}", before.fds, after.fds)
    })?;
    let growth = after.rss_bytes.saturating_sub(before.rss_bytes);
    ensure(growth <= 16 * 1024 * 1024, || {
        format!(
            "RSS grew by {:.1} MiB ({:.1} → {:.1})",
            growth as f64 / MIB,
            before.rss_bytes as f64 / MIB,
            after.rss_bytes as f64 / MIB
        )
    })?;
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    Ok(format!(
        "{runs} runs in {elapsed:?} (p50 {p50:?}); threads {}→{}, fds {}→{}, RSS {:.1}→{:.1} MiB",
        before.threads,
        after.threads,
        before.fds,
        after.fds,
        before.rss_bytes as f64 / MIB,
        after.rss_bytes as f64 / MIB
    ))
}
