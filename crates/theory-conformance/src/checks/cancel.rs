//! Control frames: cancel before and during the handler, the hard stop, unknown ops, and
//! `/healthz` while a run is in flight.

use std::time::{Duration, Instant};

use theory_protocol::{Cid, Control, ErrorCode, FileSpec, Frame, Phase, Role};

use super::http::probe_health;
use super::support::{QUICK, ensure, fresh_id, verify_error};
use crate::client::{Connection, Transcript, attach_open, client_open, open, payload_mut};
use crate::{RunSpec, Target};

/// A client whose run waits for an input file that never comes: a run in flight on any processor.
async fn start_pending(
    target: &Target,
    id: &str,
) -> Result<tokio::task::JoinHandle<Transcript>, String> {
    let mut frame = client_open(id, target.quick.mode, target.quick.inputs.clone(), None);
    let spec = FileSpec {
        cid: Cid::of(b"never sent"),
        size_bytes: 10,
        mime: "application/octet-stream".into(),
        get_url: None,
    };
    payload_mut(&mut frame).files.insert("/artifacts/inputs/conformance/never.bin".into(), spec);
    let mut client = open(&target.base_url).await?;
    client.send(&frame).await?;
    Ok(tokio::spawn(client.collect(QUICK)))
}

async fn controller(target: &Target, id: &str) -> Result<Connection, String> {
    let mut controller = open(&target.base_url).await?;
    controller.send(&attach_open(id, Role::Controller)).await?;
    Ok(controller)
}

fn has_phase(transcript: &Transcript, phase: &Phase) -> bool {
    transcript
        .frames
        .iter()
        .any(|frame| matches!(frame, Frame::Event(event) if event.phase == *phase))
}

async fn cancel_and_collect(
    target: &Target,
    id: &str,
    client: tokio::task::JoinHandle<Transcript>,
) -> Result<(Transcript, Transcript, Duration), String> {
    let mut control = controller(target, id).await?;
    let started = Instant::now();
    control.send(&Frame::Control(Control { op: "preempt".into() })).await?;
    let client = client.await.map_err(|error| error.to_string())?;
    let elapsed = started.elapsed();
    let control = control.collect(QUICK).await;
    for (who, transcript) in [("client", &client), ("controller", &control)] {
        verify_error(transcript, id, &ErrorCode::Cancelled)
            .map_err(|error| format!("{who}: {error}"))?;
        ensure(has_phase(transcript, &Phase::Preempted), || format!("{who}: no preempted event"))?;
    }
    Ok((client, control, elapsed))
}

pub(crate) async fn cancel_pending(target: &Target) -> Result<String, String> {
    let id = fresh_id("cancel-pending");
    let client = start_pending(target, &id).await?;
    let (.., elapsed) = cancel_and_collect(target, &id, client).await?;
    Ok(format!("ERR_CANCELLED to client and controller {elapsed:?} after preempt"))
}

pub(crate) async fn control_noop(target: &Target) -> Result<String, String> {
    let id = fresh_id("noop");
    let client = start_pending(target, &id).await?;
    let mut control = controller(target, &id).await?;
    control.send(&Frame::Control(Control { op: "pause".into() })).await?;
    control.send(&Frame::Control(Control { op: "cancel".into() })).await?;
    let control = control.collect(QUICK).await;
    let client = client.await.map_err(|error| error.to_string())?;
    verify_error(&client, &id, &ErrorCode::Cancelled)?;
    let noop = control.frames.iter().find_map(|frame| match frame {
        Frame::Event(event) if event.phase == Phase::ControlNoop => {
            Some(event.detail.get("op").cloned())
        }
        _ => None,
    });
    ensure(noop == Some(Some("pause".into())), || {
        format!("expected control_noop with op pause, got {noop:?}")
    })?;
    ensure(!has_phase(&client, &Phase::ControlNoop), || {
        "the client saw the controller's control_noop: unknown ops must be answered to their sender only, never kept in the run's log".into()
    })?;
    Ok("unknown op → control_noop to its sender only; cancel alias stops the run".into())
}

/// Ops a flooding controller sends, and the length of each op name: 160 MiB of them, so keeping
/// them would grow the processor far past the bound, while an allocator's own slack (a loaded
/// machine, a debug build) stays under it.
const FLOOD_OPS: usize = 40_000;
const FLOOD_OP_BYTES: usize = 4096;

