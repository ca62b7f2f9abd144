//! `/healthz`, `/info`, and the WebSocket handshake: subprotocol and close codes.

use std::time::{Duration, Instant};

use bytes::Bytes;
use theory_protocol::{Frame, HEALTHZ_BODY, Info, SUBPROTOCOL, close_code};

use super::support::{QUICK, ensure, fresh_id};
use crate::Target;
use crate::client::{ConnectError, connect, open};

/// The most `/healthz` may take.
pub(crate) const HEALTH_BUDGET: Duration = Duration::from_millis(250);

/// Returns how long one `GET /healthz` took, checking status, type and body exactly.
pub(crate) async fn probe_health(
    client: &reqwest::Client,
    base_url: &str,
) -> Result<Duration, String> {
    let started = Instant::now();
    let response = client
        .get(format!("{base_url}/healthz"))
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.map_err(|error| error.to_string())?;
    let elapsed = started.elapsed();
    ensure(status == 200, || format!("/healthz answered {status}"))?;
    ensure(content_type.as_deref() == Some("application/json"), || {
        format!("/healthz Content-Type is {content_type:?}")
    })?;
    ensure(body == HEALTHZ_BODY, || format!("/healthz body is {body:?}"))?;
    ensure(elapsed < HEALTH_BUDGET, || format!("/healthz took {elapsed:?}"))?;
    Ok(elapsed)
}

pub(crate) async fn health(target: &Target) -> Result<String, String> {
    let client = crate::http_client();
    let elapsed = probe_health(&client, &target.base_url).await?;
    for method in [reqwest::Method::POST, reqwest::Method::PUT, reqwest::Method::DELETE] {
        let response = client
            .request(method.clone(), format!("{}/healthz", target.base_url))
            .send()
            .await
            .map_err(|error| error.to_string())?;
        ensure(response.status() == 405, || {
            format!("{method} /healthz answered {}", response.status())
        })?;
    }
    Ok(format!("200 {HEALTHZ_BODY} in {elapsed:?}; POST/PUT/DELETE → 405"))
}

pub(crate) async fn info(target: &Target) -> Result<String, String> {
    let response = crate::http_client()
        .get(format!("{}/info", target.base_url))
        .send()
        .await
        .map_err(|error| error.to_string())?;
    ensure(response.status() == 200, || format!("/info answered {}", response.status()))?;
    let info: Info =
        response.json().await.map_err(|error| format!("/info is not an Info document: {error}"))?;
    ensure(info.protocol == SUBPROTOCOL, || format!("/info protocol is {}", info.protocol))?;
    ensure(info.reference.contains('/') && info.reference.contains('@'), || {
        format!("/info ref {} is not ns/name@ver", info.reference)
    })?;
    Ok(format!("ref {} image_digest {:?}", info.reference, info.image_digest))
}

pub(crate) async fn subprotocol(target: &Target) -> Result<String, String> {
    for offered in [None, Some("theory.run.v0")] {
        match connect(&target.base_url, offered).await {
            Err(ConnectError::Refused(status)) if (400..500).contains(&status) => {}
            Err(error) => {
                return Err(format!(
                    "offering {offered:?}: expected an HTTP 4xx refusal, got {error}"
                ));
            }
            Ok(_) => return Err(format!("offering {offered:?}: the server upgraded anyway")),
        }
    }
    let connection = open(&target.base_url).await?;
    ensure(connection.accepted_protocol.as_deref() == Some(SUBPROTOCOL), || {
        format!("accepted with subprotocol {:?}", connection.accepted_protocol)
    })?;
    Ok("no or wrong subprotocol → 4xx; theory.run.v1 accepted".into())
}

pub(crate) async fn close_codes(target: &Target) -> Result<String, String> {
    let id = fresh_id("close");
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("not JSON", Some("hello".into()), close_code::PROTOCOL_ERROR),
        ("binary first frame", None, close_code::PROTOCOL_ERROR),
        (
            "kind Token",
            Some(r#"{"kind":"Token","content":{"text":"x"}}"#.into()),
            close_code::PROTOCOL_ERROR,
        ),
        (
            "unknown role",
            Some(format!(
                r#"{{"kind":"RunOpen","content":{{"role":"admin","execution_id":"{id}"}}}}"#
            )),
            close_code::POLICY_VIOLATION,
        ),
        (
            "empty execution_id",
            Some(r#"{"kind":"RunOpen","content":{"role":"client","execution_id":""}}"#.into()),
            close_code::POLICY_VIOLATION,
        ),
    ];
    for (name, text, expected) in cases {
        let mut connection = open(&target.base_url).await?;
        match text {
            Some(text) => connection.send_text(text).await?,
            None => {
                connection.send_binary(Bytes::from_static(b"\x00\x01")).await?;
            }
        }
        let transcript = connection.collect(QUICK).await;
        let code = transcript.close.as_ref().map(|close| close.0);
        ensure(code == Some(expected), || {
            format!("{name}: expected close {expected}, got {code:?}")
        })?;
        ensure(transcript.frames.is_empty(), || {
            format!("{name}: frames sent before the close: {:?}", transcript.kinds())
        })?;
    }
    // A role in any case is accepted: the answer is an Ack, not a close.
    let text =
        format!(r#"{{"kind":"RunOpen","content":{{"role":"OBSERVER","execution_id":"{id}"}}}}"#);
    let mut upper = open(&target.base_url).await?;
    upper.send_text(text).await?;
    match upper.next_frame(QUICK).await {
        Some(Frame::Ack(_)) => {}
        other => return Err(format!("role OBSERVER: expected Ack, got {other:?}")),
    }
    Ok("1002 for not JSON, binary, wrong kind; 1008 for bad role, empty id; roles in any case"
        .into())
}
