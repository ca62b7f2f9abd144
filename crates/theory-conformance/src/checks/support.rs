//! Helpers the checks share: fresh ids and the shape every successful run must have.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use theory_protocol::{Envelope, ErrorCode, Frame, Phase, SuccessEnvelope, close_code};

use crate::client::Transcript;

/// Time a quick run may take before the check gives up.
pub(crate) const QUICK: Duration = Duration::from_secs(30);

/// Returns an execution id no earlier run on the same server used.
pub(crate) fn fresh_id(check: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos());
    format!("conf-{check}-{nanos:x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Fails with `message` unless `condition` holds.
pub(crate) fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(message()) }
}

fn position(transcript: &Transcript, wanted: impl Fn(&Frame) -> bool) -> Option<usize> {
    transcript.frames.iter().position(wanted)
}

fn is_phase(frame: &Frame, phase: &Phase) -> bool {
    matches!(frame, Frame::Event(event) if event.phase == *phase)
}

/// Checks what every finished connection must show: no violation, `Ack` first, one `RunResult`
/// last, close 1000.
pub(crate) fn verify_ending<'a>(
    transcript: &'a Transcript,
    execution_id: &str,
) -> Result<&'a Envelope, String> {
    ensure(!transcript.timed_out, || {
        format!("no close before the deadline; saw {:?}", transcript.kinds())
    })?;
    ensure(transcript.violations.is_empty(), || {
        format!("violations: {:?}", transcript.violations)
    })?;
    match transcript.frames.first() {
        Some(Frame::Ack(ack)) if ack.execution_id.as_str() == execution_id => {}
        other => {
            return Err(format!("first frame must be Ack for {execution_id}, got {other:?}"));
        }
    }
    let results =
        transcript.frames.iter().filter(|frame| matches!(frame, Frame::RunResult(_))).count();
    ensure(results == 1, || format!("expected exactly one RunResult, got {results}"))?;
    ensure(matches!(transcript.frames.last(), Some(Frame::RunResult(_))), || {
        format!("RunResult must be the last frame: {:?}", transcript.kinds())
    })?;
    ensure(transcript.close.as_ref().map(|close| close.0) == Some(close_code::NORMAL), || {
        format!("expected close 1000 after RunResult, got {:?}", transcript.close)
    })?;
    let envelope = transcript.result().ok_or("no RunResult")?;
    ensure(envelope.execution_id().as_str() == execution_id, || {
        "RunResult names another execution".into()
    })?;
    Ok(envelope)
}

/// Checks an error ending with `code`.
pub(crate) fn verify_error(
    transcript: &Transcript,
    execution_id: &str,
    code: &ErrorCode,
) -> Result<String, String> {
    let envelope = verify_ending(transcript, execution_id)?;
    match envelope {
        Envelope::Error(error) if error.error.code == *code => Ok(error.error.message.clone()),
        Envelope::Error(error) => {
            Err(format!("expected {code}, got {}: {}", error.error.code, error.error.message))
        }
        Envelope::Success(_) => Err(format!("expected {code}, got success")),
    }
}

/// Checks a successful run end to end: frame order, output integrity, and an envelope that
/// agrees with the outputs received. With `write_prefix`, paths must start with it.
pub(crate) fn verify_success<'a>(
    transcript: &'a Transcript,
    execution_id: &str,
    write_prefix: Option<&str>,
) -> Result<&'a SuccessEnvelope, String> {
    let envelope = verify_ending(transcript, execution_id)?;
    let success = match envelope {
        Envelope::Success(success) => success,
        Envelope::Error(error) => {
            return Err(format!("run failed: {}: {}", error.error.code, error.error.message));
        }
    };
    let started =
        position(transcript, |frame| is_phase(frame, &Phase::Started)).ok_or("no started event")?;
    let completed = position(transcript, |frame| is_phase(frame, &Phase::Completed))
        .ok_or("no completed event")?;
    let first_work =
        position(transcript, |frame| matches!(frame, Frame::Token(_) | Frame::Output(_)));
    let last_output = transcript.frames.iter().rposition(|frame| matches!(frame, Frame::Output(_)));
    ensure(first_work.is_none_or(|first| first > started), || {
        "Token or Output before the started event".into()
    })?;
    ensure(last_output.is_none_or(|last| last < completed), || {
        "Output after the completed event".into()
    })?;
    ensure(completed + 1 == transcript.frames.len() - 1, || {
        format!("completed must come right before RunResult: {:?}", transcript.kinds())
    })?;

    for output in &transcript.outputs {
        ensure(output.is_intact(), || {
            format!(
                "output {} announced {} bytes {} but {} bytes {} arrived",
                output.header.path,
                output.header.size_bytes,
                output.header.cid,
                output.received_bytes,
                output.received_cid
            )
        })?;
    }
    let mut sorted = success.outputs.clone();
    sorted.sort_by(|left, right| left.path.cmp(&right.path));
    ensure(sorted == success.outputs, || "RunResult outputs are not sorted by path".into())?;
    ensure(success.outputs.len() == transcript.outputs.len(), || {
        format!(
            "RunResult lists {} outputs, {} were sent",
            success.outputs.len(),
            transcript.outputs.len()
        )
    })?;
    let prefix = match write_prefix {
        Some(prefix) => prefix.to_owned(),
        None => success
            .index_path
            .strip_suffix("outputs.json")
            .ok_or("index_path must end with outputs.json")?
            .to_owned(),
    };
    ensure(success.index_path == format!("{prefix}outputs.json"), || {
        format!("index_path {} is not {prefix}outputs.json", success.index_path)
    })?;
    for received in &transcript.outputs {
        let path = format!("{prefix}{}", received.header.path);
        let entry = success
            .outputs
            .iter()
            .find(|entry| entry.path == path)
            .ok_or_else(|| format!("no entry {path}"))?;
        ensure(
            entry.cid == received.header.cid
                && entry.size_bytes == received.header.size_bytes
                && entry.mime == received.header.mime,
            || format!("entry {path} disagrees with its Output header"),
        )?;
    }
    Ok(success)
}
