//! `POST /v1/uploads`: the API's `--attach`. The body (raw, or the first file of a multipart
//! form) is hashed while it is spooled to a temporary file — never held in memory — then stored
//! at `/artifacts/inputs/<cid>/<name>` the way `theory run --attach` stores a file (hashed again
//! on the way in; a spool that changed is refused). The answer is the reference a caller puts in
//! `inputs`: `{"$artifact", "cid", "mime"}`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State as Shared};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::json;
use theory_core::Failure;
use theory_core::attachments::{self, ResolvedAttachment};
use theory_ledger::Scope;
use theory_protocol::{CidHasher, ErrorCode};
use tokio::io::AsyncWriteExt;

use crate::auth::Caller;
use crate::errors::{ApiError, ApiQuery};
use crate::state::State;

/// The name an upload is stored under when the request gives none.
const DEFAULT_NAME: &str = "upload";

fn bad(message: impl Into<String>, hint: &str) -> ApiError {
    let mut error = ApiError::with_status(StatusCode::BAD_REQUEST, ErrorCode::Usage, message);
    error.failure.hint = Some(hint.to_owned());
    error
}

fn too_large(limit: u64) -> ApiError {
    let mut error = ApiError::with_status(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Limit,
        format!("the upload is larger than this server's limit of {limit} bytes"),
    );
    error.failure.hint = Some("theory serve --max-upload-bytes N raises it".to_owned());
    error
}

/// Checks a file name: one segment of a world path (no `/` or `\\`, no control character, not
/// `.` or `..`), at most 255 bytes.
fn checked_name(name: &str) -> Result<String, ApiError> {
    let fine = !name.is_empty()
        && name.len() <= 255
        && !matches!(name, "." | "..")
        && !name.chars().any(|c| matches!(c, '/' | '\\') || c.is_control());
    if fine {
        Ok(name.to_owned())
    } else {
        Err(bad(
            format!("the upload's name {name:?} is not a plain file name"),
            "name it as a file, e.g. ?name=photo.jpg",
        ))
    }
}

/// `POST /v1/uploads[?name=photo.jpg]`.
pub(crate) async fn upload(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<std::collections::HashMap<String, String>>,
    request: Request,
) -> Result<Response, ApiError> {
    caller.needs(Scope::RunsWrite)?;
    let limit = state.max_upload_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let named = query.get("name").map(|name| checked_name(name)).transpose()?;
    let is_form =
        content_type.as_deref().is_some_and(|kind| kind.starts_with("multipart/form-data"));
    let (name, mime, spooled) = if is_form {
        let mut form = Multipart::from_request(request, &state)
            .await
            .map_err(|rejection| bad(rejection.body_text(), "send a multipart/form-data body"))?;
        let field = form
            .next_field()
            .await
            .map_err(|error| bad(format!("the form is malformed: {error}"), "send one file field"))?
            .ok_or_else(|| bad("the form holds no file", "send one file field"))?;
        let name = match (&named, field.file_name()) {
            (Some(name), _) => name.clone(),
            (None, Some(file_name)) => checked_name(file_name)?,
            (None, None) => DEFAULT_NAME.to_owned(),
        };
        let mime = field.content_type().map(str::to_owned);
        let chunks = futures_util::stream::unfold(field, move |mut field| async move {
            match field.chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), field)),
                Ok(None) => None,
                Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    Some((Err(too_large(limit)), field))
                }
                Err(error) => Some((Err(broke_off(&error.to_string())), field)),
            }
        });
        (name, mime, spool(chunks, limit).await?)
    } else {
        let mime = content_type.filter(|kind| !kind.is_empty());
        let chunks = Body::into_data_stream(request.into_body())
            .map(|chunk| chunk.map_err(|error| broke_off(&error.to_string())));
        (named.unwrap_or_else(|| DEFAULT_NAME.to_owned()), mime, spool(chunks, limit).await?)
    };
    let mime = mime
        .and_then(|mime| mime.split(';').next().map(|essence| essence.trim().to_owned()))
        .filter(|essence| essence.contains('/') && essence != "application/x-www-form-urlencoded")
        .unwrap_or_else(|| attachments::mime_of(&name));
    let Spooled { file, cid, size_bytes } = spooled;
    let world_path = format!("/artifacts/inputs/{cid}/{name}")
        .parse()
        .map_err(|error| bad(format!("the upload's name: {error}"), "use a plain file name"))?;
    let attachment = ResolvedAttachment {
        name: name.clone(),
        file: file.path().to_owned(),
        world_path,
        cid,
        size_bytes,
        mime: mime.clone(),
        private: false,
        in_store: false,
    };
    attachments::store_all(&*state.orchestrator.store, std::slice::from_ref(&attachment)).await?;
    drop(file);
    let reference = json!({
        "$artifact": attachment.world_path.to_string(),
        "cid": cid.to_string(),
        "mime": mime,
    });
    Ok((
        StatusCode::CREATED,
        [("x-theory-size-bytes", size_bytes.to_string())],
        axum::Json(reference),
    )
        .into_response())
}

/// A body spooled to a temporary file, with its CID.
struct Spooled {
    file: tempfile::NamedTempFile,
    cid: theory_protocol::Cid,
    size_bytes: u64,
}

fn broke_off(error: &str) -> ApiError {
    bad(format!("the upload broke off: {error}"), "send the whole body again")
}

/// Writes the chunks to a temporary file, hashing them, up to `limit` bytes.
async fn spool(
    chunks: impl Stream<Item = Result<Bytes, ApiError>>,
    limit: u64,
) -> Result<Spooled, ApiError> {
    let temporary = |error: std::io::Error| -> ApiError {
        Failure::with_hint(
            ErrorCode::Store,
            format!("cannot spool the upload: {error}"),
            "check the server's temporary directory (TMPDIR) has room",
        )
        .into()
    };
    let file = tempfile::NamedTempFile::new().map_err(temporary)?;
    let mut writer = tokio::fs::File::from_std(file.reopen().map_err(temporary)?);
    let mut hasher = CidHasher::new();
    let mut chunks = std::pin::pin!(chunks);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        if hasher.size_bytes() > limit {
            return Err(too_large(limit));
        }
        writer.write_all(&chunk).await.map_err(temporary)?;
    }
    writer.flush().await.map_err(temporary)?;
    Ok(Spooled { file, cid: hasher.finalize(), size_bytes: hasher.size_bytes() })
}