/// A controller flooding unknown ops (160 MiB of them) costs the processor a bounded amount of
/// memory (48 MiB at most): they are answered, not kept.
pub(crate) async fn control_flood(target: &Target, pid: u32) -> Result<String, String> {
    let id = fresh_id("flood");
    let client = start_pending(target, &id).await?;
    let mut control = controller(target, &id).await?;
    let before = crate::process::process_stats(pid).map_err(|error| error.to_string())?;
    let op = "x".repeat(FLOOD_OP_BYTES);
    let frame = Frame::Control(Control { op }).to_json(None);
    for _ in 0..FLOOD_OPS {
        control.send_text(frame.clone()).await?;
    }
    control.send(&Frame::Control(Control { op: "cancel".into() })).await?;
    let control = control.collect(QUICK).await;
    let client = client.await.map_err(|error| error.to_string())?;
    verify_error(&client, &id, &ErrorCode::Cancelled)?;
    let after = crate::process::process_stats(pid).map_err(|error| error.to_string())?;
    let growth = after.rss_bytes.saturating_sub(before.rss_bytes);
    let sent_mib = (FLOOD_OPS * FLOOD_OP_BYTES) / (1024 * 1024);
    ensure(growth <= 48 * 1024 * 1024, || {
        format!(
            "{sent_mib} MiB of unknown control ops grew the processor by {} MiB",
            growth / (1024 * 1024)
        )
    })?;
    ensure(!has_phase(&client, &Phase::ControlNoop), || {
        "the client saw control_noop events".into()
    })?;
    let answered = control
        .frames
        .iter()
        .filter(|frame| matches!(frame, Frame::Event(event) if event.phase == Phase::ControlNoop))
        .count();
    Ok(format!(
        "{FLOOD_OPS} unknown ops ({sent_mib} MiB): {answered} answered, RSS grew {} KiB",
        growth / 1024
    ))
}

/// Starts `spec` as a client and returns once its handler runs (the `started` event arrived).
async fn start_running(
    target: &Target,
    spec: &RunSpec,
    check: &str,
) -> Result<(String, Connection), String> {
    let id = fresh_id(check);
    let mut client = open(&target.base_url).await?;
    client.send(&client_open(&id, spec.mode, spec.inputs.clone(), None)).await?;
    loop {
        match client.next_frame(QUICK).await {
            Some(Frame::Event(event)) if event.phase == Phase::Started => return Ok((id, client)),
            Some(_) => {}
            None => return Err("the run never started".into()),
        }
    }
}

pub(crate) async fn cancel_running(target: &Target, slow: &RunSpec) -> Result<String, String> {
    let (id, client) = start_running(target, slow, "cancel-running").await?;
    let client = tokio::spawn(client.collect(QUICK));
    let (.., elapsed) = cancel_and_collect(target, &id, client).await?;
    ensure(elapsed < target.cancel_grace, || {
        format!("a cooperative handler took {elapsed:?} to stop")
    })?;
    Ok(format!("running handler stopped {elapsed:?} after preempt"))
}

pub(crate) async fn hard_stop(target: &Target, stubborn: &RunSpec) -> Result<String, String> {
    let (id, client) = start_running(target, stubborn, "hard-stop").await?;
    let client = tokio::spawn(client.collect(QUICK));
    let (.., elapsed) = cancel_and_collect(target, &id, client).await?;
    // It must have waited out the grace period (the handler ignores cancel), then no longer.
    let (least, most) =
        (target.cancel_grace.mul_f64(0.9), target.cancel_grace + Duration::from_secs(2));
    ensure(elapsed >= least && elapsed < most, || {
        format!(
            "a handler that ignores cancel was stopped after {elapsed:?}, grace {:?}",
            target.cancel_grace
        )
    })?;
    Ok(format!(
        "handler ignoring cancel stopped hard after {elapsed:?} (grace {:?})",
        target.cancel_grace
    ))
}

pub(crate) async fn health_during_run(target: &Target, slow: &RunSpec) -> Result<String, String> {
    let (id, client) = start_running(target, slow, "busy").await?;
    let http = crate::http_client();
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        slowest = slowest.max(probe_health(&http, &target.base_url).await?);
    }
    let client = tokio::spawn(client.collect(QUICK));
    cancel_and_collect(target, &id, client).await?;
    Ok(format!("20 × /healthz during a run, slowest {slowest:?}"))
}
