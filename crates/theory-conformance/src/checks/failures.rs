//! Handler failures end in a `RunResult`, never a dropped socket.

use theory_protocol::{ErrorCode, Frame};

use super::support::{QUICK, ensure, fresh_id, verify_error};
use crate::client::{client_open, run_once};
use crate::{RunSpec, Target};

pub(crate) async fn output_path_rules(
    target: &Target,
    bad_path: &RunSpec,
) -> Result<String, String> {
    let id = fresh_id("bad-path");
    let frame = client_open(&id, bad_path.mode, bad_path.inputs.clone(), None);
    let transcript = run_once(&target.base_url, &frame, QUICK).await?;
    let message = verify_error(&transcript, &id, &ErrorCode::OutputPath)?;
    ensure(!transcript.frames.iter().any(|frame| matches!(frame, Frame::Output(_))), || {
        "an Output frame was sent for a refused path".into()
    })?;
    Ok(format!("ERR_OUTPUT_PATH, nothing sent ({message})"))
}

pub(crate) async fn handler_panic(target: &Target, panics: &RunSpec) -> Result<String, String> {
    let id = fresh_id("panic");
    let frame = client_open(&id, panics.mode, panics.inputs.clone(), None);
    let transcript = run_once(&target.base_url, &frame, QUICK).await?;
    let message = verify_error(&transcript, &id, &ErrorCode::Runtime)?;
    // The server must still serve after a panic.
    super::http::probe_health(&crate::http_client(), &target.base_url).await?;
    Ok(format!("ERR_RUNTIME, close 1000, server still healthy ({message})"))
}
