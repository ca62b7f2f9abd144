//! Failures as HTTP responses: the one place a code becomes a status, and the error document
//! every route answers with.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use theory_core::Failure;
use theory_protocol::ErrorCode;

/// The HTTP status of a failure of a request (a run that ran and failed is not one: its run
/// object says so, with `201`/`200`).
pub fn status_of(code: &ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Usage
        | ErrorCode::Config
        | ErrorCode::OutputPath
        | ErrorCode::Attachment
        | ErrorCode::InputIntegrity => StatusCode::BAD_REQUEST,
        ErrorCode::CiSafety | ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::NotFound | ErrorCode::Registry => StatusCode::NOT_FOUND,
        ErrorCode::Collision => StatusCode::CONFLICT,
        ErrorCode::InputSchema => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Budget | ErrorCode::Lease | ErrorCode::Limit => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Store | ErrorCode::Ledger => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A failure answered as `{"status":"error","error":{"code","message"},"hint"}` with its status.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// What went wrong.
    pub(crate) failure: Failure,
    /// The status, when it is not the code's own (`413` for a body over the limit, say).
    pub(crate) status: Option<StatusCode>,
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> ApiError {
        ApiError { failure, status: None }
    }
}

impl From<theory_ledger::LedgerError> for ApiError {
    fn from(error: theory_ledger::LedgerError) -> ApiError {
        if let theory_ledger::LedgerError::QueueFull(limit) = error {
            return Failure::with_hint(
                ErrorCode::Limit,
                format!("the queue holds {limit} runs, this server's limit"),
                "try again when runs have drained (GET /readyz says how many wait)",
            )
            .into();
        }
        Failure::with_hint(ErrorCode::Ledger, error.to_string(), "see the server's log")
            .caused_by(error)
            .into()
    }
}

impl ApiError {
    /// A failure with a status of its own.
    pub(crate) fn with_status(
        status: StatusCode,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError { failure: Failure::new(code, message), status: Some(status) }
    }
}

/// An extractor's refusal as the error document.
fn refused(status: StatusCode, text: String) -> ApiError {
    ApiError::with_status(status, ErrorCode::Usage, text)
}

/// `axum::extract::Path`, refusing with the error document (`400`) instead of plain text.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<ApiPath<T>, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(refused(rejection.status(), rejection.body_text())),
        }
    }
}

/// `axum::extract::Query`, refusing with the error document (`400`) instead of plain text.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<ApiQuery<T>, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(refused(rejection.status(), rejection.body_text())),
        }
    }
}

/// Refuses a request whose declared body is over `limit` at once (`413`), before a byte of it is
/// read.
pub(crate) fn check_length(headers: &axum::http::HeaderMap, limit: usize) -> Result<(), ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    match declared {
        Some(length) if length > u64::try_from(limit).unwrap_or(u64::MAX) => {
            let mut error = ApiError::with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::Limit,
                format!("the body is {length} bytes; this server takes {limit} at most"),
            );
            error.failure.hint = Some("send less: large files go to POST /v1/uploads".to_owned());
            Err(error)
        }
        _ => Ok(()),
    }
}

/// The answer to a path no route has: the error document, `404`.
pub(crate) async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::from(Failure::with_hint(
        ErrorCode::NotFound,
        format!("there is no route {}", uri.path()),
        "the routes are in GET /v1/openapi.json",
    ))
}

/// The answer to a method a route does not take: the error document, `405`.
pub(crate) async fn no_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    let mut error = ApiError::with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Usage,
        format!("{} does not take {method}", uri.path()),
    );
    error.failure.hint =
        Some("the routes and their methods are in GET /v1/openapi.json".to_owned());
    error
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| status_of(&self.failure.code));
        if status.is_server_error() {
            tracing::warn!(code = %self.failure.code, message = %self.failure.message, "request failed");
        }
        let body = serde_json::json!({
            "status": "error",
            "error": {"code": self.failure.code, "message": self.failure.message},
            "hint": self.failure.hint,
        });
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use theory_protocol::ErrorCode;

    use super::status_of;

    #[test]
    fn each_kind_of_failure_has_its_status() {
        for (code, status) in [
            (ErrorCode::Usage, StatusCode::BAD_REQUEST),
            (ErrorCode::NotFound, StatusCode::NOT_FOUND),
            (ErrorCode::Registry, StatusCode::NOT_FOUND),
            (ErrorCode::InputSchema, StatusCode::UNPROCESSABLE_ENTITY),
            (ErrorCode::Collision, StatusCode::CONFLICT),
            (ErrorCode::Budget, StatusCode::TOO_MANY_REQUESTS),
            (ErrorCode::CiSafety, StatusCode::FORBIDDEN),
            (ErrorCode::Forbidden, StatusCode::FORBIDDEN),
            (ErrorCode::Unauthorized, StatusCode::UNAUTHORIZED),
            (ErrorCode::Limit, StatusCode::TOO_MANY_REQUESTS),
            (ErrorCode::Ledger, StatusCode::SERVICE_UNAVAILABLE),
            (ErrorCode::Runtime, StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            assert_eq!(status_of(&code), status, "{code}");
        }
    }
}
