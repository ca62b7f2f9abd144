//! Whole runs: frame order, output integrity, write prefix rules, determinism, concurrency.

use std::time::Instant;

use theory_protocol::Mode;

use super::http::probe_health;
use super::support::{QUICK, ensure, fresh_id, verify_success};
use crate::Target;
use crate::client::{client_open, run_once};

pub(crate) async fn quick_run(target: &Target) -> Result<String, String> {
    let id = fresh_id("quick");
    let started = Instant::now();
    let frame = client_open(&id, target.quick.mode, target.quick.inputs.clone(), None);
    let transcript = run_once(&target.base_url, &frame, QUICK).await?;
    let success = verify_success(&transcript, &id, None)?;
    ensure(!success.outputs.is_empty(), || "the quick run produced no output".into())?;
    Ok(format!(
        "{} outputs, {} tokens, {} frames in {:?}",
        success.outputs.len(),
        transcript.frames.iter().filter(|frame| frame.kind() == "Token").count(),
        transcript.frames.len(),
        started.elapsed()
    ))
}

pub(crate) async fn write_prefix(target: &Target) -> Result<String, String> {
    for (template, expand) in [
        ("/artifacts/outputs/conformance/{execution_id}", true),
        ("/artifacts/outputs/conformance/{{execution_id}}/nested/", true),
        ("/artifacts/outputs/conformance/fixed/", false),
    ] {
        let id = fresh_id("prefix");
        let mut expected = if expand {
            template.replace("{{execution_id}}", &id).replace("{execution_id}", &id)
        } else {
            template.to_owned()
        };
        if !expected.ends_with('/') {
            expected.push('/');
        }
        let frame =
            client_open(&id, target.quick.mode, target.quick.inputs.clone(), Some(template));
        let transcript = run_once(&target.base_url, &frame, QUICK).await?;
        let success = verify_success(&transcript, &id, Some(&expected))
            .map_err(|error| format!("{template}: {error}"))?;
        ensure(success.outputs.iter().all(|entry| entry.path.starts_with(&expected)), || {
            format!("{template}: an output escaped {expected}")
        })?;
    }
    Ok("{execution_id}, {{execution_id}} expanded; trailing / added".into())
}

pub(crate) async fn determinism(target: &Target) -> Result<String, String> {
    if target.quick.mode != Mode::Mock {
        return Err("the quick run must be a mock run".into());
    }
    let mut runs = Vec::new();
    for _ in 0..2 {
        let id = fresh_id("determinism");
        let frame = client_open(
            &id,
            Mode::Mock,
            target.quick.inputs.clone(),
            Some("/artifacts/outputs/determinism/"),
        );
        let transcript = run_once(&target.base_url, &frame, QUICK).await?;
        let success = verify_success(&transcript, &id, Some("/artifacts/outputs/determinism/"))?;
        runs.push((success.outputs.clone(), transcript.text()));
    }
    ensure(runs[0] == runs[1], || "two mock runs with the same inputs differ".into())?;
    Ok(format!("same {} output CIDs and tokens twice", runs[0].0.len()))
}

pub(crate) async fn concurrent_runs(target: &Target) -> Result<String, String> {
    const RUNS: usize = 16;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..RUNS {
        let base_url = target.base_url.clone();
        let quick = target.quick.clone();
        tasks.spawn(async move {
            let id = fresh_id("concurrent");
            let frame = client_open(&id, quick.mode, quick.inputs, None);
            let transcript = run_once(&base_url, &frame, QUICK).await?;
            verify_success(&transcript, &id, None).map(|_| ())
        });
    }
    let client = crate::http_client();
    let health = probe_health(&client, &target.base_url).await?;
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|error| error.to_string())??;
    }
    Ok(format!("{RUNS} runs at once in {:?}; /healthz meanwhile in {health:?}", started.elapsed()))
}
