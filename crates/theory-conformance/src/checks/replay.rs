//! Several connections per run: a late joiner first receives everything already emitted.

use theory_protocol::{Frame, Role};

use super::support::{QUICK, ensure, fresh_id, verify_ending, verify_success};
use crate::client::{Transcript, attach_open, client_open, open, run_once};
use crate::{RunSpec, Target};

fn same_stream(left: &Transcript, right: &Transcript) -> Result<(), String> {
    // Frames after the Ack: the Ack is per connection, everything else is the run's.
    ensure(left.frames[1..] == right.frames[1..], || {
        format!("streams differ:\n  first:  {:?}\n  second: {:?}", left.kinds(), right.kinds())
    })?;
    let cids = |transcript: &Transcript| {
        transcript.outputs.iter().map(|output| output.received_cid).collect::<Vec<_>>()
    };
    ensure(cids(left) == cids(right), || "output bytes differ between connections".into())
}

pub(crate) async fn replay_after_finish(target: &Target) -> Result<String, String> {
    let id = fresh_id("replay");
    let frame = client_open(&id, target.quick.mode, target.quick.inputs.clone(), None);
    let first = run_once(&target.base_url, &frame, QUICK).await?;
    verify_success(&first, &id, None)?;
    let late = run_once(&target.base_url, &attach_open(&id, Role::Observer), QUICK).await?;
    verify_success(&late, &id, None).map_err(|error| format!("late observer: {error}"))?;
    same_stream(&first, &late)?;
    // A reconnecting client (same id, payload again) must not start the run twice.
    let again = run_once(&target.base_url, &frame, QUICK).await?;
    verify_success(&again, &id, None).map_err(|error| format!("reconnecting client: {error}"))?;
    same_stream(&first, &again)?;
    Ok(format!("observer and reconnecting client replayed {} frames", first.frames.len() - 1))
}

pub(crate) async fn replay_while_running(
    target: &Target,
    slow: &RunSpec,
) -> Result<String, String> {
    let id = fresh_id("replay-live");
    let mut client = open(&target.base_url).await?;
    client.send(&client_open(&id, slow.mode, slow.inputs.clone(), None)).await?;
    let client = tokio::spawn(client.collect(QUICK * 2));
    let mut observer = open(&target.base_url).await?;
    observer.send(&attach_open(&id, Role::Observer)).await?;
    // The observer is attached (its Ack arrived) before the run is stopped.
    match observer.next_frame(QUICK).await {
        Some(Frame::Ack(_)) => {}
        other => return Err(format!("observer: expected Ack, got {other:?}")),
    }
    let observer_rest = tokio::spawn(observer.collect(QUICK * 2));
    let mut controller = open(&target.base_url).await?;
    controller.send(&attach_open(&id, Role::Controller)).await?;
    controller.send(&Frame::Control(theory_protocol::Control { op: "preempt".into() })).await?;
    let controller = controller.collect(QUICK).await;
    let client = client.await.map_err(|error| error.to_string())?;
    let observer = observer_rest.await.map_err(|error| error.to_string())?;
    verify_ending(&client, &id).map_err(|error| format!("client: {error}"))?;
    verify_ending(&controller, &id).map_err(|error| format!("controller: {error}"))?;
    verify_ending(&observer, &id).map_err(|error| format!("observer: {error}"))?;
    same_stream(&client, &observer)?;
    same_stream(&client, &controller)?;
    Ok(format!("client, observer and controller saw the same {} frames", client.frames.len() - 1))
}
