//! `GET|HEAD /v1/artifacts/{world path}`: an object of the store, streamed (never read whole),
//! with `ETag` = its CID, `Range` requests, and `Content-Type` from the run that made it.
//!
//! Who may read what: an output, or a file of a run's record (`/artifacts/execution/{id}/…`),
//! belongs to its run, and only a caller who sees that run reads it; `?run=ID` names the run
//! (a memo-cache hit lists another run's outputs as its own). Inputs under
//! `/artifacts/inputs/<cid>/` are named by their content: a caller who may read runs and knows
//! the CID may read them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use theory_core::{Failure, WorldPath};
use theory_ledger::Scope;
use theory_protocol::{Envelope, ErrorCode};

use crate::auth::Caller;
use crate::errors::{ApiError, ApiPath, ApiQuery};
use crate::state::State;

fn not_found(path: &str) -> ApiError {
    Failure::with_hint(
        ErrorCode::NotFound,
        format!("there is no artifact {path}"),
        "the run object's envelope lists its outputs",
    )
    .into()
}

/// What is known of an artifact before it is read.
struct Described {
    mime: String,
    etag: Option<String>,
}

/// `GET|HEAD /v1/artifacts/{*path}[?run=ID]`.
pub(crate) async fn artifact(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    ApiPath(rest): ApiPath<String>,
    ApiQuery(query): ApiQuery<std::collections::HashMap<String, String>>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.needs(Scope::RunsRead)?;
    let shown = format!("/{rest}");
    let path: WorldPath = shown.parse().map_err(|_| not_found(&shown))?;
    let described = describe(&state, &caller, &path, query.get("run").map(String::as_str)).await?;
    let store = &state.orchestrator.store;
    let size = store.size(&path).await.map_err(Failure::from)?.ok_or_else(|| not_found(&shown))?;
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, described.mime.as_str())
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some(etag) = &described.etag {
        response = response.header(header::ETAG, etag.as_str());
        let matches =
            headers.get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok()).is_some_and(
                |value| value.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"),
            );
        if matches {
            return Ok(response
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .unwrap_or_default());
        }
    }
    let range = match headers.get(header::RANGE).and_then(|value| value.to_str().ok()) {
        None => None,
        Some(text) => match byte_range(text, size) {
            Ranged::Whole => None,
            Ranged::Part(start, end) => Some((start, end)),
            Ranged::Unsatisfiable => {
                return Ok(response
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .body(Body::empty())
                    .unwrap_or_default());
            }
        },
    };
    let (status, start, end) = match range {
        Some((start, end)) => {
            response =
                response.header(header::CONTENT_RANGE, format!("bytes {start}-{}/{size}", end - 1));
            (StatusCode::PARTIAL_CONTENT, start, end)
        }
        None => (StatusCode::OK, 0, size),
    };
    response = response.status(status).header(header::CONTENT_LENGTH, end - start);
    if method == axum::http::Method::HEAD {
        return Ok(response.body(Body::empty()).unwrap_or_default());
    }
    let stream = store
        .open_range(&path, start, end)
        .await
        .map_err(Failure::from)?
        .ok_or_else(|| not_found(&shown))?;
    Ok(response.body(Body::from_stream(stream)).unwrap_or_default())
}

/// Checks the caller may read `path`, and says its type and CID.
async fn describe(
    state: &State,
    caller: &Caller,
    path: &WorldPath,
    run: Option<&str>,
) -> Result<Described, ApiError> {
    let text = path.as_str();
    if let Some(rest) = text.strip_prefix("/artifacts/inputs/") {
        let (cid, name) = rest.split_once('/').ok_or_else(|| not_found(text))?;
        let cid: theory_protocol::Cid = cid.parse().map_err(|_| not_found(text))?;
        return Ok(Described {
            mime: theory_core::attachments::mime_of(name),
            etag: Some(format!("\"{cid}\"")),
        });
    }
    if let Some(rest) = text.strip_prefix("/artifacts/execution/") {
        let (id, _) = rest.split_once('/').ok_or_else(|| not_found(text))?;
        crate::routes::current(state, caller, id).await.map_err(|_| not_found(text))?;
        return Ok(Described { mime: "application/json".to_owned(), etag: None });
    }
    let owner = match run {
        Some(run) => run.to_owned(),
        None => state.ledger.owner_of(text, "").await?.ok_or_else(|| not_found(text))?,
    };
    let object =
        crate::routes::current(state, caller, &owner).await.map_err(|_| not_found(text))?;
    let envelope = serde_json::from_value::<Envelope>(object["envelope"].clone()).ok();
    let Some(Envelope::Success(success)) = envelope else { return Err(not_found(text)) };
    let entry =
        success.outputs.iter().find(|entry| entry.path == text).ok_or_else(|| not_found(text))?;
    Ok(Described { mime: entry.mime.clone(), etag: Some(format!("\"{}\"", entry.cid)) })
}

/// A `Range` header, as it applies to an object of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Ranged {
    /// No single range this server serves: the whole object (RFC 9110 lets a server ignore it).
    Whole,
    /// `start..end`.
    Part(u64, u64),
    /// No byte of the range is in the object.
    Unsatisfiable,
}

fn byte_range(text: &str, size: u64) -> Ranged {
    let Some(spec) = text.trim().strip_prefix("bytes=") else { return Ranged::Whole };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Ranged::Whole };
    let (first, last) = (first.trim(), last.trim());
    match (first.parse::<u64>().ok(), last.parse::<u64>().ok()) {
        // `-N`: the last N bytes.
        (None, Some(suffix)) if first.is_empty() => {
            if suffix == 0 || size == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(size.saturating_sub(suffix), size)
            }
        }
        (Some(start), None) if last.is_empty() => {
            if start >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(start, size)
            }
        }
        (Some(start), Some(end)) if start <= end => {
            if start >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(start, end.saturating_add(1).min(size))
            }
        }
        _ => Ranged::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::{Ranged, byte_range};

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(byte_range("bytes=0-9", 100), Ranged::Part(0, 10));
        assert_eq!(byte_range("bytes=90-", 100), Ranged::Part(90, 100));
        assert_eq!(byte_range("bytes=-5", 100), Ranged::Part(95, 100));
        assert_eq!(byte_range("bytes=-500", 100), Ranged::Part(0, 100));
        assert_eq!(byte_range("bytes=50-5000", 100), Ranged::Part(50, 100));
        assert_eq!(byte_range("bytes=100-", 100), Ranged::Unsatisfiable);
        assert_eq!(byte_range("bytes=-0", 100), Ranged::Unsatisfiable);
        assert_eq!(byte_range("bytes=0-1,5-6", 100), Ranged::Whole);
        assert_eq!(byte_range("items=0-1", 100), Ranged::Whole);
        assert_eq!(byte_range("bytes=9-2", 100), Ranged::Whole);
        assert_eq!(byte_range("bytes=0-18446744073709551615", 100), Ranged::Part(0, 100));
    }
}
