//! A processor written as a closure, served on a listener the test owns.

use std::time::Duration;

use serde_json::json;
use theory_conformance::client::{client_open, run_once};
use theory_processor::protocol::{Envelope, ErrorCode, Frame, Mode, Phase};
use theory_processor::{
    Context, Identity, Inputs, OutputItem, ProcessorError, ProcessorResult, ServerConfig, serve_on,
};
use tokio::net::TcpListener;

fn greeter(greeting: &'static str) -> impl theory_processor::Processor {
    move |inputs: Inputs, context: Context| async move {
        if context.is_cancelled() {
            return Err(ProcessorError::cancelled());
        }
        let name =
            inputs.param("name").and_then(|name| name.as_str()).unwrap_or("world").to_owned();
        if name == "slow" {
            context.cancelled().await;
            return Err(ProcessorError::cancelled());
        }
        context.token(format!("{greeting}, {name}"));
        Ok(ProcessorResult {
            outputs: vec![OutputItem::text("greeting.txt", format!("{greeting}, {name}"))],
            processor_info: "test/greeter@1".into(),
            usage: json!({"greetings": 1}).as_object().cloned().unwrap_or_default(),
            ..ProcessorResult::default()
        })
    }
}

#[tokio::test]
async fn closure_runner_serves_and_shuts_down_cleanly() -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|error| error.to_string())?;
    let base_url = format!("http://{}", listener.local_addr().map_err(|error| error.to_string())?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config =
        ServerConfig { cancel_grace: Duration::from_millis(200), ..ServerConfig::default() };
    let server = tokio::spawn(serve_on(
        listener,
        Identity::new("test/greeter@1"),
        greeter("Hello"),
        config,
        async {
            let _ = stopped.await;
        },
    ));

    let frame = client_open(
        "E1",
        Mode::Mock,
        json!({"name": "Theory"}),
        Some("/artifacts/out/{execution_id}/"),
    );
    let transcript = run_once(&base_url, &frame, Duration::from_secs(10)).await?;
    assert_eq!(transcript.text(), "Hello, Theory");
    let Some(Envelope::Success(success)) = transcript.result() else {
        panic!("{:?}", transcript.result())
    };
    assert_eq!(success.outputs[0].path, "/artifacts/out/E1/greeting.txt");
    assert_eq!(success.meta.processor_info.as_deref(), Some("test/greeter@1"));
    assert_eq!(
        success.meta.usage.as_ref().and_then(|usage| usage.get("greetings")),
        Some(&json!(1))
    );
    assert_eq!(transcript.outputs[0].bytes.as_deref(), Some(&b"Hello, Theory"[..]));

    // A run in flight at shutdown ends with ERR_CANCELLED, and the server returns.
    let mut client = theory_conformance::client::open(&base_url).await?;
    client.send(&client_open("E2", Mode::Mock, json!({"name": "slow"}), None)).await?;
    while let Some(frame) = client.next_frame(Duration::from_secs(10)).await {
        if matches!(&frame, Frame::Event(event) if event.phase == Phase::Started) {
            break;
        }
    }
    let in_flight = tokio::spawn(client.collect(Duration::from_secs(10)));
    let _ = stop.send(());
    let transcript = in_flight.await.map_err(|error| error.to_string())?;
    assert_eq!(transcript.result().and_then(Envelope::error_code), Some(&ErrorCode::Cancelled));
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .map_err(|_| "server did not stop".to_owned())?
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?;
    Ok(())
}
