//! `put_urls` uploads from many runs at once: a bounded number of connections to the host, and
//! no more uploads at once than that.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use theory_conformance::client::{client_open, payload_mut, run_once};
use theory_conformance::sink::UploadSink;
use theory_processor::protocol::{Envelope, Mode};
use theory_processor::{
    Context, Identity, Inputs, OutputItem, ProcessorResult, ServerConfig, serve_on,
};
use tokio::net::TcpListener;

const RUNS: usize = 40;

fn writer() -> impl theory_processor::Processor {
    |_inputs: Inputs, _context: Context| async move {
        Ok(ProcessorResult {
            outputs: vec![OutputItem::text("a.txt", "a"), OutputItem::text("b.txt", "b")],
            processor_info: "test/uploader@1".into(),
            ..ProcessorResult::default()
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_runs_upload_over_a_few_connections_per_host() -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|error| error.to_string())?;
    let base_url = format!("http://{}", listener.local_addr().map_err(|error| error.to_string())?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let identity = Identity::new("test/uploader@1");
    let server =
        tokio::spawn(serve_on(listener, identity, writer(), ServerConfig::default(), async {
            let _ = stopped.await;
        }));
    let sink = UploadSink::start().await.map_err(|error| error.to_string())?;
    let runs: Vec<_> = (0..RUNS)
        .map(|n| {
            let mut plan = BTreeMap::new();
            for name in ["a.txt", "b.txt", "outputs.json"] {
                let key = if name == "outputs.json" {
                    name.to_owned()
                } else {
                    format!("outputs/{name}")
                };
                plan.insert(key, sink.url(&format!("{n}/{name}")));
            }
            let mut frame =
                client_open(&format!("U{n}"), Mode::Mock, json!({}), Some("/artifacts/outputs/u/"));
            payload_mut(&mut frame).put_urls = Some(plan);
            let base_url = base_url.clone();
            tokio::spawn(async move { run_once(&base_url, &frame, Duration::from_secs(30)).await })
        })
        .collect();
    for run in runs {
        let transcript = run.await.map_err(|error| error.to_string())??;
        assert!(
            matches!(transcript.result(), Some(Envelope::Success(_))),
            "{:?}",
            transcript.result()
        );
    }
    assert_eq!(sink.uploads().len(), RUNS * 3, "every output and index arrived");
    assert!(sink.max_in_flight() <= 8, "{} uploads at once", sink.max_in_flight());
    // At most 8 at once, and they are reused: 120 uploads over about 8 connections. A few more
    // may be opened over the run: hyper puts a connection back in its pool only once its task
    // has seen the response end, so an upload that starts the moment another one ends can find
    // none idle (seen once as 9 in CI). Unbounded, this was one connection per upload.
    assert!(
        sink.connections_seen() <= 12,
        "{} connections for {} uploads",
        sink.connections_seen(),
        RUNS * 3
    );

    let _ = stop.send(());
    server.await.map_err(|error| error.to_string())?.map_err(|error| error.to_string())?;
    Ok(())
}
